"""Type fidelity against a real MariaDB: the full-load path and the binlog path give the same value.

For every column of every table: the canonical string the full load gets (``source_select_sql``
read with pymysql, JDBC-native values turned to text the way Spark's cast would) must equal
``encode_binlog_value`` of the value pymysqlreplication decodes from the row's binlog event, and
the ColumnType built from the binlog table map must equal the one from information_schema.

Two sources of tables: a hand-made table with every type and its edge values, and every table of
the peer SQL corpora (../shared/peer-sql), copied with CREATE TABLE … LIKE + INSERT … SELECT after
the binlog start position so that all their rows pass through the binlog with their exact types.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from conftest import PEER_SQL, peer_sql_dir
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.row_event import TableMapEvent, WriteRowsEvent

from binlake.devdb import LocalMariaDB
from binlake.typemap import (
    ColumnType,
    UnsupportedTypeError,
    column_type_from_binlog,
    column_type_from_information_schema,
    encode_binlog_value,
    source_select_sql,
    table_map_column_types,
)

_server_ids = itertools.count(7000)
Row = tuple[str | None, ...]


def q(name: str) -> str:
    """A backtick-quoted identifier."""
    return "`" + name.replace("`", "``") + "`"


# --- the two readers ---------------------------------------------------------------------------

@dataclass
class Table:
    name: str
    columns: list[str]
    types: list[ColumnType]
    generated: list[bool] = field(default_factory=list)


def declared_tables(mariadb: LocalMariaDB, schema: str) -> dict[str, Table]:
    """Base tables of ``schema`` with their columns' information_schema types, in column order."""
    rows = mariadb.execute(
        "SELECT c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, c.CHARACTER_SET_NAME, c.IS_GENERATED "
        "FROM information_schema.COLUMNS c JOIN information_schema.TABLES t "
        "ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME "
        f"WHERE c.TABLE_SCHEMA = '{schema}' AND t.TABLE_TYPE = 'BASE TABLE' "
        "ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION"
    )
    tables: dict[str, Table] = {}
    for table, column, data_type, column_type, charset, generated in rows:
        entry = tables.setdefault(str(table), Table(str(table), [], []))
        entry.columns.append(str(column))
        entry.types.append(column_type_from_information_schema(str(data_type), str(column_type),
                                                               charset and str(charset)))
        entry.generated.append(generated != "NEVER")
    return tables


def jdbc_text(ct: ColumnType, value: object) -> str | None:
    """What Spark's cast makes of a JDBC-native value, written as the canonical string.

    Independent of typemap: numpy's float32 shortest repr, Python's float repr, MySQL's decimals.
    """
    if value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        if ct.base == "float":  # numpy picks the shortest float32 digits; Python's repr lays them out
            return repr(float(str(np.float32(value))))
        return repr(value)
    if isinstance(value, str):
        return value
    raise AssertionError(f"unexpected JDBC value {value!r} for {ct.spec}")


def full_load_rows(mariadb: LocalMariaDB, schema: str, table: Table) -> list[Row]:
    """The table read with ``source_select_sql`` under a UTC session, as canonical strings."""
    exprs = ", ".join(source_select_sql(ct, q(c)) for c, ct in zip(table.columns, table.types, strict=True))
    with mariadb.connect(schema) as conn, conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        cur.execute(f"SELECT {exprs} FROM {q(schema)}.{q(table.name)}")
        return [tuple(jdbc_text(ct, v) for ct, v in zip(table.types, row, strict=True)) for row in cur.fetchall()]


@dataclass
class BinlogResult:
    rows: dict[str, list[Row]] = field(default_factory=dict)
    type_mismatches: list[str] = field(default_factory=list)


BINLOG_BLIND = ("uuid", "inet4", "inet6")  # need the declared type: the binlog shows BINARY(n)


