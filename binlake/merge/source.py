"""Reading the change log with Spark: the merge stream, a micro-batch's records, the catch-up reader.

The change log is one folder of Parquet files with one fixed schema (:data:`CHANGELOG_SPARK_SCHEMA`,
the Spark mirror of :data:`binlake.changelog.CHANGELOG_SCHEMA`), read with that schema for the
whole life of the stream. The stream (:func:`read_changelog_stream`) is binlake's lsn-tracking
source (:mod:`binlake.merge.stream`): its micro-batches are the file reads that deliver the records
of ``(start, end]``, and :func:`on_records` hands the batch function those records instead — one
Parquet scan per batch in the JVM, pruned by lsn. Temporaries of the writers (names starting with
``_tmp-`` or ``.``) are never listed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import reduce

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from binlake.config import LakeConfig
from binlake.lake import Lake, parse_changelog_name
from binlake.merge.localbatch import read_local
from binlake.merge.offsets import FileRead
from binlake.merge.stream import SOURCE_NAME, ChangelogSource, reads_of, source_options

CHANGELOG_SPARK_SCHEMA = StructType(
    [
        StructField("lsn", LongType(), False),
        StructField("row_idx", IntegerType(), False),
        StructField("binlog_file", StringType(), False),
        StructField("binlog_pos", LongType(), False),
        StructField("gtid", StringType(), True),
        StructField("xid", LongType(), True),
        StructField("commit_ts", TimestampType(), False),
        StructField("op", StringType(), False),
        StructField("source_schema", StringType(), False),
        StructField("source_table", StringType(), False),
        StructField("schema", StringType(), False),
        StructField("table", StringType(), False),
        StructField("before", StringType(), True),
        StructField("after", StringType(), True),
        StructField("columns", StringType(), False),
        StructField("ddl", StringType(), True),
        StructField("ddl_kind", StringType(), True),
    ]
)


def read_changelog_stream(spark: SparkSession, lake: LakeConfig, max_files_per_trigger: int) -> DataFrame:
    """The change log as a stream of micro-batches by lsn, at most ``max_files_per_trigger`` files
    of reading each (also under ``availableNow``); its rows are reads (:mod:`binlake.merge.stream`)."""
    spark.dataSource.register(ChangelogSource)
    return spark.readStream.format(SOURCE_NAME).options(**source_options(lake, max_files_per_trigger)).load()


def batch_records(spark: SparkSession, lake: Lake, reads: Sequence[FileRead]) -> DataFrame:
    """The records ``reads`` deliver, as one DataFrame (Parquet scans in the JVM). Files read
    whole share one scan, filtered to the batch's lsn range (a no-op on them but for pruning); a
    file read only over part of its range (a capture's re-write overlapping another file) gets a
    scan of its own with its stretch."""
    if not reads:
        return spark.createDataFrame([], CHANGELOG_SPARK_SCHEMA)
    whole = [r for r in reads if _is_whole(r)]
    parts = [r for r in reads if not _is_whole(r)]
    frames = []
    if whole:
        lo, hi = min(r.after for r in whole), max(r.through for r in whole)
        frames.append(_scan(spark, lake, [r.key for r in whole], lo, hi))
    frames += [_scan(spark, lake, [r.key], r.after, r.through) for r in parts]
    return reduce(DataFrame.unionAll, frames)


def _is_whole(read: FileRead) -> bool:
    first, last = parse_changelog_name(read.key)
    return read.after < first and last <= read.through


def _scan(spark: SparkSession, lake: Lake, keys: Sequence[str], after: int, through: int) -> DataFrame:
    records = spark.read.schema(CHANGELOG_SPARK_SCHEMA).parquet(*[lake.uri(key) for key in keys])
    return records.where((F.col("lsn") > after) & (F.col("lsn") <= through))


@dataclass(frozen=True)
class BatchRecords:
    """A micro-batch's change-log records: ``frame``, lazy (Spark reads it only where it is used),
    and, for a small batch, the same records already on the driver (``local``,
    :mod:`binlake.merge.localbatch`; ``None`` otherwise)."""

    frame: DataFrame
    local: pa.Table | None = None


def on_records(lake: Lake, process: Callable[[BatchRecords, int], object],
               before: Callable[[], None] | None = None, local_bytes: int = 0) -> Callable[[DataFrame, int], None]:
    """The ``foreachBatch`` function of the stream: calls ``before`` (which may refuse the batch by
    raising, before anything is read or written), collects the batch's reads (a few rows, one per
    file) and calls ``process`` with the records they deliver (in the stream's session; read on the
    driver too when their files total at most ``local_bytes``) and the batch id."""
    def run(reads: DataFrame, batch_id: int) -> None:
        if before is not None:
            before()
        plan = reads_of(reads.collect())
        local = read_local(lake, plan, local_bytes) if local_bytes > 0 else None
        process(BatchRecords(batch_records(reads.sparkSession, lake, plan), local), batch_id)

    return run


def read_changelog_files(spark: SparkSession, lake: Lake, keys: Sequence[str]) -> DataFrame:
    """The records of the change-log files ``keys`` (lake keys) as one batch DataFrame."""
    if not keys:
        return spark.createDataFrame([], CHANGELOG_SPARK_SCHEMA)
    return spark.read.schema(CHANGELOG_SPARK_SCHEMA).parquet(*[lake.uri(key) for key in keys])
