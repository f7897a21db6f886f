"""Applying one DDL control record to a lake table.

=============================  ==============================================================
source statement               lake table
=============================  ==============================================================
ALTER … RENAME COLUMN / CHANGE  column renamed, values kept: in place with Delta column mapping,
                                else the table rewritten in one commit (lake.on_column_rename,
                                :mod:`~binlake.merge.reshape`)
ALTER … DROP COLUMN             column dropped, likewise (values stay in older Delta versions)
ALTER … ADD / MODIFY            applied when the first row with the new layout arrives (the
                                DDL text is not needed: the row's ``columns`` say it all);
                                type changes use Delta type widening, else a rewrite with CAST
TRUNCATE                        every row older than the statement deleted (SCD2: versions
                                closed); later replays of older changes are ignored; several
                                in one batch fold into the last (current-state tables)
DROP TABLE                      as TRUNCATE, and ``binlake.merge.droppedLsn`` set; the Delta
                                table and its history stay; a re-created source table of the
                                same name merges into it again (its layout from its rows)
CREATE [OR REPLACE] TABLE       as TRUNCATE (a logged plain CREATE succeeded: the table is new);
                                a table with no full load is born here (:mod:`~binlake.merge.birth`)
CREATE TABLE IF NOT EXISTS      nothing (MySQL logs it even when the table exists)
RENAME TABLE, ALTER … RENAME TO per lake table (:mod:`~binlake.merge.renames`): renamed away → as
                                DROP TABLE; another table renamed onto it (gh-ost / pt-osc swap) →
                                the other lake table's content in one commit when the lake has it
                                exactly (:mod:`~binlake.merge.swaps`), else an automatic online
                                resync; renamed onto the same lake table → goes on
=============================  ==============================================================

Column names in DDL text are source names; they are turned into lake names with the pipeline's
transformation rules.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from binlake.lake import tombstones_key
from binlake.merge import ddlvalues, scd2
from binlake.merge.autoresync import request_resync
from binlake.merge.ddl import parse_alter
from binlake.merge.layout import LSN_COLUMN
from binlake.merge.plan import DdlStep, StepTxn
from binlake.merge.renames import REPLACED, RenameEffect, effect_of
from binlake.merge.sql import delta_ref
from binlake.merge.summary import DdlRecord, TableName
from binlake.merge.swaps import SWAP_REASON
from binlake.merge.swapstep import apply_swap, record_handover
from binlake.merge.target import (
    SCHEMA_LSN,
    TargetTable,
    change_columns,
    is_delta_table,
    rename_columns,
    set_properties,
)
from binlake.merge.txn import idempotent

if TYPE_CHECKING:
    from binlake.merge.apply import MergeContext

log = logging.getLogger(__name__)


class DdlApplier:
    """Applies DDL records of one table (see the module docstring for what each does).

    ``batch``: ``<app id>/<batch id>`` of the batch applying them (recorded with a wipe, see
    :meth:`TargetTable.floor_before`)."""

    def __init__(self, ctx: MergeContext, name: TableName, batch: str) -> None:
        self.ctx = ctx
        self.name = name
        self.batch = batch
        target = ctx.mapping.target_for(name.source_schema, name.source_table)
        self._column_name = target.column_name if target is not None else (lambda c: c)

    def apply(self, table: TargetTable, step: DdlStep, scd2_table: bool, txn: StepTxn) -> TargetTable:
        """Apply ``step``; returns the table as it is afterwards."""
        record = step.record
        table = record_handover(self.ctx, self.name, table, record.lsn)  # a swap reads this table at lsn
        if record.swap is not None:
            return apply_swap(self.ctx, self.name, table, step, self.batch, txn)
        if record.wipes:
            return self._wipe(table, step, scd2_table, txn)
        if record.lsn <= table.schema_lsn:
            return table
        effect = effect_of(record, self.name, self.ctx.mapping)
        if effect.kind == REPLACED:
            return self._replaced(table, record, effect)
        if record.kind.upper() == "ALTER":
            return self._alter(table, record, txn, scd2_table)
        return table

    def _replaced(self, table: TargetTable, record: DdlRecord, effect: RenameEffect) -> TargetTable:
        """A rename made another table this one (an online schema change's swap): its rows are not the
        lake table's, so the table is re-synchronised from the source (a durable request, once per
        lsn), then ``schemaLsn`` marks the statement applied. The rows stay until the resync's chunks
        replace them, range by range; the stream keeps applying the new table's changes meanwhile."""
        assert effect.name is not None and effect.origin is not None
        origin = ".".join(effect.origin)
        log.warning("%s: the source table is now the table %s was (%s): re-synchronising it from the source",
                    self.name.qualified, origin, record.ddl)
        request_resync(self.ctx, TableName(*effect.name, self.name.schema, self.name.table),
                       f"renamed onto this table from {origin} ({SWAP_REASON})", lsn=record.lsn,
                       statement=record.ddl)
        set_properties(self.ctx.spark, table.path, {SCHEMA_LSN: str(record.lsn)})
        return TargetTable.load(self.ctx.spark, table.path)

    def _wipe(self, table: TargetTable, step: DdlStep, scd2_table: bool, txn: StepTxn) -> TargetTable:
        """Properties first (idempotent, so a crash before the tagged commit just sets them again),
        then the one tagged commit that empties the table."""
        spark = self.ctx.spark
        record = step.record
        set_properties(spark, table.path, table.wipe_properties(record.lsn, self.batch, step.dropped_lsn))
        if scd2_table:
            when = (record.commit_ts or self.ctx.clock()).strftime("%Y-%m-%d %H:%M:%S")
            scd2.close_all(spark, table.path, record.lsn, when, txn.app_id, txn.version)
        else:
            with idempotent(spark, txn.app_id, txn.version):
                spark.sql(f"DELETE FROM {delta_ref(table.path)} WHERE {LSN_COLUMN} < {int(record.lsn)}")
        folded = f" (and {len(step.folded)} earlier wipe(s) of the batch)" if step.folded else ""
        log.info("%s: %s at lsn %d applied%s", self.name.qualified, record.kind, record.lsn, folded)
        return TargetTable.load(spark, table.path)

    def _alter(self, table: TargetTable, record: DdlRecord, txn: StepTxn, scd2_table: bool) -> TargetTable:
        """Renames and drops from the text; stored-value changes (new columns' values, conversions,
        partition maintenance) by :mod:`binlake.merge.ddlvalues` — decided before anything changes."""
        spark = self.ctx.spark
        decision = ddlvalues.decide(self.ctx, self.name, table, record, self._column_name, scd2_table)
        effect = parse_alter(record.ddl)
        renames = tuple(
            (old_t, new_t)
            for old, new in effect.renames
            if (old_t := self._column_name(old)) is not None and (new_t := self._column_name(new)) is not None
        )
        drops = tuple(d for name in effect.drops if (d := self._column_name(name)) is not None)
        if renames or drops:  # without column mapping: one rewrite of the table (binlake.merge.reshape)
            change_columns(spark, table, self.ctx.features, renames, drops)
            table = TargetTable.load(spark, table.path)
        if renames:
            self._rename_tombstone_keys(renames)
        if decision.impact.adds:
            ddlvalues.add_columns_with_values(self.ctx, TargetTable.load(spark, table.path), decision, record, txn)
        set_properties(spark, table.path, {SCHEMA_LSN: str(record.lsn)})
        return TargetTable.load(spark, table.path)

    def _rename_tombstone_keys(self, renames: tuple[tuple[str, str], ...]) -> None:
        path = self.ctx.lake.uri(tombstones_key(self.name.schema, self.name.table))
        if is_delta_table(self.ctx.spark, path):
            rename_columns(self.ctx.spark, TargetTable.load(self.ctx.spark, path), renames, self.ctx.features)
