"""How one chunk's rows are read for the Spark write paths (``jdbc``, ``arrow``): the snapshot's label, the frame.

:func:`chunk_low_watermark` takes the label of the next chunk's snapshot (a replica's, or the
watermark method's low watermark) *before* the snapshot starts; :func:`chunk_frame` builds the lake
rows of the chunk as one Spark partition read by the Arrow reader or by JDBC, with an
:class:`~pyspark.sql.Observation` of its row count, snapshot file, lsn and read time (filled once
the rows are written). The direct path (:mod:`binlake.snapshot.direct`) uses the label and
:func:`arrow_chunk_source` only.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from binlake.config import SnapshotMethod
from binlake.positions import BinlogPosition
from binlake.snapshot.arrowread import ArrowSource, read_chunk_arrow, with_watermark_init
from binlake.snapshot.discovery import SourceTable
from binlake.snapshot.reading import (
    HIT,
    READ_TS,
    SNAP_FILE,
    SNAP_LSN,
    JdbcSource,
    chunk_query,
    lake_expressions,
    with_watermark,
)
from binlake.snapshot.state import ChunkState
from binlake.snapshot.watermark import low_watermark

if TYPE_CHECKING:
    from binlake.snapshot.loader import LoadContext


def chunk_low_watermark(ctx: LoadContext) -> BinlogPosition | None:
    """The label of the next chunk's snapshot taken now, before it starts (a replica's, or the
    watermark method's low watermark); None with the mariadb method (the snapshot reports its own)."""
    if ctx.chunk_label is not None:  # a replica's snapshot, labelled in the primary's order
        return ctx.chunk_label()
    if ctx.snapshot_method is SnapshotMethod.WATERMARK:
        epoch = 0 if ctx.history is None else ctx.history.epoch
        return low_watermark(ctx.connect, epoch, ctx.config.full_load.watermark_settle_seconds, ctx.signal)
    return None


def arrow_chunk_source(ctx: LoadContext) -> ArrowSource:
    """The Arrow reader's source for the next chunk (labelled by :func:`chunk_low_watermark`)."""
    assert ctx.arrow is not None
    low = chunk_low_watermark(ctx)
    return ctx.arrow if low is None else with_watermark_init(ctx.arrow, low)


def chunk_frame(ctx: LoadContext, table: SourceTable, chunk: ChunkState,
                row_bytes: int) -> tuple[DataFrame, Observation]:
    """The lake rows of one chunk (one Spark partition) and the observation of its position and count,
    read by the Arrow reader when the job chose it, else by JDBC; ``row_bytes`` sizes Arrow batches."""
    return read_labelled_chunk(ctx.spark, ctx.jdbc, ctx.arrow, table, chunk.predicate, row_bytes,
                               chunk_low_watermark(ctx))


def read_labelled_chunk(spark: SparkSession, jdbc: JdbcSource, arrow: ArrowSource | None, table: SourceTable,
                        predicate: str, row_bytes: int,
                        low: BinlogPosition | None) -> tuple[DataFrame, Observation]:
    """The lake rows of the source rows matching ``predicate`` and the observation of their position
    and count, read by ``arrow`` (the Arrow reader) when given, else by ``jdbc``; labelled with the low
    watermark ``low`` (``None``: the snapshot's own position). Also the online resync's chunk read
    (:mod:`binlake.resync.delivery`)."""
    if arrow is not None:
        source = arrow if low is None else with_watermark_init(arrow, low)
        return read_chunk_arrow(spark, source, table, predicate, row_bytes)
    return read_chunk(spark, jdbc if low is None else with_watermark(jdbc, low), table, predicate)


def read_chunk(spark: SparkSession, jdbc: JdbcSource, table: SourceTable,
               predicate: str) -> tuple[DataFrame, Observation]:
    """The lake rows of the source rows matching ``predicate``, read in one consistent snapshot (one
    Spark partition), and the observation of their count, snapshot file, lsn and read time (also
    used by the online resync, :mod:`binlake.resync.job`)."""
    raw = spark.read.jdbc(jdbc.url, chunk_query(table, predicate), properties=jdbc.properties)
    return observed_lake_rows(raw, lake_expressions(table))


def observed_lake_rows(raw: DataFrame, expressions: list[tuple[str, str]]) -> tuple[DataFrame, Observation]:
    """The lake rows of a chunk read (``raw``: position columns, hit, ``c0 …``) and the observation of
    their count, snapshot file, lsn and read time (filled once the rows have been written)."""
    observation = Observation(f"binlake-chunk-{uuid.uuid4().hex}")
    observed = raw.observe(
        observation,
        F.count(F.col(HIT)).alias("rows"),
        F.first(F.col(SNAP_FILE), ignorenulls=True).alias("file"),
        F.max(F.col(SNAP_LSN)).alias("lsn"),
        F.max(F.col(READ_TS)).alias("read_at"),
    )
    rows = observed.where(F.col(HIT).isNotNull())
    return rows.select(*[F.expr(expr).alias(name) for expr, name in expressions]), observation
