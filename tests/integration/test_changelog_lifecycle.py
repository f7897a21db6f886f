"""The change-log lifecycle on a real MariaDB, capture, full load, Spark and Delta: the merge's
cleanup removes what every reader has applied while the capture keeps writing, keeps what a table
whose full load is not complete yet will need, and after it a restarted merge, a join and a replay
from a new merge checkpoint all leave the lake equal to the source, value for value. A merge
SIGKILLed in the middle of a cleanup loses nothing either."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from capture_support import CaptureThread, caught_up, write_config
from conftest import include_schema_rules
from failover_support import run_sql, table_rows
from merge_helpers import Source, load_table, merge_config, rows, run_merge

from binlake.capture.checkpoint import Checkpoint, save_checkpoint
from binlake.changelog import changelog_files, read_changelog
from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.lake import CHANGELOG_REMOVED_KEY, MERGE_CHECKPOINT_DIR, Lake, snapshot_state_key, table_key
from binlake.merge import cleanup
from binlake.merge.cleanup import read_removed_through
from binlake.merge.handoff import Handoff
from binlake.positions import BinlogPosition
from binlake.snapshot.job import run_full_load
from binlake.snapshot.state import LOADING, TableState

pytestmark = pytest.mark.spark
ROOT = Path(__file__).resolve().parents[2]


def _config(make_config: Callable[..., PipelineConfig], lake_dir: Path, db: str, table: str = "%") -> PipelineConfig:
    return make_config(lake_dir, include_schema_rules(db, table), full_load={"chunk_rows": 20},
                       capture={"flush_seconds": 0.2}, merge={"optimize_every_batches": 0},
                       changelog={"retention_hours": 0})


def _in_files(mariadb: LocalMariaDB, db: str, *groups: list[str]) -> None:
    """Each group of statements (one transaction each), a flush apart: one or more change-log files per group."""
    for group in groups:
        run_sql(mariadb, db, *group)
        time.sleep(0.35)


def _no_retention(root: Path, **merge: Any) -> PipelineConfig:
    """The merge tests' config with ``changelog.retention_hours: 0`` (removal by position alone)."""
    config = merge_config(root, **merge)
    return config.model_copy(update={"changelog": config.changelog.model_copy(update={"retention_hours": 0.0})})


def _same(spark: Any, lake: Lake, mariadb: LocalMariaDB, db: str, table: str) -> None:
    assert rows(spark, lake.uri(table_key(db, table))) == table_rows(mariadb, db, table)


