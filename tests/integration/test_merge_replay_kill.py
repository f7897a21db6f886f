"""Merge replays are stable: the merge process (``streaming/merge.py``) SIGKILLed right after one of its
commits, restarted, killed after its next new commit, … through every batch of a workload heavy in
TRUNCATE and DROP/CREATE (plus inserts, updates, deletes, ALTER, and an SCD2 table truncated too).
Afterwards the lake equals a lake merged from the same change log without any kill, row for row
(history and bookkeeping columns included), and the source, value for value.

The watcher polls the Delta logs of every table under the lake (lake tables, tombstones, metrics) and
the merge's own state files. A commit a replay makes again (an idempotent one without a transaction
id: table properties, tombstone appends, the metrics append, ``status.json``) is recognised by its
content and not killed again, so each restart gets further.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from capture_support import CaptureThread, checkpoint_reached, master_position, wait_for, write_config
from conftest import include_schema_rules
from merge_helpers import Source, load_table, merge_config, rows
from test_merge_end_to_end import Group

from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.lake import MERGE_CHECKPOINT_DIR, Lake
from binlake.merge.job import run as run_merge
from binlake.positions import BinlogPosition
from binlake.snapshot.job import run_full_load

pytestmark = pytest.mark.spark

COMMIT_FILE = re.compile(r"\d{20}\.json")
SETUP = [
    "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20), qty INT)",
    "INSERT INTO items SELECT seq, CONCAT('i', seq), seq FROM seq_1_to_20",
    "CREATE TABLE stage (id INT PRIMARY KEY, v INT)",
    "INSERT INTO stage VALUES (1, 0), (2, 0), (3, 0)",
    "CREATE TABLE cyc (id INT PRIMARY KEY, v INT)",
    "INSERT INTO cyc VALUES (1, 0), (2, 0)",
    "CREATE TABLE hist (id INT PRIMARY KEY, v INT)",
    "INSERT INTO hist SELECT seq, seq FROM seq_1_to_10",
]


def round_statements(r: int) -> list[str]:
    """Round ``r`` of the workload: every kind of change on every table, two TRUNCATEs of the staging
    table on odd rounds, the SCD2 table truncated on round 2, column DDL on rounds 1 and 2."""
    name = "title" if r > 2 else "name"
    note = ", note" if r > 1 else ""
    statements = [f"INSERT INTO items (id, {name}, qty{note}) VALUES " + ", ".join(
        f"({100 + 10 * r + j}, 'n{r}{j}', {j}{', ' + repr(f'x{r}') if note else ''})" for j in range(3)),
        f"UPDATE items SET qty = qty + {r} WHERE id IN ({r}, {r + 5}, {100 + 10 * r})",
        f"DELETE FROM items WHERE id = {10 + r}"]
    if r == 1:
        statements.append("ALTER TABLE items ADD COLUMN note VARCHAR(10)")
    if r == 2:
        statements.append("ALTER TABLE items RENAME COLUMN name TO title")
    statements += ["TRUNCATE TABLE stage", f"INSERT INTO stage VALUES (1, {r}), (2, {r}), ({10 + r}, {r})",
                   "UPDATE stage SET v = -v WHERE id = 1"]
    if r % 2:
        statements += ["TRUNCATE TABLE stage", f"INSERT INTO stage VALUES (5, {r}), ({20 + r}, {r})"]
    width = ", w VARCHAR(8)" if r > 1 else ""
    statements += ["DROP TABLE cyc", f"CREATE TABLE cyc (id INT PRIMARY KEY, v INT{width})",
                   f"INSERT INTO cyc (id, v) VALUES ({r}, {r}), ({r + 1}, {r})", f"DELETE FROM cyc WHERE id = {r + 1}"]
    statements += [f"UPDATE hist SET v = v + 100 WHERE id = {r}", f"INSERT INTO hist VALUES ({50 + r}, {r})",
                   f"DELETE FROM hist WHERE id = {10 - r}"]
    if r == 2:
        statements += ["TRUNCATE TABLE hist", "INSERT INTO hist VALUES (1, 1000), (2, 2000), (3, 3000)",
                       "UPDATE hist SET v = v + 1 WHERE id = 1"]
    return statements


def commit_identity(lake: Path, path: Path) -> str | None:
    """What a new file under the lake commits, independent of file names, versions and times; None
    for files that are not commits (data files, Delta checkpoints, temporaries)."""
    rel = path.relative_to(lake)
    if any(part.startswith((".", "_tmp")) for part in rel.parts) or path.suffix == ".crc":
        return None
    if "_delta_log" in rel.parts:
        if not COMMIT_FILE.fullmatch(path.name):
            return None
        table = str(rel.parent.parent)
        parts: list[str] = []
        for line in path.read_text().splitlines():
            action = json.loads(line)
            if "commitInfo" in action:
                info = action["commitInfo"]
                parts.append(f"{info.get('operation')} {json.dumps(info.get('operationParameters'), sort_keys=True)}")
            elif "txn" in action:
                parts.append(f"txn {action['txn']['appId']} {action['txn']['version']}")
            elif "add" in action and table.endswith("_binlake/merge/metrics"):
                stats = json.loads(action["add"].get("stats") or "{}")
                parts.append(f"metrics of batch {stats.get('minValues', {}).get('batch_id')}")
            elif "add" in action:
                parts.append(f"add {action['add'].get('stats')}")
        return f"{table}: " + " | ".join(sorted(parts))
    if rel.parts[:2] != ("_binlake", "merge"):
        return None
    if path.name == "status.json":
        status = json.loads(path.read_text())
        return f"status of batch {status.get('batch_id')}"
    return str(rel)


class Watcher:
    """The commits found under ``lake``, by identity (parsed once per file version)."""

    def __init__(self, lake: Path) -> None:
        self.lake = lake
        self._cache: dict[tuple[Path, int, int], str | None] = {}
        self.seen: set[str] = set(self.scan())

    def scan(self) -> set[str]:
        found: set[str] = set()
        for path in self.lake.rglob("*"):
            if not path.is_file() or path.suffix == ".parquet":
                continue
            try:
                stat = path.stat()
                key = (path, stat.st_mtime_ns, stat.st_size)
                if key not in self._cache:
                    self._cache[key] = commit_identity(self.lake, path)
            except (FileNotFoundError, json.JSONDecodeError):
                continue  # renamed away, or caught mid-write: seen at the next poll
            if (identity := self._cache[key]) is not None:
                found.add(identity)
        return found


def kill_after_commits(config_path: Path, lake: Path, log: Path, should_kill: Callable[[str], bool],
                       max_kills: int) -> list[str]:
    """Run the merge (``--available-now``) again and again, SIGKILLing it as soon as a commit not seen
    before appears for which ``should_kill`` holds, until a run finishes by itself; returns the
    commits killed after."""
    watcher = Watcher(lake)
    killed: list[str] = []
    while True:
        merge = Group([sys.executable, "streaming/merge.py", "--config", str(config_path), "--available-now"], log)
        victim = None
        while victim is None and merge.process.poll() is None:
            new = watcher.scan() - watcher.seen
            watcher.seen |= new
            if len(killed) < max_kills:
                victim = next((c for c in sorted(new) if should_kill(c)), None)
            if victim is None:
                time.sleep(0.02)
        if victim is None:
            assert merge.wait(timeout=900) == 0, log.read_text()[-4000:]
            return killed
        merge.kill(signal.SIGKILL)
        killed.append(victim)


def table_rows(spark: Any, path: str) -> list[tuple[Any, ...]]:
    """Every row with every column (bookkeeping and SCD2 history included), sorted."""
    frame = spark.read.format("delta").load(path)
    return sorted((tuple(row) for row in frame.select(*sorted(frame.columns)).collect()), key=repr)


def source_rows(db: LocalMariaDB, database: str, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in db.execute(sql, database)]


def lake_rows(spark: Any, path: str, columns: str, where: str = "true") -> list[tuple[Any, ...]]:
    frame = spark.read.format("delta").load(path).where(where)
    return [tuple(row) for row in frame.selectExpr(*columns.split(", ")).orderBy("id").collect()]


def caught_up(capture: CaptureThread, config: PipelineConfig, end: BinlogPosition) -> Callable[[], bool]:
    reached = checkpoint_reached(config, end)
    return lambda: capture.error is not None or reached()


def prepare_change_log(db: LocalMariaDB, database: str, config: PipelineConfig, spark: Any, rounds: int) -> None:
    """Tables loaded, then the workload captured (one change-log file per round) — the merge not run."""
    for statement in SETUP:
        db.execute(statement, database)
    capture = CaptureThread(config).start()
    try:
        wait_for(checkpoint_reached(config, master_position(db)), 30, "the capture to start")
        run_full_load(config, spark)
        for r in range(1, rounds + 1):
            for statement in round_statements(r):
                db.execute(statement, database)
            wait_for(caught_up(capture, config, master_position(db)), 60, "the capture")  # the next round: next file
    finally:
        capture.stop()
    assert capture.error is None


def check_replays(db: LocalMariaDB, database: str, config: PipelineConfig, tmp_path: Path, spark: Any,
                  should_kill: Callable[[str], bool], max_kills: int) -> list[str]:
    lake = Path(config.lake.root)
    reference = tmp_path / "reference"
    shutil.copytree(lake, reference)  # same change log, same loaded tables: merged without kills
    killed = kill_after_commits(write_config(config, tmp_path / "merge.yaml"), lake, tmp_path / "merge.log",
                                should_kill, max_kills)
    run_merge(spark, config.model_copy(update={"lake": config.lake.model_copy(update={"root": str(reference)})}),
              available_now=True)
    for table in ("items", "stage", "cyc", "hist"):
        assert table_rows(spark, f"{lake}/{database}/{table}") == table_rows(
            spark, f"{reference}/{database}/{table}"), table
    assert lake_rows(spark, f"{lake}/{database}/items", "id, title, qty, note") == source_rows(
        db, database, "SELECT id, title, qty, note FROM items ORDER BY id")
    assert lake_rows(spark, f"{lake}/{database}/stage", "id, v") == source_rows(
        db, database, "SELECT id, v FROM stage ORDER BY id")
    assert lake_rows(spark, f"{lake}/{database}/cyc", "id, v, w") == source_rows(
        db, database, "SELECT id, v, w FROM cyc ORDER BY id")
    assert lake_rows(spark, f"{lake}/{database}/hist", "id, v", "_binlake_is_current") == source_rows(
        db, database, "SELECT id, v FROM hist ORDER BY id")
    return killed


def pipeline(make_config: Any, lake_dir: Path, database: str, files_per_batch: int) -> PipelineConfig:
    """Capture flushes rarely, so that each round of the workload is about one change-log file."""
    config: PipelineConfig = make_config(
        lake_dir, include_schema_rules(database), capture={"start": "end", "flush_seconds": 3},
        merge={"max_files_per_batch": files_per_batch, "optimize_every_batches": 0,
               "scd2_tables": [f"{database}.hist"]})
    return config


@pytest.mark.slow  # about 2.5 minutes: three merge processes (JVM starts); unit: test_merge_replay.py
def test_merge_killed_after_its_first_ddl_commits(mariadb: LocalMariaDB, source_db: str, lake_dir: Path,
                                                  tmp_path: Path, make_config: Any, spark: Any) -> None:
    """Short variant: killed right after the first wipe of the staging table and of the SCD2 table
    (table properties set, the DELETE / closing UPDATE not yet committed; the SCD2 table's rows before
    the TRUNCATE already merged) — where a replay used to plan fewer steps and skip the rest."""
    config = pipeline(make_config, lake_dir, source_db, files_per_batch=100)  # one batch
    prepare_change_log(mariadb, source_db, config, spark, rounds=2)
    first_wipe: set[str] = set()

    def first_wipe_of(table: str) -> Callable[[str], bool]:
        def wipe(commit: str) -> bool:
            hit = commit.startswith(f"{source_db}/{table}:") and "truncateLsn" in commit and table not in first_wipe
            if hit:
                first_wipe.add(table)
            return hit
        return wipe

    stage, hist = first_wipe_of("stage"), first_wipe_of("hist")
    killed = check_replays(mariadb, source_db, config, tmp_path, spark, lambda c: stage(c) or hist(c), max_kills=2)
    assert len(killed) == 2, killed


@pytest.mark.slow
def test_merge_killed_after_each_of_its_commits(mariadb: LocalMariaDB, source_db: str, lake_dir: Path,
                                                tmp_path: Path, make_config: Any, spark: Any) -> None:
    config = pipeline(make_config, lake_dir, source_db, files_per_batch=2)  # about two batches
    prepare_change_log(mariadb, source_db, config, spark, rounds=4)
    killed = check_replays(mariadb, source_db, config, tmp_path, spark, lambda _commit: True, max_kills=400)
    print(f"{len(killed)} kills, one after each new commit:", *killed, sep="\n  ")
    assert len(killed) > 30
    assert any("DELETE" in c for c in killed) and any("truncateLsn" in c for c in killed)


def test_a_crash_before_the_first_offsets_file_does_not_wedge_the_merge(spark: Any, lake_dir: Path) -> None:
    """Killed while Spark wrote the first offsets file: its temporary stays, and Spark would refuse
    the checkpoint for good ("offsets should be empty on batch 0") — the merge clears it instead."""
    lake = Lake(str(lake_dir))
    path = load_table(spark, lake, "a", [(1, "a", 1)], 100)
    src = Source(lake)
    src.write(src.ins(110, "a", {"id": 2, "name": "b", "qty": 2}))
    checkpoint = lake_dir / MERGE_CHECKPOINT_DIR
    (checkpoint / "offsets").mkdir(parents=True)
    (checkpoint / "metadata").write_text('{"id":"5d0c4b1e-8a49-4a53-9d7b-0c6c0e3f2a11"}')
    (checkpoint / "offsets" / ".0.6f1c2a.tmp").write_text("v1\n")
    run_merge(spark, merge_config(lake_dir), available_now=True)
    assert rows(spark, path) == [(1, "a", 1), (2, "b", 2)]
