"""Reading the change log with Spark: the streaming source and the batch reader for catch-ups.

The change log is one folder of Parquet files with one fixed schema (:data:`CHANGELOG_SPARK_SCHEMA`,
the Spark mirror of :data:`binlake.changelog.CHANGELOG_SCHEMA`), so Spark's file stream source
reads it with that schema for the whole life of the stream. Files whose names start with ``_`` or
``.`` (the writers' temporaries) are never read.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import (
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from binlake.lake import CHANGELOG_DIR, Lake

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

PARQUET_GLOB = "*.parquet"


def read_changelog_stream(spark: SparkSession, lake: Lake, max_files_per_trigger: int) -> DataFrame:
    """The change log as a stream: new files in modification-time order, at most
    ``max_files_per_trigger`` per micro-batch (also under ``availableNow``)."""
    if max_files_per_trigger < 1:
        raise ValueError(f"max_files_per_trigger must be >= 1, got {max_files_per_trigger}")
    return (
        spark.readStream.schema(CHANGELOG_SPARK_SCHEMA)
        .option("maxFilesPerTrigger", max_files_per_trigger)
        .option("pathGlobFilter", PARQUET_GLOB)
        .parquet(lake.uri(CHANGELOG_DIR))
    )


def read_changelog_files(spark: SparkSession, lake: Lake, keys: Sequence[str]) -> DataFrame:
    """The records of the change-log files ``keys`` (lake keys) as one batch DataFrame."""
    if not keys:
        return spark.createDataFrame([], CHANGELOG_SPARK_SCHEMA)
    return spark.read.schema(CHANGELOG_SPARK_SCHEMA).parquet(*[lake.uri(key) for key in keys])
