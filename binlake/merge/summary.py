"""What a micro-batch holds, per table, collected to the driver in one small Spark job.

:func:`summarize` groups the batch's records by table, by row layout (``columns``) and by lsn
*bucket* (:data:`BUCKET_BITS`: one bucket per MiB of binlog), and returns the DDL control records
themselves; the plan (:mod:`binlake.merge.plan`) is built from this summary without looking at the
rows again. The buckets are what lets the plan cut a large table part into bounded steps
(records and bytes, :class:`~binlake.merge.bounds.Bounds`) between lsns, even inside one change-log
file: the summary has one row per bucket, so its size grows with the binlog bytes of the batch
(~1 row per MiB), never with the number of records.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from binlake.capture.ddl import normalize

OP_DDL = "DDL"
BUCKET_BITS = 20
"""Records are counted per ``lsn >> BUCKET_BITS``: within a binlog file (the low 32 bits of an lsn
are the position) one bucket is 1 MiB of binlog, which holds at most a few MiB of row images and
a few tens of thousands of records, so a cut between buckets bounds any step closely."""
OP_DELETE = "D"
_CREATE_TABLE = re.compile(
    r"^\s*CREATE\s+(?P<replace>OR\s+REPLACE\s+)?(?P<temporary>TEMPORARY\s+)?TABLE\s+(?P<if>IF\s+NOT\s+EXISTS\s+)?",
    re.IGNORECASE)


@dataclass(frozen=True, order=True)
class TableName:
    """A table as the change log names it: source names and target (lake) names."""

    source_schema: str
    source_table: str
    schema: str
    table: str

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass(frozen=True, order=True)
class SwapSource:
    """Where a swap takes the table's new content from: lake table ``origin`` (target schema,
    table) at Delta version ``version`` (:mod:`binlake.merge.swaps`)."""

    origin: tuple[str, str]
    version: int


@dataclass(frozen=True)
class DdlRecord:
    """One DDL control record."""

    lsn: int
    kind: str
    ddl: str
    commit_ts: datetime.datetime | None = None
    gone: bool = False  # the statement takes the table away under this lake name (RENAME … TO elsewhere)
    swap: SwapSource | None = None  # the statement makes the table another lake table's content (a swap)

    @property
    def creates(self) -> bool:
        """Does the statement create the (non-temporary) table: ``CREATE [OR REPLACE] TABLE [IF NOT
        EXISTS]``, plain, ``… LIKE`` or ``… SELECT``?"""
        match = _CREATE_TABLE.match(normalize(self.ddl)) if self.kind.upper() == "CREATE" else None
        return match is not None and not match["temporary"]

    @property
    def certainly_new(self) -> bool:
        """Is the created table certainly new and empty at this position? Not for ``IF NOT EXISTS``:
        MySQL logs that statement even when the table already exists (MariaDB 10.11 does not)."""
        match = _CREATE_TABLE.match(normalize(self.ddl)) if self.creates else None
        return match is not None and not match["if"]

    @property
    def wipes(self) -> bool:
        """Does the statement empty the table under this name: TRUNCATE, DROP TABLE, a CREATE that
        is certainly new (a logged plain ``CREATE TABLE`` succeeded, so no table of that name existed
        just before: whatever the lake table holds older than it is gone), or a RENAME that takes the
        table away (:attr:`gone`), or one that swaps another lake table's content in (:attr:`swap`:
        the old rows are replaced)?"""
        return self.kind.upper() in ("TRUNCATE", "DROP") or self.certainly_new or self.gone or self.swap is not None


@dataclass(frozen=True)
class LayoutGroup:
    """Row records of one table with one layout (in one lsn bucket): lsn range, counts, bytes of
    row images (``before`` + ``after``), commit-time range."""

    columns: str
    min_lsn: int
    max_lsn: int
    rows: int
    deletes: int = 0
    min_commit_ts: datetime.datetime | None = None
    max_commit_ts: datetime.datetime | None = None
    bytes: int = 0


@dataclass(frozen=True)
class TableChanges:
    """Everything the batch holds for one table (DDL records sorted by lsn, without duplicates)."""

    name: TableName
    ddls: tuple[DdlRecord, ...] = ()
    groups: tuple[LayoutGroup, ...] = field(default=())

    @property
    def rows(self) -> int:
        return sum(group.rows for group in self.groups)

    @property
    def bytes(self) -> int:
        return sum(group.bytes for group in self.groups)

    @property
    def max_lsn(self) -> int:
        return max([g.max_lsn for g in self.groups] + [d.lsn for d in self.ddls], default=0)

    @property
    def max_commit_ts(self) -> datetime.datetime | None:
        return max(self._stamps([g.max_commit_ts for g in self.groups]), default=None)

    @property
    def min_commit_ts(self) -> datetime.datetime | None:
        return min(self._stamps([g.min_commit_ts for g in self.groups]), default=None)

    def _stamps(self, groups: list[datetime.datetime | None]) -> list[datetime.datetime]:
        return [t for t in [*groups, *(d.commit_ts for d in self.ddls)] if t is not None]

    def straddling(self) -> bool:
        """Does some layout group span a DDL (so it must be split per DDL segment)?"""
        return any(g.min_lsn < d.lsn < g.max_lsn for g in self.groups for d in self.ddls)


_NAME_COLUMNS = ("source_schema", "source_table", "schema", "table")


class GroupedRow(Protocol):
    """One grouped row of a summary by column name (a Spark ``Row`` or a ``dict``)."""

    def __getitem__(self, name: str, /) -> Any: ...


def _bucket() -> Column:
    return F.shiftright(F.col("lsn"), BUCKET_BITS).alias("bucket")


def _group_aggregates() -> list[Column]:
    """What a layout group records: lsn range, row and delete counts, commit time range, bytes."""
    images = F.coalesce(F.octet_length("before"), F.lit(0)) + F.coalesce(F.octet_length("after"), F.lit(0))
    return [
        F.min("lsn").alias("min_lsn"),
        F.max("lsn").alias("max_lsn"),
        F.count(F.lit(1)).alias("rows"),
        F.sum((F.col("op") == OP_DELETE).cast("long")).alias("deletes"),
        F.min("commit_ts").alias("min_ts"),
        F.max("commit_ts").alias("max_ts"),
        F.sum(images.cast("long")).alias("bytes"),
    ]


def _layout_group(row: GroupedRow) -> LayoutGroup:
    return LayoutGroup(row["columns"], row["min_lsn"], row["max_lsn"], row["rows"], row["deletes"] or 0,
                       row["min_ts"], row["max_ts"], row["bytes"] or 0)


def summarize(batch: DataFrame) -> list[TableChanges]:
    """One :class:`TableChanges` per table in ``batch`` (a DataFrame of change-log records)."""
    is_ddl = F.col("op") == OP_DDL
    rows = (
        batch.groupBy(
            *_NAME_COLUMNS,
            "columns",
            _bucket(),
            F.when(is_ddl, F.col("lsn")).alias("ddl_lsn"),
            F.when(is_ddl, F.col("ddl_kind")).alias("ddl_kind"),
            F.when(is_ddl, F.col("ddl")).alias("ddl"),
        )
        .agg(*_group_aggregates())
        .collect()
    )
    return changes_of(rows)


def changes_of(rows: Iterable[GroupedRow]) -> list[TableChanges]:
    """The :class:`TableChanges` of the grouped rows :func:`summarize` collects (one per table name,
    layout, lsn bucket and DDL record: the name columns, ``columns``, ``ddl_lsn``, ``ddl_kind``,
    ``ddl`` and the aggregates of :func:`_group_aggregates`; commit times naive UTC), sorted by
    table name; also built from Arrow by :func:`binlake.merge.localbatch.summarize_local`."""
    ddls: dict[TableName, dict[int, DdlRecord]] = {}
    groups: dict[TableName, list[LayoutGroup]] = {}
    for row in rows:
        name = TableName(*(row[c] for c in _NAME_COLUMNS))
        groups.setdefault(name, [])
        if row["ddl_lsn"] is not None:
            record = DdlRecord(row["ddl_lsn"], row["ddl_kind"] or "", row["ddl"] or "", row["max_ts"])
            ddls.setdefault(name, {})[record.lsn] = record
        else:
            groups[name].append(_layout_group(row))
    return [
        TableChanges(name, tuple(sorted(ddls.get(name, {}).values(), key=lambda d: d.lsn)),
                     tuple(sorted(groups[name], key=lambda g: (g.max_lsn, g.min_lsn))))
        for name in sorted(groups)
    ]


def segment_groups(records: DataFrame) -> list[LayoutGroup]:
    """Layout groups of one table's ``records`` split at its DDL records (so none spans a DDL),
    per lsn bucket as in :func:`summarize`.

    A row's segment is the number of DDL records before it in lsn order (a running count, so the
    expression stays the same size however many DDLs the batch holds; duplicate DDL records only
    leave gaps in the numbering). One sort of the table's records, on one partition.
    """
    is_ddl = F.col("op") == OP_DDL
    before = Window.orderBy(F.col("lsn"), is_ddl.cast("int"), F.col("row_idx")).rowsBetween(
        Window.unboundedPreceding, Window.currentRow)
    rows = (
        records.withColumn("segment", F.sum(is_ddl.cast("long")).over(before))
        .filter(~is_ddl)
        .groupBy("columns", "segment", _bucket())
        .agg(*_group_aggregates())
        .collect()
    )
    return sorted([_layout_group(r) for r in rows], key=lambda g: (g.max_lsn, g.min_lsn))
