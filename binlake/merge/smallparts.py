"""Small table parts of a micro-batch applied on the driver with delta-rs: no Spark job per table.

A MERGE through Spark has a fixed cost of about a second (a dozen Spark jobs), whatever it
merges, so with N tables changing a batch costs N of them and freshness grows with N
(docs/merge.md, "Many tables"). Most parts of a steady-state batch are a few rows of one table.
For those, this module does what :func:`binlake.merge.apply.apply_table` does, in the driver's
Python process: the records are collected once per batch (:class:`SmallParts`, one Spark job for
every small part of the batch), each part is expanded, decoded (:mod:`binlake.merge.arrowdecode`)
and reduced to the latest change per key in Python, and committed with delta-rs
(:mod:`binlake.merge.deltars`) — the same tombstones first, the same MERGE clauses, the same
transaction ``(app id, version)`` as the Spark step it replaces (:func:`binlake.merge.plan.step_txn`),
so a replay skips it whichever of the two paths committed it.

A part qualifies (:func:`small_enough`, then :func:`apply_small_part`) only when it is exactly
what the Spark path would do in one rows step with nothing else to do: at most
``merge.small_part_records`` records and ``merge.small_part_bytes`` bytes; no DDL; one row layout,
with a primary key, equal to the lake table's columns and types (no schema evolution); not SCD2;
no DMS source filter or ``add-column``; no swap; a Delta
protocol delta-rs writes (:func:`binlake.merge.deltars.writable`); every value decodable. Anything
else — decided before any write — returns ``None`` and the part goes to Spark.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from binlake.lake import tombstones_key
from binlake.merge import deltars
from binlake.merge.arrowdecode import UndecodableValue, arrow_type, decodable, decode_texts
from binlake.merge.deltars import DeltaRsTable, MergeClauses, quote
from binlake.merge.layout import (
    COMMIT_TS_COLUMN,
    LSN_COLUMN,
    Layout,
    is_metadata_column,
    normalize_spark_type,
    plan_evolution,
)
from binlake.merge.plan import RowsStep, plan_steps, step_txn
from binlake.merge.summary import TableChanges, TableName
from binlake.merge.swaps import hands_over
from binlake.merge.target import RETYPE_PREFIX, TargetTable
from binlake.snapshot.delta import CHANGE_DATA_FEED, change_data_feed_blockers
from binlake.tablefeatures import internal_table_properties

if TYPE_CHECKING:
    from binlake.merge.apply import MergeContext

log = logging.getLogger(__name__)

OP, LSN, TS = "__bl_op", "__bl_lsn", "__bl_ts"
UPSERT, DELETE = "U", "D"
_RECORD_COLUMNS = ["source_schema", "source_table", "schema", "table", "lsn", "row_idx", "commit_ts", "op",
                   "before", "after"]


@dataclass(frozen=True)
class SmallPartLimits:
    """``merge.small_part_records`` / ``merge.small_part_bytes`` (records 0: the path is off)."""

    records: int
    bytes: int


def small_enough(changes: TableChanges, limits: SmallPartLimits) -> bool:
    """From the batch summary alone: no DDL, one row layout, within the limits."""
    return (0 < changes.rows <= limits.records and changes.bytes <= limits.bytes and not changes.ddls
            and len({group.columns for group in changes.groups}) == 1)


class SmallParts:
    """The change-log records of a batch's small parts, collected to the driver as Arrow."""

    def __init__(self, by_table: dict[TableName, pa.Table]) -> None:
        self._by_table = by_table

    @classmethod
    def collect(cls, records: DataFrame, names: Sequence[TableName]) -> SmallParts:
        """One Spark job: the records of the tables ``names``, grouped by table."""
        if not names:
            return cls({})
        wanted = F.struct("source_schema", "source_table", "schema", "table").isin(
            *[F.struct(F.lit(n.source_schema), F.lit(n.source_table), F.lit(n.schema), F.lit(n.table))
              for n in names])
        return cls.of(records.where(wanted & (F.col("op") != "DDL")).select(*_RECORD_COLUMNS).toArrow(), names)

    @classmethod
    def from_local(cls, records: pa.Table, names: Sequence[TableName]) -> SmallParts:
        """The same from a batch already on the driver (:mod:`binlake.merge.localbatch`): no Spark job."""
        rows = records.filter(pc.not_equal(records["op"], "DDL")).select(_RECORD_COLUMNS)
        return cls.of(rows, names)

    @classmethod
    def of(cls, rows: pa.Table, names: Sequence[TableName]) -> SmallParts:
        """``rows`` (the record columns, no DDL) split by table, for the tables ``names``."""
        by_table: dict[TableName, pa.Table] = {}
        for name in names:
            mask = pc.and_(pc.and_(pc.equal(rows["source_schema"], name.source_schema),
                                   pc.equal(rows["source_table"], name.source_table)),
                           pc.and_(pc.equal(rows["schema"], name.schema), pc.equal(rows["table"], name.table)))
            by_table[name] = rows.filter(mask)
        return cls(by_table)

    def rows_of(self, name: TableName) -> pa.Table | None:
        return self._by_table.get(name)


