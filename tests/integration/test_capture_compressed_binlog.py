"""Nothing that could carry data is skipped: MariaDB's compressed events replicate exactly, and an
event the capture cannot decode stops it.

The server-wide switch is turned on (with ``log_bin_compress_min_len`` at 10 bytes, so nearly every
event is compressed) only for the duration of each test and restored in ``finally``.

1. Oracle: the same workload of wide rows (TEXT/BLOB/JSON, 40 columns; inserts, updates, deletes,
   TRUNCATE, ALTER) runs on table ``plain`` with compression off and on table ``packed`` with it
   on. The stock library decodes ``plain`` (it cannot read ``packed``: its events come back as
   ``NotImplementedEvent`` — counted, so the test proves they were compressed); binlake's records
   of ``packed`` must equal both binlake's and the stock library's records of ``plain``.
2. End to end (slow): capture, full load, the same workload with compression on, merge — the lake
   equals the source value for value (row compare and ``binlake validate``).
3. A statement-format LOAD DATA (BEGIN_LOAD_QUERY_EVENT) stops the capture with the event's type and
   position; the change log and checkpoint hold exactly what came before it.
4. The pre-flight check logs every binlog setting, and names those this server does not have.
5. Every column type (test_capture_types' rows) under compression, through both row decoders, equals
   the stock library's decoding of the same rows written uncompressed.
6. The checkpoint moves past dataless events between transactions (a new file's GTID list and
   binlog checkpoint) and so reaches the end of the binlog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from capture_support import (
    CaptureThread,
    capture_range,
    captured,
    capturing,
    checkpoint_reached,
    comparable,
    declared_types,
    master_position,
    oracle_changes,
    wait_for,
)
from conftest import include_schema_rules
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import NotImplementedEvent

from binlake import source
from binlake.capture.checkpoint import load_checkpoint
from binlake.capture.compressed import COMPRESSED_TYPES
from binlake.capture.eventtypes import UnsupportedEventError
from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.lake import Lake
from binlake.positions import BinlogPosition, make_lsn

MakeConfig = Callable[..., PipelineConfig]

TEXTS = ", ".join(f"t{i} TEXT" for i in range(12))
INTS = ", ".join(f"n{i} BIGINT" for i in range(12))
WIDE = (f"(id INT PRIMARY KEY, {TEXTS}, {INTS}, b1 BLOB, b2 LONGBLOB, j JSON, d DECIMAL(30,10), "
        "v VARCHAR(2000), dt DATETIME(6), u TINYINT UNSIGNED, c CHAR(3))")


def wide_values(i: int) -> str:
    texts = ", ".join(f"REPEAT('{chr(97 + k)}é{i}', {20 + (i * 7 + k) % 300})" for k in range(12))
    ints = ", ".join(str((i * 1_000_003 + k) * (-1) ** k) for k in range(12))
    return (f"({i}, {texts}, {ints}, REPEAT(X'00FF{i % 256:02X}', {i % 50 + 1}), "
            f"IF({i} % 5 = 0, NULL, REPEAT(X'DEADBEEF', {i * 3 + 1})), "
            f"'{{\"k\": {i}, \"s\": \"{'ü' * (i % 9)}\"}}', {i}.{i:010d}, REPEAT('v', {i % 2000}), "
            f"'2024-02-29 12:34:{i % 60:02d}.{i:06d}', {i % 256}, 'c{i % 10}')")


def workload(db: LocalMariaDB, schema: str, table: str, create: bool = True) -> None:
    """(CREATE,) wide inserts (single and multi-row), updates of TEXT/BLOB/JSON, deletes, TRUNCATE, ALTER."""
    with db.connect(schema) as conn, conn.cursor() as cur:
        if create:
            cur.execute(f"CREATE TABLE {table} {WIDE}")
        cur.execute(f"INSERT INTO {table} VALUES " + ", ".join(wide_values(i) for i in range(1, 41)))
        for i in range(41, 46):
            cur.execute(f"INSERT INTO {table} VALUES {wide_values(i)}")
        cur.execute(f"UPDATE {table} SET t3 = CONCAT(t3, REPEAT('+', id)), b1 = NULL, "
                    "j = JSON_SET(j, '$.u', 'updated'), n5 = n5 + 1 WHERE id % 3 = 0")
        cur.execute(f"UPDATE {table} SET id = id + 1000 WHERE id = 7")  # primary-key change
        cur.execute(f"DELETE FROM {table} WHERE id % 4 = 1")
        cur.execute("BEGIN")
        cur.execute(f"INSERT INTO {table} (id, t0) VALUES (500, REPEAT('in a transaction ', 200))")
        cur.execute(f"UPDATE {table} SET v = 'changed twice' WHERE id IN (2, 500)")
        cur.execute("COMMIT")
        cur.execute(f"TRUNCATE TABLE {table}")
        cur.execute(f"INSERT INTO {table} VALUES " + ", ".join(wide_values(i) for i in range(100, 120)))
        cur.execute(f"ALTER TABLE {table} ADD COLUMN extra TEXT DEFAULT NULL COMMENT 'added while compressed'")
        cur.execute(f"UPDATE {table} SET extra = REPEAT('x', id * 5), t11 = NULL WHERE id < 110")
        cur.execute(f"DELETE FROM {table} WHERE id > 115")


@contextmanager
def compressed_binlog(db: LocalMariaDB) -> Iterator[None]:
    """``log_bin_compress=ON`` with a 10-byte threshold for the block's duration (server-wide)."""
    before = db.execute("SELECT @@GLOBAL.log_bin_compress, @@GLOBAL.log_bin_compress_min_len")[0]
    db.execute("SET GLOBAL log_bin_compress = ON")
    db.execute("SET GLOBAL log_bin_compress_min_len = 10")
    try:
        yield
    finally:
        db.execute(f"SET GLOBAL log_bin_compress = {int(str(before[0]))}")
        db.execute(f"SET GLOBAL log_bin_compress_min_len = {int(str(before[1]))}")


