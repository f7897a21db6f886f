"""The merge job: wiring of config, Spark session, clock and the stream (``streaming/merge.py``).

``main(["--config", "conf/x.yaml"])`` runs continuously, one micro-batch every
``merge.trigger_seconds``; with ``--available-now`` it merges everything in the change log now
(in batches of at most ``merge.max_files_per_batch`` files) and returns. SIGTERM/SIGINT stop the
query between batches.

Exactly once: the stream's checkpoint (``_binlake/merge/checkpoint``) records the lsn range each
batch id covers (:mod:`binlake.merge.stream`; a checkpoint of Spark's file source is migrated at
start, :mod:`binlake.merge.migrate`); every Delta commit of a batch carries the transaction app id
``binlake-merge-<query id>`` (the query id lives in the checkpoint, so a new checkpoint starts a new
app and is never silently skipped) and a version derived from the batch id.

One merge per lake (:mod:`binlake.merge.singleton`): :func:`run` refuses to start while another merge
holds the lake's heartbeat, and stops, writing nothing more, if another merge takes it over.

Online resyncs (:mod:`binlake.merge.resync`): after each batch, and every ``merge.trigger_seconds``
while the stream has no data waiting (also once after an ``--available-now`` run), the merge applies
a delivered resync chunk that is due (every due one at the end), under the same lock as the batch
function — so a stream with changes to merge and a resync take turns, one batch, one chunk. Automatic
resyncs the batches request (:mod:`binlake.merge.autoresync`: unappliable DDL, …) are executed by a
background thread of the merge driver (at the end of an ``--available-now`` run, before it returns).
With ``merge.verify_every_minutes``, the continuous merge also runs the background verifier on a
thread of its own (:class:`binlake.validation.every.MergeVerifier`), stopped with the query.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import signal
from collections.abc import Callable, Sequence
from types import FrameType

from pyspark.sql import SparkSession
from pyspark.sql.streaming.query import StreamingQuery

from binlake.capture.checkpoint import load_checkpoint
from binlake.config import PipelineConfig
from binlake.entrypoint import CONFIG_ERROR_EXIT, configure_logging, load_pipeline
from binlake.lake import CHANGELOG_DIR, MERGE_CHECKPOINT_DIR, Lake
from binlake.merge import deltars
from binlake.merge.apply import Clock, MergeContext
from binlake.merge.autoresync import AutoResyncRefused, AutoResyncRunner
from binlake.merge.batch import BatchProcessor
from binlake.merge.bounds import Bounds
from binlake.merge.heartbeat import stale_after
from binlake.merge.maintenance import Maintenance
from binlake.merge.metrics import StatusFile
from binlake.merge.migrate import MigrationRefused, migrate_file_source_checkpoint
from binlake.merge.resync import ResyncApplier
from binlake.merge.singleton import MergeAlreadyRunning, MergeClaim, MergeDisplaced
from binlake.merge.smallparts import SmallPartLimits
from binlake.merge.source import on_records, read_changelog_stream
from binlake.merge.txn import jvm
from binlake.registration.runner import RegistrationRunner
from binlake.rules import TableMapping
from binlake.tablefeatures import TableFeatures
from binlake.validation.every import MergeVerifier

log = logging.getLogger(__name__)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def checkpoint_app_id(lake: Lake) -> str:
    """``binlake-merge-<query id>`` from the streaming checkpoint's metadata file."""
    data = json.loads(lake.get_bytes(f"{MERGE_CHECKPOINT_DIR}/metadata"))
    return f"binlake-merge-{data['id']}"


def capture_lsn(lake: Lake) -> int | None:
    """The capture checkpoint's lsn (None without a checkpoint)."""
    checkpoint = load_checkpoint(lake)
    return None if checkpoint is None else checkpoint.position.lsn


def _ensure_folder(spark: SparkSession, uri: str) -> None:
    path = jvm(spark).org.apache.hadoop.fs.Path(uri)
    path.getFileSystem(spark._jsc.hadoopConfiguration()).mkdirs(path)