@dataclass(frozen=True)
class SmallResult:
    """What a small part did (the caller builds the table's metrics from it)."""

    inserted: int
    updated: int
    deleted: int


@dataclass(frozen=True)
class _Qualified:
    """A part the driver-side merge applies: its table, the one rows step, its layout."""

    table: DeltaRsTable
    target: TargetTable
    step: RowsStep
    layout: Layout
    names: dict[str, str]  # layout column → the lake table's column of that name (compared case-insensitively)


def apply_small_part(ctx: MergeContext, batch_id: int, changes: TableChanges, rows: pa.Table, snapshot_lsn: int,
                     batch: str) -> SmallResult | None:
    """Apply the part with delta-rs, or ``None`` (nothing written) when it does not qualify. The
    step is planned as :func:`binlake.merge.apply.plan_table` plans it (``batch``: the batch tag)."""
    name = changes.name
    part = _qualify(ctx, changes, snapshot_lsn, batch)
    if isinstance(part, str):
        log.debug("%s: part merged by Spark: %s", name.qualified, part)
        return None
    table, target, step, layout, names = part.table, part.target, part.step, part.layout, part.names
    txn = step_txn(ctx.app_id, batch_id, 0)
    if table.committed_version(txn.app_id) >= txn.version:
        return SmallResult(0, 0, 0)
    try:
        images = _latest_images(rows, step, layout, names)
    except UndecodableValue as exc:
        log.info("%s: part merged by Spark: %s", name.qualified, exc)
        return None
    tombstones = _tombstones(ctx, name, layout, target, names, create=images.deletes > 0)
    if images.deletes and tombstones is None:
        log.debug("%s: part merged by Spark: its tombstone table is not one delta-rs writes", name.qualified)
        return None
    started = time.monotonic()
    source = _without_tombstoned(images, tombstones, layout, names)
    if images.deletes and tombstones is not None:
        key_names = [n for n in tombstones.columns if not is_metadata_column(n)]
        deltars.append(tombstones, images.tombstone_rows(layout, names, key_names))
    metrics = deltars.merge_rows(table, source, _clauses(layout, names), txn.app_id, txn.version)
    if ctx.after_commit is not None:
        ctx.after_commit(target.path, txn.version)
    log.debug("%s: %d change(s) merged by delta-rs in %.3f s", name.qualified, source.num_rows,
              time.monotonic() - started)
    return SmallResult(int(metrics.get("num_target_rows_inserted", 0)), int(metrics.get("num_target_rows_updated", 0)),
                       int(metrics.get("num_target_rows_deleted", 0)))


def _qualify(ctx: MergeContext, changes: TableChanges, snapshot_lsn: int, batch: str) -> _Qualified | str:
    """The part's table and step when the driver-side merge applies it, else why not (module doc)."""
    name = changes.name
    if name.qualified in ctx.scd2_tables:
        return "SCD2 table"
    if hands_over(ctx.swaps, (name.schema, name.table)):
        return "a swap reads the table"
    rule = ctx.mapping.target_for(name.source_schema, name.source_table)
    if rule is not None and (rule.row_filter is not None or rule.added_columns):
        return "source filter or add-column rule"
    path = ctx.lake.uri(_table_key(name))
    table = deltars.open_table(path, ctx.lake.s3_config)
    if table is None:
        return "no Delta table"
    if not table.writable:
        return f"delta-rs does not write its {table.why_not}"
    target = _target(path, table)
    if any(c.startswith(RETYPE_PREFIX) for c in target.columns):
        return "a type rewrite is half done"
    steps = plan_steps(changes, max(snapshot_lsn, target.floor_before(batch)), False, ctx.bounds)
    if len(steps) != 1 or not isinstance(steps[0], RowsStep):
        return f"{len(steps)} steps"
    layout = Layout.parse(steps[0].latest.columns)
    if not layout.has_primary_key:
        return "no primary key"
    names = _fit(layout, target, steps[0])
    return names if isinstance(names, str) else _Qualified(table, target, steps[0], layout, names)


def _table_key(name: TableName) -> str:
    from binlake.lake import table_key

    return table_key(name.schema, name.table)


def _target(path: str, table: DeltaRsTable) -> TargetTable:
    columns = {n: normalize_spark_type(t) for n, t in table.columns.items() if not is_metadata_column(n)}
    metadata = frozenset(n for n in table.columns if is_metadata_column(n))
    return TargetTable(path, columns, metadata, table.properties)