def compressed_event_types(db: LocalMariaDB, start: BinlogPosition, end: BinlogPosition) -> dict[int, int]:
    """``{type code: count}`` of the compressed events in ``[start, end)``, as the stock library sees them."""
    stream = BinLogStreamReader(
        connection_settings={"host": "127.0.0.1", "port": db.port, "user": "root", "password": ""},
        server_id=9098, log_file=start.file, log_pos=start.pos, resume_stream=True, blocking=False,
        only_events=[NotImplementedEvent], filter_non_implemented_events=False, enable_logging=False)
    counts: dict[int, int] = {}
    try:
        for event in stream:
            if make_lsn(stream.log_file, event.packet.log_pos) > end.lsn:
                break
            if event.event_type in COMPRESSED_TYPES:
                counts[event.event_type] = counts.get(event.event_type, 0) + 1
    finally:
        stream.close()
    return counts


def without_position(changes: list[dict[str, Any]], table: str) -> list[tuple[Any, ...]]:
    return [row[1:3] + row[4:] for row in comparable([c for c in changes
                                                       if c.get("source_table", c.get("table")) == table])]


def ddl_records(changes: list[dict[str, Any]], table: str) -> list[tuple[Any, ...]]:
    return [(c["ddl_kind"], c["ddl"].replace(table, "<t>")) for c in changes
            if c["op"] == "DDL" and c["source_table"] == table]


def test_compressed_events_equal_the_uncompressed_capture_and_the_stock_library(
        mariadb: LocalMariaDB, source_db: str, lake_dir: Any, make_config: MakeConfig) -> None:
    start = master_position(mariadb)
    workload(mariadb, source_db, "plain")
    middle = master_position(mariadb)
    with compressed_binlog(mariadb):
        workload(mariadb, source_db, "packed")
    end = master_position(mariadb)
    config = make_config(lake_dir, include_schema_rules(source_db),
                         capture={"start": "position", "start_file": start.file, "start_pos": start.pos})
    capture_range(config, end)
    got = captured(config)

    seen = compressed_event_types(mariadb, middle, end)
    assert {165, 166, 167, 168} <= set(seen), f"the server wrote no compressed events of some kind: {seen}"
    oracle = oracle_changes(mariadb, source_db, start, middle)
    assert len(oracle) > 100
    assert comparable([c for c in got if c["source_table"] == "plain"]) == comparable(oracle)
    # the compressed half, row for row and value for value, equals the uncompressed half
    assert without_position(got, "packed") == without_position(oracle, "plain")
    assert ddl_records(got, "packed") == ddl_records(got, "plain")
    assert [kind for kind, _ in ddl_records(got, "packed")] == ["CREATE", "TRUNCATE", "ALTER"]


def _normal(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytearray):
        return bytes(value)
    return value


