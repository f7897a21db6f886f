"""Online resync on a real MariaDB + Spark + Delta: rows changed behind replication's back
(``SET sql_log_bin=0``) make the lake differ; ``binlake resync`` — while a workload keeps changing the
table, the capture runs and the merge applies batches in between the chunk deliveries — brings the
lake back to the source value by value (no phantom rows, no lost stream change); ``validate --repair``
resyncs exactly the differing chunks.

The capture runs in a thread; the merge runs in-process with ``availableNow`` (as the merge tests
do), which applies due resync chunks after each batch and once at its end.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from capture_support import CaptureThread, caught_up, checkpoint_reached, master_position, wait_for, write_config
from conftest import include_schema_rules
from delta.tables import DeltaTable
from merge_helpers import run_merge

from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.lake import CHECKPOINT_KEY, Lake, table_key
from binlake.progress import read_progress
from binlake.resync import store
from binlake.resync.job import ResyncError, run_resync
from binlake.resync.manifest import Resync, ResyncChunk
from binlake.resync.repair import repair
from binlake.snapshot.job import run_full_load
from binlake.validation import validate

pytestmark = pytest.mark.spark
ROOT = Path(__file__).resolve().parents[2]

LINES = ("CREATE TABLE order_lines (a INT, b VARCHAR(6) COLLATE utf8mb4_bin, qty INT, note VARCHAR(20), "
         "PRIMARY KEY (a, b))")
LETTERS = "vwxyz"


def _beats(mariadb: LocalMariaDB) -> None:
    mariadb.execute("CREATE DATABASE IF NOT EXISTS beats")
    mariadb.execute("CREATE TABLE IF NOT EXISTS beats.beat (id INT AUTO_INCREMENT PRIMARY KEY)")


def _source(mariadb: LocalMariaDB, db: str, table: str, columns: str, order: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in mariadb.execute(f"SELECT {columns} FROM {table} ORDER BY {order}", db)]


def _lake(spark: Any, config: PipelineConfig, db: str, table: str, columns: str, order: str) -> list[tuple[Any, ...]]:
    path = Lake.from_config(config).uri(table_key(db, table))
    frame = spark.read.format("delta").load(path)
    return [tuple(r) for r in frame.selectExpr(*columns.split(", ")).orderBy(*order.split(", ")).collect()]


def _behind_replication(mariadb: LocalMariaDB, db: str, statements: list[str]) -> None:
    conn = mariadb.connect(db)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_log_bin = 0")
            for sql in statements:
                cur.execute(sql)
    finally:
        conn.close()


class Workload:
    """Random single-statement transactions on ``lines``: inserts, updates, deletes (logged)."""

    def __init__(self, connect: Callable[[], Any], seed: int, pause: float = 0.05) -> None:
        self.connect = connect
        self.pause = pause  # between transactions: ~20/s, so the change log stays small on a slow machine
        self.rng = random.Random(seed)
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.count = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                while not self.stop_event.is_set():
                    a, b = self.rng.randint(40, 460), self.rng.choice(LETTERS)
                    op = self.rng.random()
                    if op < 0.4:
                        cur.execute("UPDATE order_lines SET qty = qty + 1, note = %s WHERE a = %s AND b = %s",
                                    (f"w{self.count}", a, b))
                    elif op < 0.7:
                        cur.execute("INSERT IGNORE INTO order_lines VALUES (%s, %s, %s, %s)", (a, b, self.count, "new"))
                    else:
                        cur.execute("DELETE FROM order_lines WHERE a = %s AND b = %s", (a, b))
                    self.count += 1
                    self.stop_event.wait(self.pause)
        except BaseException as exc:
            self.error = exc
        finally:
            conn.close()

    def __enter__(self) -> Workload:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop_event.set()
        self.thread.join(timeout=30)
        if self.error is not None:
            raise self.error


def _loaded_lines(mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any,
                  spark: Any) -> tuple[PipelineConfig, CaptureThread]:
    _beats(mariadb)
    mariadb.execute(LINES, source_db)
    mariadb.execute("INSERT INTO order_lines VALUES " + ",".join(
        f"({a}, '{b}', {a * 10}, 'n{a}{b}')" for a in range(1, 401) for b in LETTERS), source_db)
    config: PipelineConfig = make_config(
        lake_dir, include_schema_rules(source_db, "order_lines"),
        full_load={"chunk_rows": 400, "max_parallel_chunks": 1},
        capture={"flush_seconds": 1.0}, merge={"optimize_every_batches": 0, "max_files_per_batch": 1000})
    capture = CaptureThread(config).start()
    run_full_load(config, spark)
    caught_up(config, mariadb, capture)
    run_merge(spark, config)  # joins the table
    return config, capture


BEHIND = [  # updates, deletes and inserts the binlog never sees, spread over the key space
    "UPDATE order_lines SET qty = -1, note = 'behind' WHERE a IN (3, 150, 399) AND b = 'x'",
    "DELETE FROM order_lines WHERE a IN (10, 20, 30) AND b IN ('v', 'w')",  # keys the workload never touches
    "INSERT INTO order_lines VALUES (450, 'q', 1, 'behind'), (0, 'a', 2, 'behind'), (250, 'zz', 3, 'behind')",
]
COLUMNS, ORDER = "a, b, qty, note", "a, b"


@pytest.mark.slow
def test_resync_under_a_workload_brings_the_lake_back_to_the_source(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any
) -> None:
    config, capture = _loaded_lines(mariadb, source_db, lake_dir, make_config, spark)
    try:
        _behind_replication(mariadb, source_db, BEHIND)
        assert _lake(spark, config, source_db, "order_lines", COLUMNS, ORDER) != _source(
            mariadb, source_db, "order_lines", COLUMNS, ORDER)
        delivered: list[int] = []

        def merge_between_chunks(_resync: Resync, chunk: ResyncChunk) -> None:
            delivered.append(chunk.index)
            if len(delivered) == 2:  # the merge applies batches (and the due chunks) mid-resync
                run_merge(spark, config)

        with Workload(lambda: mariadb.connect(source_db), seed=7) as workload:
            report = run_resync(config, spark, f"{source_db}.order_lines", after_deliver=merge_between_chunks)
            run_merge(spark, config)
        assert workload.count > 50
        assert report.chunks > 3 and report.delivered == report.chunks
        caught_up(config, mariadb, capture)
        run_merge(spark, config)
    finally:
        capture.stop()

    lake = Lake.from_config(config)
    (resync,) = store.table_resyncs(lake, source_db, "order_lines")
    assert _lake(spark, config, source_db, "order_lines", COLUMNS, ORDER) == _source(
        mariadb, source_db, "order_lines", COLUMNS, ORDER)
    assert len({c.lsn for c in resync.chunks}) > 1  # the workload changed the table while the chunks were read
    applied = store.read_applied(lake, resync)
    assert applied.covers(resync) and not any(c.skipped for c in applied.chunks.values())
    assert sum(c.deleted for c in applied.chunks.values()) >= 6  # the rows deleted behind the binlog's back
    assert not [k for k in lake.list(store.resync_key(source_db, "order_lines", resync.resync_id))
                if "/chunk-" in k]  # the merge removed the applied chunks' data
    # a replay of the merge (nothing new) leaves the table as it is
    run_merge(spark, config)
    assert _lake(spark, config, source_db, "order_lines", COLUMNS, ORDER) == _source(
        mariadb, source_db, "order_lines", COLUMNS, ORDER)


ITEMS = "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20), qty INT)"


def test_validate_repair_resyncs_exactly_the_differing_chunks(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any
) -> None:
    _beats(mariadb)
    mariadb.execute(ITEMS, source_db)
    mariadb.execute("INSERT INTO items VALUES " + ",".join(f"({i}, 'i{i}', {i})" for i in range(1, 1001)), source_db)
    config: PipelineConfig = make_config(
        lake_dir, include_schema_rules(source_db, "items"), full_load={"chunk_rows": 200},
        capture={"flush_seconds": 0.2}, merge={"optimize_every_batches": 0})
    capture = CaptureThread(config).start()
    try:
        run_full_load(config, spark)
        caught_up(config, mariadb, capture)
        run_merge(spark, config)
        # two of the five chunks ([1, 201) and [601, 801)) change behind replication's back
        _behind_replication(mariadb, source_db, ["UPDATE items SET qty = -1 WHERE id = 50",
                                                 "DELETE FROM items WHERE id = 650",
                                                 "INSERT INTO items VALUES (700, 'gap', 0)"
                                                 " ON DUPLICATE KEY UPDATE name = 'gap'"])
        mariadb.execute("UPDATE items SET name = 'streamed' WHERE id = 900", source_db)  # a normal change
        caught_up(config, mariadb, capture)
        run_merge(spark, config)
        results = validate(spark, config)
        assert [(r.status, r.chunks, len(r.repair_ranges)) for r in results] == [("DIFFERENT", 5, 2)]
        path = Lake.from_config(config).uri(table_key(source_db, "items"))
        before = DeltaTable.forPath(spark, path).history(1).select("version").first()[0]
        (report,) = repair(spark, config, results)
        assert (report.chunks, report.delivered) == (2, 2)
        caught_up(config, mariadb, capture)
        run_merge(spark, config)
    finally:
        capture.stop()
    # the two chunks' 400 rows were resynced, but only the three that differed were written
    feed = (spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", before + 1)
            .load(path).where("_change_type != 'update_preimage'"))
    assert sorted((r.id, r._change_type, r.name, r.qty) for r in feed.collect()) == [
        (50, "update_postimage", "i50", -1), (650, "delete", "i650", 650), (700, "update_postimage", "gap", 700)]
    assert [r.status for r in validate(spark, config)] == ["OK"]
    assert _lake(spark, config, source_db, "items", "id, name, qty", "id") == _source(
        mariadb, source_db, "items", "id, name, qty", "id")


def test_resync_refuses_a_table_without_a_full_load_and_a_bad_where(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any
) -> None:
    mariadb.execute(ITEMS, source_db)
    config: PipelineConfig = make_config(lake_dir, include_schema_rules(source_db, "items"))
    with pytest.raises(ResyncError, match="run the full load first"):
        run_resync(config, spark, f"{source_db}.items")
    with pytest.raises(ResyncError, match="not a table the table mapping selects"):
        run_resync(config, spark, f"{source_db}.nope")


class Group:
    """A subprocess in its own process group, killed as a whole (python and its JVM)."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.handle = log.open("ab")
        self.process = subprocess.Popen([sys.executable, *args], stdout=self.handle, stderr=subprocess.STDOUT,
                                        cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                        start_new_session=True)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        self.process.wait(timeout=120)
        self.handle.close()

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout=timeout)
        self.handle.close()
        return code


