"""Apply one table's part of a micro-batch: the steps of :mod:`binlake.merge.plan`, in order.

Guarantees, per table:

* the steps are planned from the batch's records and the table's floor as it was before the
  batch (:func:`plan_table`), so every attempt of a batch has the same steps with the same
  transactions (:func:`~binlake.merge.plan.step_txn`);
* a step whose transaction the table already has (an earlier attempt committed it) is skipped
  before any work (a batch's lone rows step: by Delta, at its MERGE); otherwise a rows step is one
  MERGE (after its tombstone append when it has deletes) and a wipe one DELETE/UPDATE, each
  committed with the step's transaction;
* a DDL step or a schema change runs only while its step is not committed, only when it is newer
  than the table's last schema change (``binlake.merge.schemaLsn``) and is idempotent by state,
  so a replayed or late record never rolls the schema back;
* records at or below the floor (snapshot lsn, TRUNCATE/DROP of an earlier batch) are never applied.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from binlake.addcolumn import AddedColumn
from binlake.lake import Lake, table_key, tombstones_key
from binlake.merge import scd2, tombstones
from binlake.merge.addcolumns import check_lake_has, with_added, without_added
from binlake.merge.bounds import UNBOUNDED, Bounds
from binlake.merge.ddlstep import DdlApplier
from binlake.merge.decode import decode, expand, latest_per_key
from binlake.merge.filtering import bind_to_layout, outside_as_delete
from binlake.merge.layout import SCD2_COLUMNS, Layout, LayoutColumn, layouts_union, plan_evolution
from binlake.merge.metrics import JOINED, MERGED, TableMetrics, lag
from binlake.merge.plan import DdlStep, RowsStep, Step, StepTxn, plan_steps, step_txn
from binlake.merge.renames import mark_gone
from binlake.merge.smallparts import SmallParts, apply_small_part
from binlake.merge.sql import col, sql_string
from binlake.merge.summary import OP_DDL, TableChanges, TableName, segment_groups
from binlake.merge.swaps import Handover, hands_over
from binlake.merge.swapstep import mark_swaps
from binlake.merge.target import (
    RETYPE_PREFIX,
    SCHEMA_LSN,
    TargetTable,
    apply_evolution,
    finish_rewrites,
    set_properties,
)
from binlake.merge.txn import committed_version
from binlake.merge.upsert import MergeCounts, merge_changes
from binlake.rowfilter import BoundFilter
from binlake.rules import TableMapping
from binlake.snapshot.delta import CHANGE_DATA_FEED, change_data_feed_blockers
from binlake.tablefeatures import DEFAULT as DEFAULT_FEATURES
from binlake.tablefeatures import TableFeatures

log = logging.getLogger(__name__)

Clock = Callable[[], datetime.datetime]


@dataclass(frozen=True)
class MergeContext:
    """What every table's apply needs: session, lake, the job's transaction app id, rules, options."""

    spark: SparkSession
    lake: Lake
    app_id: str
    mapping: TableMapping
    scd2_tables: frozenset[str] = frozenset()
    clock: Clock = field(default=lambda: datetime.datetime.now(datetime.UTC))
    after_commit: Callable[[str, int], None] | None = None  # test hook: (table path, txn version)
    bounds: Bounds = UNBOUNDED  # most records/bytes per rows step (the batch's, binlake.merge.bounds)
    on_unappliable_ddl: str = "resync"  # merge.on_unappliable_ddl (binlake.merge.ddlvalues)
    features: TableFeatures = DEFAULT_FEATURES  # lake.reader_compatibility (binlake.tablefeatures)
    swaps: frozenset[Handover] = frozenset()  # the batch's planned swaps (binlake.merge.swaps)
    small_parts: SmallParts | None = None  # the batch's small parts, merged by delta-rs (binlake.merge.smallparts)


@dataclass
class _Run:
    """Mutable state of one table's apply."""

    ctx: MergeContext
    name: TableName
    path: str
    batch_id: int
    table: TargetTable
    scd2: bool
    counts: MergeCounts = field(default_factory=MergeCounts)
    ddl: int = 0
    _committed: dict[str, int] = field(default_factory=dict)

    def done(self, txn: StepTxn) -> bool:
        """Did an earlier attempt of this batch commit the step with ``txn``? (The table's
        transaction versions as they were when this attempt started, read once per app id.)"""
        if txn.app_id not in self._committed:
            self._committed[txn.app_id] = committed_version(self.ctx.spark, self.path, txn.app_id)
        return self._committed[txn.app_id] >= txn.version

    def reload(self) -> None:
        self.table = TargetTable.load(self.ctx.spark, self.path)

    def commit_done(self, version: int) -> None:
        if self.ctx.after_commit is not None:
            self.ctx.after_commit(self.path, version)


def batch_tag(app_id: str, batch_id: int) -> str:
    """``<app id>/<batch id>``: names a batch in table properties."""
    return f"{app_id}/{batch_id}"


