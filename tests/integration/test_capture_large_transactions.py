"""Transactions larger than ``capture.max_transaction_rows_in_memory`` on a real MariaDB: spilled to
local files, then written as several change-log files equal, value by value, to what an in-memory
capture writes and to the committed changes (oracle); and a SIGKILL while spilling or while
writing the spilled parts loses and invents nothing."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from capture_support import (
    CaptureThread,
    captured,
    checkpoint_reached,
    comparable,
    master_position,
    oracle_changes,
    start_subprocess,
    stop_subprocess,
    wait_for,
    write_config,
)
from conftest import include_schema_rules

from binlake.capture.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from binlake.capture.status import read_status
from binlake.changelog import list_changelog, read_changelog, records
from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.lake import Lake, parse_changelog_name
from binlake.positions import BinlogPosition

MakeConfig = Callable[..., PipelineConfig]

SCHEMA_SQL = [
    "CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(40), n INT, amount DECIMAL(12,2), ts DATETIME(6))",
    "CREATE TABLE b (k1 INT, k2 INT, note VARCHAR(40), PRIMARY KEY (k1, k2))",
]


def seq(first: int, last: int) -> str:
    """A derived table of integers ``n`` from ``first`` to ``last`` (MariaDB's SEQUENCE engine)."""
    return f"(SELECT seq AS n FROM seq_{first}_to_{last}) s"


def a_rows(first: int, last: int) -> str:
    return (f"INSERT INTO a SELECT n, CONCAT('v', n), n % 97, n * 1.25, '2024-01-01' + INTERVAL n SECOND "
            f"FROM {seq(first, last)}")


def b_rows(k2: int, last_k1: int) -> str:
    return f"INSERT INTO b SELECT n, {k2}, CONCAT('note ', n, '/', {k2}) FROM {seq(0, last_k1)}"


SEED = [a_rows(1, 10_000), b_rows(0, 1_999), b_rows(1, 1_999)]

# One transaction, 25,000 row changes over both tables: inserts, updates, deletes (some of rows it inserted).
BIG_TRANSACTION = [
    a_rows(10_001, 16_000),                                                  # 6,000 I
    "UPDATE a SET n = n + 1, v = CONCAT(v, '+'), ts = ts + INTERVAL 1 DAY WHERE id <= 10000",  # 10,000 U
    "DELETE FROM b WHERE k2 = 1",                                            # 2,000 D
    b_rows(2, 1_999),                                                        # 2,000 I
    "UPDATE b SET note = CONCAT(note, ' changed') WHERE k2 = 0",             # 2,000 U
    "DELETE FROM a WHERE id BETWEEN 15001 AND 16000",                                     # 1,000 D
    a_rows(20_001, 22_000),                                                  # 2,000 I
]
BIG_ROWS = 25_000


def run_sql(db: LocalMariaDB, schema: str, statements: list[str], transaction: bool = False) -> None:
    with db.connect(schema) as conn, conn.cursor() as cur:
        if transaction:
            cur.execute("BEGIN")
        for statement in statements:
            cur.execute(statement)
        if transaction:
            cur.execute("COMMIT")


def big_transaction(db: LocalMariaDB, schema: str) -> tuple[BinlogPosition, BinlogPosition, str]:
    """Run the big transaction between two small ones; (position before it, after it, its GTID)."""
    run_sql(db, schema, ["INSERT INTO a VALUES (900001, 'before', 1, 1.00, NOW(6))"])
    before = master_position(db)
    run_sql(db, schema, BIG_TRANSACTION, transaction=True)
    after = master_position(db)
    gtid = str(db.execute("SELECT @@gtid_binlog_pos")[0][0])
    run_sql(db, schema, ["INSERT INTO a VALUES (900002, 'after', 2, 2.00, NOW(6))"])
    return before, after, gtid


def capture_until(config: PipelineConfig, end: BinlogPosition) -> CaptureThread:
    capture = CaptureThread(config).start()
    try:
        wait_for(lambda: capture.error is not None or checkpoint_reached(config, end)(), 120,
                 f"the checkpoint to reach {end}")
    finally:
        capture.stop()
    return capture


def binlog_with_a_big_transaction(
    db: LocalMariaDB, schema: str
) -> tuple[BinlogPosition, BinlogPosition, BinlogPosition, str, BinlogPosition]:
    """Tables and seed rows, then the big transaction: (start, before it, after it, its GTID, end)."""
    run_sql(db, schema, SCHEMA_SQL + SEED)
    start = master_position(db)
    before, after, gtid = big_transaction(db, schema)
    return start, before, after, gtid, master_position(db)


def files_in(lake: Lake, first: BinlogPosition, last: BinlogPosition) -> list[str]:
    """Change-log files whose records start inside ``(first, last]``."""
    return [key for key in list_changelog(lake) if first.lsn < parse_changelog_name(key)[0] <= last.lsn]


def files_holding(lake: Lake, first: BinlogPosition, last: BinlogPosition) -> list[str]:
    """Change-log files holding at least one record inside ``(first, last)``, wherever they start
    (a caught-up flush may put the transaction in the same file as the change before it)."""
    return [key for key in list_changelog(lake)
            if any(first.lsn < r["lsn"] < last.lsn for r in records(read_changelog(lake, [key], dedupe=False)))]


def test_a_spilled_transaction_equals_the_in_memory_capture_and_the_oracle(
    mariadb: LocalMariaDB, source_db: str, tmp_path: Path, make_config: MakeConfig
) -> None:
    start, before, after, gtid, end = binlog_with_a_big_transaction(mariadb, source_db)
    spill_dir = tmp_path / "spill"

    def config(name: str, bound: int) -> PipelineConfig:
        return make_config(tmp_path / name, include_schema_rules(source_db), capture={
            "start": "position", "start_file": start.file, "start_pos": start.pos, "flush_seconds": 0.2,
            "max_transaction_rows_in_memory": bound, "spill_dir": str(spill_dir)})

    spilling, in_memory = config("spilled", 1_000), config("in-memory", 10_000_000)
    spilled_run = capture_until(spilling, end)
    capture_until(in_memory, end)

    got = captured(spilling)
    assert got == captured(in_memory)                     # every field of every record, in (lsn, row_idx) order
    assert comparable(got) == comparable(oracle_changes(mariadb, source_db, start, end))
    keys = [(r["lsn"], r["row_idx"]) for r in got]
    assert keys == sorted(keys) and len(set(keys)) == len(keys) == BIG_ROWS + 2
    big = [r for r in got if before.lsn < r["lsn"] < after.lsn]
    assert len(big) == BIG_ROWS and {r["gtid"] for r in big} == {gtid}
    assert len({(r["xid"], r["commit_ts"]) for r in big}) == 1 and big[0]["xid"] is not None
    assert {r["op"] for r in big} == {"I", "U", "D"} and {r["source_table"] for r in big} == {"a", "b"}
    assert [r["after"]["v"] for r in got[:1] + got[-1:]] == ["before", "after"]

    lake = Lake.from_config(spilling)
    parts = files_in(lake, before, after)
    spill_files = (read_status(lake) or {}).get("spill_files", 0)
    assert spill_files >= 20 and len(parts) in (spill_files, spill_files + 1)  # the transaction spans many files …
    assert len(files_holding(Lake.from_config(in_memory), before, after)) == 1   # … not one
    for key in parts:                                            # each ordered, within the transaction
        part = records(read_changelog(lake, [key], dedupe=False))
        assert [(r["lsn"], r["row_idx"]) for r in part] == sorted((r["lsn"], r["row_idx"]) for r in part)
        assert {r["gtid"] for r in part if r["lsn"] < after.lsn} == {gtid}
    checkpoint = load_checkpoint(lake)
    assert checkpoint is not None and checkpoint.position.lsn >= end.lsn > after.lsn
    assert spilled_run.runner.metrics.spilled_transactions == 1
    assert list(spill_dir.iterdir()) == []                      # the private folder went with the capture


def spill_parts(spill_dir: Path) -> list[Path]:
    return list(spill_dir.glob("binlake-spill-*/part-*.arrow"))


def kill_when(process: Any, ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 120
    while not ready():
        assert process.poll() is None, f"the capture exited before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def test_sigkill_while_spilling_and_while_writing_spilled_parts(
    mariadb: LocalMariaDB, source_db: str, tmp_path: Path, make_config: MakeConfig
) -> None:
    start, before, after, gtid, end = binlog_with_a_big_transaction(mariadb, source_db)
    spill_dir = tmp_path / "spill"
    config = make_config(tmp_path / "lake", include_schema_rules(source_db), capture={
        "start": "checkpoint", "flush_seconds": 0.3, "max_transaction_rows_in_memory": 200,
        "spill_dir": str(spill_dir)})
    lake = Lake.from_config(config)
    save_checkpoint(lake, Checkpoint(start))
    config_path, log_path = write_config(config, tmp_path / "capture.yaml"), tmp_path / "capture.log"

    # 1. killed while the open transaction spills: parts on local disk, none of its records in the lake
    process = start_subprocess(config_path, log_path)
    kill_when(process, lambda: len(spill_parts(spill_dir)) >= 5, "the big transaction to spill")
    assert files_in(lake, before, after) == []
    assert spill_parts(spill_dir)                                # left behind by the killed process

    # 2. killed while the committed transaction's parts become change-log files
    process = start_subprocess(config_path, log_path)
    kill_when(process, lambda: len(files_in(lake, before, after)) >= 3, "the spilled parts to be written")
    written = len(files_in(lake, before, after))
    assert written < BIG_ROWS // 200                             # killed half-way through them
    checkpoint = load_checkpoint(lake)
    assert checkpoint is not None and checkpoint.position.lsn < after.lsn

    # 3. a restart finishes the job; a clean stop leaves no scratch files behind
    process = start_subprocess(config_path, log_path)
    try:
        wait_for(checkpoint_reached(config, end), 120, "the restarted capture to catch up")
    finally:
        assert stop_subprocess(process) == 0, log_path.read_text()[-3000:]
    assert list(spill_dir.iterdir()) == []
    assert "spill files" in log_path.read_text()

    got = captured(config)
    assert comparable(got) == comparable(oracle_changes(mariadb, source_db, start, end))
    big = [r for r in got if before.lsn < r["lsn"] < after.lsn]
    assert len(big) == BIG_ROWS and {(r["gtid"], r["xid"], r["commit_ts"]) for r in big} == {
        (gtid, big[0]["xid"], big[0]["commit_ts"])}
    raw = captured(config, dedupe=False)
    copies: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for record in raw:
        copies.setdefault((record["lsn"], record["row_idx"]), []).append(record)
    assert len(raw) >= len(got) + written * 200                  # the killed run's parts were written again
    assert all(all(c == same[0] for c in same) for same in copies.values())   # identical copies only