@pytest.mark.slow
def test_resync_converges_after_sigkills_of_the_resync_and_the_merge(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any, tmp_path: Path
) -> None:
    """Capture, merge and resync as real processes: the resync is SIGKILLed after its first delivery
    and run again (it resumes), the merge is SIGKILLed after it applied a chunk and started again;
    a workload runs throughout. The lake ends equal to the source."""
    _beats(mariadb)
    mariadb.execute(LINES, source_db)
    mariadb.execute("INSERT INTO order_lines VALUES " + ",".join(
        f"({a}, '{b}', {a * 10}, 'n{a}{b}')" for a in range(1, 401) for b in LETTERS), source_db)
    config: PipelineConfig = make_config(
        lake_dir, include_schema_rules(source_db, "order_lines"),
        full_load={"chunk_rows": 300, "max_parallel_chunks": 1}, capture={"flush_seconds": 1.0},
        merge={"optimize_every_batches": 0, "trigger_seconds": 1.0})
    config_path = write_config(config, tmp_path / "pipeline.yaml")
    lake = Lake.from_config(config)
    capture = Group(["-m", "binlake.cli", "capture", "--config", str(config_path)], tmp_path / "capture.log")
    merge: Group | None = None
    try:
        wait_for(lambda: lake.exists(CHECKPOINT_KEY), 60, "the capture's first checkpoint")
        run_full_load(config, spark)
        merge = Group(["streaming/merge.py", "--config", str(config_path)], tmp_path / "merge.log")
        _behind_replication(mariadb, source_db, BEHIND)
        with Workload(lambda: mariadb.connect(source_db), seed=11):
            resync_args = ["-m", "binlake.cli", "resync", "--config", str(config_path),
                           "--table", f"{source_db}.order_lines"]
            first = Group(resync_args, tmp_path / "resync.log")
            wait_for(lambda: any(r.delivered for r in store.table_resyncs(lake, source_db, "order_lines")), 300,
                     "the first chunk delivered")
            first.kill()
            (resync,) = store.table_resyncs(lake, source_db, "order_lines")
            assert resync.pending, "the resync finished before it could be killed"
            assert Group(resync_args, tmp_path / "resync.log").wait(600) == 0  # resumes the same resync
            wait_for(lambda: bool(store.read_applied(lake, resync).chunks), 300, "a chunk applied")
            merge.kill()
            merge = Group(["streaming/merge.py", "--config", str(config_path)], tmp_path / "merge.log")
            wait_for(lambda: store.read_applied(lake, resync).covers(resync), 600, "every chunk applied")
        end = master_position(mariadb)
        wait_for(checkpoint_reached(config, end), 120, "the capture to reach the binlog end")
        wait_for(lambda: (read_progress(lake).applied_lsn or 0) >= end.lsn, 300, "the merge to catch up")
    finally:
        if merge is not None:
            merge.kill(signal.SIGTERM)
        capture.kill(signal.SIGTERM)
    (final,) = store.table_resyncs(lake, source_db, "order_lines")
    assert final.resync_id == resync.resync_id and not final.pending
    assert _lake(spark, config, source_db, "order_lines", COLUMNS, ORDER) == _source(
        mariadb, source_db, "order_lines", COLUMNS, ORDER)