def plan_table(changes: TableChanges, snapshot_lsn: int, table: TargetTable, batch: str, history: bool,
               bounds: Bounds = UNBOUNDED) -> list[Step]:
    """The table's steps for batch ``batch`` (pure): a function of the batch's records (``changes``,
    layout groups split at DDLs), the snapshot lsn, the table's floor as it was before ``batch`` and
    the batch's ``bounds`` — never of what ``batch`` itself committed — so every attempt plans the
    same steps."""
    return plan_steps(changes, max(snapshot_lsn, table.floor_before(batch)), history, bounds)


def apply_table(ctx: MergeContext, batch_id: int, changes: TableChanges, records: DataFrame, snapshot_lsn: int,
                joining: bool) -> TableMetrics:
    """Apply ``changes`` (summary) / ``records`` (this table's change-log records) to the lake table;
    ``joining``: first batch after the table's full load completed."""
    started = time.monotonic()
    name = changes.name
    small = ctx.small_parts.rows_of(name) if ctx.small_parts is not None else None
    if small is not None:
        done = apply_small_part(ctx, batch_id, changes, small, snapshot_lsn, batch_tag(ctx.app_id, batch_id))
        if done is not None:
            counts = MergeCounts(done.inserted, done.updated, done.deleted)
            return _metrics(ctx, batch_id, changes, counts, 0, joining, started)
    path = ctx.lake.uri(table_key(name.schema, name.table))
    run = _Run(ctx, name, path, batch_id, TargetTable.load(ctx.spark, path), name.qualified in ctx.scd2_tables)
    if any(c.startswith(RETYPE_PREFIX) for c in run.table.columns):
        finish_rewrites(ctx.spark, run.table)
        run.reload()
    if run.scd2 and (joining or not set(SCD2_COLUMNS) <= run.table.metadata_columns):
        scd2.prepare(ctx.spark, path, sorted(run.table.metadata_columns))
        run.reload()
    if changes.straddling():
        changes = dataclasses.replace(changes, groups=tuple(segment_groups(records)))
    changes = mark_gone(changes, ctx.mapping)  # a RENAME taking the table away is a DROP (binlake.merge.renames)
    changes = mark_swaps(ctx, changes)  # a RENAME swapping another lake table in (binlake.merge.swaps)
    batch = batch_tag(ctx.app_id, batch_id)
    ddl = DdlApplier(ctx, changes.name, batch)
    # a table whose content a swap reads keeps its rows before each wipe: they are the swapped-in table's
    keep_all = run.scd2 or hands_over(ctx.swaps, (name.schema, name.table))
    steps = plan_table(changes, snapshot_lsn, run.table, batch, keep_all, ctx.bounds)
    for index, step in enumerate(steps):
        txn = step_txn(ctx.app_id, batch_id, index)
        if isinstance(step, DdlStep):
            run.ddl += 1
            if not run.done(txn):
                run.table = ddl.apply(run.table, step, run.scd2, txn)
                run.commit_done(txn.version)
        elif len(steps) == 1 or not run.done(txn):
            # a lone rows step (every batch without DDL) leaves the skip to Delta: the MERGE carries
            # the transaction, and reading the table's transactions first would cost every batch
            _apply_rows(run, step, records, txn)
    return _metrics(ctx, batch_id, changes, run.counts, run.ddl, joining, started)


def _metrics(ctx: MergeContext, batch_id: int, changes: TableChanges, counts: MergeCounts, ddl: int,
             joining: bool, started: float) -> TableMetrics:
    name = changes.name
    merged_at = ctx.clock()
    return TableMetrics(
        batch_id=batch_id, schema=name.schema, table=name.table, status=JOINED if joining else MERGED,
        records=changes.rows, inserted=counts.inserted, updated=counts.updated, deleted=counts.deleted, ddl=ddl,
        lsn=changes.max_lsn, source_commit_ts=changes.max_commit_ts, merged_at=merged_at,
        lag_seconds=lag(merged_at, changes.max_commit_ts), lag_max_seconds=lag(merged_at, changes.min_commit_ts),
        seconds=round(time.monotonic() - started, 3),
    )


def _evolve(run: _Run, step: RowsStep, txn: StepTxn) -> bool:
    """Bring the table to the step's latest layout when that layout is newer than the table's
    last schema change (idempotent by state: a replay finds the change made). False when the step
    is already committed (skip it)."""
    latest = step.latest
    if latest.max_lsn <= run.table.schema_lsn:
        return True
    evolution = plan_evolution(without_added(run.table.source_columns, _added(run)), Layout.parse(latest.columns))
    if evolution.empty:
        return True
    if run.done(txn):
        return False
    log.info("%s: schema change at lsn %d: %s", run.path, latest.min_lsn, evolution)
    apply_evolution(run.ctx.spark, run.table, evolution, run.ctx.features)
    set_properties(run.ctx.spark, run.path, {SCHEMA_LSN: str(max(run.table.schema_lsn, latest.min_lsn))})
    run.reload()
    return True


