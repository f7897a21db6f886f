"""The compiled row decoder (binlake.capture.rowdecode) on hand-built binlog row images.

Byte layouts come from MySQL's documented storage formats (decimal2bin examples, TIME2/DATETIME2
packing), written out here by hand rather than produced by the code under test.
"""

from __future__ import annotations

import datetime as dt
import json
import struct
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from pymysqlreplication.constants import FIELD_TYPE

from binlake import typemap
from binlake.capture.rowdecode import (
    TableLayout,
    read_date,
    read_datetime2,
    read_decimal,
    read_time2,
    read_time2_library_form,
    read_timestamp2,
)
from binlake.rules import TableMapping


def test_decimal_vectors_from_the_mysql_manual() -> None:
    assert read_decimal(bytes.fromhex("810DFB38D204D2"), 0, 14, 4) == (Decimal("1234567890.1234"), 7)
    assert read_decimal(bytes.fromhex("7EF204C72DFB2D"), 0, 14, 4) == (Decimal("-1234567890.1234"), 7)
    assert read_decimal(bytes.fromhex("80"), 0, 1, 0) == (Decimal("0"), 1)


def test_time2_negative_fraction_follows_mysql_packing() -> None:
    # TIME(2) '-00:00:01.56': int part 0x800000-2, fraction byte (char)-56 (my_time_packed_to_binary)
    value, end = read_time2(bytes.fromhex("7FFFFEC8"), 0, 2)
    assert (value, end) == (-dt.timedelta(seconds=1, microseconds=560000), 4)
    library_form, _ = read_time2_library_form(bytes.fromhex("7FFFFEC8"), 0, 2)
    assert typemap.encode_binlog_value(typemap.ColumnType("time", scale=2), library_form) == "-00:00:01.56"
    # TIME(0) '838:59:59'
    packed = 0x800000 + ((838 << 12) | (59 << 6) | 59)
    assert read_time2(packed.to_bytes(3, "big"), 0, 0)[0] == dt.timedelta(hours=838, minutes=59, seconds=59)


def _datetime2(year: int, month: int, day: int, h: int, m: int, s: int) -> bytes:
    packed = ((year * 13 + month) << 22) | (day << 17) | (h << 12) | (m << 6) | s
    return (packed + 0x8000000000).to_bytes(5, "big")


def test_temporal_readers() -> None:
    assert read_datetime2(_datetime2(2018, 6, 9, 12, 34, 56), 0, 0) == (dt.datetime(2018, 6, 9, 12, 34, 56), 5)
    micro = _datetime2(1000, 1, 1, 0, 0, 0) + (123456).to_bytes(3, "big")
    assert read_datetime2(micro, 0, 6) == (dt.datetime(1000, 1, 1, 0, 0, 0, 123456), 8)
    assert read_datetime2(_datetime2(0, 0, 0, 0, 0, 0), 0, 0) == (None, 5)
    assert read_timestamp2((1).to_bytes(4, "big") + bytes([12]), 0, 2) == (dt.datetime(1970, 1, 1, 0, 0, 1, 120000), 5)
    assert read_timestamp2(bytes(4), 0, 0) == (None, 4)
    assert read_date(((2024 << 9) | (2 << 5) | 29).to_bytes(3, "little"), 0) == (dt.date(2024, 2, 29), 3)
    assert read_date(bytes(3), 0) == (None, 3)


def col(name: str, ftype: int, **attrs: Any) -> SimpleNamespace:
    base = {"name": name, "type": ftype, "unsigned": False, "is_primary": False, "character_set_name": None,
            "collation_name": None, "enum_values": None, "set_values": None}
    base.update(attrs)
    return SimpleNamespace(**base)


COLUMNS = [
    col("id", FIELD_TYPE.LONG, is_primary=True),
    col("name", FIELD_TYPE.VARCHAR, max_length=80, collation_name="utf8mb4_general_ci"),
    col("amount", FIELD_TYPE.NEWDECIMAL, precision=14, decimals=4),
    col("created", FIELD_TYPE.DATETIME2, fsp=0),
    col("secret", FIELD_TYPE.VARCHAR, max_length=300, collation_name="utf8mb4_general_ci"),
    col("flag", FIELD_TYPE.TINY, unsigned=True),
    col("e", FIELD_TYPE.ENUM, size=1, enum_values=["", "a", "b"], collation_name="utf8mb4_general_ci"),
    col("s", FIELD_TYPE.SET, size=1, set_values=["x", "y", "z"], collation_name="utf8mb4_general_ci"),
    col("bin", FIELD_TYPE.VARCHAR, max_length=10, collation_name="binary"),
]

