"""The Arrow chunk reader's statements, wire forms, batch checks and reader choice (pure: no server)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from binlake.config import ChunkReader, TlsMode, parse_config
from binlake.positions import BinlogPosition
from binlake.rules import TableTarget
from binlake.snapshot.arrowread import (
    BYTES,
    DOUBLE,
    LONG,
    TEXT,
    ArrowSource,
    arrow_chunk_query,
    arrow_lake_expressions,
    arrow_select_sql,
    arrow_source,
    batch_rows_for,
    choose_reader,
    conform_batch,
    raw_schema_ddl,
    read_batches,
    wire_form,
    with_watermark_init,
)
from binlake.snapshot.discovery import SourceColumn, SourceTable
from binlake.snapshot.reading import session_init, session_init_statements, watermark_session_init
from binlake.typemap import ALL_TYPES, ColumnType


def table(*types: ColumnType) -> SourceTable:
    target = TableTarget("shop", "order", "lake", "orders")
    columns = tuple(SourceColumn(f"c `{i}`", f"t{i}", t, True) for i, t in enumerate(types))
    return SourceTable(target, columns, ("c `0`",), (types[0],), "InnoDB", 10, 100)


def some_type(base: str) -> ColumnType:
    if base == "decimal":
        return ColumnType(base, precision=40, scale=5)
    if base in ("bit", "binary"):
        return ColumnType(base, precision=8)
    if base in ("enum", "set"):
        return ColumnType(base, values=("a", "b"))
    return ColumnType(base)


@pytest.mark.parametrize(("spec", "form"), [
    ("int", LONG), ("tinyint unsigned", LONG), ("bigint", LONG), ("bigint unsigned", TEXT), ("year", LONG),
    ("bit(1)", LONG), ("bit(63)", LONG), ("bit(64)", TEXT), ("double", DOUBLE), ("float", DOUBLE),
    ("decimal(10,2)", TEXT), ("decimal(65,30)", TEXT), ("varbinary", BYTES), ("binary(16)", BYTES),
    ("longblob", BYTES), ("geometry", TEXT), ("json", TEXT), ("datetime(6)", TEXT), ("uuid", TEXT),
])
def test_every_column_travels_in_one_exact_wire_form(spec: str, form: str) -> None:
    assert wire_form(ColumnType.parse(spec)) == form


def test_select_expressions_avoid_what_connectorx_would_decode_lossily() -> None:
    # DECIMAL through rust_decimal (28 digits), JSON through a JSON parser, u64 beyond i64: all as text
    assert arrow_select_sql(ColumnType.parse("decimal(38,10)"), "`d`") == "CAST(`d` AS CHAR)"
    assert arrow_select_sql(ColumnType("json"), "`j`") == "CAST(`j` AS CHAR)"
    assert arrow_select_sql(ColumnType.parse("bigint unsigned"), "`u`") == "CAST(`u` AS CHAR)"
    assert arrow_select_sql(ColumnType.parse("bit(64)"), "`b`") == "CAST(CAST(`b` AS UNSIGNED) AS CHAR)"
    assert arrow_select_sql(ColumnType("float"), "`f`") == "CAST(`f` AS DOUBLE)"
    assert arrow_select_sql(ColumnType("blob"), "`b`") == "`b`"  # raw bytes: no hex doubling on the wire
    assert arrow_select_sql(ColumnType("geometry"), "`g`") == "HEX(`g`)"  # ConnectorX cannot decode GEOMETRY


def test_every_supported_type_has_an_expression_and_a_raw_column() -> None:
    types = [some_type(base) for base in sorted(ALL_TYPES)]
    t = table(*types)
    sql = arrow_chunk_query(t, "1=1")
    assert sql.count(" AS c") == len(types)
    assert len(raw_schema_ddl(t).split(", ")) == 4 + len(types)
    assert [name for _, name in arrow_lake_expressions(t)][-2:] == ["_binlake_lsn", "_binlake_commit_ts"]


def test_chunk_query_keeps_the_position_join_and_a_nullable_hit() -> None:
    sql = arrow_chunk_query(table(ColumnType("int"), ColumnType("varchar")), "`c ``0``` >= 5")
    assert sql.startswith("SELECT _s.*, _b.* FROM (SELECT CAST(@binlake_snap_file")
    assert "NULLIF(1, 0) AS _binlake_hit" in sql  # MariaDB calls a literal NOT NULL even in a LEFT JOIN
    assert "FROM `shop`.`order` WHERE `c ``0``` >= 5) AS _b ON TRUE" in sql


def test_bytes_are_the_lake_value_and_the_rest_goes_through_the_jdbc_expressions() -> None:
    exprs = dict((name, expr) for expr, name in arrow_lake_expressions(
        table(ColumnType("int"), ColumnType("blob"), ColumnType.parse("decimal(10,2)"))))
    assert exprs["t1"] == "`c1`"
    assert exprs["t0"] == "CAST(`c0` AS INT)"
    assert exprs["t2"] == "CAST(`c2` AS DECIMAL(10,2))"


def test_session_init_statements_are_the_jdbc_text_split() -> None:
    assert "; ".join(session_init_statements(3)) == session_init(3)
    low = BinlogPosition.of("binlog.000004", 1234)
    source = with_watermark_init(ArrowSource("mysql://u:p@h:1/", "mysql://u@h:1/", (), 1), low)
    assert "; ".join(source.init) == watermark_session_init(low)


def test_url_quotes_user_and_password_and_the_safe_form_has_no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINLAKE_TEST_SECRET", "p@ss:w/rd")
    rules = {"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "all", "rule-action": "include",
                        "object-locator": {"schema-name": "%", "table-name": "%"}}]}
    config = parse_config({"source": {"host": "db", "port": 3307, "user": "u", "password_env": "BINLAKE_TEST_SECRET"},
                           "lake": {"root": "/tmp/lake"}, "table_mappings": rules}, Path("t.yaml"))
    source = arrow_source(config, epoch=2)
    assert source.url == "mysql://u:p%40ss%3Aw%2Frd@db:3307/"
    assert source.safe == "mysql://u@db:3307/" and "ss" not in source.safe
    assert source.init == tuple(session_init_statements(2))


def test_a_failed_read_never_shows_the_password() -> None:
    source = ArrowSource("mysql://u:hunter2@127.0.0.1:1/", "mysql://u@127.0.0.1:1/", (), 1)  # nothing listens
    with pytest.raises(RuntimeError) as caught:
        list(read_batches(source, "SELECT 1", (), (), pa.schema([]), 10))
    assert "hunter2" not in str(caught.value) and "mysql://u@127.0.0.1:1/" in str(caught.value)


def test_batches_are_bounded_by_bytes() -> None:
    assert batch_rows_for(16 << 20, 65_600) == 255
    assert batch_rows_for(16 << 20, 70) == 65_536
    assert batch_rows_for(1, 10 << 20) == 1


def schema() -> pa.Schema:
    return pa.schema([("f", pa.string()), ("l", pa.int64()), ("r", pa.int64()), ("h", pa.int64()),
                      ("c0", pa.int64()), ("c1", pa.string()), ("c2", pa.binary())])


def batch(c0: pa.Array, c1: pa.Array, c2: pa.Array) -> pa.RecordBatch:
    meta = [pa.array(["b.1"]), pa.array([5], pa.int64()), pa.array([7], pa.int64()), pa.array([1], pa.int32())]
    return pa.RecordBatch.from_arrays([*meta, c0, c1, c2], names=["f", "l", "r", "h", "c0", "c1", "c2"])


NAMES = ("f", "l", "r", "h", "id", "name", "data")


def test_conform_casts_integers_and_binary_collation_text_exactly() -> None:
    got = conform_batch(batch(pa.array([-3], pa.int8()), pa.array(["héllo".encode()], pa.large_binary()),
                              pa.array([b"\x00\xff"], pa.large_binary())), (LONG, TEXT, BYTES), NAMES, schema())
    assert got.schema == schema()
    assert got.to_pylist()[0] | {} == {"f": "b.1", "l": 5, "r": 7, "h": 1, "c0": -3, "c1": "héllo", "c2": b"\x00\xff"}


def test_conform_refuses_invalid_utf8_text_and_unexpected_types() -> None:
    with pytest.raises(pa.ArrowInvalid):
        conform_batch(batch(pa.array([1]), pa.array([b"\xff"], pa.binary()), pa.array([b""])),
                      (LONG, TEXT, BYTES), NAMES, schema())
    with pytest.raises(TypeError, match="'name'"):
        conform_batch(batch(pa.array([1]), pa.array([1.5]), pa.array([b""])), (LONG, TEXT, BYTES), NAMES, schema())


@pytest.mark.parametrize(("setting", "mode", "offers", "installed", "expected"), [
    (ChunkReader.AUTO, TlsMode.PREFERRED, False, True, ChunkReader.DIRECT),
    (ChunkReader.AUTO, TlsMode.DISABLED, True, True, ChunkReader.DIRECT),
    (ChunkReader.DIRECT, TlsMode.DISABLED, False, True, ChunkReader.DIRECT),
    (ChunkReader.AUTO, TlsMode.PREFERRED, True, True, ChunkReader.JDBC),  # JDBC would encrypt: keep it
    (ChunkReader.AUTO, TlsMode.REQUIRED, False, True, ChunkReader.JDBC),
    (ChunkReader.AUTO, TlsMode.DISABLED, False, False, ChunkReader.JDBC),
    (ChunkReader.JDBC, TlsMode.DISABLED, False, True, ChunkReader.JDBC),
    (ChunkReader.ARROW, TlsMode.DISABLED, False, True, ChunkReader.ARROW),
])
def test_reader_choice(setting: ChunkReader, mode: TlsMode, offers: bool, installed: bool,
                       expected: ChunkReader) -> None:
    assert choose_reader(setting, mode, offers, installed) is expected


def test_auto_without_deltalake_is_the_arrow_reader_and_direct_is_refused() -> None:
    assert choose_reader(ChunkReader.AUTO, TlsMode.DISABLED, False, True, False) is ChunkReader.ARROW
    with pytest.raises(ValueError, match="deltalake"):
        choose_reader(ChunkReader.DIRECT, TlsMode.DISABLED, False, True, False)
    with pytest.raises(ValueError, match=r"reader is direct, but source\.tls\.mode is required"):
        choose_reader(ChunkReader.DIRECT, TlsMode.REQUIRED, True, True)


def test_arrow_reader_is_refused_where_it_would_drop_encryption() -> None:
    with pytest.raises(ValueError, match="does not encrypt"):
        choose_reader(ChunkReader.ARROW, TlsMode.VERIFY_CA, True, True)
