"""Full load against the test MariaDB and the session's local Spark with Delta.

Every test gets its own source database and lake folder; the job runs in-process
(:func:`binlake.snapshot.job.run_full_load`) except the one test that proves the ``spark-submit``
entry point. Data is compared value by value: source rows read with pymysql vs lake rows.
"""

from __future__ import annotations

import datetime as dt
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import functions as F

from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.lake import Lake, snapshot_state_key
from binlake.positions import BinlogPosition
from binlake.snapshot.job import FullLoadError, run_full_load
from binlake.snapshot.report import TableReport
from binlake.snapshot.state import TableState
from conftest import include_schema_rules

pytestmark = pytest.mark.spark

MakeConfig = Callable[..., PipelineConfig]


def load(spark: Any, config: PipelineConfig, **kwargs: Any) -> list[TableReport]:
    return run_full_load(config, spark, **kwargs)


def lake_rows(spark: Any, root: Path | str, schema: str, table: str) -> list[dict[str, Any]]:
    return [r.asDict() for r in spark.read.format("delta").load(f"{root}/{schema}/{table}").collect()]


def state_of(config: PipelineConfig, schema: str, table: str) -> TableState:
    lake = Lake.from_config(config)
    return TableState.from_json(lake.get_bytes(snapshot_state_key(schema, table)))


def insert_ids(db: LocalMariaDB, database: str, table: str, ids: list[int]) -> None:
    for start in range(0, len(ids), 5000):
        values = ",".join(f"({i}, 'v{i}')" for i in ids[start:start + 5000])
        db.execute(f"INSERT INTO `{table}` (id, v) VALUES {values}", database)


def assert_ids(spark: Any, root: Path, schema: str, table: str, expected: list[int]) -> None:
    rows = lake_rows(spark, root, schema, table)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "duplicated rows"
    assert sorted(ids) == sorted(expected)
    assert all(r["v"] == f"v{r['id']}" for r in rows)


def test_integer_chunks_with_gaps_and_skew(
    spark: Any, mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: MakeConfig
) -> None:
    mariadb.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v VARCHAR(20))", source_db)
    ids = list(range(1, 1234)) + list(range(5000, 5300, 3)) + [10**12, 10**15]  # dense, gappy, far tail
    insert_ids(mariadb, source_db, "t", ids)
    config = make_config(lake_dir, include_schema_rules(source_db), full_load={"chunk_rows": 100})
    [report] = load(spark, config)
    assert report.status == "complete" and report.rows == len(ids)
    assert_ids(spark, lake_dir, source_db, "t", ids)
    state = state_of(config, source_db, "t")
    assert state.complete and len(state.chunks) >= len(ids) // 100
    assert all(c.committed and c.position is not None for c in state.chunks)
    assert max(c.rows for c in state.chunks) <= 300
    assert sum(c.rows for c in state.chunks) == len(ids)


# ---------------------------------------------------------------------------------------------
# type fidelity

TYPES_DDL = """
CREATE TABLE types (
  id INT PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, t1 TINYINT(1), si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  d DECIMAL(10,2), d38 DECIMAL(38,10), d65 DECIMAL(65,30), f FLOAT, db DOUBLE,
  b1 BIT(1), b8 BIT(8), b64 BIT(64), y YEAR,
  dt DATE, dtm DATETIME, dtm6 DATETIME(6), ts TIMESTAMP(3) NULL DEFAULT NULL, tm TIME, tm3 TIME(3),
  c CHAR(5), vc VARCHAR(50), tx TEXT, l1 VARCHAR(20) CHARACTER SET latin1,
  bn BINARY(4), vb VARBINARY(10), bl BLOB,
  e ENUM('a','b','c'), st SET('x','y','z'), j JSON,
  g GEOMETRY, pt POINT, u UUID, i6 INET6, i4 INET4
)"""