@pytest.mark.slow
def test_cleanup_keeps_what_a_restart_a_join_and_a_replay_need(
        mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Callable[..., PipelineConfig],
        spark: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cleanup, "CLEANUP_EVERY", 0.0)  # after every batch once one is committed
    for table in ("a", "b"):
        run_sql(mariadb, source_db, f"CREATE TABLE {table} (id INT PRIMARY KEY, qty INT, note VARCHAR(20))",
                f"INSERT INTO {table} SELECT seq, seq, CONCAT('n', seq) FROM seq_1_to_40")
    mariadb.execute("CREATE DATABASE IF NOT EXISTS beats")
    mariadb.execute("CREATE TABLE IF NOT EXISTS beats.beat (id INT AUTO_INCREMENT PRIMARY KEY)")
    config = _config(make_config, lake_dir, source_db)
    lake = Lake.from_config(config)
    capture = CaptureThread(config).start()
    try:
        caught_up(config, mariadb, capture)                # the change log starts before a's snapshot
        run_full_load(_config(make_config, lake_dir, source_db, "a"), spark)
        _in_files(mariadb, source_db, *[[f"UPDATE a SET qty = qty + {i} WHERE id <= {5 * i}",
                                         f"INSERT INTO a VALUES ({100 + i}, {i}, 'new')",
                                         f"DELETE FROM a WHERE id = {30 + i}"] for i in range(1, 4)])
        caught_up(config, mariadb, capture)
        run_full_load(_config(make_config, lake_dir, source_db, "b"), spark)   # b's snapshot: after all of that
        b_state = lake.get_bytes(snapshot_state_key(source_db, "b"))
        b_lsn = Handoff.from_state(TableState.from_json(b_state)).min_lsn
        _in_files(mariadb, source_db, *[[f"UPDATE b SET qty = -{i} WHERE id = {i}",
                                         f"DELETE FROM b WHERE id = {20 + i}",
                                         f"UPDATE a SET note = 'p2' WHERE id = {i}"] for i in range(1, 4)])
        caught_up(config, mariadb, capture)
        # b's load as a merge sees one that has not finished yet: it must keep everything after its snapshot
        loading = dataclasses.replace(TableState.from_json(b_state), status=LOADING)
        lake.put_bytes(snapshot_state_key(source_db, "b"), loading.to_json())
        before = changelog_files(lake)
        halves = config.model_copy(update={"merge": config.merge.model_copy(
            update={"max_files_per_batch": len(before) // 2 + 1})})   # two batches: the second one cleans up
        run_merge(spark, halves)                          # the capture keeps running meanwhile
        _same(spark, lake, mariadb, source_db, "a")
        after = changelog_files(lake)
        record = json.loads(lake.get_bytes(CHANGELOG_REMOVED_KEY))
        assert record["files_removed"] > 0 and len(after) < len(before)
        removed_through = read_removed_through(lake)
        assert removed_through is not None and removed_through <= b_lsn
    finally:
        capture.stop()
    table = read_changelog(lake)
    kept_b = [lsn for lsn, name in zip(table.column("lsn").to_pylist(), table.column("source_table").to_pylist(),
                                       strict=True) if name == "b" and lsn > b_lsn]
    assert len(kept_b) == 6                               # every change of b after its snapshot is still there
    # the floor is b's snapshot, or lower where the merge's own position (the first of its two batches) held it;
    # every file at or below the floor is gone, every file above it kept
    floor = record["floor"]
    assert floor is not None and removed_through <= floor <= b_lsn
    assert all(f.last > floor for f in after)

    lake.put_bytes(snapshot_state_key(source_db, "b"), b_state)   # b's load completes: the next merge joins it
    capture = CaptureThread(config).start()
    try:
        _in_files(mariadb, source_db, ["UPDATE b SET note = 'p3' WHERE id = 10", "INSERT INTO a VALUES (200, 2, 'x')"],
                  ["DELETE FROM a WHERE id = 200", "UPDATE a SET qty = 0 WHERE id = 7"])
        caught_up(config, mariadb, capture)
    finally:
        capture.stop()
    run_merge(spark, config)                              # a merge restarted after the cleanup
    for name in ("a", "b"):
        _same(spark, lake, mariadb, source_db, name)

    shutil.rmtree(lake_dir / MERGE_CHECKPOINT_DIR)         # a new merge checkpoint replays every file kept
    run_merge(spark, config)
    for name in ("a", "b"):
        _same(spark, lake, mariadb, source_db, name)


def test_a_restart_a_join_and_a_replay_after_cleanup_lose_nothing(tmp_path: Path, spark: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The same on hand-written change-log files (cheap enough for the default run): ``t`` joined,
    ``w`` still loading while the cleanup runs; then ``w`` completes and joins, and a new checkpoint
    replays what is kept."""
    monkeypatch.setattr(cleanup, "CLEANUP_EVERY", 0.0)
    lake = Lake(str(tmp_path / "lake"))
    source = Source(lake)
    t_path = load_table(spark, lake, "t", [(i, f"r{i}", 0) for i in range(1, 21)], snapshot_pos=100)
    w_path = load_table(spark, lake, "w", [(i, f"w{i}", 0) for i in range(1, 11)], snapshot_pos=500, complete=False)
    t = {i: (i, f"r{i}", 0) for i in range(1, 21)}
    w = {i: (i, f"w{i}", 0) for i in range(1, 11)}

    def change(table: str, rows_: dict[int, tuple[Any, ...]], pos: int, key: int, delete: bool = False) -> None:
        old = rows_.get(key)
        before = None if old is None else {"id": old[0], "name": old[1], "qty": old[2]}
        if delete and before is not None:
            source.write(source.dele(pos, table, before))
            rows_.pop(key)
            return
        new = (key, f"{table}{pos}", pos)
        after = {"id": key, "name": new[1], "qty": new[2]}
        source.write(source.upd(pos, table, (before, after)) if before else source.ins(pos, table, after))
        rows_[key] = new

    for pos in range(200, 500, 50):                      # 6 files of t before w's snapshot
        change("t", t, pos, pos // 50, delete=pos == 300)
    for pos in range(510, 560, 10):                      # 5 files after it, both tables
        change("w", w, pos, pos // 10 - 50, delete=pos == 530)
        change("t", t, pos + 1, pos // 10 - 45)
    save_checkpoint(lake, Checkpoint(BinlogPosition.of("binlog.000001", 600)))
    run_merge(spark, _no_retention(tmp_path / "lake", max_files_per_batch=8))   # two batches: the second cleans up
    assert rows(spark, t_path) == [t[k] for k in sorted(t)]
    kept = changelog_files(lake)
    removed_through = read_removed_through(lake)
    assert removed_through is not None and len(kept) < 16
    assert all(f.first > BinlogPosition.of("binlog.000001", 500).lsn for f in kept)   # w's changes all kept
    table = read_changelog(lake)
    assert table.column("source_table").to_pylist().count("w") == 5

    state = TableState.from_json(lake.get_bytes(snapshot_state_key("shop", "w")))
    lake.put_bytes(snapshot_state_key("shop", "w"), dataclasses.replace(state, status="complete").to_json())
    change("w", w, 700, 3)                                # w's load completed: it joins with its next change
    change("t", t, 710, 4, delete=True)
    save_checkpoint(lake, Checkpoint(BinlogPosition.of("binlog.000001", 800)))
    run_merge(spark, _no_retention(tmp_path / "lake"))     # a merge restarted after the cleanup
    assert rows(spark, t_path) == [t[k] for k in sorted(t)]
    assert rows(spark, w_path) == [w[k] for k in sorted(w)]
    shutil.rmtree(tmp_path / "lake" / MERGE_CHECKPOINT_DIR)  # a new checkpoint replays every file kept
    run_merge(spark, _no_retention(tmp_path / "lake"))
    assert rows(spark, t_path) == [t[k] for k in sorted(t)]
    assert rows(spark, w_path) == [w[k] for k in sorted(w)]


def _kill_when_cleaning(process: subprocess.Popen[bytes], lake: Lake, timeout: float) -> bool:
    """SIGKILL ``process`` as soon as the cleanup has recorded what it removes (its deletes follow);
    whether it was caught before the last planned delete."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if lake.exists(CHANGELOG_REMOVED_KEY):
            process.kill()
            process.wait(timeout=30)
            return True
        time.sleep(0.005)
    process.kill()
    process.wait(timeout=30)
    return False


@pytest.mark.slow  # two merge processes (JVM starts) and a join of 120 files: minutes on a loaded machine
def test_a_merge_killed_during_its_cleanup_loses_nothing(tmp_path: Path, spark: Any) -> None:
    lake = Lake(str(tmp_path / "lake"))
    source = Source(lake)
    path = load_table(spark, lake, "t", [(i, f"r{i}", 0) for i in range(1, 301)], snapshot_pos=100)
    expected = {i: (i, f"r{i}", 0) for i in range(1, 301)}
    pos = 200
    for i in range(1, 241):                               # 240 small files, one change each
        key = 1 + (i * 37) % 300
        if i % 20 == 0:
            source.write(source.dele(pos, "t", {"id": key, "name": expected[key][1], "qty": expected[key][2]}))
            expected.pop(key)
        elif key in expected:
            new = (key, f"u{i}", i)
            source.write(source.upd(pos, "t", ({"id": key, "name": expected[key][1], "qty": expected[key][2]},
                                              {"id": key, "name": new[1], "qty": new[2]})))
            expected[key] = new
        else:
            new = (key, f"i{i}", i)
            source.write(source.ins(pos, "t", {"id": key, "name": new[1], "qty": new[2]}))
            expected[key] = new
        pos += 10
    save_checkpoint(lake, Checkpoint(BinlogPosition.of("binlog.000001", pos)))
    config = _no_retention(tmp_path / "lake", max_files_per_batch=120)
    config_path = write_config(config, tmp_path / "merge.yaml")
    command = [sys.executable, str(ROOT / "streaming" / "merge.py"), "--config", str(config_path), "--available-now"]
    log = (tmp_path / "merge.log").open("ab")
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    caught = _kill_when_cleaning(process, lake, timeout=1200)
    assert caught, (tmp_path / "merge.log").read_text()[-3000:]
    removed_through = read_removed_through(lake)
    left_below = [f for f in changelog_files(lake) if f.last <= (removed_through or -1)]
    assert removed_through is not None
    print(f"killed with {len(left_below)} file(s) of the cleanup not deleted yet")
    subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=True, timeout=1200)
    assert rows(spark, path) == [expected[k] for k in sorted(expected)]
