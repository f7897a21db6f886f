"""Bounded merge steps: a table's part of a batch — the catch-up that joins it after its full load
and an ordinary batch — is applied in steps of at most ``merge.max_batch_records`` records and
``merge.max_batch_bytes`` bytes, cut by lsn inside one change-log file; the lake equals the source
value by value. And the latest-version-per-key reduction (two passes, no key's versions held
together) picks exactly what ``max_by`` over all versions picks, duplicates and NULL keys included."""

from __future__ import annotations

import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from capture_support import write_config
from delta.tables import DeltaTable
from merge_helpers import Source, load_table, merge_config, r, rows, run_merge
from test_merge_end_to_end import Group

from binlake.lake import Lake
from binlake.merge.decode import IDX, LSN, _max_by_per_key, latest_per_key
from binlake.merge.summary import BUCKET_BITS

pytestmark = pytest.mark.spark

BUCKET = 1 << BUCKET_BITS  # one lsn bucket apart: the plan may cut between any two events


class Model:
    """The source table as the events leave it."""

    def __init__(self, rows: list[tuple[int, str, int]]) -> None:
        self.rows = {i: (i, n, q) for i, n, q in rows}

    def row(self, i: int) -> dict[str, Any]:
        _, name, qty = self.rows[i]
        return r(i, name, qty)


def merges(spark: Any, path: str) -> int:
    history = DeltaTable.forPath(spark, path).history()
    return history.filter("operation = 'MERGE'").count()


class Events:
    """Events of table ``t``, one lsn bucket apart, applied to a :class:`Model` as they are made."""

    def __init__(self, src: Source, model: Model) -> None:
        self.src, self.model, self.pos = src, model, BUCKET
        self.events: list[Any] = []

    def upd(self, old: int, new: dict[str, Any]) -> None:
        self.events.append(self.src.upd(self.pos, "t", (self.model.row(old), new)))
        self.model.rows.pop(old)
        self.model.rows[new["id"]] = (new["id"], new["name"], new["qty"])
        self.pos += BUCKET

    def ins(self, new: dict[str, Any]) -> None:
        self.events.append(self.src.ins(self.pos, "t", new))
        self.model.rows[new["id"]] = (new["id"], new["name"], new["qty"])
        self.pos += BUCKET

    def dele(self, old: int) -> None:
        self.events.append(self.src.dele(self.pos, "t", self.model.row(old)))
        self.model.rows.pop(old)
        self.pos += BUCKET

    def write(self) -> None:
        self.src.write(*self.events)
        self.events = []


WIDE = "w" * 4000


def test_a_batch_is_cut_by_records_and_bytes_and_the_lake_is_exact(spark: Any, lake_dir: Path) -> None:
    lake = Lake(str(lake_dir))
    initial = [(1, "hot", 0), (2, "b", 2), (3, "c", 3)]
    path = load_table(spark, lake, "t", initial, 10)
    model = Model(initial)
    log = Events(Source(lake), model)
    for n in range(1, 6):
        log.upd(1, r(1, f"hot-{n}", n))
    log.dele(2)                        # step 1: 6 records (max_batch_records)
    log.ins(r(2, "back", 6))           # re-inserted after its delete, in a later step
    log.upd(3, r(30, "moved", 8))      # a primary-key change
    log.upd(1, r(1, WIDE, 9))          # step 2: ~4 KB of images so far
    log.upd(1, r(1, WIDE + "!", 10))   # ~8 KB more would pass max_batch_bytes: step 3
    log.ins(r(40, "new", 10))
    log.write()                        # one file: the catch-up that joins the table after its load
    run_merge(spark, merge_config(lake_dir, max_batch_records=6, max_batch_bytes=10_000))
    assert rows(spark, path) == sorted(model.rows.values())
    assert merges(spark, path) == 3


