"""Tombstones: the keys a table deleted, and at which lsn — so a replayed older insert cannot bring a
deleted row back.

One Delta table per lake table at ``<root>/_binlake/tombstones/<schema>/<table>``: the key columns
(same names and types as the lake table), ``_binlake_lsn`` (lsn of the delete) and
``_binlake_commit_ts`` (its source commit time). Each step appends its deletes (one commit, before
the step's MERGE); before the upsert MERGE, every upsert whose lsn is at or below a tombstone of its key is
dropped (:func:`without_tombstoned`).

Pruning (:func:`prune`, run by the maintenance step): a tombstone only matters while a change
older than it can still arrive. Such changes come from (a) the capture re-writing records after a
crash — always newer than the capture's checkpoint at that time, so within minutes — and (b) a
table joining late and catching up from its snapshot lsn (see :mod:`binlake.merge.handoff`), which
only happens for tables not merged yet. A tombstone is therefore pruned when it is older than the
retention (``merge.vacuum_retention_hours``, counted on the source commit time) **and** its lsn is
below the capture checkpoint's lsn. A key whose lake row came back with a newer lsn does not need
its tombstone either; it is removed at the same time.

Files: these rules decide which *rows* may go. The table's files — one per append, and those a
prune rewrites — are compacted and VACUUMed every maintenance round with the short retention of
binlake's own tables (:data:`binlake.merge.deltars.INTERNAL_RETENTION`), which keeps every row and
deletes only files no version of the last 10 minutes references.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from functools import reduce

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from binlake.merge.decode import DELETE, LSN, OP, TS
from binlake.merge.layout import COMMIT_TS_COLUMN, LSN_COLUMN, is_metadata_column
from binlake.merge.sql import col, delta_ref, quote
from binlake.merge.target import is_delta_table
from binlake.tablefeatures import internal_table_properties


def key_condition(key: Sequence[str], left: str = "t", right: str = "s") -> str:
    """``t.k1 <=> s.k1 AND …``: null-safe, because a key can be NULL in the lake even where the
    source forbids it (a zero DATE/DATETIME in a primary key is NULL by the canonical mapping), and
    tables without a primary key are keyed by all their (nullable) columns."""
    return " AND ".join(f"{left}.{quote(k)} <=> {right}.{quote(k)}" for k in key)


def read(spark: SparkSession, path: str, key: Sequence[str]) -> DataFrame | None:
    """The tombstones at ``path`` when the table exists with exactly these key columns."""
    if not is_delta_table(spark, path):
        return None
    frame = spark.read.format("delta").load(path)
    names = [f.name for f in frame.schema.fields if not is_metadata_column(f.name)]
    if [n.lower() for n in names] != [k.lower() for k in key]:
        return None
    return frame


def ensure_table(spark: SparkSession, path: str, key_fields: Sequence[tuple[str, str]]) -> None:
    """Create the tombstone table, or re-create it empty when the key changed (a primary-key change
    of the source table makes the old tombstones meaningless)."""
    if is_delta_table(spark, path):
        existing = [f for f in spark.read.format("delta").load(path).schema.fields if not is_metadata_column(f.name)]
        if [(f.name.lower(), f.dataType.simpleString()) for f in existing] == [(n.lower(), t) for n, t in key_fields]:
            return
        mode = "CREATE OR REPLACE TABLE"
    else:
        mode = "CREATE TABLE IF NOT EXISTS"
    columns = ", ".join(f"{quote(n)} {t}" for n, t in key_fields)
    props = ", ".join(f"'{k}' = '{v}'" for k, v in internal_table_properties([n for n, _ in key_fields]).items())
    spark.sql(f"{mode} {delta_ref(path)} ({columns}, {LSN_COLUMN} BIGINT, {COMMIT_TS_COLUMN} TIMESTAMP) "
              f"USING delta" + (f" TBLPROPERTIES ({props})" if props else ""))


def record_deletes(spark: SparkSession, path: str, reduced: DataFrame, key: Sequence[str]) -> None:
    """Append the deletes of ``reduced`` to the tombstones in one commit. An append, not a MERGE,
    and without a transaction id: a key may have several tombstones (the greatest lsn counts,
    :func:`prune` removes the others), so appending again after a crash is harmless — and a blind
    append is much cheaper than one carrying a transaction id. It runs before the step's MERGE, so
    a committed step always has its tombstones."""
    deletes = reduced.filter(F.col(OP) == DELETE).select(
        *[col(k) for k in key], F.col(LSN).alias(LSN_COLUMN), F.col(TS).alias(COMMIT_TS_COLUMN))
    deletes.write.format("delta").mode("append").save(path)


def without_tombstoned(reduced: DataFrame, tombstones: DataFrame | None, key: Sequence[str]) -> DataFrame:
    """Drop upserts of ``reduced`` whose key has a tombstone at the same or a later lsn (replays of
    older inserts/updates of a row deleted since)."""
    if tombstones is None:
        return reduced
    aliases = [f"__bl_tk{i}" for i in range(len(key))]
    tomb = tombstones.select(*[col(k).alias(a) for k, a in zip(key, aliases, strict=True)],
                             col(LSN_COLUMN).alias("__bl_tlsn"))
    condition = reduce(lambda x, y: x & y,
                       [reduced[quote(k)].eqNullSafe(tomb[a]) for k, a in zip(key, aliases, strict=True)],
                       (reduced[OP] != DELETE) & (tomb["__bl_tlsn"] >= reduced[LSN]))
    return reduced.join(tomb, condition, "left_anti")


def excluding_own(tombstones: DataFrame, reduced: DataFrame, key: Sequence[str]) -> DataFrame:
    """``tombstones`` without those equal (key and lsn) to a delete of ``reduced``: the tombstones
    as the step saw them before appending its own, on every attempt. (Without this, a replay of a
    step whose append was committed before a crash would see its own deletes and hide the step's
    earlier versions of those keys from an SCD2 MERGE.) An identical tombstone from an earlier
    batch is left out too, which is harmless: the step's delete itself carries it."""
    aliases = [f"__bl_ok{i}" for i in range(len(key))]
    own = reduced.filter(F.col(OP) == DELETE).select(
        *[col(k).alias(a) for k, a in zip(key, aliases, strict=True)], F.col(LSN).alias("__bl_olsn"))
    condition = reduce(lambda x, y: x & y,
                       [tombstones[quote(k)].eqNullSafe(own[a]) for k, a in zip(key, aliases, strict=True)],
                       tombstones[LSN_COLUMN] == own["__bl_olsn"])
    return tombstones.join(own, condition, "left_anti")