def binlog_rows(mariadb: LocalMariaDB, schema: str, start: tuple[str, int],
                tables: dict[str, Table]) -> BinlogResult:
    """Inserted rows of ``schema`` since ``start``, encoded with the table-map ColumnTypes."""
    result = BinlogResult()
    stream = BinLogStreamReader(
        connection_settings={"host": "127.0.0.1", "port": mariadb.port, "user": "root", "password": ""},
        server_id=next(_server_ids), log_file=start[0], log_pos=start[1], resume_stream=True,
        blocking=False, only_schemas=[schema], only_events=[TableMapEvent, WriteRowsEvent],
    )
    types: dict[str, list[ColumnType]] = {}
    try:
        for event in stream:
            if isinstance(event, TableMapEvent):
                types[event.table] = check_table_map(event, tables[event.table], result)
                continue
            for row in event.rows:
                values, sources = row["values"], row["none_sources"]
                result.rows.setdefault(event.table, []).append(tuple(
                    encode_binlog_value(ct, values[c.name], sources.get(c.name))
                    for c, ct in zip(event.columns, types[event.table], strict=True)
                ))
    finally:
        stream.close()
    return result


def check_table_map(event: Any, table: Table, result: BinlogResult) -> list[ColumnType]:
    """Types of a table map: with the declared types (as capture does), and from the binlog alone."""
    names = [c.name for c in event.columns]
    assert names == table.columns, f"{table.name}: binlog columns {names} != {table.columns}"
    geometry = iter(event.optional_metadata.geometry_type_list or [])
    for column in event.columns:
        if column.type == 255:
            column.geometry_type = next(geometry, None)
    for column, declared in zip(event.columns, table.types, strict=True):
        try:
            alone = column_type_from_binlog(column)
        except UnsupportedTypeError as exc:
            if "declared" in str(exc):
                continue  # an explicit refusal (non-UTF-8 ENUM/SET labels) is fine; a wrong type is not
            raise
        if alone != declared and declared.base not in BINLOG_BLIND:
            result.type_mismatches.append(f"{table.name}.{column.name}: binlog {alone.spec} != {declared.spec}")
    found = table_map_column_types(event, table.types)
    assert found == table.types
    return found


def assert_same_rows(table: str, full: list[Row], binlog: list[Row], columns: list[str]) -> None:
    """Value by value, both directions: the multisets of rows are equal."""
    def key(row: Row) -> tuple[tuple[bool, str], ...]:
        return tuple((v is None, v or "") for v in row)

    full_sorted, binlog_sorted = sorted(full, key=key), sorted(binlog, key=key)
    if full_sorted == binlog_sorted:
        return
    problems = [f"{table}: {len(full)} full-load rows, {len(binlog)} binlog rows"]
    for a, b in zip(full_sorted, binlog_sorted, strict=False):
        for name, x, y in zip(columns, a, b, strict=True):
            if x != y:
                problems.append(f"  {name}: full load {_short(x)} != binlog {_short(y)}")
    raise AssertionError("\n".join(problems[:40]))


def _short(value: str | None) -> str:
    text = repr(value)
    return text if len(text) < 120 else text[:100] + f"...({len(text)} chars)"


def master_position(mariadb: LocalMariaDB) -> tuple[str, int]:
    file, pos = mariadb.execute("SHOW MASTER STATUS")[0][:2]
    return str(file), int(str(pos))


# --- hand-made table: every type, edge values --------------------------------------------------

EVERY_TYPE = """
CREATE TABLE every_type (
  ti TINYINT, tu TINYINT UNSIGNED, t1 TINYINT(1), si SMALLINT, su SMALLINT UNSIGNED, mi MEDIUMINT,
  mu MEDIUMINT UNSIGNED, i INT, iu INT(5) UNSIGNED ZEROFILL, bi BIGINT, bu BIGINT UNSIGNED,
  d1 DECIMAL(10,2), d2 DECIMAL(65,30), d3 DECIMAL(38,0), d4 DECIMAL(5,5), d5 DECIMAL(39,10) UNSIGNED,
  f FLOAT, fd FLOAT(10,2), db DOUBLE,
  b1 BIT(1), b8 BIT(8), b10 BIT(10), b64 BIT(64), y YEAR,
  dt DATE, dtm0 DATETIME, dtm3 DATETIME(3), dtm6 DATETIME(6),
  ts0 TIMESTAMP NULL, ts2 TIMESTAMP(2) NULL, ts6 TIMESTAMP(6) NULL,
  tm0 TIME, tm1 TIME(1), tm2 TIME(2), tm3 TIME(3), tm4 TIME(4), tm5 TIME(5), tm6 TIME(6),
  c CHAR(10), vc VARCHAR(100), tt TINYTEXT, tx TEXT, mt MEDIUMTEXT, lt LONGTEXT,
  l1 VARCHAR(20) CHARACTER SET latin1,
  bn BINARY(16), vb VARBINARY(32), tb TINYBLOB, bl BLOB, mb MEDIUMBLOB, lb LONGBLOB,
  e ENUM('a','b,c','d''e','x\\\\y'), s SET('x','y','z'), j JSON,
  g GEOMETRY, p POINT, ls LINESTRING, pg POLYGON, mp MULTIPOINT, gc GEOMETRYCOLLECTION,
  u UUID, i6 INET6, i4 INET4
)"""

