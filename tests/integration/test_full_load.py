"""Full load against the test MariaDB and the session's local Spark with Delta.

Every test gets its own source database and lake folder; the job runs in-process
(:func:`binlake.snapshot.job.run_full_load`) except the one test that proves the ``spark-submit``
entry point. Data is compared value by value: source rows read with pymysql vs lake rows.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import include_schema_rules
from pyspark.sql import functions as F

from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.devs3 import LocalS3
from binlake.lake import Lake, snapshot_state_key, table_key
from binlake.positions import BinlogPosition
from binlake.snapshot.job import FullLoadError, run_full_load
from binlake.snapshot.report import TableReport
from binlake.snapshot.state import TableState

pytestmark = pytest.mark.spark

MakeConfig = Callable[..., PipelineConfig]
REPO = Path(__file__).resolve().parents[2]


def load(spark: Any, config: PipelineConfig, **kwargs: Any) -> list[TableReport]:
    return run_full_load(config, spark, **kwargs)


def lake_rows(spark: Any, root: Path | str, schema: str, table: str) -> list[dict[str, Any]]:
    """The lake table of target ``schema.table`` (its folder named by the lake's name encoding)."""
    return [r.asDict() for r in spark.read.format("delta").load(f"{root}/{table_key(schema, table)}").collect()]


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
    config = make_config(lake_dir, include_schema_rules(source_db), full_load={"chunk_rows": 200})
    [report] = load(spark, config)
    assert report.status == "complete" and report.rows == len(ids)
    assert_ids(spark, lake_dir, source_db, "t", ids)
    state = state_of(config, source_db, "t")
    assert state.complete and len(state.chunks) >= len(ids) // 200
    assert all(c.committed and c.position is not None for c in state.chunks)
    assert max(c.rows for c in state.chunks) <= 2 * 200
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


# ---------------------------------------------------------------------------------------------
# keys and identifiers


def test_composite_string_keys_and_identifiers_needing_quotes(
    spark: Any, mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: MakeConfig
) -> None:
    mariadb.execute(
        "CREATE TABLE `order` (`näme key` VARCHAR(40), `order` INT, `select` VARCHAR(10), "
        "`we``ird` INT, PRIMARY KEY (`näme key`, `order`)) COLLATE utf8mb4_general_ci", source_db)
    names = ["a", "B", "c'q", "d\\e", "É😀", "z z", "Zz", "", "%_", "x" * 40]
    rows = [(name, n, f"s{i}-{n}", i * 100 + n) for i, name in enumerate(names) for n in range(-3, 40)]
    with mariadb.connect(source_db) as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO `order` VALUES (%s, %s, %s, %s)", rows)
    config = make_config(lake_dir, include_schema_rules(source_db), full_load={"chunk_rows": 37})
    [report] = load(spark, config)
    assert report.rows == len(rows) and report.chunks > 5
    lake = [(r["näme key"], r["order"], r["select"], r["we`ird"])
            for r in lake_rows(spark, lake_dir, source_db, "order")]
    assert len(lake) == len(set(lake)) == len(rows)
    assert sorted(lake) == sorted(rows)
    state = state_of(config, source_db, "order")
    assert state.key_columns == ("näme key", "order")
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{lake_dir}/{source_db}/order`").collect()[0]
    assert detail["properties"]["delta.dataSkippingStatsColumns"] == "`näme key`,`order`,`_binlake_lsn`"
    # `we``ird` rules out the change data feed (Delta's MERGE with the feed cannot handle a back-quote)
    assert detail["properties"]["delta.enableChangeDataFeed"] == "false"
    assert "delta.enableDeletionVectors" not in detail["properties"]  # lake.reader_compatibility broad
    assert detail["properties"]["delta.columnMapping.mode"] == "name"  # Delta refuses `näme key` without it
    assert sum(c.rows for c in state.chunks) == len(rows)


def test_string_key_and_table_with_space_and_unicode_name(
    spark: Any, mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: MakeConfig
) -> None:
    mariadb.execute("CREATE TABLE `my tåble` (k VARBINARY(16) PRIMARY KEY, v INT)", source_db)
    keys = [bytes([i % 256, (i * 7) % 256]) + b"\x00" * (i % 3) for i in range(600)]
    keys = sorted(set(keys))
    with mariadb.connect(source_db) as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO `my tåble` VALUES (%s, %s)", [(k, i) for i, k in enumerate(keys)])
    config = make_config(lake_dir, include_schema_rules(source_db), full_load={"chunk_rows": 50})
    [report] = load(spark, config)
    assert report.rows == len(keys)
    lake = sorted((bytes(r["k"]), r["v"]) for r in lake_rows(spark, lake_dir, source_db, "my tåble"))
    assert lake == [(k, i) for i, k in enumerate(keys)]
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{lake_dir}/{table_key(source_db, 'my tåble')}`").collect()[0]
    assert detail["properties"]["delta.enableChangeDataFeed"] == "true"


# ---------------------------------------------------------------------------------------------
# table mapping


def test_selection_and_transformation_rules(
    spark: Any, mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: MakeConfig
) -> None:
    for table in ("Orders", "order_items", "audit_log"):
        mariadb.execute(f"CREATE TABLE `{table}` (id INT PRIMARY KEY, Secret VARCHAR(5), Amount INT)", source_db)
        mariadb.execute(f"INSERT INTO `{table}` VALUES (1, 's', 10), (2, 't', 20)", source_db)

    def rule(rule_id: int, **fields: Any) -> dict[str, Any]:
        return {"rule-id": str(rule_id), "rule-name": f"r{rule_id}", **fields}

    locator = {"schema-name": source_db, "table-name": "%"}
    mappings = {"rules": [
        rule(1, **{"rule-type": "selection", "object-locator": locator, "rule-action": "include"}),
        rule(2, **{"rule-type": "selection", "object-locator": {"schema-name": source_db, "table-name": "audit%"},
                   "rule-action": "exclude"}),
        rule(3, **{"rule-type": "transformation", "rule-target": "schema",
                   "object-locator": {"schema-name": source_db}, "rule-action": "rename", "value": "shop"}),
        rule(4, **{"rule-type": "transformation", "rule-target": "table", "object-locator": locator,
                   "rule-action": "convert-lowercase"}),
        rule(5, **{"rule-type": "transformation", "rule-target": "table",
                   "object-locator": {"schema-name": source_db, "table-name": "order_items"},
                   "rule-action": "add-prefix", "value": "raw_"}),
        rule(6, **{"rule-type": "transformation", "rule-target": "column",
                   "object-locator": {**locator, "column-name": "Secret"}, "rule-action": "remove-column"}),
        rule(7, **{"rule-type": "transformation", "rule-target": "column",
                   "object-locator": {**locator, "column-name": "Amount"}, "rule-action": "rename",
                   "value": "amount_cents"}),
    ]}
    config = make_config(lake_dir, mappings, full_load={"tables_in_parallel": 2})
    reports = load(spark, config)
    assert sorted(r.target for r in reports) == ["shop.orders", "shop.raw_order_items"]
    assert sorted(p.name for p in (lake_dir / "shop").iterdir()) == ["orders", "raw_order_items"]
    for table in ("orders", "raw_order_items"):
        frame = spark.read.format("delta").load(f"{lake_dir}/shop/{table}")
        assert frame.columns == ["id", "amount_cents", "_binlake_lsn", "_binlake_commit_ts"]
        assert sorted((r["id"], r["amount_cents"]) for r in frame.collect()) == [(1, 10), (2, 20)]
    # state files are named by source table, and name the target
    state = state_of(config, source_db, "order_items")
    assert (state.schema, state.table) == ("shop", "raw_order_items")
    assert not Lake.from_config(config).exists(snapshot_state_key(source_db, "audit_log"))


# ---------------------------------------------------------------------------------------------
# preparation modes


def test_prep_modes(
    spark: Any, mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: MakeConfig
) -> None:
    mariadb.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))", source_db)
    insert_ids(mariadb, source_db, "t", list(range(1, 31)))
    rules = include_schema_rules(source_db)

    def run(mode: str) -> TableReport:
        [report] = load(spark, make_config(lake_dir, rules, full_load={"chunk_rows": 10,
                                                                        "target_table_prep_mode": mode}))
        return report

    def versions() -> int:
        return int(spark.sql(f"DESCRIBE HISTORY delta.`{lake_dir}/{source_db}/t`").count())

    assert run("DROP_AND_CREATE").rows == 30
    first_versions = versions()
    assert run("DROP_AND_CREATE").rows == 30  # the table is recreated: same rows, fresh history
    assert_ids(spark, lake_dir, source_db, "t", list(range(1, 31)))
    assert versions() == first_versions

    mariadb.execute("DELETE FROM t WHERE id > 20", source_db)
    assert run("TRUNCATE_BEFORE_LOAD").rows == 20  # rows deleted, history kept
    assert_ids(spark, lake_dir, source_db, "t", list(range(1, 21)))
    assert versions() > first_versions

    skipped = run("DO_NOTHING")  # complete already: left alone
    assert skipped.status == "skipped"
    assert_ids(spark, lake_dir, source_db, "t", list(range(1, 21)))

    Lake.from_config(make_config(lake_dir, rules)).delete(snapshot_state_key(source_db, "t"))
    insert_ids(mariadb, source_db, "t", [100])
    assert run("DO_NOTHING").rows == 21  # no state: appended to the existing table, as DMS does
    rows = lake_rows(spark, lake_dir, source_db, "t")
    assert len(rows) == 41 and sum(r["id"] == 100 for r in rows) == 1


