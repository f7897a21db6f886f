"""Loading one table: prepare the target, plan (or resume) the chunks, read and commit them in parallel.

See :mod:`binlake.snapshot` for the consistency guarantee. Per table, in order:

a. read the state file; a complete table is skipped under DO_NOTHING, a table whose state says
   ``loading`` with its preparation done (and whose Delta table exists) is **resumed** — no
   preparation, the stored plan;
b. otherwise read the low watermark (binlog end), plan the chunks, write the state (``loading``,
   not prepared, every chunk ``pending``), prepare the target (DROP_AND_CREATE: drop + create;
   TRUNCATE_BEFORE_LOAD: delete all rows, or create; DO_NOTHING: keep it, or create) and mark
   the state prepared;
c. read + commit the pending chunks, ``max_parallel_chunks`` at a time; after each commit the chunk
   is recorded in the state file (range, rows, position);
d. when every chunk is committed: GTIDs of the chunk positions, table size, ``complete``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Executor, Future, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pyspark.sql import SparkSession

from binlake.capture.history import History
from binlake.chunks import render_predicate, rows_per_chunk
from binlake.config import PipelineConfig, PrepMode, SnapshotMethod
from binlake.lake import Lake, snapshot_state_key, table_key
from binlake.positions import BinlogPosition, split_lsn
from binlake.resync.guard import refuse_reload_while_merging
from binlake.snapshot import delta, deltars
from binlake.snapshot.arrowread import ArrowSource
from binlake.snapshot.chunkread import arrow_chunk_source, chunk_frame
from binlake.snapshot.chunkread import read_chunk as read_chunk  # re-exported (binlake.resync.job)
from binlake.snapshot.direct import (
    NotDirect,
    chunk_task,
    create_direct_table,
    lake_plan,
    run_chunk,
    write_chunk,
)
from binlake.snapshot.discovery import SourceTable
from binlake.snapshot.lakearrow import LakePlan
from binlake.snapshot.planning import estimate_row_bytes, plan_chunks
from binlake.snapshot.reading import LSN_COLUMN, JdbcSource
from binlake.snapshot.report import Progress, TableReport
from binlake.snapshot.session import SparkOnDemand
from binlake.snapshot.signal import Signal
from binlake.snapshot.state import COMMITTED, ChunkState, TableState
from binlake.source import Connection, gtid_at, master_position
from binlake.tablefeatures import TableFeatures

if TYPE_CHECKING:
    from binlake.snapshot.replica import ChunkLabeller

log = logging.getLogger("binlake.snapshot")

ChunkHook = Callable[[SourceTable, int], None]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CHUNK_ATTEMPTS = 3  # a chunk whose read or commit fails is read again, at most this often in all


@dataclass
class LoadContext:
    """Everything a table load needs, wired once by :func:`binlake.snapshot.job.run_full_load`."""

    config: PipelineConfig
    sessions: SparkOnDemand  # the SparkSession, started when first needed (binlake.snapshot.session)
    lake: Lake
    jdbc: JdbcSource
    connect: Callable[[], Connection]
    chunk_pool: Executor
    progress: Progress
    clock: Callable[[], float]
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    after_commit: ChunkHook | None = None  # test hooks: called after a chunk's Delta commit …
    after_record: ChunkHook | None = None  # … and after its state-file record
    history: History | None = None  # the binlog history positions are labelled with (None: epoch 0, no registry)
    server_id: int | None = None  # the source's @@server_id, kept in the state file
    snapshot_method: SnapshotMethod = SnapshotMethod.MARIADB  # mariadb or watermark (binlake.snapshot.watermark)
    arrow: ArrowSource | None = None  # the Arrow reader's source when the job reads with it, else JDBC
    chunk_label: ChunkLabeller | None = None  # full_load.source is a replica: labels in the primary's order
    signal: Signal | None = None  # watermark method: the signal table that makes low watermarks exact
    direct: bool = False  # the direct write path (binlake.snapshot.direct) where a table allows it; needs arrow
    in_driver: bool = False  # direct chunks run in the chunk threads (a local master), not as Spark tasks

    @property
    def spark(self) -> SparkSession:
        return self.sessions.get()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def read_state(lake: Lake, table: SourceTable) -> TableState | None:
    key = snapshot_state_key(table.schema, table.name)
    if not lake.exists(key):
        return None
    return TableState.from_json(lake.get_bytes(key))


def write_state(lake: Lake, state: TableState) -> None:
    lake.put_bytes(snapshot_state_key(state.source_schema, state.source_table), state.to_json())


def file_for_sequence(template: str, sequence: int) -> str:
    """The binlog file name with ``sequence`` in the numbering of ``template`` (``binlog.000007``)."""
    stem, _, digits = template.rpartition(".")
    return f"{stem}.{sequence:0{len(digits)}d}"


def position_from_lsn(lsn: int, template: str) -> BinlogPosition:
    epoch, sequence, pos = split_lsn(lsn)
    return BinlogPosition.of(file_for_sequence(template, sequence), pos, epoch=epoch)


class TableLoad:
    """The load of one table (see the module docstring for the steps)."""

    def __init__(self, ctx: LoadContext, table: SourceTable, label: str) -> None:
        self.ctx = ctx
        self.table = table
        self.label = label
        self.path = ctx.lake.uri(table_key(table.target.schema, table.target.table))
        self._lock = threading.Lock()
        self._failed = threading.Event()  # set by the first failing chunk: queued chunks then do nothing
        self._commit_lock = threading.Lock()  # direct path: one delta-rs commit at a time per table
        self.plan: LakePlan | None = None  # the direct write path's plan, when this table takes it
        self.state: TableState | None = None
        self.row_bytes = 1  # estimated bytes of a row (planning.estimate_row_bytes): sizes chunks and batches

    def run(self) -> TableReport:
        started = self.ctx.clock()
        previous = read_state(self.ctx.lake, self.table)
        mode = self.ctx.config.full_load.target_table_prep_mode
        if previous is not None and previous.complete and mode == PrepMode.DO_NOTHING:
            log.info("%s: already loaded completely (load %s) and prep mode is DO_NOTHING: skipped",
                     self.label, previous.load_id)
            return self._report(previous, "skipped", 0.0, "already loaded")
        if (previous is not None and not previous.complete and previous.prepared
                and self._same_history(previous) and self._table_exists()):
            self.state = self._resume(previous)
        else:
            self.state = self._start(mode)
        self.plan = self._direct_plan()
        self._load_pending()
        state = self._complete(self.ctx.clock() - started)
        return self._report(state, "complete", self.ctx.clock() - started)

    # -- a / b ------------------------------------------------------------------------------------

    def _start(self, mode: PrepMode) -> TableState:
        refuse_reload_while_merging(self.ctx.lake, self.table, mode, self.ctx.now(),
                                    self.ctx.config.merge.trigger_seconds)
        with self.ctx.connect() as conn:
            with conn.cursor() as cur:
                cur.execute("SET time_zone = '+00:00'")
            label = self.ctx.chunk_label
            low = self._in_history(master_position(conn)) if label is None else label()
            self.row_bytes = estimate_row_bytes(conn, self.table)
            full_load = self.ctx.config.full_load
            plan = plan_chunks(conn, self.table, rows_per_chunk(full_load.chunk_rows, full_load.chunk_bytes,
                                                                self.row_bytes))
        log.info("%s: %d chunk(s) for ~%s rows of ~%s bytes (%s); low watermark %s", self.label, len(plan.ranges),
                 f"{plan.rows:,}", f"{self.row_bytes:,}", plan.method, low)
        chunks = tuple(
            ChunkState(i, r, render_predicate(r, self.table.key_columns)) for i, r in enumerate(plan.ranges)
        )
        state = TableState(
            load_id=uuid.uuid4().hex, source_schema=self.table.schema, source_table=self.table.name,
            schema=self.table.target.schema, table=self.table.target.table, path=self.path,
            prep_mode=mode.value, key_columns=self.table.key_columns, low_watermark=low,
            started_at=_iso(self.ctx.now()), chunks=chunks, prepared=False, source_server_id=self.ctx.server_id,
        )
        write_state(self.ctx.lake, state)  # first: a previous "complete" must not outlive the drop
        self._prepare(mode, chunks[0])
        state = replace(state, prepared=True)
        write_state(self.ctx.lake, state)
        return state

    def _table_exists(self) -> bool:
        return deltars.is_table(self.path) if self.ctx.direct else delta.table_exists(self.ctx.spark, self.path)

    def _committed(self, load_id: str) -> dict[int, delta.ChunkCommit]:
        """The chunks of ``load_id`` in the table's history (read by delta-rs on the direct path: no
        Delta JVM work)."""
        if self.ctx.direct:
            return deltars.committed_chunks(self.path, load_id)
        return delta.committed_chunks(self.ctx.spark, self.path, load_id)

    def _direct_plan(self) -> LakePlan | None:
        """The direct write plan of this table, or None (not the direct path, or the table needs Spark)."""
        if not self.ctx.direct:
            return None
        try:
            return lake_plan(self.table, deltars.table_layout(self.path))
        except NotDirect as exc:
            log.warning("%s: written by Spark (the arrow reader), not the direct path: %s", self.label, exc)
            return None

    def _same_history(self, previous: TableState) -> bool:
        """Can an unfinished load be resumed here? Not when its chunks were read from another server
        or binlog history (a failover in between): their positions could not be compared with the
        new ones, so the table is loaded again from the start."""
        epoch = 0 if self.ctx.history is None else self.ctx.history.epoch
        same = (previous.source_server_id in (None, self.ctx.server_id) and previous.low_watermark.epoch == epoch)
        if not same:
            log.warning("%s: load %s was started on server_id %s in epoch %d; the source is now server_id %s in epoch "
                        "%d: loading the table again", self.label, previous.load_id, previous.source_server_id,
                        previous.low_watermark.epoch, self.ctx.server_id, epoch)
        return same

    def _in_history(self, low: BinlogPosition) -> BinlogPosition:
        """``low`` labelled with the capture's binlog history of this server; refuses a server whose
        binlog is before that history's start (reset since the capture registered it)."""
        history = self.ctx.history
        if history is None:
            return low
        labelled = low.in_epoch(history.epoch)
        if labelled.lsn < history.start_lsn:
            raise RuntimeError(
                f"{self.label}: the source's binlog end {low} is before the start of {history.describe()} — its "
                "binlog was reset (RESET MASTER) after the capture registered it, so this snapshot could not be "
                "ordered against the change log. Restart the capture against this server (capture.start: end), "
                "then run the full load again")
        return labelled

    def _prepare(self, mode: PrepMode, first: ChunkState) -> None:
        path = self.path
        exists = self._table_exists()
        if mode == PrepMode.DROP_AND_CREATE and exists:
            log.info("%s: DROP_AND_CREATE: dropping %s", self.label, path)
            if self.ctx.direct:
                deltars.drop_table(path)
            else:
                delta.drop_table(self.ctx.spark, path)
            exists = False
        elif mode == PrepMode.TRUNCATE_BEFORE_LOAD and exists:
            log.info("%s: TRUNCATE_BEFORE_LOAD: deleting all rows of %s", self.label, path)
            delta.truncate_table(self.ctx.spark, path)
        elif exists:
            log.info("%s: DO_NOTHING: appending to the existing table %s", self.label, path)
        if not exists:
            features = TableFeatures.of(self.ctx.config.lake)
            if self.ctx.direct and create_direct_table(path, self.table, features):
                log.info("%s: created Delta table %s (delta-rs)", self.label, path)
            else:
                self._create_with_spark(first, features)
            blockers = delta.change_data_feed_blockers([c.target_name for c in self.table.columns])
            if blockers:
                log.warning("%s: change data feed is off for this table: Delta's MERGE with the feed on cannot "
                            "handle the back-quote in column(s) %s (rename them with a DMS rename rule to keep "
                            "the feed)", self.label, blockers)

    def _create_with_spark(self, first: ChunkState, features: TableFeatures) -> None:
        """Create the table with the schema of the first chunk's lake rows (nothing is read)."""
        frame, _ = chunk_frame(self.ctx, self.table, first, self.row_bytes)
        names = {c.name: c.target_name for c in self.table.columns}
        keys = [names[k] for k in self.table.key_columns if k in names]
        stats_on = [f.name for f in frame.schema.fields if f.name in keys and delta.has_stats(f.dataType)]
        delta.create_table(self.ctx.spark, self.path, frame.schema, features, [*stats_on, LSN_COLUMN])
        log.info("%s: created Delta table %s", self.label, self.path)

    def _resume(self, state: TableState) -> TableState:
        with self.ctx.connect() as conn:
            self.row_bytes = estimate_row_bytes(conn, self.table)
        found = self._committed(state.load_id)
        for chunk in state.pending:
            if chunk.id in found:
                state = state.with_chunk(self._recovered(state, chunk, found[chunk.id].version))
        write_state(self.ctx.lake, state)
        log.info("%s: resuming load %s: %d of %d chunk(s) already committed", self.label, state.load_id,
                 len(state.chunks) - len(state.pending), len(state.chunks))
        return state

    def _recovered(self, state: TableState, chunk: ChunkState, version: int) -> ChunkState:
        """A chunk committed to Delta but not recorded: rows and position from its commit."""
        rows, lsn = delta.version_summary(self.ctx.spark, self.path, version, LSN_COLUMN)
        template = state.low_watermark.file
        position = state.low_watermark if lsn is None else position_from_lsn(lsn, template)
        log.info("%s: chunk %d was committed (Delta version %d) but not recorded: %d rows at %s",
                 self.label, chunk.id, version, rows, position)
        return replace(chunk, status=COMMITTED, rows=rows, position=position, delta_version=version)

    # -- c ----------------------------------------------------------------------------------------

    def _load_pending(self) -> None:
        assert self.state is not None
        pending = self.state.pending
        self.ctx.progress.add_chunks(len(pending))
        futures: list[Future[None]] = [self.ctx.chunk_pool.submit(self._load_chunk, c) for c in pending]
        _, not_done = wait(futures, return_when=FIRST_EXCEPTION)
        for future in not_done:
            future.cancel()
        wait(not_done)
        for future in futures:
            if future.done() and not future.cancelled() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]

    def _load_chunk(self, chunk: ChunkState) -> None:
        if self._failed.is_set():
            return
        try:
            self._read_and_commit(chunk)
        except BaseException:
            self._failed.set()
            raise

    def _read_and_commit(self, chunk: ChunkState) -> None:
        started = self.ctx.clock()
        assert self.state is not None
        for attempt in range(1, CHUNK_ATTEMPTS + 1):
            try:
                metrics = self._write_direct(chunk) if self.plan is not None else self._write_spark(chunk)
                break
            except Exception as exc:  # a dropped connection, a server hiccup: read the chunk again
                committed = self._committed(self.state.load_id)
                if chunk.id in committed or attempt == CHUNK_ATTEMPTS:
                    raise  # committed after all (resume records it), or out of attempts
                log.warning("%s: chunk %d failed (attempt %d of %d), reading it again: %s", self.label,
                            chunk.id, attempt, CHUNK_ATTEMPTS, (str(exc).splitlines() or [""])[0][:300])
        if self.ctx.after_commit:
            self.ctx.after_commit(self.table, chunk.id)
        epoch, _, pos = split_lsn(int(metrics["lsn"]))
        position = BinlogPosition.of(str(metrics["file"]), pos, epoch=epoch)
        if position.lsn != int(metrics["lsn"]):
            raise RuntimeError(f"{self.label}: snapshot position {position} does not match lsn {metrics['lsn']}")
        done = replace(chunk, status=COMMITTED, rows=int(metrics["rows"]), position=position,
                       read_at=_iso(EPOCH + timedelta(microseconds=int(metrics["read_at"]))),
                       seconds=round(self.ctx.clock() - started, 3))
        with self._lock:
            self.state = self.state.with_chunk(done)
            write_state(self.ctx.lake, self.state)
        if self.ctx.after_record:
            self.ctx.after_record(self.table, chunk.id)
        log.info("%s: chunk %d %s: %s rows at %s in %.1f s; %s", self.label, chunk.id, chunk.range,
                 f"{done.rows:,}", position, done.seconds, self.ctx.progress.chunk_done(done.rows))

    def _write_spark(self, chunk: ChunkState) -> dict[str, Any]:
        """Read the chunk and append it through Spark: its observation (rows, file, lsn, read_at)."""
        assert self.state is not None
        frame, observation = chunk_frame(self.ctx, self.table, chunk, self.row_bytes)
        delta.append_chunk(frame, self.path, self.state.load_id, chunk.id)
        return dict(observation.get)

    def _write_direct(self, chunk: ChunkState) -> dict[str, Any]:
        """Read and write the chunk in one Spark task (binlake.snapshot.direct), then commit its file."""
        assert self.state is not None and self.plan is not None
        task = chunk_task(arrow_chunk_source(self.ctx), self.table, chunk.predicate, self.row_bytes, self.plan,
                          self.path)
        written = write_chunk(task) if self.ctx.in_driver else run_chunk(self.ctx.spark, task)
        if written.files:  # an empty chunk makes no commit, as a Spark append of no rows
            with self._commit_lock:
                deltars.commit_files(self.path, written.files, self.state.load_id, chunk.id)
        return {"rows": written.rows, "file": written.snapshot_file, "lsn": written.lsn, "read_at": written.read_ts}

    # -- d ----------------------------------------------------------------------------------------

    def _complete(self, seconds: float) -> TableState:
        assert self.state is not None
        state = self.state
        commits = self._committed(state.load_id)
        # an empty chunk makes no Delta commit (nothing to append); every other chunk must have one
        missing = sorted(c.id for c in state.chunks if c.id not in commits and c.rows > 0)
        if missing:
            raise RuntimeError(f"{self.label}: chunk(s) {missing} are recorded as committed but missing from the "
                               f"history of {self.path} (was the table changed during the load?); re-run "
                               "with --restart")
        gtids: dict[BinlogPosition, str | None] = {}
        with self.ctx.connect() as conn:
            for chunk in state.chunks:
                pos = chunk.position
                if pos is not None and pos not in gtids:
                    gtids[pos] = (gtid_at(conn, pos.file, pos.pos) if self.ctx.chunk_label is None
                                  else self.ctx.chunk_label.gtid(pos))
        for chunk in state.chunks:
            pos = chunk.position
            with_gtid = None if pos is None else BinlogPosition.of(pos.file, pos.pos, gtids.get(pos), pos.epoch)
            state = state.with_chunk(replace(chunk, position=with_gtid,
                                             delta_version=commits[chunk.id].version if chunk.id in commits else None))
        size = sum(commit.bytes for commit in commits.values())
        state = state.completed(_iso(self.ctx.now()), round(seconds, 3), size)
        write_state(self.ctx.lake, state)
        log.info("%s: complete: %s rows, snapshot lsn %s .. %s; %s", self.label, f"{state.rows:,}",
                 state.min_position, state.max_position, self.ctx.progress.table_done())
        self.state = state
        return state

    def _report(self, state: TableState, status: str, seconds: float, message: str = "") -> TableReport:
        return TableReport(
            source=self.table.qualified, target=self.table.target.qualified, status=status,
            rows=state.rows if status == "complete" else 0, bytes=state.size_bytes, seconds=seconds,
            chunks=len(state.chunks), min_position=state.min_position, max_position=state.max_position,
            message=message,
        )
