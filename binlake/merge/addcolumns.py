"""The stream's side of DMS ``add-column`` rules: the value of each added column in a change.

:mod:`binlake.addcolumn` defines the columns; here each decoded change gets them as extra columns
before the MERGE, which then assigns them like any source column: the constant,
``$AR_H_COMMIT_TIMESTAMP`` = the change's commit time (``__bl_ts``), ``$AR_H_OPERATION`` =
``INSERT``/``UPDATE``/``DELETE`` of the change's own source operation (a row's latest change
decides, as for every column; an UPDATE that brings a row into a source filter shows ``UPDATE``).
The full load writes the values DMS defines for it (:func:`binlake.snapshot.reading.added_expressions`).

Added columns are the lake table's, not the source's: schema evolution never drops them, and a
lake table loaded before the rule existed is refused (the merge cannot know the values of the
rows it already holds) until a full load or ``binlake resync`` of the table gives every row one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from binlake.addcolumn import COMMIT_TIMESTAMP, OPERATION, STREAM_OPERATIONS, AddedColumn
from binlake.merge.decode import SOURCE_OP, TS
from binlake.merge.layout import LayoutColumn
from binlake.merge.sql import col


class AddedColumnMissingError(RuntimeError):
    """The lake table lacks a column an ``add-column`` rule gives it."""


def check_lake_has(added: Sequence[AddedColumn], lake_columns: Mapping[str, str], table: str) -> None:
    """:class:`AddedColumnMissingError` naming the recovery when the lake table lacks an added column."""
    present = {name.lower() for name in lake_columns}
    missing = [c.name for c in added if c.name.lower() not in present]
    if missing:
        raise AddedColumnMissingError(
            f"{table}: the lake table has no column {missing}, which add-column rule(s) of the table mapping add "
            "(added after the table was loaded?). binlake cannot give the rows the lake already holds their values: "
            f"run `binlake resync --config … --table {table}` (or a full load of the table) to load them, or remove "
            "the rule")


def without_added(lake_columns: Mapping[str, str], added: Sequence[AddedColumn]) -> dict[str, str]:
    """The lake table's columns that come from the source (added columns left out)."""
    names = {c.name.lower() for c in added}
    return {name: kind for name, kind in lake_columns.items() if name.lower() not in names}


def with_added(decoded: DataFrame, columns: Sequence[LayoutColumn],
               added: Sequence[AddedColumn]) -> tuple[DataFrame, list[LayoutColumn]]:
    """``decoded`` with one column per added column (its value in each change), and the MERGE's
    column list extended with them (only their names are used there: the values are typed here)."""
    out = decoded
    for column in added:
        if column.kind == COMMIT_TIMESTAMP:
            value = col(TS)
        elif column.kind == OPERATION:
            value = F.element_at(F.create_map(*[F.lit(v) for kv in STREAM_OPERATIONS.items() for v in kv]),
                                 col(SOURCE_OP))
        else:
            value = F.expr(column.constant_sql())
        out = out.withColumn(column.name, value.cast(column.spark_type))
    return out, [*columns, *(LayoutColumn(c.name, "longtext") for c in added)]
