"""binlake.typemap: specs, both constructors, Spark types/expressions and binlog value encoding.

Expected values are written out by hand (MySQL's own renderings), never recomputed with typemap.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import struct
from decimal import Decimal
from types import SimpleNamespace

import pytest

from binlake import typemap
from binlake.typemap import (
    ColumnType,
    UnsupportedTypeError,
    column_type_from_binlog,
    column_type_from_information_schema,
    encode_binlog_value,
    prepare_binlog_column,
    source_select_sql,
    spark_parse_sql,
    spark_type,
    table_map_column_types,
)

C = ColumnType


# --- specs -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("tinyint", C("tinyint")),
        ("bigint unsigned", C("bigint", unsigned=True)),
        ("decimal(65,30)", C("decimal", precision=65, scale=30)),
        ("bit(64)", C("bit", precision=64)),
        ("binary(16)", C("binary", precision=16)),
        ("datetime", C("datetime", scale=0)),
        ("timestamp(6)", C("timestamp", scale=6)),
        ("time(2)", C("time", scale=2)),
        ("enum('a','b''c','d\\\\e','')", C("enum", values=("a", "b'c", "d\\e", ""))),
        ("set('x,y','z')", C("set", values=("x,y", "z"))),
        ("longtext", C("longtext")),
        ("geometrycollection", C("geometrycollection")),
        ("uuid", C("uuid")),
    ],
)
def test_spec_round_trip(spec: str, expected: ColumnType) -> None:
    assert ColumnType.parse(spec) == expected
    assert expected.spec == spec
    assert ColumnType.parse(expected.spec) == expected


def test_temporal_scale_defaults_to_zero() -> None:
    assert C("datetime") == C("datetime", scale=0)
    assert C("time").spec == "time"


@pytest.mark.parametrize(
    "bad",
    ["", "int(", "decimal(10)", "varchar(10)", "vector(3)", "enum('a", "frobnicate"],
)
def test_parse_rejects_garbage(bad: str) -> None:
    with pytest.raises(ValueError):
        ColumnType.parse(bad)


def test_invalid_type_values_are_rejected() -> None:
    with pytest.raises(UnsupportedTypeError, match="vector"):
        C("vector")
    with pytest.raises(ValueError):
        C("decimal", precision=66, scale=0)
    with pytest.raises(ValueError):
        C("time", scale=7)
    with pytest.raises(ValueError):
        C("varchar", unsigned=True)


# --- information_schema constructor --------------------------------------------------------------

@pytest.mark.parametrize(
    ("data_type", "column_type", "charset", "expected"),
    [
        ("int", "int(10) unsigned zerofill", None, "int unsigned"),
        ("tinyint", "tinyint(1)", None, "tinyint"),
        ("bigint", "bigint(20) unsigned", None, "bigint unsigned"),
        ("decimal", "decimal(5,2) unsigned", None, "decimal(5,2)"),
        ("decimal", "decimal(65,30)", None, "decimal(65,30)"),
        ("float", "float(10,2)", None, "float"),
        ("double", "double", None, "double"),
        ("float", "float unsigned", None, "float"),
        ("bit", "bit(1)", None, "bit(1)"),
        ("year", "year(4)", None, "year"),
        ("date", "date", None, "date"),
        ("datetime", "datetime(6)", None, "datetime(6)"),
        ("timestamp", "timestamp", None, "timestamp"),
        ("time", "time(2)", None, "time(2)"),
        ("char", "char(5)", "utf8mb4", "char"),
        ("varchar", "varchar(255)", "latin1", "varchar"),
        ("longtext", "longtext", "utf8mb4", "longtext"),
        ("binary", "binary(16)", None, "binary(16)"),
        ("varbinary", "varbinary(3)", None, "varbinary"),
        ("mediumblob", "mediumblob", None, "mediumblob"),
        ("enum", "enum('a,b','c,''d','g,''h','x\\\\y','')", "utf8mb4", "enum('a,b','c,''d','g,''h','x\\\\y','')"),
        ("set", "set('p''q','r')", "utf8mb4", "set('p''q','r')"),
        ("json", "json", None, "json"),
        ("point", "point", None, "point"),
        ("geomcollection", "geomcollection", None, "geometrycollection"),
        ("uuid", "uuid", None, "uuid"),
        ("inet6", "inet6", None, "inet6"),
    ],
)
def test_from_information_schema(data_type: str, column_type: str, charset: str | None, expected: str) -> None:
    assert column_type_from_information_schema(data_type, column_type, charset) == ColumnType.parse(expected)


def test_enum_labels_keep_quotes_and_backslashes() -> None:
    ct = column_type_from_information_schema("enum", "enum('c,''d','x\\\\y')", "utf8mb4")
    assert ct.values == ("c,'d", "x\\y")


def test_information_schema_rejects_unknown_types_and_charsets() -> None:
    with pytest.raises(UnsupportedTypeError, match="vector"):
        column_type_from_information_schema("vector", "vector(3)", None)
    with pytest.raises(UnsupportedTypeError, match="armscii8"):
        column_type_from_information_schema("varchar", "varchar(5)", "armscii8")


# --- binlog constructor (Columns shaped like pymysqlreplication's) ---------------------------------

def col(type_code: int, name: str = "c", **attrs: object) -> SimpleNamespace:
    base = {"unsigned": False, "character_set_name": None, "collation_name": None,
            "enum_values": None, "set_values": None}
    base.update(attrs)
    return SimpleNamespace(type=type_code, name=name, **base)


UTF8 = {"character_set_name": "utf8", "collation_name": "utf8mb4_general_ci"}
BIN = {"character_set_name": "binary", "collation_name": "binary"}


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        (col(1, unsigned=True), "tinyint unsigned"),
        (col(2), "smallint"),
        (col(9, unsigned=True), "mediumint unsigned"),
        (col(3), "int"),
        (col(8, unsigned=True), "bigint unsigned"),
        (col(246, precision=65, decimals=30), "decimal(65,30)"),
        (col(4, unsigned=True, size=4), "float"),
        (col(5, size=8), "double"),
        (col(16, bits=10, bytes=2), "bit(10)"),
        (col(13, unsigned=True), "year"),
        (col(10), "date"),
        (col(18, fsp=3), "datetime(3)"),
        (col(17, fsp=0), "timestamp"),
        (col(19, fsp=6), "time(6)"),
        (col(254, max_length=20, **UTF8), "char"),
        (col(15, max_length=40, **UTF8), "varchar"),
        (col(254, max_length=16, **BIN), "binary(16)"),
        (col(15, max_length=3, **BIN), "varbinary"),
        (col(252, length_size=1, **UTF8), "tinytext"),
        (col(252, length_size=4, **UTF8), "longtext"),
        (col(252, length_size=3, **BIN), "mediumblob"),
        (col(247, enum_values=["", "x", "y"], size=1, **UTF8), "enum('x','y')"),
        (col(248, set_values=["a", "b"], size=1, **UTF8), "set('a','b')"),
        (col(245, length_size=4), "json"),
        (col(255, length_size=4, **BIN), "geometry"),
        (col(255, length_size=4, geometry_type=1, **BIN), "point"),
    ],
)
def test_from_binlog(column: SimpleNamespace, expected: str) -> None:
    assert column_type_from_binlog(column) == ColumnType.parse(expected)


def test_binlog_needs_declared_type_for_mariadb_uuid_and_inet() -> None:
    uuid_column = col(254, max_length=16, **BIN)
    assert column_type_from_binlog(uuid_column) == C("binary", precision=16)
    assert column_type_from_binlog(uuid_column, declared=C("uuid")) == C("uuid")
    assert column_type_from_binlog(col(254, max_length=4, **BIN), declared=C("inet4")) == C("inet4")
    with pytest.raises(ValueError, match="does not match"):
        column_type_from_binlog(uuid_column, declared=C("inet4"))


def test_binlog_declared_must_match_layout() -> None:
    with pytest.raises(ValueError, match="stale"):
        column_type_from_binlog(col(3), declared=C("bigint"))
    with pytest.raises(ValueError):
        column_type_from_binlog(col(18, fsp=3), declared=C("datetime", scale=6))


def test_binlog_rejects_old_formats() -> None:
    with pytest.raises(UnsupportedTypeError, match="FORCE"):
        column_type_from_binlog(col(11))
    with pytest.raises(UnsupportedTypeError, match="FORCE"):
        column_type_from_binlog(col(0))
    with pytest.raises(UnsupportedTypeError, match="FORCE"):
        column_type_from_binlog(col(12), declared=C("datetime", scale=3))
    assert column_type_from_binlog(col(12), declared=C("datetime")) == C("datetime")


def test_latin1_enum_labels_come_from_declared_type() -> None:
    latin1 = {"character_set_name": "cp1252", "collation_name": "latin1_swedish_ci"}
    column = col(247, enum_values=["", "", "b"], size=1, **latin1)  # 'é' lost by the library
    with pytest.raises(UnsupportedTypeError, match="declared"):
        column_type_from_binlog(column)
    declared = C("enum", values=("é", "b"))
    prepare_binlog_column(column, declared)
    assert column.enum_values == ["", "é", "b"]
    assert column_type_from_binlog(column, declared) == declared


def test_prepare_sets_exact_codecs() -> None:
    cases = {"ucs2_general_ci": "aé€", "utf16_bin": "a😀", "utf32_general_ci": "a😀", "utf16le_general_ci": "a😀",
             "latin1_swedish_ci": "\x81€é", "latin2_general_ci": "Žluťoučký"}
    mysql_bytes = {"ucs2_general_ci": "aé€".encode("utf-16-be"), "utf16_bin": "a😀".encode("utf-16-be"),
                   "utf32_general_ci": "a😀".encode("utf-32-be"), "utf16le_general_ci": "a😀".encode("utf-16-le"),
                   "latin1_swedish_ci": b"\x81\x80\xe9", "latin2_general_ci": "Žluťoučký".encode("iso8859-2")}
    for collation, text in cases.items():
        column = col(15, max_length=40, character_set_name="whatever", collation_name=collation)
        prepare_binlog_column(column)
        assert mysql_bytes[collation].decode(column.character_set_name) == text


def test_prepare_rejects_charsets_without_exact_codec() -> None:
    with pytest.raises(UnsupportedTypeError, match="armscii8"):
        prepare_binlog_column(col(15, max_length=4, collation_name="armscii8_general_ci"))


def test_table_map_column_types_reads_geometry_subtypes() -> None:
    event = SimpleNamespace(
        columns=[col(3, "id"), col(255, "p", length_size=4, **BIN), col(255, "g", length_size=4, **BIN)],
        optional_metadata=SimpleNamespace(geometry_type_list=[1, 0]),
    )
    assert table_map_column_types(event) == [C("int"), C("point"), C("geometry")]


# --- Spark side --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("tinyint", "tinyint"), ("tinyint unsigned", "smallint"), ("smallint unsigned", "int"),
        ("mediumint", "int"), ("mediumint unsigned", "int"), ("int unsigned", "bigint"),
        ("bigint", "bigint"), ("bigint unsigned", "decimal(20,0)"), ("decimal(38,10)", "decimal(38,10)"),
        ("decimal(39,0)", "string"), ("float", "float"), ("double", "double"), ("bit(1)", "boolean"),
        ("bit(63)", "bigint"), ("bit(64)", "decimal(20,0)"), ("year", "smallint"), ("date", "date"),
        ("datetime(6)", "timestamp_ntz"), ("timestamp(3)", "timestamp"), ("time(6)", "string"),
        ("varchar", "string"), ("longtext", "string"), ("binary(16)", "binary"), ("longblob", "binary"),
        ("enum('a')", "string"), ("set('a')", "string"), ("json", "string"), ("point", "binary"),
        ("uuid", "string"), ("inet6", "string"),
    ],
)
def test_spark_type(spec: str, expected: str) -> None:
    assert spark_type(ColumnType.parse(spec)) == expected


ALL_SPECS = [
    "tinyint", "tinyint unsigned", "smallint", "mediumint unsigned", "int", "bigint unsigned", "decimal(10,2)",
    "decimal(65,30)", "float", "double", "bit(1)", "bit(8)", "bit(64)", "year", "date", "datetime(3)",
    "timestamp(6)", "time(2)", "char", "varchar", "text", "binary(4)", "varbinary", "blob", "enum('a')",
    "set('a','b')", "json", "geometry", "point", "uuid", "inet4", "inet6",
]


def _balanced(sql: str) -> bool:
    depth = 0
    for ch in re.sub(r"'[^']*'", "", sql):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_expressions_are_well_formed(spec: str) -> None:
    ct = ColumnType.parse(spec)
    parse = spark_parse_sql(ct, "`value`")
    select = source_select_sql(ct, "`my col`")
    assert "`value`" in parse and _balanced(parse)
    assert "`my col`" in select and _balanced(select)
    target = spark_type(ct).upper()
    assert target in parse or "UNHEX(" in parse or "TIMESTAMP" in parse


def test_timestamp_text_is_read_as_utc() -> None:
    assert spark_parse_sql(C("timestamp"), "v") == "CAST(CONCAT(CAST(v AS STRING), 'Z') AS TIMESTAMP)"


# --- binlog value encoding ---------------------------------------------------------------------

@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        ("tinyint", -128, "-128"),
        ("bigint unsigned", 18446744073709551615, "18446744073709551615"),
        ("decimal(65,30)", Decimal("-12345678901234567890123456789012345.123456789012345678901234567890"),
         "-12345678901234567890123456789012345.123456789012345678901234567890"),
        ("decimal(10,4)", Decimal("-123.45"), "-123.4500"),
        ("decimal(20,10)", Decimal("0E-10"), "0.0000000000"),
        ("decimal(23,0)", Decimal("12345678912345678912345"), "12345678912345678912345"),
        ("decimal(7,7)", Decimal("1E-7"), "0.0000001"),
        ("float", 0.12345670163631439, "0.1234567"),
        ("float", 3.4028234663852886e38, "3.4028235e+38"),
        ("float", 1.401298464324817e-45, "1e-45"),
        ("float", 16777216.0, "16777216.0"),
        ("float", 42.41999816894531, "42.42"),
        ("double", 0.30000000000000004, "0.30000000000000004"),
        ("double", -84.84, "-84.84"),
        ("bit(1)", "1", "1"),
        ("bit(10)", "0000000101", "5"),
        ("bit(64)", "1" * 64, "18446744073709551615"),
        ("year", 1900, "0"),
        ("year", 2155, "2155"),
        ("date", dt.date(1000, 1, 1), "1000-01-01"),
        ("date", dt.date(1, 1, 1), "0001-01-01"),
        ("datetime", dt.datetime(999, 12, 31, 23, 59, 59), "0999-12-31 23:59:59"),
        ("datetime(2)", dt.datetime(2020, 1, 1, 10, 0, 0, 770000), "2020-01-01 10:00:00.77"),
        ("datetime(6)", dt.datetime(2020, 1, 1), "2020-01-01 00:00:00.000000"),
        ("timestamp(3)", dt.datetime(1970, 1, 1, 0, 0, 1, 500000), "1970-01-01 00:00:01.500"),
        ("timestamp", dt.datetime(2038, 1, 19, 3, 14, 7), "2038-01-19 03:14:07"),
        ("time", dt.timedelta(hours=-517, minutes=-51, seconds=-4), "-517:51:04"),
        ("time(6)", dt.timedelta(hours=838, minutes=59, seconds=59), "838:59:59.000000"),
        ("time(2)", dt.timedelta(minutes=-20, seconds=-38), "-00:20:38.00"),
        ("char", "ab", "ab"),
        ("binary(4)", b"A", "41000000"),
        ("binary(16)", "", "00000000000000000000000000000000"),
        ("varbinary", b"\x00\xff\x00", "00FF00"),
        ("blob", "", ""),
        ("enum('x','y')", "y", "y"),
        ("enum('x','y')", "", ""),
        ("set('a','b','c')", {"c", "a"}, "a,c"),
        ("json", b"abc", '"abc"'),
        ("longtext", '{"a": [1,2]}', '{"a": [1,2]}'),
        ("json", {b"a": [1, 2.5, None, True], b"b": "é"}, '{"a": [1, 2.5, null, true], "b": "é"}'),
        ("point", b"\x00\x00\x00\x00\x01\x01\x00\x00\x00" + bytes(8) + b"\x00" * 6 + b"\xf0?",
         "000000000101000000" + "00" * 8 + "000000000000F03F"),
        ("uuid", b"\x12>Eg\xe8\x9b\x12\xd3\xa4VBf\x14\x17@", "123e4567-e89b-12d3-a456-426614174000"),
        ("uuid", "", "00000000-0000-0000-0000-000000000000"),
        ("inet4", b"\x01\x02\x03", "1.2.3.0"),
        ("inet6", b"\x00" * 15 + b"\x01", "::1"),
        ("inet6", "", "::"),
        ("inet6", b"\x00" * 10 + b"\xff\xff\x01\x02\x03\x04", "::ffff:1.2.3.4"),
        ("inet6", b"\x00" * 12 + b"\x01\x02\x03\x04", "::1.2.3.4"),
        ("inet6", b"\x00" * 14 + b"\x01", "::100"),
        ("inet6", bytes.fromhex("20010db8000000000000ff0000428329"), "2001:db8::ff00:42:8329"),
        ("inet6", b"\x00\x01", "1::"),
        ("inet6", bytes.fromhex("fe800000000000000001"), "fe80::1:0:0:0"),
    ],
)
def test_encode_binlog_value(spec: str, value: object, expected: str) -> None:
    assert encode_binlog_value(ColumnType.parse(spec), value) == expected


@pytest.mark.parametrize(
    ("library_value", "expected"),
    [
        # what pymysqlreplication 1.0.17 returns for MariaDB's '-00:00:01.56', '-838:59:58.999999', '-1:00:00.5'
        (dt.timedelta(days=-1, seconds=86398, microseconds=560000), "-00:00:01.56"),
        (dt.timedelta(days=-35, seconds=3601, microseconds=999999), "-838:59:58.999999"),
        (dt.timedelta(days=-1, seconds=82799, microseconds=500000), "-01:00:00.50"),
    ],
)
def test_negative_time_with_fraction_is_corrected(library_value: dt.timedelta, expected: str) -> None:
    scale = len(expected.rsplit(".", 1)[1])
    assert encode_binlog_value(C("time", scale=scale), library_value) == expected


def test_zero_values_are_null() -> None:
    assert encode_binlog_value(C("timestamp"), dt.datetime(1970, 1, 1)) is None
    assert encode_binlog_value(C("date"), None) is None
    assert encode_binlog_value(C("datetime", scale=6), None) is None


def test_empty_set_is_told_from_null_by_none_source() -> None:
    ct = C("set", values=("a", "b"))
    assert encode_binlog_value(ct, None, none_source="empty set") == ""
    assert encode_binlog_value(ct, None, none_source="null") is None
    assert encode_binlog_value(ct, None) is None
    assert encode_binlog_value(ct, set()) == ""


def test_encode_rejects_wrong_values() -> None:
    with pytest.raises(ValueError, match="not labels"):
        encode_binlog_value(C("set", values=("a",)), {"z"})
    with pytest.raises(ValueError):
        encode_binlog_value(C("date"), "2020-01-01")
    with pytest.raises(UnsupportedTypeError, match="prepare"):
        encode_binlog_value(C("varchar"), b"\x00a")


def test_float32_text_matches_numpy_shortest_repr() -> None:
    np = pytest.importorskip("numpy")
    rng = random.Random(7)
    patterns = [rng.getrandbits(32) for _ in range(20000)]
    patterns += [(e << 23) | m for e in range(1, 255) for m in (0, 1, 0x7FFFFF)]  # around powers of two
    for bits in patterns:
        value = struct.unpack("<f", struct.pack("<I", bits))[0]
        if value != value or value in (float("inf"), float("-inf")):
            continue
        text = typemap.float32_text(value)
        assert struct.unpack("<f", struct.pack("<f", float(text)))[0] == value
        assert float(text) == float(str(np.float32(value))), (bits, text, str(np.float32(value)))


def test_uca1400_collation_ids() -> None:
    assert typemap.charset_of_collation_id(2304) == "utf8mb4"  # utf8mb4_uca1400_ai_ci
    assert typemap.charset_of_collation_id(2048) == "utf8mb3"
    assert typemap.charset_of_collation_id(2816 + 5) == "utf16"
    assert typemap.charset_of_collation_id(45) is None  # known to the library


def test_table_map_resolves_collations_the_library_does_not_know() -> None:
    # what the library leaves for utf16_uca1400_ai_ci: its utf8 guess and no collation
    unknown = {"character_set_name": "utf8", "collation_name": None}
    event = SimpleNamespace(
        columns=[col(3, "id"), col(15, "a", max_length=80, **unknown), col(252, "b", length_size=2, **BIN),
                 col(15, "c", max_length=80, **unknown)],
        optional_metadata=SimpleNamespace(geometry_type_list=[], charset_collation_list=[2816, 63, 2304],
                                          enum_and_set_collation_list=[]),
    )
    assert table_map_column_types(event) == [C("int"), C("varchar"), C("blob"), C("varchar")]
    assert [c.character_set_name for c in event.columns[1::2]] == ["utf-16-be", "utf-8"]
    table_map_column_types(event)  # idempotent
    assert event.columns[1].character_set_name == "utf-16-be"
