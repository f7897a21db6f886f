"""``binlake validate``: for each selected table, the steps of :mod:`binlake.validation`."""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from binlake.capture.history import source_epoch
from binlake.chunks import WHOLE, render_predicate
from binlake.config import PipelineConfig
from binlake.entrypoint import CONFIG_ERROR_EXIT, configure_logging, load_pipeline
from binlake.lake import Lake, table_key
from binlake.names import LakeNameError, TargetCollisionError
from binlake.progress import read_progress
from binlake.retry import LakeError
from binlake.rules import TableMapping
from binlake.snapshot.discovery import SourceTable, discover_tables
from binlake.snapshot.planning import ChunkPlan, plan_chunks
from binlake.snapshot.reading import SNAP_LSN, jdbc_source, with_snapshot_position
from binlake.snapshot.watermark import snapshot_jdbc
from binlake.source import Connection, SourceError, connect
from binlake.typemap import CHAR_TYPES
from binlake.validation.canonical import (
    UNASSIGNED,
    LakeKey,
    NotExact,
    checksum_problem,
    lake_chunk_index_sql,
    spark_column,
)
from binlake.validation.checksum import EMPTY, ChunkSum, lake_chunk_sums, source_chunk_sums
from binlake.validation.pace import Pacer, parse_duration
from binlake.validation.report import CHECKSUM, METHODS, ROWS, TableValidation, exit_status, format_report
from binlake.validation.rows import SOURCE_LSN, compare_rows, empty_source_frame, source_frame
from binlake.verification import Verification, write_run

log = logging.getLogger("binlake.validate")

NOTHING_IN_FLIGHT = 2**62
RETRY_SECONDS = 2.0


def validate_table(
    spark: SparkSession, config: PipelineConfig, lake: Lake, conn: Connection, table: SourceTable,
    method: str = CHECKSUM, pacer: Pacer | None = None, settle_seconds: float = 0.0,
) -> TableValidation:
    """Validate one table (see :mod:`binlake.validation`); ``method="rows"`` skips the checksums.

    The source is read in steps (``validation.step_chunks`` chunks of checksums, then one step of
    the rows of the chunks that differ); after each step ``pacer`` may pause (the source rate limit)
    or raise :class:`~binlake.validation.pace.Stopped`. ``settle_seconds``: how long the row
    comparison may wait for the merge to reach the source rows' snapshots (:func:`_settled`).
    """
    pacer = pacer or Pacer()
    result = TableValidation(f"{table.target.schema}.{table.target.table}", source=table.qualified)
    plan = plan_chunks(conn, table, config.full_load.chunk_rows)
    predicates = [render_predicate(r, table.key_columns) for r in plan.ranges]
    result.chunks = len(predicates)
    result.as_of_lsn = position_before(spark, config)
    lake_rows = spark.read.format("delta").load(lake.uri(table_key(table.target.schema, table.target.table)))
    progress = read_progress(lake, baseline=_snapshot_lsn(lake, table))
    # Without a capture nothing changes the lake any more: every difference is real.
    applied = progress.applied_lsn if progress.captured_lsn is not None else NOTHING_IN_FLIGHT
    applied = -1 if applied is None else applied

    chunk_sql, reason = checksum_plan(conn, table, plan) if method == CHECKSUM else (None, "rows requested")
    if chunk_sql is None:
        log.info("%s: comparing every row (%s)", result.table, reason)
        result.method, result.note = ROWS, None if method == ROWS else f"compared by rows: {reason}"
        source = source_frame(spark, config, table, list(enumerate(predicates))).cache()
        try:
            result.source_rows = source.count()
            applied, fresh = _settled(spark, lake, table, source, applied, settle_seconds, pacer)
            lake_rows = fresh if fresh is not None else lake_rows
            result.lake_rows = lake_rows.count()
            compare_rows(result, source, lake_rows, table, applied)
        finally:
            source.unpersist()
        pacer.step(len(predicates))
        result.repair_ranges = [r.to_dict() for r in plan.ranges]  # no per-chunk sums: every chunk
        return result

    result.method = CHECKSUM
    source_sums, lake_sums = _checksums_in_steps(spark, config, table, lake_rows, predicates, chunk_sql, pacer)
    result.source_rows = sum(s.rows for s in source_sums.values())
    result.lake_rows = sum(s.rows for s in lake_sums.values())
    differing = [i for i in range(len(predicates)) if source_sums.get(i, EMPTY) != lake_sums.get(i, EMPTY)]
    unplaced = lake_sums.get(UNASSIGNED, EMPTY).rows
    result.checksum_chunks = len(predicates) - len(differing)
    log.info("%s: %d of %d chunk(s) equal by checksum%s", result.table, result.checksum_chunks, len(predicates),
             f", {unplaced} lake row(s) with a NULL key part" if unplaced else "")
    if not differing and not unplaced:
        return result
    # lake rows with a NULL key part lie in no bounded range: only a whole-table resync reaches them
    result.repair_ranges = [r.to_dict() for r in ([WHOLE] if unplaced else [plan.ranges[i] for i in differing])]
    # Phase 2: the rows of the chunks whose checksums differ (lake rows with no chunk always).
    chunks = [(i, predicates[i]) for i in differing]
    source = (source_frame(spark, config, table, chunks) if chunks else empty_source_frame(lake_rows, table)).cache()
    try:
        applied, fresh = _settled(spark, lake, table, source, applied, settle_seconds, pacer)
        lake_part = (fresh if fresh is not None else lake_rows).where(F.expr(chunk_sql).isin([*differing, UNASSIGNED]))
        compare_rows(result, source, lake_part, table, applied)
    finally:
        source.unpersist()
    pacer.step(len(chunks))
    return result


