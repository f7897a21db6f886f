"""Lake tables by name in a Hive metastore (``lake.catalog: hive``), read by name with Spark SQL.

The metastore is a local embedded Derby database (Spark's bundled Hive 2.3 client, the JDBC
metastore a user would point ``spark.hadoop.javax.jdo.option.ConnectionURL`` at). Registration runs
as the pipeline runs it, in its own process with its own Hive-backed SparkSession; the reader is
another application again (tests/integration/catalog_query.py), like a user's notebook. After a full
load and CDC with a DROP, a RENAME and a new table, ``SELECT * FROM `db`.`t``` of every table the
metastore lists equals the source table value by value; the renamed table is found under its new
name, the dropped one and the old name are gone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from catalog_support import AFTER_CDC, HELPER, replicate, source_name, source_rows
from conftest import include_schema_rules
from delta.tables import DeltaTable

from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.lake import Lake, table_key
from binlake.registration.sync import read_report

pytestmark = [pytest.mark.spark, pytest.mark.slow]  # each Hive-backed session is a JVM of its own

QUERY = Path(__file__).with_name("catalog_query.py")


def hive_config(make_config: Any, lake_dir: Path, db: str, metastore: Path) -> PipelineConfig:
    config: PipelineConfig = make_config(
        lake_dir, include_schema_rules(db, "%"), capture={"flush_seconds": 0.2},
        merge={"optimize_every_batches": 0, "max_files_per_batch": 1000},
        lake={"catalog": "hive", "catalog_retry_seconds": 1},
        spark={"master": "local[1]", "conf": {
            "spark.hadoop.javax.jdo.option.ConnectionURL":
                f"jdbc:derby:;databaseName={metastore / 'metastore_db'};create=true",
            "spark.sql.warehouse.dir": str(metastore / "warehouse"),
            "spark.driver.extraJavaOptions": f"-Duser.timezone=UTC -Dderby.stream.error.file={metastore / 'derby.log'}",
        }})
    return config


def by_name(config: PipelineConfig, database: str) -> dict[str, list[list[Any]]]:
    """Every table of ``database`` read by name by another Spark application."""
    request = json.dumps({"config": config.model_dump(mode="json"), "database": database})
    done = subprocess.run([sys.executable, str(QUERY)], input=request.encode(), capture_output=True, timeout=900)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    tables: dict[str, list[list[Any]]] = json.loads(done.stdout.decode().strip().splitlines()[-1])["tables"]
    return tables


def as_json(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    return sorted([str(v) if isinstance(v, Decimal) else v for v in row] for row in rows)


def test_every_live_table_is_read_by_name_equal_to_the_source(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, tmp_path: Path, make_config: Any, spark: Any
) -> None:
    db = source_db
    config = hive_config(make_config, lake_dir, db, tmp_path / "metastore")
    replicate(mariadb, db, config, spark)
    report = read_report(Lake.from_config(config))
    assert report is not None and report["ok"], report
    tables = by_name(config, db)
    assert sorted(tables) == list(AFTER_CDC)  # stale dropped, old_name → new_name, fresh new, Items as items
    assert DeltaTable.isDeltaTable(spark, Lake.from_config(config).uri(table_key(db, HELPER)))  # in the lake, unnamed
    for name, rows in tables.items():
        assert sorted(rows) == as_json(source_rows(mariadb, db, source_name(name))), name