# ---------------------------------------------------------------------------------------------
# resume


class Crash(Exception):
    """Stands in for the job dying."""


def crash_after(count: int) -> Callable[[Any, int], None]:
    seen: list[int] = []

    def hook(_table: Any, chunk_id: int) -> None:
        seen.append(chunk_id)
        if len(seen) == count:
            raise Crash(f"simulated crash after chunk {chunk_id}")

    return hook


def test_resume_after_failure_rereads_no_committed_chunk(
    spark: Any, mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: MakeConfig
) -> None:
    mariadb.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))", source_db)
    ids = list(range(1, 101))
    insert_ids(mariadb, source_db, "t", ids)
    config = make_config(lake_dir, include_schema_rules(source_db),
                         full_load={"chunk_rows": 10, "max_parallel_chunks": 1})
    with pytest.raises(FullLoadError, match="simulated crash"):
        load(spark, config, after_record=crash_after(3))
    before = state_of(config, source_db, "t")
    assert before.status == "loading"
    done = {c.id: c for c in before.chunks if c.committed}
    assert len(done) == 3 and len(before.chunks) == 10

    # a second crash between a chunk's Delta commit and its state record
    with pytest.raises(FullLoadError, match="simulated crash"):
        load(spark, config, after_commit=crash_after(2))
    middle = state_of(config, source_db, "t")
    assert sum(c.committed for c in middle.chunks) == 4  # the 5th is in Delta, not yet recorded

    mariadb.execute("UPDATE t SET v = 'changed'", source_db)  # visible only to chunks read from now on
    [report] = load(spark, config)
    after = state_of(config, source_db, "t")
    assert report.status == "complete" and after.complete and after.load_id == before.load_id
    assert after.rows == 100
    for chunk_id, chunk in done.items():  # not read again: same position and read time
        assert after.chunks[chunk_id].position == chunk.position
        assert after.chunks[chunk_id].read_at == chunk.read_at
    rows = lake_rows(spark, lake_dir, source_db, "t")
    assert sorted(r["id"] for r in rows) == ids  # nothing doubled, nothing lost
    changed = {r["id"] for r in rows if r["v"] == "changed"}
    assert len(changed) == 50  # the 5 chunks committed before the update kept their snapshot values
    lsn_of = {c.id: c.position.lsn for c in after.chunks if c.position is not None}
    assert {r["_binlake_lsn"] for r in rows} == set(lsn_of.values())


