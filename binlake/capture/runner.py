"""The capture loop: pre-flight, start point, stream → records → files → checkpoint, reconnects, stop.

Numbered steps are logged so an operator knows where the capture is:

1. connect to the source and check binlog settings, grants and server_id;
2. choose the start point (``capture.start``: checkpoint / end / position or GTID) and check that its
   binlog still exists (else :class:`~binlake.source.BinlogPurgedError`: a new full load is needed);
3. stream: every event goes through the dispatch table into the transaction assembler; committed
   transactions are flushed to the change log on the size/time bound, then checkpointed; a
   transaction larger than ``capture.max_transaction_rows_in_memory`` records is spilled to this
   process's private scratch folder (removed when ``run`` returns or raises);
4. on a broken link (source restart, network): discard the open transaction, back off
   exponentially up to ``capture.reconnect_max_seconds``, re-check the source, resume at the last
   transaction boundary read;
5. on SIGTERM/SIGINT (:meth:`CaptureRunner.request_stop`): flush what is committed, save the
   checkpoint, write the final status, return.

Fatal problems (purged binlog, wrong settings, missing grants, data binlake cannot capture
exactly) raise :class:`~binlake.source.SourceError` / :class:`CaptureDataError` after the status
records them.
"""

from __future__ import annotations

import datetime
import logging
import signal
import time
from dataclasses import replace
from types import FrameType
from typing import Any

import pymysql

from binlake import source as src
from binlake.capture.checkpoint import Checkpoint, load_checkpoint
from binlake.capture.history import EXPLICIT_START, START_AT_END, lake_gtids, load_registry, save_registry, stamped
from binlake.capture.records import CaptureDataError, Layouts
from binlake.capture.resume import history_change, new_start_decision, read_server_facts, resume_decision
from binlake.capture.schema import DeclaredTypesReader
from binlake.capture.sink import CAUGHT_UP_FRACTION, ChangeLogSink, FlushPolicy, LakeWriteError
from binlake.capture.spill import SpillFolder
from binlake.capture.status import CaptureMetrics, StatusWriter, local_status_path, summary_line
from binlake.capture.stream import EventDispatcher, StartPoint, StreamLost, open_stream
from binlake.capture.transactions import TransactionAssembler
from binlake.config import CaptureConfig, ConfigError, PipelineConfig, StartFrom
from binlake.lake import Lake
from binlake.positions import BinlogPosition
from binlake.retention import check_retention
from binlake.rules import TableMapping
from binlake.snapshot.discovery import selected_targets
from binlake.typemap import UnsupportedTypeError

log = logging.getLogger("binlake.capture")

STATUS_SECONDS = 2.0
INITIAL_BACKOFF = 0.5
LOG_SECONDS = 30.0
_RETRYABLE = (StreamLost, pymysql.err.OperationalError, pymysql.err.InterfaceError, ConnectionError,
              OSError, src.SourceUnreachableError)
_FATAL_CODES = {1045, 1044, 1227}


class StopRequested(Exception):
    """Raised inside a blocking read when a stop signal arrives."""