def _settled(spark: SparkSession, lake: Lake, table: SourceTable, source: DataFrame, applied: int,
             settle_seconds: float, pacer: Pacer) -> tuple[int, DataFrame | None]:
    """Let the lake catch up with the source rows about to be compared (``source``, cached: read
    once). When the merge has not applied up to their highest snapshot lsn ``S``, every difference
    would count as in flight; so wait (at most ``settle_seconds``, a stop request ends the wait) until
    the applied lsn reaches ``S``, then read the lake table afresh (after the applied lsn, so the
    snapshot holds every change up to it). A row that then still differs with its lake lsn at or
    below its source snapshot is a real difference; one changed later stays in flight. Returns the
    applied lsn and the fresh lake table (``None``: nothing waited for, the first read stands).
    Under steady writes anywhere on the source the lake is always a little behind the latest
    snapshot, so without this wait a corrupted row would never be told from a row in flight."""
    if settle_seconds <= 0 or applied >= NOTHING_IN_FLIGHT:
        return applied, None
    row = source.agg(F.max(SOURCE_LSN)).first()
    target = None if row is None else row[0]
    if target is None or applied >= target:
        return applied, None
    deadline, baseline = time.monotonic() + settle_seconds, _snapshot_lsn(lake, table)
    while applied < target and time.monotonic() < deadline:
        pacer.stop.wait(RETRY_SECONDS)
        pacer.check()
        progress = read_progress(lake, baseline=baseline)
        applied = -1 if progress.applied_lsn is None else progress.applied_lsn
    log.info("%s: lake applied up to lsn %d for source rows read at lsn %d%s", table.qualified, applied, target,
             "" if applied >= target else f" (still behind after {settle_seconds:.0f} s)")
    return applied, spark.read.format("delta").load(lake.uri(table_key(table.target.schema, table.target.table)))


