"""Online resync of a 1M-row table under a steady workload, with SIGKILLs of the resync, the capture
and the merge at random points (issue 9, "What must hold" 1), slow.

A composite-key table of 1,000,000 rows (integers, a VARCHAR, a nullable TEXT, a DECIMAL, a
DATETIME(6)) is loaded, then rows are changed behind replication's back (``SET sql_log_bin = 0``:
updated, deleted, inserted) and the lake is checked to still hold the old rows. Capture, merge and
``binlake resync`` run as real processes (``binlake capture``, ``streaming/merge.py``,
``binlake resync``), each in its own process group. A workload of ~200 transactions/s runs from
before the resync until it has delivered every chunk and every kill has fired (then the merge works
off its backlog and the last chunks): updates and deletes anywhere, inserts of new keys and re-inserts of deleted ones,
two-statement transactions — and, following the resync's manifest, deletes of rows whose chunk is not
re-read yet and updates of rows whose chunk was just re-read. While the resync runs (from its start
until the merge has applied its last chunk) the resync job, the capture and the merge are each
SIGKILLed at least once (the merge twice) at seeded random points and started again; the seed is
printed (``BINLAKE_KILL_SEED`` replays one).

A reader (delta-rs, another process's view of the table) counts the lake table's rows all along:
the count never drops below the rows the source could have lost by then (1M minus the rows deleted
behind replication's back and the workload's deletes so far) nor rises above what it could have
gained — a chunk applied in two steps, or a table emptied and refilled, would show.

After the workload stops and the merge has caught up, the lake table equals the source value by
value (every row, every column, streamed in key order from both sides: no duplicate key, no row
missing or extra), the rows changed behind replication's back are repaired, and every chunk of the
one resync was applied.

Run alone: ``.venv/bin/pytest -m slow tests/integration/test_resync_kills.py -s``.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pymysql
import pytest
from capture_support import master_position, wait_for, write_config
from conftest import include_schema_rules
from deltalake import DeltaTable, QueryBuilder
from test_merge_end_to_end import Group

from binlake.chunks import ChunkRange
from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.lake import CHECKPOINT_KEY, Lake, table_key
from binlake.merge.handoff import joined_load, read_handoff
from binlake.merge.summary import TableName
from binlake.progress import read_progress
from binlake.resync import store
from binlake.resync.manifest import Resync
from binlake.snapshot.job import run_full_load
from binlake.snapshot.session import SparkOnDemand
from binlake.spark import build_session

pytestmark = [pytest.mark.slow, pytest.mark.spark]

TABLE = "ledger"
ACCOUNTS, LINES = 100_000, 10  # 1,000,000 rows: (acct, line) for acct in 1..100000, line in 0..9
ROWS = ACCOUNTS * LINES
CHUNK_ROWS = 200_000  # five chunks for the full load and the resync
# Lake tables with deletion vectors: at 200 changes/s on random keys every data file holds a changed key,
# so with the default (broad: copy-on-write) every batch and every chunk rewrote the whole table — on the
# shared 2-core machine 35-130 s per batch and 45 s to 4 min per chunk, and the resync did not finish in
# 15 minutes. BINLAKE_KILL_FEATURES=broad runs the same case on default tables.
FEATURES = os.environ.get("BINLAKE_KILL_FEATURES", "modern")
RATE = 200.0  # workload transactions per second
SAMPLE_SECONDS = 2.0  # between two counts of the lake table's rows by the reader
COLUMNS = "acct, line, sku, note, amount, happened, qty"
ORDER = "acct, line"
DDL = f"""CREATE TABLE {TABLE} (
  acct INT NOT NULL, line SMALLINT NOT NULL, sku VARCHAR(16) NOT NULL, note TEXT,
  amount DECIMAL(14,4) NOT NULL, happened DATETIME(6) NOT NULL, qty INT NOT NULL,
  PRIMARY KEY (acct, line))"""
FILL = f"""INSERT INTO {TABLE}
SELECT (seq - 1) DIV {LINES} + 1, (seq - 1) MOD {LINES}, CONCAT('S', LPAD(seq MOD 9973, 5, '0')),
       IF(seq MOD 17 = 0, NULL, CONCAT('note ', seq, REPEAT('x', seq MOD 7))),
       seq / 7, TIMESTAMP('2024-01-01') + INTERVAL seq SECOND + INTERVAL (seq MOD 1000) MICROSECOND,
       seq MOD 100
