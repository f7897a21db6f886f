"""Phase 1 of validation: per chunk, ``(row count, sum of row hashes)`` on the source and in the lake.

The source computes each chunk's numbers in MariaDB, in one statement run inside the full load's
consistent snapshot (the JDBC session-init statement of :mod:`binlake.snapshot.reading`), next to
the binlog position that snapshot is consistent with::

    SELECT _s.*, _b.* FROM (<the snapshot position row>) AS _s
      LEFT JOIN (SELECT COUNT(*), CAST(SUM(<row hash>) AS CHAR) FROM `db`.`t` WHERE <chunk>) AS _b ON TRUE

so only two numbers per chunk cross the wire. The lake computes the same numbers in one Spark
aggregation, each lake row assigned to its chunk by the key ranges. The hashes and the assignment
are the SQL of :mod:`binlake.validation.canonical`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from binlake.capture.history import source_epoch
from binlake.chunks import quote_identifier
from binlake.config import PipelineConfig
from binlake.snapshot.discovery import SourceTable
from binlake.snapshot.reading import SNAP_LSN, filtered, jdbc_source, with_snapshot_position
from binlake.snapshot.watermark import snapshot_jdbc
from binlake.validation.canonical import lake_row_hash_sql, source_row_hash_sql, spark_column

CHUNK = "_binlake_chunk"
ROWS = "_binlake_rows"
SUM = "_binlake_sum"


@dataclass(frozen=True)
class ChunkSum:
    """A chunk's checksum: how many rows, and the exact sum of their 64-bit row hashes."""

    rows: int
    total: int


EMPTY = ChunkSum(0, 0)


def source_sum_query(table: SourceTable, predicate: str) -> str:
    """The parenthesised, aliased statement (Spark's ``dbtable``) giving one chunk's snapshot lsn,
    row count and hash sum (as text: it may exceed 64 bits); only the rows the table's source filter
    keeps count (the lake holds no others)."""
    row_hash = source_row_hash_sql([(c.type, quote_identifier(c.name)) for c in table.columns])
    source = f"{quote_identifier(table.schema)}.{quote_identifier(table.name)}"
    inner = (f"SELECT COUNT(*) AS {ROWS}, CAST(SUM({row_hash}) AS CHAR) AS {SUM} FROM {source} "
             f"WHERE {filtered(table, predicate)}")
    return with_snapshot_position(inner, "_binlake_sums")


def source_chunk_sums(
    spark: SparkSession, config: PipelineConfig, table: SourceTable, predicates: Sequence[str]
) -> tuple[dict[int, ChunkSum], dict[int, int]]:
    """Per chunk index: its checksum on the source, and the snapshot lsn it is consistent with.

    One Spark task per chunk, each on its own JDBC connection and consistent snapshot.
    """
    epoch = source_epoch(config)  # source lsns comparable with the lake's
    jdbc = snapshot_jdbc(config, jdbc_source(config, epoch=epoch), epoch)  # the full load's method
    frames = [
        spark.read.jdbc(jdbc.url, source_sum_query(table, predicate), properties=jdbc.properties).select(
            F.lit(index).alias(CHUNK), F.col(SNAP_LSN).cast("bigint").alias(SNAP_LSN), F.col(ROWS), F.col(SUM))
        for index, predicate in enumerate(predicates)
    ]
    rows = reduce(DataFrame.unionByName, frames).collect()
    sums = {int(r[CHUNK]): ChunkSum(int(r[ROWS] or 0), int(r[SUM] or 0)) for r in rows}
    positions = {int(r[CHUNK]): int(r[SNAP_LSN]) for r in rows if r[SNAP_LSN] is not None}
    return sums, positions


def lake_chunk_sums(lake_rows: DataFrame, table: SourceTable, chunk_sql: str) -> dict[int, ChunkSum]:
    """Per chunk index (``UNASSIGNED`` for rows that fit no range): the lake's checksum."""
    high, low = lake_row_hash_sql([(c.type, spark_column(c.target_name)) for c in table.columns])
    grouped = (
        lake_rows.select(F.expr(chunk_sql).alias(CHUNK), F.expr(high).alias("high"), F.expr(low).alias("low"))
        .groupBy(CHUNK)
        .agg(F.count("*").alias(ROWS), F.sum("high").alias("high"), F.sum("low").alias("low"))
    )
    return {int(r[CHUNK]): ChunkSum(int(r[ROWS]), (int(r["high"] or 0) << 32) + int(r["low"] or 0))
            for r in grouped.collect()}
