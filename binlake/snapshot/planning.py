"""The chunk plan of one table, from a few cheap queries on the source (the splitting is pure: chunks.py).

* No primary key, no more rows than ``chunk_rows``, or a key type whose comparisons do not follow its
  sort order (ENUM, SET, BIT, FLOAT, UUID, INET): one chunk, the whole table.
* A single integer key whose values are dense enough (``max - min + 1 <= 2 * rows``): an even split
  of ``[min, max]`` — two index look-ups and a count; no chunk holds more than ~2x ``chunk_rows``.
* Anything else (composite, string, binary, temporal keys; sparse or skewed integers): quantile
  boundaries from a random key sample that the *source* sorts (``ORDER BY`` the key, so the column
  collation decides the order). This reads the table's key once on the server.

Chunk sizes come in rows (``rows_per_chunk`` of the row and byte bounds, :func:`binlake.chunks.rows_per_chunk`);
:func:`estimate_row_bytes` gives the row size they are computed from.

Row counts are exact (``COUNT(*)``) below ``EXACT_COUNT_LIMIT`` estimated rows, else the server's
estimate; the count only sizes chunks, the ranges tile the key space whatever it says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from binlake.chunks import (
    WHOLE,
    ChunkRange,
    Key,
    boundaries_from_sample,
    chunk_count,
    plan_integer_chunks,
    quote_identifier,
    ranges_from_boundaries,
    sample_size,
)
from binlake.snapshot.discovery import SourceTable
from binlake.source import Connection

INTEGER_BASES = frozenset({"tinyint", "smallint", "mediumint", "int", "bigint"})
EXACT_COUNT_LIMIT = 2_000_000  # an exact COUNT(*) scans the table: 2.6 s of a 10M-row load here
# key types whose SQL comparison with a literal follows the ORDER BY order (ENUM/SET compare as text
# but sort by index; BIT, FLOAT and MariaDB's UUID/INET types are left whole rather than risk it)
SPLITTABLE_BASES = INTEGER_BASES | frozenset({
    "decimal", "double", "year", "date", "datetime", "timestamp", "time", "char", "varchar", "tinytext",
    "text", "mediumtext", "longtext", "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob",
})


@dataclass(frozen=True)
class ChunkPlan:
    """The ranges of one table and how they were found (for the log)."""

    ranges: tuple[ChunkRange, ...]
    rows: int
    method: str


def _scalar(conn: Connection, sql: str) -> Any:
    with conn.cursor() as cur:
        cur.execute(sql)
        row = cur.fetchone()
        return None if row is None else row[0]


def table_sql(table: SourceTable) -> str:
    return f"{quote_identifier(table.schema)}.{quote_identifier(table.name)}"


def count_rows(conn: Connection, table: SourceTable) -> int:
    """Exact for tables estimated below :data:`EXACT_COUNT_LIMIT` rows, else the server's estimate."""
    if table.estimated_rows >= EXACT_COUNT_LIMIT:
        return table.estimated_rows
    return int(_scalar(conn, f"SELECT COUNT(*) FROM {table_sql(table)}"))


def _sample(conn: Connection, table: SourceTable, rows: int, chunk_rows: int) -> list[Key]:
    want = sample_size(rows, chunk_rows)
    fraction = min(1.0, 2.0 * want / max(rows, 1))
    keys = ", ".join(quote_identifier(k) for k in table.key_columns)
    where = "" if fraction >= 1.0 else f" WHERE RAND() < {fraction:.9f}"
    with conn.cursor() as cur:
        cur.execute(f"SELECT {keys} FROM {table_sql(table)}{where} ORDER BY {keys}")
        return [tuple(row) for row in cur.fetchall()]


def plan_chunks(conn: Connection, table: SourceTable, chunk_rows: int) -> ChunkPlan:
    """Plan the chunks of ``table``; the connection must run with ``time_zone='+00:00'``."""
    rows = count_rows(conn, table)
    if not table.key_columns or rows <= chunk_rows:
        return ChunkPlan((WHOLE,), rows, "whole table")
    unsplittable = [t.spec for t in table.key_types if t.base not in SPLITTABLE_BASES]
    if unsplittable:
        return ChunkPlan((WHOLE,), rows, f"whole table (key type {', '.join(unsplittable)} is not range-split)")
    if len(table.key_columns) == 1 and table.key_types[0].base in INTEGER_BASES:
        key = quote_identifier(table.key_columns[0])
        low = _scalar(conn, f"SELECT MIN({key}) FROM {table_sql(table)}")
        high = _scalar(conn, f"SELECT MAX({key}) FROM {table_sql(table)}")
        ranges = plan_integer_chunks(low, high, rows, chunk_rows)
        if ranges is not None:
            return ChunkPlan(tuple(ranges), rows, f"even split of {table.key_columns[0]} in [{low}, {high}]")
    sample = _sample(conn, table, rows, chunk_rows)
    bounds = boundaries_from_sample(sample, chunk_count(rows, chunk_rows))
    return ChunkPlan(tuple(ranges_from_boundaries(bounds)), rows, f"quantiles of a {len(sample)}-key sample")


ROW_SAMPLE = 1000  # rows whose bytes estimate_row_bytes measures


def row_bytes_sql(table: SourceTable, sample: int = ROW_SAMPLE) -> str:
    """The average bytes of the first ``sample`` rows (key order), counting every column's value as
    ``LENGTH`` gives it (bytes of text and blobs, digits of numbers) plus 1 per column."""
    lengths = " + ".join(f"IFNULL(LENGTH({quote_identifier(c.name)}), 0)" for c in table.columns) or "0"
    return (f"SELECT AVG({lengths}) + {len(table.columns)} FROM "
            f"(SELECT * FROM {table_sql(table)} LIMIT {sample}) AS _binlake_sample")


def estimate_row_bytes(conn: Connection, table: SourceTable) -> int:
    """Estimated bytes of one row: the larger of the server's statistics (``DATA_LENGTH / TABLE_ROWS``,
    which may lag behind recent inserts) and a measured sample (:func:`row_bytes_sql`); at least 1."""
    stats = table.estimated_bytes // table.estimated_rows if table.estimated_rows > 0 else 0
    measured = _scalar(conn, row_bytes_sql(table)) if table.columns else None
    return max(1, stats, 0 if measured is None else int(measured))
