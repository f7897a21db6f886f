"""Lake tables by name in a Glue Data Catalog (``lake.catalog: glue``).

The Glue endpoint is moto's server on loopback (``ThreadedMotoServer``): a stand-in for the AWS
Glue API only — the database, the capture, the full load, the merge, Spark and the lake are the
real ones. After a full load and CDC with a DROP, a RENAME and a new table, Glue holds exactly the
live lake tables (the dropped one and the old name gone, the new name and the new table there),
each an external Delta table at its lake location, and Spark reading each Glue table's location
sees the source's rows value by value. A Glue endpoint that is down fails registration loudly,
never the full load; the record in the lake says why, and ``binlake catalog sync`` repairs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from catalog_support import AFTER_CDC, HELPER, LOADED, create_source, replicate, source_name, source_rows
from conftest import include_schema_rules
from delta.tables import DeltaTable

from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.lake import Lake, table_key
from binlake.registration.deltalog import table_properties
from binlake.registration.reading import table_ref
from binlake.registration.sync import read_report, run_sync, state_targets
from binlake.snapshot.job import run_full_load
from binlake.status import pipeline_status, render_text

pytestmark = pytest.mark.spark

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
           "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture(scope="module")
def glue_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    saved = {key: os.environ.get(key) for key in AWS_ENV}
    os.environ.update(AWS_ENV)  # the registration process inherits them (as from an instance role's chain)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def glue(endpoint: str) -> Any:
    return boto3.client("glue", region_name="eu-west-1", endpoint_url=endpoint)


def glue_tables(endpoint: str, database: str) -> dict[str, dict[str, Any]]:
    client = glue(endpoint)
    try:
        tables = client.get_tables(DatabaseName=database)["TableList"]
    except client.exceptions.EntityNotFoundException:
        return {}
    return {t["Name"]: t for t in tables}


def glue_config(make_config: Any, lake_dir: Path, db: str, endpoint: str) -> PipelineConfig:
    config: PipelineConfig = make_config(
        lake_dir, include_schema_rules(db, "%"), capture={"flush_seconds": 0.2},
        merge={"optimize_every_batches": 0, "max_files_per_batch": 1000},
        lake={"catalog": "glue", "glue_endpoint": endpoint, "glue_region": "eu-west-1", "catalog_retry_seconds": 1})
    return config


def lake_rows_at(spark: Any, location: str) -> list[tuple[Any, ...]]:
    frame = spark.read.format("delta").load(location.removeprefix("file:"))
    return sorted(tuple(r) for r in frame.select(*[f"`{c}`" for c in frame.columns
                                                  if not c.startswith("_binlake_")]).collect())


@pytest.mark.slow  # 7 minutes at a load average of 20 on 2 cores; about a minute on a quiet machine
def test_glue_holds_exactly_the_live_lake_tables_after_full_load_and_cdc(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any, glue_endpoint: str
) -> None:
    db = source_db
    config = glue_config(make_config, lake_dir, db, glue_endpoint)

    def after_full_load(config: PipelineConfig) -> None:
        assert sorted(glue_tables(glue_endpoint, db)) == list(LOADED)

    replicate(mariadb, db, config, spark, after_full_load)
    tables = glue_tables(glue_endpoint, db)
    assert sorted(tables) == list(AFTER_CDC)  # stale dropped, old_name renamed away: their names are gone
    assert DeltaTable.isDeltaTable(spark, Lake.from_config(config).uri(table_key(db, HELPER)))  # in the lake, unnamed
    lake = Lake.from_config(config)
    for name, table in tables.items():
        assert table["TableType"] == "EXTERNAL_TABLE"
        assert table["Parameters"]["table_type"] == "DELTA"
        assert table["Parameters"]["spark.sql.sources.provider"] == "delta"
        location = table["StorageDescriptor"]["Location"]
        assert location == "file:" + lake.uri(table_key(db, source_name(name)))
        assert table["StorageDescriptor"]["SerdeInfo"]["Parameters"]["path"] == location
        assert lake_rows_at(spark, location) == source_rows(mariadb, db, source_name(name)), name
    database = glue(glue_endpoint).get_database(Name=db)["Database"]
    assert database["LocationUri"] == "file:" + lake.uri(db)
    report = read_report(lake)
    assert report is not None and report["ok"] and sorted(report["registered"]) == [f"{db}.{t}" for t in AFTER_CDC]
    assert f"catalog: glue: {len(AFTER_CDC)} table(s) registered" in render_text(pipeline_status(config, lake))
    # the lake keeps the dropped and renamed-away tables' folders (their history): only the names went
    assert (lake_dir / db / "stale" / "_delta_log").is_dir() and (lake_dir / db / "old_name" / "_delta_log").is_dir()
    # the Delta-log reader registration relies on agrees with Spark on every lake table's properties
    for schema, table in sorted(set(state_targets(lake))):
        props = table_properties(lake, table_key(schema, table))
        spark_props = {r["key"]: r["value"] for r in spark.sql(
            f"SHOW TBLPROPERTIES delta.`{lake.uri(table_key(schema, table))}`").collect()}
        assert props is not None and {k: v for k, v in spark_props.items() if not k.startswith("delta.")} == {
            k: v for k, v in props.items() if not k.startswith("delta.")}, table
    # idempotent: a second sync changes nothing
    again = run_sync(config)
    assert again.ok and again.created == again.replaced == again.dropped == []


def test_a_glue_outage_never_fails_the_full_load_and_sync_repairs_it(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any, glue_endpoint: str
) -> None:
    db = source_db
    create_source(mariadb, db, only_orders=True)
    down = glue_config(make_config, lake_dir, db, "http://127.0.0.1:9")  # nothing listens there
    run_full_load(down, spark)  # completes: its data does not depend on the catalog
    lake = Lake.from_config(down)
    report = read_report(lake)
    assert report is not None and report["ok"] is False and "Could not connect" in (report["error"] or "")
    assert "catalog: glue: 0 table(s) registered" in render_text(pipeline_status(down, lake))
    assert "FAILED" in render_text(pipeline_status(down, lake))
    assert glue_tables(glue_endpoint, db) == {}
    assert lake_rows_at(spark, lake.uri(table_key(db, "orders"))) == source_rows(mariadb, db, "orders")
    up = glue_config(make_config, lake_dir, db, glue_endpoint)
    repaired = run_sync(up)
    assert repaired.ok and repaired.created == [f"{db}.orders"]
    assert sorted(glue_tables(glue_endpoint, db)) == ["orders"]
    ref = table_ref(up, db, "orders")  # what the query notebook does: the name, looked up in Glue
    assert ref.name == f"{db}.orders" and ref.read(spark).count() == len(source_rows(mariadb, db, "orders"))
