"""Local scratch files for transactions too large to hold in memory.

When the open transaction holds more than ``capture.max_transaction_rows_in_memory`` records,
the assembler hands its events so far to :meth:`SpillFolder.write`: they become one Arrow IPC
file (change-log schema, LZ4, placeholder ``gtid``/``xid``/``commit_ts`` — the commit is not known
yet) and leave memory. At commit the sink reads each part back (:func:`read_part`), stamps the
commit values on it and writes it as its own change-log file, then deletes it (:func:`remove_part`).

The folder is private to one capture process: ``<capture.spill_dir or the system temp
folder>/binlake-spill-<random>/``, holding a ``lock`` file the process keeps ``flock``-ed for its
lifetime. :meth:`SpillFolder.close` removes the folder; a folder left by a killed capture (its
lock no longer held — the kernel drops the lock with the process) is removed by the next
capture that opens a folder under the same parent. Nothing here is ever needed after a restart:
a restart re-reads the binlog from the checkpoint, which never lies inside a transaction, so
spill files are never fsync'ed.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.ipc as ipc

from binlake.changelog import CHANGELOG_SCHEMA, CommittedTransaction, EventChanges, SpilledPart, approx_bytes, to_arrow

log = logging.getLogger(__name__)

FOLDER_PREFIX = "binlake-spill-"
LOCK_NAME = "lock"
BATCH_ROWS = 16_384  # records converted to Arrow and compressed at a time when spilling …
BATCH_BYTES = 8 * 1024 * 1024  # … or fewer, up to about this many bytes (approx_bytes), for large rows
_IPC_OPTIONS = ipc.IpcWriteOptions(compression="lz4")


def _locked(path: Path) -> IO[str] | None:
    """Open ``path`` and take an exclusive, non-blocking flock on it; ``None`` when someone holds it."""
    handle = open(path, "a")  # noqa: SIM115 - held open for the lifetime of the lock
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def remove_stale(parent: Path) -> list[Path]:
    """Remove the spill folders under ``parent`` whose capture is gone (lock not held); their paths."""
    removed = []
    for folder in sorted(parent.glob(f"{FOLDER_PREFIX}*")):
        lock = folder / LOCK_NAME
        if not folder.is_dir() or not lock.is_file():  # not ours, or a folder still being created
            continue
        handle = _locked(lock)
        if handle is None:  # a live capture owns it
            continue
        try:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        finally:
            handle.close()
    if removed:
        log.info("removed %d spill folder(s) left by stopped captures under %s", len(removed), parent)
    return removed


class SpillFolder:
    """This process's spill folder (see module doc). Use as a context manager or call :meth:`close`."""

    def __init__(self, parent: str | Path | None = None) -> None:
        base = Path(parent).expanduser() if parent else Path(tempfile.gettempdir())
        base.mkdir(parents=True, exist_ok=True)
        remove_stale(base)
        self.path = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=base))
        # The lock file appears already locked (locked under a temporary name, then renamed), so a
        # concurrent remove_stale never mistakes a folder being created for an abandoned one.
        pending = self.path / f".{LOCK_NAME}-{os.getpid()}"
        handle = _locked(pending)
        assert handle is not None, "a fresh lock file cannot be locked by anyone else"
        pending.rename(self.path / LOCK_NAME)
        self._lock: IO[str] | None = handle
        self._count = 0

    def write(self, events: Sequence[EventChanges]) -> SpilledPart:
        """Write the records of ``events`` (whole events, in order, at least one) to a new part file."""
        if not events:
            raise ValueError("events must not be empty")
        if self._lock is None:
            raise RuntimeError(f"spill folder {self.path} is closed")
        self._count += 1
        path = self.path / f"part-{self._count:08d}.arrow"
        rows = 0
        with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, CHANGELOG_SCHEMA, options=_IPC_OPTIONS) as out:
            for batch in _batches(events):  # Arrow for a slice at a time: the part never exists whole
                table = to_arrow([CommittedTransaction(None, None, 0, batch)])
                out.write_table(table)
                rows += table.num_rows
        return SpilledPart(str(path), rows, events[0].lsn, events[-1].lsn)

    def parts(self) -> list[Path]:
        """Part files currently in the folder (for status and tests)."""
        return sorted(self.path.glob("part-*.arrow"))

    def close(self) -> None:
        """Remove the folder and everything in it; release the lock."""
        if self._lock is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        self._lock.close()
        self._lock = None

    def __enter__(self) -> SpillFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _batches(events: Sequence[EventChanges]) -> Iterator[tuple[EventChanges, ...]]:
    """``events`` in consecutive slices of about :data:`BATCH_ROWS` records or :data:`BATCH_BYTES` bytes."""
    start, rows, size = 0, 0, 0
    for index, event in enumerate(events):
        rows += event.row_count
        size += approx_bytes(event)
        if rows >= BATCH_ROWS or size >= BATCH_BYTES:
            yield tuple(events[start:index + 1])
            start, rows, size = index + 1, 0, 0
    if start < len(events):
        yield tuple(events[start:])


def read_part(part: SpilledPart) -> pa.Table:
    """The records of a part (placeholder commit values; see :func:`binlake.changelog.stamp_commit`)."""
    with pa.OSFile(part.path, "rb") as source:
        table = ipc.open_file(source).read_all()
    if table.num_rows != part.rows:
        raise RuntimeError(f"spill file {part.path} holds {table.num_rows} records, expected {part.rows}")
    return table


def remove_part(part: SpilledPart) -> None:
    """Delete a part file (it is gone already if its folder was removed)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(part.path)