MAX_ROW = {
    "ti": "127", "tu": "255", "t1": "5", "si": "32767", "su": "65535", "mi": "8388607", "mu": "16777215",
    "i": "2147483647", "iu": "4294967295", "bi": "9223372036854775807", "bu": "18446744073709551615",
    "d1": "99999999.99", "d2": "'" + "9" * 35 + "." + "9" * 30 + "'", "d3": "'" + "9" * 38 + "'",
    "d4": "0.99999", "d5": "'" + "9" * 29 + "." + "9" * 10 + "'",
    "f": "3.40282e38", "fd": "12345678.91", "db": "1.7976931348623157e308",
    "b1": "b'1'", "b8": "b'11111111'", "b10": "b'1111111111'", "b64": "18446744073709551615", "y": "2155",
    "dt": "'9999-12-31'", "dtm0": "'9999-12-31 23:59:59'", "dtm3": "'9999-12-31 23:59:59.999'",
    "dtm6": "'9999-12-31 23:59:59.999999'", "ts0": "'2038-01-19 03:14:07'",
    "ts2": "'2038-01-19 03:14:07.99'", "ts6": "'2038-01-19 03:14:07.999999'",
    **{f"tm{n}": "'838:59:59'" for n in range(7)},
    "c": "'abc  '", "vc": "'emoji 😀 ü trailing '", "tt": "'t'", "tx": "REPEAT('x', 65535)",
    "mt": "REPEAT('é', 100000)", "lt": "REPEAT('😀', 300000)", "l1": "X'81E980'",
    "bn": "UNHEX('00112233445566778899AABBCCDD0000')", "vb": "X'00FF0000'", "tb": "X'00'",
    "bl": "X'0000000000'", "mb": "REPEAT(X'00FF', 40000)", "lb": "REPEAT(X'01000200', 300000)",
    "e": "'x\\\\y'", "s": "'z,x,y'", "j": "'{\"a\": [1, 2.5, \"é😀\"], \"b\": null}'",
    "g": "ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))', 4326)", "p": "POINT(1.5, -2)",
    "ls": "ST_GeomFromText('LINESTRING(0 0,1 1,2 0)', 3857)", "pg": "ST_GeomFromText('POLYGON((0 0,2 0,2 2,0 0))')",
    "mp": "ST_GeomFromText('MULTIPOINT(1 1,2 2)')",
    "gc": "ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 1),LINESTRING(0 0,1 1))')",
    "u": "'ffffffff-ffff-ffff-ffff-ffffffffffff'", "i6": "'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'",
    "i4": "'255.255.255.255'",
}
MIN_ROW = {
    "ti": "-128", "tu": "0", "t1": "-1", "si": "-32768", "su": "0", "mi": "-8388608", "mu": "0",
    "i": "-2147483648", "iu": "0", "bi": "-9223372036854775808", "bu": "0", "d1": "-99999999.99",
    "d2": "'-" + "9" * 35 + "." + "9" * 30 + "'", "d3": "'-" + "9" * 38 + "'", "d4": "-0.99999", "d5": "0",
    "f": "-3.40282e38", "fd": "-0.01", "db": "-2.2250738585072014e-308", "b1": "b'0'", "b8": "0",
    "b10": "0", "b64": "0", "y": "1901", "dt": "'1000-01-01'", "dtm0": "'1000-01-01 00:00:00'",
    "dtm3": "'1000-01-01 00:00:00.001'", "dtm6": "'1000-01-01 00:00:00.000001'",
    "ts0": "'1970-01-01 00:00:01'", "ts2": "'1970-01-01 00:00:01.01'", "ts6": "'1970-01-01 00:00:01.000001'",
    "tm0": "'-838:59:59'", "tm1": "'-838:59:58.9'", "tm2": "'-00:00:01.56'", "tm3": "'-12:34:56.789'",
    "tm4": "'-00:00:00.0001'", "tm5": "'-517:51:04.77777'", "tm6": "'-838:59:58.999999'",
    **{k: "''" for k in ("c", "vc", "tt", "tx", "mt", "lt", "l1", "vb", "tb", "bl", "mb", "lb")},
    "bn": "X'00'", "e": "'not a label'", "s": "''", "j": "'[]'", "g": "POINT(0, 0)", "p": "POINT(0, 0)",
    "u": "'00000000-0000-0000-0000-000000000000'", "i6": "'::'", "i4": "'0.0.0.0'",
}
ZERO_ROW = {
    "dt": "'0000-00-00'", "dtm0": "'0000-00-00 00:00:00'", "dtm3": "'2015-00-21 10:00:00.123'",
    "dtm6": "'0000-01-21 00:00:00'", "ts0": "'0000-00-00 00:00:00'", "ts2": "0", "y": "0",
    "tm0": "'00:00:00'", "tm6": "'-00:00:00.000000'", "tm1": "'-00:00:00.5'", "d4": "0", "f": "0", "db": "-0e0",
    "b64": "b'1000000000000000000000000000000000000000000000000000000000000001'",
}
MISC_ROWS = [
    {"dt": "'2015-05-00'", "dtm0": "'2015-02-31 10:00:00'", "dtm6": "'0999-12-31 23:59:59.5'", "y": "2018",
     "tm2": "'-00:00:00.56'", "tm3": "'100:00:00.001'", "tm4": "'-00:20:38'", "tm5": "'-00:00:00.00001'",
     "tm6": "'-00:00:00.000001'", "f": "0.1234567", "fd": "64.1", "db": "0.1", "d1": "0.01", "d4": "0.00001",
     "d2": "'0.000000000000000000000000000001'", "b8": "b'00000101'", "b10": "b'0000000101'", "b1": "1",
     "c": "'ü😀'", "vc": "'a''b\"c\\\\n\\n\t'", "l1": "X'E9'", "e": "'b,c'", "s": "'x,y,z'",
     "j": "'\"scalar\"'", "bn": "UNHEX('123E4567E89B12D3A456426614174000')", "vb": "X'FF'",
     "u": "'123e4567-e89b-12d3-a456-426614174000'", "i6": "'::ffff:1.2.3.4'", "i4": "'10.0.0.1'",
     "g": "ST_GeomFromText('POINT(1 2)', 4326)"},
    {"f": "16777217", "db": "123456789012345680000", "tm6": "'-00:00:00.999999'", "tm1": "'-00:00:00.1'",
     "u": "'01234567-89ab-4def-8123-456789abcdef'", "i6": "'::1.2.3.4'", "e": "''", "s": "'y'",
     "dtm0": "'2000-02-29 00:00:00'", "dt": "'0001-01-01'", "j": "'{\"k\": {\"n\": [true, false, null]}}'"},
    {"i6": "'::1'", "u": "'00000000-0000-0000-0000-000000000001'", "d2": "'-0.000000000000000000000000000001'"},
    {"i6": "'2001:db8::ff00:42:8329'"}, {"i6": "'1::'"}, {"i6": "'::0.0.1.0'"}, {"i6": "'fe80::1:0:0:0'"},
    {"i6": "'1:0:1:1:1:1:1:1'"}, {"i6": "'1:0:0:1:0:0:0:1'"}, {"i6": "'0:0:0:0:0:1:0:0'"},
    {},  # all NULL
]


