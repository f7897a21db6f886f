"""The row-by-row comparison: the truth that the chunk checksums only shortcut.

The source rows of the given chunks are read through the full load's own chunk statement (each
chunk in its own consistent snapshot at binlog position ``P``, the chunk's lsn) and type mapping;
every row on both sides gets a checksum (``xxhash64`` of all its columns, in lake types), and
source and lake rows are joined on the primary key in one Spark job. Every differing row is
classified:

* **in flight** — the lake row changed after the source read it (its ``_binlake_lsn > P``), or the
  lake has not yet applied everything up to ``P`` (see :mod:`binlake.progress`): the two sides are
  at different positions, so the difference says nothing yet;
* **mismatch / missing / extra** — the lake has applied everything up to ``P`` and the row is still
  different, absent, or present but not in the source: a real difference.

Tables without a primary key are compared as multisets (count and checksum of the whole table,
then the rows on either side that the other lacks).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from binlake.capture.history import source_epoch
from binlake.config import PipelineConfig
from binlake.snapshot.discovery import SourceTable
from binlake.snapshot.reading import HIT, LSN_COLUMN, SNAP_LSN, chunk_query, jdbc_source, lake_expressions
from binlake.snapshot.watermark import snapshot_jdbc
from binlake.validation.canonical import spark_column
from binlake.validation.report import TableValidation

CHUNK = "_binlake_chunk"
HASH = "_binlake_hash"
SOURCE_LSN = "_binlake_source_lsn"
SAMPLE_ROWS = 5


def source_frame(
    spark: SparkSession, config: PipelineConfig, table: SourceTable, chunks: Sequence[tuple[int, str]]
) -> DataFrame:
    """The source rows of ``[(chunk index, predicate), …]`` in lake types, one Spark partition per
    chunk, with the chunk index and the chunk's snapshot lsn (empty chunks give no row)."""
    if not chunks:
        raise ValueError("chunks must not be empty")
    epoch = source_epoch(config)  # source lsns comparable with the lake's
    jdbc = snapshot_jdbc(config, jdbc_source(config, epoch=epoch), epoch)  # the full load's method
    frames = []
    for index, predicate in chunks:
        raw = spark.read.jdbc(jdbc.url, chunk_query(table, predicate), properties=jdbc.properties)
        frames.append(
            raw.where(F.col(HIT).isNotNull()).select(
                F.lit(index).alias(CHUNK),
                F.col(SNAP_LSN).cast("bigint").alias(SOURCE_LSN),
                *[F.expr(expr).alias(name) for expr, name in lake_expressions(table, added=False)
                  if not name.startswith("_binlake_")],
            )
        )
    return reduce(DataFrame.unionByName, frames)


def empty_source_frame(lake_rows: DataFrame, table: SourceTable) -> DataFrame:
    """A source frame without rows (when only lake rows outside every chunk are left to compare)."""
    return lake_rows.limit(0).select(F.lit(None).cast("int").alias(CHUNK), F.lit(None).cast("bigint").alias(SOURCE_LSN),
                                     *[F.col(spark_column(c.target_name)) for c in table.columns])


def with_row_hash(frame: DataFrame, table: SourceTable) -> DataFrame:
    return frame.withColumn(HASH, F.xxhash64(*[F.col(spark_column(c.target_name)) for c in table.columns]))


def compare_rows(
    result: TableValidation, source: DataFrame, lake_rows: DataFrame, table: SourceTable, applied: int
) -> None:
    """Fill ``result``'s differences from the rows of ``source`` (:func:`source_frame`) and
    ``lake_rows`` (the lake table, or the part of it in the same chunks). ``applied`` is the lsn up
    to which the lake holds every change (see :func:`binlake.progress.read_progress`)."""
    source = with_row_hash(source, table).cache()
    lake_rows = with_row_hash(lake_rows, table)
    try:
        if table.key_columns:
            _compare_by_key(result, source, lake_rows, table, applied)
        else:
            _compare_multisets(result, source, lake_rows)
    finally:
        source.unpersist()


def _compare_multisets(result: TableValidation, source: DataFrame, lake_rows: DataFrame) -> None:
    s = source.agg(F.count("*"), F.sum(F.col(HASH).cast("decimal(38,0)"))).first()
    t = lake_rows.agg(F.count("*"), F.sum(F.col(HASH).cast("decimal(38,0)"))).first()
    if tuple(s) != tuple(t):  # type: ignore[arg-type]
        result.differing_chunks = [0]
        result.missing = source.select(HASH).exceptAll(lake_rows.select(HASH)).count()
        result.extra = lake_rows.select(HASH).exceptAll(source.select(HASH)).count()


def _classify(joined: DataFrame, applied: int) -> DataFrame:
    applied_lit = F.lit(applied).cast("bigint")
    lake_newer = F.coalesce(F.col("l_lsn") > F.col("s_lsn"), F.lit(False))
    lake_behind = applied_lit < F.coalesce(F.col("s_lsn"), F.col("max_s_lsn"))
    kind = (
        F.when(F.col("s_hash").isNotNull() & F.col("l_hash").isNotNull() & (F.col("s_hash") == F.col("l_hash")),
               F.lit("ok"))
        .when(lake_newer | lake_behind, F.lit("in_flight"))
        .when(F.col("l_hash").isNull(), F.lit("missing"))
        .when(F.col("s_hash").isNull(), F.lit("extra"))
        .otherwise(F.lit("mismatched"))
    )
    return joined.withColumn("kind", kind)


def _compare_by_key(
    result: TableValidation, source: DataFrame, lake_rows: DataFrame, table: SourceTable, applied: int
) -> None:
    keys = [c.target_name for c in table.columns if c.name in table.key_columns]
    s = source.select(*[F.col(spark_column(k)) for k in keys], F.col(CHUNK), F.col(SOURCE_LSN).alias("s_lsn"),
                      F.col(HASH).alias("s_hash"))
    t = lake_rows.select(*[F.col(spark_column(k)).alias(f"l_{i}") for i, k in enumerate(keys)],
                         F.col(LSN_COLUMN).alias("l_lsn"), F.col(HASH).alias("l_hash"))
    condition = reduce(lambda a, b: a & b,
                       [F.col(spark_column(k)).eqNullSafe(F.col(f"l_{i}")) for i, k in enumerate(keys)])
    max_source_lsn = source.agg(F.max(SOURCE_LSN)).first()[0]  # type: ignore[index]
    joined = s.join(t, condition, "full_outer").withColumn("max_s_lsn", F.lit(max_source_lsn).cast("bigint"))
    differences = _classify(joined, applied).where(F.col("kind") != "ok").cache()
    try:
        counts = {row["kind"]: row["count"] for row in differences.groupBy("kind").count().collect()}
        result.mismatched = counts.get("mismatched", 0)
        result.missing = counts.get("missing", 0)
        result.extra = counts.get("extra", 0)
        result.in_flight = counts.get("in_flight", 0)
        result.differing_chunks = sorted(
            int(r[0]) for r in differences.where(F.col(CHUNK).isNotNull()).select(CHUNK).distinct().collect()
        )
        real = differences.where(F.col("kind") != "in_flight").limit(SAMPLE_ROWS).collect()
        result.samples = [
            {"kind": r["kind"], "source_lsn": r["s_lsn"], "lake_lsn": r["l_lsn"],
             "key": {k: _plain(r[k] if r[k] is not None else r[f"l_{i}"]) for i, k in enumerate(keys)}}
            for r in real
        ]
    finally:
        differences.unpersist()


def _plain(value: Any) -> Any:
    return value if isinstance(value, int | float | str | bool) or value is None else str(value)