FROM seq_1_to_{ROWS}"""

# accounts the workload never touches: only the resync can repair what happens to them behind the binlog
BEHIND_ACCOUNTS = (7, 12_345, 33_333, 50_001, 77_777, 99_990)
BEHIND = [
    f"UPDATE {TABLE} SET qty = -1, note = 'behind', amount = -0.5 WHERE acct IN {BEHIND_ACCOUNTS} AND line < 3",
    f"DELETE FROM {TABLE} WHERE acct IN {BEHIND_ACCOUNTS} AND line BETWEEN 5 AND 7",
    f"INSERT INTO {TABLE} SELECT acct, 20 + line, 'BEHIND', NULL, 1.25, '2030-01-01 00:00:00.5', 1 "
    f"FROM {TABLE} WHERE acct IN {BEHIND_ACCOUNTS} AND line < 2",
]
BEHIND_UPDATED = len(BEHIND_ACCOUNTS) * 3
BEHIND_DELETED = len(BEHIND_ACCOUNTS) * 3
BEHIND_INSERTED = len(BEHIND_ACCOUNTS) * 2


def lake_path(config: PipelineConfig) -> str:
    return Lake.from_config(config).uri(table_key(config_schema(config), TABLE))


def config_schema(config: PipelineConfig) -> str:
    return str(config.table_mappings["rules"][0]["object-locator"]["schema-name"])


def lake_query(path: str, sql: str) -> Iterator[pa.RecordBatch]:
    """``sql`` on the lake table as ``t`` through delta-rs (a reader outside binlake's processes)."""
    for batch in QueryBuilder().register("t", DeltaTable(path)).execute(sql):
        yield pa.record_batch(batch)


def lake_count(path: str) -> int:
    (batch,) = list(lake_query(path, "SELECT count(*) AS n FROM t"))
    return int(batch.column(0)[0].as_py())


def lake_rows_where(path: str, where: str) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for batch in lake_query(path, f"SELECT {COLUMNS} FROM t WHERE {where} ORDER BY {ORDER}"):
        rows += [tuple(r.values()) for r in batch.to_pylist()]
    return rows


def source_rows_where(db: LocalMariaDB, database: str, where: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.execute(f"SELECT {COLUMNS} FROM {TABLE} WHERE {where} ORDER BY {ORDER}", database)]


def compare_all(db: LocalMariaDB, database: str, path: str) -> tuple[int, list[str]]:
    """Stream both sides in key order and compare row by row, value by value; returns the source
    row count and the first differences found (at most 20), duplicates of a key included."""
    differences: list[str] = []
    conn = db.connect(database)
    try:
        with conn.cursor(pymysql.cursors.SSCursor) as cur:
            cur.execute(f"SELECT {COLUMNS} FROM {TABLE} ORDER BY {ORDER}")
            source = (tuple(r) for r in cur)
            lake = (tuple(r.values()) for b in lake_query(path, f"SELECT {COLUMNS} FROM t ORDER BY {ORDER}")
                    for r in b.to_pylist())
            count, previous = 0, None
            s, t = next(source, None), next(lake, None)
            while (s is not None or t is not None) and len(differences) < 20:
                if t is not None and previous is not None and t[:2] == previous:
                    differences.append(f"duplicate key in the lake: {t}")
                    t = next(lake, None)
                elif s is not None and t is not None and s[:2] == t[:2]:
                    if s != t:
                        differences.append(f"source {s} != lake {t}")
                    count, previous = count + 1, t[:2]
                    s, t = next(source, None), next(lake, None)
                elif t is None or (s is not None and s[:2] < t[:2]):
                    differences.append(f"missing in the lake: {s}")
                    count, s = count + 1, next(source, None)
                else:
                    differences.append(f"extra in the lake: {t}")
                    previous, t = t[:2], next(lake, None)
            for _ in source:
                count += 1
    finally:
        conn.close()
    return count, differences


class Chunks:
    """The test's view of the resync's chunks (from its manifest): the key ranges not re-read yet and
    the range re-read last, for the workload to aim at."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: list[ChunkRange] = []
        self.fresh: ChunkRange | None = None

    def update(self, resync: Resync | None) -> None:
        if resync is None:
            return
        delivered = sorted(resync.delivered, key=lambda c: c.read_at or "")
        with self.lock:
            self.pending = [c.range for c in resync.chunks if not c.delivered]
            self.fresh = delivered[-1].range if delivered else None

    def pick(self, rng: random.Random, fresh: bool) -> ChunkRange | None:
        with self.lock:
            if fresh:
                return self.fresh
            return rng.choice(self.pending) if self.pending else None


def account_in(rng: random.Random, chunk: ChunkRange | None) -> int:
    low = 1 if chunk is None or chunk.start is None else int(chunk.start[0])  # type: ignore[arg-type]
    high = ACCOUNTS if chunk is None or chunk.end is None else int(chunk.end[0])  # type: ignore[arg-type]
    return rng.randint(max(1, low), max(1, min(high, ACCOUNTS)))


@dataclass
class Workload:
    """~``rate`` transactions/s on the table, paced; counts the rows it inserted and deleted."""

    connect: Callable[[], Any]
    chunks: Chunks
    seed: int
    rate: float = RATE
    transactions: int = 0
    inserted: int = 0
    deleted: int = 0
    aimed: dict[str, int] = field(default_factory=lambda: {"fresh updates": 0, "pending deletes": 0})
    error: BaseException | None = None
    started: float = 0.0
    seconds: float = 0.0  # how long it ran
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _gone: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=500))

    def start(self) -> Workload:
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        if self.stopped:
            return
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)
        self.seconds = time.monotonic() - self.started
        if self.error is not None:
            raise self.error

    def _key(self, rng: random.Random, chunk: ChunkRange | None = None) -> tuple[int, int]:
        while True:
            acct = account_in(rng, chunk)
            if acct not in BEHIND_ACCOUNTS:
                return acct, rng.randrange(LINES)

    def _update(self, cur: Any, key: tuple[int, int]) -> None:
        cur.execute(f"UPDATE {TABLE} SET qty = qty + 1, note = %s, amount = amount + 0.0001, happened = NOW(6) "
                    "WHERE acct = %s AND line = %s", (f"w{self.transactions}", *key))

    def _delete(self, cur: Any, key: tuple[int, int]) -> None:
        self.deleted += cur.execute(f"DELETE FROM {TABLE} WHERE acct = %s AND line = %s", key)
        self._gone.append(key)

    def _insert(self, cur: Any, key: tuple[int, int]) -> None:
        self.inserted += cur.execute(
            f"INSERT IGNORE INTO {TABLE} VALUES (%s, %s, 'NEW', %s, 9.9999, NOW(6), %s)",
            (*key, None if self.transactions % 5 == 0 else f"i{self.transactions}", self.transactions % 1000))

    def _one(self, conn: Any, rng: random.Random) -> None:
        op = rng.random()
        with conn.cursor() as cur:
            if op < 0.30:
                self._update(cur, self._key(rng))
            elif op < 0.45:
                chunk = self.chunks.pick(rng, fresh=True)
                self._update(cur, self._key(rng, chunk))
                self.aimed["fresh updates"] += chunk is not None
            elif op < 0.60:
                chunk = self.chunks.pick(rng, fresh=False)
                self._delete(cur, self._key(rng, chunk))
                self.aimed["pending deletes"] += chunk is not None
            elif op < 0.65:
                self._delete(cur, self._key(rng))
            elif op < 0.80:
                acct, line = self._key(rng)
                self._insert(cur, (acct, LINES + line))  # a new key inside every chunk's range
            elif op < 0.88 and self._gone:
                self._insert(cur, self._gone.popleft())  # a deleted row comes back
            else:  # two changes in one transaction
                cur.execute("BEGIN")
                self._update(cur, self._key(rng))
                self._delete(cur, self._key(rng))
                cur.execute("COMMIT")

    def _run(self) -> None:
        rng = random.Random(self.seed)
        conn = self.connect()
        try:
            while not self._stop.is_set():
                self._one(conn, rng)
                self.transactions += 1
                ahead = self.transactions / self.rate - (time.monotonic() - self.started)
                if ahead > 0:
                    self._stop.wait(ahead)
        except BaseException as exc:
            self.error = exc
        finally:
            conn.close()


@dataclass
class Sampler:
    """Counts the lake table's rows every :data:`SAMPLE_SECONDS` (delta-rs) with the workload's counters read
    after each count; errors of the reader are kept, not raised."""

    path: str
    workload: Workload
    samples: list[tuple[int, int, int]] = field(default_factory=list)  # (count, deleted, inserted)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            try:
                count = lake_count(self.path)
            except Exception as exc:  # a reader racing a writer: recorded, asserted rare below
                self.errors.append(repr(exc)[:300])
                continue
            self.samples.append((count, self.workload.deleted, self.workload.inserted))


@dataclass
class Kill:
    """SIGKILL ``target`` once the resync has delivered ``delivered`` and the merge applied ``applied``
    chunks, and ``delay`` seconds more have passed; start it again ``restart_after`` seconds later."""

    target: str
    delivered: int
    applied: int
    delay: float
    restart_after: float
    due: float | None = None
    fired: str | None = None  # what the resync had done when it fired


class Processes:
    """The capture, merge and resync processes of the test, each in its own process group."""

    def __init__(self, config_path: Path, logs: Path, table: str) -> None:
        self.config = str(config_path)
        self.logs = logs
        self.table = table
        self.running: dict[str, Group] = {}

    def args(self, target: str) -> list[str]:
        python = sys.executable
        return {"capture": [python, "-m", "binlake.cli", "capture", "--config", self.config],
                "merge": [python, "streaming/merge.py", "--config", self.config],
                "resync": [python, "-m", "binlake.cli", "resync", "--config", self.config, "--table", self.table],
                }[target]

    def start(self, target: str) -> None:
        assert not self.alive(target), f"{target} is running already: one process of each kind at a time"
        self.running[target] = Group(self.args(target), self.logs / f"{target}.log")

    def alive(self, target: str) -> bool:
        group = self.running.get(target)
        return group is not None and group.process.poll() is None

    def kill(self, target: str, sig: int = signal.SIGKILL) -> None:
        group = self.running.pop(target, None)
        if group is not None:
            group.kill(sig)

    def log_tail(self, target: str) -> str:
        return (self.logs / f"{target}.log").read_text(errors="replace")[-4000:]


def beat(db: LocalMariaDB) -> None:
    db.execute("CREATE DATABASE IF NOT EXISTS beats")
    db.execute("CREATE TABLE IF NOT EXISTS beats.beat (id INT AUTO_INCREMENT PRIMARY KEY)")
    db.execute("INSERT INTO beats.beat VALUES ()")  # an unselected table moves the capture's checkpoint on


def behind_replication(db: LocalMariaDB, database: str) -> None:
    conn = db.connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_log_bin = 0")
            for sql in BEHIND:
                cur.execute(sql)
    finally:
        conn.close()


def merged_up_to(db: LocalMariaDB, lake: Lake, timeout: float, what: str) -> None:
    """Wait until the capture and then the merge have every change up to the binlog end now."""
    end = master_position(db)

    def applied() -> bool:
        progress = read_progress(lake)
        if (progress.captured_lsn or 0) < end.lsn:
            beat(db)
            return False
        return (progress.applied_lsn or 0) >= end.lsn

    deadline = time.monotonic() + timeout
    while not applied():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(1.0)


def test_resync_of_a_million_rows_converges_through_sigkills_of_the_resync_the_capture_and_the_merge(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, tmp_path: Path
) -> None:
    seed = int(os.environ.get("BINLAKE_KILL_SEED") or random.randrange(2**31))
    print(f"\nresync kill test seed: {seed} (BINLAKE_KILL_SEED={seed} replays it)")
    rng = random.Random(seed)
    started = time.monotonic()
    beat(mariadb)
    mariadb.execute(DDL, source_db)
    mariadb.execute(FILL, source_db)
    mariadb.execute(f"ANALYZE TABLE {TABLE}", source_db)
    print(f"filled {ROWS:,} rows in {time.monotonic() - started:.0f} s")
    config: PipelineConfig = make_config(
        lake_dir, include_schema_rules(source_db, TABLE),
        full_load={"chunk_rows": CHUNK_ROWS, "max_parallel_chunks": 1}, capture={"flush_seconds": 1.0},
        merge={"trigger_seconds": 2.0, "optimize_every_batches": 0}, lake={"reader_compatibility": FEATURES})
    config_path = write_config(config, tmp_path / "pipeline.yaml")
    lake = Lake.from_config(config)
    path = lake_path(config)
    name = TableName(source_db, TABLE, source_db, TABLE)
    processes = Processes(config_path, tmp_path, f"{source_db}.{TABLE}")
    chunks = Chunks()
    workload = Workload(lambda: mariadb.connect(source_db), chunks, seed=rng.randrange(2**31))
    sampler = Sampler(path, workload)
    kills: list[Kill] = []
    try:
        processes.start("capture")
        wait_for(lambda: lake.exists(CHECKPOINT_KEY), 90, "the capture's first checkpoint")
        loaded_at = time.monotonic()
        sessions = SparkOnDemand(lambda: build_session(config, "resync-kills"), config.spark.master)
        (load,) = run_full_load(config, sessions)  # the direct path needs no Spark here; else it starts one
        if sessions.started:
            sessions.get().stop()
        print(f"full load: {load.rows:,} rows in {time.monotonic() - loaded_at:.0f} s")
        assert lake_count(path) == ROWS
        behind_replication(mariadb, source_db)
        processes.start("merge")
        mariadb.execute(f"UPDATE {TABLE} SET qty = qty + 1 WHERE acct = 1 AND line = 0", source_db)  # joins it
        wait_for(lambda: _joined(lake, name), 600, "the merge to join the table")
        merged_up_to(mariadb, lake, 600, "the merge to pass the changes made behind replication's back")
        behind = f"acct IN {BEHIND_ACCOUNTS}"
        assert lake_rows_where(path, behind) != source_rows_where(mariadb, source_db, behind)
        assert len(lake_rows_where(path, f"{behind} AND line >= 20")) == 0  # the lake is wrong, as planned
        workload.start()
        sampler.start()

        processes.start("resync")
        resync_started = time.monotonic()
        kills = [  # the resync job while it delivers; the capture; the merge early and late in the applying
            Kill("resync", rng.randint(1, 2), 0, rng.uniform(0, 3), 0.0),
            Kill("capture", rng.randint(1, 4), 0, rng.uniform(0, 4), rng.uniform(0, 5)),
            Kill("merge", 0, 1, rng.uniform(0, 8), rng.uniform(0, 3)),
            Kill("merge", 0, rng.randint(2, 3), rng.uniform(0, 8), rng.uniform(0, 3)),
        ]
        resync = _watch(lake, source_db, processes, chunks, kills, 2400, workload)  # a loaded machine: ~20 min
        applied_seconds = time.monotonic() - resync_started
        workload.stop()
        merged_up_to(mariadb, lake, 1200, "the merge to catch up after the workload")
        sampler.stop()
    finally:
        if workload._thread is not None:
            workload.stop()
        if sampler._thread is not None and sampler._thread.is_alive():
            sampler.stop()
        for target in ("resync", "merge", "capture"):
            processes.kill(target, signal.SIGTERM)
    for kill in kills:
        print(f"  SIGKILL {kill.target:8} after {kill.delay:.1f} s delay, when {kill.fired}")
    print(f"workload: {workload.transactions:,} transactions in {workload.seconds:.0f} s "
          f"({workload.transactions / max(workload.seconds, 1):.0f}/s), {workload.inserted:,} rows inserted, "
          f"{workload.deleted:,} deleted, {workload.aimed}")
    print(f"resync {resync.resync_id}: {len(resync.chunks)} chunks at {len({c.lsn for c in resync.chunks})} "
          f"snapshot lsns, applied {applied_seconds:.0f} s after it started")
    counts = [c for c, _, _ in sampler.samples]
    print(f"reader: {len(counts)} counts, min {min(counts):,}, max {max(counts):,}; {len(sampler.errors)} errors")

    assert all(k.fired for k in kills), [(k.target, k.fired) for k in kills]
    assert len({c.lsn for c in resync.chunks}) > 1
    applied = store.read_applied(lake, resync)
    assert applied.covers(resync), applied
    assert sum(c.deleted for c in applied.chunks.values()) >= BEHIND_DELETED
    assert workload.aimed["fresh updates"] > 0 and workload.aimed["pending deletes"] > 0

    assert len(counts) >= 20 and len(sampler.errors) <= len(counts) // 10, sampler.errors[:5]
    for count, deleted, inserted in sampler.samples:  # never empty, never half old
        assert ROWS - BEHIND_DELETED - deleted <= count <= ROWS + BEHIND_INSERTED + inserted, (count, deleted)

    source_count, differences = compare_all(mariadb, source_db, path)
    assert differences == [], differences
    assert lake_count(path) == source_count == ROWS - BEHIND_DELETED + BEHIND_INSERTED + (
        workload.inserted - workload.deleted)
    behind = f"acct IN {BEHIND_ACCOUNTS}"
    assert lake_rows_where(path, behind) == source_rows_where(mariadb, source_db, behind)


def _joined(lake: Lake, name: TableName) -> bool:
    handoff = read_handoff(lake, name)
    return handoff is not None and joined_load(lake, name) == handoff.load_id


def _resync_of(lake: Lake, schema: str) -> Resync | None:
    resyncs = store.table_resyncs(lake, schema, TABLE)
    assert len(resyncs) <= 1, [r.resync_id for r in resyncs]  # a restarted job resumes its resync
    return resyncs[-1] if resyncs else None


def _watch(lake: Lake, schema: str, processes: Processes, chunks: Chunks, kills: list[Kill],
           timeout: float, workload: Workload) -> Resync:
    """Fire the kills (and restarts) while the resync runs; return the resync once the merge has
    applied every chunk. A kill whose moment never came before that fails the test. The workload is
    stopped once every chunk is delivered and every kill has fired: a merge slower than the workload
    (the machine is shared) would otherwise never reach the last chunks' snapshot positions."""
    restarts: list[tuple[float, str]] = []
    deadline = time.monotonic() + timeout
    resync: Resync | None = None
    while True:
        if all(k.fired for k in kills) and resync is not None and not resync.pending and not workload.stopped:
            workload.stop()
            print(f"workload stopped: every chunk delivered, every kill fired; {workload.transactions:,} transactions")
        assert time.monotonic() < deadline, f"the resync did not finish in {timeout} s: " + "".join(
            f"\n--- {t} ---\n{processes.log_tail(t)}" for t in ("resync", "merge", "capture"))
        resync = _resync_of(lake, schema)
        chunks.update(resync)
        applied = None if resync is None else store.read_applied(lake, resync)
        if resync is not None and applied is not None and applied.covers(resync):
            break
        delivered = 0 if resync is None else len(resync.delivered)
        merged = 0 if applied is None else len(applied.chunks)
        now = time.monotonic()
        for kill in kills:
            if kill.due is None and resync is not None and delivered >= kill.delivered and merged >= kill.applied:
                kill.due = now + kill.delay
            if kill.fired is None and kill.due is not None and now >= kill.due and processes.alive(kill.target):
                done = f"{delivered}/{len(resync.chunks) if resync else '?'} delivered, {merged} applied"
                if kill.target == "resync":
                    assert resync is not None and resync.pending, f"the resync job finished before its kill ({done})"
                processes.kill(kill.target)
                kill.fired = done
                restarts.append((now + kill.restart_after, kill.target))
        for restart in [r for r in restarts if r[0] <= now]:
            restarts.remove(restart)
            processes.start(restart[1])
        job = processes.running.get("resync")
        if job is not None and job.process.poll() is not None:
            assert job.process.returncode == 0, processes.log_tail("resync")
        time.sleep(0.2)
    for _, target in restarts:
        processes.start(target)
    assert resync is not None
    return resync
