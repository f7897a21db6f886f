"""The ``foreachBatch`` function of the merge stream.

For micro-batch ``b`` (a DataFrame of change-log records):

1. summarize it per table (one small Spark job, :mod:`binlake.merge.summary`);
2. for each table (concurrently: up to ``merge.max_parallel_tables`` at a time, each in its own
   session, :mod:`binlake.merge.parallel`; per table its steps in order): leave it alone while its
   full load is not complete, or while the change log has a gap after its snapshot (an error in
   the log and in ``binlake status``, see :mod:`binlake.merge.handoff`); join it
   (catch up from its snapshot lsn, :mod:`binlake.merge.handoff`) the first time it is complete;
   otherwise apply its steps (:mod:`binlake.merge.apply`) — one MERGE per table per step, all
   with transaction versions derived from ``b``; a table an online schema change swap reads from
   is applied, whole, before the table it is swapped into (phases, :mod:`binlake.merge.swaps`);
3. once every table is done, append the batch's metrics (one commit) and rewrite ``status.json``
   (from the batch's own thread: one writer);
4. run maintenance when due.

If anything fails, ``status.json`` records the error and the exception stops the query; the
checkpoint has not recorded ``b`` as done, so a restart replays ``b``: every table plans the same
steps as in the first attempt (a table that joined in ``b`` joins again) and the steps' transactions
skip every commit that already happened (docs/merge.md, "Replays").
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from binlake.capture.history import Registry, load_registry
from binlake.catalog import CatalogEntry, TableGuard
from binlake.lake import table_key
from binlake.merge import deltars
from binlake.merge.apply import MergeContext, apply_table
from binlake.merge.birth import CREATED, create_born_table, is_born, record_birth
from binlake.merge.bounds import bounds_for_batch
from binlake.merge.cleanup import join_gap
from binlake.merge.handoff import (
    GAP,
    WAITING,
    catchup_keys,
    gap,
    joined_in_batch,
    joined_load,
    read_handoff,
    record_join,
)
from binlake.merge.localbatch import summarize_local
from binlake.merge.maintenance import Maintenance
from binlake.merge.metrics import StatusFile, TableMetrics, append_metrics
from binlake.merge.parallel import TablePool
from binlake.merge.smallparts import SmallPartLimits, SmallParts, small_enough
from binlake.merge.source import BatchRecords, read_changelog_files
from binlake.merge.sql import quote, sql_string
from binlake.merge.summary import TableChanges, TableName, summarize
from binlake.merge.swaps import swap_plan
from binlake.status import WAITING_FOR_FULL_LOAD

log = logging.getLogger(__name__)

MISSING = "missing_lake_table"


def seen_tables(summaries: list[TableChanges]) -> list[tuple[CatalogEntry, int, int]]:
    """Each table of a batch with the lsn range of its records (for :class:`~binlake.catalog.TableGuard`)."""
    return [(CatalogEntry(s.name.source_schema, s.name.source_table, s.name.schema, s.name.table),
             min([g.min_lsn for g in s.groups] + [d.lsn for d in s.ddls], default=0), s.max_lsn) for s in summaries]


def _is_table(name: TableName) -> Column:
    """The records of table ``name`` (one SQL expression: one call into the JVM, not fifteen)."""
    values = (("source_schema", name.source_schema), ("source_table", name.source_table), ("schema", name.schema),
              ("table", name.table))
    return F.expr(" AND ".join(f"{quote(column)} = {sql_string(value)}" for column, value in values))


class BatchProcessor:
    """Callable for ``DataStreamWriter.foreachBatch`` (see the module docstring)."""

    def __init__(self, ctx: MergeContext, status: StatusFile, maintenance: Maintenance | None = None,
                 app_id: Callable[[], str] | None = None, parallel_tables: int = 1,
                 on_batch: Callable[[list[TableMetrics]], None] | None = None,
                 small_parts: SmallPartLimits | None = None) -> None:
        self.ctx = ctx
        self.small_limits = small_parts  # None or records 0: Spark merges every part
        self.on_batch = on_batch  # told each batch's metrics (binlake.registration.runner)
        self.status = status
        self.maintenance = maintenance
        self._app_id = app_id
        self._joined: dict[TableName, str] = {}
        self._registry = Registry()  # the capture's binlog histories, read once per batch
        self._bounds = ctx.bounds  # configured; each batch plans with its own (binlake.merge.bounds)
        self.tables = TableGuard(ctx.lake)
        self.pool = TablePool(ctx.spark, parallel_tables)

    def __call__(self, batch: BatchRecords, batch_id: int) -> None:
        if self._app_id is not None:  # known once the query has started (it lives in the checkpoint)
            self.ctx = dataclasses.replace(self.ctx, app_id=self._app_id())
            self.status.app_id = self.ctx.app_id
            if self.maintenance is not None:
                self.maintenance.ctx = self.ctx
            self._app_id = None
        try:
            self.process(batch, batch_id)
        except Exception as exc:
            log.exception("merge batch %d failed", batch_id)
            self.status.write_error(batch_id, self.ctx.clock(), f"batch {batch_id}: {type(exc).__name__}: {exc}")
            raise

    def process(self, batch: BatchRecords, batch_id: int) -> list[TableMetrics]:
        started = time.monotonic()
        # not cached: each step reads its own lsn range (Parquet row groups pruned by lsn), so memory
        # is bounded by the step bounds, not by the batch (docs/merge.md, Memory)
        records = batch.frame
        bounds = bounds_for_batch(self.ctx.lake, self.ctx.app_id, batch_id, self._bounds)
        self.ctx = dataclasses.replace(self.ctx, bounds=bounds)
        # a small batch is already on the driver: summary and small parts without a Spark job
        summaries = summarize_local(batch.local) if batch.local is not None else summarize(records)
        summarized = time.monotonic()
        self._registry = load_registry(self.ctx.lake)
        seen = seen_tables(summaries)
        self.tables.check(seen)  # before any table is written
        batch_max = max((s.max_lsn for s in summaries), default=0)
        plan = swap_plan(summaries, self.ctx.mapping, self.ctx.scd2_tables)
        ctx = dataclasses.replace(self.ctx, swaps=plan.swaps, small_parts=self._small_parts(batch, summaries))
        collected = time.monotonic()
        done: dict[TableName, TableMetrics] = {}
        for phase in plan.phases:  # a table a swap reads from is applied before the one it swaps into
            done.update(zip((s.name for s in phase), self.pool.map(lambda spark, changes: self._table(
                dataclasses.replace(ctx, spark=spark), batch_id, changes, records, batch_max), phase), strict=True))
        metrics = [done[s.name] for s in summaries]
        applied = time.monotonic()
        if not self.status.done(batch_id):
            append_metrics(self.ctx.spark, self.ctx.lake, metrics)
        self.status.write(batch_id, metrics, self.ctx.clock())
        ended = time.monotonic()
        log.info("merge batch %d: %d table(s), %d record(s) in %.1f s (summary %.1f s, small parts %.1f s, "
                 "tables %.1f s, metrics and status %.1f s)", batch_id, len(metrics), sum(m.records for m in metrics),
                 ended - started, summarized - started, collected - summarized, applied - collected, ended - applied)
        if self.on_batch is not None:
            self.on_batch(metrics)
        if self.maintenance is not None:
            lsn_range = (min(lo for _, lo, _ in seen), max(hi for _, _, hi in seen)) if seen else None
            self.maintenance.after_batch(batch_id, [m for m in metrics if m.status != WAITING], lsn_range)
        return metrics

    def _small_parts(self, batch: BatchRecords, summaries: list[TableChanges]) -> SmallParts | None:
        """The records of the batch's small parts (:mod:`binlake.merge.smallparts`), at most
        ``small_part_bytes`` in all: taken from the batch on the driver, else collected in one Spark
        job; ``None`` when the path is off."""
        limits = self.small_limits
        if limits is None or limits.records == 0:
            return None
        names, total = [], 0
        for changes in sorted(summaries, key=lambda c: c.bytes):
            if small_enough(changes, limits) and total + changes.bytes <= limits.bytes:
                names.append(changes.name)
                total += changes.bytes
        if not names:
            return None
        return SmallParts.from_local(batch.local, names) if batch.local is not None else SmallParts.collect(
            batch.frame, names)

    def _table(self, ctx: MergeContext, batch_id: int, changes: TableChanges, records: DataFrame,
               batch_max: int) -> TableMetrics:
        """One table's part of batch ``batch_id``; ``ctx`` holds the session this table has to
        itself while it runs (its steps' transaction settings are seen by no other table)."""
        name = changes.name
        handoff = read_handoff(ctx.lake, name) or record_birth(ctx, name, changes, records)
        if handoff is None or not handoff.complete:
            status = WAITING if handoff is not None else WAITING_FOR_FULL_LOAD
            return TableMetrics(batch_id, name.schema, name.table, status, records=changes.rows, lsn=changes.max_lsn)
        path = ctx.lake.uri(table_key(name.schema, name.table))
        if not deltars.is_table(path, ctx.lake.s3_config):
            if is_born(handoff):  # created in the stream: the Delta table comes with its first row
                if not create_born_table(ctx, path, changes, handoff.min_lsn):
                    return TableMetrics(batch_id, name.schema, name.table, CREATED, records=changes.rows,
                                        lsn=changes.max_lsn)
            else:
                log.warning("%s: full load complete but no Delta table at its path; skipped", name.qualified)
                return TableMetrics(batch_id, name.schema, name.table, MISSING, records=changes.rows,
                                    lsn=changes.max_lsn)
        missing = gap(self._registry, handoff)
        if missing is not None:  # never joined or merged: the change log cannot complete its snapshot
            log.error("%s: not merged — %s", name.qualified, missing)
            return TableMetrics(batch_id, name.schema, name.table, GAP, records=changes.rows, lsn=changes.max_lsn)
        if name not in self._joined or self._joined[name] != handoff.load_id:
            self._joined.pop(name, None)
            joined = joined_load(ctx.lake, name)
            if joined is not None and joined_in_batch(ctx.lake, name) != batch_id:
                self._joined[name] = joined  # (a replay of the joining batch joins again: same steps)
        table_records = records.filter(_is_table(name))
        if self._joined.get(name) == handoff.load_id:
            return apply_table(ctx, batch_id, changes, table_records, handoff.min_lsn, joining=False)
        removed = join_gap(ctx.lake, handoff)
        if removed is not None:  # the change-log cleanup removed records this join would need
            log.error("%s: not merged — %s", name.qualified, removed)
            return TableMetrics(batch_id, name.schema, name.table, GAP, records=changes.rows, lsn=changes.max_lsn)
        keys = catchup_keys(ctx.lake, handoff.min_lsn, batch_max)
        log.info("%s: joining the stream after full load %s: catching up over %d change-log file(s) from lsn %d",
                 name.qualified, handoff.load_id, len(keys), handoff.min_lsn)
        # every file with a change after the snapshot up to the batch's end, the batch's own included
        # (so no union with the batch, nor a de-duplication holding every record); cut into bounded
        # steps like any table part
        combined = read_changelog_files(ctx.spark, ctx.lake, keys).filter(_is_table(name))
        caught_up = summarize(combined)
        # the catch-up's own records (never the batch's) for the driver-side merge when it is small
        limits = self.small_limits
        small = (SmallParts.collect(combined, [name]) if caught_up and limits is not None and limits.records
                 and small_enough(caught_up[0], limits) else None)
        result = (apply_table(dataclasses.replace(ctx, small_parts=small), batch_id, caught_up[0], combined,
                              handoff.min_lsn, joining=True)
                  if caught_up else TableMetrics(batch_id, name.schema, name.table, "joined"))
        record_join(ctx.lake, name, handoff, batch_id, ctx.clock())
        self._joined[name] = handoff.load_id
        return result
