"""Data validation: does each lake table hold what its source table holds?

Like DMS data validation, but while replication runs. For each selected table:

1. The source is read in the full load's primary-key chunks, each in its own consistent snapshot
   at binlog position ``P`` (the chunk's lsn), through the same type mapping as the full load.
2. Every row gets a checksum (``xxhash64`` of all its columns, in lake types) on both sides, and
   source and lake rows are joined on the primary key in one Spark job: rows whose checksums agree
   are done; the chunks holding the others are reported as differing.
3. Every differing row is classified:

   * **in flight** — the lake row changed after the source read it (its ``_binlake_lsn > P``), or
     the lake has not yet applied everything up to ``P`` (see :mod:`binlake.progress`): the two
     sides are at different positions, so the difference says nothing yet;
   * **mismatch / missing / extra** — the lake has applied everything up to ``P`` and the row is
     still different, absent, or present but not in the source: a real difference.

``--wait`` re-validates a table while it has rows in flight, up to the given seconds. The result
is a readable report and an exit status: 0 when every table matches, 1 when any table differs,
3 when no table differs but some rows were still in flight at the end.

Tables without a primary key are compared as multisets (count and checksum of the whole table).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import reduce
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from binlake.chunks import render_predicate
from binlake.config import PipelineConfig
from binlake.entrypoint import CONFIG_ERROR_EXIT, configure_logging, load_pipeline
from binlake.lake import Lake, table_key
from binlake.progress import read_progress
from binlake.rules import TableMapping
from binlake.snapshot.discovery import SourceTable, discover_tables
from binlake.snapshot.planning import plan_chunks
from binlake.snapshot.reading import HIT, LSN_COLUMN, SNAP_LSN, chunk_query, jdbc_source, lake_expressions
from binlake.source import SourceError, connect

log = logging.getLogger("binlake.validate")

CHUNK = "_binlake_chunk"
HASH = "_binlake_hash"
SOURCE_LSN = "_binlake_source_lsn"
SAMPLE_ROWS = 5
NOTHING_IN_FLIGHT = 2**62


@dataclass
class TableValidation:
    """The outcome for one table."""

    table: str
    source_rows: int = 0
    lake_rows: int = 0
    chunks: int = 0
    differing_chunks: list[int] = field(default_factory=list)
    mismatched: int = 0
    missing: int = 0
    extra: int = 0
    in_flight: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    @property
    def status(self) -> str:
        if self.error:
            return "ERROR"
        if self.mismatched or self.missing or self.extra:
            return "DIFFERENT"
        return "IN FLIGHT" if self.in_flight else "OK"


def _hash(frame: DataFrame, columns: Sequence[str]) -> DataFrame:
    return frame.withColumn(HASH, F.xxhash64(*[F.col(f"`{c}`") for c in columns]))


def source_frame(
    spark: SparkSession, config: PipelineConfig, table: SourceTable, predicates: Sequence[str]
) -> DataFrame:
    """The source rows in lake types, one Spark partition per chunk, with chunk id and snapshot lsn."""
    jdbc = jdbc_source(config)
    frames = []
    for index, predicate in enumerate(predicates):
        raw = spark.read.jdbc(jdbc.url, chunk_query(table, predicate), properties=jdbc.properties)
        frames.append(
            raw.select(
                F.lit(index).alias(CHUNK),
                F.col(SNAP_LSN).cast("bigint").alias(SOURCE_LSN),
                F.col(HIT),
                *[F.expr(expr).alias(name) for expr, name in lake_expressions(table) if name != LSN_COLUMN
                  and not name.startswith("_binlake_")],
            )
        )
    union = reduce(DataFrame.unionByName, frames)
    return union


def _classify(joined: DataFrame, applied: int | None) -> DataFrame:
    applied_lit = F.lit(applied if applied is not None else -1).cast("bigint")
    lake_newer = F.coalesce(F.col("l_lsn") > F.col("s_lsn"), F.lit(False))
    lake_behind = applied_lit < F.coalesce(F.col("s_lsn"), F.col("max_s_lsn"))
    kind = (
        F.when(F.col("s_hash").isNotNull() & F.col("l_hash").isNotNull() & (F.col("s_hash") == F.col("l_hash")),
               F.lit("ok"))
        .when(lake_newer | lake_behind, F.lit("in_flight"))
        .when(F.col("l_hash").isNull(), F.lit("missing"))
        .when(F.col("s_hash").isNull(), F.lit("extra"))
        .otherwise(F.lit("mismatched"))
    )
    return joined.withColumn("kind", kind)


def validate_table(
    spark: SparkSession, config: PipelineConfig, lake: Lake, conn: Any, table: SourceTable
) -> TableValidation:
    """Validate one table (see the module docstring)."""
    result = TableValidation(f"{table.target.schema}.{table.target.table}")
    path = lake.uri(table_key(table.target.schema, table.target.table))
    columns = [c.target_name for c in table.columns]
    plan = plan_chunks(conn, table, config.full_load.chunk_rows)
    predicates = [render_predicate(r, table.key_columns) for r in plan.ranges]
    result.chunks = len(predicates)
    source = _hash(source_frame(spark, config, table, predicates).where(F.col(HIT).isNotNull()), columns).cache()
    lake_rows = _hash(spark.read.format("delta").load(path), columns)
    progress = read_progress(lake, baseline=_snapshot_lsn(lake, table))
    # Without a capture nothing changes the lake any more: every difference is real.
    applied = progress.applied_lsn if progress.captured_lsn is not None else NOTHING_IN_FLIGHT
    try:
        result.source_rows = source.count()
        result.lake_rows = lake_rows.count()
        if not table.key_columns:
            return _compare_multisets(result, source, lake_rows)
        _compare_by_key(result, source, lake_rows, table, applied)
    finally:
        source.unpersist()
    return result


def _snapshot_lsn(lake: Lake, table: SourceTable) -> int | None:
    from binlake.snapshot.loader import read_state

    state = read_state(lake, table)
    return state.max_position.lsn if state and state.max_position else None


def _compare_multisets(result: TableValidation, source: DataFrame, lake_rows: DataFrame) -> TableValidation:
    s = source.agg(F.count("*"), F.sum(F.col(HASH).cast("decimal(38,0)"))).first()
    t = lake_rows.agg(F.count("*"), F.sum(F.col(HASH).cast("decimal(38,0)"))).first()
    if tuple(s) != tuple(t):  # type: ignore[arg-type]
        result.differing_chunks = [0]
        result.missing = source.select(HASH).exceptAll(lake_rows.select(HASH)).count()
        result.extra = lake_rows.select(HASH).exceptAll(source.select(HASH)).count()
    return result


def _compare_by_key(
    result: TableValidation, source: DataFrame, lake_rows: DataFrame, table: SourceTable, applied: int | None
) -> None:
    keys = [c.target_name for c in table.columns if c.name in table.key_columns]
    s = source.select(*[F.col(f"`{k}`") for k in keys], F.col(CHUNK), F.col(SOURCE_LSN).alias("s_lsn"),
                      F.col(HASH).alias("s_hash"))
    t = lake_rows.select(*[F.col(f"`{k}`").alias(f"l_{i}") for i, k in enumerate(keys)],
                         F.col(LSN_COLUMN).alias("l_lsn"), F.col(HASH).alias("l_hash"))
    condition = reduce(lambda a, b: a & b, [F.col(f"`{k}`").eqNullSafe(F.col(f"l_{i}")) for i, k in enumerate(keys)])
    max_source_lsn = source.agg(F.max(SOURCE_LSN)).first()[0]  # type: ignore[index]
    joined = s.join(t, condition, "full_outer").withColumn("max_s_lsn", F.lit(max_source_lsn).cast("bigint"))
    differences = _classify(joined, applied).where(F.col("kind") != "ok").cache()
    try:
        counts = {row["kind"]: row["count"] for row in differences.groupBy("kind").count().collect()}
        result.mismatched = counts.get("mismatched", 0)
        result.missing = counts.get("missing", 0)
        result.extra = counts.get("extra", 0)
        result.in_flight = counts.get("in_flight", 0)
        result.differing_chunks = sorted(
            int(r[0]) for r in differences.where(F.col(CHUNK).isNotNull()).select(CHUNK).distinct().collect()
        )
        real = differences.where(F.col("kind") != "in_flight").limit(SAMPLE_ROWS).collect()
        result.samples = [
            {"kind": r["kind"], "source_lsn": r["s_lsn"], "lake_lsn": r["l_lsn"],
             "key": {k: _plain(r[k] if r[k] is not None else r[f"l_{i}"]) for i, k in enumerate(keys)}}
            for r in real
        ]
    finally:
        differences.unpersist()


def _plain(value: Any) -> Any:
    return value if isinstance(value, int | float | str | bool) or value is None else str(value)


def validate(
    spark: SparkSession, config: PipelineConfig, wait_seconds: float = 0.0, clock: Any = time.monotonic
) -> list[TableValidation]:
    """Validate every selected table; re-checks tables with rows in flight for up to ``wait_seconds``."""
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
            result = _validate_with_retry(spark, config, lake, conn, table, deadline, clock)
            log.info("%s: %s", result.table, result.status)
            results.append(result)
        return results
    finally:
        conn.close()


def _validate_with_retry(spark: SparkSession, config: PipelineConfig, lake: Lake, conn: Any, table: SourceTable,
                         deadline: float, clock: Any) -> TableValidation:
    while True:
        try:
            result = validate_table(spark, config, lake, conn, table)
        except Exception as exc:  # a table that cannot be validated must not hide the others
            if "DELTA_MISSING_DELTA_TABLE" in str(exc) or "is not a Delta table" in str(exc):
                return TableValidation(f"{table.target.schema}.{table.target.table}",
                                       error="no lake table yet: run the full load")
            raise
        if result.status != "IN FLIGHT" or clock() >= deadline:
            return result
        log.info("%s: %d row(s) in flight; checking again", result.table, result.in_flight)
        time.sleep(2.0)


def format_report(results: Sequence[TableValidation]) -> str:
    """A fixed-width report a person can read."""
    header = f"{'table':<32} {'status':<10} {'source':>10} {'lake':>10} {'chunks':>7} {'differ':>7} " \
             f"{'mismatch':>9} {'missing':>8} {'extra':>6} {'in flight':>9}"
    lines = ["binlake validate", header, "-" * len(header)]
    for r in results:
        lines.append(f"{r.table:<32} {r.status:<10} {r.source_rows:>10} {r.lake_rows:>10} {r.chunks:>7} "
                     f"{len(r.differing_chunks):>7} {r.mismatched:>9} {r.missing:>8} {r.extra:>6} {r.in_flight:>9}")
        if r.error:
            lines.append(f"    error: {r.error}")
        for sample in r.samples:
            lines.append(f"    {sample['kind']}: key {sample['key']} (source lsn {sample['source_lsn']}, "
                         f"lake lsn {sample['lake_lsn']})")
    return "\n".join(lines)


def exit_status(results: Sequence[TableValidation]) -> int:
    statuses = {r.status for r in results}
    if statuses & {"DIFFERENT", "ERROR"}:
        return 1
    return 3 if "IN FLIGHT" in statuses else 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="validate", description="Compare source tables with their lake tables.")
    parser.add_argument("--config", required=True, help="pipeline YAML file")
    parser.add_argument("--wait", type=float, default=0.0, help="seconds to re-check tables with rows in flight")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser.parse_args(argv)


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
        results = validate(spark, config, wait_seconds=args.wait)
    except SourceError as exc:
        log.error("source: %s", exc)
        return 2
    finally:
        spark.stop()
    if args.json:
        print(json.dumps([asdict(r) | {"status": r.status} for r in results], indent=1, default=str))
    else:
        print(format_report(results))
    return exit_status(results)