# ---------------------------------------------------------------------------------------------
# tables without a primary key


def test_no_primary_key_policy(
    spark: Any, mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: MakeConfig,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mariadb.execute("CREATE TABLE nokey (a INT, b VARCHAR(5))", source_db)
    mariadb.execute("INSERT INTO nokey VALUES (1, 'x'), (1, 'x'), (NULL, NULL)", source_db)
    mariadb.execute("CREATE TABLE empty_nokey (a INT)", source_db)
    rules = include_schema_rules(source_db)
    with pytest.raises(FullLoadError, match=r"no primary key: .*nokey.*no_primary_key"):
        load(spark, make_config(lake_dir, rules, full_load={"no_primary_key": "refuse"}))
    assert not (lake_dir / source_db).exists()

    config = make_config(lake_dir, rules, full_load={"no_primary_key": "load_whole", "chunk_rows": 1})
    with caplog.at_level("WARNING", logger="binlake.snapshot"):
        reports = {r.source.split(".")[1]: r for r in load(spark, config)}
    assert "no primary key" in caplog.text
    assert reports["nokey"].rows == 3 and reports["nokey"].chunks == 1
    assert reports["empty_nokey"].rows == 0
    rows = sorted((r["a"] or 0, r["b"] or "") for r in lake_rows(spark, lake_dir, source_db, "nokey"))
    assert rows == [(0, ""), (1, "x"), (1, "x")]
    empty = state_of(config, source_db, "empty_nokey")
    assert empty.complete and empty.chunks[0].position is not None  # an empty chunk still has its position


# ---------------------------------------------------------------------------------------------
# consistency: each chunk is a snapshot at its recorded position


def test_chunks_are_snapshots_at_their_positions(
    spark: Any, mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: MakeConfig
) -> None:
    mariadb.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))", source_db)
    insert_ids(mariadb, source_db, "t", list(range(1, 61)))
    config = make_config(lake_dir, include_schema_rules(source_db),
                         full_load={"chunk_rows": 20, "max_parallel_chunks": 1})
    writes: dict[int, BinlogPosition] = {}

    def write_between_chunks(_table: Any, chunk_id: int) -> None:
        """After chunk n is read, change a row of every chunk and note the binlog end after the commit."""
        mariadb.execute(f"UPDATE t SET v = 'after{chunk_id}' WHERE id IN (5, 25, 45)", source_db)
        mariadb.execute(f"DELETE FROM t WHERE id = {10 + 20 * chunk_id + 1}", source_db)
        with mariadb.connect() as conn:
            from binlake.source import master_position
            writes[chunk_id] = master_position(conn)

    [report] = load(spark, config, after_record=write_between_chunks)
    state = state_of(config, source_db, "t")
    rows = {r["id"]: r for r in lake_rows(spark, lake_dir, source_db, "t")}
    positions = [c.position for c in state.chunks]
    assert all(p is not None for p in positions)
    assert positions == sorted(positions)  # read one after the other
    for chunk in state.chunks:
        assert chunk.position is not None
        in_chunk = [r for r in rows.values() if chunk.range.contains((r["id"],))]
        assert {r["_binlake_lsn"] for r in in_chunk} == {chunk.position.lsn}
        # the chunk holds exactly the writes committed at or before its position
        seen = [n for n, pos in writes.items() if pos <= chunk.position]
        expected_v = f"after{max(seen)}" if seen else None
        for key in (5, 25, 45):
            if chunk.range.contains((key,)):
                assert rows[key]["v"] == (expected_v or f"v{key}")
        for n, _pos in writes.items():
            deleted = 10 + 20 * n + 1
            if chunk.range.contains((deleted,)):
                assert (deleted in rows) == (n not in seen)
    assert state.to_dict()["min_lsn"] == positions[0].lsn  # type: ignore[union-attr]
    assert state.low_watermark <= positions[0]  # type: ignore[operator]
    raw = json.loads(Lake.from_config(config).get_bytes(snapshot_state_key(source_db, "t")))
    assert raw["status"] == "complete" and raw["rows"] == report.rows == len(rows)
    assert raw["chunks"][0]["position"]["gtid"]  # MariaDB GTID at the chunk position


