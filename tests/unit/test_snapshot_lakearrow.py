"""The direct write path's pure parts: wire → lake conversions, Delta statistics, the table plan (no server)."""

from __future__ import annotations

import datetime as dt
import json
import struct
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from binlake.rules import TableTarget
from binlake.snapshot.arrowread import BYTES, DOUBLE, LONG, TEXT
from binlake.snapshot.deltars import Field, TableLayout
from binlake.snapshot.direct import META, NotDirect, lake_plan, raw_schema
from binlake.snapshot.discovery import SourceColumn, SourceTable
from binlake.snapshot.lakearrow import (
    LSN_SOURCE,
    READ_TS_SOURCE,
    FileStats,
    LakeColumn,
    LakePlan,
    arrow_type,
    convertible,
    delta_type_name,
    stats_column_names,
    to_lake_array,
)
from binlake.typemap import ColumnType

UTC = dt.UTC


@pytest.mark.parametrize(("form", "delta_type", "wire", "expected"), [
    (LONG, "byte", [-128, 127, None], [-128, 127, None]),
    (LONG, "short", [-32768, 65535 // 2], [-32768, 32767]),
    (LONG, "integer", [16777215, -2147483648], [16777215, -2147483648]),
    (LONG, "long", [-9223372036854775808], [-9223372036854775808]),
    (LONG, "boolean", [0, 1, None], [False, True, None]),
    (DOUBLE, "double", [-1.7976931348623157e308, 1e-300], [-1.7976931348623157e308, 1e-300]),
    (TEXT, "decimal(20,0)", ["18446744073709551615", "0"], [Decimal("18446744073709551615"), Decimal(0)]),
    (TEXT, "decimal(38,10)", ["-9999999999999999999999999999.9999999999"],
     [Decimal("-9999999999999999999999999999.9999999999")]),
    (TEXT, "decimal(10,2)", ["-0.01", None], [Decimal("-0.01"), None]),
    (TEXT, "date", ["1000-01-01", "9999-12-31", "2024-02-29"],
     [dt.date(1000, 1, 1), dt.date(9999, 12, 31), dt.date(2024, 2, 29)]),
    (TEXT, "timestamp_ntz", ["1000-01-01 00:00:00", "9999-12-31 23:59:59.999999", "2024-01-02 03:04:05.5"],
     [dt.datetime(1000, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
      dt.datetime(2024, 1, 2, 3, 4, 5, 500000)]),
    (TEXT, "timestamp", ["1970-01-01 00:00:01.000", "2038-01-19 03:14:07.999"],
     [dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), dt.datetime(2038, 1, 19, 3, 14, 7, 999000, tzinfo=UTC)]),
    (TEXT, "string", ["", "😀 café", None], ["", "😀 café", None]),
    (BYTES, "binary", [b"\x00", b"", None], [b"\x00", b"", None]),
    (TEXT, "binary", ["000000000101000000000000000000F03F0000000000000040"],
     [bytes.fromhex("000000000101000000000000000000F03F0000000000000040")]),  # geometry as hex
])
def test_every_lake_type_from_its_wire_form(form: str, delta_type: str, wire: list[Any], expected: list[Any]) -> None:
    raw = {LONG: pa.int64(), DOUBLE: pa.float64(), BYTES: pa.binary(), TEXT: pa.string()}[form]
    result = to_lake_array(pa.array(wire, raw), form, delta_type)
    assert result.type == arrow_type(delta_type)
    assert result.to_pylist() == expected
    assert convertible(form, delta_type)


def test_float_is_narrowed_to_the_float32_it_came_from() -> None:
    values = [struct.unpack("f", struct.pack("f", v))[0] for v in (3e38, 0.1, 1.1, -1.5)]  # exact doubles of floats
    result = to_lake_array(pa.array(values, pa.float64()), DOUBLE, "float")
    assert result.type == pa.float32()
    assert [struct.pack("f", v) for v in result.to_pylist()] == [struct.pack("f", v) for v in values]


@pytest.mark.parametrize(("delta_type", "bad"), [
    ("decimal(10,2)", "1.234"), ("decimal(4,0)", "12345"), ("date", "2024-02-30"), ("date", "10000-01-01"),
    ("timestamp_ntz", "2024-01-01 24:00:00"),
])
def test_a_value_that_would_change_is_refused_not_rounded(delta_type: str, bad: str) -> None:
    with pytest.raises(pa.ArrowInvalid):
        to_lake_array(pa.array([bad]), TEXT, delta_type)


def test_an_integer_outside_its_type_is_refused() -> None:
    with pytest.raises(pa.ArrowInvalid):
        to_lake_array(pa.array([128]), LONG, "byte")


@pytest.mark.parametrize(("spark", "delta"), [
    ("tinyint", "byte"), ("smallint", "short"), ("int", "integer"), ("bigint", "long"),
    ("decimal(20,0)", "decimal(20,0)"), ("timestamp_ntz", "timestamp_ntz"), ("string", "string"),
])
def test_delta_type_names(spark: str, delta: str) -> None:
    assert delta_type_name(spark) == delta


def test_wire_forms_that_cannot_be_converted_exactly_are_not_planned() -> None:
    assert not convertible(DOUBLE, "decimal(10,2)")
    assert not convertible(LONG, "string")
    with pytest.raises(ValueError, match="no Arrow type"):
        arrow_type("array<int>")


def plan(*columns: LakeColumn, tight: bool = False) -> LakePlan:
    return LakePlan(columns, tight)


def test_lake_batch_drops_the_empty_chunks_position_row_and_adds_the_metadata_columns() -> None:
    p = plan(LakeColumn("id", "id", None, "integer", META, LONG, True),
             LakeColumn("_binlake_lsn", "_binlake_lsn", None, "long", LSN_SOURCE, None, True),
             LakeColumn("_binlake_commit_ts", "_binlake_commit_ts", None, "timestamp", READ_TS_SOURCE, None, False))
    batch = pa.RecordBatch.from_arrays(
        [pa.array(["binlog.000001"] * 2), pa.array([7, 7]), pa.array([1_000_001, 1_000_001]), pa.array([1, None]),
         pa.array([5, None])], schema=raw_schema([LONG]))
    lake = p.lake_batch(batch, 3, 7, 1_000_001)
    assert lake.to_pylist() == [{"id": 5, "_binlake_lsn": 7,
                                 "_binlake_commit_ts": dt.datetime(1970, 1, 1, 0, 0, 1, 1, tzinfo=UTC)}]
    empty = p.lake_batch(batch.slice(1), 3, 7, 1_000_001)
    assert empty.num_rows == 0


def test_file_stats_are_deltas_json_under_physical_names() -> None:
    p = plan(LakeColumn("id", "col-1", 1, "long", META, LONG, True),
             LakeColumn("day", "col-2", 2, "date", META + 1, TEXT, True),
             LakeColumn("amount", "col-3", 3, "decimal(10,2)", META + 2, TEXT, True),
             LakeColumn("note", "col-4", 4, "string", META + 3, TEXT, False), tight=True)
    stats = FileStats(p)
    for ids, days in (([3, None, 1], ["2024-01-02", None, "1000-01-01"]), ([9], ["2023-12-31"])):
        arrays = [pa.array(ids, pa.int64()), to_lake_array(pa.array(days), TEXT, "date"),
                  pa.array([None] * len(ids), pa.decimal128(10, 2)), pa.array(["x"] * len(ids))]
        stats.add(pa.RecordBatch.from_arrays(arrays, schema=p.schema()))
    assert json.loads(stats.to_json()) == {
        "numRecords": 4,
        "minValues": {"col-1": 1, "col-2": "1000-01-01"},
        "maxValues": {"col-1": 9, "col-2": "2024-01-02"},
        "nullCount": {"col-1": 1, "col-2": 1, "col-3": 4},
        "tightBounds": True,
    }
    assert p.schema().field("col-1").metadata == {b"PARQUET:field_id": b"1"}


def test_stats_columns_follow_the_tables_settings() -> None:
    names = [f"c{i}" for i in range(40)]
    assert stats_column_names({}, names) == set(names[:32])
    assert stats_column_names({"delta.dataSkippingNumIndexedCols": "-1"}, names) == set(names)
    assert stats_column_names({"delta.dataSkippingNumIndexedCols": "2"}, names) == {"c0", "c1"}
    listed = {"delta.dataSkippingStatsColumns": "`a,b`, c ,`d``e`"}
    assert stats_column_names(listed, names) == {"a,b", "c", "d`e"}


def source_table(*specs: str) -> SourceTable:
    target = TableTarget("shop", "t", "lake", "t")
    columns = tuple(SourceColumn(f"s{i}", f"l{i}", ColumnType.parse(s), True) for i, s in enumerate(specs))
    return SourceTable(target, columns, ("s0",), (columns[0].type,), "InnoDB", 10, 100)


def layout(*fields: tuple[str, str], mapped: bool = False) -> TableLayout:
    return TableLayout(tuple(Field(n, t, f"col-{n}" if mapped else n, i + 1 if mapped else None)
                             for i, (n, t) in enumerate(fields)),
                       {"delta.dataSkippingStatsColumns": "`l0`,`_binlake_lsn`"}, False)


META_FIELDS = (("_binlake_lsn", "long"), ("_binlake_commit_ts", "timestamp"))


def test_the_plan_maps_every_lake_column_to_its_source_or_metadata() -> None:
    table = source_table("bigint unsigned", "datetime(3)", "varchar")
    p = lake_plan(table, layout(("l0", "decimal(20,0)"), ("l1", "timestamp_ntz"), ("l2", "string"), *META_FIELDS,
                                mapped=True))
    assert [(c.name, c.physical, c.source, c.form, c.stats) for c in p.columns] == [
        ("l0", "col-l0", META, TEXT, True), ("l1", "col-l1", META + 1, TEXT, False),
        ("l2", "col-l2", META + 2, TEXT, False), ("_binlake_lsn", "col-_binlake_lsn", LSN_SOURCE, None, True),
        ("_binlake_commit_ts", "col-_binlake_commit_ts", READ_TS_SOURCE, None, False)]
    assert p.schema().field("col-l1").type == pa.timestamp("us")


@pytest.mark.parametrize(("fields", "why"), [
    ((("l0", "integer"), ("extra", "string"), *META_FIELDS), "not a source column"),
    ((("l0", "long"), *META_FIELDS), "maps to integer"),
    ((*META_FIELDS,), "not in the lake table"),
])
def test_a_table_the_direct_path_cannot_write_exactly_is_refused(fields: tuple[tuple[str, str], ...],
                                                                 why: str) -> None:
    with pytest.raises(NotDirect, match=why):
        lake_plan(source_table("int"), layout(*fields))


@pytest.mark.parametrize(("master", "slots"), [
    ("local", 1), ("local[3]", 3), ("local[2, 4]", 2), ("spark://h:7077", None), (None, None), ("yarn", None),
])
def test_local_masters_run_direct_chunks_in_the_driver(master: str | None, slots: int | None) -> None:
    from binlake.snapshot.session import local_parallelism

    assert local_parallelism(master) == slots
    assert (local_parallelism("local[*]") or 0) >= 1


def test_string_bounds_longer_than_deltas_prefix_are_left_out() -> None:
    p = plan(LakeColumn("k", "k", None, "string", META, TEXT, True), LakeColumn("s", "s", None, "string", META, TEXT,
                                                                              True))
    stats = FileStats(p)
    stats.add(pa.RecordBatch.from_arrays([pa.array(["b", "a"]), pa.array(["x" * 33, "é"])], schema=p.schema()))
    assert json.loads(stats.to_json()) == {"numRecords": 2, "minValues": {"k": "a"}, "maxValues": {"k": "b"},
                                           "nullCount": {"k": 0, "s": 0}}
