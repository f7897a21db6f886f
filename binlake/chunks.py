"""Primary-key chunk splitting for the full load (pure: no database, no Spark).

A table is read as a list of :class:`ChunkRange` s over its primary key. Ranges are half-open —
``start`` inclusive, ``end`` exclusive, ``None`` unbounded — and compare keys *lexicographically in
the source's own ordering* (the column collation for strings). Every planner here returns ranges
that **tile the whole key space**: the first range has ``start=None``, the last ``end=None``, and
each range starts exactly where the previous one ends. So every possible key, including keys
inserted while the load runs and keys outside the sampled min/max, falls in exactly one range:
no gaps, no overlaps, by construction.

Chunk sizes are bounded in rows and in bytes (:func:`rows_per_chunk`: the rows of ``chunk_bytes``
at the table's estimated row size), so a table of wide rows gets proportionally smaller chunks.

Planners:

* :func:`plan_integer_chunks` — a single integer key: an even split of ``[min, max]`` into
  ``ceil(rows / chunk_rows)`` ranges. It refuses (returns ``None``) when the keys are too sparse
  (``max - min + 1 > max_spread * rows``); then every range's width bounds its row count only
  loosely, so the caller samples instead. When it accepts, a range holds at most
  ``ceil((max - min + 1) / n)`` ≤ ``max_spread * chunk_rows`` (+1) rows, whatever the skew.
* :func:`boundaries_from_sample` + :func:`ranges_from_boundaries` — any key (composite,
  string, binary, temporal, sparse/skewed integers): boundaries are quantiles of a key sample
  that the *source* sorted (so its collation decides the order; Python never compares them).

:func:`render_predicate` turns a range into a MySQL/MariaDB ``WHERE`` predicate with backtick
quoted identifiers and injection-safe literals. Composite keys are rendered either as row-value
comparisons ``(a, b) >= (x, y)`` (``style="row"``) or — the default — as the equivalent
lexicographic expansion ``a > x OR (a = x AND b >= y)``, because MariaDB 10.x does not use an
index range for row-value comparisons (it scans the whole table) but does for the expansion.

Example::

    >>> ranges = plan_integer_chunks(1, 1000, rows=1000, chunk_rows=400)
    >>> [render_predicate(r, ["id"]) for r in ranges]
    ['`id` < 335', '`id` >= 335 AND `id` < 669', '`id` >= 669']
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

KeyValue = int | str | bytes | Decimal | float | dt.datetime | dt.date | dt.time | dt.timedelta
Key = tuple[KeyValue, ...]
PredicateStyle = Literal["expanded", "row"]

_KEY_TYPES = (int, str, bytes, Decimal, float, dt.datetime, dt.date, dt.time, dt.timedelta)
_SAFE_TEXT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.:/@+=,#")


def _check_key(name: str, key: Key | None) -> None:
    if key is None:
        return
    if not isinstance(key, tuple) or not key:
        raise TypeError(f"ChunkRange.{name} must be a non-empty tuple of key values or None, got {key!r}")
    for value in key:
        if isinstance(value, bool) or not isinstance(value, _KEY_TYPES):
            raise TypeError(f"ChunkRange.{name}: unsupported key value {value!r} ({type(value).__name__})")


def _all_numeric(key: Key) -> bool:
    return all(isinstance(v, int | Decimal | float) and not isinstance(v, bool) for v in key)


@dataclass(frozen=True)
class ChunkRange:
    """The keys ``k`` with ``start <= k < end`` (lexicographic, source ordering); ``None`` = unbounded.

    The constructor checks that both bounds are ``None`` or non-empty tuples of supported values
    with the same arity, and — where Python's order provably equals the source's (all-numeric
    keys) — that ``start < end``. String bounds are ordered by the source collation, which
    Python cannot check; planners only build them from source-sorted samples.
    """

    start: Key | None = None
    end: Key | None = None

    def __post_init__(self) -> None:
        _check_key("start", self.start)
        _check_key("end", self.end)
        if self.start is not None and self.end is not None:
            if len(self.start) != len(self.end):
                raise ValueError(f"ChunkRange bounds differ in arity: {self.start!r} vs {self.end!r}")
            if _all_numeric(self.start) and _all_numeric(self.end) and not self.start < self.end:
                raise ValueError(f"ChunkRange start {self.start!r} must be < end {self.end!r}")

    @property
    def is_whole(self) -> bool:
        """True for the range covering every key."""
        return self.start is None and self.end is None

    def contains(self, key: Key) -> bool:
        """Whether ``key`` lies in the range by *Python* ordering (exact for numeric keys)."""
        return (self.start is None or key >= self.start) and (self.end is None or key < self.end)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form; :meth:`from_dict` restores an equal range (values keep their types)."""
        return {"start": _encode_key(self.start), "end": _encode_key(self.end)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChunkRange:
        missing = [k for k in ("start", "end") if k not in data]
        if missing:
            raise ValueError(f"chunk range is missing key(s) {missing}: {data!r}")
        return cls(_decode_key(data["start"]), _decode_key(data["end"]))

    def __str__(self) -> str:
        low = "-inf" if self.start is None else ", ".join(map(str, self.start))
        high = "+inf" if self.end is None else ", ".join(map(str, self.end))
        return f"[{low} .. {high})"


WHOLE = ChunkRange()


# ---------------------------------------------------------------------------------------------
# planning


def chunk_count(rows: int, chunk_rows: int) -> int:
    """How many chunks ``rows`` rows need at ``chunk_rows`` per chunk (at least 1)."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    return max(1, math.ceil(rows / chunk_rows))


def rows_per_chunk(chunk_rows: int, chunk_bytes: int, row_bytes: int) -> int:
    """Rows per chunk bounded by rows and by bytes: at most ``chunk_rows`` rows and at most
    ``chunk_bytes // row_bytes`` (estimated bytes of a row), never fewer than 1.

    >>> rows_per_chunk(250_000, 1 << 20, 65_600)
    15
    """
    if chunk_rows < 1 or chunk_bytes < 1:
        raise ValueError(f"chunk_rows and chunk_bytes must be >= 1, got {chunk_rows} and {chunk_bytes}")
    return max(1, min(chunk_rows, chunk_bytes // max(1, row_bytes)))


def ranges_from_boundaries(boundaries: Sequence[Key]) -> list[ChunkRange]:
    """``[b1, b2, …, bn]`` → ``[-inf, b1), [b1, b2), …, [bn, +inf)``: n+1 ranges tiling the key space.

    ``boundaries`` must be strictly increasing in the source's order (sorted, distinct).
    """
    ranges: list[ChunkRange] = []
    previous: Key | None = None
    for boundary in boundaries:
        ranges.append(ChunkRange(previous, tuple(boundary)))
        previous = tuple(boundary)
    ranges.append(ChunkRange(previous, None))
    return ranges


def even_integer_boundaries(low: int, high: int, chunks: int) -> list[int]:
    """``chunks - 1`` boundaries splitting ``[low, high]`` into ``chunks`` ranges of (almost) equal width."""
    if high < low:
        raise ValueError(f"high ({high}) must be >= low ({low})")
    if chunks < 1:
        raise ValueError(f"chunks must be >= 1, got {chunks}")
    span = high - low + 1
    chunks = min(chunks, span)
    width = math.ceil(span / chunks)
    return [low + width * i for i in range(1, chunks) if low + width * i <= high]


def plan_integer_chunks(
    low: int | None, high: int | None, rows: int, chunk_rows: int, max_spread: float = 2.0
) -> list[ChunkRange] | None:
    """Even split of a single integer key ``[low, high]`` (``None`` for an empty table).

    Returns ``None`` when the keys are sparser than ``max_spread`` key values per row — the even
    split could then put far more than ``chunk_rows`` rows into one range; sample instead.
    """
    if low is None or high is None or rows <= chunk_rows:
        return [WHOLE]
    if high - low + 1 > max_spread * rows:
        return None
    bounds = even_integer_boundaries(low, high, chunk_count(rows, chunk_rows))
    return ranges_from_boundaries([(b,) for b in bounds])


def sample_size(rows: int, chunk_rows: int, per_chunk: int = 50, cap: int = 200_000) -> int:
    """Keys to sample for ``rows`` rows: ``per_chunk`` per planned chunk, at most ``cap``."""
    return min(cap, rows, chunk_count(rows, chunk_rows) * per_chunk)


def boundaries_from_sample(sorted_sample: Sequence[Key], chunks: int) -> list[Key]:
    """``chunks - 1`` quantile boundaries of a key sample sorted (and de-duplicated) by the source.

    Picks the keys at positions ``round(i * len / chunks)``; a key is never picked twice, so the
    result is strictly increasing whenever the sample is. Fewer boundaries come back when the
    sample has fewer distinct keys than ``chunks``.
    """
    if chunks < 1:
        raise ValueError(f"chunks must be >= 1, got {chunks}")
    size = len(sorted_sample)
    picked: list[Key] = []
    last_index = 0
    for i in range(1, chunks):
        index = round(i * size / chunks)
        if index <= last_index or index >= size:
            continue
        picked.append(tuple(sorted_sample[index]))
        last_index = index
    return picked


# ---------------------------------------------------------------------------------------------
# rendering


def quote_identifier(name: str) -> str:
    """Backtick-quote a MySQL identifier (backticks inside are doubled)."""
    if not name:
        raise ValueError("identifier must not be empty")
    if "\x00" in name:
        raise ValueError(f"identifier {name!r} contains NUL")
    return "`" + name.replace("`", "``") + "`"


def render_literal(value: KeyValue) -> str:
    """A MySQL literal for a key value, safe whatever ``sql_mode`` (no backslash escapes needed).

    Plain text renders as ``'text'``; any other text as ``_utf8mb4 X'<hex>'`` (a character string
    literal: the column collation still applies); bytes as ``X'<hex>'``.
    """
    if isinstance(value, bool):
        raise TypeError(f"boolean key value {value!r} is not supported")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"non-finite decimal key value {value!r}")
        return format(value, "f")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"non-finite float key value {value!r}")
        return repr(value)
    if isinstance(value, str):
        if all(ch in _SAFE_TEXT for ch in value):
            return f"'{value}'"
        return "_utf8mb4 X'" + value.encode("utf-8").hex().upper() + "'"
    if isinstance(value, bytes | bytearray):
        return "X'" + bytes(value).hex().upper() + "'"
    if isinstance(value, dt.datetime):
        return "'" + value.strftime("%Y-%m-%d %H:%M:%S.%f") + "'"
    if isinstance(value, dt.date):
        return "'" + value.isoformat() + "'"
    if isinstance(value, dt.time):
        return "'" + value.strftime("%H:%M:%S.%f") + "'"
    if isinstance(value, dt.timedelta):
        return "'" + _format_timedelta(value) + "'"
    raise TypeError(f"unsupported key value {value!r} ({type(value).__name__})")


def _format_timedelta(value: dt.timedelta) -> str:
    micros = value // dt.timedelta(microseconds=1)
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    seconds, fraction = divmod(micros, 1_000_000)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours:02d}:{minutes:02d}:{secs:02d}.{fraction:06d}"


def _bound_expanded(columns: Sequence[str], key: Key, last_op: str, strict_op: str) -> str:
    terms: list[str] = []
    for i, column in enumerate(columns):
        equal = [f"{columns[j]} = {render_literal(key[j])}" for j in range(i)]
        op = last_op if i == len(columns) - 1 else strict_op
        parts = [*equal, f"{column} {op} {render_literal(key[i])}"]
        terms.append(parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")")
    return terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"


def _bound_row(columns: Sequence[str], key: Key, op: str) -> str:
    if len(columns) == 1:
        return f"{columns[0]} {op} {render_literal(key[0])}"
    left = "(" + ", ".join(columns) + ")"
    right = "(" + ", ".join(render_literal(v) for v in key) + ")"
    return f"{left} {op} {right}"


def render_predicate(
    chunk: ChunkRange,
    key_columns: Sequence[str],
    style: PredicateStyle = "expanded",
    qualifier: str | None = None,
) -> str:
    """The SQL predicate selecting exactly the rows of ``chunk`` (``1=1`` for the whole table).

    ``key_columns`` are unquoted column names (quoted here); ``qualifier`` an optional unquoted
    table alias prefixed to each. ``style="expanded"`` gives the index-friendly lexicographic
    expansion, ``style="row"`` row-value comparisons; both select the same rows.
    """
    if not key_columns:
        if not chunk.is_whole:
            raise ValueError("a bounded chunk needs key columns")
        return "1=1"
    for name, key in (("start", chunk.start), ("end", chunk.end)):
        if key is not None and len(key) != len(key_columns):
            raise ValueError(f"chunk {name} {key!r} does not match key columns {list(key_columns)}")
    prefix = quote_identifier(qualifier) + "." if qualifier else ""
    quoted = [prefix + quote_identifier(c) for c in key_columns]
    parts: list[str] = []
    if chunk.start is not None:
        if style == "row":
            parts.append(_bound_row(quoted, chunk.start, ">="))
        else:
            parts.append(_bound_expanded(quoted, chunk.start, ">=", ">"))
    if chunk.end is not None:
        if style == "row":
            parts.append(_bound_row(quoted, chunk.end, "<"))
        else:
            parts.append(_bound_expanded(quoted, chunk.end, "<", "<"))
    return " AND ".join(parts) if parts else "1=1"


# ---------------------------------------------------------------------------------------------
# JSON form of key values (types survive the round trip)

_ENCODERS: dict[type, tuple[str, Any]] = {
    int: ("int", lambda v: v),
    str: ("str", lambda v: v),
    bytes: ("bytes", lambda v: v.hex()),
    Decimal: ("decimal", lambda v: format(v, "f")),
    float: ("float", lambda v: repr(v)),
    dt.datetime: ("datetime", lambda v: v.isoformat()),
    dt.date: ("date", lambda v: v.isoformat()),
    dt.time: ("time", lambda v: v.isoformat()),
    dt.timedelta: ("timedelta", lambda v: v // dt.timedelta(microseconds=1)),
}
_DECODERS: dict[str, Any] = {
    "int": int,
    "str": str,
    "bytes": bytes.fromhex,
    "decimal": Decimal,
    "float": float,
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "timedelta": lambda v: dt.timedelta(microseconds=int(v)),
}


def _encode_value(value: KeyValue) -> dict[str, Any]:
    for kind in type(value).__mro__:
        if kind in _ENCODERS and kind is not object:
            tag, encode = _ENCODERS[kind]
            return {"type": tag, "value": encode(value)}
    raise TypeError(f"cannot encode key value {value!r}")


def _encode_key(key: Key | None) -> list[dict[str, Any]] | None:
    return None if key is None else [_encode_value(v) for v in key]


def _decode_key(data: list[dict[str, Any]] | None) -> Key | None:
    if data is None:
        return None
    try:
        return tuple(_DECODERS[item["type"]](item["value"]) for item in data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"bad encoded chunk key {data!r}: {exc}") from None
