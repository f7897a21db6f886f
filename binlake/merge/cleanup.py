"""The change-log lifecycle, run by the merge: remove the change-log files every reader has applied.

The rule is :mod:`binlake.lifecycle`'s (pure); this module gathers its inputs from the lake and
carries the plan out. :class:`ChangelogCleanup` is called by the maintenance after every
micro-batch and runs at most every :data:`CLEANUP_EVERY`:

1. **Pins.** The merge's pin is kept in memory: the highest record lsn of the batches finished
   in this run *before* the one running now — Spark commits a batch before it starts the next, so
   those are committed — bounded by the running batch's lowest lsn. (So the first batch of a run
   removes nothing.) The capture's is its checkpoint; the tables' come from every full-load state
   (``_binlake/snapshots``), its join record (``_binlake/merge/tables``) and the binlog history
   registry (a table with a gap pins nothing).
2. **Plan** (:func:`binlake.lifecycle.plan_removal`), logged with the reader that holds the floor.
3. **Record** ``_binlake/changelog-removed.json`` (durable) with ``removed_through``, the highest
   last lsn of any file removed so far — written *before* any file goes, so a join can never miss
   that records it needs are gone (:func:`join_gap`: the table is then reported as not merged, with
   the fix, instead of joining from a change log with a hole).
4. **Delete** the files in lsn order.

A SIGKILL anywhere leaves a prefix of the planned files deleted and the record at least as high as
what is gone: the next run plans again from what is left. The capture writes new files meanwhile;
none of them is ever below its checkpoint, so none is in a plan. Files the stream has not listed
yet and that lie below the floor can only be a capture's re-written duplicates of records already
applied (the capture writes files in lsn order; after a crash it writes again what followed its
checkpoint, with the same ``(lsn, row_idx)``), so removing them loses nothing.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from binlake.capture.history import load_registry
from binlake.changelog import changelog_files, read_removed, remove_changelog, write_removed
from binlake.lake import SNAPSHOTS_DIR, Lake
from binlake.lifecycle import (
    CAPTURE,
    Pin,
    RemovalPlan,
    TableReader,
    merge_pin,
    plan_removal,
    removed_gap,
    table_pins,
    tombstone_floor,
)
from binlake.merge.handoff import Handoff, gap, joined_key
from binlake.merge.summary import TableName
from binlake.resync.store import all_resyncs, read_applied
from binlake.snapshot.state import TableState

log = logging.getLogger(__name__)

CLEANUP_EVERY = 60.0
"""Seconds between two cleanups (each lists the change log and reads every table's state)."""


def read_removed_through(lake: Lake) -> int | None:
    """The highest lsn the cleanup may have removed records up to (``None``: it never removed any)."""
    value = (read_removed(lake) or {}).get("removed_through")
    return None if value is None else int(value)


def _write_removed(lake: Lake, removed_through: int, plan: RemovalPlan, when: datetime.datetime,
                   files_removed: int) -> None:
    write_removed(lake, {"removed_through": removed_through, "floor": plan.floor, "pinned_by": list(plan.pinned_by),
                         "updated_at": when.isoformat(), "files_removed": files_removed})


def join_gap(lake: Lake, handoff: Handoff) -> str | None:
    """Why a table joining after ``handoff`` would miss records the cleanup removed (``None``: it would not)."""
    return removed_gap(read_removed_through(lake), handoff.min_lsn)


def table_readers(lake: Lake) -> list[TableReader]:
    """Every full load in the lake as a change-log reader (see :class:`binlake.lifecycle.TableReader`)."""
    registry = load_registry(lake)
    readers = []
    for key in lake.list(SNAPSHOTS_DIR):
        if not key.endswith(".json"):
            continue
        state = TableState.from_json(lake.get_bytes(key))
        handoff = Handoff.from_state(state)
        name = TableName(state.source_schema, state.source_table, state.schema, state.table)
        joined = _joined(lake, name)
        readers.append(TableReader(name.qualified, state.load_id, handoff.min_lsn,
                                   None if joined.get("load_id") is None else str(joined["load_id"]),
                                   None if joined.get("batch_id") is None else int(joined["batch_id"]),
                                   gap=gap(registry, handoff) is not None))
    return readers


def _joined(lake: Lake, name: TableName) -> dict[str, Any]:
    try:
        data = json.loads(lake.get_bytes(joined_key(name)))
    except FileNotFoundError:
        return {}
    return data if isinstance(data, dict) else {}


def pending_resync_lsns(lake: Lake) -> list[int]:
    """Snapshot lsns of resync chunks delivered and not applied yet (they need newer tombstones)."""
    lsns = []
    for resync in all_resyncs(lake):
        applied = read_applied(lake, resync)
        lsns += [c.lsn for c in resync.delivered if c.index not in applied.chunks and c.lsn is not None]
    return lsns


class ChangelogCleanup:
    """Removes applied change-log files after micro-batches (see the module docstring)."""

    def __init__(self, lake: Lake, retention_hours: float, clock: Callable[[], datetime.datetime],
                 capture_lsn: Callable[[], int | None], every_seconds: float | None = None) -> None:
        self.lake = lake
        self.retention = datetime.timedelta(hours=retention_hours)
        self.clock = clock
        self.capture_lsn = capture_lsn
        self.every_seconds = CLEANUP_EVERY if every_seconds is None else every_seconds
        self._finished: tuple[int, int] | None = None  # (batch id, highest lsn so far) of the last batch finished
        self._committed: int | None = None
        self._last_run: float | None = None

    def batch_finished(self, batch_id: int, lsn_range: tuple[int, int] | None) -> RemovalPlan | None:
        """Batch ``batch_id`` (records in ``lsn_range``, inclusive) has done its work but is not
        committed yet: clean up when due — once a batch of this run is known to be committed, then
        every :attr:`every_seconds`; returns the plan carried out (``None``: not due)."""
        if self._finished is not None and self._finished[0] < batch_id:
            self._committed = self._finished[1]
        plan = None
        now = time.monotonic()
        due = self._last_run is None or now - self._last_run >= self.every_seconds
        if self._committed is not None and due:
            self._last_run = now
            plan = self.run(batch_id, None if lsn_range is None else lsn_range[0])
        if lsn_range is not None:
            previous = -1 if self._finished is None else self._finished[1]
            self._finished = (batch_id, max(previous, lsn_range[1]))
        return plan

    def pins(self, running_batch: int | None, running_min_lsn: int | None) -> list[Pin]:
        """Every reader's pin now."""
        return [merge_pin(self._committed, running_min_lsn), Pin(CAPTURE, self.capture_lsn()),
                *table_pins(table_readers(self.lake), running_batch)]

    def run(self, running_batch: int | None, running_min_lsn: int | None) -> RemovalPlan:
        """Plan and remove now."""
        started = time.monotonic()
        files = changelog_files(self.lake)
        plan = plan_removal(files, self.pins(running_batch, running_min_lsn), self.clock(), self.retention)
        if plan.remove:
            previous = read_removed_through(self.lake)
            through = max([f.last for f in plan.remove] + ([] if previous is None else [previous]))
            total = self._files_removed() + len(plan.remove)
            _write_removed(self.lake, through, plan, self.clock(), total)
            remove_changelog(self.lake, plan.remove)
        log.info("change log: %d file(s) removed, %d kept (floor %s held by %s) in %.1f s", len(plan.remove),
                 len(plan.keep), plan.floor, ", ".join(plan.pinned_by) or "-", time.monotonic() - started)
        return plan

    def _files_removed(self) -> int:
        return int((read_removed(self.lake) or {}).get("files_removed") or 0)

    def tombstone_floor(self) -> int | None:
        """Tombstones below this may be pruned (:func:`binlake.lifecycle.tombstone_floor`), from the
        change-log files kept now, the capture checkpoint and the pending resync chunks. The checkpoint
        is read before the listing: a file written after it (a re-write after a capture crash) starts
        above the checkpoint, so the floor is below every record that can still be read."""
        capture = self.capture_lsn()  # first: a file the capture writes after this starts above it
        kept = min((f.first for f in changelog_files(self.lake)), default=None)
        return tombstone_floor(kept, capture, pending_resync_lsns(self.lake))