def _checksums_in_steps(
    spark: SparkSession, config: PipelineConfig, table: SourceTable, lake_rows: DataFrame, predicates: Sequence[str],
    chunk_sql: str, pacer: Pacer,
) -> tuple[dict[int, ChunkSum], dict[int, ChunkSum]]:
    """Source and lake checksums of every chunk (and the lake's ``UNASSIGNED`` rows), asked in
    steps of ``validation.step_chunks`` chunks: each step reads its chunks at the source, then the
    lake's sums of the same chunks right after (the closer in time, the fewer rows in flight), then
    lets ``pacer`` pause or stop."""
    step = config.validation.step_chunks
    source_sums: dict[int, ChunkSum] = {}
    lake_sums: dict[int, ChunkSum] = {}
    for first in range(0, len(predicates), step):
        indexes = range(first, min(first + step, len(predicates)))
        sums, _ = source_chunk_sums(spark, config, table, [predicates[i] for i in indexes])
        source_sums.update({indexes[i]: chunk_sum for i, chunk_sum in sums.items()})
        lake = lake_chunk_sums(lake_rows, table, chunk_sql)
        lake_sums.update({i: lake[i] for i in indexes if i in lake})
        lake_sums[UNASSIGNED] = lake.get(UNASSIGNED, EMPTY)  # rows in no chunk: the latest step's count
        if len(predicates) > step:
            log.info("%s: checksums of chunks %d-%d of %d", table.qualified, first + 1, indexes[-1] + 1,
                     len(predicates))
        pacer.step(len(indexes))
    return source_sums, lake_sums


def position_before(spark: SparkSession, config: PipelineConfig) -> int | None:
    """A source position (lsn, labelled like the chunks') taken by the full load's snapshot method
    before any chunk of a table is read: every chunk snapshot validation takes afterwards is at or
    above it. It is the ``as_of_lsn`` of the table's verification (:mod:`binlake.verification`)."""
    epoch = source_epoch(config)
    jdbc = snapshot_jdbc(config, jdbc_source(config, epoch=epoch), epoch)
    query = with_snapshot_position("SELECT 1 AS _binlake_one", "_binlake_position")
    row = spark.read.jdbc(jdbc.url, query, properties=jdbc.properties).select(
        F.col(SNAP_LSN).cast("bigint")).first()
    return None if row is None or row[0] is None else int(row[0])


def checksum_plan(conn: Connection, table: SourceTable, plan: ChunkPlan) -> tuple[str | None, str]:
    """The lake's chunk-index expression when the table can be compared by checksums, else
    ``(None, why not)``."""
    for column in table.columns:
        problem = checksum_problem(column.type)
        if problem:
            return None, f"column {column.name}: {problem}"
    by_name = {c.name: c for c in table.columns}
    if len(plan.ranges) > 1 and any(k not in by_name for k in table.key_columns):
        return None, "a primary-key column is not in the lake table"
    collations = _collations(conn, table) if len(plan.ranges) > 1 else {}
    keys = [LakeKey(by_name[k].type, spark_column(by_name[k].target_name), collations.get(k))
            for k in table.key_columns if k in by_name]
    try:
        return lake_chunk_index_sql(plan.ranges, keys), ""
    except NotExact as exc:
        return None, f"key {', '.join(table.key_columns)}: {exc}"


def _collations(conn: Connection, table: SourceTable) -> dict[str, str | None]:
    text_keys = [k for k, t in zip(table.key_columns, table.key_types, strict=True) if t.base in CHAR_TYPES]
    if not text_keys:
        return {}
    with conn.cursor() as cur:
        cur.execute("SELECT COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
                    "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s", (table.schema, table.name))
        return {str(name): None if collation is None else str(collation) for name, collation in cur.fetchall()}


def _snapshot_lsn(lake: Lake, table: SourceTable) -> int | None:
    from binlake.snapshot.loader import read_state

    state = read_state(lake, table)
    return state.max_position.lsn if state and state.max_position else None


