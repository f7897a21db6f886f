"""The DDL step's part for statements that change stored values (:mod:`binlake.merge.ddlimpact`).

For an ``ALTER TABLE`` record at lsn ``D`` of a lake table, :func:`decide` runs before the step
changes anything:

1. the statement's impact (pure) and its lake checks — one aggregate over the lake rows with
   ``_binlake_lsn < D``, which are the source's rows as they were when the statement ran (every
   earlier change is merged before this step; rows read by a full-load chunk after ``D`` are not
   looked at, their values are already the converted ones);
2. in place when there is no reason left; else, by ``merge.on_unappliable_ddl``:

   * ``resync`` — a durable request for an automatic online resync of the table
     (:func:`binlake.merge.autoresync.request_resync`, one per table and lsn: a replayed batch does
     not ask twice); the step goes on with what it can do in place (renames, drops, the new
     columns, so the resync's chunks find them), and the resync's chunks — read after ``D`` —
     replace every row;
   * ``stop`` — :class:`UnappliableDdlError` naming the table, the statement, why, and the
     command to run; the batch fails before any commit and is replayed when the merge restarts,
     which then goes on once a whole-table resync read entirely after ``D`` is delivered.

:func:`add_columns_with_values` then adds the statement's new columns (by the same Spark type the
change-log layout gives them, so the next row step has nothing to evolve) and gives every row older
than the statement the value the source gave it: one ``UPDATE … WHERE _binlake_lsn < D`` committed
with the step's transaction. A replay after that commit skips the step (its transaction is in the
table); a crash before it leaves at most the added columns, which the replay finds there and keeps.
Rows changed after ``D`` come from the change log with their own values.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from binlake.merge.autoresync import delivered_after_lsn, request_resync
from binlake.merge.ddlimpact import DdlImpact, LakeCheck, ddl_impact
from binlake.merge.layout import LSN_COLUMN
from binlake.merge.plan import StepTxn
from binlake.merge.sql import delta_ref, quote
from binlake.merge.summary import DdlRecord, TableName
from binlake.merge.target import TargetTable, add_columns
from binlake.merge.txn import idempotent

if TYPE_CHECKING:
    from collections.abc import Callable

    from binlake.merge.apply import MergeContext

log = logging.getLogger(__name__)

RESYNC, STOP = "resync", "stop"


class UnappliableDdlError(RuntimeError):
    """A DDL the lake cannot apply exactly, under ``merge.on_unappliable_ddl: stop``."""


@dataclass(frozen=True)
class Decision:
    """What the step does: the impact, the reasons it needs a resync (empty: in place)."""

    impact: DdlImpact
    reasons: tuple[str, ...]


def failed_checks(ctx: MergeContext, table: TargetTable, checks: tuple[LakeCheck, ...], lsn: int) -> list[str]:
    """The checks some lake row older than ``lsn`` breaks, as reasons (one Spark job for all)."""
    if not checks:
        return []
    counts = ", ".join(f"count_if({c.violation_sql}) AS v{i}" for i, c in enumerate(checks))
    row = ctx.spark.sql(f"SELECT {counts} FROM {delta_ref(table.path)} WHERE {LSN_COLUMN} < {int(lsn)}").first()
    assert row is not None
    return [f"{c.column}: {row[f'v{i}']} lake row(s) break '{c.rule}'"
            for i, c in enumerate(checks) if row[f"v{i}"]]


def recovery_command(name: TableName) -> str:
    return f"binlake resync --config <pipeline.yaml> --table {name.source_schema}.{name.source_table}"


def decide(ctx: MergeContext, name: TableName, table: TargetTable, record: DdlRecord,
           column_name: Callable[[str], str | None], scd2_table: bool) -> Decision:
    """Classify ``record`` against the lake table and act on the policy (module docstring); raises
    :class:`UnappliableDdlError` under ``stop`` (and for SCD2 tables, which a resync cannot keep)."""
    impact = ddl_impact(record.kind, record.ddl, table.source_columns, column_name)
    reasons = (*impact.resync, *failed_checks(ctx, table, impact.checks, record.lsn))
    if not reasons:
        if impact.adds or impact.checks:
            log.info("%s: %s at lsn %d applied in place (%s)", name.qualified, _short(record.ddl), record.lsn,
                     "; ".join([*(f"{a.name} = {a.value!r} in existing rows" for a in impact.adds),
                                *(f"checked: {c.column} {c.rule}" for c in impact.checks)]))
        return Decision(impact, ())
    why = "; ".join(reasons)
    policy = ctx.on_unappliable_ddl
    if scd2_table:
        raise UnappliableDdlError(
            f"{name.qualified}: the merge cannot apply `{record.ddl}` (lsn {record.lsn}) exactly: {why}. It is an "
            "SCD2 table, which an online resync would rewrite: reload it with the full load "
            "(full_load.target_table_prep_mode DROP_AND_CREATE) while the merge is stopped, then restart the merge")
    covered = delivered_after_lsn(ctx.lake, name, record.lsn)
    if covered is not None:
        log.warning("%s: `%s` (lsn %d) cannot be applied in place (%s); resync %s, read after it, replaces every "
                    "row", name.qualified, record.ddl, record.lsn, why, covered.resync_id)
        return Decision(impact, tuple(reasons))
    if policy == STOP:
        raise UnappliableDdlError(
            f"{name.qualified}: the merge cannot apply `{record.ddl}` (lsn {record.lsn}) exactly: {why}. "
            f"merge.on_unappliable_ddl is 'stop': re-read the table from the source with "
            f"`{recovery_command(name)}`, then restart the merge (it goes on past this statement once that "
            "resync is delivered); or set merge.on_unappliable_ddl: resync to do this automatically")
    log.warning("%s: `%s` (lsn %d) cannot be applied in place: %s — resyncing the table online",
                name.qualified, record.ddl, record.lsn, why)
    request_resync(ctx, name, f"{_short(record.ddl)}: {why}", lsn=record.lsn, statement=record.ddl)
    return Decision(impact, tuple(reasons))


def add_columns_with_values(ctx: MergeContext, table: TargetTable, decision: Decision, record: DdlRecord,
                            txn: StepTxn) -> bool:
    """Add the new columns and set their value in the rows older than the statement (one tagged
    UPDATE; none when every value is NULL or a resync replaces the rows). True when it changed
    anything."""
    adds = decision.impact.adds
    if not adds:
        return False
    add_columns(ctx.spark, table, tuple((a.name, a.spark_type) for a in adds))
    valued = [a for a in adds if a.value is not None]
    if valued:
        present = TargetTable.load(ctx.spark, table.path).columns
        sets = ", ".join(f"{quote(_lake_name(present, a.name))} = {a.value_sql()}" for a in valued)
        with idempotent(ctx.spark, txn.app_id, txn.version):
            ctx.spark.sql(f"UPDATE {delta_ref(table.path)} SET {sets} WHERE {LSN_COLUMN} < {int(record.lsn)}")
    return True


def _lake_name(columns: dict[str, str], name: str) -> str:
    return next((c for c in columns if c.lower() == name.lower()), name)


def _short(sql: str, limit: int = 200) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[:limit] + "…"