def insert(conn: Any, table: str, row: dict[str, str]) -> None:
    with conn.cursor() as cur:
        if row:
            cur.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(row.values())})")
        else:
            cur.execute(f"INSERT INTO {table} () VALUES ()")


def test_every_type_full_load_equals_binlog(mariadb: LocalMariaDB, source_db: str) -> None:
    start = master_position(mariadb)
    with mariadb.connect(source_db) as conn:
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")  # zero dates, '' enum, clipping
            cur.execute(EVERY_TYPE)
            cur.execute("SET time_zone = '+00:00'")
        for row in (MAX_ROW, MIN_ROW, ZERO_ROW, *MISC_ROWS):
            insert(conn, "every_type", row)
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+05:30'")  # TIMESTAMPs are instants: the session zone must not leak
        insert(conn, "every_type", {"ts0": "'2020-06-01 05:30:00'", "ts6": "'2020-06-01 00:00:00.123456'"})
    assert_fidelity(mariadb, source_db, start)
    spot_check(mariadb, source_db)


SPOT_CHECKS = {  # ti of the row → column → canonical value, written out by hand (MySQL's renderings)
    "127": {"bu": "18446744073709551615", "b64": "18446744073709551615", "f": "3.40282e+38", "y": "2155",
            "tm6": "838:59:59.000000", "c": "abc", "vc": "emoji 😀 ü trailing ", "l1": "\x81é€",
            "bn": "00112233445566778899AABBCCDD0000", "s": "x,y,z", "e": "x\\y", "d4": "0.99999",
            "ts2": "2038-01-19 03:14:07.99", "i4": "255.255.255.255"},
    "-128": {"tm2": "-00:00:01.56", "tm3": "-12:34:56.789", "tm5": "-517:51:04.77777",
             "tm6": "-838:59:58.999999", "tm1": "-838:59:58.9", "tm4": "-00:00:00.0001", "e": "", "s": "",
             "bn": "00" * 16, "vb": "", "t1": "-1", "b1": "0", "dt": "1000-01-01", "i6": "::",
             "u": "00000000-0000-0000-0000-000000000000", "fd": "-0.01", "ts0": "1970-01-01 00:00:01"},
}


