"""binlake validate: a lake that equals its source passes; a changed, deleted or extra lake row is
reported as a real difference, key by key; a lake behind the source reports rows in flight."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from capture_support import write_config
from conftest import include_schema_rules
from pyspark.sql import functions as F

from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.lake import CHECKPOINT_KEY, Lake
from binlake.snapshot.job import run_full_load
from binlake.validation import exit_status, format_report, validate


def _setup(mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any) -> PipelineConfig:
    mariadb.execute("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20), price DECIMAL(8,2), "
                    "seen DATETIME(3))", source_db)
    mariadb.execute("CREATE TABLE order_lines (a INT, b VARCHAR(5), qty INT, PRIMARY KEY (a, b))", source_db)
    mariadb.execute("INSERT INTO items VALUES " + ",".join(
        f"({i}, 'item{i}', {i}.25, '2024-01-01 00:00:{i % 60:02d}.125')" for i in range(1, 301)), source_db)
    mariadb.execute("INSERT INTO order_lines VALUES (1,'x',1),(1,'y',2),(2,'x',3)", source_db)
    config: PipelineConfig = make_config(lake_dir, include_schema_rules(source_db), full_load={"chunk_rows": 70})
    run_full_load(config, spark)
    return config


def _by_table(results: list[Any]) -> dict[str, Any]:
    return {r.table.split(".", 1)[1]: r for r in results}


def test_equal_lake_passes_and_differences_are_named(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any
) -> None:
    config = _setup(mariadb, source_db, lake_dir, make_config, spark)

    results = _by_table(validate(spark, config))
    assert [(r.status, r.source_rows, r.lake_rows) for r in results.values()] == [("OK", 300, 300), ("OK", 3, 3)]
    assert results["items"].chunks > 1
    assert exit_status(list(results.values())) == 0

    items = str(lake_dir / source_db / "items")
    spark.sql(f"UPDATE delta.`{items}` SET price = price + 1 WHERE id = 7")
    spark.sql(f"DELETE FROM delta.`{items}` WHERE id = 250")
    mariadb.execute("DELETE FROM order_lines WHERE a = 2", source_db)  # the lake keeps a row the source lost

    results = _by_table(validate(spark, config))
    items_result, lines_result = results["items"], results["order_lines"]
    assert (items_result.status, items_result.mismatched, items_result.missing, items_result.extra) == (
        "DIFFERENT", 1, 1, 0)
    assert sorted((s["kind"], s["key"]["id"]) for s in items_result.samples) == [("mismatched", 7), ("missing", 250)]
    assert len(items_result.differing_chunks) == 2
    assert (lines_result.status, lines_result.extra) == ("DIFFERENT", 1)
    assert lines_result.samples[0]["key"] == {"a": 2, "b": "x"}
    report = format_report(list(results.values()))
    assert "DIFFERENT" in report and "mismatched: key {'id': 7}" in report
    assert exit_status(list(results.values())) == 1


def test_lake_behind_a_running_capture_is_in_flight_not_different(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any
) -> None:
    config = _setup(mariadb, source_db, lake_dir, make_config, spark)
    # A capture checkpoint far behind the source: changes after it may still be on their way.
    lake = Lake.from_config(config)
    lake.put_bytes(CHECKPOINT_KEY, json.dumps({"version": 1, "position": {"file": "binlog.000001", "pos": 4,
                                                                          "lsn": (1 << 32) | 4}}).encode())
    mariadb.execute("UPDATE items SET name = 'renamed' WHERE id = 3", source_db)
    results = _by_table(validate(spark, config))
    assert results["items"].status == "IN FLIGHT"
    assert results["items"].in_flight == 1
    assert results["items"].mismatched == 0
    assert exit_status(list(results.values())) == 3


# --------------------------------------------------------------------------------------------------
# Checksums: every type settles by checksum; a difference sends exactly its chunk to the row comparison

TYPED = """CREATE TABLE typed (id INT PRIMARY KEY,
 ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED, mi MEDIUMINT, mu MEDIUMINT UNSIGNED,
 i INT, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED,
 d1 DECIMAL(65,30), d2 DECIMAL(38,30), d3 DECIMAL(10,2), d4 DECIMAL(20,0), d5 DECIMAL(38,0),
 dt DATE, dtm DATETIME(6), dt0 DATETIME, dt3 DATETIME(3), ts TIMESTAMP(6) NULL, ts0 TIMESTAMP NULL,
 tm TIME(6), tm0 TIME, y YEAR, b1 BIT(1), b7 BIT(7), b64 BIT(64), e ENUM('a','b','é'), st SET('x','y','z'),
 j JSON, vb VARBINARY(20), bn BINARY(4), bl BLOB, tx TEXT, vc VARCHAR(30), ch CHAR(10),
 l1 VARCHAR(20) CHARACTER SET latin1, uu UUID, i4 INET4, i6 INET6)"""
TYPED_EDGES = [  # extremes, zero dates, NUL bytes, empty strings, and a row of NULLs
    "(1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295, -9223372036854775808, "
    "18446744073709551615, '-12345678901234567890123456789012345.123456789012345678901234567890', "
    "'0.000000000000000000000000000001', '-0.50', '12345678901234567890', '-99999999999999999999999999999999999999', "
    "'0000-00-00', '0000-00-00 00:00:00', '2024-02-29 23:59:59', '1000-01-01 00:00:00.001', "
    "'1970-01-01 00:00:01.000001', '2038-01-19 03:14:07', '-838:59:59.000000', '838:59:59', 0, b'1', b'1010101', "
    "b'1111111111111111111111111111111111111111111111111111111111111111', 'é', 'x,z', '{\"a\": [1, 2.50, \"é\"]}', "
    "X'00FF0041', X'0001', X'', 'emoji 😀 \\t tab', '', 'pad', 'café ÿ', '123e4567-e89b-12d3-a456-426655440000', "
    "'1.2.3.4', '::ffff:1.2.3.4')",
    "(2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '0', '0', '0', '0', '0', '2015-00-21', '0001-01-01 00:00:00.5', "
    "'9999-12-31 23:59:59', '2000-01-01 00:00:00', '0000-00-00 00:00:00', NULL, '-00:00:01.560000', '00:00:00', 1901, "
    "b'0', b'0', b'0', '', '', 'null', X'', X'00000000', NULL, 'a', 'x  ', '  lead', '', NULL, NULL, NULL)",
    "(3" + ", NULL" * 40 + ")",
]
TYPED_FILL = """INSERT INTO typed SELECT seq, seq - 50, seq, seq * 300 - 15000, seq * 600, seq * 80000 - 4000000,
 seq * 160000, seq * 40000000 - 2000000000, seq * 40000000, seq * 90000000000000000 - 4500000000000000000,
 CAST(seq AS UNSIGNED) * 180000000000000000, CONCAT(IF(seq % 2, '-', ''), seq, '.', LPAD(seq, 30, '0')),
 seq * 0.000000001,
 seq * 1.25 - 60, seq * 123456789, CONCAT('-', seq, REPEAT('9', 30)),
 '2000-01-01' + INTERVAL seq * 97 DAY, '1999-12-31 23:59:59.999999' + INTERVAL seq * 3601000001 MICROSECOND,
 '2000-01-01' + INTERVAL seq * 3607 SECOND, '2000-01-01 00:00:00.001' + INTERVAL seq * 1001 MICROSECOND,
 '2001-09-09 01:46:40.000001' + INTERVAL seq * 86400000003 MICROSECOND, '2001-09-09' + INTERVAL seq HOUR,
 SEC_TO_TIME((seq - 50) * 57600.123456), SEC_TO_TIME(seq * 60), 1901 + seq, seq % 2, seq,
 CAST(seq AS UNSIGNED) * 180000000000000000,
 ELT(1 + seq % 3, 'a', 'b', 'é'), ELT(1 + seq % 4, '', 'x', 'x,y', 'x,y,z'),
 JSON_OBJECT('n', seq, 's', CONCAT('é', seq)),
 CONCAT(X'00', CHAR(seq), X'00'), UNHEX(LPAD(HEX(seq), 8, '0')), REPEAT(X'00FF', seq % 5),
 CONCAT('text 😀 ', seq, IF(seq % 7 = 0, '\\t', '')), IF(seq % 5 = 0, NULL, CONCAT('v', seq)), CONCAT('c', seq),
 CONCAT('é', seq), UUID(), CONCAT('10.0.0.', seq), CONCAT('2001:db8::', HEX(seq))
 FROM (SELECT CAST(seq AS SIGNED) AS seq FROM seq_4_to_100) AS s"""


def _typed_setup(mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any) -> PipelineConfig:
    conn = mariadb.connect(source_db)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = ''")  # zero and partly-zero dates
            cur.execute(TYPED)
            cur.execute("INSERT INTO typed VALUES " + ", ".join(TYPED_EDGES))
            cur.execute(TYPED_FILL)
    finally:
        conn.close()
    config: PipelineConfig = make_config(lake_dir, include_schema_rules(source_db), full_load={"chunk_rows": 20})
    run_full_load(config, spark)
    return config


def test_every_type_settles_by_checksum_and_only_differing_chunks_read_rows(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any
) -> None:
    config = _typed_setup(mariadb, source_db, lake_dir, make_config, spark)
    [result] = validate(spark, config)
    # ids 1..100 in 5 even chunks: [..21) [21..41) [41..61) [61..81) [81..)
    assert (result.status, result.method, result.source_rows, result.lake_rows) == ("OK", "checksum", 100, 100)
    assert (result.chunks, result.checksum_chunks, result.differing_chunks) == (5, 5, [])

    typed = str(lake_dir / source_db / "typed")
    spark.sql(f"UPDATE delta.`{typed}` SET d1 = '30.000000000000000000000000000031' WHERE id = 30")  # last digit
    [result] = validate(spark, config)
    assert (result.status, result.mismatched, result.missing, result.extra) == ("DIFFERENT", 1, 0, 0)
    assert (result.differing_chunks, result.checksum_chunks) == ([1], 4)
    assert [(s["kind"], s["key"]) for s in result.samples] == [("mismatched", {"id": 30})]

    [by_rows] = validate(spark, config, method="rows")  # the reference agrees, reading every row
    assert (by_rows.method, by_rows.checksum_chunks, by_rows.mismatched, by_rows.differing_chunks) == (
        "rows", 0, 1, [1])

    # differences a loose canonical text would miss: 1 µs, a trailing NUL byte, NULL vs ''
    spark.sql(f"UPDATE delta.`{typed}` SET d1 = '30.000000000000000000000000000030' WHERE id = 30")
    spark.sql(f"UPDATE delta.`{typed}` SET ts = ts + INTERVAL 1 MICROSECOND WHERE id = 5")
    spark.sql(f"UPDATE delta.`{typed}` SET vb = CONCAT(vb, X'00') WHERE id = 4")
    spark.sql(f"UPDATE delta.`{typed}` SET vc = '' WHERE id = 3")
    spark.sql(f"DELETE FROM delta.`{typed}` WHERE id = 45")
    copy = spark.read.format("delta").load(typed).where("id = 90").withColumn("id", F.lit(1000))
    copy.write.format("delta").mode("append").save(typed)
    [result] = validate(spark, config)
    assert (result.mismatched, result.missing, result.extra, result.in_flight) == (3, 1, 1, 0)
    assert (result.differing_chunks, result.checksum_chunks) == ([0, 2], 2)  # chunk 4: the extra row has no source
    assert (result.source_rows, result.lake_rows) == (100, 100)
    assert sorted((s["kind"], s["key"]["id"]) for s in result.samples) == [
        ("extra", 1000), ("mismatched", 3), ("mismatched", 4), ("mismatched", 5), ("missing", 45)]


def test_zero_dates_in_the_key_are_compared_by_rows_within_the_checksum_method(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any
) -> None:
    conn = mariadb.connect(source_db)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = ''")
            cur.execute("CREATE TABLE events (at DATETIME(6) PRIMARY KEY, n INT)")
            cur.execute("INSERT INTO events VALUES ('0000-00-00 00:00:00', 0)")
            cur.execute("INSERT INTO events SELECT '2024-01-01' + INTERVAL seq * 1001 MICROSECOND, seq "
                        "FROM seq_1_to_29")
    finally:
        conn.close()
    config: PipelineConfig = make_config(lake_dir, include_schema_rules(source_db), full_load={"chunk_rows": 10})
    run_full_load(config, spark)

    [result] = validate(spark, config)
    # the zero date is NULL in the lake: it fits no range, so its chunk is compared row by row — and is equal
    assert (result.status, result.method, result.source_rows, result.lake_rows) == ("OK", "checksum", 30, 30)
    assert result.chunks == 3 and result.checksum_chunks == 2

    spark.sql(f"UPDATE delta.`{lake_dir / source_db / 'events'}` SET n = 7 WHERE at IS NULL")
    [result] = validate(spark, config)
    assert (result.status, result.mismatched, result.differing_chunks) == ("DIFFERENT", 1, [0])


def test_double_columns_and_case_insensitive_keys_fall_back_to_rows(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any, tmp_path: Path
) -> None:
    mariadb.execute("CREATE TABLE measures (id INT PRIMARY KEY, v DOUBLE, f FLOAT)", source_db)
    mariadb.execute("INSERT INTO measures SELECT seq, seq / 3, seq / 7 FROM seq_1_to_30", source_db)
    mariadb.execute("CREATE TABLE names (k VARCHAR(10) COLLATE utf8mb4_general_ci PRIMARY KEY, n INT)", source_db)
    mariadb.execute("INSERT INTO names SELECT CONCAT(IF(seq % 2, 'K', 'k'), LPAD(seq, 2, '0')), seq "
                    "FROM seq_1_to_30", source_db)
    # a binary collation is PAD SPACE: 'a\t' < 'a' in MariaDB, though not byte-wise; 'a' is a chunk boundary
    mariadb.execute("CREATE TABLE codes (k VARCHAR(10) COLLATE utf8mb4_bin PRIMARY KEY, n INT)", source_db)
    mariadb.execute("INSERT INTO codes SELECT CONCAT('A', seq), seq FROM seq_0_to_8", source_db)
    mariadb.execute("INSERT INTO codes VALUES ('a\\t', 9), ('a', 10)", source_db)
    mariadb.execute("INSERT INTO codes SELECT CONCAT('b', LPAD(seq, 2, '0')), seq FROM seq_11_to_29", source_db)
    config: PipelineConfig = make_config(lake_dir, include_schema_rules(source_db), full_load={"chunk_rows": 10})
    run_full_load(config, spark)

    results = _by_table(validate(spark, config))
    assert {name: (r.status, r.method, r.chunks, r.checksum_chunks) for name, r in results.items()} == {
        "codes": ("OK", "checksum", 3, 3), "measures": ("OK", "rows", 3, 0), "names": ("OK", "rows", 3, 0)}
    assert "column v: double" in (results["measures"].note or "")
    assert "utf8mb4_general_ci" in (results["names"].note or "")

    spark.sql(f"UPDATE delta.`{lake_dir / source_db / 'measures'}` SET v = v + 1e-15 WHERE id = 12")
    spark.sql(f"UPDATE delta.`{lake_dir / source_db / 'names'}` SET n = 0 WHERE k = 'k12'")
    spark.sql(f"UPDATE delta.`{lake_dir / source_db / 'codes'}` SET n = 0 WHERE k = 'a\\t'")
    results = _by_table(validate(spark, config))
    assert {name: (r.status, r.mismatched, r.differing_chunks) for name, r in results.items()} == {
        "codes": ("DIFFERENT", 1, [0]), "measures": ("DIFFERENT", 1, [1]), "names": ("DIFFERENT", 1, [1])}
    assert results["codes"].checksum_chunks == 2

    # the command: exit 1, and --json names the method
    config_path = write_config(config, tmp_path / "pipeline.yaml")
    done = subprocess.run([sys.executable, "-m", "binlake.cli", "validate", "--config", str(config_path), "--json"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr[-2000:]
    report = json.loads(done.stdout[done.stdout.index("[\n"):])
    printed = {r["table"].split(".", 1)[1]: (r["status"], r["method"]) for r in report}
    assert printed == {"codes": ("DIFFERENT", "checksum"), "measures": ("DIFFERENT", "rows"),
                       "names": ("DIFFERENT", "rows")}
