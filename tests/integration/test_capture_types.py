"""Every type end to end: source rows → binlog → capture → Parquet change log, value by value.

Two independent checks: (1) every captured value equals what the stock pymysqlreplication decoding
plus typemap gives for the same binlog events (typemap's own tests show that equals the full load),
(2) hand-written canonical values for the edge cases, so both cannot agree on the same mistake.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from capture_support import capture_range, captured, comparable, declared_types, master_position, oracle_changes
from conftest import include_schema_rules

from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB

MakeConfig = Callable[..., PipelineConfig]

TYPES_TABLE = """
CREATE TABLE types (
  id INT PRIMARY KEY,
  ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED, mi MEDIUMINT, mu MEDIUMINT UNSIGNED,
  i INT, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED,
  d1 DECIMAL(10,2), d2 DECIMAL(65,30), d3 DECIMAL(5,5), f FLOAT, db DOUBLE,
  b1 BIT(1), b10 BIT(10), b64 BIT(64), y YEAR,
  dt DATE, dtm0 DATETIME, dtm3 DATETIME(3), dtm6 DATETIME(6),
  ts0 TIMESTAMP NULL, ts3 TIMESTAMP(3) NULL, tm0 TIME, tm2 TIME(2), tm6 TIME(6),
  c CHAR(10), vc VARCHAR(300), tx TEXT, lt LONGTEXT, l1 VARCHAR(20) CHARACTER SET latin1,
  u16 VARCHAR(10) CHARACTER SET utf16,
  bn BINARY(4), vb VARBINARY(32), bl BLOB,
  e ENUM('a','b,c','d''e'), s SET('x','y','z'), j JSON, g GEOMETRY, p POINT,
  uu UUID, i6 INET6, i4 INET4
)"""

ROWS = [
    {"id": "1", "ti": "127", "tu": "255", "si": "-32768", "su": "65535", "mi": "-8388608", "mu": "16777215",
     "i": "-2147483648", "iu": "4294967295", "bi": "-9223372036854775808", "bu": "18446744073709551615",
     "d1": "-12345678.91", "d2": "'" + "9" * 35 + "." + "9" * 30 + "'", "d3": "-0.00001", "f": "1.1",
     "db": "3.141592653589793", "b1": "b'1'", "b10": "b'1000000001'", "b64": "18446744073709551615",
     "y": "2018", "dt": "'1000-01-01'", "dtm0": "'9999-12-31 23:59:59'", "dtm3": "'2024-02-29 12:00:00.5'",
     "dtm6": "'2024-02-29 23:59:59.000001'", "ts0": "'2038-01-19 03:14:07'", "ts3": "'1970-01-01 00:00:01.001'",
     "tm0": "'-838:59:59'", "tm2": "'-00:00:01.56'", "tm6": "'12:34:56.000001'", "c": "'ab  '",
     "vc": "'emoji 😀 \"q\" \\\\ % ü'", "tx": "REPEAT('x', 65535)", "lt": "REPEAT('é', 100000)", "l1": "X'81E980'",
     "u16": "'ü€'", "bn": "X'0102'", "vb": "X'00FF00'", "bl": "REPEAT(X'00', 300)", "e": "'d''e'",
     "s": "'z,x'", "j": "'{\"a\": [1, 2.5, \"é\"], \"b\": null}'", "g": "ST_GeomFromText('POINT(1 2)', 4326)",
     "p": "POINT(1.5, -2)", "uu": "'123e4567-e89b-12d3-a456-426614174000'", "i6": "'::ffff:1.2.3.4'",
     "i4": "'10.0.0.1'"},
    {"id": "2", "y": "0", "dt": "'0000-00-00'", "dtm0": "'0000-00-00 00:00:00'", "ts0": "'0000-00-00 00:00:00'",
     "e": "'nope'", "s": "''", "b1": "b'0'", "bn": "X'00'", "vb": "''", "tm6": "'-00:00:00.000001'",
     "d2": "'-0.000000000000000000000000000001'", "f": "-3.40282e38", "db": "-2.2250738585072014e-308"},
    {"id": "3"},  # every other column NULL
]

SPOT = {  # id → column → the canonical string, written out by hand
    "1": {"tu": "255", "bu": "18446744073709551615", "d1": "-12345678.91", "d3": "-0.00001", "f": "1.1",
          "b10": "513", "b64": "18446744073709551615", "y": "2018", "dtm3": "2024-02-29 12:00:00.500",
          "ts3": "1970-01-01 00:00:01.001", "tm0": "-838:59:59", "tm2": "-00:00:01.56", "c": "ab",
          "vc": 'emoji 😀 "q" \\ % ü', "l1": "\x81é€", "u16": "ü€", "bn": "01020000", "vb": "00FF00",
          "e": "d'e", "s": "x,z", "g": "E6100000" "01" "01000000" "000000000000F03F" "0000000000000040",
          "uu": "123e4567-e89b-12d3-a456-426614174000", "i6": "::ffff:1.2.3.4", "i4": "10.0.0.1"},
    "2": {"y": "0", "dt": None, "dtm0": None, "ts0": None, "e": "", "s": "", "b1": "0", "bn": "00000000",
          "vb": "", "tm6": "-00:00:00.000001", "d2": "-0.000000000000000000000000000001"},
    "3": {"ti": None, "s": None, "e": None, "j": None, "bl": None},
}


def insert_rows(db: LocalMariaDB, schema: str) -> None:
    with db.connect(schema) as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")
        cur.execute("SET time_zone = '+00:00'")
        cur.execute(TYPES_TABLE)
        for row in ROWS:
            cur.execute(f"INSERT INTO types ({', '.join(row)}) VALUES ({', '.join(row.values())})")
        cur.execute("UPDATE types SET vc = CONCAT(IFNULL(vc, ''), '+'), id = id + 10 WHERE id IN (1, 3)")
        cur.execute("DELETE FROM types WHERE id = 2")


def test_every_type_is_captured_exactly(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: MakeConfig
) -> None:
    start = master_position(mariadb)
    insert_rows(mariadb, source_db)
    end = master_position(mariadb)
    config = make_config(lake_dir, include_schema_rules(source_db), capture={
        "start": "position", "start_file": start.file, "start_pos": start.pos, "flush_seconds": 0.2})
    capture_range(config, end)

    got = captured(config)
    oracle = oracle_changes(mariadb, source_db, start, end, {"types": declared_types(mariadb, source_db, "types")})
    assert [r["op"] for r in got] == ["DDL", "I", "I", "I", "U", "U", "D"]
    assert comparable(got) == comparable(oracle)

    inserted = {r["after"]["id"]: r["after"] for r in got if r["op"] == "I"}
    for row_id, expected in SPOT.items():
        assert {c: inserted[row_id][c] for c in expected} == expected, f"row {row_id}"
    assert inserted["1"]["tx"] == "x" * 65535 and inserted["1"]["lt"] == "é" * 100000
    assert json.loads(inserted["1"]["j"]) == {"a": [1, 2.5, "é"], "b": None}
    assert inserted["1"]["bl"] == "00" * 300
    update = next(r for r in got if r["op"] == "U" and r["before"]["id"] == "1")
    assert update["after"]["id"] == "11" and update["after"]["vc"] == SPOT["1"]["vc"] + "+"
    columns = {c["name"]: c for c in update["columns"]}
    assert columns["id"] == {"name": "id", "type": "int", "pk": True}
    assert (columns["bu"]["type"], columns["uu"]["type"], columns["p"]["type"]) == ("bigint unsigned", "uuid", "point")
    assert all(r["schema"] == source_db and r["table"] == "types" and r["commit_ts"] for r in got)
    assert all(r["gtid"] and r["gtid"].startswith("0-1-") for r in got)
    assert all(r["xid"] is not None for r in got if r["op"] != "DDL")


def test_library_decoder_fallback_gives_the_same_records(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: MakeConfig, monkeypatch: Any
) -> None:
    """Forcing every table onto pymysqlreplication's own row decoding changes no record."""
    from binlake.capture import rowdecode

    start = master_position(mariadb)
    insert_rows(mariadb, source_db)
    end = master_position(mariadb)
    settings = {"start": "position", "start_file": start.file, "start_pos": start.pos, "flush_seconds": 0.2}
    fast = make_config(lake_dir / "fast", include_schema_rules(source_db), capture=settings)
    capture_range(fast, end)
    monkeypatch.setattr(rowdecode, "_FAST_TYPES", frozenset())
    slow = make_config(lake_dir / "slow", include_schema_rules(source_db), capture=settings)
    capture_range(slow, end)
    drop_ts = [{k: v for k, v in r.items() if k != "columns"} for r in captured(slow)]
    assert [{k: v for k, v in r.items() if k != "columns"} for r in captured(fast)] == drop_ts
