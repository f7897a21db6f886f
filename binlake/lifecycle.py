"""What of the change log and of the tombstones may be removed: pure planning, no lake, no Spark.

The change log (``_binlake/changelog``) is read again after the stream has applied it by every
*reader that could replay*; each is summed up as a :class:`Pin` — "this reader may still need every
record with ``lsn > pin.lsn``":

* **the merge** (:func:`merge_pin`): everything up to the highest lsn of its last *committed*
  micro-batch is applied, except what the batch running now reads (a replay of it after a crash
  needs its files again, and it may hold a capture's re-written duplicate of older records);
* **every table not joined yet** (:func:`table_pins`): a full load that is loading, or complete and
  not joined by the merge, or joined by the batch running now (a replay of that batch joins again),
  needs every record after its snapshot's lowest position (the hand-off, :mod:`binlake.merge.handoff`).
  A table whose snapshot the change log cannot complete anyway (a gap) pins nothing;
* **the capture**: records above its checkpoint may be re-written after a crash; none below it is
  read again, so its pin is the checkpoint (a file is never removed above it).

A file is removed (:func:`plan_removal`) when its last lsn is at or below every pin **and** it was
written more than ``changelog.retention_hours`` ago: the retention keeps a recent window replayable
(a new merge checkpoint, a manual re-read) and covers the short moments in which a reader exists
before its position is written down (a full load between reading its low watermark and writing its
state). An unknown pin (``lsn=None``) removes nothing.

Tombstones (:func:`tombstone_floor`) guard against a replayed *older* upsert of a deleted key. Such
upserts come from change-log records still kept (a replayed batch, a new merge checkpoint, a table
joining), from a capture re-writing records after a crash (above its checkpoint), and from resync
chunks delivered and not yet applied (a chunk read at ``P`` needs the tombstones newer than ``P``).
A tombstone below all of them protects against nothing: it may go once it is also older than the
tombstone retention (``merge.vacuum_retention_hours``, on the source commit time).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MERGE = "merge"
CAPTURE = "capture"


@dataclass(frozen=True, order=True)
class ChangelogFile:
    """One change-log file: its record lsn range (inclusive) from its name, and when it was written."""

    first: int
    last: int
    key: str
    modified: datetime.datetime

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"{self.key}: lsn range {self.first}..{self.last} is empty")


@dataclass(frozen=True)
class Pin:
    """A reader that may still need every change-log record with ``lsn > lsn`` (``None``: its
    position is not known, so it may need everything)."""

    reader: str
    lsn: int | None


@dataclass(frozen=True)
class TableReader:
    """A table's full load as the change log's reader: ``snapshot_lsn`` is the lowest position of
    its snapshot (the join replays every record above it); ``joined_load`` / ``joined_batch`` what
    the merge recorded when it joined the table (``None``: never); ``gap``: the change log cannot
    complete this snapshot anyway (it will not be joined without a reload)."""

    name: str
    load_id: str
    snapshot_lsn: int
    joined_load: str | None = None
    joined_batch: int | None = None
    gap: bool = False


@dataclass(frozen=True)
class RemovalPlan:
    """Which change-log files go. ``floor``: the lowest pin (records at or below it are applied by
    every reader; ``None``: some pin is unknown); ``pinned_by``: the reader(s) at that floor;
    ``remove``: files wholly at or below it and older than the retention (in lsn order); ``keep``:
    every other file."""

    floor: int | None
    pinned_by: tuple[str, ...]
    remove: tuple[ChangelogFile, ...]
    keep: tuple[ChangelogFile, ...]

    @property
    def kept_first_lsn(self) -> int | None:
        """The lowest lsn a kept file may hold (``None``: no file is kept)."""
        return min((f.first for f in self.keep), default=None)


def merge_pin(committed_lsn: int | None, running_min_lsn: int | None) -> Pin:
    """The merge's pin: ``committed_lsn`` is the highest record lsn of the micro-batches committed
    so far (``None``: not known in this run yet); ``running_min_lsn`` the lowest record lsn of the
    batch running now (``None``: none is running)."""
    if committed_lsn is None:
        return Pin(MERGE, None)
    if running_min_lsn is None:
        return Pin(MERGE, committed_lsn)
    return Pin(MERGE, min(committed_lsn, running_min_lsn - 1))


def table_pins(tables: Iterable[TableReader], running_batch: int | None) -> list[Pin]:
    """The pins of the tables that may still join (see the module docstring). ``running_batch``:
    the id of the micro-batch running now (``None``: none) — a table joined by it, or by a later id
    (batch ids of an earlier merge checkpoint), is still pinned: a replay of that batch joins again."""
    pins = []
    for table in tables:
        if table.gap:
            continue
        joined = table.joined_load == table.load_id
        replayable = joined and table.joined_batch is not None and (running_batch is None
                                                                    or table.joined_batch >= running_batch)
        if not joined:
            pins.append(Pin(f"table {table.name} (full load {table.load_id} not joined yet)", table.snapshot_lsn))
        elif replayable:
            pins.append(Pin(f"table {table.name} (joined by batch {table.joined_batch}, not committed yet)",
                            table.snapshot_lsn))
    return pins


def plan_removal(files: Sequence[ChangelogFile], pins: Sequence[Pin], now: datetime.datetime,
                 retention: datetime.timedelta) -> RemovalPlan:
    """The files that may be removed at ``now`` (see the module docstring). ``pins`` must hold
    every reader — at least the merge's and the capture's; without them nothing is removed."""
    if retention < datetime.timedelta(0):
        raise ValueError(f"retention must be >= 0, got {retention}")
    ordered = tuple(sorted(files))
    readers = {pin.reader for pin in pins}
    unknown = tuple(sorted(pin.reader for pin in pins if pin.lsn is None))
    if unknown or not {MERGE, CAPTURE} <= readers:
        return RemovalPlan(None, unknown or tuple(sorted({MERGE, CAPTURE} - readers)), (), ordered)
    floor = min(pin.lsn for pin in pins if pin.lsn is not None)
    pinned_by = tuple(sorted(pin.reader for pin in pins if pin.lsn == floor))
    cutoff = now - retention
    remove = tuple(f for f in ordered if f.last <= floor and f.modified <= cutoff)
    gone = set(remove)
    return RemovalPlan(floor, pinned_by, remove, tuple(f for f in ordered if f not in gone))


def tombstone_floor(kept_first_lsn: int | None, capture_lsn: int | None,
                    resync_lsns: Iterable[int]) -> int | None:
    """Tombstones with ``lsn <`` this may be pruned (once also older than their retention): those
    at or below ``kept_first_lsn``, the lowest lsn of a change-log file still kept (``None``: none
    is — every upsert still readable there is at or above it), at or below ``capture_lsn``, the
    capture checkpoint's (it re-writes only what follows it; ``None``: unknown — then nothing is
    pruned), and at or below each of ``resync_lsns``, the snapshot lsns of resync chunks delivered
    and not applied yet (a chunk read at ``P`` needs the tombstones above ``P``)."""
    if capture_lsn is None:
        return None
    return 1 + min([capture_lsn, *resync_lsns, *([] if kept_first_lsn is None else [kept_first_lsn])])


def removed_gap(removed_through: int | None, snapshot_lsn: int) -> str | None:
    """Why the change log can no longer complete a snapshot at ``snapshot_lsn`` (``None``: it can):
    records up to ``removed_through`` may have been removed, and a join needs every record above the
    snapshot."""
    if removed_through is None or snapshot_lsn >= removed_through:
        return None
    return (f"the change log was cleaned up to lsn {removed_through}, past this snapshot's lowest position "
            f"(lsn {snapshot_lsn}): changes in between are gone — reload this table (the snapshot was not "
            "recorded when the cleanup ran, or changelog.retention_hours is shorter than the load took)")