@pytest.mark.slow
def test_bounded_steps_in_a_join_and_in_a_later_batch(spark: Any, lake_dir: Path) -> None:
    lake = Lake(str(lake_dir))
    initial = [(1, "hot", 0), (2, "b", 2), (3, "c", 3)]
    path = load_table(spark, lake, "t", initial, 10)
    model = Model(initial)
    log = Events(Source(lake), model)

    for n in range(1, 13):                    # a hot key, updated in every step
        log.upd(1, r(1, f"hot-{n}", n))
        if n == 4:
            log.dele(2)
        if n == 6:
            log.ins(r(2, "back", 6))
        if n == 8:
            log.upd(3, r(30, "moved", 8))
        if n == 10:
            log.ins(r(40, "new", 10))
    log.write()                                           # batch 0: one file, the join's catch-up
    run_merge(spark, merge_config(lake_dir, max_batch_records=5, max_files_per_batch=1))
    assert rows(spark, path) == sorted(model.rows.values())
    assert merges(spark, path) == 4                      # 16 records, at most 5 per step

    for n in range(6):                                    # batch 1: cut by bytes (~8 KB per update)
        log.upd(40, r(40, f"{WIDE}-{n}", 100 + n))
    log.dele(1)
    log.write()
    before = merges(spark, path)
    run_merge(spark, merge_config(lake_dir, max_batch_bytes=20_000, max_files_per_batch=1))
    assert rows(spark, path) == sorted(model.rows.values())
    assert merges(spark, path) - before == 3              # 7 records of ~8, 8, …, 0.1 KB: 2 + 2 + 3


def test_the_two_pass_reduction_picks_what_max_by_picks(spark: Any) -> None:
    rnd = random.Random(7)
    data = []
    for _ in range(4000):
        key = rnd.choice([None, *range(1, 40)])
        name = rnd.choice(["x", "y", None])
        lsn, idx = rnd.randrange(1, 300), rnd.randrange(0, 3)
        data.append((key, name, lsn, idx))
    data += data[:500]                                    # the capture's re-written duplicates
    frame = spark.createDataFrame(data, f"k bigint, n string, {LSN} bigint, {IDX} int").selectExpr(
        "k", "n", LSN, IDX, f"if({LSN} % 3 = 0, 'D', 'U') AS __bl_op",
        f"concat_ws('/', {LSN}, {IDX}, k, n) AS v", "unhex(hex(k)) AS b")
    two_pass = sorted((tuple(row) for row in latest_per_key(frame, ["k", "n"]).collect()), key=repr)
    max_by = sorted((tuple(row) for row in _max_by_per_key(frame, ["k", "n"]).collect()), key=repr)
    assert two_pass == max_by
    assert len(two_pass) == len({(k, n) for k, n, _, _ in data})


def _events_in_three_steps(lake: Lake, spark: Any) -> tuple[str, Model]:
    initial = [(1, "hot", 0), (2, "b", 2), (3, "c", 3)]
    path = load_table(spark, lake, "t", initial, 10)
    model = Model(initial)
    log = Events(Source(lake), model)
    for n in range(1, 16):
        log.upd(1, r(1, f"hot-{n}", n))
        if n == 5:
            log.dele(2)
        if n == 9:
            log.upd(3, r(30, "moved", 9))
    log.write()
    return path, model


@pytest.mark.slow
def test_a_batch_killed_after_its_first_step_replays_the_same_steps_under_new_bounds(
        spark: Any, lake_dir: Path, tmp_path: Path) -> None:
    """SIGKILL ``streaming/merge.py`` right after the first of its three bounded steps commits, then
    restart it with bounds that would plan one step: the replay keeps its first attempt's steps
    (the one step would be skipped by its transaction, losing the other two steps' changes)."""
    lake = Lake(str(lake_dir))
    path, model = _events_in_three_steps(lake, spark)   # 17 records, 6 per step: 3 steps
    config = tmp_path / "merge.yaml"
    write_config(merge_config(lake_dir, max_batch_records=6), config)
    log = tmp_path / "merge.log"
    merge = Group([sys.executable, "streaming/merge.py", "--config", str(config), "--available-now"], log)
    deadline = time.monotonic() + 600
    while merges(spark, path) < 1 and merge.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    merge.kill(signal.SIGKILL)
    assert merges(spark, path) == 1, log.read_text()[-3000:]
    write_config(merge_config(lake_dir, max_batch_records=1000), config)
    replay = Group([sys.executable, "streaming/merge.py", "--config", str(config), "--available-now"], log)
    assert replay.wait(timeout=900) == 0, log.read_text()[-3000:]
    assert rows(spark, path) == sorted(model.rows.values())
    assert merges(spark, path) == 3
    assert "keeps the bounds of its first attempt" in log.read_text()