def _lake_name(target: TargetTable, column: str) -> str | None:
    lowered = column.lower()
    return next((n for n in target.columns if n.lower() == lowered), None)


def _fit(layout: Layout, target: TargetTable, step: RowsStep) -> dict[str, str] | str:
    """The lake column of each layout column when the layout is the lake table's; else why not (a
    schema change pending, a type this path does not decode, binlake's columns missing, a change
    data feed it cannot write)."""
    if step.latest.max_lsn > target.schema_lsn and not plan_evolution(target.source_columns, layout).empty:
        return "schema change"
    names = {}
    for column in layout.columns:
        lake = _lake_name(target, column.name)
        if lake is None or target.columns[lake] != column.spark_type:
            return f"column {column.name!r} is not {column.spark_type} in the lake"
        if not decodable(column.spark_type):
            return f"type {column.spark_type}"
        names[column.name] = lake
    if not {LSN_COLUMN, COMMIT_TS_COLUMN} <= target.metadata_columns:
        return "binlake columns missing"
    feed_on = target.properties.get(CHANGE_DATA_FEED, "false").lower() == "true"
    if feed_on and change_data_feed_blockers(list(target.columns)):
        return "change data feed with a back-quoted column"
    return names


@dataclass
class _Images:
    """The latest change per key of a step: parallel lists, op ``U``/``D``."""

    columns: dict[str, pa.Array]  # lake name → values (deletes: NULL outside the key)
    ops: list[str]
    lsns: list[int]
    stamps: pa.Array

    @property
    def deletes(self) -> int:
        return self.ops.count(DELETE)

    def table(self) -> pa.Table:
        return pa.table({**self.columns, OP: pa.array(self.ops, pa.string()), LSN: pa.array(self.lsns, pa.int64()),
                         TS: self.stamps})

    def tombstone_rows(self, layout: Layout, names: dict[str, str], tombstone_names: Sequence[str]) -> pa.Table:
        """The deletes as tombstones, the key under the tombstone table's columns ``tombstone_names``."""
        keep = pa.array([op == DELETE for op in self.ops])
        keys = {name: self.columns[names[k]].filter(keep)
                for name, k in zip(tombstone_names, layout.key_columns, strict=True)}
        return pa.table({**keys, LSN_COLUMN: pa.array(self.lsns, pa.int64()).filter(keep),
                         COMMIT_TS_COLUMN: self.stamps.filter(keep)})


def _latest_images(rows: pa.Table, step: RowsStep, layout: Layout, names: dict[str, str]) -> _Images:
    """Expand the step's records into key images (:func:`binlake.merge.decode.expand`), decode them
    and keep, per key, the one with the greatest ``(lsn, row_idx)``
    (:func:`binlake.merge.decode.latest_per_key`)."""
    lsn = rows["lsn"]
    mask = pc.greater(lsn, step.after_lsn)
    if step.before_lsn is not None:
        mask = pc.and_(mask, pc.less(lsn, step.before_lsn))
    part = rows.filter(mask)
    key = layout.key_columns
    images: list[tuple[str, dict[str, str | None]]] = []
    order: list[tuple[int, int]] = []
    stamps: list[object] = []
    for record_lsn, idx, ts, op, before, after in zip(*(part[c].to_pylist() for c in (
            "lsn", "row_idx", "commit_ts", "op", "before", "after")), strict=True):
        if (op in ("I", "U") and after is None) or (op == "D" and before is None):
            raise UndecodableValue(f"a {op} record at lsn {record_lsn} lacks its row image")
        after_image = json.loads(after) if op in ("I", "U") else None
        if after_image is not None:
            images.append((UPSERT, after_image))
            order.append((record_lsn, idx))
            stamps.append(ts)
        if op == "D" or (op == "U" and before is not None):
            before_image = json.loads(before) if before is not None else {}
            before_key = {k: _text(before_image.get(k)) for k in key}
            if op == "D" or after_image is None or any(before_key[k] != _text(after_image.get(k)) for k in key):
                images.append((DELETE, before_key))
                order.append((record_lsn, idx))
                stamps.append(ts)
    decoded = {}
    for column in layout.columns:
        texts = [_text(image.get(column.name)) for _, image in images]
        decoded[names[column.name]] = decode_texts(column.spark_type, texts)
    key_lake = [names[k] for k in key]
    key_values = list(zip(*(decoded[k].to_pylist() for k in key_lake), strict=True)) if images else []
    winner: dict[tuple[object, ...], int] = {}
    for index, key_value in enumerate(key_values):
        best = winner.get(key_value)
        if best is None or order[index] > order[best]:
            winner[key_value] = index
    chosen = pa.array(sorted(winner.values()), pa.int64())
    columns = {n: pc.take(values, chosen) for n, values in decoded.items()}
    ops = [images[i][0] for i in chosen.to_pylist()]
    lsns = [order[i][0] for i in chosen.to_pylist()]
    stamp_array = pc.take(pa.array(stamps, pa.timestamp("us", tz="UTC")), chosen)
    return _Images(columns, ops, lsns, stamp_array)


