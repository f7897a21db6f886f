"""binlake.validation.canonical: the SQL both sides use for chunk checksums, and when it refuses.

Expected SQL is written out by hand; whether MariaDB and Spark really produce the same text for
every type is checked against a server in tests/integration/test_validate.py.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from binlake.chunks import WHOLE, ChunkRange
from binlake.typemap import ColumnType
from binlake.validation.canonical import (
    FREE_TEXT,
    UNASSIGNED,
    LakeKey,
    NotExact,
    checksum_problem,
    key_order_problem,
    lake_chunk_index_sql,
    lake_row_hash_sql,
    lake_text_sql,
    source_row_hash_sql,
    source_text_sql,
    spark_column,
    spark_literal,
)

INT = ColumnType("int")


@pytest.mark.parametrize("spec", ["float", "double"])
def test_floating_point_has_no_exact_text(spec: str) -> None:
    ct = ColumnType.parse(spec)
    assert checksum_problem(ct) is not None
    with pytest.raises(NotExact):
        source_text_sql(ct, "`x`")
    with pytest.raises(NotExact):
        lake_text_sql(ct, "`x`")


@pytest.mark.parametrize("spec", ["tinyint", "bigint unsigned", "decimal(65,30)", "decimal(10,2)", "bit(1)", "bit(64)",
                                  "year", "date", "datetime(6)", "timestamp(3)", "time(6)", "varchar", "varbinary",
                                  "binary(4)", "enum('a','b')", "set('x')", "json", "uuid", "inet6"])
def test_every_other_type_has_a_text(spec: str) -> None:
    assert checksum_problem(ColumnType.parse(spec)) is None


def test_source_text_is_the_full_load_value_as_utf8mb4() -> None:
    assert source_text_sql(ColumnType("tinyint"), "`t`") == "CONVERT(CAST(`t` AS SIGNED) USING utf8mb4)"
    assert source_text_sql(ColumnType("varbinary"), "`b`") == "CONVERT(HEX(`b`) USING utf8mb4)"
    assert source_text_sql(ColumnType("varchar"), "`s`") == "CONVERT(`s` USING utf8mb4)"


def test_timestamps_are_compared_as_epoch_microseconds_on_both_sides() -> None:
    ct = ColumnType("timestamp", scale=6)
    assert source_text_sql(ct, "`ts`") == (
        "CONVERT(CASE WHEN UNIX_TIMESTAMP(`ts`) = 0 THEN NULL "
        "ELSE CAST(UNIX_TIMESTAMP(`ts`) * 1000000 AS SIGNED) END USING utf8mb4)")
    assert lake_text_sql(ct, "`ts`") == "CAST(UNIX_MICROS(`ts`) AS STRING)"


def test_lake_text_follows_the_lake_type() -> None:
    assert lake_text_sql(ColumnType("bit", precision=1), "`b`") == "CAST(CAST(`b` AS INT) AS STRING)"
    assert lake_text_sql(ColumnType("bit", precision=64), "`b`") == "CAST(`b` AS STRING)"
    assert lake_text_sql(ColumnType("bigint", unsigned=True), "`u`") == "CAST(`u` AS STRING)"
    assert lake_text_sql(ColumnType("binary", precision=4), "`b`") == "HEX(`b`)"
    assert lake_text_sql(ColumnType("date"), "`d`") == "DATE_FORMAT(`d`, 'yyyy-MM-dd')"
    assert lake_text_sql(ColumnType("datetime"), "`d`") == "DATE_FORMAT(`d`, 'yyyy-MM-dd HH:mm:ss')"
    assert lake_text_sql(ColumnType("datetime", scale=3), "`d`") == "DATE_FORMAT(`d`, 'yyyy-MM-dd HH:mm:ss.SSS')"
    # text in the lake is the source's own text: used as is
    for spec in ("time(6)", "decimal(65,30)", "json", "enum('a')", "set('a','b')", "inet6", "longtext"):
        assert lake_text_sql(ColumnType.parse(spec), "`v`") == "`v`"


def test_small_decimals_are_rebuilt_from_spark_scientific_notation() -> None:
    sql = lake_text_sql(ColumnType("decimal", precision=38, scale=30), "`d`")
    # Spark prints 0 as 0E-30 and 1e-20 as 1.0000000000E-20: mantissa digits, left-padded to the scale
    assert sql.startswith("CASE WHEN INSTR(CAST(`d` AS STRING), 'E') > 0 THEN ")
    assert "LPAD(REPLACE(REPLACE(SUBSTRING_INDEX(CAST(`d` AS STRING), 'E', 1), '-', ''), '.', ''), 30, '0')" in sql
    assert "CONCAT(IF(`d` < 0, '-', ''), '0.', " in sql
    assert sql.endswith("ELSE CAST(`d` AS STRING) END")


def test_row_hash_fields_are_terminated_or_length_prefixed_with_a_null_marker() -> None:
    source = source_row_hash_sql([(INT, "`a`"), (ColumnType("varchar"), "`b`")])
    assert source == (
        "CAST(CONV(LEFT(MD5(CONCAT("
        "IFNULL(CONCAT(CONVERT(`a` USING utf8mb4), ';'), 'N'), "
        "IFNULL(CONCAT(LENGTH(CONVERT(`b` USING utf8mb4)), ':', CONVERT(`b` USING utf8mb4)), 'N')"
        ")), 16), 16, 10) AS UNSIGNED)")
    digest = ("MD5(CONCAT(COALESCE(CONCAT(CAST(`a` AS STRING), ';'), 'N'), "
              "COALESCE(CONCAT(CAST(OCTET_LENGTH(`b`) AS STRING), ':', `b`), 'N')))")
    # the same 64 bits in two halves: h = high * 2**32 + low
    assert lake_row_hash_sql([(INT, "`a`"), (ColumnType("varchar"), "`b`")]) == (
        f"CAST(CONV(SUBSTR({digest}, 1, 8), 16, 10) AS BIGINT)",
        f"CAST(CONV(SUBSTR({digest}, 9, 8), 16, 10) AS BIGINT)")
    with pytest.raises(ValueError):
        source_row_hash_sql([])


@pytest.mark.parametrize("spec", ["varchar", "char", "longtext", "json", "enum('a')", "set('a')"])
def test_free_text_types_are_length_prefixed(spec: str) -> None:
    assert ColumnType.parse(spec).base in FREE_TEXT
    assert "LENGTH(" in source_row_hash_sql([(ColumnType.parse(spec), "`v`")])


def test_field_encoding_is_injective() -> None:
    """The same encoding in Python: per table layout (free text or not, per column), values that a
    separator-joined text would confuse stay apart."""

    def row_text(layout: tuple[bool, ...], values: tuple[str | None, ...]) -> str:
        return "".join("N" if v is None else f"{len(v.encode())}:{v}" if free else f"{v};"
                       for free, v in zip(layout, values, strict=True))

    rows_by_layout: dict[tuple[bool, ...], list[tuple[str | None, ...]]] = {
        (True, True): [("a,b", "c"), ("a", "b,c"), (None, ""), ("", None), ("N", None), (None, "N"), ("1:a", ""),
                       ("", "1:a"), ("é", "x"), ("éx", ""), ("", "")],
        (False, False): [("12", "3"), ("1", "23"), (None, "1"), ("1", None), ("-1", "2"), ("-12", None)],
        (False, True): [("12", "3"), ("1", "23"), ("1", "2;3"), (None, ""), (None, None), ("1", None), ("1", "")],
    }
    for layout, rows in rows_by_layout.items():
        texts = [row_text(layout, r) for r in rows]
        assert len(set(texts)) == len(texts), layout


def test_one_chunk_needs_no_assignment() -> None:
    assert lake_chunk_index_sql([WHOLE], []) == "0"
    # even a key whose order Spark cannot follow: there is nothing to split
    assert lake_chunk_index_sql([WHOLE], [LakeKey(ColumnType("varchar"), "`k`", "utf8mb4_general_ci")]) == "0"


def test_integer_ranges_assign_by_their_ends() -> None:
    ranges = [ChunkRange(None, (10,)), ChunkRange((10,), (20,)), ChunkRange((20,), None)]
    sql = lake_chunk_index_sql(ranges, [LakeKey(INT, "`id`")])
    assert sql == ("CASE WHEN `id` IS NULL THEN -1 WHEN ((`id` < CAST('10' AS INT))) THEN 0 "
                   "WHEN ((`id` < CAST('20' AS INT))) THEN 1 ELSE 2 END")
    assert UNASSIGNED == -1


def test_composite_keys_compare_lexicographically() -> None:
    keys = [LakeKey(INT, "`a`"), LakeKey(ColumnType("varbinary"), "`b`")]
    sql = lake_chunk_index_sql([ChunkRange(None, (1, b"\x00x")), ChunkRange((1, b"\x00x"), None)], keys)
    assert sql == ("CASE WHEN `a` IS NULL OR `b` IS NULL THEN -1 "
                   "WHEN ((`a` < CAST('1' AS INT)) OR (`a` = CAST('1' AS INT) AND `b` < X'0078')) THEN 0 ELSE 1 END")


def test_binary_collations_compare_padded_unless_nopad() -> None:
    ranges = [ChunkRange(None, ("m",)), ChunkRange(("m",), None)]
    pad = lake_chunk_index_sql(ranges, [LakeKey(ColumnType("varchar"), "`k`", "utf8mb4_bin")])
    assert ("RPAD(`k`, GREATEST(CHAR_LENGTH(`k`), 1), ' ') < "
            "RPAD(DECODE(UNHEX('6D'), 'UTF-8'), GREATEST(CHAR_LENGTH(`k`), 1), ' ')") in pad
    nopad = lake_chunk_index_sql(ranges, [LakeKey(ColumnType("varchar"), "`k`", "utf8mb4_nopad_bin")])
    assert "`k` < DECODE(UNHEX('6D'), 'UTF-8')" in nopad and "RPAD" not in nopad


@pytest.mark.parametrize(("spec", "collation"), [
    ("varchar", "utf8mb4_general_ci"),      # 'a' = 'A'
    ("varchar", "utf8mb4_unicode_520_ci"),
    ("varchar", "latin1_bin"),              # latin1 byte order is not code point order
    ("varchar", None),
    ("time", None),                         # TIME is text in the lake: '-01:00:00' < '-00:00:01' as text
    ("decimal(50,2)", None),                # text in the lake
    ("double", None),
])
def test_keys_spark_cannot_order_like_mariadb_are_refused(spec: str, collation: str | None) -> None:
    key = LakeKey(ColumnType.parse(spec), "`k`", collation)
    assert key_order_problem(key) is not None
    with pytest.raises(NotExact):
        lake_chunk_index_sql([ChunkRange(None, ("m",)), ChunkRange(("m",), None)], [key])


def test_boundaries_without_an_exact_lake_value_are_refused() -> None:
    # the driver returns a zero date as text: the lake holds NULL for it
    with pytest.raises(NotExact):
        spark_literal(ColumnType("date"), "0000-00-00")
    with pytest.raises(NotExact):
        spark_literal(ColumnType("date"), dt.datetime(2024, 1, 1))
    with pytest.raises(NotExact):
        spark_literal(INT, "7")


def test_literals_are_exact_lake_values() -> None:
    assert spark_literal(ColumnType("bigint", unsigned=True), 18446744073709551615) == (
        "CAST('18446744073709551615' AS DECIMAL(20,0))")
    assert spark_literal(ColumnType("decimal", precision=10, scale=2), Decimal("-0.50")) == (
        "CAST('-0.50' AS DECIMAL(10,2))")
    assert spark_literal(ColumnType("date"), dt.date(999, 1, 2)) == "DATE'0999-01-02'"
    assert spark_literal(ColumnType("datetime", scale=6), dt.datetime(2024, 1, 2, 3, 4, 5, 6)) == (
        "TIMESTAMP_NTZ'2024-01-02 03:04:05.000006'")
    assert spark_literal(ColumnType("timestamp"), dt.datetime(2024, 1, 2, 3, 4, 5)) == (
        "CAST('2024-01-02 03:04:05.000000Z' AS TIMESTAMP)")
    assert spark_literal(ColumnType("varchar"), "it's é") == "DECODE(UNHEX('6974277320C3A9'), 'UTF-8')"


def test_spark_column_doubles_backticks() -> None:
    assert spark_column("we`ird") == "`we``ird`"