def _error_code(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _fatal(exc: BaseException, position: str) -> BaseException | None:
    """The error to stop with for ``exc``, or ``None`` when reconnecting may help."""
    if isinstance(exc, src.SourceTlsError):  # an untrusted or misnamed certificate, no TLS offered: not transient
        return exc
    code = _error_code(exc)
    if code == src.ER_MASTER_FATAL_READING_BINLOG:
        text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
        if "purged" in text.lower() or "could not find" in text.lower() or "first log file" in text.lower():
            return src.BinlogPurgedError(src.purged_message(position, f"server said: {text}"))
        return src.SourceError(f"the source refused to stream the binlog from {position}: {text}")
    if code in _FATAL_CODES:
        return src.SourceGrantsError(f"the source refused the binlog connection: {exc.args[1:]}")
    return None


def explicit_start_label(capture: CaptureConfig) -> str | None:
    """A stable text of the configured explicit start (``None`` when there is none)."""
    if capture.start_file and capture.start_pos:
        return f"file {capture.start_file}:{capture.start_pos}"
    if capture.start_gtid:
        return f"gtid {capture.start_gtid}"
    return None


class CaptureRunner:
    """One capture process for one pipeline (see module docstring)."""

    def __init__(self, config: PipelineConfig, lake: Lake | None = None) -> None:
        self.config = config
        lake = lake or Lake.from_config(config)
        self.lake = lake.with_retry(replace(lake.retry, sleep=self._sleep))  # a stop ends a retry wait
        self.mapping = TableMapping.parse(config.table_mappings)
        self.policy = FlushPolicy(config.capture.flush_rows, config.capture.flush_seconds,
                                  config.capture.flush_bytes)
        self.status = StatusWriter(self.lake, local_status_path(config))
        self.metrics = CaptureMetrics()
        self.stopping = False
        self._interruptible = False
        self._stream: Any = None
        self.schema = DeclaredTypesReader(config.source)
        self.layouts = Layouts(self.mapping, self.schema.column_types, self.schema.table_exists)
        self.sink: ChangeLogSink | None = None
        self.assembler: TransactionAssembler | None = None
        self.mariadb = True
        self._pending_since: float | None = None
        self._moved_since: float | None = None
        self._last_flush: float | None = None
        self._last_status = 0.0
        self._last_log = 0.0
        self._backoff = INITIAL_BACKOFF
        self._saved_key: tuple[str, int] | None = None
        self.applied_start: str | None = None  # the explicit start this run applied (kept in the checkpoint)

    # ------------------------------------------------------------------ signals

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the capture cleanly (main thread only)."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def request_stop(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        """Ask the loop to stop; interrupts a blocking read or a back-off sleep at once."""
        if not self.stopping:
            log.info("stop requested (signal %s): flushing and saving the checkpoint", signum)
        self.stopping = True
        if self._interruptible:
            raise StopRequested()

    # ------------------------------------------------------------------ steps 1 and 2

    def preflight(self) -> tuple[int, StartPoint]:
        """Steps 1–2: check the source; return its server_id and the start point."""
        source = self.config.source
        log.info("step 1: checking source %s", src.describe(source))
        with src.connect(source) as conn:
            src.check_binlog_settings(conn)
            src.check_grants(conn, need_replication=True)
            check_retention(conn, self.config.capture.min_binlog_retention_hours)
            self.mariadb = src.is_mariadb(conn)
            server_id = src.server_id(conn)
            if server_id == source.server_id:
                raise ConfigError(f"source.server_id {source.server_id} equals the source's own server_id; "
                                  "pick a unique id for the capture")
            self.layouts.lower_case_table_names = src.lower_case_table_names(conn)  # names in DDL text
            self.layouts.claim(selected_targets(conn, self.mapping))  # refuse two tables → one lake table
            log.info("step 2: choosing the start point (capture.start=%s)", self.config.capture.start.value)
            start = self._start_point(conn, server_id)
        return server_id, start

    def _start_point(self, conn: Any, server_id: int) -> StartPoint:
        """``checkpoint``: the saved checkpoint, else the current end. ``position``: the configured
        start the first time; once a run applied it, later runs with the same setting resume from
        the checkpoint (a changed setting applies again). ``end``: the current end, every run.

        Resuming follows the source across a failover or a reset by GTID, in a new epoch, and
        refuses when the source lacks transactions the lake holds; a start that leaves a gap opens a
        new epoch too (:mod:`binlake.capture.resume`). A new epoch is registered in the lake's
        history (:mod:`binlake.capture.history`) before anything is streamed."""
        capture = self.config.capture
        checkpoint = load_checkpoint(self.lake)
        registry = load_registry(self.lake)
        server = read_server_facts(conn)
        label = explicit_start_label(capture) if capture.start == StartFrom.POSITION else None
        applied_before = label is not None and checkpoint is not None and checkpoint.started_from == label
        if checkpoint is not None and (capture.start == StartFrom.CHECKPOINT or applied_before):
            if applied_before:
                log.info("capture.start=position (%s) was applied by an earlier run", label)
            saved = checkpoint
            decision = resume_decision(saved, registry, server, lambda: lake_gtids(self.lake, saved))
        else:
            if capture.start == StartFrom.CHECKPOINT:
                log.info("no checkpoint yet: starting at the current end of the binlog")
            elif checkpoint is not None:
                log.warning("capture.start=%s: the saved checkpoint is ignored", capture.start.value)
            if capture.start == StartFrom.POSITION:
                wanted, began = self._explicit_start(conn), EXPLICIT_START
                self.applied_start = label
            else:
                wanted, began = StartPoint(position=server.end), START_AT_END
            decision = new_start_decision(checkpoint, registry, server, wanted.position, wanted.gtid, began)
        if decision.start is not None:
            src.check_binlog_available(conn, decision.start.file)
        if decision.history is not None:
            entry = stamped(decision.history, datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
            save_registry(self.lake, registry.with_history(entry))
        new_epoch = checkpoint is not None and decision.epoch != checkpoint.position.epoch
        (log.warning if new_epoch else log.info)("%s", decision.message)
        if decision.start is not None:
            return StartPoint(position=decision.start)
        return StartPoint(gtid=decision.gtid, epoch=decision.epoch)

    def _explicit_start(self, conn: Any) -> StartPoint:
        capture = self.config.capture
        if capture.start_file and capture.start_pos:
            src.check_binlog_available(conn, capture.start_file)
            gtid = src.gtid_at(conn, capture.start_file, capture.start_pos)
            return StartPoint(position=BinlogPosition.of(capture.start_file, capture.start_pos, gtid))
        if capture.start_gtid:
            return StartPoint(gtid=capture.start_gtid)
        raise ConfigError("capture.start is 'position' but neither capture.start_file + capture.start_pos "
                          "nor capture.start_gtid is set")

    # ------------------------------------------------------------------ step 3

    def run(self) -> None:
        """Run until stopped (returns) or a fatal error (raises, after flushing what was committed)."""
        try:
            server_id, start = self.preflight()
        except BaseException as exc:
            self._fail(exc)
            raise
        try:
            spill = SpillFolder(self.config.capture.spill_dir)
        except OSError as exc:
            error = ConfigError(f"capture.spill_dir: cannot create a spill folder: {exc}")
            self._fail(error)
            raise error from exc
        try:
            self._run_with(server_id, start, spill)
        finally:
            spill.close()

    def _run_with(self, server_id: int, start: StartPoint, spill: SpillFolder) -> None:
        self.sink = ChangeLogSink(self.lake, server_id, started_from=self.applied_start)
        initial = start.position or BinlogPosition.of("binlog.000001", 4, start.gtid, start.epoch)
        self.assembler = TransactionAssembler(self.layouts, initial, self._schema_changed, spill=spill,
                                              max_rows_in_memory=self.config.capture.max_transaction_rows_in_memory,
                                              max_bytes_in_memory=self.config.capture.max_transaction_bytes_in_memory)
        if start.position is None:
            self.assembler.position_known = False
        log.info("step 3: streaming from %s (server_id %d, flush every %d records, %d bytes or %.1fs, transactions "
                 "above %d records or %d bytes spill to %s)", start, self.config.source.server_id,
                 self.policy.max_rows, self.policy.max_bytes, self.policy.max_seconds,
                 self.assembler.max_rows_in_memory, self.assembler.max_bytes_in_memory, spill.path)
        try:
            self._loop(start)
        except (StopRequested, KeyboardInterrupt):
            pass
        except BaseException as exc:
            self._fail(exc)
            raise
        self._stop()

    def _fail(self, exc: BaseException) -> None:
        """Record a fatal error in the status; keep the committed transactions already read —
        unless writing them is what failed (then nothing more is written: the checkpoint stays)."""
        self.metrics.state, self.metrics.error = "failed", str(exc)
        try:
            if self.assembler is not None and self.sink is not None and self.sink.failure is None:
                self.assembler.discard_open("the capture is failing")
                self._flush()
        except Exception as flush_error:  # the original error matters more
            log.warning("could not flush before failing: %s", flush_error)
        self._write_status()
        self.schema.close()

    def _loop(self, start: StartPoint) -> None:
        recheck = False
        while not self.stopping:
            try:
                if recheck:
                    self._recheck_source()
                self._stream_from(start)
            except StopRequested:
                return
            except _RETRYABLE as exc:
                fatal = _fatal(exc, str(start))
                if fatal is not None:
                    raise fatal from None
                if self.stopping:
                    return
                self._reconnect_wait(exc)
                start, recheck = self._resume_point(start), True

    def _resume_point(self, previous: StartPoint) -> StartPoint:
        assert self.assembler is not None
        if not self.assembler.position_known:
            return previous
        return StartPoint(position=self.assembler.position)

    def _reconnect_wait(self, exc: BaseException) -> None:
        """Discard the open transaction and back off (doubling, capped; reset by a delivered event)."""
        assert self.assembler is not None
        self.assembler.discard_open("the binlog connection broke")
        self.metrics.state = "reconnecting"
        self.metrics.reconnects += 1
        self._write_status()
        log.warning("binlog connection lost (%s: %s); reconnecting in %.1fs", type(exc).__name__, exc,
                    self._backoff)
        self._sleep(self._backoff)
        self._backoff = min(self._backoff * 2, self.config.capture.reconnect_max_seconds)

    def _recheck_source(self) -> None:
        """Before resuming: the source may have come back with other settings or fewer binlogs — or
        be another server, or a reset one (a failover behind the same address, RESET MASTER): then a
        file/position resume would read another history, so the capture stops and the restart
        decides (:mod:`binlake.capture.resume`)."""
        assert self.assembler is not None and self.sink is not None
        with src.connect(self.config.source) as conn:
            src.check_binlog_settings(conn)
            server = read_server_facts(conn)
            if server.server_id != self.sink.source_server_id:
                change: str | None = f"server_id {self.sink.source_server_id} → {server.server_id}"
            elif self.assembler.position_known:
                change = history_change(Checkpoint(self.assembler.position, self.sink.source_server_id), server)
            else:
                change = None
            if change is not None:
                raise src.SourceError(
                    f"the source answered with another binlog history after reconnecting ({change}; a failover "
                    "behind the same address, or RESET MASTER): restart the capture — it follows a new server by "
                    "GTID, or says why it cannot")
            if self.assembler.position_known:
                src.check_binlog_available(conn, self.assembler.position.file)

    def _sleep(self, seconds: float) -> None:
        self._interruptible = True
        try:
            if self.stopping:
                raise StopRequested()
            time.sleep(seconds)
        finally:
            self._interruptible = False

    def _stream_from(self, start: StartPoint) -> None:
        assert self.assembler is not None
        self.layouts.clear()
        # a heartbeat within a fraction of the flush period: a stream that caught up right after a
        # flush still flushes its tail that soon (FlushPolicy.due_caught_up)
        heartbeat = min(self.config.capture.heartbeat_seconds, self.policy.max_seconds * CAUGHT_UP_FRACTION)
        stream = open_stream(self.config.source, start, self.layouts, heartbeat, self.mariadb)
        self._stream = stream
        dispatcher = EventDispatcher(self.assembler, self.layouts, self._heartbeat)
        try:
            self.metrics.state = "running"
            while not self.stopping:
                event = self._read(stream)
                if event is None:
                    raise StreamLost("the source ended the binlog stream")
                self.metrics.events += 1
                self.metrics.caught_up = False
                self._backoff = INITIAL_BACKOFF
                dispatcher.dispatch(event)
                self._after_event()
        finally:
            self._stream = None
            stream.close()

    def _read(self, stream: Any) -> Any:
        self._interruptible = True
        try:
            if self.stopping:
                raise StopRequested()
            return stream.fetchone()
        finally:
            self._interruptible = False

    def _heartbeat(self) -> None:
        self.metrics.caught_up = True

    def _schema_changed(self) -> None:
        self.layouts.clear()
        if self._stream is not None:
            self._stream.table_map.clear()

    def _after_event(self) -> None:
        """Flush on the size/time bound, or at once when the stream has caught up
        (:meth:`FlushPolicy.due_caught_up`, asked only between transactions); refresh the status
        every few seconds (cheap per event)."""
        assembler, sink = self.assembler, self.sink
        assert assembler is not None and sink is not None
        now = time.monotonic()
        if assembler.pending_rows:
            if self._pending_since is None:
                self._pending_since = now
        elif (self._moved_since is None and assembler.position_known and not assembler.in_transaction
              and assembler.position_key != self._saved_key):
            self._moved_since = now
        if self.policy.due(assembler.pending_rows, self._pending_since, self._moved_since, now,
                           assembler.pending_bytes) or (
                not assembler.in_transaction and self.policy.due_caught_up(self._pending_since, self._last_flush, now)
                and self._stream is not None and self._stream.idle()):
            self._flush()
        if now - self._last_status >= STATUS_SECONDS:
            self.metrics.last_event_ts = assembler.last_event_ts or self.metrics.last_event_ts
            self._write_status()

    def _flush(self) -> None:
        """Write the pending transactions and the checkpoint; release them only once both are
        durable (a failure keeps them pending, and the poisoned sink keeps the checkpoint)."""
        assembler, sink = self.assembler, self.sink
        assert assembler is not None and sink is not None
        batch = assembler.pending_batch()
        try:
            sink.flush(batch.transactions, batch.position if assembler.position_known else None)
        except (StopRequested, LakeWriteError):
            raise
        except Exception as exc:  # e.g. a spill file that cannot be read: never a source problem to retry
            raise LakeWriteError(f"writing the change log to {self.lake.root} failed: {exc}; the checkpoint "
                                 f"stays at {sink.saved}") from exc
        assembler.release(batch)
        self.metrics.records += batch.rows
        if sink.saved is not None:
            self._saved_key = (sink.saved.file, sink.saved.pos)
        self._pending_since = self._moved_since = None
        self._last_flush = time.monotonic()

    def _write_status(self) -> None:
        now = time.monotonic()
        self.metrics.roll_window()
        assembler, sink = self.assembler, self.sink
        if assembler is not None:
            self.metrics.spilled_transactions, self.metrics.spill_files = (assembler.spilled_transactions,
                                                                           assembler.spill_files)
        status = self.metrics.snapshot(
            assembler.position if assembler is not None and assembler.position_known else None,
            sink.saved if sink else None,
            sink.files_written if sink else 0,
            sink.files_written_total if sink else 0,
            sink.last_file if sink else None,
        )
        self.status.write(status)  # best effort, never raises: the change log and checkpoint are not
        self._last_status = now
        if now - self._last_log >= LOG_SECONDS or self.metrics.state != "running":
            log.info(summary_line(status))
            self._last_log = now

    # ------------------------------------------------------------------ step 5

    def _stop(self) -> None:
        """Flush what is committed and save the checkpoint; a write that fails now fails the stop
        (:class:`LakeWriteError`, non-zero exit). A stop that interrupted a lake retry wait writes
        nothing more: the checkpoint stays, and a restart re-reads from it."""
        log.info("step 5: stopping")
        if self.assembler is not None and self.sink is not None:
            self.assembler.discard_open("the capture is stopping")
            try:
                if self.sink.failure is None:
                    self._flush()
            except StopRequested:  # a transient lake error, and the stop does not wait for retries
                pass
            except LakeWriteError as exc:
                self._fail(exc)
                raise
            if self.sink.failure is not None:
                log.warning("stopped while writing to the lake (%d committed transactions not written); the "
                            "checkpoint stays at %s and a restart re-reads from there",
                            len(self.assembler.pending), self.sink.saved)
        self.metrics.state = "stopped"
        self._write_status()
        self.schema.close()


__all__ = ["CaptureDataError", "CaptureRunner", "LakeWriteError", "StopRequested", "UnsupportedTypeError"]