def test_a_where_resync_replaces_exactly_the_chunks_holding_matching_rows(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any
) -> None:
    _beats(mariadb)
    mariadb.execute(ITEMS, source_db)
    mariadb.execute("INSERT INTO items VALUES " + ",".join(f"({i}, 'i{i}', {i})" for i in range(1, 1001)), source_db)
    config: PipelineConfig = make_config(
        lake_dir, include_schema_rules(source_db, "items"), full_load={"chunk_rows": 200},
        capture={"flush_seconds": 0.2}, merge={"optimize_every_batches": 0})
    capture = CaptureThread(config).start()
    try:
        run_full_load(config, spark)
        mariadb.execute("UPDATE items SET name = 'streamed' WHERE id = 900", source_db)  # the merge joins on it
        caught_up(config, mariadb, capture)
        run_merge(spark, config)
        _behind_replication(mariadb, source_db, ["UPDATE items SET qty = -1 WHERE id IN (50, 640)",
                                                 "DELETE FROM items WHERE id = 799"])  # chunks [1,201), [601,801)
        # matches rows of chunk [601, 801) only; the chunk is replaced whole (799 too, which does not match)
        report = run_resync(config, spark, f"{source_db}.items", where="id BETWEEN 630 AND 650")
        assert report.chunks == 1
        caught_up(config, mariadb, capture)
        run_merge(spark, config)
    finally:
        capture.stop()
    lake_rows = dict((r[0], r[1:]) for r in _lake(spark, config, source_db, "items", "id, name, qty", "id"))
    assert lake_rows[640] == ("i640", -1) and 799 not in lake_rows  # the chunk holding the matches
    assert lake_rows[50] == ("i50", 50)  # another chunk: untouched, still different from the source
    source_rows = dict((r[0], r[1:]) for r in _source(mariadb, source_db, "items", "id, name, qty", "id"))
    assert {k: v for k, v in lake_rows.items() if k != 50} == {k: v for k, v in source_rows.items() if k != 50}