# ---------------------------------------------------------------------------------------------
# the spark-submit entry point, writing to S3


@pytest.mark.s3
def test_spark_submit_entry_point_writes_to_s3(
    mariadb: LocalMariaDB, source_db: str, s3_server: LocalS3, s3_bucket: str, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    password = "s3cr3t-Pw-never-logged"
    mariadb.execute(f"CREATE USER IF NOT EXISTS 'loader'@'127.0.0.1' IDENTIFIED BY '{password}'")
    mariadb.execute("GRANT SELECT, BINLOG MONITOR ON *.* TO 'loader'@'127.0.0.1'")
    mariadb.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))", source_db)
    insert_ids(mariadb, source_db, "t", list(range(1, 251)))
    s3 = s3_server.client()
    config_path = tmp_path / "pipeline.yaml"
    config_path.write_text(json.dumps({
        "name": "s3test",
        "source": {"host": "127.0.0.1", "port": mariadb.port, "user": "loader",
                   "password_env": "BINLAKE_TEST_PASSWORD"},
        "lake": {"root": f"s3a://{s3_bucket}/lake", "s3": {"endpoint": s3_server.endpoint, "path_style": True}},
        "table_mappings": include_schema_rules(source_db),
        "full_load": {"chunk_rows": 100},
        "spark": {"master": "local[2]"},
    }))  # JSON is YAML
    env = {**os.environ, "BINLAKE_TEST_PASSWORD": password, "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable}
    spark_submit = Path(sys.executable).parent / "spark-submit"
    result = subprocess.run([str(spark_submit), str(REPO / "jobs" / "full_load.py"), "--config", str(config_path)],
                            env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    assert password not in output
    assert "step 5/5: report" in output and "complete" in result.stdout

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix=f"lake/{source_db}/t/")["Contents"]]
    assert f"lake/{source_db}/t/_delta_log/00000000000000000000.json" in keys
    rows = 0
    for key in (k for k in keys if k.endswith(".parquet") and "/_delta_log/" not in k):
        body = s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
        rows += pq.read_table(io.BytesIO(body)).num_rows
    assert rows == 250
    state_key = f"lake/_binlake/snapshots/{source_db}/t.json"
    state = json.loads(s3.get_object(Bucket=s3_bucket, Key=state_key)["Body"].read())
    assert state["status"] == "complete" and state["rows"] == 250 and len(state["chunks"]) == 3
    assert state["min_lsn"] is not None and state["target"]["path"] == f"s3a://{s3_bucket}/lake/{source_db}/t"


def test_crash_while_preparing_never_leaves_a_stale_complete_state(
    spark: Any, mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: MakeConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from binlake.snapshot import delta, deltars

    mariadb.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))", source_db)
    insert_ids(mariadb, source_db, "t", list(range(1, 11)))
    config = make_config(lake_dir, include_schema_rules(source_db))
    load(spark, config)
    assert state_of(config, source_db, "t").complete

    def crash(*_args: Any, **_kwargs: Any) -> None:
        raise Crash("simulated crash between drop and create")

    monkeypatch.setattr(delta, "create_table", crash)  # Spark creates it (reader jdbc, arrow) …
    monkeypatch.setattr(deltars, "create_table", crash)  # … or delta-rs (reader direct, the default)
    with pytest.raises(FullLoadError, match="between drop and create"):
        load(spark, config)  # DROP_AND_CREATE: the table is gone, and so is the 'complete' state
    stale = state_of(config, source_db, "t")
    assert stale.status == "loading" and not stale.prepared
    monkeypatch.undo()
    [report] = load(spark, config)  # not resumed (never prepared): started over
    assert report.rows == 10 and state_of(config, source_db, "t").load_id != stale.load_id
    assert_ids(spark, lake_dir, source_db, "t", list(range(1, 11)))
