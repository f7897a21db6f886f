"""The stream's side of a DMS source filter: a change whose new image the filter rejects is a delete.

The change log holds every change of a selected table, filtered or not (the capture never
filters: a replay, a resync or a changed filter all start from the complete record). The merge
evaluates the table's :class:`~binlake.rowfilter.BoundFilter` on each decoded upsert — the same
conditions, values and types as the source reads' SQL, through :class:`SparkDialect` — and turns
an upsert whose new image is outside the filter into a delete of its key at the same
``(lsn, row_idx)``:

======================  ==========================  =====================================
source change           new image in the filter?    lake
======================  ==========================  =====================================
INSERT                  yes / no                    inserted / delete (of nothing)
UPDATE staying inside   yes                         updated
UPDATE moving out       no                          deleted (with its tombstone)
UPDATE moving in        yes                         inserted (the upsert finds no row)
UPDATE outside          no                          delete (of nothing)
DELETE                  —                           deleted
======================  ==========================  =====================================

Each record's effect depends on its own new image only, so replays, duplicates and batch
boundaries give the same lake, and the per-row ``_binlake_lsn`` guard orders these deletes with
resync chunks like any other delete.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from decimal import Decimal
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from binlake.merge.decode import DELETE, OP, UPSERT
from binlake.merge.layout import LayoutColumn
from binlake.merge.sql import col
from binlake.rowfilter import DATETIME, NUMBER, TIMESTAMP, BoundColumn, BoundFilter, RowFilter, Value, render
from binlake.typemap import ColumnType

_LONG = (-(1 << 63), (1 << 63) - 1)


class FilterLayoutError(ValueError):
    """The records of a step cannot be filtered exactly (a filter column missing from their layout)."""


class SparkDialect:
    """Spark columns over the merge's decoded rows (lake types, target column names). Values are
    typed literals (never SQL text): numbers as integer or decimal literals, dates as dates,
    DATETIME as ``timestamp_ntz`` and TIMESTAMP as a UTC instant, text as strings (Spark compares
    strings by UTF-8 bytes: code-point order, as the source reads' SQL)."""

    def column(self, column: BoundColumn) -> Column:
        return col(column.name)

    def literal(self, value: Value, column: BoundColumn) -> Column:
        if column.kind == NUMBER:
            assert isinstance(value, int | Decimal)
            fits = isinstance(value, int) and _LONG[0] <= value <= _LONG[1]
            return F.lit(value) if fits else F.lit(Decimal(value))
        if column.kind in (DATETIME, TIMESTAMP):
            assert isinstance(value, datetime.datetime)
            text = value.strftime("%Y-%m-%d %H:%M:%S.%f")
            return F.lit(text).cast("timestamp_ntz") if column.kind == DATETIME else F.lit(text + "Z").cast("timestamp")
        return F.lit(value)

    def compare(self, operator: str, left: Column, right: Column) -> Column:
        if operator == "=":
            return left == right
        if operator == "<>":
            return left != right
        if operator == "<":
            return left < right
        if operator == "<=":
            return left <= right
        if operator == ">":
            return left > right
        return left >= right

    def is_null(self, value: Column, negate: bool) -> Column:
        return value.isNotNull() if negate else value.isNull()

    def any_of(self, parts: Sequence[Column]) -> Column:
        return reduce(lambda a, b: a | b, parts)

    def all_of(self, parts: Sequence[Column]) -> Column:
        return reduce(lambda a, b: a & b, parts)


SPARK = SparkDialect()


def bind_to_layout(row_filter: RowFilter, target_name: dict[str, str | None], columns: Sequence[LayoutColumn],
                   optional: set[str], table: str) -> BoundFilter:
    """``row_filter`` bound to a step's decoded columns. ``target_name``: source column → lake name
    (``None`` when a rule removes it). A filter column that some records of the step lack
    (``optional``: e.g. added by DDL inside the step) cannot be judged: :class:`FilterLayoutError`."""
    by_name = {c.name: c for c in columns}

    def lookup(source: str) -> tuple[str, ColumnType] | None:
        name = target_name.get(source)
        if name is None or name not in by_name:
            return None
        if name in optional:
            raise FilterLayoutError(
                f"{table}: source filter column {source!r} is missing from some change records of this step "
                "(a schema change inside it); binlake cannot tell whether those rows are in the filter. Remove "
                "the filter or resync the table after the schema change (binlake resync --table …)")
        return name, by_name[name].column_type

    return row_filter.bind(lookup, table)


def outside_as_delete(decoded: DataFrame, bound: BoundFilter) -> DataFrame:
    """``decoded`` (from :func:`binlake.merge.decode.decode`) with every upsert whose image the
    filter does not keep (false or unknown) turned into a delete of the same key."""
    keep = F.coalesce(render(bound, SPARK), F.lit(False))
    op = F.when((col(OP) == F.lit(UPSERT)) & ~keep, F.lit(DELETE)).otherwise(col(OP))
    return decoded.withColumn(OP, op)
