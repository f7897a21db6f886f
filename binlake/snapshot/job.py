"""The full-load job: ``spark-submit jobs/full_load.py --config conf/<pipeline>.yaml [--restart]``.

:func:`main` wires config, source connections, the lake, the Spark session and the clock, and calls
:func:`run_full_load`, which runs these numbered, logged steps:

1. connect to the source and run the pre-flight checks (binlog on, per-transaction snapshot
   positions available — MariaDB —, SELECT granted);
2. discover the tables the table mapping selects (columns after transformation rules, primary keys);
3. apply the no-primary-key policy (``full_load.no_primary_key``: ``load_whole`` warns and loads the
   table as one chunk, ``refuse`` stops before anything is written, naming every such table),
   warn about non-transactional tables, refuse tables an older binlake wrote under another lake
   layout (:mod:`binlake.catalog`) and record the selected tables in ``_binlake/tables.json``
   (two tables mapped to one lake table were already refused in step 2);
4. load the tables, ``full_load.tables_in_parallel`` at a time, each in parallel chunks
   (see :mod:`binlake.snapshot.loader`), with progress lines after every chunk;
5. print the per-table report (rows, bytes, seconds, rows/s, snapshot position).

Exit status: 0 when every table is complete (or skipped), 1 when a table failed (the others are still
loaded; re-running resumes the failed ones), 2 for a configuration or source problem.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from pyspark.sql import SparkSession

from binlake.capture.history import HistoryError, load_registry, snapshot_history
from binlake.catalog import CatalogEntry, LegacyLayoutError, check_no_legacy_layout, write_catalog
from binlake.config import ChunkReader, PipelineConfig, SnapshotMethod
from binlake.entrypoint import CONFIG_ERROR_EXIT, configure_logging, load_pipeline
from binlake.lake import Lake, snapshot_state_key
from binlake.names import LakeNameError, TargetCollisionError
from binlake.registration.runner import RegistrationRunner
from binlake.rules import TableMapping
from binlake.snapshot.arrowread import arrow_source, choose_reader, connectorx_supported, server_offers_tls
from binlake.snapshot.deltars import deltalake_supported
from binlake.snapshot.discovery import SourceTable, discover_tables
from binlake.snapshot.loader import ChunkHook, LoadContext, TableLoad
from binlake.snapshot.reading import COMMIT_TS_COLUMN, LSN_COLUMN, SPARK_SETTINGS, jdbc_source
from binlake.snapshot.replica import ChunkLabeller, ReplicaError, open_replica
from binlake.snapshot.replicasignal import open_signalled_replica, uses_signal
from binlake.snapshot.report import Progress, TableReport, format_report
from binlake.snapshot.session import SparkOnDemand, local_parallelism, submitted_master
from binlake.snapshot.watermark import choose_method, server_has_snapshot_position, watermark_signal
from binlake.source import (
    Connection,
    SourceError,
    check_grants,
    connect,
    describe,
    gtid_binlog_state,
    is_mariadb,
    server_id,
    server_uuid,
)

log = logging.getLogger("binlake.snapshot")

TRANSACTIONAL_ENGINES = frozenset({"innodb", "xtradb", "rocksdb", "tokudb"})


class FullLoadError(RuntimeError):
    """The full load could not load every table; the message names them and why."""

    def __init__(self, message: str, reports: Sequence[TableReport] = ()) -> None:
        super().__init__(message)
        self.reports = list(reports)


def check_snapshot_support(conn: Connection, setting: SnapshotMethod = SnapshotMethod.MARIADB) -> SnapshotMethod:
    """The snapshot method for ``setting`` (``full_load.snapshot_method``) on this server; refuses a
    server without a binlog, or ``mariadb`` where the server has no per-transaction position."""
    with conn.cursor() as cur:
        cur.execute("SELECT @@log_bin")
        row = cur.fetchone()
        if row is None or str(row[0]) not in ("1", "ON"):
            raise SourceError("the source has no binlog (log_bin is OFF): start it with log-bin; the full "
                              "load records binlog positions for the change stream")
    method = choose_method(setting, server_has_snapshot_position(conn))
    log.info("snapshot method: %s (full_load.snapshot_method: %s)", method.value, setting.value)
    return method


def check_tables(tables: Sequence[SourceTable], config: PipelineConfig) -> None:
    """Step 3: the no-primary-key policy and the non-transactional-engine warning."""
    no_key = [t.qualified for t in tables if not t.key_columns]
    if no_key and config.full_load.no_primary_key == "refuse":
        raise FullLoadError(
            f"{len(no_key)} selected table(s) have no primary key: {', '.join(no_key)}. "
            "full_load.no_primary_key is 'refuse': add a primary key, exclude the tables with a selection "
            "rule, or set full_load.no_primary_key: load_whole"
        )
    for name in no_key:
        log.warning("%s has no primary key: loaded whole as one chunk (one Spark task), and the change "
                    "stream cannot key its rows (full_load.no_primary_key: load_whole)", name)
    for table in tables:
        if table.engine.lower() not in TRANSACTIONAL_ENGINES:
            log.warning("%s uses the %s engine: not transactional, so its chunks are not consistent "
                        "snapshots", table.qualified, table.engine or "unknown")
    reserved = {LSN_COLUMN, COMMIT_TS_COLUMN}
    for table in tables:
        clash = reserved & {c.target_name for c in table.columns}
        if clash:
            raise FullLoadError(f"{table.qualified}: column(s) {sorted(clash)} clash with binlake's metadata "
                                "columns; rename them with a rename-column transformation rule")


def job_spark_settings(config: PipelineConfig, parallelism: int) -> dict[str, str]:
    """Session settings the full load applies at start; a key set in ``spark.conf`` of the config wins.

    Besides :data:`~binlake.snapshot.reading.SPARK_SETTINGS`, Delta's snapshot-state partitions are
    cut from 50 to the cluster's parallelism: every chunk commit refreshes the table snapshot, and on
    a fresh table 50 tasks per refresh were ~20% of the load's CPU (measured, 2 cores).
    """
    settings = {**SPARK_SETTINGS, "spark.databricks.delta.snapshotPartitions": str(max(1, parallelism))}
    return {key: value for key, value in settings.items() if key not in config.spark.conf}


def full_load_view(config: PipelineConfig) -> PipelineConfig:
    """``config`` as the full load sees it: ``source`` replaced by ``full_load.source`` when that is set."""
    if config.full_load.source is None:
        return config
    return config.model_copy(update={"source": config.full_load.source})


def run_full_load(
    config: PipelineConfig,
    spark: SparkSession | SparkOnDemand,
    *,
    connect_source: Callable[[], Connection] | None = None,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    after_commit: ChunkHook | None = None,
    after_record: ChunkHook | None = None,
    restart: bool = False,
) -> list[TableReport]:
    """Run the full load (steps 1–5 of the module docstring) and return the per-table report.

    ``restart`` forgets unfinished loads (their state files) and starts those tables afresh.
    Raises :class:`FullLoadError` when a table failed, after loading the others.
    """
    overridden = config.full_load.source is not None
    primary = config.source  # the capture's source: a replica full load's signals go there
    config = full_load_view(config)
    connector = connect_source or (lambda: connect(config.source))
    def configure(session: SparkSession) -> None:
        for key, value in job_spark_settings(config, session.sparkContext.defaultParallelism).items():
            session.conf.set(key, value)

    sessions = spark if isinstance(spark, SparkOnDemand) else SparkOnDemand.running(spark)
    sessions.configure_with(configure)
    lake = Lake.from_config(config)
    log.info("step 1/5: connecting to the source %s and checking it", describe(config.source))
    with connector() as conn:
        method = check_snapshot_support(conn, config.full_load.snapshot_method)
        try:
            reader = choose_reader(config.full_load.reader, config.source.tls.mode, server_offers_tls(conn),
                                   connectorx_supported(), deltalake_supported())
        except ValueError as exc:
            raise FullLoadError(str(exc)) from None
        log.info("chunk reader: %s (full_load.reader: %s)", reader.value, config.full_load.reader.value)
        check_grants(conn, need_replication=False)
        source_id = server_id(conn)
        registry = load_registry(lake)
        labeller: ChunkLabeller | None = None
        try:
            history = snapshot_history(registry, source_id, server_uuid(conn), gtid_binlog_state(conn),
                                       is_mariadb(conn))
        except HistoryError as exc:
            if not overridden:
                raise FullLoadError(str(exc)) from None
            try:  # another server: usable when it is a GTID replica of the captured primary
                if uses_signal(method, config.full_load.signal_table):
                    history, labeller = open_signalled_replica(conn, connector, lambda: connect(primary), registry,
                                                               config, str(exc))
                else:
                    history, labeller = open_replica(conn, connector, lake, registry, config.full_load, str(exc))
            except ReplicaError as refused:
                raise FullLoadError(str(refused)) from None
            source_id = history.server_id  # the labels are positions of the primary's history
        if history is None and overridden:
            raise FullLoadError("full_load.source is set, but the capture has not registered its binlog history "
                                "yet, so the full load cannot check that full_load.source is the captured server: "
                                "start the capture first (the README's start order)")
        if history is not None:
            log.info("snapshot positions belong to binlog history %s", history.describe())
        signal = None
        if method is SnapshotMethod.WATERMARK and labeller is None:
            signal = watermark_signal(conn, config, "full-load")
        log.info("step 2/5: discovering tables selected by the table mapping")
        try:
            tables = discover_tables(conn, TableMapping.parse(config.table_mappings))
        except (TargetCollisionError, LakeNameError) as exc:
            raise FullLoadError(str(exc)) from None
    log.info("%d table(s) selected: %s", len(tables), ", ".join(t.qualified for t in tables) or "none")
    log.info("step 3/5: checking primary keys, storage engines and lake paths")
    check_tables(tables, config)
    entries = [CatalogEntry(t.schema, t.name, t.target.schema, t.target.table) for t in tables]
    try:
        check_no_legacy_layout(lake, entries)
    except LegacyLayoutError as exc:
        raise FullLoadError(str(exc)) from None
    write_catalog(lake, entries, now())
    if restart:
        for table in tables:
            lake.delete(snapshot_state_key(table.schema, table.name))
    parallel = config.full_load.max_parallel_chunks or sessions.parallelism()
    log.info("step 4/5: loading %d table(s), %d at a time, %d chunk(s) at a time, into %s",
             len(tables), config.full_load.tables_in_parallel, parallel, config.lake.root)
    progress = Progress(len(tables), clock)
    with ThreadPoolExecutor(parallel, thread_name_prefix="chunk") as chunk_pool:
        epoch = 0 if history is None else history.epoch
        jdbc = jdbc_source(config, epoch=epoch)
        arrow = arrow_source(config, epoch) if reader in (ChunkReader.ARROW, ChunkReader.DIRECT) else None
        direct = reader is ChunkReader.DIRECT and not lake.is_s3
        in_driver = direct and local_parallelism(sessions.master) is not None
        if reader is ChunkReader.DIRECT and not direct:
            log.log(logging.WARNING if config.full_load.reader is ChunkReader.DIRECT else logging.INFO,
                    "the lake is on S3: the direct path writes local files only, so the chunks are written by "
                    "Spark (the arrow reader)")
        ctx = LoadContext(config=config, sessions=sessions, lake=lake, jdbc=jdbc, connect=connector,
                          chunk_pool=chunk_pool, progress=progress, clock=clock, now=now,
                          after_commit=after_commit, after_record=after_record, history=history,
                          server_id=source_id, snapshot_method=method, arrow=arrow, chunk_label=labeller,
                          signal=signal, direct=direct, in_driver=in_driver)
        reports = _load_tables(ctx, tables)
    log.info("step 5/5: report\n%s", format_report(reports))
    register_tables(config)
    failed = [r for r in reports if r.status == "failed"]
    if failed:
        raise FullLoadError(
            f"{len(failed)} of {len(reports)} table(s) failed: "
            + "; ".join(f"{r.source}: {r.message}" for r in failed)
            + ". Re-run the job to resume them.",
            reports,
        )
    return reports


def register_tables(config: PipelineConfig) -> None:
    """With ``lake.catalog`` set: register the loaded tables by name and wait for it (a failure is
    logged and recorded for ``binlake status``; the merge tries again at its start)."""
    runner = RegistrationRunner(config)
    if runner.enabled:
        runner.request("full load done")
        if not runner.wait():
            log.error("the lake tables are not (all) registered in the %s catalog: see `binlake status`; the "
                      "merge retries, or run `binlake catalog sync`", config.lake.catalog.value)
        runner.stop()


def _load_one(ctx: LoadContext, table: SourceTable, label: str) -> TableReport:
    started = ctx.clock()
    try:
        return TableLoad(ctx, table, label).run()
    except Exception as exc:  # one table's failure must not stop the others
        log.error("%s: failed: %s", label, exc, exc_info=log.isEnabledFor(logging.DEBUG))
        return TableReport(table.qualified, table.target.qualified, "failed", 0, None, ctx.clock() - started,
                           0, None, None, message=f"{type(exc).__name__}: {exc}")


def _load_tables(ctx: LoadContext, tables: Sequence[SourceTable]) -> list[TableReport]:
    total = len(tables)
    labels = [f"[{i}/{total}] {t.qualified} → {t.target.qualified}" for i, t in enumerate(tables, 1)]
    with ThreadPoolExecutor(ctx.config.full_load.tables_in_parallel, thread_name_prefix="table") as pool:
        futures = [pool.submit(_load_one, ctx, t, label) for t, label in zip(tables, labels, strict=True)]
        return [f.result() for f in futures]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="full_load", description="binlake full load: source tables → Delta")
    parser.add_argument("--config", required=True, help="pipeline YAML file (see conf/)")
    parser.add_argument("--restart", action="store_true",
                        help="start unfinished table loads afresh instead of resuming them")
    parser.add_argument("--verbose", action="store_true", help="debug logging (secrets are masked)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``jobs/full_load.py``; returns the process exit status."""
    args = parse_args(argv)
    configure_logging(args.verbose)
    config = load_pipeline(args.config)
    if config is None:
        return CONFIG_ERROR_EXIT
    from binlake.spark import build_session

    master = config.spark.master or submitted_master() or os.environ.get("BINLAKE_SPARK_MASTER", "local[*]")
    sessions = SparkOnDemand(lambda: build_session(config, "full-load"), master)
    try:
        reports = run_full_load(config, sessions, restart=args.restart)
    except SourceError as exc:
        log.error("source: %s", exc)
        return 2
    except FullLoadError as exc:
        log.error("%s", exc)
        return 1 if exc.reports else 2
    finally:
        sessions.stop()
    print(format_report(reports))
    return 0
