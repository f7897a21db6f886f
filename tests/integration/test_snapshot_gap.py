"""No silent gap between snapshot and stream: a table whose snapshot is older than the start of the
change log is not merged, ``binlake status`` names it and the fix, and a reload joins it again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from capture_support import CaptureThread, reach_end
from conftest import include_schema_rules
from failover_support import run_sql, table_rows
from merge_helpers import rows, run_merge

from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.lake import Lake, table_key
from binlake.merge.handoff import GAP
from binlake.snapshot.job import run_full_load
from binlake.status import pipeline_status, render_text, table_statuses

CREATE = "CREATE TABLE {} (id INT PRIMARY KEY, qty INT)"


def _tables(mariadb: LocalMariaDB, db: str) -> None:
    for table in ("a", "b"):
        run_sql(mariadb, db, CREATE.format(table),
                f"INSERT INTO {table} VALUES " + ",".join(f"({i}, {i})" for i in range(1, 41)))


def _beats(mariadb: LocalMariaDB) -> None:
    mariadb.execute("CREATE DATABASE IF NOT EXISTS beats")
    mariadb.execute("CREATE TABLE IF NOT EXISTS beats.beat (id INT AUTO_INCREMENT PRIMARY KEY)")


def _config(make_config: Callable[..., PipelineConfig], lake_dir: Path, db: str, table: str = "%",
            **capture: Any) -> PipelineConfig:
    return make_config(lake_dir, include_schema_rules(db, table), full_load={"chunk_rows": 20},
                       capture={"flush_seconds": 0.2, **capture}, merge={"optimize_every_batches": 0})


def _capture_until_end(config: PipelineConfig, mariadb: LocalMariaDB, db: str, epoch: int = 0) -> None:
    capture = CaptureThread(config).start()
    try:
        reach_end(config, mariadb, lambda: capture.error is not None, epoch)
    finally:
        capture.stop()


def _gaps(config: PipelineConfig) -> dict[str, str | None]:
    return {t.table: t.gap for t in table_statuses(Lake.from_config(config))}


def test_a_snapshot_taken_before_the_capture_started_is_named_by_status(
        mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Callable[..., PipelineConfig],
        spark: Any) -> None:
    _tables(mariadb, source_db)
    _beats(mariadb)
    config = _config(make_config, lake_dir, source_db, "a")
    run_full_load(config, spark)  # before any capture: nothing will have recorded the changes in between
    assert _gaps(config) == {f"{source_db}.a": None}
    run_sql(mariadb, source_db, "UPDATE a SET qty = 0 WHERE id = 1")  # lost to the stream
    _capture_until_end(config, mariadb, source_db)
    gap = _gaps(config)[f"{source_db}.a"]
    assert gap is not None and "older than the start of the change log" in gap and "reload this table" in gap
    text = render_text(pipeline_status(config))
    assert "NOT MERGED" in text and f"{source_db}.a:" in text and "first start" in text


@pytest.mark.slow
def test_the_merge_leaves_a_table_with_a_gap_out_until_it_is_reloaded(
        mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Callable[..., PipelineConfig],
        spark: Any) -> None:
    _tables(mariadb, source_db)
    _beats(mariadb)
    both = _config(make_config, lake_dir, source_db)
    run_full_load(both, spark)  # both loaded before the capture starts
    run_sql(mariadb, source_db, "UPDATE a SET qty = 0 WHERE id = 1", "UPDATE b SET qty = 0 WHERE id = 1")
    _capture_until_end(both, mariadb, source_db)
    run_full_load(_config(make_config, lake_dir, source_db, "b"), spark)  # the fix, for b only
    run_sql(mariadb, source_db, "UPDATE a SET qty = -2 WHERE id = 2", "UPDATE b SET qty = -2 WHERE id = 2",
            "DELETE FROM a WHERE id = 3", "DELETE FROM b WHERE id = 3")
    _capture_until_end(both, mariadb, source_db)
    run_merge(spark, both)
    lake = Lake.from_config(both)
    status = pipeline_status(both)
    merged = {t["table"]: t for t in status["tables"]}
    assert merged[f"{source_db}.b"]["gap"] is None
    assert merged[f"{source_db}.a"]["gap"] is not None
    assert merged[f"{source_db}.a"]["last_batch"]["status"] == GAP
    assert rows(spark, lake.uri(table_key(source_db, "b"))) == table_rows(mariadb, source_db, "b")
    assert rows(spark, lake.uri(table_key(source_db, "a"))) != table_rows(mariadb, source_db, "a")  # left out

    run_full_load(_config(make_config, lake_dir, source_db, "a"), spark)  # reload a: it joins
    run_sql(mariadb, source_db, "UPDATE a SET qty = 5 WHERE id = 4")
    _capture_until_end(both, mariadb, source_db)
    run_merge(spark, both)
    assert rows(spark, lake.uri(table_key(source_db, "a"))) == table_rows(mariadb, source_db, "a")
    assert _gaps(both) == {f"{source_db}.a": None, f"{source_db}.b": None}

    # a table joined before a gap began is flagged the same way: its changes inside the gap are missing
    run_sql(mariadb, source_db, "UPDATE b SET qty = 77 WHERE id = 5")  # while no capture runs
    _capture_until_end(_config(make_config, lake_dir, source_db, start="end"), mariadb, source_db, epoch=1)
    run_sql(mariadb, source_db, "UPDATE b SET qty = 78 WHERE id = 6")
    _capture_until_end(both, mariadb, source_db, epoch=1)
    run_merge(spark, both)
    gaps = _gaps(both)
    assert gaps[f"{source_db}.a"] is not None and gaps[f"{source_db}.b"] is not None
    lake_b = dict((r[0], r[1]) for r in rows(spark, lake.uri(table_key(source_db, "b"))))
    assert lake_b[6] == 6  # not merged on top of a snapshot that misses the gap
