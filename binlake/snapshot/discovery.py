"""Which source tables the full load reads, with their columns and primary keys.

Tables come from ``information_schema`` (base tables only, system schemas never), selected and
renamed by the DMS table mapping (:class:`binlake.rules.TableMapping`). Column types are parsed
with :func:`binlake.typemap.column_type_from_information_schema`, so an unsupported type fails
here, before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from binlake.names import check_distinct_targets
from binlake.rowfilter import BoundFilter, mariadb_sql
from binlake.rules import TableMapping, TableTarget
from binlake.source import Connection
from binlake.typemap import ColumnType, column_type_from_information_schema

SYSTEM_SCHEMAS = frozenset({"mysql", "information_schema", "performance_schema", "sys"})


@dataclass(frozen=True)
class SourceColumn:
    """A source column and the name it gets in the lake."""

    name: str
    target_name: str
    type: ColumnType
    nullable: bool


@dataclass(frozen=True)
class SourceTable:
    """A selected source table: target names, loaded columns (removed ones left out), primary key."""

    target: TableTarget
    columns: tuple[SourceColumn, ...]
    key_columns: tuple[str, ...]
    key_types: tuple[ColumnType, ...]
    engine: str
    estimated_rows: int
    estimated_bytes: int
    row_filter: BoundFilter | None = None
    """The rule's source filter bound to the columns (``None``: every row is replicated)."""

    @property
    def filter_sql(self) -> str | None:
        """The source filter as a MariaDB predicate over this table's columns (``None``: no filter);
        every source read of the table (full load, resync, validation) ANDs it to its chunk."""
        return None if self.row_filter is None else mariadb_sql(self.row_filter)

    @property
    def schema(self) -> str:
        return self.target.source_schema

    @property
    def name(self) -> str:
        return self.target.source_table

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


def _rows(conn: Connection, sql: str, args: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def _candidate_tables(conn: Connection, mapping: TableMapping) -> list[tuple[str, str, str, int, int]]:
    rows = _rows(
        conn,
        "SELECT TABLE_SCHEMA, TABLE_NAME, COALESCE(ENGINE, ''), COALESCE(TABLE_ROWS, 0), "
        "COALESCE(DATA_LENGTH, 0) FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' "
        "ORDER BY TABLE_SCHEMA, TABLE_NAME",
    )
    return [
        (str(s), str(t), str(e), int(r), int(b))
        for s, t, e, r, b in rows
        if str(s).lower() not in SYSTEM_SCHEMAS and mapping.schema_may_match(str(s))
    ]


def _columns(conn: Connection, schema: str, table: str) -> list[tuple[str, str, str, str | None, bool]]:
    rows = _rows(
        conn,
        "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME, IS_NULLABLE = 'YES' "
        "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
        (schema, table),
    )
    return [(str(n), str(d), str(c), None if cs is None else str(cs), bool(nl)) for n, d, c, cs, nl in rows]


def primary_key(conn: Connection, schema: str, table: str) -> tuple[str, ...]:
    """The primary key columns in index order (``()`` when the table has none)."""
    rows = _rows(
        conn,
        "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
        "AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
        (schema, table),
    )
    return tuple(str(r[0]) for r in rows)


def describe_table(
    conn: Connection, target: TableTarget, engine: str = "", estimated_rows: int = 0, estimated_bytes: int = 0
) -> SourceTable:
    """Columns (after remove/rename rules), primary key and bound source filter of one selected table
    (:class:`ValueError` for a filter the table's columns cannot take)."""
    columns: list[SourceColumn] = []
    types: dict[str, ColumnType] = {}
    key = primary_key(conn, target.source_schema, target.source_table)
    for name, data_type, column_type, charset, nullable in _columns(conn, target.source_schema, target.source_table):
        target_name = target.column_name(name)
        if target_name is None and name not in key:
            continue  # removed by a rule: its type does not matter
        try:
            types[name] = column_type_from_information_schema(data_type, column_type, charset)
        except ValueError as exc:
            raise ValueError(f"{target.source_schema}.{target.source_table}.{name}: {exc}") from None
        if target_name is not None:
            columns.append(SourceColumn(name, target_name, types[name], nullable))
    targets = [c.target_name for c in columns]
    duplicates = sorted({n for n in targets if targets.count(n) > 1})
    if duplicates:
        raise ValueError(f"{target.source_schema}.{target.source_table}: transformation rules give several "
                         f"columns the same name {duplicates}")
    lowered = {n.lower() for n in targets}
    clashing = sorted(a.name for a in target.added_columns if a.name.lower() in lowered)
    if clashing:
        raise ValueError(f"{target.source_schema}.{target.source_table}: add-column rules add {clashing}, which "
                         "the table already has; name the added column differently")
    by_source = {c.name: (c.name, c.type) for c in columns}
    row_filter = None if target.row_filter is None else target.row_filter.bind(
        by_source.get, f"{target.source_schema}.{target.source_table}")
    return SourceTable(
        target=target,
        columns=tuple(columns),
        key_columns=key,
        key_types=tuple(types[k] for k in key),
        engine=engine,
        estimated_rows=estimated_rows,
        estimated_bytes=estimated_bytes,
        row_filter=row_filter,
    )


def _selected(conn: Connection, mapping: TableMapping) -> list[tuple[TableTarget, str, int, int]]:
    return [(target, engine, rows, size) for schema, table, engine, rows, size in _candidate_tables(conn, mapping)
            if (target := mapping.target_for(schema, table)) is not None]


def selected_targets(conn: Connection, mapping: TableMapping) -> list[TableTarget]:
    """The target of every base table the mapping selects, in (schema, table) order (not checked:
    see :func:`binlake.names.check_distinct_targets`)."""
    return [target for target, *_ in _selected(conn, mapping)]


def discover_tables(conn: Connection, mapping: TableMapping) -> list[SourceTable]:
    """Every base table the mapping selects, in (schema, table) order, described. Two tables that
    the mapping sends to one lake table are refused first, before anything is read or written."""
    selected = _selected(conn, mapping)
    check_distinct_targets(((t.source_schema, t.source_table), (t.schema, t.table)) for t, *_ in selected)
    return [describe_table(conn, target, engine, rows, size) for target, engine, rows, size in selected]
