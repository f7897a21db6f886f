"""Canonical change-log text → Arrow values (binlake.merge.arrowdecode): the values Spark's casts give,
or a refusal (the part then goes to Spark) — never a guess."""

from __future__ import annotations

import datetime
import decimal

import pyarrow as pa
import pytest

from binlake.merge.arrowdecode import UndecodableValue, arrow_type, decodable, decode_texts
from binlake.typemap import float32_text

UTC = datetime.UTC


@pytest.mark.parametrize(("spark_type", "texts", "expected"), [
    ("tinyint", ["-128", "127", None], [-128, 127, None]),
    ("bigint", ["-9223372036854775808", "9223372036854775807"], [-9223372036854775808, 9223372036854775807]),
    ("decimal(20,0)", ["18446744073709551615"], [decimal.Decimal("18446744073709551615")]),
    ("decimal(10,2)", ["-12345678.90", "0.00"], [decimal.Decimal("-12345678.90"), decimal.Decimal("0.00")]),
    ("double", ["5e-324", "-1.7976931348623157e+308", "0.1", "-0.0"], [5e-324, -1.7976931348623157e308, 0.1, -0.0]),
    ("boolean", ["0", "1", None], [False, True, None]),
    ("date", ["0001-01-01", "9999-12-31"], [datetime.date(1, 1, 1), datetime.date(9999, 12, 31)]),
    ("timestamp_ntz", ["2020-01-02 03:04:05.5", "9999-12-31 23:59:59.999999", "1970-01-01 00:00:00"],
     [datetime.datetime(2020, 1, 2, 3, 4, 5, 500000), datetime.datetime(9999, 12, 31, 23, 59, 59, 999999),
      datetime.datetime(1970, 1, 1)]),
    ("timestamp", ["2038-01-19 03:14:07.499"], [datetime.datetime(2038, 1, 19, 3, 14, 7, 499000, tzinfo=UTC)]),
    ("binary", ["00ff10", "", None], [b"\x00\xff\x10", b"", None]),
    ("string", ["-838:59:59.00", "héllo\n"], ["-838:59:59.00", "héllo\n"]),
])
def test_canonical_texts_decode_to_the_lake_value(spark_type: str, texts: list[str | None],
                                                  expected: list[object]) -> None:
    array = decode_texts(spark_type, texts)
    assert array.type == arrow_type(spark_type)
    assert array.to_pylist() == expected


def test_float_text_reads_back_the_float32_it_came_from() -> None:
    values = [3.4028234663852886e38, 1.401298464324817e-45, 0.1, 16777217.0, -2.5]
    texts = [float32_text(v) for v in values]
    expected = pa.array(values, pa.float32()).to_pylist()
    assert decode_texts("float", texts).to_pylist() == expected


@pytest.mark.parametrize(("spark_type", "text"), [
    ("int", "12a"), ("int", "99999999999"), ("decimal(5,2)", "1.234"), ("date", "2020-13-01"),
    ("boolean", "true"), ("binary", "abc"), ("timestamp_ntz", "yesterday"),
])
def test_a_text_spark_would_turn_into_null_is_refused(spark_type: str, text: str) -> None:
    with pytest.raises(UndecodableValue):
        decode_texts(spark_type, [text])


def test_only_lake_types_with_a_decoding_are_decodable() -> None:
    assert decodable("decimal(38,10)") and decodable("timestamp_ntz")
    assert not decodable("array<int>") and not decodable("interval")
