"""Progress lines and the final per-table report of a full load (pure formatting + counters)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from binlake.positions import BinlogPosition


@dataclass(frozen=True)
class TableReport:
    """One line of the final report."""

    source: str
    target: str
    status: str  # complete, skipped, failed
    rows: int
    bytes: int | None
    seconds: float
    chunks: int
    min_position: BinlogPosition | None
    max_position: BinlogPosition | None
    message: str = ""

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def human_bytes(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover


def _position_text(low: BinlogPosition | None, high: BinlogPosition | None) -> str:
    if low is None or high is None:
        return "-"
    gtid = f" gtid {high.gtid}" if high.gtid else ""
    if low == high:
        return f"{low.file}:{low.pos}{gtid}"
    return f"{low.file}:{low.pos} .. {high.file}:{high.pos}{gtid}"


def format_report(reports: Sequence[TableReport]) -> str:
    """A fixed-width table: one line per table plus a total line."""
    header = ("source", "target", "status", "rows", "size", "seconds", "rows/s", "chunks", "snapshot position")
    lines = [header]
    for r in reports:
        lines.append((r.source, r.target, r.status, f"{r.rows:,}", human_bytes(r.bytes), f"{r.seconds:.1f}",
                      f"{r.rows_per_second:,.0f}", str(r.chunks),
                      _position_text(r.min_position, r.max_position) + (f" {r.message}" if r.message else "")))
    rows = sum(r.rows for r in reports)
    seconds = sum(r.seconds for r in reports)
    sizes = [r.bytes for r in reports if r.bytes is not None]
    lines.append(("total", f"{len(reports)} tables", "", f"{rows:,}", human_bytes(sum(sizes) if sizes else None),
                  f"{seconds:.1f}", f"{rows / seconds if seconds else 0:,.0f}", "", ""))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)


class Progress:
    """Thread-safe counters behind the progress lines (tables done/total, chunks, rows, rate)."""

    def __init__(self, tables_total: int, clock: Callable[[], float]) -> None:
        self.tables_total = tables_total
        self.tables_done = 0
        self.rows = 0
        self.chunks_done = 0
        self.chunks_total = 0
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()

    def add_chunks(self, count: int) -> None:
        with self._lock:
            self.chunks_total += count

    def chunk_done(self, rows: int) -> str:
        with self._lock:
            self.chunks_done += 1
            self.rows += rows
            return self._line()

    def table_done(self) -> str:
        with self._lock:
            self.tables_done += 1
            return self._line()

    def _line(self) -> str:
        elapsed = max(self._clock() - self._started, 1e-9)
        return (f"progress: tables {self.tables_done}/{self.tables_total} done, chunks "
                f"{self.chunks_done}/{self.chunks_total}, {self.rows:,} rows in {elapsed:.1f} s "
                f"({self.rows / elapsed:,.0f} rows/s)")
