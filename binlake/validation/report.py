"""What validation found for one table, the readable report and the exit status (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

CHECKSUM = "checksum"
ROWS = "rows"
METHODS = (CHECKSUM, ROWS)


@dataclass
class TableValidation:
    """The outcome for one table.

    ``method`` is how the table was compared: ``checksum`` (chunk checksums first, rows only for
    the chunks whose checksums differ) or ``rows`` (every row; ``note`` says why when the checksum
    was not possible). ``checksum_chunks`` is how many chunks the checksum settled (found equal)
    without reading their rows; ``differing_chunks`` are the chunks holding rows that differ.
    """

    table: str
    source_rows: int = 0
    lake_rows: int = 0
    chunks: int = 0
    differing_chunks: list[int] = field(default_factory=list)
    mismatched: int = 0
    missing: int = 0
    extra: int = 0
    in_flight: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    method: str = ROWS
    checksum_chunks: int = 0
    note: str | None = None
    source: str = ""  # the source table (schema.table)
    repair_ranges: list[dict[str, Any]] = field(default_factory=list)  # key ranges ``--repair`` re-reads
    as_of_lsn: int | None = None  # source position taken before the table's first read (binlake.validation.record)

    @property
    def status(self) -> str:
        if self.error:
            return "ERROR"
        if self.mismatched or self.missing or self.extra:
            return "DIFFERENT"
        return "IN FLIGHT" if self.in_flight else "OK"


def format_report(results: Sequence[TableValidation]) -> str:
    """A fixed-width report a person can read."""
    header = (f"{'table':<32} {'status':<10} {'source':>10} {'lake':>10} {'chunks':>7} {'by sum':>7} "
              f"{'differ':>7} {'mismatch':>9} {'missing':>8} {'extra':>6} {'in flight':>9}  method")
    lines = ["binlake validate", header, "-" * len(header)]
    for r in results:
        lines.append(f"{r.table:<32} {r.status:<10} {r.source_rows:>10} {r.lake_rows:>10} {r.chunks:>7} "
                     f"{r.checksum_chunks:>7} {len(r.differing_chunks):>7} {r.mismatched:>9} {r.missing:>8} "
                     f"{r.extra:>6} {r.in_flight:>9}  {r.method}")
        if r.error:
            lines.append(f"    error: {r.error}")
        if r.note:
            lines.append(f"    note: {r.note}")
        for sample in r.samples:
            lines.append(f"    {sample['kind']}: key {sample['key']} (source lsn {sample['source_lsn']}, "
                         f"lake lsn {sample['lake_lsn']})")
    lines.append("(by sum: chunks found equal by their checksums, without reading their rows)")
    return "\n".join(lines)


def exit_status(results: Sequence[TableValidation]) -> int:
    """0 when every table matches, 1 when any differs (or failed), 3 when rows are still in flight."""
    statuses = {r.status for r in results}
    if statuses & {"DIFFERENT", "ERROR"}:
        return 1
    return 3 if "IN FLIGHT" in statuses else 0