MAPPING = TableMapping.parse({"rules": [
    {"rule-type": "selection", "rule-id": "1", "rule-name": "all",
     "object-locator": {"schema-name": "shop", "table-name": "%"}, "rule-action": "include"},
    {"rule-type": "transformation", "rule-id": "2", "rule-name": "rn", "rule-target": "column",
     "object-locator": {"schema-name": "shop", "table-name": "t", "column-name": "name"},
     "rule-action": "rename", "value": "full_name"},
    {"rule-type": "transformation", "rule-id": "3", "rule-name": "rm", "rule-target": "column",
     "object-locator": {"schema-name": "shop", "table-name": "t", "column-name": "secret"},
     "rule-action": "remove-column"},
]})


def layout() -> TableLayout:
    columns = [SimpleNamespace(**vars(c)) for c in COLUMNS]
    ctypes = typemap.table_map_column_types(SimpleNamespace(columns=columns))
    target = MAPPING.target_for("shop", "t")
    assert target is not None
    return TableLayout("shop", "t", columns, ctypes, target)


FULL_ROW = (
    b"\x00\x00"                                   # null bitmap (9 columns → 2 bytes), nothing NULL
    + struct.pack("<i", -7)
    + bytes([6]) + "héllo".encode()               # VARCHAR(20) utf8mb4: 1-byte length
    + bytes.fromhex("810DFB38D204D2")
    + _datetime2(2018, 6, 9, 12, 34, 56)
    + struct.pack("<H", 3) + b"pwd"               # VARCHAR(300/4…): 2-byte length, removed by a rule
    + bytes([200])
    + bytes([2])                                  # ENUM index 2 → 'b'
    + bytes([0b101])                              # SET x,z
    + bytes([2]) + b"\x00\xff"
)
NULL_ROW = bytes([0b11111110, 0b1]) + struct.pack("<i", 8)  # all NULL but id


def test_layout_columns_json_applies_rules() -> None:
    got = json.loads(layout().columns_json)
    assert [c["name"] for c in got] == ["id", "full_name", "amount", "created", "flag", "e", "s", "bin"]
    assert got[0] == {"name": "id", "type": "int", "pk": True}
    assert {c["name"]: c["type"] for c in got}["amount"] == "decimal(14,4)"


def test_decode_image_gives_canonical_json_and_skips_removed_columns() -> None:
    lay = layout()
    assert lay.fast
    data = FULL_ROW + NULL_ROW
    first, off = lay.decode_image(data, 0)
    second, end = lay.decode_image(data, off)
    assert (off, end) == (len(FULL_ROW), len(data))
    assert json.loads(first) == {
        "id": "-7", "full_name": "héllo", "amount": "1234567890.1234", "created": "2018-06-09 12:34:56",
        "flag": "200", "e": "b", "s": "x,z", "bin": "00FF",
    }
    assert json.loads(second) == {"id": "8", **dict.fromkeys(["full_name", "amount", "created", "flag", "e", "s",
                                                             "bin"])}


def test_library_path_encodes_the_same_values_the_same_way() -> None:
    lay = layout()
    library_row = {"id": -7, "name": "héllo", "amount": Decimal("1234567890.1234"),
                   "created": dt.datetime(2018, 6, 9, 12, 34, 56), "secret": "pwd", "flag": 200, "e": "b",
                   "s": {"z", "x"}, "bin": b"\x00\xff"}
    assert lay.encode_values(library_row) == lay.decode_image(FULL_ROW, 0)[0]
    assert json.loads(lay.encode_values({"id": 1, "s": None}, {"s": typemap.EMPTY_SET_SOURCE}))["s"] == ""


def test_column_names_with_percent_and_quotes_survive_the_template() -> None:
    columns = [col('we%ird"name', FIELD_TYPE.LONG)]
    target = TableMapping.parse({"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "a",
                                            "object-locator": {"schema-name": "%", "table-name": "%"},
                                            "rule-action": "include"}]}).target_for("a", "b")
    assert target is not None
    lay = TableLayout("a", "b", columns, typemap.table_map_column_types(SimpleNamespace(columns=columns)), target)
    assert json.loads(lay.decode_image(b"\x00" + struct.pack("<i", 5), 0)[0]) == {'we%ird"name': "5"}
