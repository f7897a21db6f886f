"""Declared column types from ``information_schema``, asked only where the binlog is ambiguous.

The binlog shows MariaDB UUID/INET6 as BINARY(16) and INET4 as BINARY(4); the full load sees the
declared type. For tables with such columns the capture asks information_schema once per table
map, and :func:`binlake.typemap.table_map_column_types` uses the answer only when it agrees with
the binlog layout (else the binlog's own types win, with a warning). This is exact while the
capture is near the head of the binlog; replaying old binlog across a later type change of such a
column falls back to the binlog type.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import pymysql

from binlake import source as src
from binlake.config import SourceConfig
from binlake.typemap import ColumnType, UnsupportedTypeError, column_type_from_information_schema

log = logging.getLogger(__name__)

_COLUMNS_SQL = (
    "SELECT DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME FROM information_schema.COLUMNS "
    "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION"
)

_TABLES_SQL = "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"


class DeclaredTypesReader:
    """``column_types(schema, table)`` over a lazily opened, re-opened-on-error connection."""

    def __init__(self, source: SourceConfig) -> None:
        self.source = source
        self._conn: Any = None

    def column_types(self, schema: str, table: str) -> list[ColumnType] | None:
        """Declared types in column order; ``None`` when unknown (table gone, source unreachable)."""
        for _ in range(2):
            try:
                if self._conn is None:
                    self._conn = src.connect(self.source)
                with self._conn.cursor() as cur:
                    cur.execute(_COLUMNS_SQL, (schema, table))
                    rows = cur.fetchall()
                return [column_type_from_information_schema(str(d), str(c), s) for d, c, s in rows] or None
            except (pymysql.err.MySQLError, src.SourceError):
                self.close()
            except UnsupportedTypeError as exc:
                log.warning("%s.%s: %s", schema, table, exc)
                return None
        return None

    def table_exists(self, schema: str, table: str) -> bool:
        """Does the source hold ``schema.table`` now (names compared exactly)? Raises when the source
        cannot tell (unreachable), so a caller never takes "unknown" for "gone"."""
        if self._conn is None:
            self._conn = src.connect(self.source)
        try:
            with self._conn.cursor() as cur:
                cur.execute(_TABLES_SQL, (schema, table))
                return any(str(name) == table for (name,) in cur.fetchall())
        except pymysql.err.MySQLError:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
