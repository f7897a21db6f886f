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
from binlake.merge.reshape import rewrite_table
from binlake.merge.sql import delta_ref, quote, sql_string
from binlake.tablefeatures import (
    COLUMN_MAPPING_PROPERTIES,
    TYPE_WIDENING,
    TableFeatures,
    Way,
    column_mapping_warning,
    has_column_mapping,
    needs_column_mapping,
)

log = logging.getLogger(__name__)

SCHEMA_LSN = "binlake.merge.schemaLsn"
TRUNCATE_LSN = "binlake.merge.truncateLsn"
DROPPED_LSN = "binlake.merge.droppedLsn"
TRUNCATE_BATCH = "binlake.merge.truncateBatch"
TRUNCATE_LSN_BEFORE = "binlake.merge.truncateLsnBefore"
RETYPE_PREFIX = "__binlake_retype_"


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


def change_columns(spark: SparkSession, table: TargetTable, features: TableFeatures,
                   renames: tuple[tuple[str, str], ...] = (), drops: tuple[str, ...] = (),
                   retypes: tuple[tuple[str, str], ...] = ()) -> int:
    """Apply the renames (old present, new absent), drops (of source columns still present) and type
    changes ``(name after the renames, new type)`` not done yet; how many were applied.

    A table with column mapping changes in place (``ALTER TABLE … RENAME COLUMN / DROP COLUMNS``);
    one without is rewritten with its new columns in one commit (:mod:`binlake.merge.reshape`), or
    gets column mapping first (``lake.on_column_rename: column_mapping``, or a new name Delta refuses
    without it) — :meth:`TableFeatures.column_change`."""
    todo_renames = plan_renames(list(table.columns), renames)
    after = {n.lower(): n for n in _renamed(list(table.columns), todo_renames)}
    todo_drops = tuple(after.pop(n.lower()) for n in drops if n.lower() in after and not is_metadata_column(n))
    todo_retypes = tuple((after[n.lower()], t) for n, t in retypes if n.lower() in after)
    if not (todo_renames or todo_drops or todo_retypes):
        return 0
    way = features.column_change(table.properties, [new for _, new in todo_renames])
    if (todo_renames or todo_drops) and way is Way.REWRITE:
        names = spark.read.format("delta").load(table.path).schema.fieldNames()
        rewrite_table(spark, table.path, names, table.properties, todo_renames, todo_drops, dict(todo_retypes))
        return len(todo_renames) + len(todo_drops) + len(todo_retypes)
    if (todo_renames or todo_drops) and way is Way.ENABLE_MAPPING:
        table = enable_column_mapping(spark, table, f"column renames {list(todo_renames)}, drops {list(todo_drops)}")
    for old, new in todo_renames:
        _alter(spark, table.path, f"RENAME COLUMN {quote(old)} TO {quote(new)}")
    if todo_drops:
        _alter(spark, table.path, "DROP COLUMNS (" + ", ".join(quote(n) for n in todo_drops) + ")")
    for name, new_type in todo_retypes:  # without renames or drops, a type change needs no column mapping
        retype_column(spark, TargetTable.load(spark, table.path), name, new_type, features)
    return len(todo_renames) + len(todo_drops) + len(todo_retypes)


def _renamed(columns: list[str], renames: tuple[tuple[str, str], ...]) -> list[str]:
    for old, new in renames:
        columns = [new if c.lower() == old.lower() else c for c in columns]
    return columns


def enable_column_mapping(spark: SparkSession, table: TargetTable, reason: str) -> TargetTable:
    """Turn on column mapping (``name``) for ``table``, with the WARNING naming the readers that stop
    reading it, so that they refuse it (:data:`~binlake.tablefeatures.COLUMN_MAPPING_PROPERTIES`);
    returns the table as it is afterwards."""
    log.warning(column_mapping_warning(table.path, reason))
    set_properties(spark, table.path, dict(COLUMN_MAPPING_PROPERTIES))
    return TargetTable.load(spark, table.path)


def rename_columns(spark: SparkSession, table: TargetTable, renames: tuple[tuple[str, str], ...],
                   features: TableFeatures) -> int:
    """Apply the renames not done yet (old present, new absent); how many were applied."""
    return change_columns(spark, table, features, renames=renames)


def drop_columns(spark: SparkSession, table: TargetTable, names: tuple[str, ...], features: TableFeatures) -> int:
    """Drop the source columns among ``names`` that the table still has."""
    return change_columns(spark, table, features, drops=names)


def add_columns(spark: SparkSession, table: TargetTable, columns: tuple[tuple[str, str], ...]) -> int:
    """Add the columns the table does not have (column mapping turned on first, with a warning, for a
    name Delta refuses without it)."""
    present = {n.lower() for n in table.columns} | {n.lower() for n in table.metadata_columns}
    todo = [(n, t) for n, t in columns if n.lower() not in present]
    forcing = needs_column_mapping(n for n, _ in todo)
    if forcing and not has_column_mapping(table.properties):
        table = enable_column_mapping(spark, table, f"Delta refuses the new column name(s) {forcing} without it")
    if todo:
        _alter(spark, table.path, "ADD COLUMNS (" + ", ".join(f"{quote(n)} {t}" for n, t in todo) + ")")
    return len(todo)


def retype_column(spark: SparkSession, table: TargetTable, name: str, new_type: str, features: TableFeatures) -> None:
    """Change a column's type: Delta type widening where it allows and ``features`` may use it,
    else a rewrite that keeps the values (``CAST(old AS new)``) — the whole table in one commit
    without column mapping, else a new column under the same name."""
    path = table.path
    if features.may_widen_types(table.properties):
        try:
            if table.properties.get(TYPE_WIDENING) != "true":
                set_properties(spark, path, {TYPE_WIDENING: "true"})
            _alter(spark, path, f"ALTER COLUMN {quote(name)} TYPE {new_type}")
            return
        except AnalysisException as exc:
            log.info("type widening of %s.%s to %s not possible (%s); rewriting the column", path, name, new_type,
                     str(exc).splitlines()[0])
    table = TargetTable.load(spark, path)
    if has_column_mapping(table.properties):
        _rewrite_column(spark, path, name, new_type)
    else:
        names = spark.read.format("delta").load(path).schema.fieldNames()
        rewrite_table(spark, path, names, table.properties, retypes={name: new_type})


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


def apply_evolution(spark: SparkSession, table: TargetTable, evolution: Evolution, features: TableFeatures) -> bool:
    """Make the table's columns follow ``evolution`` (renames, drops, adds, type changes in that
    order; without column mapping, renames, drops and type changes in one rewrite, then the adds).
    Returns whether anything changed."""
    retypes = tuple((name, new_type) for name, _old, new_type in evolution.retypes)
    changed = change_columns(spark, table, features, evolution.renames, evolution.drops, retypes) > 0
    if changed:
        table = TargetTable.load(spark, table.path)
    return add_columns(spark, table, evolution.adds) > 0 or changed
