"""Applying one DDL control record to a lake table.

=============================  ==============================================================
source statement               lake table
=============================  ==============================================================
ALTER … RENAME COLUMN / CHANGE  column renamed (Delta column mapping), values kept
ALTER … DROP COLUMN             column dropped (values stay in older Delta versions)
ALTER … ADD / MODIFY            applied when the first row with the new layout arrives (the
                                DDL text is not needed: the row's ``columns`` say it all);
                                type changes use Delta type widening, else a rewrite with CAST
TRUNCATE                        every row older than the statement deleted (SCD2: versions
                                closed); later replays of older changes are ignored
DROP TABLE                      as TRUNCATE, and ``binlake.merge.droppedLsn`` set; the Delta
                                table and its history stay; a re-created source table of the
                                same name merges into it again (its layout from its rows)
CREATE OR REPLACE TABLE         as TRUNCATE
CREATE TABLE (plain)            nothing (``IF NOT EXISTS`` on an existing table is logged too)
RENAME TABLE, ALTER … RENAME TO the lake table keeps its name and stops receiving changes; the
                                new name is a new table and needs its own full load (warning)
=============================  ==============================================================

Column names in DDL text are source names; they are turned into lake names with the pipeline's
transformation rules.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from binlake.lake import tombstones_key
from binlake.merge import scd2
from binlake.merge.ddl import parse_alter
from binlake.merge.layout import LSN_COLUMN
from binlake.merge.sql import delta_ref
from binlake.merge.summary import DdlRecord, TableName
from binlake.merge.target import (
    DROPPED_LSN,
    SCHEMA_LSN,
    TRUNCATE_LSN,
    TargetTable,
    drop_columns,
    is_delta_table,
    rename_columns,
    set_properties,
)
from binlake.merge.txn import idempotent

if TYPE_CHECKING:
    from binlake.merge.apply import MergeContext

log = logging.getLogger(__name__)

_CREATE_OR_REPLACE = re.compile(r"^\s*CREATE\s+OR\s+REPLACE\s", re.IGNORECASE)


class DdlApplier:
    """Applies DDL records of one table (see the module docstring for what each does)."""

    def __init__(self, ctx: MergeContext, name: TableName) -> None:
        self.ctx = ctx
        self.name = name
        target = ctx.mapping.target_for(name.source_schema, name.source_table)
        self._column_name = target.column_name if target is not None else (lambda c: c)

    def apply(self, table: TargetTable, record: DdlRecord, scd2_table: bool, version: int) -> TargetTable:
        """Apply ``record``; returns the table as it is afterwards."""
        kind = record.kind.upper()
        if kind in ("TRUNCATE", "DROP") or (kind == "CREATE" and _CREATE_OR_REPLACE.match(record.ddl)):
            return self._wipe(table, record, kind == "DROP", scd2_table, version)
        if record.lsn <= table.schema_lsn:
            return table
        if kind == "ALTER":
            return self._alter(table, record)
        if kind == "RENAME":
            log.warning("%s: source table renamed (%s); the lake table stops receiving changes under this name — "
                        "run a full load for the new name", self.name.qualified, record.ddl)
        return table

    def _wipe(self, table: TargetTable, record: DdlRecord, dropped: bool, scd2_table: bool,
              version: int) -> TargetTable:
        spark = self.ctx.spark
        props = {TRUNCATE_LSN: str(record.lsn), SCHEMA_LSN: str(max(record.lsn, table.schema_lsn))}
        if dropped:
            props[DROPPED_LSN] = str(record.lsn)
        set_properties(spark, table.path, props)
        if scd2_table:
            when = (record.commit_ts or self.ctx.clock()).strftime("%Y-%m-%d %H:%M:%S")
            scd2.close_all(spark, table.path, record.lsn, when, self.ctx.app_id, version)
        else:
            with idempotent(spark, self.ctx.app_id, version):
                spark.sql(f"DELETE FROM {delta_ref(table.path)} WHERE {LSN_COLUMN} < {int(record.lsn)}")
        log.info("%s: %s at lsn %d applied", self.name.qualified, record.kind, record.lsn)
        return TargetTable.load(spark, table.path)

    def _alter(self, table: TargetTable, record: DdlRecord) -> TargetTable:
        spark = self.ctx.spark
        effect = parse_alter(record.ddl)
        renames = tuple(
            (old_t, new_t)
            for old, new in effect.renames
            if (old_t := self._column_name(old)) is not None and (new_t := self._column_name(new)) is not None
        )
        drops = tuple(d for name in effect.drops if (d := self._column_name(name)) is not None)
        if renames:
            rename_columns(spark, table, renames)
            self._rename_tombstone_keys(renames)
            table = TargetTable.load(spark, table.path)
        if drops:
            drop_columns(spark, table, drops)
        set_properties(spark, table.path, {SCHEMA_LSN: str(record.lsn)})
        if effect.new_table:
            log.warning("%s: source table renamed to %s; the lake table stops receiving changes under this name — "
                        "run a full load for the new name", self.name.qualified, effect.new_table)
        return TargetTable.load(spark, table.path)

    def _rename_tombstone_keys(self, renames: tuple[tuple[str, str], ...]) -> None:
        path = self.ctx.lake.uri(tombstones_key(self.name.schema, self.name.table))
        if is_delta_table(self.ctx.spark, path):
            rename_columns(self.ctx.spark, TargetTable.load(self.ctx.spark, path), renames)
