"""The values of one online resync: its chunks, what was delivered, what the merge applied (pure).

A resync (:class:`Resync`, the manifest, written only by the resync job) names one lake table, the
key ranges to re-read (:class:`ResyncChunk`: half-open :class:`~binlake.chunks.ChunkRange` s,
start inclusive, end exclusive, ``None`` unbounded) and, per chunk once delivered, the lake folder
holding its rows and the snapshot lsn ``P`` they were read at. :class:`Applied` (written only by
the merge) records which chunks the merge has applied. Splitting the two documents gives each file
exactly one writer.

Each chunk is applied by one Delta commit carrying transaction app id :func:`chunk_app_id`
(``binlake-resync-<resync id>-<chunk index>``, version 0): deterministic, distinct per chunk, so a
commit that happened before a crash is skipped by Delta when the merge applies the chunk again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from binlake.chunks import ChunkRange
from binlake.resync.ranges import ResyncKey

MANIFEST_VERSION = 1
REASONS = ("resync", "repair", "auto")  # auto: binlake.merge.autoresync


def chunk_app_id(resync_id: str, index: int) -> str:
    """The Delta transaction app id of one chunk's commit (its version is always 0)."""
    return f"binlake-resync-{resync_id}-{index}"


def _require(data: dict[str, Any], keys: tuple[str, ...], what: str) -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise ValueError(f"{what} is missing key(s) {missing}")


@dataclass(frozen=True)
class ResyncChunk:
    """One key range of a resync; ``data`` (lake key of its Parquet folder) and ``lsn`` once delivered."""

    index: int
    range: ChunkRange
    predicate: str
    data: str | None = None
    lsn: int | None = None
    rows: int = 0
    read_at: str | None = None
    seconds: float = 0.0

    @property
    def delivered(self) -> bool:
        return self.data is not None and self.lsn is not None

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "range": self.range.to_dict(), "predicate": self.predicate, "data": self.data,
                "lsn": self.lsn, "rows": self.rows, "read_at": self.read_at, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResyncChunk:
        _require(data, ("index", "range", "predicate"), "resync chunk")
        return cls(int(data["index"]), ChunkRange.from_dict(data["range"]), str(data["predicate"]),
                   data.get("data"), None if data.get("lsn") is None else int(data["lsn"]), int(data.get("rows") or 0),
                   data.get("read_at"), float(data.get("seconds") or 0.0))


