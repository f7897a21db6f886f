"""The MERGE that applies one step's reduced changes to a current-state lake table.

Clauses, in this order (Delta evaluates matched clauses in order, the first match wins):

1. matched, source is a delete, target row older (``t._binlake_lsn < s.lsn``) → DELETE;
2. matched, source is an upsert, target row older → UPDATE every column the change carries,
   plus ``_binlake_lsn`` / ``_binlake_commit_ts``;
3. not matched, source is an upsert → INSERT.

A change whose lsn is not above the row's ``_binlake_lsn`` does nothing, so replays and
duplicates are harmless and an older change never overwrites newer data. Upserts of keys whose
tombstone is at the same or a later lsn are removed before the MERGE
(:func:`binlake.merge.decode.without_tombstoned`), so a replayed insert never resurrects a row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession

from binlake.merge.decode import DELETE, LSN, OP, TS, UPSERT, has_flag
from binlake.merge.layout import COMMIT_TS_COLUMN, LSN_COLUMN, LayoutColumn
from binlake.merge.sql import quote
from binlake.merge.tombstones import key_condition
from binlake.merge.txn import idempotent


@dataclass(frozen=True)
class MergeCounts:
    """Rows the MERGE inserted, updated and deleted in the lake table."""

    inserted: int = 0
    updated: int = 0
    deleted: int = 0

    def __add__(self, other: MergeCounts) -> MergeCounts:
        return MergeCounts(self.inserted + other.inserted, self.updated + other.updated, self.deleted + other.deleted)

    @classmethod
    def from_result(cls, result: DataFrame | None) -> MergeCounts:
        rows = result.collect() if result is not None else []
        if not rows:
            return cls()
        row = rows[0].asDict()
        return cls(int(row.get("num_inserted_rows") or 0), int(row.get("num_updated_rows") or 0),
                   int(row.get("num_deleted_rows") or 0))


def value_expressions(columns: Sequence[LayoutColumn], optional: set[str], table_columns: Sequence[str],
                      for_update: bool) -> dict[str, str | Column]:
    """Assignments for the lake columns the change carries (``optional`` ones only where the
    row's layout had them; on update the old value stays otherwise)."""
    present = {name.lower() for name in table_columns}
    values: dict[str, str | Column] = {}
    for index, column in enumerate(columns):
        if column.name.lower() not in present:
            continue
        source = f"s.{quote(column.name)}"
        if column.name in optional:
            fallback = f"t.{quote(column.name)}" if for_update else "NULL"
            source = f"CASE WHEN s.{has_flag(index)} THEN {source} ELSE {fallback} END"
        values[quote(column.name)] = source
    values[LSN_COLUMN] = f"s.{LSN}"
    values[COMMIT_TS_COLUMN] = f"s.{TS}"
    return values


def merge_changes(spark: SparkSession, path: str, source: DataFrame, key: Sequence[str],
                  columns: Sequence[LayoutColumn], optional: set[str], table_columns: Sequence[str],
                  app_id: str, version: int, key_range: tuple[str, str] | None = None) -> MergeCounts:
    """Apply ``source`` (one row per key, from :func:`binlake.merge.decode.latest_per_key`) to the
    lake table at ``path`` in one MERGE committed with transaction ``(app_id, version)``.
    ``key_range`` (SQL literals of the lowest/highest key of a single-column key) narrows the
    target scan to the files that may hold those keys."""
    newer = f"coalesce(t.{LSN_COLUMN}, -1) < s.{LSN}"
    condition = key_condition(key)
    if key_range is not None:
        condition += f" AND t.{quote(key[0])} >= {key_range[0]} AND t.{quote(key[0])} <= {key_range[1]}"
    with idempotent(spark, app_id, version):
        result = (
            DeltaTable.forPath(spark, path).alias("t")
            .merge(source.alias("s"), condition)
            .whenMatchedDelete(condition=f"s.{OP} = '{DELETE}' AND {newer}")
            .whenMatchedUpdate(condition=f"s.{OP} = '{UPSERT}' AND {newer}",
                               set=value_expressions(columns, optional, table_columns, for_update=True))
            .whenNotMatchedInsert(condition=f"s.{OP} = '{UPSERT}'",
                                  values=value_expressions(columns, optional, table_columns, for_update=False))
            .execute()
        )
    return MergeCounts.from_result(result)
