"""``binlake resync --config C --table shop.orders [--where "..."]``: re-read a table online.

:func:`run_resync` runs these numbered, logged steps:

1. connect to the source, check it as the full load does (and pick its snapshot method,
   ``full_load.snapshot_method``), and label snapshot positions with the capture's binlog history
   (exactly as the full load: :func:`binlake.capture.history.snapshot_history`);
2. find the table in the table mapping and check it can be resynced: a primary key whose columns
   are all in the lake, a complete full load, not an SCD2 table;
3. resume the table's unfinished resync of the same selection (``--restart``: abandon it), or plan
   a new one: the full load's primary-key chunks (:func:`binlake.snapshot.planning.plan_chunks`),
   one whole-table chunk where the lake cannot order the key as the source
   (:func:`binlake.resync.ranges.exact_problem`); with ``--where``, only the chunks holding a row
   that matches it (asked of the source, chunk by chunk); write the manifest;
4. deliver the pending chunks, ``full_load.max_parallel_chunks`` at a time: each read in its own
   consistent snapshot at lsn ``P`` by the full load's reader (:mod:`binlake.resync.delivery`),
   written as one Parquet folder, then recorded in the manifest — progress lines after each;
5. report per chunk and in total; with ``--wait``, wait until the merge has applied every chunk.

The job never writes the Delta table: the merge applies the chunks (:mod:`binlake.merge.resync`).
A SIGKILL at any point loses nothing: a chunk not recorded is read again (a new folder) when the
same command runs again. Exit status: 0 delivered (and applied, with ``--wait``), 1 refused or
failed, 2 source or configuration problem, 3 ``--wait`` ran out before the merge applied everything.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from pyspark.sql import SparkSession

from binlake.capture.history import HistoryError, load_registry, snapshot_history
from binlake.chunks import WHOLE, ChunkRange, render_predicate
from binlake.config import ChunkReader, PipelineConfig, SnapshotMethod
from binlake.entrypoint import CONFIG_ERROR_EXIT, configure_logging, load_pipeline
from binlake.lake import Lake
from binlake.merge.handoff import joined_load, read_handoff
from binlake.merge.summary import TableName
from binlake.names import LakeNameError, TargetCollisionError
from binlake.resync import store
from binlake.resync.delivery import DeliverHook, Delivery, ResyncContext
from binlake.resync.manifest import Resync, ResyncChunk
from binlake.resync.ranges import ResyncKey, exact_problem
from binlake.resync.report import ResyncReport, format_chunks
from binlake.rules import TableMapping
from binlake.snapshot.arrowread import (
    arrow_source,
    choose_reader,
    connectorx_supported,
    server_offers_tls,
)
from binlake.snapshot.deltars import deltalake_supported
from binlake.snapshot.discovery import SourceTable, discover_tables
from binlake.snapshot.job import check_snapshot_support
from binlake.snapshot.planning import estimate_row_bytes, plan_chunks, table_sql
from binlake.snapshot.reading import SPARK_SETTINGS, jdbc_source
from binlake.snapshot.report import Progress
from binlake.snapshot.watermark import watermark_signal
from binlake.source import (
    Connection,
    SourceError,
    check_grants,
    connect,
    gtid_binlog_state,
    is_mariadb,
    server_id,
    server_uuid,
)
from binlake.typemap import CHAR_TYPES

log = logging.getLogger("binlake.resync")

WAIT_POLL_SECONDS = 2.0


class ResyncError(RuntimeError):
    """The resync cannot run as asked; the message says why and what to do."""


class NotSelectedError(ResyncError):
    """The table is not (or no longer) a selected table of the source: dropped or renamed away since
    the change that asked for a resync, whose DROP/RENAME the change log then carries."""


def find_table(tables: Sequence[SourceTable], name: str) -> SourceTable:
    """The selected source table ``schema.table`` (source names; a dot inside a name: use the lake
    catalog's spelling, the first dot splits)."""
    schema, dot, table = name.partition(".")
    if not dot or not schema or not table:
        raise ResyncError(f"--table {name!r}: give the source table as <schema>.<table>")
    for candidate in tables:
        if (candidate.schema, candidate.name) == (schema, table):
            return candidate
    raise NotSelectedError(f"--table {name}: not a table the table mapping selects (selected: "
                      f"{', '.join(t.qualified for t in tables) or 'none'})")


def resync_keys(conn: Connection, table: SourceTable) -> tuple[ResyncKey, ...]:
    """The key columns as the lake names them, with source types and (text keys) collations."""
    by_name = {c.name: c for c in table.columns}
    missing = [k for k in table.key_columns if k not in by_name]
    if not table.key_columns or missing:
        why = "has no primary key" if not table.key_columns else f"key column(s) {missing} are not in the lake"
        raise ResyncError(f"{table.qualified} {why}: an online resync needs the primary key in the lake; "
                          "reload the table with the full load instead")
    collations: dict[str, str | None] = {}
    if any(t.base in CHAR_TYPES for t in table.key_types):
        with conn.cursor() as cur:
            cur.execute("SELECT COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
                        "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s", (table.schema, table.name))
            collations = {str(n): None if c is None else str(c) for n, c in cur.fetchall()}
    return tuple(ResyncKey(by_name[k].target_name, t.spec, collations.get(k))
                 for k, t in zip(table.key_columns, table.key_types, strict=True))


def check_where(conn: Connection, table: SourceTable, where: str) -> None:
    """Run ``where`` once on the source so a bad predicate fails before anything is written."""
    if ";" in where:
        raise ResyncError(f"--where {where!r}: one predicate, without ';'")
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT 1 FROM {table_sql(table)} WHERE ({where}) LIMIT 1")
            cur.fetchall()
    except Exception as exc:
        raise ResyncError(f"--where {where!r} is not a valid predicate on {table.qualified}: {exc}") from None


def chunks_matching(conn: Connection, table: SourceTable, ranges: Sequence[ChunkRange], where: str) -> list[int]:
    """Indexes of the ranges holding at least one source row matching ``where``."""
    found = []
    with conn.cursor() as cur:
        for index, chunk in enumerate(ranges):
            predicate = render_predicate(chunk, table.key_columns)
            cur.execute(f"SELECT 1 FROM {table_sql(table)} WHERE {predicate} AND ({where}) LIMIT 1")
            if cur.fetchall():
                found.append(index)
    return found


def plan_resync(conn: Connection, config: PipelineConfig, table: SourceTable, keys: tuple[ResyncKey, ...],
                where: str | None, ranges: Sequence[ChunkRange] | None, now: datetime,
                reason: str) -> Resync:
    """Step 3 for a new resync: the chunks to re-read (see the module docstring)."""
    note = ""
    if ranges is None:
        plan = plan_chunks(conn, table, config.full_load.chunk_rows)
        tiling: Sequence[ChunkRange] = plan.ranges
        log.info("%s: %d chunk(s) for ~%s rows (%s)", table.qualified, len(tiling), f"{plan.rows:,}", plan.method)
    else:
        tiling = ranges
    problem = exact_problem(tiling, keys)
    if problem is not None:
        note = f"one whole-table chunk: {problem}"
        log.warning("%s: resynced as one chunk — the lake cannot place rows in key ranges exactly (%s)",
                    table.qualified, problem)
        tiling = [WHOLE]
    selected = list(range(len(tiling)))
    if where is not None:
        selected = chunks_matching(conn, table, tiling, where)
        log.info("%s: %d of %d chunk(s) hold rows matching --where", table.qualified, len(selected), len(tiling))
    chunks = tuple(ResyncChunk(i, tiling[i], render_predicate(tiling[i], table.key_columns)) for i in selected)
    return Resync(store.new_resync_id(now), table.schema, table.name, table.target.schema, table.target.table,
                  keys, now.isoformat(), chunks, where, reason, note=note)


def _active(lake: Lake, table: SourceTable) -> Resync | None:
    pending = [r for r in store.table_resyncs(lake, table.target.schema, table.target.table) if r.pending]
    return pending[-1] if pending else None


def _same_selection(resync: Resync, where: str | None, reason: str, ranges: Sequence[ChunkRange] | None) -> bool:
    if ranges is not None:
        return False  # a repair is always planned afresh from its validation
    return resync.where == where and resync.reason == reason


def run_resync(
    config: PipelineConfig,
    spark: SparkSession,
    table_name: str,
    where: str | None = None,
    *,
    ranges: Sequence[ChunkRange] | None = None,
    reason: str = "resync",
    restart: bool = False,
    connect_source: Callable[[], Connection] | None = None,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    after_deliver: DeliverHook | None = None,
) -> ResyncReport:
    """Run steps 1–4 of the module docstring for source table ``table_name`` (``schema.table``).

    ``where``: re-read only the chunks holding a row matching this source predicate; ``ranges``:
    re-read exactly these key ranges (``binlake validate --repair``). Raises :class:`ResyncError`
    when refused, :class:`~binlake.source.SourceError` for source problems.
    """
    connector = connect_source or (lambda: connect(config.source))
    for key, value in SPARK_SETTINGS.items():
        if key not in config.spark.conf:
            spark.conf.set(key, value)
    lake = Lake.from_config(config)
    started = clock()
    log.info("step 1/5: connecting to the source and labelling positions with the capture's binlog history")
    with connector() as conn:
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
        method = check_snapshot_support(conn, config.full_load.snapshot_method)
        try:  # the full load's reader; the direct path writes a Delta table, a resync delivers Parquet: arrow
            reader = choose_reader(config.full_load.reader, config.source.tls.mode, server_offers_tls(conn),
                                   connectorx_supported(), deltalake_supported())
        except ValueError as exc:
            raise ResyncError(str(exc)) from None
        check_grants(conn, need_replication=False)
        signal = watermark_signal(conn, config, "resync") if method is SnapshotMethod.WATERMARK else None
        try:
            history = snapshot_history(load_registry(lake), server_id(conn), server_uuid(conn),
                                       gtid_binlog_state(conn), is_mariadb(conn))
        except HistoryError as exc:
            raise ResyncError(str(exc)) from None
        log.info("step 2/5: finding %s in the table mapping", table_name)
        try:
            table = find_table(discover_tables(conn, TableMapping.parse(config.table_mappings)), table_name)
        except (TargetCollisionError, LakeNameError) as exc:
            raise ResyncError(str(exc)) from None
        keys = resync_keys(conn, table)
        _check_resyncable(config, lake, table)
        if where is not None:
            check_where(conn, table, where)
        log.info("step 3/5: planning the chunks")
        resync = _resume_or_plan(conn, config, lake, table, keys, where, ranges, restart, now(), reason)
        row_bytes = estimate_row_bytes(conn, table)
    epoch = 0 if history is None else history.epoch
    arrow = arrow_source(config, epoch) if reader in (ChunkReader.ARROW, ChunkReader.DIRECT) else None
    log.info("chunk reader: %s (full_load.reader: %s)", "arrow" if arrow is not None else "jdbc",
             config.full_load.reader.value)
    ctx = ResyncContext(config, spark, lake, jdbc_source(config, epoch=epoch), table, clock, now, connector, method,
                        epoch, after_deliver, signal, arrow, row_bytes)
    parallel = config.full_load.max_parallel_chunks or spark.sparkContext.defaultParallelism
    log.info("step 4/5: delivering %d of %d chunk(s), %d at a time", len(resync.pending), len(resync.chunks),
             parallel)
    before = frozenset(c.index for c in resync.delivered)
    resync = Delivery(ctx, resync, Progress(1, clock)).run(parallel)
    report = ResyncReport.of(resync, clock() - started, before)
    log.info("step 5/5: report\n%s", format_chunks(resync))
    return report


def _check_resyncable(config: PipelineConfig, lake: Lake, table: SourceTable) -> None:
    if table.target.qualified in config.merge.scd2_tables:
        raise ResyncError(f"{table.qualified} is an SCD2 (history) table in the lake: an online resync would "
                          "rewrite its history; reload it with the full load instead")
    name = TableName(table.schema, table.name, table.target.schema, table.target.table)
    handoff = read_handoff(lake, name)
    if handoff is None or not handoff.complete:
        raise ResyncError(f"{table.qualified} has no complete full load yet: run the full load first "
                          "(a resync re-synchronises a table the merge already replicates)")
    if joined_load(lake, name) != handoff.load_id:
        log.warning("%s: the merge has not joined this table yet (binlake tables: 'loaded'; it joins with the "
                    "first change of the table it merges): the chunks wait until it has", table.qualified)


def _resume_or_plan(conn: Connection, config: PipelineConfig, lake: Lake, table: SourceTable,
                    keys: tuple[ResyncKey, ...], where: str | None, ranges: Sequence[ChunkRange] | None,
                    restart: bool, now: datetime, reason: str) -> Resync:
    active = _active(lake, table)
    if active is not None and not restart and _same_selection(active, where, reason, ranges):
        log.info("%s: resuming resync %s: %d of %d chunk(s) delivered", table.qualified, active.resync_id,
                 len(active.delivered), len(active.chunks))
        return active
    if active is not None:
        if not restart and ranges is None:
            raise ResyncError(
                f"{table.qualified}: resync {active.resync_id} (where {active.where!r}) is not delivered yet "
                f"({len(active.delivered)} of {len(active.chunks)} chunks): run it again with the same --where "
                "to resume it, or add --restart to abandon it (its delivered chunks are still applied)")
        log.info("%s: abandoning resync %s (%d of %d chunk(s) delivered)", table.qualified, active.resync_id,
                 len(active.delivered), len(active.chunks))
        store.write_manifest(lake, replace(active, abandoned=True))
    resync = plan_resync(conn, config, table, keys, where, ranges, now, reason)
    store.write_manifest(lake, resync)
    log.info("%s: resync %s: %d chunk(s)%s", table.qualified, resync.resync_id, len(resync.chunks),
             f" ({resync.note})" if resync.note else "")
    return resync


def wait_applied(lake: Lake, resync: Resync, seconds: float, clock: Callable[[], float] = time.monotonic) -> bool:
    """Wait up to ``seconds`` for the merge to apply every chunk; True when it has."""
    deadline = clock() + seconds
    while True:
        if store.read_applied(lake, resync).covers(resync):
            return True
        if clock() >= deadline:
            return False
        time.sleep(WAIT_POLL_SECONDS)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="resync", description="Re-synchronise one table online, exactly once.")
    parser.add_argument("--config", required=True, help="pipeline YAML file")
    parser.add_argument("--table", required=True, help="source table as <schema>.<table>")
    parser.add_argument("--where", default=None,
                        help="source predicate: re-read only the chunks holding a matching row (each whole)")
    parser.add_argument("--restart", action="store_true", help="abandon the table's unfinished resync")
    parser.add_argument("--wait", type=float, default=0.0,
                        help="seconds to wait for the merge to apply every chunk")
    parser.add_argument("--verbose", action="store_true", help="debug logging (secrets are masked)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``binlake resync``; returns the exit status (module docstring)."""
    args = parse_args(argv)
    configure_logging(args.verbose)
    config = load_pipeline(args.config)
    if config is None:
        return CONFIG_ERROR_EXIT
    from binlake.spark import build_session

    spark = build_session(config, "resync")
    try:
        report = run_resync(config, spark, args.table, args.where, restart=args.restart)
    except SourceError as exc:
        log.error("source: %s", exc)
        return 2
    except ResyncError as exc:
        log.error("%s", exc)
        return 1
    finally:
        spark.stop()
    print(report.text())
    if args.wait > 0:
        lake = Lake.from_config(config)
        resync = next(r for r in store.table_resyncs(lake, report.schema, report.table)
                      if r.resync_id == report.resync_id)
        if not wait_applied(lake, resync, args.wait):
            print(f"the merge has not applied every chunk of resync {report.resync_id} after {args.wait:.0f} s "
                  "(is the merge running, and the capture?)")
            return 3
        print(f"resync {report.resync_id}: every chunk applied by the merge")
    return 0

