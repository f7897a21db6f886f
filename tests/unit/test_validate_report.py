"""binlake.validation.report: statuses, exit codes and the readable report."""

from __future__ import annotations

from binlake.validation.report import TableValidation, exit_status, format_report


def test_status_and_exit_code() -> None:
    ok = TableValidation("s.ok", source_rows=5, lake_rows=5, chunks=2, method="checksum", checksum_chunks=2)
    moving = TableValidation("s.moving", in_flight=1)
    different = TableValidation("s.diff", missing=1)
    failed = TableValidation("s.err", error="no lake table yet")
    assert [t.status for t in (ok, moving, different, failed)] == ["OK", "IN FLIGHT", "DIFFERENT", "ERROR"]
    assert exit_status([ok]) == 0
    assert exit_status([ok, moving]) == 3
    assert exit_status([moving, different]) == 1
    assert exit_status([ok, failed]) == 1


def test_report_names_the_method_the_checksum_chunks_and_why_rows_were_read() -> None:
    results = [
        TableValidation("shop.items", source_rows=300, lake_rows=300, chunks=5, differing_chunks=[3], mismatched=1,
                        method="checksum", checksum_chunks=4,
                        samples=[{"kind": "mismatched", "key": {"id": 7}, "source_lsn": 11, "lake_lsn": 10}]),
        TableValidation("shop.prices", source_rows=3, lake_rows=3, chunks=1, method="rows",
                        note="compared by rows: column p: double has no exact text"),
    ]
    lines = format_report(results).splitlines()
    assert lines[1].split() == ["table", "status", "source", "lake", "chunks", "by", "sum", "differ", "mismatch",
                                "missing", "extra", "in", "flight", "method"]
    assert lines[3].split() == ["shop.items", "DIFFERENT", "300", "300", "5", "4", "1", "1", "0", "0", "0", "checksum"]
    assert lines[4] == "    mismatched: key {'id': 7} (source lsn 11, lake lsn 10)"
    assert lines[5].split() == ["shop.prices", "OK", "3", "3", "1", "0", "0", "0", "0", "0", "0", "rows"]
    assert lines[6] == "    note: compared by rows: column p: double has no exact text"