@dataclass(frozen=True)
class Resync:
    """The manifest of one resync of one table (source and target names, key, chunks).

    ``where`` is the user's selection (``None``: whole table); it only chose *which* chunks are
    re-read — every chunk is re-read whole (see docs/resync.md). ``abandoned``: replaced by a newer
    resync of the table before it was delivered; its delivered chunks are still exact and applied.
    """

    resync_id: str
    source_schema: str
    source_table: str
    schema: str
    table: str
    keys: tuple[ResyncKey, ...]
    created_at: str
    chunks: tuple[ResyncChunk, ...]
    where: str | None = None
    reason: str = "resync"
    abandoned: bool = False
    note: str = ""

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"resync reason must be one of {REASONS}, got {self.reason!r}")
        indexes = [c.index for c in self.chunks]
        if indexes != sorted(set(indexes)):
            raise ValueError(f"resync {self.resync_id}: chunk indexes must be distinct and ascending, got {indexes}")

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The primary key's lake column names."""
        return tuple(k.name for k in self.keys)

    @property
    def qualified_source(self) -> str:
        return f"{self.source_schema}.{self.source_table}"

    @property
    def pending(self) -> tuple[ResyncChunk, ...]:
        """Chunks not delivered yet (never, once abandoned)."""
        return () if self.abandoned else tuple(c for c in self.chunks if not c.delivered)

    @property
    def delivered(self) -> tuple[ResyncChunk, ...]:
        return tuple(c for c in self.chunks if c.delivered)

    @property
    def rows(self) -> int:
        return sum(c.rows for c in self.delivered)

    def with_chunk(self, chunk: ResyncChunk) -> Resync:
        return replace(self, chunks=tuple(chunk if c.index == chunk.index else c for c in self.chunks))

    def to_json(self) -> bytes:
        data = {"version": MANIFEST_VERSION, "resync_id": self.resync_id,
                "source": {"schema": self.source_schema, "table": self.source_table},
                "target": {"schema": self.schema, "table": self.table}, "keys": [k.to_dict() for k in self.keys],
                "created_at": self.created_at, "where": self.where, "reason": self.reason,
                "abandoned": self.abandoned, "note": self.note, "chunks": [c.to_dict() for c in self.chunks]}
        return json.dumps(data, indent=1, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Resync:
        data = json.loads(raw)
        _require(data, ("version", "resync_id", "source", "target", "keys", "created_at", "chunks"),
                 "resync manifest")
        if data["version"] != MANIFEST_VERSION:
            raise ValueError(f"resync manifest version {data['version']} is not supported "
                             f"(expected {MANIFEST_VERSION})")
        keys = tuple(ResyncKey.from_dict(k) for k in data["keys"])
        return cls(str(data["resync_id"]), data["source"]["schema"], data["source"]["table"],
                   data["target"]["schema"], data["target"]["table"], keys,
                   str(data["created_at"]), tuple(ResyncChunk.from_dict(c) for c in data["chunks"]),
                   data.get("where"), str(data.get("reason") or "resync"), bool(data.get("abandoned")),
                   str(data.get("note") or ""))


@dataclass(frozen=True)
class AppliedChunk:
    """How the merge applied one chunk: rows upserted / deleted, or skipped (and why)."""

    index: int
    applied_at: str
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "applied_at": self.applied_at, "inserted": self.inserted,
                "updated": self.updated, "deleted": self.deleted, "skipped": self.skipped}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AppliedChunk:
        _require(data, ("index", "applied_at"), "applied resync chunk")
        return cls(int(data["index"]), str(data["applied_at"]), int(data.get("inserted") or 0),
                   int(data.get("updated") or 0), int(data.get("deleted") or 0), data.get("skipped"))


@dataclass(frozen=True)
class Applied:
    """The chunks of one resync the merge has applied (by chunk index)."""

    resync_id: str
    chunks: dict[int, AppliedChunk] = field(default_factory=dict)

    def with_chunk(self, chunk: AppliedChunk) -> Applied:
        return replace(self, chunks={**self.chunks, chunk.index: chunk})

    def covers(self, resync: Resync) -> bool:
        """Is the resync finished: every chunk applied (an abandoned one: every delivered chunk)?"""
        wanted = resync.delivered if resync.abandoned else resync.chunks
        return all(c.index in self.chunks for c in wanted)

    def to_json(self) -> bytes:
        return json.dumps({"resync_id": self.resync_id,
                           "chunks": [self.chunks[i].to_dict() for i in sorted(self.chunks)]}, indent=1).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Applied:
        data = json.loads(raw)
        _require(data, ("resync_id", "chunks"), "applied resync state")
        return cls(str(data["resync_id"]), {int(c["index"]): AppliedChunk.from_dict(c) for c in data["chunks"]})


def due_chunks(resync: Resync, applied: Applied, applied_lsn: int | None) -> list[ResyncChunk]:
    """The delivered chunks the merge may apply now, in index order: not applied yet and read at a
    snapshot lsn ``P <= applied_lsn`` — every change of the table up to ``P`` is in the lake, so no
    change at or below ``P`` can arrive after the chunk but a replay of one already applied (which
    the rows' lsns and the tombstones turn away; see docs/resync.md)."""
    if applied_lsn is None:
        return []
    return [c for c in resync.delivered
            if c.index not in applied.chunks and c.lsn is not None and c.lsn <= applied_lsn]
