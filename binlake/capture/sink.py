"""Writing committed transactions to the change log, then the checkpoint — in that order.

:class:`FlushPolicy` decides when (size, bytes or time bound, pure); :class:`ChangeLogSink` does
it: one Parquet file for everything pending (whole transactions, never a partial event), then the
checkpoint at the position after the last transaction in those files. If the process dies between
the two, the restart re-reads from the previous checkpoint and writes the same records again
under a new file name (same ``(lsn, row_idx)``): duplicates, never gaps.

A transaction with spilled parts (too large for memory, see :mod:`binlake.capture.spill`) is
written as one file per part, in order, each stamped with the transaction's gtid/xid/commit time;
its in-memory rest joins the following transactions in the next file. The checkpoint still comes
after all of them, so a crash half-way through a transaction's files re-reads the whole
transaction and writes all of it again. The sink never deletes a spill file: the caller does,
once :meth:`ChangeLogSink.flush` returned (:meth:`~binlake.capture.transactions.TransactionAssembler.release`).

The checkpoint never passes what is not durable, by construction:

* :meth:`ChangeLogSink.flush` saves the checkpoint only after every file of the call is written
  (each write retried on transient lake errors by the lake's retry policy);
* any failure inside a flush *poisons* the sink (:attr:`ChangeLogSink.failure`): every later flush
  raises :class:`LakeWriteError` at once and writes nothing — no later checkpoint can skip over the
  records that failed, whatever path (stop, failure, signal) calls it;
* the caller keeps the transactions pending until flush returns (see the assembler).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from binlake.capture.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from binlake.capture.spill import read_part
from binlake.changelog import CommittedTransaction, stamp_commit, to_arrow, write_changelog
from binlake.lake import Lake
from binlake.positions import BinlogPosition
from binlake.retry import LakeError, describe

log = logging.getLogger(__name__)


class LakeWriteError(RuntimeError):
    """Writing the change log or the checkpoint failed; the checkpoint did not move past what is
    not durable (never retried as a source problem: the capture stops, a restart resumes there)."""


CAUGHT_UP_FRACTION = 0.25
"""Of ``capture.flush_seconds``: how soon after the previous flush a caught-up stream flushes."""


@dataclass(frozen=True)
class FlushPolicy:
    """Flush when ``max_rows`` records or ``max_bytes`` bytes (estimated) are pending, or the oldest
    pending one waited ``max_seconds``.

    A position that advanced without records (transactions on unselected tables) is checkpointed
    at most every ``max_seconds``. A stream that has caught up flushes sooner
    (:meth:`due_caught_up`).
    """

    max_rows: int
    max_seconds: float
    max_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.max_rows < 1 or self.max_seconds <= 0 or self.max_bytes < 1:
            raise ValueError("max_rows and max_bytes must be >= 1 and max_seconds > 0")

    def due(self, pending_rows: int, pending_since: float | None, position_moved_since: float | None,
            now: float, pending_bytes: int = 0) -> bool:
        """Should the capture flush now?

        ``pending_since``: when the oldest pending record was committed (``None`` = none pending);
        ``position_moved_since``: when the position first moved past the saved checkpoint without
        records (``None`` = it did not); ``pending_bytes``: estimated bytes of the pending records.
        """
        if pending_rows >= self.max_rows or pending_bytes >= self.max_bytes:
            return True
        if pending_since is not None and now - pending_since >= self.max_seconds:
            return True
        return position_moved_since is not None and now - position_moved_since >= self.max_seconds

    def due_caught_up(self, pending_since: float | None, last_flush: float | None, now: float) -> bool:
        """The stream has caught up (nothing more to read now): flush the pending records without
        waiting out ``max_seconds`` — once the previous flush (``last_flush``, ``None`` = none yet) is
        ``max_seconds * CAUGHT_UP_FRACTION`` old. The checkpoint then follows the end of a backlog
        within that fraction of the period, and a source that trickles (caught up after every
        transaction) still gets at most ``1 / CAUGHT_UP_FRACTION`` files per period."""
        if pending_since is None:
            return False
        return last_flush is None or now - last_flush >= self.max_seconds * CAUGHT_UP_FRACTION


class ChangeLogSink:
    """Change-log files + checkpoint in one lake."""

    def __init__(self, lake: Lake, source_server_id: int | None, started_from: str | None = None) -> None:
        """``started_from``: the explicit start this run applied (``None``: keep the saved one)."""
        self.lake = lake
        self.source_server_id = source_server_id
        previous = load_checkpoint(lake)
        self.started_from = started_from or (previous.started_from if previous else None)
        self.files_written_total = previous.files_written if previous else 0
        self.files_written = 0
        self.records_written = 0
        self.saved: BinlogPosition | None = previous.position if previous else None
        self.last_file: str | None = None
        self.last_flush_at: float | None = None
        self.failure: BaseException | None = None  # set by a failed flush: nothing is written after it

    def flush(self, transactions: Sequence[CommittedTransaction], position: BinlogPosition | None) -> None:
        """Write ``transactions`` (if any) to the change log, then checkpoint ``position`` (if known).

        In-memory transactions go to one file; each spilled part of a transaction to its own file
        (see module doc). Files are written in transaction order. Any error leaves the checkpoint
        where it was and poisons the sink (module doc); a lake failure is raised as
        :class:`LakeWriteError`, anything else (e.g. a stop signal during a retry wait) as is.
        """
        if self.failure is not None:
            raise LakeWriteError(f"not writing to the change log after an earlier failure ({describe(self.failure)}); "
                                 f"the checkpoint stays at {self.saved}")
        try:
            self._flush(transactions, position)
        except BaseException as exc:
            self.failure = exc
            if isinstance(exc, LakeError | OSError):
                raise LakeWriteError(f"{exc}; the checkpoint stays at {self.saved} and nothing after it is "
                                     "lost: fix the lake, then restart the capture (it resumes there)") from exc
            raise

    def _flush(self, transactions: Sequence[CommittedTransaction], position: BinlogPosition | None) -> None:
        group: list[CommittedTransaction] = []
        for txn in transactions:
            if not txn.spilled:
                group.append(txn)
                continue
            self._write_group(group)
            group = []
            for part in txn.spilled:
                self._write(stamp_commit(read_part(part), txn))
            if txn.events:
                group.append(txn.in_memory())
        self._write_group(group)
        if position is not None and (transactions or position != self.saved):
            save_checkpoint(self.lake, Checkpoint(position, self.source_server_id, self.files_written_total,
                                                  self.started_from))
            self.saved = position
        self.last_flush_at = time.time()

    def _write_group(self, transactions: Sequence[CommittedTransaction]) -> None:
        if transactions:
            self._write(to_arrow(transactions))

    def _write(self, table: pa.Table) -> None:
        started = time.monotonic()
        self.last_file = write_changelog(self.lake, table)
        self.files_written += 1
        self.files_written_total += 1
        self.records_written += table.num_rows
        log.debug("wrote %s (%d records, %.3fs)", self.last_file, table.num_rows, time.monotonic() - started)