def prune(spark: SparkSession, path: str, target_path: str, key: Sequence[str], below_lsn: int,
          older_than: datetime.datetime) -> int:
    """Delete tombstones with lsn < ``below_lsn`` and commit time < ``older_than``, those superseded
    by a newer tombstone of the same key, and those whose key lives again in the lake table with a
    newer lsn. Returns how many were deleted."""
    if not is_delta_table(spark, path):
        return 0
    stamp = older_than.strftime("%Y-%m-%d %H:%M:%S")
    tombs = DeltaTable.forPath(spark, path)
    deleted = _count(spark.sql(f"DELETE FROM {delta_ref(path)} WHERE {LSN_COLUMN} < {int(below_lsn)} AND "
                               f"{COMMIT_TS_COLUMN} < TIMESTAMP '{stamp}'"))
    keys = [col(k) for k in key]
    newest = spark.read.format("delta").load(path).select(*keys, col(LSN_COLUMN))
    live = spark.read.format("delta").load(target_path).select(*keys, col(LSN_COLUMN))
    newer = newest.unionByName(live).groupBy(*keys).agg(F.max(col(LSN_COLUMN)).alias("__bl_l"))
    merged = (tombs.alias("t").merge(newer.alias("s"), key_condition(key))
              .whenMatchedDelete(condition=f"t.{LSN_COLUMN} < s.__bl_l").execute())
    return deleted + _count(merged, "num_deleted_rows")


def _count(result: DataFrame | None, column: str = "num_affected_rows") -> int:
    if result is None:
        return 0
    rows = result.collect()
    return int(rows[0][column] or 0) if rows and column in rows[0].asDict() else 0