def clear_unstarted_checkpoint(spark: SparkSession, lake: Lake) -> list[str]:
    """Remove what a crash left in the checkpoint's ``offsets``/``commits`` folders before the first
    batch's offsets file existed (a temporary or checksum file): Spark then refuses to start
    (``STATE_STORE_CHECKPOINT_LOCATION_NOT_EMPTY``, "offsets should be empty on batch 0"), and the
    fix it names — a new checkpoint — would be a new app id. No batch runs before its offsets file
    is written, so nothing is lost. Returns the names removed."""
    hadoop = jvm(spark).org.apache.hadoop.fs
    removed: list[str] = []
    folders = [hadoop.Path(lake.uri(f"{MERGE_CHECKPOINT_DIR}/{name}")) for name in ("offsets", "commits")]
    fs = folders[0].getFileSystem(spark._jsc.hadoopConfiguration())
    if not fs.exists(folders[0]) or any(s.getPath().getName().isdigit() for s in fs.listStatus(folders[0])):
        return removed
    for folder in folders:
        for status in fs.listStatus(folder) if fs.exists(folder) else []:
            fs.delete(status.getPath(), False)
            removed.append(f"{folder.getName()}/{status.getPath().getName()}")
    if removed:
        log.warning("merge checkpoint: removed %s left by a crash before the first batch was planned", removed)
    return removed


SNAPSHOT_PARTITIONS = "spark.databricks.delta.snapshotPartitions"


def tune_session(spark: SparkSession, config: PipelineConfig) -> None:
    """Delta rebuilds a table's state after every commit with ``snapshotPartitions`` tasks (default
    50): for the merge's many small commits that fixed cost dominated (measured here: a small MERGE
    took ~10 s with 50, ~6 s with 2 on local[2]). Use the cluster's parallelism unless the config
    sets it."""
    if SNAPSHOT_PARTITIONS not in config.spark.conf:
        spark.conf.set(SNAPSHOT_PARTITIONS, str(max(1, spark.sparkContext.defaultParallelism)))


def start(spark: SparkSession, config: PipelineConfig, available_now: bool, clock: Clock = utc_now,
          after_commit: Callable[[str, int], None] | None = None,
          resync: ResyncApplier | None = None, registration: RegistrationRunner | None = None,
          before_batch: Callable[[], None] | None = None) -> StreamingQuery:
    """Start the merge query (see the module docstring); returns the running query. ``resync``:
    the applier of resync chunks the batch function shares its lock with (one is made if None);
    ``before_batch``: called first and before each batch writes anything (the claim's check, which
    raises when another merge holds or took over the lake)."""
    if before_batch is not None:
        before_batch()  # nothing is written, the checkpoint included, by a merge that does not hold the lake
    tune_session(spark, config)
    lake = Lake.from_config(config)
    resync = resync or ResyncApplier(spark, lake, clock, frozenset(config.merge.scd2_tables),
                                     features=TableFeatures.of(config.lake))
    ctx = MergeContext(spark, lake, "", TableMapping.parse(config.table_mappings),
                       frozenset(config.merge.scd2_tables), clock, after_commit,
                       Bounds(config.merge.max_batch_records, config.merge.max_batch_bytes),
                       on_unappliable_ddl=config.merge.on_unappliable_ddl.value,
                       features=TableFeatures.of(config.lake))
    status = StatusFile(lake)
    small_records = config.merge.small_part_records if deltars.check_version() else 0
    maintenance = Maintenance(ctx, config.merge, lambda: capture_lsn(lake), config.changelog)
    processor = BatchProcessor(ctx, status, maintenance, app_id=lambda: checkpoint_app_id(lake),
                               parallel_tables=config.merge.max_parallel_tables,
                               on_batch=registration.after_batch if registration is not None else None,
                               small_parts=SmallPartLimits(small_records, config.merge.small_part_bytes))
    _ensure_folder(spark, lake.uri(CHANGELOG_DIR))
    clear_unstarted_checkpoint(spark, lake)
    migrate_file_source_checkpoint(spark, lake)
    writer = (read_changelog_stream(spark, config.lake, config.merge.max_files_per_batch).writeStream
              .foreachBatch(on_records(lake, resync.wrap(
                  processor, registration.after_chunks if registration is not None else None), before_batch,
                  config.merge.small_part_bytes if small_records else 0))
              .option("checkpointLocation", lake.uri(MERGE_CHECKPOINT_DIR))
              .queryName(f"binlake-merge-{config.name}"))
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{config.merge.trigger_seconds} seconds")
    return writer.start()


