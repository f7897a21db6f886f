"""DMS add-column rules end to end (real MariaDB, capture, Spark full load and merge, Delta): a
constant, $AR_H_COMMIT_TIMESTAMP and $AR_H_OPERATION hold the values DMS defines — on full-load rows
the constant, the time the rows were read and INSERT; on changed rows the constant, the source
commit time and INSERT/UPDATE — while the source columns equal the source value for value and
validate reports the table equal."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from capture_support import CaptureThread, checkpoint_reached, master_position, wait_for

from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.lake import Lake, table_key
from binlake.merge.job import run as run_merge
from binlake.snapshot.job import run_full_load
from binlake.validation import validate

pytestmark = [pytest.mark.spark]


def mapping(schema: str) -> dict[str, Any]:
    def add(rule_id: int, name: str, expression: str, data_type: dict[str, Any]) -> dict[str, Any]:
        return {"rule-type": "transformation", "rule-id": str(rule_id), "rule-name": name, "rule-target": "column",
                "rule-action": "add-column", "object-locator": {"schema-name": schema, "table-name": "items"},
                "value": name, "expression": expression, "data-type": data_type}

    return {"rules": [
        {"rule-type": "selection", "rule-id": "1", "rule-name": "all", "rule-action": "include",
         "object-locator": {"schema-name": schema, "table-name": "%"}},
        add(2, "src", "'shop-a'", {"type": "string", "length": 10}),
        add(3, "commit_ts", "$AR_H_COMMIT_TIMESTAMP", {"type": "datetime", "precision": 6}),
        add(4, "operation", "$AR_H_OPERATION", {"type": "string", "length": 10}),
        add(5, "ver", "7", {"type": "int4"}),
    ]}


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def test_added_columns_hold_the_dms_values_on_full_load_and_changes(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Callable[..., PipelineConfig], spark: Any
) -> None:
    mariadb.execute("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20), qty INT)", source_db)
    mariadb.execute("INSERT INTO items VALUES " + ", ".join(f"({i}, 'n{i}', {i})" for i in range(1, 21)), source_db)
    config = make_config(lake_dir, mapping(source_db), capture={"flush_seconds": 0.5, "start": "end"})
    path = Lake(str(lake_dir)).uri(table_key(source_db, "items"))
    capture = CaptureThread(config).start()
    try:
        wait_for(lambda: capture.error is not None or checkpoint_reached(config, master_position(mariadb))(), 30,
                 "the capture to start")
        load_started = now()
        run_full_load(config, spark)
        load_ended = now()
        time.sleep(1.1)  # the changes commit in a later second than the full load read
        changed_at = now()
        mariadb.execute("UPDATE items SET qty = qty + 100 WHERE id = 1", source_db)
        mariadb.execute("INSERT INTO items VALUES (100, 'new', 5)", source_db)
        mariadb.execute("DELETE FROM items WHERE id = 2", source_db)
        changed_by = now()
        end = master_position(mariadb)
        wait_for(lambda: capture.error is not None or checkpoint_reached(config, end)(), 60, "the capture")
    finally:
        capture.stop()
    run_merge(spark, config, available_now=True)

    frame = spark.read.format("delta").load(path)
    assert frame.columns[:7] == ["id", "name", "qty", "src", "commit_ts", "operation", "ver"]
    lake = {r["id"]: r for r in frame.orderBy("id").collect()}
    source = mariadb.execute("SELECT id, name, qty FROM items ORDER BY id", source_db)
    assert [(r["id"], r["name"], r["qty"]) for r in lake.values()] == [tuple(r) for r in source]
    assert {(r["src"], r["ver"]) for r in lake.values()} == {("shop-a", 7)}

    def within(moment: datetime.datetime, low: datetime.datetime, high: datetime.datetime) -> bool:
        utc = moment.replace(tzinfo=datetime.UTC)  # the session reads TIMESTAMP in UTC, naive
        return low.replace(microsecond=0) - datetime.timedelta(seconds=1) <= utc <= high + datetime.timedelta(seconds=1)

    for key in (1, 100):  # changed: the source operation and its commit time (binlog: whole seconds)
        assert lake[key]["operation"] == ("UPDATE" if key == 1 else "INSERT")
        assert within(lake[key]["commit_ts"], changed_at, changed_by), (key, lake[key]["commit_ts"])
    for key in range(3, 21):  # loaded: INSERT and the time the rows were read
        assert lake[key]["operation"] == "INSERT"
        assert within(lake[key]["commit_ts"], load_started, load_ended), (key, lake[key]["commit_ts"])
        assert lake[key]["commit_ts"] < lake[1]["commit_ts"]

    (result,) = validate(spark, config)
    assert (result.status, result.source_rows, result.lake_rows) == ("OK", 20, 20)
