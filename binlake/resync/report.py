"""The resync job's report: per chunk (range, rows, snapshot lsn, seconds) and in total (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from binlake.positions import split_lsn
from binlake.resync.manifest import Applied, Resync


@dataclass(frozen=True)
class ResyncReport:
    """What one run of ``binlake resync`` delivered."""

    resync_id: str
    source: str
    schema: str
    table: str
    chunks: int
    delivered: int
    rows: int
    seconds: float
    min_lsn: int | None
    max_lsn: int | None
    note: str = ""

    rows_this_run: int = 0  # rows of the chunks this run delivered (a resumed run: not the earlier ones)

    @classmethod
    def of(cls, resync: Resync, seconds: float, before: frozenset[int] = frozenset()) -> ResyncReport:
        """The report of a run that found the chunks ``before`` already delivered."""
        lsns = [c.lsn for c in resync.delivered if c.lsn is not None]
        fresh = sum(c.rows for c in resync.delivered if c.index not in before)
        return cls(resync.resync_id, resync.qualified_source, resync.schema, resync.table, len(resync.chunks),
                   len(resync.delivered), resync.rows, round(seconds, 3), min(lsns, default=None),
                   max(lsns, default=None), resync.note, fresh)

    @property
    def rows_per_second(self) -> float:
        """Rows this run read and delivered per second."""
        return self.rows_this_run / self.seconds if self.seconds > 0 else 0.0

    def text(self) -> str:
        span = "-" if self.min_lsn is None else f"{_lsn_text(self.min_lsn)} .. {_lsn_text(self.max_lsn)}"
        lines = [f"resync {self.resync_id} of {self.source} → {self.schema}.{self.table}: {self.delivered} of "
                 f"{self.chunks} chunk(s) delivered, {self.rows:,} rows ({self.rows_this_run:,} in this run, "
                 f"{self.seconds:.1f} s, {self.rows_per_second:,.0f} rows/s), snapshot lsn {span}"]
        if self.note:
            lines.append(f"  note: {self.note}")
        lines.append("  the merge applies the chunks (binlake tables shows how far it got)")
        return "\n".join(lines)


def _lsn_text(lsn: int | None) -> str:
    if lsn is None:
        return "-"
    epoch, sequence, pos = split_lsn(lsn)
    return f"{epoch}:{sequence}:{pos}"


def format_chunks(resync: Resync, applied: Applied | None = None) -> str:
    """One line per chunk: index, range, rows, snapshot lsn, read seconds, and how the merge applied it."""
    header = ("chunk", "range", "rows", "snapshot lsn", "seconds", "merge")
    lines = [header]
    for c in resync.chunks:
        done = applied.chunks.get(c.index) if applied else None
        merge = "-" if done is None else (f"skipped: {done.skipped}" if done.skipped else
                                          f"+{done.inserted} ~{done.updated} -{done.deleted}")
        lines.append((str(c.index), str(c.range), f"{c.rows:,}" if c.delivered else "pending",
                      _lsn_text(c.lsn), f"{c.seconds:.1f}", merge))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)


def last_resync_text(resync: Resync, applied: Applied) -> str:
    """A short state of a table's latest resync for ``binlake tables``."""
    if applied.covers(resync) and not resync.pending:
        last = max((c.applied_at for c in applied.chunks.values()), default=resync.created_at)
        return f"{resync.resync_id} applied ({len(resync.chunks)} chunk(s), {resync.rows:,} rows, {last[:19]})"
    return (f"{resync.resync_id} running: {len(resync.delivered)}/{len(resync.chunks)} delivered, "
            f"{len(applied.chunks)}/{len(resync.chunks)} applied")
