"""The lake table a merge writes: its current columns and binlake's bookkeeping properties, and
the schema changes a DDL makes to it.

Bookkeeping lives in the Delta table's own properties, so it moves with the table:

* ``binlake.merge.schemaLsn`` — lsn of the last schema change applied (DDL or new row layout);
* ``binlake.merge.truncateLsn`` — lsn of the last TRUNCATE/DROP/CREATE OR REPLACE applied: every
  change at or below it is gone from the source and is never applied again;
* ``binlake.merge.droppedLsn`` — set when the source table was dropped (cleared by nothing: the
  lake table is kept, empty, with its history; a re-created source table merges into it again);
* ``binlake.merge.truncateBatch`` / ``binlake.merge.truncateLsnBefore`` — the batch (``<app id>/<batch
  id>``) that last moved ``truncateLsn``, and ``truncateLsn`` as it was before that batch: a replay
  of that batch plans from the floor it started with (:meth:`TargetTable.floor_before`), not from
  the one its own first attempt wrote. Written in the same commit as ``truncateLsn``.

Every change here is idempotent by state (a column already renamed, dropped or added is left as it
is), so re-applying it after a crash is harmless.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession

from binlake.merge.layout import Evolution, is_metadata_column, normalize_spark_type, plan_renames
from binlake.merge.sql import delta_ref, quote, sql_string

log = logging.getLogger(__name__)

SCHEMA_LSN = "binlake.merge.schemaLsn"
TRUNCATE_LSN = "binlake.merge.truncateLsn"
DROPPED_LSN = "binlake.merge.droppedLsn"
TRUNCATE_BATCH = "binlake.merge.truncateBatch"
TRUNCATE_LSN_BEFORE = "binlake.merge.truncateLsnBefore"
RETYPE_PREFIX = "__binlake_retype_"
TYPE_WIDENING = "delta.enableTypeWidening"


@dataclass(frozen=True)
class TargetTable:
    """A snapshot of a lake table's layout: source columns ``{name: spark type}`` (in order),
    binlake metadata columns present, and its properties."""

    path: str
    columns: dict[str, str]
    metadata_columns: frozenset[str]
    properties: dict[str, str]

    @classmethod
    def load(cls, spark: SparkSession, path: str) -> TargetTable:
        schema = spark.read.format("delta").load(path).schema
        columns = {f.name: normalize_spark_type(f.dataType.simpleString()) for f in schema.fields
                   if not is_metadata_column(f.name)}
        metadata = frozenset(f.name for f in schema.fields if is_metadata_column(f.name))
        rows = spark.sql(f"SHOW TBLPROPERTIES {delta_ref(path)}").collect()
        return cls(path, columns, metadata, {row["key"]: row["value"] for row in rows})

    def _lsn_property(self, key: str) -> int:
        value = self.properties.get(key)
        return int(value) if value not in (None, "") else -1

    @property
    def schema_lsn(self) -> int:
        return self._lsn_property(SCHEMA_LSN)

    @property
    def truncate_lsn(self) -> int:
        return self._lsn_property(TRUNCATE_LSN)

    @property
    def dropped_lsn(self) -> int:
        return self._lsn_property(DROPPED_LSN)

    def floor_before(self, batch: str) -> int:
        """``truncateLsn`` as it was before batch ``batch`` (``<app id>/<batch id>``) wrote to it."""
        if self.properties.get(TRUNCATE_BATCH) == batch:
            return self._lsn_property(TRUNCATE_LSN_BEFORE)
        return self.truncate_lsn

    def wipe_properties(self, lsn: int, batch: str, dropped_lsn: int | None) -> dict[str, str]:
        """The properties a wipe at ``lsn`` by batch ``batch`` sets (one commit, idempotent: the
        same values when set again by a replay of the batch)."""
        props = {TRUNCATE_LSN: str(max(lsn, self.truncate_lsn)), SCHEMA_LSN: str(max(lsn, self.schema_lsn)),
                 TRUNCATE_BATCH: batch, TRUNCATE_LSN_BEFORE: str(self.floor_before(batch))}
        if dropped_lsn is not None:
            props[DROPPED_LSN] = str(max(dropped_lsn, self.dropped_lsn))
        return props

    @property
    def source_columns(self) -> dict[str, str]:
        """Source columns without half-done type rewrites."""
        return {n: t for n, t in self.columns.items() if not n.startswith(RETYPE_PREFIX)}


def is_delta_table(spark: SparkSession, path: str) -> bool:
    return bool(DeltaTable.isDeltaTable(spark, path))


def set_properties(spark: SparkSession, path: str, properties: dict[str, str]) -> None:
    """Set table properties (one commit)."""
    pairs = ", ".join(f"{sql_string(k)} = {sql_string(v)}" for k, v in properties.items())
    spark.sql(f"ALTER TABLE {delta_ref(path)} SET TBLPROPERTIES ({pairs})")


def _alter(spark: SparkSession, path: str, clause: str) -> None:
    log.info("ALTER TABLE %s %s", path, clause)
    spark.sql(f"ALTER TABLE {delta_ref(path)} {clause}")


def rename_columns(spark: SparkSession, table: TargetTable, renames: tuple[tuple[str, str], ...]) -> int:
    """Apply the renames not done yet (old present, new absent); how many were applied."""
    todo = plan_renames(list(table.columns), renames)
    for old, new in todo:
        _alter(spark, table.path, f"RENAME COLUMN {quote(old)} TO {quote(new)}")
    return len(todo)


def drop_columns(spark: SparkSession, table: TargetTable, names: tuple[str, ...]) -> int:
    """Drop the source columns among ``names`` that the table still has."""
    present = {n.lower(): n for n in table.columns}
    todo = [present[n.lower()] for n in names if n.lower() in present and not is_metadata_column(n)]
    if todo:
        _alter(spark, table.path, "DROP COLUMNS (" + ", ".join(quote(n) for n in todo) + ")")
    return len(todo)


def add_columns(spark: SparkSession, table: TargetTable, columns: tuple[tuple[str, str], ...]) -> int:
    present = {n.lower() for n in table.columns} | {n.lower() for n in table.metadata_columns}
    todo = [(n, t) for n, t in columns if n.lower() not in present]
    if todo:
        _alter(spark, table.path, "ADD COLUMNS (" + ", ".join(f"{quote(n)} {t}" for n, t in todo) + ")")
    return len(todo)


def retype_column(spark: SparkSession, table: TargetTable, name: str, new_type: str) -> None:
    """Change a column's type: Delta type widening where it allows, else a rewrite that keeps the
    values (``CAST(old AS new)``) in a new column under the same name."""
    path = table.path
    try:
        if table.properties.get(TYPE_WIDENING) != "true":
            set_properties(spark, path, {TYPE_WIDENING: "true"})
        _alter(spark, path, f"ALTER COLUMN {quote(name)} TYPE {new_type}")
        return
    except AnalysisException as exc:
        log.info("type widening of %s.%s to %s not possible (%s); rewriting the column", path, name, new_type,
                 str(exc).splitlines()[0])
    _rewrite_column(spark, path, name, new_type)


def _rewrite_column(spark: SparkSession, path: str, name: str, new_type: str) -> None:
    tmp = RETYPE_PREFIX + name
    table = TargetTable.load(spark, path)
    if tmp not in table.columns:
        _alter(spark, path, f"ADD COLUMNS ({quote(tmp)} {new_type})")
    finish_rewrites(spark, TargetTable.load(spark, path), {tmp: new_type})


def finish_rewrites(spark: SparkSession, table: TargetTable, types: dict[str, str] | None = None) -> None:
    """Complete type rewrites a crash interrupted (temporary column present)."""
    for tmp, tmp_type in list(table.columns.items()):
        if not tmp.startswith(RETYPE_PREFIX):
            continue
        name = tmp.removeprefix(RETYPE_PREFIX)
        new_type = (types or {}).get(tmp, tmp_type)
        if name in table.columns:
            spark.sql(f"UPDATE {delta_ref(table.path)} SET {quote(tmp)} = CAST({quote(name)} AS {new_type})")
            _alter(spark, table.path, f"DROP COLUMN {quote(name)}")
        _alter(spark, table.path, f"RENAME COLUMN {quote(tmp)} TO {quote(name)}")


def apply_evolution(spark: SparkSession, table: TargetTable, evolution: Evolution) -> bool:
    """Make the table's columns follow ``evolution`` (renames, drops, adds, type changes in that
    order). Returns whether anything changed."""
    changed = rename_columns(spark, table, evolution.renames) > 0
    if changed:
        table = TargetTable.load(spark, table.path)
    changed |= drop_columns(spark, table, evolution.drops) > 0
    changed |= add_columns(spark, table, evolution.adds) > 0
    for name, _old, new_type in evolution.retypes:
        retype_column(spark, table, name, new_type)
        changed = True
    return changed
