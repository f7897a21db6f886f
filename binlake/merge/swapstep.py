"""Applying a planned swap (:mod:`binlake.merge.swaps`) to the Delta tables of its two sides.

**Origin side** (the ghost table, at its step for the RENAME at lsn ``R``, before anything else of
that step — its own wipe as "renamed away" included): :func:`record_handover` writes, in one
properties commit, ``binlake.merge.handoverLsn = R`` and ``binlake.merge.handoverVersion`` = the
Delta version holding its content at ``R`` (every change of it below ``R`` is merged: its earlier
steps ran, in order, and the swap plan keeps its rows before the rename, see
:func:`binlake.merge.apply.apply_table`), or ``-1`` when its lake rows are not known to be exact at
``R`` (an automatic resync asked before ``R`` not done and applied, a resync of it not applied):
then the target is resynced as before. Written once per ``R``: a replay finds it and keeps it, so
the version never moves to the wiped table and the decision never changes between attempts.

**Target side** (``t``, in a later phase of the same batch, so the origin's whole part of the batch
is done): :func:`mark_swaps` turns each RENAME record of a planned swap whose origin handed over a
version into a wipe with a :class:`~binlake.merge.summary.SwapSource` (the plan folds the rows
before it, like any wipe); :func:`apply_swap` applies it:

1. the wipe's properties (``truncateLsn``/``schemaLsn`` = ``R``, the batch's floor bookkeeping) —
   one commit, idempotent by state; from here on no change of the old table (lsn ``<= R``) is
   applied again;
2. one Delta commit with the step's transaction: an overwrite of ``t`` with the origin's rows at
   that version (its columns, types, per-row ``_binlake_lsn``/``_binlake_commit_ts``),
   ``overwriteSchema`` (table properties, features and history are kept). Delta skips it when an
   earlier attempt committed it.

**Target born at the swap** (a name no lake table held before, that the RENAME fills with another
lake table's content: pt-osc's ``_t_old`` — kept by ``--no-drop-old-table`` with the old table's
rows — or gh-ost's ``_t_del``, both ``t`` before the swap): the table is born at ``R``
(:mod:`binlake.merge.birth`), and when the origin handed over a version (:func:`born_by_swap`) its
Delta table is created holding the origin's rows at that version in one commit
(:func:`create_swapped_in`) — no resync, and no version of it is empty or partial.

Readers of ``t`` therefore see the old table (up to the version before step 2) and then the new one
— never a mix. The stream goes on with ``t``'s changes after ``R`` (their layout is the origin's);
resync chunks of ``t`` read before ``R`` are skipped by the floor. The origin's Delta version stays
readable until a VACUUM removes its files; a replay of the batch always comes before any VACUUM.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from delta.tables import DeltaTable
from pyspark.sql import functions as F

from binlake.lake import table_key
from binlake.merge.autoresync import DONE, read_requests
from binlake.merge.layout import LSN_COLUMN
from binlake.merge.plan import DdlStep, StepTxn
from binlake.merge.summary import SwapSource, TableChanges, TableName
from binlake.merge.swaps import hands_over, swap_into
from binlake.merge.target import TargetTable, is_delta_table, set_properties
from binlake.resync import store

if TYPE_CHECKING:
    from binlake.merge.apply import MergeContext

log = logging.getLogger(__name__)

HANDOVER_LSN = "binlake.merge.handoverLsn"
HANDOVER_VERSION = "binlake.merge.handoverVersion"
NOT_EXACT = -1
STATS_COLUMNS = "delta.dataSkippingStatsColumns"
NEW_TABLE_DEFAULTS = "spark.databricks.delta.properties.defaults."
"""Session settings Delta applies as the properties of a table it creates (key without ``delta.``)."""


def latest_version(ctx: MergeContext, path: str) -> int:
    """The Delta table's current version."""
    row = DeltaTable.forPath(ctx.spark, path).history(1).select("version").first()
    if row is None:
        raise RuntimeError(f"{path}: a Delta table without a version")
    return int(row["version"])


def inexact_reason(ctx: MergeContext, name: TableName, lsn: int) -> str | None:
    """Why the lake rows of ``name`` may differ from its source rows just before ``lsn`` (``None``:
    nothing says so — every change below ``lsn`` is merged and no resync of it is outstanding)."""
    for request in read_requests(ctx.lake, name):
        if request.lsn < lsn and (request.state != DONE or request.resync_id is None):
            return f"its automatic resync for lsn {request.lsn} ({request.reason}) is {request.state}, not applied"
    for resync in store.table_resyncs(ctx.lake, name.schema, name.table):
        if not store.read_applied(ctx.lake, resync).covers(resync):
            return f"its resync {resync.resync_id} is not applied yet"
    return None


def record_handover(ctx: MergeContext, name: TableName, table: TargetTable, lsn: int) -> TargetTable:
    """On the origin of a planned swap at ``lsn``: record the version holding its content at ``lsn``
    (or :data:`NOT_EXACT`), once (module docstring)."""
    if not hands_over(ctx.swaps, (name.schema, name.table), lsn) or table.properties.get(HANDOVER_LSN) == str(lsn):
        return table
    reason = inexact_reason(ctx, name, lsn)
    version = latest_version(ctx, table.path) if reason is None else NOT_EXACT
    set_properties(ctx.spark, table.path, {HANDOVER_LSN: str(lsn), HANDOVER_VERSION: str(version)})
    if reason is None:
        log.info("%s: hands its content at lsn %d over (Delta version %d) to the table renamed from it",
                 name.qualified, lsn, version)
    else:
        log.warning("%s: renamed onto another lake table at lsn %d, but %s: that table is resynced instead",
                    name.qualified, lsn, reason)
    return TargetTable.load(ctx.spark, table.path)


