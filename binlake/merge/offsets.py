"""The merge stream's position in the change log, and which files a micro-batch reads: pure, no lake.

The stream tracks the change log by lsn, not by file (:mod:`binlake.merge.stream` is the Spark
source built on this). Its offset is one number, :class:`ChangelogOffset`: *every change-log record
with ``lsn <= offset.lsn`` has been delivered*. Micro-batch ``b`` with offsets ``(start, end]``
delivers exactly the records with ``start.lsn < lsn <= end.lsn``, once each — so the checkpoint
holds one small offset per batch, whatever the change log's history (Spark's file source kept
every file name it ever read).

Why an lsn is enough (the capture's naming and ordering, :mod:`binlake.changelog`,
:mod:`binlake.capture.sink`): a file is named by the first and last lsn of its records; one capture
process writes its files one after another, in lsn order, each holding whole binlog events, so
when a file ending at ``L`` is visible every record at or below ``L`` is in a visible file. A
capture restarted after a crash writes again what followed its checkpoint: new files, maybe cut at
other lsns, whose records duplicate records already written (same ``(lsn, row_idx)``, same
values). Such a file may start *below* an offset already read and end above it — its part above
the offset is new and is read by the next batch; its part at or below is never read again.

Which files a batch reads (:func:`read_plan`): the change log's files cover the lsn line, with
overlaps only where a crash re-wrote records. The plan picks, for every lsn of ``(start, end]``,
exactly one file that holds it (lowest first lsn first), and reads each picked file only over its
own stretch (:class:`FileRead`: ``after < lsn <= through``) — no record twice, no de-duplication
needed, and a replay of the batch (after a crash, maybe with a re-written duplicate listed that was
not there before) reads the same records, because every file holding an lsn holds all of its
records, identical.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

LSN_KEY = "lsn"
FILE_SOURCE_KEY = "logOffset"  # what Spark's file stream source wrote for the same source


class OffsetError(ValueError):
    """An offset in the merge checkpoint that this source cannot read."""


@dataclass(frozen=True, order=True)
class ChangelogOffset:
    """Every change-log record with ``lsn <= self.lsn`` has been delivered (``-1``: none has)."""

    lsn: int

    def __post_init__(self) -> None:
        if self.lsn < -1:
            raise OffsetError(f"change-log offset lsn must be >= -1, got {self.lsn}")

    def to_dict(self) -> dict[str, int]:
        return {LSN_KEY: self.lsn}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChangelogOffset:
        """The offset a checkpoint recorded; loud on anything else (an old file-source offset names
        the migration, :mod:`binlake.merge.migrate`)."""
        if FILE_SOURCE_KEY in data:
            raise OffsetError(f"the merge checkpoint holds a file-source offset {dict(data)}: it was written by an "
                              "older binlake; the merge migrates it at start (binlake.merge.migrate) — start the "
                              "merge with streaming/merge.py, not by hand")
        value = data.get(LSN_KEY)
        if not isinstance(value, int) or isinstance(value, bool):
            raise OffsetError(f"change-log offset {dict(data)} has no integer {LSN_KEY!r}")
        return cls(value)


START = ChangelogOffset(-1)


class LsnRange(Protocol):
    """A change-log file as the planning sees it: ``key`` and its records' lsn range, inclusive
    (:class:`FileRange`, :class:`binlake.lifecycle.ChangelogFile`)."""

    @property
    def first(self) -> int: ...
    @property
    def last(self) -> int: ...
    @property
    def key(self) -> str: ...


@dataclass(frozen=True)
class FileRange:
    """A change-log file's record lsn range (inclusive), read from its name."""

    first: int
    last: int
    key: str


@dataclass(frozen=True, order=True)
class FileRead:
    """Read the records of change-log file ``key`` with ``after < lsn <= through``."""

    key: str
    after: int
    through: int

    def __post_init__(self) -> None:
        if self.through <= self.after:
            raise ValueError(f"{self.key}: empty read ({self.after}, {self.through}]")


def read_plan(files: Sequence[LsnRange], start: ChangelogOffset,
              end: ChangelogOffset | None = None) -> tuple[FileRead, ...]:
    """The reads that deliver every record with ``start.lsn < lsn <= end.lsn`` (``end=None``: no
    upper bound) exactly once, in lsn order; each read's stretch lies inside its file's lsn range
    and the stretches tile ``(start.lsn, last read's through]`` without overlap (module docstring)."""
    upper = None if end is None else end.lsn
    reads: list[FileRead] = []
    covered = start.lsn
    for file in sorted(files, key=lambda f: (f.first, -f.last, f.key)):
        if upper is not None and (covered >= upper or file.first > upper):
            break
        if file.last <= covered:
            continue  # every lsn it holds is read from an earlier file (a re-written duplicate)
        through = file.last if upper is None else min(file.last, upper)
        reads.append(FileRead(file.key, covered, through))
        covered = through
    return tuple(reads)


def next_end(files: Sequence[LsnRange], start: ChangelogOffset, max_files: int | None = None,
             until: ChangelogOffset | None = None) -> ChangelogOffset:
    """The end offset of the next micro-batch from ``start``: as far as the change log goes, at
    most ``max_files`` files of reading (``None``: no limit) and at most ``until`` (the end an
    ``availableNow`` run fixed when it began); ``start`` itself when there is nothing new."""
    if max_files is not None and max_files < 1:
        raise ValueError(f"max_files must be >= 1, got {max_files}")
    reads = read_plan(files, start, until)
    if max_files is not None:
        reads = reads[:max_files]
    return ChangelogOffset(reads[-1].through) if reads else start


def missing_end(reads: Sequence[FileRead], start: ChangelogOffset, end: ChangelogOffset) -> str | None:
    """Why ``reads`` cannot be batch ``(start, end]`` (``None``: they can): the file that ended the
    batch when it was planned is gone — removed by hand, since the lifecycle keeps every file a
    batch not yet committed reads."""
    reached = reads[-1].through if reads else start.lsn
    if reached >= end.lsn:
        return None
    return (f"the change log no longer holds records up to lsn {end.lsn} that micro-batch ({start.lsn}, {end.lsn}] "
            f"read when it was planned (its files reach lsn {reached}): change-log files were removed by hand; "
            "the lake may miss those changes — restore the files, or resync the tables (binlake resync) after "
            "removing the merge checkpoint")
