"""Which lake rows lie in a resync chunk's key range (pure: Spark SQL text only).

A chunk's range is half-open in the *source's* key order (start inclusive, end exclusive, ``None``
unbounded; :class:`binlake.chunks.ChunkRange`). The merge must decide, for every lake row, whether
it lies in the range — a lake row in the range that the chunk lacks is deleted. That decision is
exact only when Spark orders the lake keys as MariaDB orders the source keys, which is what
:func:`binlake.validation.canonical.lake_chunk_index_sql` guarantees (integers, DECIMAL, dates and
times, binary strings, text under a binary UTF-8 collation) or refuses with ``NotExact``. A resync of
a table whose key is not ordered alike (text under a ``_ci`` collation, TIME, FLOAT) or whose
boundaries have no exact lake value is planned as one chunk covering the whole table, for which
membership is trivially exact (:func:`exact_problem` says why).

Lake rows with a NULL key part (a zero date in the source key maps to NULL) lie in no bounded
range — a bounded chunk never deletes them; the whole-table chunk does (see docs/resync.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from binlake.chunks import ChunkRange
from binlake.typemap import ColumnType, spark_type
from binlake.validation.canonical import LakeKey, NotExact, lake_chunk_index_sql, spark_column


@dataclass(frozen=True)
class ResyncKey:
    """One primary-key column: lake name, source type spec and source collation (text keys)."""

    name: str
    type: str
    collation: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "collation": self.collation}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResyncKey:
        return cls(str(data["name"]), str(data["type"]), data.get("collation"))


def _lake_keys(keys: Sequence[ResyncKey], qualifier: str | None) -> list[LakeKey]:
    prefix = f"{qualifier}." if qualifier else ""
    return [LakeKey(ColumnType.parse(k.type), prefix + spark_column(k.name), k.collation) for k in keys]


def lake_range_sql(chunk: ChunkRange, keys: Sequence[ResyncKey], qualifier: str | None = None) -> str:
    """Spark SQL: the lake row lies in ``chunk`` (columns prefixed with ``qualifier.``). ``TRUE`` for
    the whole key space. Raises ``NotExact`` where the lake cannot order the key as the source."""
    if chunk.is_whole:
        return "TRUE"
    if chunk.start is None:
        assert chunk.end is not None
        parts, index = [ChunkRange(None, chunk.end), ChunkRange(chunk.end, None)], 0
    elif chunk.end is None:
        parts, index = [ChunkRange(None, chunk.start), ChunkRange(chunk.start, None)], 1
    else:
        parts, index = [ChunkRange(None, chunk.start), chunk, ChunkRange(chunk.end, None)], 1
    return f"(({lake_chunk_index_sql(parts, _lake_keys(keys, qualifier))}) = {index})"


_INTEGER_SUFFIX = {"tinyint": "Y", "smallint": "S", "int": "", "bigint": "L"}  # Spark typed literals


def lake_skipping_sql(chunk: ChunkRange, keys: Sequence[ResyncKey], qualifier: str | None = None) -> str:
    """Spark SQL implied by :func:`lake_range_sql` that Delta's data skipping can evaluate on a file's
    min/max statistics: ``start[0] <= k1 <= end[0]`` on the leading key column, as literals of the
    column's own lake type (the range expression itself is a CASE, which data skipping cannot use).
    Only for a leading column whose lake type is a Spark integer type; ``TRUE`` otherwise and for the
    whole key space. AND it with the range: it never excludes a row of the range."""
    if not keys or chunk.is_whole:
        return "TRUE"
    suffix = _INTEGER_SUFFIX.get(spark_type(ColumnType.parse(keys[0].type)).lower())
    if suffix is None:
        return "TRUE"
    column = _lake_keys(keys[:1], qualifier)[0].column
    terms = [f"{column} {op} {int(bound[0])}{suffix}" for op, bound in ((">=", chunk.start), ("<=", chunk.end))
             if bound is not None and isinstance(bound[0], int) and not isinstance(bound[0], bool)]
    return " AND ".join(terms) or "TRUE"


def exact_problem(ranges: Sequence[ChunkRange], keys: Sequence[ResyncKey]) -> str | None:
    """Why the lake cannot place its rows in ``ranges`` exactly (``None``: it can)."""
    if len(ranges) <= 1 and all(r.is_whole for r in ranges):
        return None
    try:
        for chunk in ranges:
            lake_range_sql(chunk, keys)
    except NotExact as exc:
        return str(exc)
    return None