TYPES_ROWS = [
    "(1, " + ", ".join(["NULL"] * 41) + ")",
    """(2, -128, 0, -5, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
        -99999999.99, -1.5, -0.000000000000000000000000000001, -0.25, -1.7976931348623157e308,
        b'0', b'0', b'0', 1901, '1000-01-01', '1000-01-01 00:00:00', '1000-01-01 00:00:00.000001',
        '1970-01-01 00:00:01.000', '-838:59:59', '-00:00:01.500', 'a', '', '😀 emoji', 'café',
        X'00', X'0000', X'00FF00', 'a', '', '{}', ST_GeomFromText('POINT(1 2)'), ST_GeomFromText('POINT(0 0)'),
        '00000000-0000-0000-0000-000000000000', '::', '0.0.0.0')""",
    """(3, 127, 255, 1, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807,
        18446744073709551615, 99999999.99, 9999999999999999999999999999.9999999999,
        99999999999999999999999999999999999.999999999999999999999999999999, 3e38, 0.1,
        b'1', b'11111111', b'1111111111111111111111111111111111111111111111111111111111111111', 2155,
        '9999-12-31', '9999-12-31 23:59:59', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999',
        '838:59:59', '-00:00:00.001', 'abcde', 'it''s \\\\ a "q" \\0 nul', REPEAT('ß😀', 1000), 'ÿ',
        'ab', X'00410000', X'000102FF00', 'c', 'x,z', '{"a": [1, 2.5, "é"], "b": null}',
        ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))', 4326), ST_GeomFromText('POINT(-1.5 2.25)', 4326),
        '123e4567-e89b-12d3-a456-426614174000', '2001:db8::ff00:42:8329', '255.255.255.255')""",
    """(4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1.1, 1e-300, b'1', b'101', b'1000', 0,
        '0000-00-00', '0000-00-00 00:00:00', '2020-00-05 00:00:00', '0000-00-00 00:00:00', '00:00:00',
        '12:34:56.7', ' x', 'trailing  ', 'line\nbreak\ttab', '', '', '', '', 'b', 'y', '[1, 2]',
        NULL, NULL, NULL, '::ffff:1.2.3.4', '1.2.3.4')""",
]


def time_text(value: dt.timedelta, scale: int) -> str:
    micros = value // dt.timedelta(microseconds=1)
    sign, micros = ("-" if micros < 0 else ""), abs(micros)
    seconds, fraction = divmod(micros, 1_000_000)
    text = f"{sign}{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return text + (f".{fraction:06d}"[: scale + 1] if scale else "")


def expected_value(column: str, value: Any) -> Any:
    """What the lake must hold for a source value read with pymysql (independent of binlake's code)."""
    if value is None:
        return None
    if column in ("dt", "dtm", "dtm6", "ts") and isinstance(value, str):
        return None  # zero / partly-zero dates: pymysql cannot parse them, binlake maps them to NULL
    if column in ("b1", "b8", "b64"):
        number = int.from_bytes(value, "big")
        return bool(number) if column == "b1" else number
    if column == "f":
        return struct.unpack("f", struct.pack("f", value))[0]
    if column == "d65":
        return format(value, "f")
    if column == "ts":
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if column in ("tm", "tm3"):
        return time_text(value, 3 if column == "tm3" else 0)
    if column == "st" and isinstance(value, set):
        return ",".join(label for label in ("x", "y", "z") if label in value)
    return value


def lake_value(column: str, value: Any) -> Any:
    if isinstance(value, bytearray):
        return bytes(value)
    if column == "biu" and value is not None:
        return int(value)
    return value


def test_every_type_round_trips_value_by_value(
    spark: Any, mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: MakeConfig
) -> None:
    mariadb.execute(TYPES_DDL, source_db)
    mariadb.execute("SET SESSION time_zone = '+00:00'", source_db)
    with mariadb.connect(source_db) as conn, conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        for row in TYPES_ROWS:
            cur.execute(f"INSERT INTO types VALUES {row}")
        cur.execute("SELECT * FROM types ORDER BY id")
        columns = [d[0] for d in cur.description]
        source = {row[0]: dict(zip(columns, row, strict=True)) for row in cur.fetchall()}
    config = make_config(lake_dir, include_schema_rules(source_db), full_load={"chunk_rows": 2})
    [report] = load(spark, config)
    assert report.rows == 4

    frame = spark.read.format("delta").load(f"{lake_dir}/{source_db}/types")
    frame = frame.withColumn("ts", F.date_format("ts", "yyyy-MM-dd HH:mm:ss.SSSSSS"))
    lake = {r["id"]: r.asDict() for r in frame.collect()}
    assert sorted(lake) == sorted(source)
    mismatches = [
        (key, column, source[key][column], lake[key][column])
        for key in source
        for column in columns
        if expected_value(column, source[key][column]) != lake_value(column, lake[key][column])
    ]
    assert not mismatches, "\n".join(map(repr, mismatches))
    types = dict(frame.dtypes)
    assert types["biu"] == "decimal(20,0)" and types["dtm"] == "timestamp_ntz" and types["d65"] == "string"
    assert types["_binlake_lsn"] == "bigint" and types["_binlake_commit_ts"] == "timestamp"
