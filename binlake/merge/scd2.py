"""SCD type 2 tables: full history instead of current state (config ``merge.scd2_tables``).

Each source change of a key becomes a *version* row; the table keeps every version with

* ``_binlake_valid_from`` — source commit time of the change that wrote the version;
* ``_binlake_valid_to`` — source commit time of the key's next change (NULL while current);
* ``_binlake_is_current`` — true for the key's live version (a deleted key has none);
* ``_binlake_lsn`` / ``_binlake_commit_ts`` — as in every lake table, for that version.

Per step, one MERGE: a *close* row per key ends the key's current version at the commit time of the
key's first change in the step (only if that version is older), and every upsert of the step is
inserted as a version (the last one current unless the key was deleted after it). Versions are
identified by ``(key, _binlake_lsn)`` and changes at or below the key's current version or
tombstone are dropped, so replays add nothing. Rows of the initial snapshot become the first
versions (valid from their snapshot time). TRUNCATE/DROP close every current version.
"""

from __future__ import annotations

from collections.abc import Sequence

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from binlake.merge.decode import DELETE, IDX, LSN, OP, TS, UPSERT
from binlake.merge.layout import (
    COMMIT_TS_COLUMN,
    IS_CURRENT_COLUMN,
    LSN_COLUMN,
    VALID_FROM_COLUMN,
    VALID_TO_COLUMN,
    LayoutColumn,
)
from binlake.merge.sql import col, delta_ref, quote
from binlake.merge.tombstones import key_condition
from binlake.merge.txn import idempotent
from binlake.merge.upsert import MergeCounts, value_expressions

KIND = "__bl_kind"
NEXT_TS = "__bl_next_ts"
IS_LAST = "__bl_last"
FLOOR = "__bl_floor"


def prepare(spark: SparkSession, path: str, present: Sequence[str]) -> None:
    """Add the history columns to a table loaded as current state; its rows become current
    versions valid from their ``_binlake_commit_ts``. Idempotent."""
    missing = [c for c in (VALID_FROM_COLUMN, VALID_TO_COLUMN, IS_CURRENT_COLUMN) if c not in present]
    if missing:
        types = {VALID_FROM_COLUMN: "TIMESTAMP", VALID_TO_COLUMN: "TIMESTAMP", IS_CURRENT_COLUMN: "BOOLEAN"}
        spark.sql(f"ALTER TABLE {delta_ref(path)} ADD COLUMNS ("
                  + ", ".join(f"{c} {types[c]}" for c in missing) + ")")
    spark.sql(f"UPDATE {delta_ref(path)} SET {VALID_FROM_COLUMN} = {COMMIT_TS_COLUMN}, {IS_CURRENT_COLUMN} = true "
              f"WHERE {IS_CURRENT_COLUMN} IS NULL")


def close_all(spark: SparkSession, path: str, lsn: int, when: str, app_id: str, version: int) -> None:
    """End every current version older than ``lsn`` at time ``when`` (TRUNCATE/DROP)."""
    with idempotent(spark, app_id, version):
        spark.sql(f"UPDATE {delta_ref(path)} SET {VALID_TO_COLUMN} = TIMESTAMP '{when}', {IS_CURRENT_COLUMN} = false "
                  f"WHERE {IS_CURRENT_COLUMN} AND {LSN_COLUMN} < {int(lsn)}")


def _versions(spark: SparkSession, path: str, decoded: DataFrame, key: Sequence[str],
              tombstones: DataFrame | None) -> DataFrame:
    """Changes above the key's current version and tombstone, one per (key, lsn), with the next
    change's time and whether each is the key's last change."""
    keys = [col(k) for k in key]
    others = [c for c in decoded.columns if c not in set(key) and c != LSN]
    unique = (decoded.groupBy(*keys, col(LSN)).agg(F.max_by(F.struct(*[col(c) for c in others]), col(IDX)).alias("r"))
              .select(*keys, col(LSN), "r.*"))
    floors = (spark.read.format("delta").load(path).filter(col(IS_CURRENT_COLUMN))
              .select(*keys, col(LSN_COLUMN).alias(FLOOR)))
    if tombstones is not None:
        floors = floors.unionByName(tombstones.select(*keys, col(LSN_COLUMN).alias(FLOOR)))
    floors = floors.groupBy(*keys).agg(F.max(FLOOR).alias(FLOOR))
    joined = unique.join(floors, [unique[quote(k)].eqNullSafe(floors[quote(k)]) for k in key], "left")
    joined = joined.select(unique["*"], floors[FLOOR])
    fresh = joined.filter(F.col(FLOOR).isNull() | (F.col(LSN) > F.col(FLOOR))).drop(FLOOR)
    order = Window.partitionBy(*keys).orderBy(col(LSN), col(IDX))
    return (fresh.withColumn(NEXT_TS, F.lead(col(TS)).over(order))
            .withColumn(IS_LAST, F.lead(col(LSN)).over(order).isNull())
            .withColumn("__bl_first", F.row_number().over(order) == 1))


def history_source(spark: SparkSession, path: str, decoded: DataFrame, key: Sequence[str],
                   tombstones: DataFrame | None) -> DataFrame:
    """The MERGE source for one step's decoded changes (not reduced), computed and cached now —
    before the step's deletes reach the tombstones, which would otherwise hide the step's own
    earlier versions. Unpersist it after :func:`merge_history`."""
    versions = _versions(spark, path, decoded, key, tombstones)
    closes = versions.filter("__bl_first").withColumn(KIND, F.lit("c"))
    inserts = versions.filter(F.col(OP) == UPSERT).withColumn(KIND, F.lit("v"))
    source = closes.unionByName(inserts).persist()
    source.count()
    return source


def merge_history(spark: SparkSession, path: str, source: DataFrame, key: Sequence[str],
                  columns: Sequence[LayoutColumn], optional: set[str], table_columns: Sequence[str],
                  app_id: str, version: int) -> MergeCounts:
    """Apply the :func:`history_source` of a step to the SCD2 table at ``path`` in one MERGE."""
    values = value_expressions(columns, optional, table_columns, for_update=False)
    values.update({VALID_FROM_COLUMN: f"s.{TS}", VALID_TO_COLUMN: f"s.{NEXT_TS}",
                   IS_CURRENT_COLUMN: f"s.{IS_LAST} AND s.{OP} <> '{DELETE}'"})
    condition = (f"{key_condition(key)} AND ("
                 f"(s.{KIND} = 'c' AND t.{IS_CURRENT_COLUMN} AND t.{LSN_COLUMN} < s.{LSN}) OR "
                 f"(s.{KIND} = 'v' AND t.{LSN_COLUMN} = s.{LSN}))")
    with idempotent(spark, app_id, version):
        result = (
            DeltaTable.forPath(spark, path).alias("t").merge(source.alias("s"), condition)
            .whenMatchedUpdate(condition=f"s.{KIND} = 'c'",
                               set={VALID_TO_COLUMN: f"s.{TS}", IS_CURRENT_COLUMN: "false"})
            .whenNotMatchedInsert(condition=f"s.{KIND} = 'v'", values=values)
            .execute()
        )
    return MergeCounts.from_result(result)