def handed_over(ctx: MergeContext, origin: tuple[str, str], lsn: int) -> int | None:
    """The version the origin recorded for ``lsn``, if it recorded an exact one."""
    path = ctx.lake.uri(table_key(*origin))
    if not is_delta_table(ctx.spark, path):
        return None
    properties = TargetTable.load(ctx.spark, path).properties
    if properties.get(HANDOVER_LSN) != str(lsn):
        return None
    version = int(properties.get(HANDOVER_VERSION, NOT_EXACT))
    return None if version == NOT_EXACT else version


def mark_swaps(ctx: MergeContext, changes: TableChanges) -> TableChanges:
    """``changes`` with each RENAME record of a planned swap into this table marked with its
    :class:`SwapSource` (a wipe), when the origin handed over an exact version."""
    me = (changes.name.schema, changes.name.table)
    ddls = []
    for record in changes.ddls:
        move = swap_into(ctx.swaps, me, record.lsn)
        version = handed_over(ctx, move.origin, record.lsn) if move is not None else None
        if move is not None and version is not None:
            record = replace(record, swap=SwapSource(move.origin, version))
        ddls.append(record)
    return changes if tuple(ddls) == changes.ddls else replace(changes, ddls=tuple(ddls))


def born_by_swap(ctx: MergeContext, name: TableName, lsn: int) -> SwapSource | None:
    """The planned swap that fills table ``name`` at its birth at ``lsn``, if its origin handed over an
    exact version (module docstring, *Target born at the swap*)."""
    move = swap_into(ctx.swaps, (name.schema, name.table), lsn)
    version = handed_over(ctx, move.origin, lsn) if move is not None else None
    return None if move is None or version is None else SwapSource(move.origin, version)


def create_swapped_in(ctx: MergeContext, name: TableName, path: str, source: SwapSource, lsn: int) -> None:
    """Create the Delta table of ``name``, born at ``lsn`` by a swap, with ``source``'s rows at its
    version (those below ``lsn``, with their ``_binlake_lsn``/``_binlake_commit_ts``) in one commit:
    the properties of a new lake table of these columns, the origin's statistics columns.

    A plain ``overwrite`` write with the properties as the session's new-table defaults (the
    table's own session, reset afterwards), not ``CREATE TABLE … AS SELECT``: Delta refuses that at
    a location holding files (``TABLE_OR_VIEW_ALREADY_EXISTS``), which a write SIGKILLed before its
    commit leaves; the write ignores them."""
    spark = ctx.spark
    origin_path = ctx.lake.uri(table_key(*source.origin))
    rows = (spark.read.format("delta").option("versionAsOf", source.version).load(origin_path)
            .filter(F.col(LSN_COLUMN) < F.lit(lsn)))
    properties = ctx.features.new_table_properties(rows.columns)
    stats = TargetTable.load(spark, origin_path).properties.get(STATS_COLUMNS)
    if stats is not None:
        properties[STATS_COLUMNS] = stats
    defaults = {NEW_TABLE_DEFAULTS + key.removeprefix("delta."): value for key, value in properties.items()}
    before: dict[str, str | None] = {key: spark.conf.get(key, None) for key in defaults}
    try:
        for key, value in defaults.items():
            spark.conf.set(key, value)
        rows.write.format("delta").mode("overwrite").save(path)
    finally:
        for key, old in before.items():
            if old is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)
    log.info("%s: born at lsn %d by a swap: created holding %s as of its Delta version %d (one commit, no resync)",
             name.qualified, lsn, ".".join(source.origin), source.version)


def apply_swap(ctx: MergeContext, name: TableName, table: TargetTable, step: DdlStep, batch: str,
               txn: StepTxn) -> TargetTable:
    """Make ``table`` its swap origin's content (module docstring); returns the table afterwards."""
    record = step.record
    source = record.swap
    assert source is not None
    spark = ctx.spark
    set_properties(spark, table.path, table.wipe_properties(record.lsn, batch, step.dropped_lsn))
    origin_path = ctx.lake.uri(table_key(*source.origin))
    rows = (spark.read.format("delta").option("versionAsOf", source.version).load(origin_path)
            .filter(F.col(LSN_COLUMN) < F.lit(record.lsn)))
    (rows.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
     .option("txnAppId", txn.app_id).option("txnVersion", str(txn.version)).save(table.path))
    stats = TargetTable.load(spark, origin_path).properties.get(STATS_COLUMNS)
    swapped = TargetTable.load(spark, table.path)
    if stats is not None and swapped.properties.get(STATS_COLUMNS) != stats:
        set_properties(spark, table.path, {STATS_COLUMNS: stats})
        swapped = TargetTable.load(spark, table.path)
    log.info("%s: %s at lsn %d applied as a swap: the table is now %s as of its Delta version %d (one commit, "
             "no resync)", name.qualified, record.kind, record.lsn, ".".join(source.origin), source.version)
    return swapped