def run(spark: SparkSession, config: PipelineConfig, available_now: bool, clock: Clock = utc_now,
        after_commit: Callable[[str, int], None] | None = None) -> None:
    """Start the query and wait for it: until caught up (``available_now``) or stopped; apply due
    resync chunks while it is idle, and once more at the end."""
    lake = Lake.from_config(config)
    claim = MergeClaim(lake, clock, stale_after(config.merge.trigger_seconds))
    claim.acquire()  # one merge per lake: refused while another one runs
    try:
        _run_claimed(spark, config, available_now, clock, after_commit, lake, claim)
    finally:
        claim.release()


def _run_claimed(spark: SparkSession, config: PipelineConfig, available_now: bool, clock: Clock,
                 after_commit: Callable[[str, int], None] | None, lake: Lake, claim: MergeClaim) -> None:
    resync = ResyncApplier(spark, lake, clock, frozenset(config.merge.scd2_tables),
                           features=TableFeatures.of(config.lake), heartbeat=claim.beat)
    auto = AutoResyncRunner(config, spark, lake, poll_seconds=max(1.0, config.merge.trigger_seconds))
    auto.check()
    # lake tables by name, in a process of its own; an --available-now run registers once, at its end
    registration = RegistrationRunner(config, deferred=available_now)
    registration.request("merge start")
    query = start(spark, config, available_now, clock, after_commit, resync, registration, claim.check)
    verifier = MergeVerifier(spark, config)  # merge.verify_every_minutes (binlake.validation.every)
    if not available_now:
        auto.start()
        verifier.start()

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping the merge query", signum)
        query.stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not _await(query, claim, config.merge.trigger_seconds):
            try:  # a busy stream applies a chunk after each batch: chunks and batches take turns
                applied = 0 if _stream_busy(query) else resync.idle()
            except Exception:
                log.exception("applying resync chunks failed: stopping the merge query")
                query.stop()
                raise
            _stop_if_refused(auto, query)
            if applied:  # a chunk may have created a table born in the stream (binlake.merge.birth)
                registration.request("resync chunks applied")
            registration.poll()
        if available_now:
            auto.run_pending()
            auto.check()
        resync.idle(stopped=True)
        if available_now:
            registration.request("merge run done")  # what the run changed, resync chunks included
            registration.wait()
    finally:
        verifier.stop()
        registration.stop()
        auto.stop()
        resync.mark_stopped()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stream_busy(query: StreamingQuery) -> bool:
    """Is a batch running, or data waiting for the next one (``StreamingQuery.status``)?"""
    status = query.status
    return bool(status.get("isTriggerActive") or status.get("isDataAvailable"))


def _await(query: StreamingQuery, claim: MergeClaim, trigger_seconds: float) -> bool:
    """Wait one trigger for the query to end (True: it ended). A query that failed because another
    merge took the lake over raises :class:`MergeDisplaced`; so does a running one once the claim
    is lost (a displaced merge applies no resync chunk either)."""
    try:
        ended = query.awaitTermination(max(1, round(trigger_seconds)))
    except Exception:
        claim.check()
        raise
    if not ended:
        try:
            claim.check()
        except MergeDisplaced:
            query.stop()
            raise
    return bool(ended)


def _stop_if_refused(auto: AutoResyncRunner, query: StreamingQuery) -> None:
    """Stop the query if an automatic resync was refused (:meth:`AutoResyncRunner.check`)."""
    try:
        auto.check()
    except AutoResyncRefused:
        query.stop()
        raise


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="merge.py", description="binlake streaming merge: change log → Delta")
    parser.add_argument("--config", required=True, help="pipeline YAML file")
    parser.add_argument("--available-now", action="store_true",
                        help="merge what the change log holds now, then stop (for scheduled runs)")
    parser.add_argument("--verbose", action="store_true", help="debug logging (secrets are masked)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``streaming/merge.py``: wire config, session and clock, then run."""
    args = parse_args(argv)
    configure_logging(args.verbose)
    config = load_pipeline(args.config)
    if config is None:
        return CONFIG_ERROR_EXIT
    from binlake.spark import build_session

    spark = build_session(config, "merge")
    try:
        run(spark, config, args.available_now)
    except (AutoResyncRefused, MigrationRefused, MergeAlreadyRunning, MergeDisplaced) as exc:
        log.error("merge stopped: %s", exc)
        return 1
    return 0
