"""The full-load state of one table: ``<root>/_binlake/snapshots/<source schema>/<source table>.json``.

Written by the full load after every committed chunk (atomically, see :mod:`binlake.lake`) and read
by the merge to hand off from snapshot to change stream. Format (version 1)::

    {
      "format": 1,
      "load_id": "9f…",                    # one load attempt of this table; resumes keep it
      "status": "loading" | "complete",    # "complete" only after every chunk is committed
      "source": {"schema": …, "table": …},
      "target": {"schema": …, "table": …, "path": "<root>/<schema>/<table>"},
      "prep_mode": "DROP_AND_CREATE",
      "prepared": true,                    # false while the prep mode runs (a resume then starts over)
      "source_server_id": 1 | null,        # @@server_id the chunks were read from (null: older state files)
      "key_columns": ["id"],               # source primary key ([] = none, loaded whole)
      "low_watermark": {"file", "pos", "gtid", "lsn"},   # binlog end read before the first chunk
      "min_position"/"max_position": {"file", "pos", "gtid", "lsn"} | null,  # over all chunks
      "min_lsn"/"max_lsn": int | null,
      "rows": int, "bytes": int | null,  # Parquet bytes this load wrote (Delta commit metrics)
      "started_at", "finished_at": ISO-8601 UTC, "seconds": float,
      "chunks": [{"id", "range": ChunkRange.to_dict(), "predicate", "status": "pending" | "committed",
                  "rows", "position": {…} | null, "read_at", "delta_version", "seconds"}]
    }

Every committed chunk has a ``position`` (the binlog position its snapshot is consistent at): the
exact one, or — only for an empty chunk recovered after a crash — the low watermark, which is a
lower bound. ``min_lsn`` is therefore never above the true minimum of the chunk snapshots.
Positions carry the epoch of the binlog history they were read in (:mod:`binlake.capture.history`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from binlake.chunks import ChunkRange
from binlake.positions import BinlogPosition

FORMAT = 1
LOADING = "loading"
COMPLETE = "complete"
PENDING = "pending"
COMMITTED = "committed"
CREATED_IN_STREAM = "CREATED_IN_STREAM"
"""``prep_mode`` of the state the merge writes for a table created while replication runs: an
empty snapshot at its CREATE (:mod:`binlake.merge.birth`)."""


def _position(data: dict[str, Any] | None) -> BinlogPosition | None:
    return None if data is None else BinlogPosition.from_dict(data)


def _position_dict(position: BinlogPosition | None) -> dict[str, Any] | None:
    return None if position is None else position.to_dict()


def _require(data: dict[str, Any], keys: tuple[str, ...], what: str) -> None:
    missing = [key for key in keys if key not in data]
    if missing:
        raise ValueError(f"{what} is missing key(s) {missing}")


@dataclass(frozen=True)
class ChunkState:
    """One chunk of the plan and, once committed, what was read."""

    id: int
    range: ChunkRange
    predicate: str
    status: str = PENDING
    rows: int = 0
    position: BinlogPosition | None = None
    read_at: str | None = None
    delta_version: int | None = None
    seconds: float | None = None

    @property
    def committed(self) -> bool:
        return self.status == COMMITTED

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "range": self.range.to_dict(),
            "predicate": self.predicate,
            "status": self.status,
            "rows": self.rows,
            "position": _position_dict(self.position),
            "read_at": self.read_at,
            "delta_version": self.delta_version,
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChunkState:
        _require(data, ("id", "range", "predicate", "status"), "chunk state")
        return cls(
            id=int(data["id"]),
            range=ChunkRange.from_dict(data["range"]),
            predicate=str(data["predicate"]),
            status=str(data["status"]),
            rows=int(data.get("rows") or 0),
            position=_position(data.get("position")),
            read_at=data.get("read_at"),
            delta_version=data.get("delta_version"),
            seconds=data.get("seconds"),
        )


@dataclass(frozen=True)
class TableState:
    """The state file of one table (see the module docstring for the JSON layout)."""

    load_id: str
    source_schema: str
    source_table: str
    schema: str
    table: str
    path: str
    prep_mode: str
    key_columns: tuple[str, ...]
    low_watermark: BinlogPosition
    started_at: str
    chunks: tuple[ChunkState, ...]
    status: str = LOADING
    finished_at: str | None = None
    seconds: float | None = None
    size_bytes: int | None = None
    prepared: bool = True  # False between writing the first state and finishing the prep mode
    source_server_id: int | None = None  # @@server_id of the server the chunks were read from

    @property
    def complete(self) -> bool:
        return self.status == COMPLETE

    @property
    def rows(self) -> int:
        return sum(chunk.rows for chunk in self.chunks if chunk.committed)

    @property
    def pending(self) -> list[ChunkState]:
        return [chunk for chunk in self.chunks if not chunk.committed]

    def _positions(self) -> list[BinlogPosition]:
        return [c.position for c in self.chunks if c.committed and c.position is not None]

    @property
    def min_position(self) -> BinlogPosition | None:
        positions = self._positions()
        return min(positions) if positions else None

    @property
    def max_position(self) -> BinlogPosition | None:
        positions = self._positions()
        return max(positions) if positions else None

    def with_chunk(self, chunk: ChunkState) -> TableState:
        """A copy where the chunk with ``chunk.id`` is replaced."""
        chunks = tuple(chunk if c.id == chunk.id else c for c in self.chunks)
        return replace(self, chunks=chunks)

    def completed(self, finished_at: str, seconds: float, size: int | None) -> TableState:
        """The state marked complete; refuses while any chunk is not committed."""
        if self.pending:
            raise ValueError(f"{len(self.pending)} chunk(s) of {self.source_schema}.{self.source_table} "
                             "are not committed: the table cannot be marked complete")
        return replace(self, status=COMPLETE, finished_at=finished_at, seconds=seconds, size_bytes=size)

    def to_dict(self) -> dict[str, Any]:
        low, high = self.min_position, self.max_position
        return {
            "format": FORMAT,
            "load_id": self.load_id,
            "status": self.status,
            "source": {"schema": self.source_schema, "table": self.source_table},
            "target": {"schema": self.schema, "table": self.table, "path": self.path},
            "prep_mode": self.prep_mode,
            "key_columns": list(self.key_columns),
            "low_watermark": self.low_watermark.to_dict(),
            "min_position": _position_dict(low),
            "max_position": _position_dict(high),
            "min_lsn": None if low is None else low.lsn,
            "max_lsn": None if high is None else high.lsn,
            "rows": self.rows,
            "bytes": self.size_bytes,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "seconds": self.seconds,
            "prepared": self.prepared,
            "source_server_id": self.source_server_id,
            "chunks": [chunk.to_dict() for chunk in self.chunks],
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableState:
        keys = ("format", "load_id", "status", "source", "target", "prep_mode", "key_columns",
                "low_watermark", "started_at", "chunks")
        _require(data, keys, "snapshot state")
        if data["format"] != FORMAT:
            raise ValueError(f"snapshot state format {data['format']!r} is not {FORMAT}")
        return cls(
            load_id=str(data["load_id"]),
            source_schema=str(data["source"]["schema"]),
            source_table=str(data["source"]["table"]),
            schema=str(data["target"]["schema"]),
            table=str(data["target"]["table"]),
            path=str(data["target"]["path"]),
            prep_mode=str(data["prep_mode"]),
            key_columns=tuple(data["key_columns"]),
            low_watermark=BinlogPosition.from_dict(data["low_watermark"]),
            started_at=str(data["started_at"]),
            chunks=tuple(ChunkState.from_dict(chunk) for chunk in data["chunks"]),
            status=str(data["status"]),
            finished_at=data.get("finished_at"),
            seconds=data.get("seconds"),
            size_bytes=data.get("bytes"),
            prepared=bool(data.get("prepared", True)),
            source_server_id=None if data.get("source_server_id") is None else int(data["source_server_id"]),
        )

    @classmethod
    def from_json(cls, raw: bytes) -> TableState:
        return cls.from_dict(json.loads(raw))