def spot_check(mariadb: LocalMariaDB, schema: str) -> None:
    """Both readers agree; make sure they agree on the right values, not on the same mistake."""
    table = declared_tables(mariadb, schema)["every_type"]
    rows = [dict(zip(table.columns, row, strict=True)) for row in full_load_rows(mariadb, schema, table)]
    for ti, expected in SPOT_CHECKS.items():
        row = next(r for r in rows if r["ti"] == ti)
        assert {c: row[c] for c in expected} == expected
    zero = next(r for r in rows if r["y"] == "0")
    assert [zero[c] for c in ("dt", "dtm0", "dtm3", "dtm6", "ts0", "ts2")] == [None] * 6
    assert zero["tm6"] == "00:00:00.000000" and zero["tm1"] == "-00:00:00.5"
    assert "2020-06-01 00:00:00" in {r["ts0"] for r in rows}


CHARSET_TABLE = """
CREATE TABLE charsets (
  u8 VARCHAR(20) CHARACTER SET utf8mb3, u16 VARCHAR(20) CHARACTER SET utf16, u16le VARCHAR(20) CHARACTER SET utf16le,
  u32 VARCHAR(20) CHARACTER SET utf32, uc2 CHAR(10) CHARACTER SET ucs2, l1 TEXT CHARACTER SET latin1,
  l2 VARCHAR(20) CHARACTER SET latin2, c1251 VARCHAR(20) CHARACTER SET cp1251, gr VARCHAR(20) CHARACTER SET greek,
  k8 VARCHAR(20) CHARACTER SET koi8r, c1250 VARCHAR(20) CHARACTER SET cp1250, asci VARCHAR(20) CHARACTER SET ascii,
  he VARCHAR(20) CHARACTER SET hebrew,
  le ENUM('é','ü','plain') CHARACTER SET latin1, ls SET('é','ü','plain') CHARACTER SET latin1,
  ue ENUM('a','b') CHARACTER SET ucs2,
  ca16 VARCHAR(20) CHARACTER SET utf16 COLLATE utf16_uca1400_ai_ci,
  ca32 TEXT CHARACTER SET utf32 COLLATE utf32_uca1400_as_cs,
  cauc CHAR(5) CHARACTER SET ucs2 COLLATE ucs2_uca1400_ai_ci,
  ca8 VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_uca1400_ai_ci,
  ca3 VARCHAR(20) CHARACTER SET utf8mb3 COLLATE utf8mb3_uca1400_ai_ci,
  cae ENUM('é','b') CHARACTER SET utf16 COLLATE utf16_uca1400_ai_ci
)"""


