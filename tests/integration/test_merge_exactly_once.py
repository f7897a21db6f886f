"""Exactly once across restarts: a crash between two commits of one batch, availableNow run again,
idempotent tombstones and metrics; metrics, status and the change data feed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from delta.tables import DeltaTable
from merge_helpers import LAYOUT, Source, load_table, lsn, merge_config, r, rows, run_merge

from binlake.lake import MERGE_METRICS_DIR, MERGE_STATUS_KEY, Lake, tombstones_key

pytestmark = pytest.mark.spark

WITH_NOTE = [*LAYOUT, ("note", "varchar", False)]


def merges(spark: Any, path: str) -> int:
    return DeltaTable.forPath(spark, path).history().filter("operation = 'MERGE'").count()


class CrashAfter:
    """Raise once, right after the first commit to a table whose path ends with ``suffix``."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        self.crashed = False

    def __call__(self, path: str, version: int) -> None:
        if not self.crashed and path.endswith(self.suffix):
            self.crashed = True
            raise RuntimeError(f"simulated crash after commit {version} to {path}")


def test_crash_between_commits_then_restart(spark: Any, lake_dir: Path) -> None:
    lake = Lake(str(lake_dir))
    src = Source(lake)
    a = load_table(spark, lake, "a", [(1, "a", 1), (2, "b", 2)], 100)
    c = load_table(spark, lake, "c", [(1, "a", 1)], 100)
    src.write(
        src.upd(110, "a", (r(1, "a", 1), r(1, "a1", 10))),
        src.dele(111, "a", r(2, "b", 2)),
        src.ins(120, "c", r(2, "b", 2)),
        src.ddl(121, "c", "ALTER", "ALTER TABLE c ADD note TEXT"),
        src.ins(122, "c", {**r(3, "c", 3), "note": "n"}, layout=WITH_NOTE),
    )
    config = merge_config(lake_dir)
    crash = CrashAfter("/shop/c")
    with pytest.raises(Exception, match="simulated crash"):
        run_merge(spark, config, after_commit=crash)
    assert rows(spark, a) == [(1, "a1", 10)]  # a was committed before the crash
    assert rows(spark, c) == [(1, "a", 1), (2, "b", 2)]  # c: first step only
    run_merge(spark, config)  # restart: batch 0 again
    assert rows(spark, a) == [(1, "a1", 10)]
    assert rows(spark, c) == [(1, "a", 1, None), (2, "b", 2, None), (3, "c", 3, "n")]
    assert (merges(spark, a), merges(spark, c)) == (1, 2)  # nothing applied twice
    tombs = spark.read.format("delta").load(lake.uri(tombstones_key("shop", "a")))
    # the replay may append the same tombstone again (harmless: the greatest lsn per key counts)
    assert {tuple(t) for t in tombs.select("id", "_binlake_lsn").collect()} == {(2, lsn(111))}

    versions = {p: DeltaTable.forPath(spark, p).history(1).collect()[0]["version"] for p in (a, c)}
    metrics = lake.uri(MERGE_METRICS_DIR)
    assert spark.read.format("delta").load(metrics).count() == 2
    run_merge(spark, config)  # nothing new: no batch, no commit
    assert {p: DeltaTable.forPath(spark, p).history(1).collect()[0]["version"] for p in (a, c)} == versions
    assert spark.read.format("delta").load(metrics).count() == 2

    src.write(src.upd(130, "a", (r(1, "a1", 10), r(1, "a2", 11))))
    run_merge(spark, config)
    assert rows(spark, a) == [(1, "a2", 11)]
    batch = spark.read.format("delta").load(metrics).filter("batch_id = 1").collect()
    assert [(m["table"], m["updated"], m["lsn"]) for m in batch] == [("a", 1, lsn(130))]
    assert batch[0]["lag_seconds"] is not None and batch[0]["lag_seconds"] > 0
    status = json.loads(lake.get_bytes(MERGE_STATUS_KEY))
    assert status["batch_id"] == 1 and status["last_error"] is None
    assert status["tables"]["shop.a"]["lsn"] == lsn(130)
    assert status["tables"]["shop.c"]["inserted"] == 1  # counts of the replayed attempt: step 0 was skipped
    feed = (spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", 0).load(a)
            .filter("_change_type = 'update_postimage'").select("name").orderBy("_commit_version").collect())
    assert [f["name"] for f in feed] == ["a1", "a2"]
