"""binlake.registration.glue and .sync against a Glue client whose requests are checked one by one
(botocore's Stubber: the recorded request shapes Athena reads Delta tables by), over a lake with
hand-made Delta logs: a loaded table, a dropped one, a table born in the stream."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from binlake.config import CatalogKind
from binlake.lake import CATALOG_KEY, REGISTRATION_KEY, Lake
from binlake.registration.glue import GlueCatalog, glue_location, table_input
from binlake.registration.plan import CatalogName
from binlake.registration.sync import sync

NOW = datetime.datetime(2026, 12, 1, 9, 0, tzinfo=datetime.UTC)


def client() -> Any:
    return boto3.client("glue", region_name="eu-west-1", aws_access_key_id="k", aws_secret_access_key="s")


def test_table_input_is_an_external_delta_table_as_athena_reads_it() -> None:
    assert table_input(CatalogName("shop", "orders"), "s3://b/lake/shop/orders") == {
        "Name": "orders",
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"EXTERNAL": "TRUE", "table_type": "DELTA", "spark.sql.sources.provider": "delta",
                       "classification": "delta", "binlake.registered": "true"},
        "StorageDescriptor": {
            "Columns": [{"Name": "col", "Type": "array<string>", "Comment": "schema in the Delta log"}],
            "Location": "s3://b/lake/shop/orders",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                          "Parameters": {"serialization.format": "1", "path": "s3://b/lake/shop/orders"}},
        },
        "PartitionKeys": [],
    }


def test_glue_locations() -> None:
    assert glue_location("s3a://bucket/lake/shop/t") == "s3://bucket/lake/shop/t"
    assert glue_location("/tmp/lake/shop/t") == "file:/tmp/lake/shop/t"


def delta_table(root: Path, folder: str, **conf: str) -> None:
    log = root / folder / "_delta_log"
    log.mkdir(parents=True)
    (log / f"{0:020d}.json").write_text(json.dumps({"metaData": {"id": "x", "configuration": conf}}) + "\n")


def lake_with_three_tables(root: Path) -> Lake:
    """shop.orders (loaded, live), shop.old (loaded, then DROPped), shop.born (born in the stream)."""
    entries = [{"source": {"schema": "shop", "table": t}, "target": {"schema": "shop", "table": t}}
               for t in ("old", "orders")]
    (root / CATALOG_KEY).parent.mkdir(parents=True)
    (root / CATALOG_KEY).write_text(json.dumps({"version": 1, "tables": entries}))
    state = root / "_binlake/snapshots/shop/born.json"
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"source": {"schema": "shop", "table": "born"},
                                 "target": {"schema": "shop", "table": "born", "path": str(root / "shop/born")}}))
    delta_table(root, "shop/orders")
    delta_table(root, "shop/old", **{"binlake.merge.droppedLsn": "9", "binlake.merge.truncateLsn": "9"})
    delta_table(root, "shop/born", **{"binlake.merge.schemaLsn": "4"})
    return Lake(str(root))


def missing(stub: Stubber, method: str, params: dict[str, Any]) -> None:
    stub.add_client_error(method, "EntityNotFoundException", "not found", expected_params=params)


def test_first_sync_creates_database_and_live_tables_and_drops_the_dropped(tmp_path: Path) -> None:
    lake = lake_with_three_tables(tmp_path)
    glue = client()
    loc = f"file:{tmp_path}"
    with Stubber(glue) as stub:
        missing(stub, "get_table", {"DatabaseName": "shop", "Name": "born"})
        missing(stub, "get_table", {"DatabaseName": "shop", "Name": "old"})
        missing(stub, "get_table", {"DatabaseName": "shop", "Name": "orders"})
        missing(stub, "get_database", {"Name": "shop"})
        stub.add_response("create_database", {}, {"DatabaseInput": {
            "Name": "shop", "LocationUri": f"{loc}/shop", "Description": "lake schema replicated by binlake"}})
        for table in ("born", "orders"):
            stub.add_response("create_table", {}, {"DatabaseName": "shop", "TableInput": table_input(
                CatalogName("shop", table), f"{loc}/shop/{table}")})
        report = sync(CatalogKind.GLUE, lake, GlueCatalog(glue), lambda: NOW)
        stub.assert_no_pending_responses()
    assert report.ok and report.created == ["shop.born", "shop.orders"] and report.dropped == []
    assert report.registered == ["shop.born", "shop.orders"]
    assert json.loads(lake.get_bytes(REGISTRATION_KEY))["ok"] is True


def test_next_sync_drops_a_table_dropped_since_and_leaves_the_rest(tmp_path: Path) -> None:
    lake = lake_with_three_tables(tmp_path)
    glue = client()
    loc = f"file:{tmp_path}"

    def held(name: str) -> dict[str, Any]:
        return {"Table": {"Name": name, "DatabaseName": "shop", "TableType": "EXTERNAL_TABLE",
                          "StorageDescriptor": {"Location": f"{loc}/shop/{name}"}}}

    with Stubber(glue) as stub:
        for name in ("born", "old", "orders"):
            stub.add_response("get_table", held(name), {"DatabaseName": "shop", "Name": name})
        stub.add_response("delete_table", {}, {"DatabaseName": "shop", "Name": "old"})
        report = sync(CatalogKind.GLUE, lake, GlueCatalog(glue), lambda: NOW)
        stub.assert_no_pending_responses()
    assert report.ok and report.dropped == ["shop.old"] and report.created == []


def test_a_catalog_failure_is_recorded_never_raised(tmp_path: Path) -> None:
    lake = lake_with_three_tables(tmp_path)
    glue = client()
    with Stubber(glue) as stub:
        stub.add_client_error("get_table", "AccessDeniedException", "no glue:GetTable for you")
        report = sync(CatalogKind.GLUE, lake, GlueCatalog(glue), lambda: NOW)
    assert not report.ok and report.error is not None and "AccessDenied" in report.error
    record = json.loads(lake.get_bytes(REGISTRATION_KEY))
    assert record["ok"] is False and "no glue:GetTable" in record["error"]


def test_one_tables_failure_does_not_stop_the_others(tmp_path: Path) -> None:
    lake = lake_with_three_tables(tmp_path)
    glue = client()
    loc = f"file:{tmp_path}"
    with Stubber(glue) as stub:
        for name in ("born", "old", "orders"):
            missing(stub, "get_table", {"DatabaseName": "shop", "Name": name})
        stub.add_response("get_database", {"Database": {"Name": "shop"}}, {"Name": "shop"})
        stub.add_client_error("create_table", "ResourceNumberLimitExceededException", "too many tables")
        stub.add_response("create_table", {}, {"DatabaseName": "shop", "TableInput": table_input(
            CatalogName("shop", "orders"), f"{loc}/shop/orders")})
        report = sync(CatalogKind.GLUE, lake, GlueCatalog(glue), lambda: NOW)
        stub.assert_no_pending_responses()
    assert not report.ok and [f["table"] for f in report.failed] == ["shop.born"]
    assert report.created == ["shop.orders"] and report.registered == ["shop.orders"]


@pytest.mark.parametrize("catalog_id", ["123456789012"])
def test_the_catalog_id_goes_with_every_request(tmp_path: Path, catalog_id: str) -> None:
    glue = client()
    with Stubber(glue) as stub:
        stub.add_response("delete_table", {}, {"CatalogId": catalog_id, "DatabaseName": "shop", "Name": "t"})
        GlueCatalog(glue, catalog_id).drop(CatalogName("shop", "t"))
        stub.assert_no_pending_responses()
