"""binlake validate: a lake that equals its source passes; a changed, deleted or extra lake row is
reported as a real difference, key by key; a lake behind the source reports rows in flight."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import include_schema_rules

from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.lake import CHECKPOINT_KEY, Lake
from binlake.snapshot.job import run_full_load
from binlake.validation import exit_status, format_report, validate


def _setup(mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any) -> PipelineConfig:
    mariadb.execute("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20), price DECIMAL(8,2), "
                    "seen DATETIME(3))", source_db)
    mariadb.execute("CREATE TABLE order_lines (a INT, b VARCHAR(5), qty INT, PRIMARY KEY (a, b))", source_db)
    mariadb.execute("INSERT INTO items VALUES " + ",".join(
        f"({i}, 'item{i}', {i}.25, '2024-01-01 00:00:{i % 60:02d}.125')" for i in range(1, 301)), source_db)
    mariadb.execute("INSERT INTO order_lines VALUES (1,'x',1),(1,'y',2),(2,'x',3)", source_db)
    config: PipelineConfig = make_config(lake_dir, include_schema_rules(source_db), full_load={"chunk_rows": 70})
    run_full_load(config, spark)
    return config


def _by_table(results: list[Any]) -> dict[str, Any]:
    return {r.table.split(".", 1)[1]: r for r in results}


def test_equal_lake_passes_and_differences_are_named(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any
) -> None:
    config = _setup(mariadb, source_db, lake_dir, make_config, spark)

    results = _by_table(validate(spark, config))
    assert [(r.status, r.source_rows, r.lake_rows) for r in results.values()] == [("OK", 300, 300), ("OK", 3, 3)]
    assert results["items"].chunks > 1
    assert exit_status(list(results.values())) == 0

    items = str(lake_dir / source_db / "items")
    spark.sql(f"UPDATE delta.`{items}` SET price = price + 1 WHERE id = 7")
    spark.sql(f"DELETE FROM delta.`{items}` WHERE id = 250")
    mariadb.execute("DELETE FROM order_lines WHERE a = 2", source_db)  # the lake keeps a row the source lost

    results = _by_table(validate(spark, config))
    items_result, lines_result = results["items"], results["order_lines"]
    assert (items_result.status, items_result.mismatched, items_result.missing, items_result.extra) == (
        "DIFFERENT", 1, 1, 0)
    assert sorted((s["kind"], s["key"]["id"]) for s in items_result.samples) == [("mismatched", 7), ("missing", 250)]
    assert len(items_result.differing_chunks) == 2
    assert (lines_result.status, lines_result.extra) == ("DIFFERENT", 1)
    assert lines_result.samples[0]["key"] == {"a": 2, "b": "x"}
    report = format_report(list(results.values()))
    assert "DIFFERENT" in report and "mismatched: key {'id': 7}" in report
    assert exit_status(list(results.values())) == 1


def test_lake_behind_a_running_capture_is_in_flight_not_different(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any
) -> None:
    config = _setup(mariadb, source_db, lake_dir, make_config, spark)
    # A capture checkpoint far behind the source: changes after it may still be on their way.
    lake = Lake.from_config(config)
    lake.put_bytes(CHECKPOINT_KEY, json.dumps({"version": 1, "position": {"file": "binlog.000001", "pos": 4,
                                                                          "lsn": (1 << 32) | 4}}).encode())
    mariadb.execute("UPDATE items SET name = 'renamed' WHERE id = 3", source_db)
    results = _by_table(validate(spark, config))
    assert results["items"].status == "IN FLIGHT"
    assert results["items"].in_flight == 1
    assert results["items"].mismatched == 0
    assert exit_status(list(results.values())) == 3