def _keep_mergeable(run: _Run) -> None:
    """Turn the change data feed off when a column name rules it out (a table loaded before binlake
    knew, or a column added by DDL): the rows keep replicating, the feed stops at this version."""
    blockers = change_data_feed_blockers(list(run.table.columns))
    if blockers and run.table.properties.get(CHANGE_DATA_FEED, "false").lower() == "true":
        log.warning("%s: turning the change data feed off: Delta's MERGE with the feed on cannot handle the "
                    "back-quote in column(s) %s (rename them with a DMS rename rule to keep the feed)",
                    run.name.qualified, blockers)
        set_properties(run.ctx.spark, run.path, {CHANGE_DATA_FEED: "false"})
        run.reload()


def _apply_rows(run: _Run, step: RowsStep, records: DataFrame, txn: StepTxn) -> None:
    """One rows step: schema evolution, tombstones, then the tagged MERGE (which Delta skips when
    an earlier attempt committed it)."""
    if not _evolve(run, step, txn):
        return
    _keep_mergeable(run)
    ctx = run.ctx
    layouts = [Layout.parse(group.columns) for group in step.groups]
    latest = Layout.parse(step.latest.columns)
    columns, optional = layouts_union(layouts)
    key, has_pk = latest.key_columns, latest.has_primary_key
    lsn = F.col("lsn")
    rows = records.filter((lsn > F.lit(step.after_lsn)) & (F.col("op") != OP_DDL))
    if step.before_lsn is not None:
        rows = rows.filter(lsn < F.lit(step.before_lsn))
    decoded = decode(expand(rows, key), columns, optional)
    row_filter = _row_filter(run, columns, optional)
    if row_filter is not None:  # an upsert outside the table's source filter deletes its key
        decoded = outside_as_delete(decoded, row_filter)
    deletes = bool(step.deletes) or row_filter is not None
    added = _added(run)
    if added:  # add-column rules: their values in each change, assigned by the MERGE like source columns
        check_lake_has(added, run.table.columns, run.name.qualified)
        decoded, columns = with_added(decoded, columns, added)
    tomb_path = ctx.lake.uri(tombstones_key(run.name.schema, run.name.table))
    table_columns = list(run.table.columns)
    reduced = latest_per_key(decoded, key, keyed=has_pk).persist()
    tombs = tombstones.read(ctx.spark, tomb_path, key)
    if tombs is not None and deletes:  # as before the step: a replay finds its own appended
        tombs = tombstones.excluding_own(tombs, reduced, key)
    history = scd2.history_source(ctx.spark, run.path, decoded, key, tombs) if run.scd2 else None
    try:
        if deletes:  # before the MERGE: a committed step always has its tombstones
            key_fields = [(k, _type_of(run.table, k)) for k in key]
            tombstones.ensure_table(ctx.spark, tomb_path, key_fields)
            tombstones.record_deletes(ctx.spark, tomb_path, reduced, key)
        if history is not None:
            counts = scd2.merge_history(ctx.spark, run.path, history, key, columns, optional, table_columns,
                                        txn.app_id, txn.version)
            history.unpersist()
        else:
            source = tombstones.without_tombstoned(reduced, tombs, key)
            bounds = key_bounds(reduced, key, run.table) if has_pk else None
            counts = merge_changes(ctx.spark, run.path, source, key, columns, optional, table_columns,
                                   txn.app_id, txn.version, bounds)
    finally:
        reduced.unpersist()
    run.counts = run.counts + counts
    run.commit_done(txn.version)


def _added(run: _Run) -> tuple[AddedColumn, ...]:
    """The table's ``add-column`` columns (:mod:`binlake.merge.addcolumns`)."""
    target = run.ctx.mapping.target_for(run.name.source_schema, run.name.source_table)
    return () if target is None else target.added_columns


def _row_filter(run: _Run, columns: Sequence[LayoutColumn], optional: set[str]) -> BoundFilter | None:
    """The table's DMS source filter bound to the step's decoded columns (``None``: no filter)."""
    name = run.name
    target = run.ctx.mapping.target_for(name.source_schema, name.source_table)
    if target is None or target.row_filter is None:
        return None
    lake_names = {c: target.column_name(c) for c in target.row_filter.columns}
    return bind_to_layout(target.row_filter, lake_names, columns, optional, name.qualified)


_RANGE_TYPES = {"tinyint", "smallint", "int", "bigint", "string"}


def key_bounds(reduced: DataFrame, key: Sequence[str], table: TargetTable) -> tuple[str, str] | None:
    """SQL literals of the lowest and highest key of a step, for a single integer or string primary
    key (never NULL; one small job on the cached source). Added to the MERGE condition, they let Delta skip the
    files whose key statistics lie outside — most files when changes hit recent keys."""
    if len(key) != 1 or _type_of(table, key[0]) not in _RANGE_TYPES:
        return None
    low, high = reduced.agg(F.min(col(key[0])), F.max(col(key[0]))).first() or (None, None)
    if low is None or high is None:
        return None
    if isinstance(low, str) and isinstance(high, str):
        return sql_string(low), sql_string(high)
    return str(int(low)), str(int(high))


def _type_of(table: TargetTable, column: str) -> str:
    for name, kind in table.columns.items():
        if name.lower() == column.lower():
            return kind
    raise ValueError(f"{table.path}: key column {column!r} is not in the lake table")
