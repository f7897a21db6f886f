"""Step 4 of a resync (:mod:`binlake.resync.job`): read each pending chunk and deliver it to the lake.

A chunk is read in one consistent snapshot exactly as the full load reads its chunks (the same
statement, reader and snapshot method: :meth:`ResyncContext.read_chunk`), written as one Parquet
folder under the resync (:func:`binlake.resync.store.chunk_data_key`), then recorded in the manifest
with its snapshot lsn and row count. A chunk not recorded when the job dies is read again, into a
new folder, when the same command runs again; the merge applies recorded chunks only
(:mod:`binlake.merge.resync`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from pyspark.sql import DataFrame, Observation, SparkSession

from binlake.config import PipelineConfig, SnapshotMethod
from binlake.lake import Lake
from binlake.positions import split_lsn
from binlake.resync import store
from binlake.resync.manifest import Resync, ResyncChunk
from binlake.snapshot.arrowread import ArrowSource
from binlake.snapshot.chunkread import read_labelled_chunk
from binlake.snapshot.discovery import SourceTable
from binlake.snapshot.reading import JdbcSource
from binlake.snapshot.report import Progress
from binlake.snapshot.signal import Signal
from binlake.snapshot.watermark import low_watermark
from binlake.source import Connection

log = logging.getLogger("binlake.resync")

DeliverHook = Callable[[Resync, ResyncChunk], None]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class ResyncContext:
    """What delivering chunks needs, wired once by :func:`binlake.resync.job.run_resync`."""

    config: PipelineConfig
    spark: SparkSession
    lake: Lake
    jdbc: JdbcSource
    table: SourceTable
    clock: Callable[[], float]
    now: Callable[[], datetime]
    connect: Callable[[], Connection]
    method: SnapshotMethod = SnapshotMethod.MARIADB  # the full load's method on this server
    epoch: int = 0  # the binlog history positions are labelled with
    after_deliver: DeliverHook | None = None  # test hook: after a chunk is recorded delivered
    signal: Signal | None = None  # watermark method: the signal table that makes low watermarks exact
    arrow: ArrowSource | None = None  # the Arrow reader (ConnectorX), where the full load would use it
    row_bytes: int = 1  # estimated bytes of a row: sizes the Arrow reader's batches

    def read_chunk(self, predicate: str) -> tuple[DataFrame, Observation]:
        """The lake rows of one chunk and the observation of their position and count, read exactly as
        the full load reads its chunks: by the Arrow reader when ``full_load.reader`` chooses it for
        this source (:func:`~binlake.snapshot.arrowread.choose_reader`), else by JDBC; at the server's
        snapshot position (``mariadb``), or a low watermark read now, then signalled or settled (``watermark``)."""
        low = None
        if self.method is SnapshotMethod.WATERMARK:
            settle = self.config.full_load.watermark_settle_seconds
            low = low_watermark(self.connect, self.epoch, settle, self.signal)
        return read_labelled_chunk(self.spark, self.jdbc, self.arrow, self.table, predicate, self.row_bytes, low)


class Delivery:
    """Step 4: read and deliver the pending chunks of one resync."""

    def __init__(self, ctx: ResyncContext, resync: Resync, progress: Progress) -> None:
        self.ctx = ctx
        self.resync = resync
        self.progress = progress
        self._lock = threading.Lock()

    def run(self, parallel: int) -> Resync:
        pending = self.resync.pending
        self.progress.add_chunks(len(pending))
        if parallel <= 1:  # in this thread, in chunk order
            for chunk in pending:
                self._deliver(chunk)
            return self.resync
        with ThreadPoolExecutor(parallel, thread_name_prefix="resync-chunk") as pool:
            for future in [pool.submit(self._deliver, chunk) for chunk in pending]:
                future.result()
        return self.resync

    def _deliver(self, chunk: ResyncChunk) -> None:
        started = self.ctx.clock()
        frame, observation = self.ctx.read_chunk(chunk.predicate)
        key = store.chunk_data_key(self.resync, chunk.index)
        frame.coalesce(1).write.mode("errorifexists").parquet(self.ctx.lake.uri(key))
        metrics = observation.get
        lsn = int(metrics["lsn"])
        done = replace(chunk, data=key, lsn=lsn, rows=int(metrics["rows"]),
                       read_at=(EPOCH + timedelta(microseconds=int(metrics["read_at"]))).isoformat(),
                       seconds=round(self.ctx.clock() - started, 3))
        with self._lock:
            self.resync = self.resync.with_chunk(done)
            store.write_manifest(self.ctx.lake, self.resync)
        epoch, _, pos = split_lsn(lsn)
        log.info("%s: chunk %d %s: %s rows at %s:%d (epoch %d) in %.1f s; %s", self.ctx.table.qualified,
                 chunk.index, chunk.range, f"{done.rows:,}", metrics["file"], pos, epoch, done.seconds,
                 self.progress.chunk_done(done.rows))
        if self.ctx.after_deliver is not None:
            self.ctx.after_deliver(self.resync, done)
