"""The merge's side of an online resync: apply delivered chunks to their lake table, exactly once.

The merge is the only writer of a lake table, so the resync job only delivers chunks
(:mod:`binlake.resync.store`) and the merge applies them — after each micro-batch and, while the
stream is idle, on a timer (:class:`ResyncApplier`, sharing one lock with the batch function so
that one thread at a time writes and the session's transaction settings are never interleaved).

A chunk read at snapshot lsn ``P`` over key range ``R`` is due once every change of the table up to
``P`` is in the lake (``P <= applied lsn``, :func:`binlake.progress.read_progress`) and the table is
joined. The running merge applies **one** due chunk per call (after a batch, or on the idle timer),
so micro-batches go on between the chunks of a large resync and the tables' freshness is held up by
at most one chunk MERGE; once the merge stops, every due chunk is applied. A chunk is applied by
:func:`apply_chunk`, in this order:

1. already committed (its transaction app id is in the table's log: a crash after the commit)
   → only recorded;
2. ``P`` at or below the table's TRUNCATE/DROP floor → skipped (the chunk predates a wipe);
3. tombstones at ``P`` for the lake rows in ``R`` with ``_binlake_lsn <= P`` that the chunk lacks
   (deleted at the source at or before ``P``; one blind append, harmless when repeated);
4. one MERGE with transaction ``(binlake-resync-<id>-<n>, 0)`` on the null-safe key and ``t`` in
   ``R``, whose source is only what differs: the chunk rows (those with a tombstone newer than
   ``P`` removed first) whose key no lake row of ``R`` holds either with ``t._binlake_lsn > P``
   (the stream's newer value) or with exactly the same values (:func:`same_values_sql`), and the
   keys of the lake rows in ``R`` with ``t._binlake_lsn <= P`` that no chunk row matches.
   Matched and ``t._binlake_lsn <= P`` → UPDATE every column; not matched → INSERT; a key of the
   second kind → DELETE (they come into the MERGE as source rows of their own key, marked, so that
   the MERGE has no NOT MATCHED BY SOURCE clause and Delta reads only the files whose key
   statistics overlap ``R``). Rows the stream changed after ``P`` are never touched. A lake row
   that already equals the chunk is not written at all: it keeps its ``_binlake_lsn`` (at most
   ``P``, and every change of it up to ``P`` is merged, so the stream's newer-lsn-wins rule still
   holds for it), the MERGE rewrites only the files holding rows that differ, and the table's
   change data feed shows only real changes.

See docs/resync.md for why this converges whatever the order of chunks and stream batches.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from binlake.lake import Lake, table_key, tombstones_key
from binlake.merge import tombstones
from binlake.merge.birth import is_born, join_from_chunk
from binlake.merge.handoff import joined_load, read_handoff
from binlake.merge.heartbeat import write_heartbeat
from binlake.merge.layout import COMMIT_TS_COLUMN, LSN_COLUMN, Evolution, is_metadata_column, normalize_spark_type
from binlake.merge.sql import col, quote
from binlake.merge.summary import TableName
from binlake.merge.target import TargetTable, apply_evolution, is_delta_table
from binlake.merge.txn import committed_version, idempotent
from binlake.merge.upsert import MergeCounts
from binlake.progress import read_progress
from binlake.resync import store
from binlake.resync.manifest import AppliedChunk, Resync, ResyncChunk, chunk_app_id, due_chunks
from binlake.resync.ranges import lake_range_sql, lake_skipping_sql
from binlake.tablefeatures import DEFAULT as DEFAULT_FEATURES
from binlake.tablefeatures import TableFeatures

if TYPE_CHECKING:
    from binlake.merge.source import BatchRecords

log = logging.getLogger(__name__)

Clock = Callable[[], datetime.datetime]
_TOMB_LSN = "__bl_tomb_lsn"
_GONE = "__bl_gone"  # a source row of a chunk MERGE that stands for a lake row to delete


_TEXT_COMPARED = frozenset({"float", "double"})  # -0.0 = 0.0 in Spark: compared by their text, which is exact


def same_values_sql(columns: dict[str, str], left: str = "t", right: str = "s") -> str:
    """Spark SQL: the ``left`` and ``right`` rows hold exactly the same value in every one of
    ``columns`` (``{name: spark type}``; pure). Null-safe; floating-point values are compared by
    their text, so ``-0.0`` and ``0.0`` differ (``NaN`` equals ``NaN``), every other type by ``<=>``
    (strings and binaries byte for byte, decimals and timestamps exactly)."""
    if not columns:
        return "TRUE"
    terms = []
    for name, kind in columns.items():
        a, b = f"{left}.{quote(name)}", f"{right}.{quote(name)}"
        if kind in _TEXT_COMPARED:
            a, b = f"CAST({a} AS STRING)", f"CAST({b} AS STRING)"
        terms.append(f"{a} <=> {b}")
    return " AND ".join(terms)


def chunk_condition(key: list[str], lsn: int) -> dict[str, str]:
    """The MERGE's conditions for a chunk read at lsn ``lsn`` (pure; ``in_range`` is added by the
    caller): ``on``, ``update`` (matched), ``delete`` (not matched by source)."""
    not_newer = f"coalesce(t.{LSN_COLUMN}, -1) <= {int(lsn)}"
    return {"on": tombstones.key_condition(key), "update": not_newer, "delete": not_newer}


@dataclass(frozen=True)
class ChunkTarget:
    """What applying one chunk needs to know about its lake table."""

    path: str
    tombstones: str
    key: list[str]
    columns: dict[str, str]  # lake source columns → Spark type
    floor: int
    range_sql: str  # Spark SQL: the lake row is in the chunk's range (columns qualified by ``t.``)
    prune_sql: str = "TRUE"  # implied by range_sql, on key statistics: what Delta skips files by


def apply_chunk(spark: SparkSession, resync: Resync, chunk: ResyncChunk, target: ChunkTarget, data: DataFrame,
                now: datetime.datetime) -> AppliedChunk:
    """Apply one delivered chunk (module docstring, steps 1–4); returns what it did."""
    assert chunk.lsn is not None
    applied_at = now.isoformat()
    app_id = chunk_app_id(resync.resync_id, chunk.index)
    if committed_version(spark, target.path, app_id) >= 0:
        return AppliedChunk(chunk.index, applied_at, skipped="committed before a restart")
    if chunk.lsn <= target.floor:
        return AppliedChunk(chunk.index, applied_at,
                            skipped=f"the table was truncated or dropped at lsn {target.floor}, after lsn {chunk.lsn}")
    key = target.key
    lake = spark.read.format("delta").load(target.path).alias("t")
    condition = chunk_condition(key, chunk.lsn)
    in_range = f"{target.prune_sql} AND ({target.range_sql}) AND {condition['delete']}"  # pruned by statistics
    rows = _aligned(data, target.columns).persist()
    try:
        gone = (lake.where(F.expr(in_range))
                .join(rows.alias("s"), F.expr(condition["on"]), "left_anti")
                .select(*[col(k) for k in key]))
        deleted_keys = gone.withColumn(LSN_COLUMN, F.lit(chunk.lsn).cast("bigint"))
        deleted_keys = deleted_keys.withColumn(COMMIT_TS_COLUMN, F.current_timestamp())
        if not deleted_keys.isEmpty():
            tombstones.ensure_table(spark, target.tombstones, [(k, target.columns[k]) for k in key])
            deleted_keys.write.format("delta").mode("append").save(target.tombstones)
        kept = _without_newer_tombstones(spark, rows, target, chunk.lsn)
        names = [c for c in target.columns if c in rows.columns]
        same = same_values_sql({c: target.columns[c] for c in names})
        # what the MERGE leaves alone is left out of its source, so that it rewrites no file for it: a
        # key the stream changed after P (never touched) or a lake row that already equals the chunk's
        settled = f"{condition['on']} AND (NOT ({condition['update']}) OR ({same}))"
        differing = kept.alias("s").join(lake.where(F.expr(f"{target.prune_sql} AND ({target.range_sql})")),
                                         F.expr(settled), "left_anti")
        # the lake rows of R the chunk deletes, as source rows marked _GONE: the MERGE then needs no
        # NOT MATCHED BY SOURCE clause, which would make Delta read every file of the table; with
        # R as a target-only conjunct of its condition, it reads only the files whose key
        # statistics overlap R (Delta's data skipping)
        deletes = (lake.where(F.expr(in_range)).join(kept.alias("s"), F.expr(condition["on"]), "left_anti")
                   .select(*[col(k) for k in key]).withColumn(_GONE, F.lit(True)))
        source = differing.withColumn(_GONE, F.lit(False)).unionByName(deletes, allowMissingColumns=True)
        values: dict[str, str | Column] = {quote(c): f"s.{quote(c)}" for c in names}
        values[LSN_COLUMN] = f"s.{LSN_COLUMN}"
        values[COMMIT_TS_COLUMN] = f"s.{COMMIT_TS_COLUMN}"
        with idempotent(spark, app_id, 0):
            result = (DeltaTable.forPath(spark, target.path).alias("t")
                      .merge(source.alias("s"), f"{condition['on']} AND {target.prune_sql} AND ({target.range_sql})")
                      .whenMatchedDelete(condition=f"s.{_GONE} AND {condition['delete']}")
                      .whenMatchedUpdate(condition=f"NOT s.{_GONE} AND {condition['update']}", set=values)
                      .whenNotMatchedInsert(condition=f"NOT s.{_GONE}", values=values)
                      .execute())
        counts = MergeCounts.from_result(result)
    finally:
        rows.unpersist()
    return AppliedChunk(chunk.index, applied_at, counts.inserted, counts.updated, counts.deleted)


def chunk_evolution(lake_columns: dict[str, str], chunk_columns: dict[str, str]) -> Evolution:
    """The columns to add (the chunk's ``{name: spark type}`` the lake lacks) and drop (the lake's
    source columns the chunk lacks) so the lake table has the chunk's columns (pure; names compared
    case-insensitively, types of common columns left alone)."""
    lake = {name.lower() for name in lake_columns}
    chunk = {name.lower() for name in chunk_columns}
    return Evolution(drops=tuple(n for n in lake_columns if n.lower() not in chunk),
                     adds=tuple((n, t) for n, t in chunk_columns.items() if n.lower() not in lake))


def evolve_to_chunk(spark: SparkSession, table: TargetTable, chunk: ResyncChunk, data: DataFrame,
                    features: TableFeatures) -> bool:
    """Give the lake table the chunk's columns when the chunk was read after the table's last
    schema change (``chunk.lsn > schemaLsn``): every change of the table up to the chunk's lsn is
    merged (the chunk is due), so a column only the source has at that lsn is one no row has
    brought yet — a table another was renamed onto (an online schema change's swap), an ADD COLUMN
    without later rows — and one only the lake has is gone at the source. Idempotent (a diff)."""
    assert chunk.lsn is not None
    if chunk.lsn <= table.schema_lsn:
        return False
    columns = {f.name: normalize_spark_type(f.dataType.simpleString()) for f in data.schema.fields
               if not is_metadata_column(f.name)}
    evolution = chunk_evolution(table.source_columns, columns)
    if evolution.empty:
        return False
    log.info("%s: columns of resync chunk %d (lsn %d): %s", table.path, chunk.index, chunk.lsn, evolution)
    return apply_evolution(spark, table, evolution, features)


def _aligned(data: DataFrame, columns: dict[str, str]) -> DataFrame:
    """The chunk's rows with the lake table's column names and types; columns the lake no longer
    has are dropped (a later DDL dropped them), columns the chunk lacks are left out (kept as they
    are on update, NULL on insert — see docs/resync.md, "Schema changes")."""
    by_lower = {name.lower(): name for name in data.columns}
    selected = []
    for name, kind in columns.items():
        found = by_lower.get(name.lower())
        if found is not None:
            selected.append(F.col(quote(found)).cast(kind).alias(name))
    return data.select(*selected, F.col(LSN_COLUMN), F.col(COMMIT_TS_COLUMN))


def _without_newer_tombstones(spark: SparkSession, rows: DataFrame, target: ChunkTarget, lsn: int) -> DataFrame:
    """Chunk rows whose key the stream deleted after ``lsn`` are left out (the delete is newer)."""
    tombs = tombstones.read(spark, target.tombstones, target.key)
    if tombs is None:
        return rows
    newer = tombs.where(F.col(LSN_COLUMN) > F.lit(lsn)).select(
        *[col(k).alias(f"__bl_tk{i}") for i, k in enumerate(target.key)])
    condition = None
    for i, k in enumerate(target.key):
        term = rows[quote(k)].eqNullSafe(newer[f"__bl_tk{i}"])
        condition = term if condition is None else condition & term
    return rows.join(newer, condition, "left_anti")


class ResyncApplier:
    """Applies due resync chunks for the merge job; see the module docstring.

    ``wrap(processor)`` is the ``foreachBatch`` function: the batch, then the due chunks, under
    :attr:`lock`. :meth:`idle` does the same without a batch (the merge's timer, and once after an
    ``--available-now`` run). Both refresh the merge's heartbeat (:mod:`binlake.merge.heartbeat`).
    """

    def __init__(self, spark: SparkSession, lake: Lake, clock: Clock, scd2_tables: frozenset[str] = frozenset(),
                 after_apply: Callable[[Resync, AppliedChunk], None] | None = None,
                 features: TableFeatures = DEFAULT_FEATURES,
                 heartbeat: Callable[[bool], None] | None = None) -> None:
        self.spark = spark
        self.lake = lake
        self.clock = clock
        # writes the merge heartbeat (stopped or not): the run's claim (binlake.merge.singleton), or unsigned
        self.heartbeat = heartbeat or (lambda stopped: write_heartbeat(lake, clock(), stopped=stopped))
        self.scd2_tables = scd2_tables
        self.features = features  # lake.reader_compatibility: tables created and columns changed here
        self.after_apply = after_apply  # test hook
        self.lock = threading.Lock()
        self._finished: set[str] = set()

    def wrap(self, processor: Callable[[BatchRecords, int], object],
             after_chunks: Callable[[int], None] | None = None) -> Callable[[BatchRecords, int], None]:
        """``after_chunks``: told how many chunks a batch's call applied, when any (registration)."""
        def run(batch: BatchRecords, batch_id: int) -> None:
            with self.lock:
                processor(batch, batch_id)
                applied = self.apply_due()
            if applied and after_chunks is not None:
                after_chunks(applied)

        return run

    def idle(self, stopped: bool = False) -> int:
        """Apply the due chunks now (outside a batch); returns how many were applied."""
        with self.lock:
            return self.apply_due(stopped=stopped)

    def mark_stopped(self) -> None:
        """Best effort: the heartbeat says the merge stopped (also after a failure)."""
        with contextlib.suppress(Exception):
            self.heartbeat(True)

    def apply_due(self, stopped: bool = False) -> int:
        """Apply the first due chunk of the unfinished resyncs — all of them once the merge has
        ``stopped`` — and return how many were applied (caller holds :attr:`lock`)."""
        self.heartbeat(stopped)
        resyncs = [r for r in store.all_resyncs(self.lake) if r.resync_id not in self._finished]
        if not resyncs:
            return 0
        applied_lsn = read_progress(self.lake).applied_lsn
        count = 0
        for resync in resyncs:
            count += self._apply_resync(resync, applied_lsn, None if stopped else 1)
            if not stopped and count:
                break
        return count

    def _apply_resync(self, resync: Resync, applied_lsn: int | None, most: int | None = None) -> int:
        """Apply the resync's due chunks, at most ``most`` (``None``: all); returns how many."""
        applied = store.read_applied(self.lake, resync)
        if applied.covers(resync):
            self._finished.add(resync.resync_id)
            return 0
        due = due_chunks(resync, applied, applied_lsn)
        if not due:
            return 0
        name = TableName(resync.source_schema, resync.source_table, resync.schema, resync.table)
        handoff = read_handoff(self.lake, name)
        path = self.lake.uri(table_key(resync.schema, resync.table))
        if handoff is not None and is_born(handoff) and not is_delta_table(self.spark, path):
            first = due[0]
            assert first.data is not None
            join_from_chunk(self.spark, self.lake, name, handoff, path, self.spark.read.parquet(
                self.lake.uri(first.data)), self.clock(), self.features)
        if handoff is None or not handoff.complete or joined_load(self.lake, name) != handoff.load_id:
            log.info("%s: resync %s waits for the merge to join the table", name.qualified, resync.resync_id)
            return 0
        if not is_delta_table(self.spark, path):
            return 0
        due = due if most is None else due[:most]
        for chunk in due:
            assert chunk.data is not None
            data = self.spark.read.parquet(self.lake.uri(chunk.data))
            evolve_to_chunk(self.spark, TargetTable.load(self.spark, path), chunk, data, self.features)
            target = self._target(resync, chunk, path)
            done = apply_chunk(self.spark, resync, chunk, target, data, self.clock())
            applied = applied.with_chunk(done)
            store.write_applied(self.lake, resync, applied)
            log.info("%s: resync %s chunk %d %s (lsn %d) %s", name.qualified, resync.resync_id, chunk.index,
                     chunk.range, chunk.lsn,
                     f"skipped: {done.skipped}" if done.skipped else
                     f"applied: {done.inserted} inserted, {done.updated} updated, {done.deleted} deleted")
            store.remove_chunk_data(self.lake, chunk.data)
            if self.after_apply is not None:
                self.after_apply(resync, done)
        if applied.covers(resync):
            log.info("%s: resync %s complete: %d chunk(s) applied", name.qualified, resync.resync_id,
                     len(applied.chunks))
            self._finished.add(resync.resync_id)
        return len(due)

    def _target(self, resync: Resync, chunk: ResyncChunk, path: str) -> ChunkTarget:
        table = TargetTable.load(self.spark, path)
        key = [_lake_name(table, k) for k in resync.key_columns]
        in_range = lake_range_sql(chunk.range, resync.keys, "t")
        return ChunkTarget(path, self.lake.uri(tombstones_key(resync.schema, resync.table)), key,
                           dict(table.source_columns), table.truncate_lsn, in_range,
                           lake_skipping_sql(chunk.range, resync.keys, "t"))


def _lake_name(table: TargetTable, column: str) -> str:
    for name in table.columns:
        if name.lower() == column.lower():
            return name
    raise ValueError(f"{table.path}: key column {column!r} of the resync is not in the lake table")