@pytest.mark.slow  # about 90 s, most of it Spark
@pytest.mark.spark
def test_compressed_binlog_through_capture_full_load_and_merge(
        mariadb: LocalMariaDB, source_db: str, lake_dir: Any, make_config: MakeConfig, spark: Any) -> None:
    from binlake.merge.job import run as run_merge
    from binlake.snapshot.job import run_full_load
    from binlake.validation import validate

    with mariadb.connect(source_db) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE early {WIDE}")
        cur.execute("INSERT INTO early VALUES " + ", ".join(wide_values(i) for i in range(1, 31)))
        cur.execute(f"CREATE TABLE wide {WIDE}")  # filled and changed only after the full load
    config = make_config(lake_dir, include_schema_rules(source_db), capture={"start": "end", "flush_seconds": 0.5})
    capture = CaptureThread(config).start()
    try:
        wait_for(lambda: checkpoint_reached(config, master_position(mariadb))(), 30, "the capture to start")
        run_full_load(config, spark)
        with compressed_binlog(mariadb):
            workload(mariadb, source_db, "wide", create=False)
            with mariadb.connect(source_db) as conn, conn.cursor() as cur:
                cur.execute("UPDATE early SET t0 = REPEAT('late', id), b2 = NULL WHERE id % 2 = 0")
                cur.execute("DELETE FROM early WHERE id > 25")
        end = master_position(mariadb)
        wait_for(lambda: capture.error is not None or checkpoint_reached(config, end)(), 60, "capture to catch up")
    finally:
        capture.stop()
    run_merge(spark, config, available_now=True)

    columns = [str(r[0]) for r in mariadb.execute(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '" + source_db +
        "' AND TABLE_NAME = 'wide' ORDER BY ORDINAL_POSITION")]
    for table in ("early", "wide"):
        names = columns if table == "wide" else [c for c in columns if c != "extra"]
        selected = ", ".join(f"DATE_FORMAT({c}, '%Y-%m-%d %H:%i:%s.%f')" if c == "dt" else c for c in names)
        source = [tuple(_normal(v) for v in row) for row in
                  mariadb.execute(f"SELECT {selected} FROM {source_db}.{table} ORDER BY id")]
        lake = spark.read.format("delta").load(f"{lake_dir}/{source_db}/{table}").orderBy("id").collect()
        lake_rows = [tuple(r[c].strftime("%Y-%m-%d %H:%M:%S.%f") if c == "dt" and r[c] is not None else
                           _normal(r[c]) for c in names) for r in lake]
        assert len(source) > 10
        assert lake_rows == source, table
    results = validate(spark, config)
    assert sorted((r.table.split(".")[-1], r.status) for r in results) == [("early", "OK"), ("wide", "OK")]


def test_an_event_the_capture_cannot_decode_stops_it_after_what_came_before(
        mariadb: LocalMariaDB, source_db: str, lake_dir: Any, make_config: MakeConfig) -> None:
    """A session writing LOAD DATA in statement format (BEGIN_LOAD_QUERY / EXECUTE_LOAD_QUERY events,
    which carry the file's rows) stops the capture with the type and position — never a skip."""
    data_file = mariadb.outfile_dir / f"{source_db}.tsv"
    data_file.unlink(missing_ok=True)
    mariadb.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))", source_db)
    mariadb.execute("INSERT INTO t VALUES (1, 'before')", source_db)
    mariadb.execute(f"SELECT 2, 'loaded' INTO OUTFILE '{data_file}'", source_db)
    start = master_position(mariadb)
    config = make_config(lake_dir, include_schema_rules(source_db),
                         capture={"start": "position", "start_file": start.file, "start_pos": start.pos,
                                  "flush_seconds": 0.2})
    mariadb.execute("INSERT INTO t VALUES (3, 'row format')", source_db)
    before_load = master_position(mariadb)
    with mariadb.connect(source_db) as conn, conn.cursor() as cur:
        cur.execute("SET SESSION binlog_format = 'STATEMENT'")
        cur.execute(f"LOAD DATA INFILE '{data_file}' INTO TABLE t")
    mariadb.execute("INSERT INTO t VALUES (4, 'after')", source_db)

    capture = CaptureThread(config).start()
    wait_for(lambda: capture.error is not None, 30, "the capture to stop")
    with pytest.raises(UnsupportedEventError, match=rf"^{before_load.file}:\d+: binlog event type 17 "
                       r"\(BEGIN_LOAD_QUERY_EVENT, ends at \d+\) cannot be captured: a statement-format LOAD DATA"):
        capture.stop()
    assert [(r["op"], r["after"]) for r in captured(config)] == [("I", {"id": "3", "v": "row format"})]
    checkpoint = load_checkpoint(Lake.from_config(config))
    assert checkpoint is not None and checkpoint.position.lsn == before_load.lsn  # a restart reads the LOAD again