def test_character_sets_full_load_equals_binlog(mariadb: LocalMariaDB, source_db: str) -> None:
    start = master_position(mariadb)
    with mariadb.connect(source_db) as conn:
        with conn.cursor() as cur:
            cur.execute(CHARSET_TABLE)
        insert(conn, "charsets", {
            "u8": "'aé€'", "u16": "'aé€😀'", "u16le": "'aé€😀'", "u32": "'aé€😀'", "uc2": "'aé€ '",
            "l1": "X'80818D8F909DE9FF'", "l2": "'Žluťoučký'", "c1251": "'Привет'", "gr": "'Ελλάδα'",
            "k8": "'Привет'", "c1250": "'Łódź'", "asci": "'plain'", "he": "'שלום'", "le": "'é'",
            "ls": "'ü,é'", "ue": "'b'", "ca16": "'aé€😀'", "ca32": "'aé€😀'", "cauc": "'aé€'", "ca8": "'aé€😀'",
            "ca3": "'aé€'", "cae": "'é'",
        })
        insert(conn, "charsets", {"le": "'ü'", "ls": "''", "ue": "'a'", "uc2": "''"})
    assert_fidelity(mariadb, source_db, start)


def assert_fidelity(mariadb: LocalMariaDB, schema: str, start: tuple[str, int],
                    known_gaps: dict[str, str] | None = None) -> None:
    """Full load == binlog for every base table of ``schema``, and binlog types == declared types."""
    tables = declared_tables(mariadb, schema)
    binlog = binlog_rows(mariadb, schema, start, tables)
    failures: list[str] = []
    for name, table in sorted(tables.items()):
        try:
            assert_same_rows(name, full_load_rows(mariadb, schema, table), binlog.rows.get(name, []),
                             table.columns)
        except AssertionError as exc:
            failures.append(str(exc))
    assert not binlog.type_mismatches, "\n".join(binlog.type_mismatches)
    gaps = known_gaps or {}
    unexpected = [f for f in failures if f.split(":", 1)[0] not in gaps]
    assert not unexpected, "\n".join(unexpected)
    if failures:
        pytest.xfail("; ".join(f"{t}: {r}" for t, r in gaps.items()))


# --- peer SQL corpora --------------------------------------------------------------------------

def peer_files() -> list[str]:
    """Every peer SQL file (Sakila's data file is loaded with its schema file)."""
    if not PEER_SQL.is_dir():
        return ["(absent)"]  # the test then skips through peer_sql_dir()
    return sorted(p.name for p in PEER_SQL.glob("*.sql") if p.name != "test_db__sakila-mv-data.sql")


KNOWN_GAPS: dict[str, dict[str, str]] = {}
"""file → {table: why it cannot be replicated exactly}; empty: every peer table is exact."""


@pytest.fixture
def peer_schema(mariadb: LocalMariaDB, request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """Two fresh databases: the peer file loads into the first, its copy into the second."""
    slug = re.sub(r"[^a-z0-9]+", "_", request.node.callspec.id.lower())[:40].strip("_")
    names = (f"peer_{slug}", f"peer_{slug}_rt")
    for name in names:
        mariadb.execute(f"DROP DATABASE IF EXISTS {q(name)}")
        mariadb.execute(f"CREATE DATABASE {q(name)} CHARACTER SET utf8mb4")
    yield names
    for name in names:
        mariadb.execute(f"DROP DATABASE IF EXISTS {q(name)}")


@pytest.mark.parametrize("file_name", peer_files())
def test_peer_sql_full_load_equals_binlog(mariadb: LocalMariaDB, peer_schema: tuple[str, str],
                                          file_name: str) -> None:
    directory = peer_sql_dir()
    source, copy = peer_schema
    mariadb.load_sql_file(directory / file_name, source)
    if file_name == "test_db__sakila-mv-schema.sql":
        mariadb.load_sql_file(directory / "test_db__sakila-mv-data.sql", source)
    tables = declared_tables(mariadb, source)
    start = master_position(mariadb)
    copy_tables(mariadb, source, copy, tables)
    assert_fidelity(mariadb, copy, start, KNOWN_GAPS.get(file_name))


def copy_tables(mariadb: LocalMariaDB, source: str, target: str, tables: dict[str, Table]) -> None:
    """CREATE TABLE … LIKE (same column types; no triggers, no FKs) and INSERT … SELECT every row."""
    with mariadb.connect(target) as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = 'ALLOW_INVALID_DATES,NO_AUTO_VALUE_ON_ZERO'")
        for name, table in tables.items():
            cur.execute(f"CREATE TABLE {q(name)} LIKE {q(source)}.{q(name)}")
            columns = ", ".join(q(c) for c, gen in zip(table.columns, table.generated, strict=True) if not gen)
            cur.execute(f"INSERT INTO {q(name)} ({columns}) SELECT {columns} FROM {q(source)}.{q(name)}")
