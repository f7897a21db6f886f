"""A lake table rewritten with new columns in one commit: how a table without Delta column mapping
renames, drops or retypes columns (``lake.on_column_rename: rewrite``, :mod:`binlake.tablefeatures`).

One statement, one Delta commit — readers see the table before or after, never between::

    REPLACE TABLE delta.`<path>` USING delta TBLPROPERTIES (<its properties>)
    AS SELECT `a` AS `b`, CAST(`c` AS BIGINT) AS `c`, …, `_binlake_lsn`, … FROM delta.`<path>`

What it keeps:

* every row and every value: a renamed column's values under its new name, a retyped column's
  through ``CAST`` (the same cast the in-place rewrite of a column-mapping table uses), binlake's
  columns (``_binlake_lsn``, ``_binlake_commit_ts``, SCD2's) unchanged — so the per-row lsn
  guard, tombstones and SCD2 versions work on as before;
* the table's properties (binlake's bookkeeping, the change data feed, the statistics columns —
  renamed and dropped with their columns), its protocol (Delta never downgrades it), the
  transaction ids of earlier commits (a replayed MERGE with ``txnAppId``/``txnVersion`` is still
  skipped: checked in the tests) and its history (time travel before the rewrite reads the old
  columns).

What it does not keep: the Delta table id (a replaced table gets a new one). A Structured Streaming
query *reading* the lake table must start from a new checkpoint — as it must after any rename or
drop of a column, which Delta's streaming source refuses to follow without schema tracking.

Cost: the whole table is read and written once (time and storage proportional to its size; the old
files stay for time travel until VACUUM). Idempotent by state: the caller plans only what is not
done yet (a rename whose old column is present and new one absent, …); a crash before the commit
leaves the table as it was, and the statement is planned and run again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import SparkSession

from binlake.merge.sql import delta_ref, quote, sql_string

log = logging.getLogger(__name__)

STATS_COLUMNS = "delta.dataSkippingStatsColumns"
_PROTOCOL_KEYS = ("delta.minReaderVersion", "delta.minWriterVersion")
_FEATURE_PREFIX = "delta.feature."


@dataclass(frozen=True)
class NewColumn:
    """One column of the rewritten table: taken from ``source``, named ``name``, cast to ``cast``
    (a Spark SQL type) when not None."""

    source: str
    name: str
    cast: str | None = None

    def select_sql(self) -> str:
        value = quote(self.source) if self.cast is None else f"CAST({quote(self.source)} AS {self.cast})"
        return f"{value} AS {quote(self.name)}"


def plan_columns(columns: Sequence[str], renames: Sequence[tuple[str, str]] = (), drops: Sequence[str] = (),
                 retypes: Mapping[str, str] | None = None) -> tuple[NewColumn, ...]:
    """The rewritten table's columns, in the table's order (pure).

    ``columns``: the table's columns now; ``renames`` ``(old, new)`` applied in order (so ``a → b,
    b → c`` ends as ``c``); ``drops`` and the keys of ``retypes`` (``{name: new type}``) name columns
    after the renames. Names compare case-insensitively, as Delta's do. A rename or drop of a
    column the table does not have is left out (planned as done).

    >>> [c.select_sql() for c in plan_columns(["id", "a", "b"], [("a", "x")], ["b"], {"id": "bigint"})]
    ['CAST(`id` AS bigint) AS `id`', '`a` AS `x`']
    """
    current = [(name, name) for name in columns]  # (source, current name)
    for old, new in renames:
        current = [(src, new if name.lower() == old.lower() else name) for src, name in current]
    dropped = {name.lower() for name in drops}
    types = {name.lower(): t for name, t in (retypes or {}).items()}
    return tuple(NewColumn(src, name, types.get(name.lower())) for src, name in current
                 if name.lower() not in dropped)


def split_stats_columns(value: str) -> list[str]:
    """The names in a ``delta.dataSkippingStatsColumns`` value (back-quoted or bare, comma-separated)."""
    names: list[str] = []
    i = 0
    while i < len(value):
        while i < len(value) and value[i] in ", ":
            i += 1
        if i >= len(value):
            break
        if value[i] == "`":
            name, i = "", i + 1
            while i < len(value):
                if value.startswith("``", i):
                    name, i = name + "`", i + 2
                elif value[i] == "`":
                    i += 1
                    break
                else:
                    name, i = name + value[i], i + 1
            names.append(name)
        else:
            end = value.find(",", i)
            end = len(value) if end < 0 else end
            names.append(value[i:end].strip())
            i = end
    return names


def carried_properties(properties: Mapping[str, str], new_columns: Sequence[NewColumn]) -> dict[str, str]:
    """The properties the rewritten table is given (pure): all of the table's, without the protocol's
    (Delta keeps the protocol by itself), the statistics columns following their columns' renames and
    drops."""
    by_source = {c.source.lower(): c.name for c in new_columns}
    carried = {k: v for k, v in properties.items() if k not in _PROTOCOL_KEYS and not k.startswith(_FEATURE_PREFIX)}
    if STATS_COLUMNS in carried:
        kept = [by_source[n.lower()] for n in split_stats_columns(carried[STATS_COLUMNS]) if n.lower() in by_source]
        if kept:
            carried[STATS_COLUMNS] = ",".join(quote(n) for n in kept)
        else:
            del carried[STATS_COLUMNS]
    return carried


def rewrite_table(spark: SparkSession, path: str, columns: Sequence[str], properties: Mapping[str, str],
                  renames: Sequence[tuple[str, str]] = (), drops: Sequence[str] = (),
                  retypes: Mapping[str, str] | None = None) -> None:
    """Rewrite the Delta table at ``path`` (now with ``columns`` — all of them, binlake's too — and
    ``properties``) with its columns renamed, dropped and retyped, in one commit (module docstring)."""
    new_columns = plan_columns(columns, renames, drops, retypes)
    props = ", ".join(f"{sql_string(k)} = {sql_string(v)}"
                      for k, v in carried_properties(properties, new_columns).items())
    select = ", ".join(c.select_sql() for c in new_columns)
    log.info("%s: rewriting the table with its new columns in one commit (no column mapping): renames %s, "
             "drops %s, type changes %s", path, list(renames), list(drops), dict(retypes or {}))
    spark.sql(f"REPLACE TABLE {delta_ref(path)} USING delta "
              f"{'TBLPROPERTIES (' + props + ') ' if props else ''}AS SELECT {select} FROM {delta_ref(path)}")
