"""The capture checkpoint: where to resume, saved only after the files it covers are durable.

``_binlake/capture/checkpoint.json`` holds the position right after the last source transaction
whose records are all in durable change-log files (or that produced no records). Resuming there
replays nothing that is missing and at most re-writes records that were already written (same
``(lsn, row_idx)``, de-duplicated by readers) when the process died between a file write and the
checkpoint write.

Example::

    save_checkpoint(lake, Checkpoint(BinlogPosition.of("binlog.000003", 1234, "0-1-77"), source_server_id=1))
    load_checkpoint(lake).position.pos   # 1234
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from binlake.lake import CHECKPOINT_KEY, Lake
from binlake.positions import BinlogPosition

VERSION = 1
POSITION_KEY = "position"
SERVER_ID_KEY = "source_server_id"
VERSION_KEY = "version"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message says why."""


@dataclass(frozen=True)
class Checkpoint:
    """An immutable resume point.

    ``position``: end of the last covered transaction's commit event (``gtid`` = executed GTID set
    there when known). ``source_server_id``: the source's ``@@server_id`` when it was written, to
    detect a capture pointed at another server. ``files_written``: total change-log files so far.
    ``started_from``: the explicit start (``capture.start: position``) this capture history began
    with, e.g. ``"file binlog.000003:1234"`` — so a restart with the same config resumes here
    instead of applying that start again.
    """

    position: BinlogPosition
    source_server_id: int | None = None
    files_written: int = 0
    started_from: str | None = None
    saved_at: float = field(default_factory=time.time, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            VERSION_KEY: VERSION,
            POSITION_KEY: self.position.to_dict(),
            SERVER_ID_KEY: self.source_server_id,
            "files_written": self.files_written,
            "started_from": self.started_from,
            "saved_at": self.saved_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        """Load; raises :class:`CheckpointError` on a missing key or an unknown version."""
        missing = [key for key in (VERSION_KEY, POSITION_KEY) if key not in data]
        if missing:
            raise CheckpointError(f"capture checkpoint is missing key(s) {missing}")
        if data[VERSION_KEY] != VERSION:
            raise CheckpointError(f"capture checkpoint version {data[VERSION_KEY]!r} is not {VERSION}")
        try:
            position = BinlogPosition.from_dict(data[POSITION_KEY])
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"capture checkpoint position is invalid: {exc}") from None
        server_id = data.get(SERVER_ID_KEY)
        return cls(
            position=position,
            source_server_id=None if server_id is None else int(server_id),
            files_written=int(data.get("files_written", 0)),
            started_from=data.get("started_from"),
            saved_at=float(data.get("saved_at", 0.0)),
        )


def load_checkpoint(lake: Lake) -> Checkpoint | None:
    """The saved checkpoint, or ``None`` when the capture never saved one."""
    try:
        raw = lake.get_bytes(CHECKPOINT_KEY)
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{lake.uri(CHECKPOINT_KEY)} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{lake.uri(CHECKPOINT_KEY)} does not hold a JSON object")
    return Checkpoint.from_dict(data)


def save_checkpoint(lake: Lake, checkpoint: Checkpoint) -> None:
    """Replace the checkpoint atomically. Call only after the files it covers are written."""
    lake.put_bytes(CHECKPOINT_KEY, json.dumps(checkpoint.to_dict(), indent=2).encode())