def validate(
    spark: SparkSession, config: PipelineConfig, wait_seconds: float = 0.0, clock: Any = time.monotonic,
    method: str = CHECKSUM, *, repair: bool = False, pacer: Pacer | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[TableValidation]:
    """Validate every selected table; re-checks tables with rows in flight for up to ``wait_seconds``.

    ``method`` is ``"checksum"`` (chunk checksums first, rows where they differ) or ``"rows"``
    (every row, the slow reference). With ``repair``, a table found ``DIFFERENT`` gets one resync of
    exactly its differing chunks (:func:`binlake.resync.repair.repair_table`) right after its
    validation. Every table validated in full is then recorded (:mod:`binlake.verification`:
    ``verified_as_of`` when it was equal). ``pacer`` paces the source reads and raises
    :class:`~binlake.validation.pace.Stopped` between steps on a stop request: the tables done
    before it are recorded, the one being validated is not.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    lake = Lake.from_config(config)
    mapping = TableMapping.parse(config.table_mappings)
    conn = connect(config.source)
    try:
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
        tables = discover_tables(conn, mapping)
        results = []
        deadline = clock() + wait_seconds
        for table in tables:
            log.info("validating %s.%s", table.schema, table.name)
            started = now()
            result = _validate_with_retry(spark, config, lake, conn, table, deadline, clock, method, pacer)
            log.info("%s: %s (%s)", result.table, result.status, result.method)
            run = Verification.of(result, started, now())
            if repair:
                from binlake.resync.repair import repair_table

                report, refused = repair_table(spark, config, result)
                run = run.repaired(report.resync_id if report else None, refused)
            _record(lake, table, run)
            results.append(result)
        return results
    finally:
        conn.close()


def _record(lake: Lake, table: SourceTable, run: Verification) -> None:
    try:
        write_run(lake, table.target.schema, table.target.table, run)
    except LakeError as exc:  # the comparison itself stands; only binlake status will not show it
        log.error("%s: the verification record cannot be written: %s", run.table, exc)


def _validate_with_retry(spark: SparkSession, config: PipelineConfig, lake: Lake, conn: Connection,
                         table: SourceTable, deadline: float, clock: Any, method: str,
                         pacer: Pacer | None) -> TableValidation:
    while True:
        try:
            result = validate_table(spark, config, lake, conn, table, method, pacer,
                                    settle_seconds=max(0.0, deadline - clock()))
        except Exception as exc:  # a table that cannot be validated must not hide the others
            if "DELTA_MISSING_DELTA_TABLE" in str(exc) or "is not a Delta table" in str(exc):
                return TableValidation(f"{table.target.schema}.{table.target.table}", source=table.qualified,
                                       error="no lake table yet: run the full load")
            raise
        if result.status != "IN FLIGHT" or clock() >= deadline:
            return result
        log.info("%s: %d row(s) in flight; checking again", result.table, result.in_flight)
        time.sleep(RETRY_SECONDS)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="validate", description="Compare source tables with their lake tables.")
    parser.add_argument("--config", required=True, help="pipeline YAML file")
    parser.add_argument("--wait", type=float, default=0.0, help="seconds to re-check tables with rows in flight")
    parser.add_argument("--method", choices=METHODS, default=CHECKSUM,
                        help="checksum: chunk checksums first, rows only where they differ (default); "
                             "rows: compare every row")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--repair", action="store_true",
                        help="resync online exactly the chunks that differ (binlake resync; the merge applies them)")
    parser.add_argument("--every", type=_duration, default=None, metavar="DURATION",
                        help="run as the background verifier: a round over every table, the next one DURATION "
                             "after it started (e.g. 30m, 1h); SIGTERM/SIGINT stop it between steps")
    return parser.parse_args(argv)


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``jobs/validate.py`` and ``binlake validate``."""
    args = parse_args(argv)
    configure_logging()
    config = load_pipeline(args.config)
    if config is None:
        return CONFIG_ERROR_EXIT
    from binlake.spark import build_session

    spark = build_session(config, "validate")
    try:
        if args.every is not None:
            from binlake.validation.every import run_every, stop_on_signals

            run_every(spark, config, args.every, stop_on_signals(), repair=args.repair, wait_seconds=args.wait,
                      method=args.method)
            return 0
        pacer = Pacer(config.validation.max_chunks_per_second)
        results = validate(spark, config, wait_seconds=args.wait, method=args.method, repair=args.repair, pacer=pacer)
    except SourceError as exc:
        log.error("source: %s", exc)
        return 2
    except (TargetCollisionError, LakeNameError) as exc:  # the table mapping cannot be replicated as it is
        log.error("%s", exc)
        return CONFIG_ERROR_EXIT
    finally:
        spark.stop()
    if args.json:
        print(json.dumps([asdict(r) | {"status": r.status} for r in results], indent=1, default=str))
    else:
        print(format_report(results))
    return exit_status(results)
