"""Chunk checksums that the source and the lake compute alike (pure: SQL text only).

A chunk's checksum is ``(COUNT(*), SUM(h(row)))`` where ``h`` is the first 64 bits of the MD5 of
the row's *canonical text*, as an unsigned integer. The sum is exact (MariaDB sums in DECIMAL,
Spark sums the two 32-bit halves as BIGINTs), so the checksum does not depend on row order, and
only two numbers per chunk cross the wire.

The canonical text of a row is the concatenation of one field per column, in column order:
``N`` for SQL NULL; for a value, ``<byte length>:<text>`` when the type's text may hold any
character (strings, JSON, ENUM, SET), else ``<text>;`` (numbers, dates, hex — never a ``;``, never
a leading ``N``). Each column's code is prefix-free, so the concatenation is injective: no
separator inside a value, no NULL marker can be confused with a value.

The canonical text of a value is computed by MariaDB from the source column
(:func:`source_text_sql`) and by Spark from the lake value (:func:`lake_text_sql`); for every type
that :func:`checksum_problem` accepts the two are the same UTF-8 text for the same lake value, and
that text determines the lake value (it is injective). Source values that the lake maps to the same
value (zero dates → NULL) get the same text, because the comparison is of lake values — exactly as
the row-by-row comparison does.

Types without such a pair — FLOAT and DOUBLE: MariaDB prints a DOUBLE with at most 15 significant
digits (``0.1 + 0.2`` → ``0.3``), which loses information — make the table fall back to the
row-by-row comparison.

To compare chunk by chunk, every lake row is assigned to its chunk by :func:`lake_chunk_index_sql`,
a Spark expression comparing the lake key with the chunk plan's boundaries. That is only right when
Spark orders the lake keys exactly as MariaDB orders the source keys: integers, DECIMAL, dates and
times, binary strings, and text under a binary collation of a UTF-8 character set (UTF-8 byte
order is code point order; ``_bin`` collations are PAD SPACE, which the expression emulates).
Anything else (``_ci`` collations, TIME, FLOAT) raises :class:`NotExact` — again the caller falls
back to rows. Lake rows whose key is NULL (a zero date in the key) cannot be placed; they get chunk
``UNASSIGNED`` and the caller compares them row by row.

Example::

    >>> lake_text_sql(ColumnType("bit", precision=1), "`b`")
    'CAST(CAST(`b` AS INT) AS STRING)'
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from binlake.chunks import ChunkRange, KeyValue
from binlake.typemap import (
    BINARY_TYPES,
    CHAR_TYPES,
    INTEGER_TYPES,
    ColumnType,
    source_select_sql,
    spark_type,
)

UNASSIGNED = -1
"""Chunk index of lake rows whose key has a NULL part (a zero date): they fit no range."""

NULL_FIELD = "N"
FREE_TEXT = frozenset((*CHAR_TYPES, "json", "enum", "set"))
"""Types whose canonical text may hold any character: their fields are length-prefixed. The text of
every other type is digits, hex digits, sign, ``.``, ``:``, ``-`` and space — never ``;``, never
starting with ``N`` — and ends with ``;``."""
_UTF8_CHARSETS = ("utf8mb4", "utf8mb3", "utf8", "ascii")


class NotExact(ValueError):
    """The checksum cannot be computed exactly for this table (the message says why)."""


# --------------------------------------------------------------------------------------------------
# Canonical text of one value
# --------------------------------------------------------------------------------------------------

def checksum_problem(ct: ColumnType) -> str | None:
    """Why a column of type ``ct`` cannot take part in a checksum (``None`` when it can)."""
    if ct.base in ("float", "double"):
        return f"{ct.spec} has no exact text on the source (MariaDB prints at most 15 digits)"
    return None


def source_text_sql(ct: ColumnType, quoted_column: str) -> str:
    """MariaDB expression: the canonical text (utf8mb4) of the source column, or NULL.

    Built on the full load's own select expression, so the value is the one the full load reads;
    TIMESTAMP is the instant in epoch microseconds (no time zone involved). The session must run
    with ``time_zone='+00:00'`` (binlake's JDBC sessions do).
    """
    _require_exact(ct)
    c = quoted_column
    if ct.base == "timestamp":
        text = f"CASE WHEN UNIX_TIMESTAMP({c}) = 0 THEN NULL ELSE CAST(UNIX_TIMESTAMP({c}) * 1000000 AS SIGNED) END"
    else:
        text = source_select_sql(ct, c)
    return f"CONVERT({text} USING utf8mb4)"


def lake_text_sql(ct: ColumnType, column: str) -> str:
    """Spark SQL expression: the canonical text of the lake value ``column`` (of type ``spark_type(ct)``)."""
    _require_exact(ct)
    base, target = ct.base, spark_type(ct)
    if target == "binary":  # the full load stored UNHEX(HEX(value)); MariaDB's HEX is upper-case too
        return f"HEX({column})"
    if target == "boolean":  # BIT(1)
        return f"CAST(CAST({column} AS INT) AS STRING)"
    if base == "decimal" and target != "string":
        return _plain_decimal(column, ct.scale or 0)
    if base == "date":
        return f"DATE_FORMAT({column}, 'yyyy-MM-dd')"
    if base == "datetime":
        fraction = "." + "S" * ct.scale if ct.scale else ""
        return f"DATE_FORMAT({column}, 'yyyy-MM-dd HH:mm:ss{fraction}')"
    if base == "timestamp":
        return f"CAST(UNIX_MICROS({column}) AS STRING)"
    if target == "string":  # text, JSON, ENUM, SET, TIME, DECIMAL(p>38), UUID, INET: the source's text
        return column
    return f"CAST({column} AS STRING)"  # integers, YEAR, BIT(2..64)


def _plain_decimal(column: str, scale: int) -> str:
    """Spark prints a decimal like Java's ``BigDecimal.toString``: in scientific notation when its
    adjusted exponent is below -6 (``0E-30``, ``1.0E-20``). Then ``|value| < 1`` and the mantissa's
    digits are the unscaled value: rebuild MariaDB's ``[-]0.<scale digits>``."""
    text = f"CAST({column} AS STRING)"
    digits = f"REPLACE(REPLACE(SUBSTRING_INDEX({text}, 'E', 1), '-', ''), '.', '')"
    plain = f"CONCAT(IF({column} < 0, '-', ''), '0.', LPAD({digits}, {scale}, '0'))"
    return f"CASE WHEN INSTR({text}, 'E') > 0 THEN {plain} ELSE {text} END"


def _require_exact(ct: ColumnType) -> None:
    problem = checksum_problem(ct)
    if problem:
        raise NotExact(problem)


def spark_column(name: str) -> str:
    """A backtick-quoted Spark column reference (backticks inside doubled)."""
    return "`" + name.replace("`", "``") + "`"


# --------------------------------------------------------------------------------------------------
# Row hash
# --------------------------------------------------------------------------------------------------

def source_row_hash_sql(columns: Sequence[tuple[ColumnType, str]]) -> str:
    """MariaDB expression: ``h(row)`` as BIGINT UNSIGNED, for ``[(type, quoted column), …]``."""
    if not columns:
        raise ValueError("columns must not be empty")
    fields = []
    for ct, quoted in columns:
        text = source_text_sql(ct, quoted)
        value = f"CONCAT(LENGTH({text}), ':', {text})" if ct.base in FREE_TEXT else f"CONCAT({text}, ';')"
        fields.append(f"IFNULL({value}, '{NULL_FIELD}')")
    return f"CAST(CONV(LEFT(MD5(CONCAT({', '.join(fields)})), 16), 16, 10) AS UNSIGNED)"


def lake_row_hash_sql(columns: Sequence[tuple[ColumnType, str]]) -> tuple[str, str]:
    """Spark SQL expressions: the high and low 32 bits of ``h(row)`` as BIGINTs (``h = high · 2³² +
    low``), for ``[(type, lake column expression), …]``. Summing two BIGINTs is much cheaper in
    Spark than summing a DECIMAL(20,0); the caller combines the sums."""
    if not columns:
        raise ValueError("columns must not be empty")
    fields = []
    for ct, column in columns:
        text = lake_text_sql(ct, column)
        value = (f"CONCAT(CAST(OCTET_LENGTH({text}) AS STRING), ':', {text})" if ct.base in FREE_TEXT
                 else f"CONCAT({text}, ';')")
        fields.append(f"COALESCE({value}, '{NULL_FIELD}')")
    digest = f"MD5(CONCAT({', '.join(fields)}))"
    return (f"CAST(CONV(SUBSTR({digest}, 1, 8), 16, 10) AS BIGINT)",
            f"CAST(CONV(SUBSTR({digest}, 9, 8), 16, 10) AS BIGINT)")


# --------------------------------------------------------------------------------------------------
# Lake rows → chunks
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LakeKey:
    """One primary-key column as the lake sees it: source type, Spark column expression, and the
    source collation (``None`` for non-text columns and binary strings)."""

    type: ColumnType
    column: str
    collation: str | None = None


def key_order_problem(key: LakeKey) -> str | None:
    """Why Spark's order of this lake key column may differ from MariaDB's (``None``: it does not)."""
    base, target = key.type.base, spark_type(key.type)
    if base in INTEGER_TYPES or base in ("year", "date", "datetime", "timestamp"):
        return None
    if base == "decimal":
        return None if target != "string" else f"{key.type.spec} keys are text in the lake"
    if base in BINARY_TYPES:
        return None
    if base in CHAR_TYPES:
        collation = (key.collation or "").lower()
        charset, _, rest = collation.partition("_")
        if charset in _UTF8_CHARSETS and rest in ("bin", "nopad_bin"):
            return None
        return (f"text key under collation {key.collation or '?'}: MariaDB's order differs from Spark's "
                "byte order (case, accents, trailing spaces)")
    return f"{key.type.spec} keys are not ordered alike in MariaDB and Spark"


def lake_chunk_index_sql(ranges: Sequence[ChunkRange], keys: Sequence[LakeKey]) -> str:
    """Spark SQL expression: the index in ``ranges`` of the chunk holding a lake row's key.

    ``ranges`` tile the key space in order (as :func:`binlake.snapshot.planning.plan_chunks`
    returns them), so a row belongs to the first range whose end is above its key. Rows with a NULL
    key part get :data:`UNASSIGNED`. Raises :class:`NotExact` when Spark's order of these keys may
    differ from MariaDB's, or a boundary has no exact lake value.
    """
    if not ranges:
        raise ValueError("ranges must not be empty")
    if len(ranges) == 1:
        return "0"
    if not keys:
        raise ValueError("a table with several chunks needs key columns")
    for key in keys:
        problem = key_order_problem(key)
        if problem:
            raise NotExact(problem)
    null_key = " OR ".join(f"{k.column} IS NULL" for k in keys)
    branches = [f"WHEN {null_key} THEN {UNASSIGNED}"]
    for index, chunk in enumerate(ranges[:-1]):
        if chunk.end is None or len(chunk.end) != len(keys):
            raise ValueError(f"chunk {index} {chunk} is not followed by a range: ranges must tile the key space")
        branches.append(f"WHEN {_below(keys, chunk.end)} THEN {index}")
    return f"CASE {' '.join(branches)} ELSE {len(ranges) - 1} END"


def _below(keys: Sequence[LakeKey], bound: tuple[KeyValue, ...]) -> str:
    """``key < bound`` lexicographically: ``k1 < b1 OR (k1 = b1 AND k2 < b2) OR …``."""
    terms = []
    for i, key in enumerate(keys):
        parts = [_compare(keys[j], bound[j], "=") for j in range(i)]
        parts.append(_compare(key, bound[i], "<"))
        terms.append("(" + " AND ".join(parts) + ")")
    return "(" + " OR ".join(terms) + ")"


def _compare(key: LakeKey, value: KeyValue, op: str) -> str:
    literal = spark_literal(key.type, value)
    if key.type.base in CHAR_TYPES and not (key.collation or "").lower().endswith("_nopad_bin"):
        # PAD SPACE: MariaDB compares as if the shorter string were padded with spaces
        assert isinstance(value, str)
        width = f"GREATEST(CHAR_LENGTH({key.column}), {len(value)})"
        return f"RPAD({key.column}, {width}, ' ') {op} RPAD({literal}, {width}, ' ')"
    return f"{key.column} {op} {literal}"


def spark_literal(ct: ColumnType, value: KeyValue) -> str:
    """A Spark SQL literal of ``value`` (a chunk boundary as the source returned it) in the lake
    type of ``ct``; :class:`NotExact` when the value has no exact lake value (e.g. a zero date,
    which the driver returns as text)."""
    base, target = ct.base, spark_type(ct)
    if base in INTEGER_TYPES or base == "year":
        if isinstance(value, int) and not isinstance(value, bool):
            return f"CAST('{value}' AS {target.upper()})"
    elif base == "decimal" and target != "string":
        if isinstance(value, int | Decimal) and not isinstance(value, bool) and Decimal(value).is_finite():
            return f"CAST('{format(Decimal(value), 'f')}' AS {target.upper()})"
    elif base == "date":
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return f"DATE'{value.isoformat()}'"
    elif base in ("datetime", "timestamp"):
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            text = value.strftime("%Y-%m-%d %H:%M:%S.%f")
            return f"TIMESTAMP_NTZ'{text}'" if base == "datetime" else f"CAST('{text}Z' AS TIMESTAMP)"
    elif base in CHAR_TYPES:
        if isinstance(value, str):
            return f"DECODE(UNHEX('{value.encode('utf-8').hex().upper()}'), 'UTF-8')"
    elif base in BINARY_TYPES and isinstance(value, bytes):
        return f"X'{value.hex().upper()}'"
    raise NotExact(f"key value {value!r} has no exact {target} value in the lake")


__all__ = [
    "UNASSIGNED",
    "LakeKey",
    "NotExact",
    "checksum_problem",
    "key_order_problem",
    "lake_chunk_index_sql",
    "lake_row_hash_sql",
    "lake_text_sql",
    "source_row_hash_sql",
    "source_text_sql",
    "spark_column",
    "spark_literal",
]
