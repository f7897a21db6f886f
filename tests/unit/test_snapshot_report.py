"""Progress lines and the final report of the full load."""

from __future__ import annotations

from binlake.positions import BinlogPosition
from binlake.snapshot.report import Progress, TableReport, format_report, human_bytes


def test_report_lists_every_table_with_rate_and_position() -> None:
    low, high = BinlogPosition.of("binlog.000001", 10), BinlogPosition.of("binlog.000002", 20, "0-1-9")
    reports = [
        TableReport("a.t", "x.t", "complete", 1000, 2048, 2.0, 4, low, high),
        TableReport("a.u", "x.u", "failed", 0, None, 1.0, 0, None, None, "boom"),
    ]
    text = format_report(reports)
    lines = text.splitlines()
    assert len(lines) == 4
    assert "1,000" in lines[1] and "2.0 KiB" in lines[1] and "500" in lines[1]
    assert "binlog.000001:10 .. binlog.000002:20 gtid 0-1-9" in lines[1]
    assert "failed" in lines[2] and "boom" in lines[2]
    assert lines[3].startswith("total")


def test_human_bytes() -> None:
    assert human_bytes(None) == "-"
    assert human_bytes(10) == "10 B"
    assert human_bytes(3 * 1024**3) == "3.0 GiB"


def test_progress_counts_and_rate() -> None:
    now = [0.0]
    progress = Progress(2, lambda: now[0])
    progress.add_chunks(4)
    now[0] = 2.0
    assert progress.chunk_done(1000) == "progress: tables 0/2 done, chunks 1/4, 1,000 rows in 2.0 s (500 rows/s)"
    assert progress.table_done().startswith("progress: tables 1/2 done")
