"""Memory is bounded by bytes, not only rows: one transaction of 2,000 rows of 1 MiB each (2 GiB,
far below the row bound) captured by a real ``binlake capture`` process stays within its byte
bound (peak RSS, ``VmHWM``, printed), and the change log holds every row exactly (an MD5 of each
value compared with the source's own ``MD5()``)."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from capture_support import (
    checkpoint_reached,
    master_position,
    start_subprocess,
    stop_subprocess,
    wait_for,
    write_config,
)
from conftest import include_schema_rules

from binlake.capture.status import read_status
from binlake.changelog import list_changelog
from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.lake import Lake

MakeConfig = Callable[..., PipelineConfig]
MIB = 1024 * 1024
BOUND = 64 * MIB


def peak_rss(pid: int) -> int:
    """``VmHWM`` (peak resident set size) of process ``pid``, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


def changelog_digests(lake: Lake) -> tuple[dict[int, str], int]:
    """``id → MD5 of payload`` of every inserted row in the change log (one file in memory at a time),
    and how many distinct ``(lsn, row_idx)`` records there are."""
    digests: dict[int, str] = {}
    seen: set[tuple[int, int]] = set()
    for key in list_changelog(lake):
        table = pq.read_table(io.BytesIO(lake.get_bytes(key)), columns=["lsn", "row_idx", "after"])
        for lsn, idx, after in zip(*(table.column(c).to_pylist() for c in ("lsn", "row_idx", "after")),
                                       strict=True):
            seen.add((lsn, idx))
            row = json.loads(after)
            if "payload" in row:                                         # else the mark table's row
                digests[int(row["id"])] = hashlib.md5(row["payload"].encode()).hexdigest()
        del table
    return digests, len(seen)


@pytest.mark.slow
def test_a_2000_by_1mib_transaction_stays_under_the_byte_bound(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: MakeConfig, tmp_path: Path
) -> None:
    rows = 2_000
    mariadb.execute("CREATE TABLE big (id INT PRIMARY KEY, payload LONGTEXT)", source_db)
    mariadb.execute("CREATE TABLE mark (id INT PRIMARY KEY)", source_db)
    config = make_config(lake_dir, include_schema_rules(source_db), capture={
        "start": "end", "flush_seconds": 0.5, "max_transaction_bytes_in_memory": BOUND, "flush_bytes": BOUND,
        "spill_dir": str(tmp_path / "spill")})
    lake = Lake.from_config(config)
    process = start_subprocess(write_config(config, tmp_path / "capture.yaml"), tmp_path / "capture.log")
    try:
        wait_for(lambda: (read_status(lake) or {}).get("state") == "running", 60, "the capture to run")
        wait_for(checkpoint_reached(config, master_position(mariadb)), 30, "the capture to be caught up")
        baseline = peak_rss(process.pid)
        # one transaction: 2,000 rows of 1 MiB (an MD5 repeated 32,768 times, different per row)
        mariadb.execute(f"INSERT INTO big SELECT seq, REPEAT(MD5(seq), 32768) FROM seq_1_to_{rows}", source_db)
        mariadb.execute("INSERT INTO mark VALUES (1)", source_db)   # a commit after it (the binlog rotated)
        end = master_position(mariadb)
        wait_for(lambda: process.poll() is not None or checkpoint_reached(config, end)(), 600,
                 "the capture to write the transaction")
        assert process.poll() is None, (tmp_path / "capture.log").read_text()[-3000:]
        peak = peak_rss(process.pid)
    finally:
        assert stop_subprocess(process) == 0, (tmp_path / "capture.log").read_text()[-3000:]
    status = read_status(lake) or {}
    print(f"\ncapture peak RSS {peak / MIB:.0f} MiB (baseline {baseline / MIB:.0f} MiB, +{(peak - baseline) / MIB:.0f} "
          f"MiB) for a {rows} x 1 MiB transaction with capture.max_transaction_bytes_in_memory = "
          f"{BOUND // MIB} MiB; {status.get('spill_files')} spill files")
    assert status.get("spilled_transactions") == 1 and (status.get("spill_files") or 0) >= rows // 64
    assert peak - baseline < 4 * BOUND, "memory grew beyond the byte bound"
    source = {int(str(i)): str(d) for i, d in mariadb.execute("SELECT id, MD5(payload) FROM big", source_db)}
    digests, records = changelog_digests(lake)
    assert records == rows + 1 and len(source) == rows
    assert digests == source