def _text(value: object) -> str | None:
    """An image's value as the canonical string Spark's ``from_json`` gives (strings stay; others as JSON)."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _tombstones(ctx: MergeContext, name: TableName, layout: Layout, target: TargetTable, names: dict[str, str],
                create: bool) -> DeltaRsTable | None:
    """The table's tombstone table when it exists with exactly the key's columns and types and
    delta-rs writes it; created (as :func:`binlake.merge.tombstones.ensure_table` would) when there
    is none, ``create`` is set and its names need no column mapping; else ``None`` (Spark creates,
    re-creates or writes it)."""
    uri = ctx.lake.uri(tombstones_key(name.schema, name.table))
    keys = [(names[k], target.columns[names[k]]) for k in layout.key_columns]
    tombs = deltars.open_table(uri, ctx.lake.s3_config)
    if tombs is None:
        if not create or internal_table_properties([k for k, _ in keys]):
            return None
        schema = pa.schema([*[(k, arrow_type(t)) for k, t in keys], (LSN_COLUMN, pa.int64()),
                            (COMMIT_TS_COLUMN, pa.timestamp("us", tz="UTC"))])
        tombs = deltars.create_table(uri, ctx.lake.s3_config, schema)
    if not tombs.writable:
        return None
    found = [(n.lower(), normalize_spark_type(t)) for n, t in tombs.columns.items() if not is_metadata_column(n)]
    return tombs if found == [(k.lower(), t) for k, t in keys] else None


def _without_tombstoned(images: _Images, tombstones: DeltaRsTable | None, layout: Layout,
                        names: dict[str, str]) -> pa.Table:
    """The images without upserts whose key has a tombstone at the same or a later lsn
    (:func:`binlake.merge.tombstones.without_tombstoned`)."""
    source = images.table()
    if tombstones is None or images.deletes == len(images.ops):
        return source
    tomb_names = [n for n in tombstones.columns if not is_metadata_column(n)]
    lake_keys = [names[k] for k in layout.key_columns]
    first = source[lake_keys[0]]
    values = pc.unique(pc.drop_null(first))
    condition = pc.field(tomb_names[0]).isin(values)
    if first.null_count:
        condition = condition | pc.field(tomb_names[0]).is_null()
    found = deltars.read_columns(tombstones, [*tomb_names, LSN_COLUMN], condition)
    newest: dict[tuple[object, ...], int] = {}
    for *key_value, tomb_lsn in zip(*(found[c].to_pylist() for c in [*tomb_names, LSN_COLUMN]), strict=True):
        token = tuple(key_value)
        newest[token] = max(newest.get(token, tomb_lsn), tomb_lsn)
    if not newest:
        return source
    key_rows = zip(*(source[k].to_pylist() for k in lake_keys), strict=True)
    keep = [not (op == UPSERT and newest.get(tuple(k), -1) >= lsn)
            for k, op, lsn in zip(key_rows, images.ops, images.lsns, strict=True)]
    return source.filter(pa.array(keep))


def _clauses(layout: Layout, names: dict[str, str]) -> MergeClauses:
    """The clauses of :func:`binlake.merge.upsert.merge_changes`, in DataFusion SQL."""
    key = [names[k] for k in layout.key_columns]
    # each term in parentheses: DataFusion's parser binds AND tighter than IS NOT DISTINCT FROM
    on = " AND ".join(f"(t.{quote(k)} IS NOT DISTINCT FROM s.{quote(k)})" for k in key)
    newer = f"coalesce(t.{quote(LSN_COLUMN)}, -1) < s.{quote(LSN)}"
    assignments = {quote(names[c.name]): f"s.{quote(names[c.name])}" for c in layout.columns}
    assignments[quote(LSN_COLUMN)] = f"s.{quote(LSN)}"
    assignments[quote(COMMIT_TS_COLUMN)] = f"s.{quote(TS)}"
    return MergeClauses(on=on, delete_when=f"s.{quote(OP)} = '{DELETE}' AND {newer}",
                        update_when=f"s.{quote(OP)} = '{UPSERT}' AND {newer}",
                        insert_when=f"s.{quote(OP)} = '{UPSERT}'", assignments=assignments)


__all__ = ["SmallPartLimits", "SmallParts", "SmallResult", "apply_small_part", "arrow_type", "small_enough"]