def test_the_preflight_check_logs_every_binlog_setting(mariadb: LocalMariaDB, caplog: pytest.LogCaptureFixture,
                                                       make_config: MakeConfig, lake_dir: Any) -> None:
    config = make_config(lake_dir, include_schema_rules("x"))
    with compressed_binlog(mariadb), source.connect(config.source) as conn, caplog.at_level(logging.INFO):
        values = source.check_binlog_settings(conn)
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("source binlog settings: "))
    assert values["log_bin_compress"] == "ON" and values["binlog_transaction_compression"] is None
    for shown in ("log_bin=ON", "binlog_format=ROW", "binlog_row_image=FULL", "binlog_row_metadata=FULL",
                  "binlog_checksum=CRC32", "log_bin_compress=ON", "log_bin_compress_min_len=10", "gtid_strict_mode=",
                  "gtid_domain_id=0", "encrypt_binlog=OFF", "version=10.11"):
        assert shown in line, shown
    assert line.endswith("(not on this server: binlog_transaction_compression, binlog_row_value_options, gtid_mode, "
                         "enforce_gtid_consistency, binlog_encryption)")


@pytest.mark.parametrize("decoder", ["compiled", "library"])
def test_every_type_compressed_equals_the_stock_library_on_the_uncompressed_twin(
        mariadb: LocalMariaDB, source_db: str, lake_dir: Any, make_config: MakeConfig, monkeypatch: Any,
        decoder: str) -> None:
    """test_capture_types' rows (every MariaDB type) written twice: the compressed copy's records equal
    the stock library's on the uncompressed copy — through the compiled row decoder and the library's."""
    from test_capture_types import insert_rows

    from binlake.capture import rowdecode

    packed_db = f"{source_db}_z"
    mariadb.execute(f"CREATE DATABASE `{packed_db}` CHARACTER SET utf8mb4")
    try:
        start = master_position(mariadb)
        insert_rows(mariadb, source_db)
        middle = master_position(mariadb)
        with compressed_binlog(mariadb):
            insert_rows(mariadb, packed_db)
        end = master_position(mariadb)
        if decoder == "library":
            monkeypatch.setattr(rowdecode, "_FAST_TYPES", frozenset())
        rules = {"rules": [{**rule, "rule-id": str(i), "rule-name": f"r{i}"} for i, schema in
                           enumerate((source_db, packed_db), 1) for rule in include_schema_rules(schema)["rules"]]}
        config = make_config(lake_dir, rules, capture={"start": "position", "start_file": start.file,
                                                       "start_pos": start.pos, "flush_seconds": 0.2})
        capture_range(config, end)
        got = captured(config)
        assert {166, 165} <= set(compressed_event_types(mariadb, middle, end))
        oracle = oracle_changes(mariadb, source_db, start, middle,
                                {"types": declared_types(mariadb, source_db, "types")})
        packed = [r for r in got if r["source_schema"] == packed_db]
        assert [r["op"] for r in packed] == ["DDL", "I", "I", "I", "U", "U", "D"]
        assert [row[1:] for row in comparable(packed)] == [row[1:] for row in comparable(oracle)]
    finally:
        mariadb.execute(f"DROP DATABASE IF EXISTS `{packed_db}`")


def test_the_checkpoint_reaches_the_end_of_the_binlog_past_trailing_dataless_events(
        mariadb: LocalMariaDB, source_db: str, lake_dir: Any, make_config: MakeConfig) -> None:
    """A new binlog file starts with events that carry no data (GTID list, binlog checkpoint); the
    checkpoint moves past them, so it reaches SHOW MASTER STATUS when nothing else follows."""
    mariadb.execute("CREATE TABLE t (id INT PRIMARY KEY)", source_db)
    config = make_config(lake_dir, include_schema_rules(source_db), capture={"start": "end", "flush_seconds": 0.2})
    with capturing(config) as capture:
        wait_for(lambda: checkpoint_reached(config, master_position(mariadb))(), 30, "the capture to start")
        mariadb.execute("INSERT INTO t VALUES (1)", source_db)
        mariadb.execute("FLUSH BINARY LOGS")
        end = master_position(mariadb)
        wait_for(lambda: capture.error is not None or checkpoint_reached(config, end)(), 30,
                 f"the checkpoint to reach {end} (past the new file's dataless events)")
    assert [r["after"] for r in captured(config) if r["op"] == "I"] == [{"id": "1"}]
