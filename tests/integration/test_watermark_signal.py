"""The watermark method with a signal table (full_load.signal_table), forced on MariaDB: exact low
watermarks without a settle wait. The settle wait is set to ten minutes in these tests, so a load
that still used it would not finish. The signal table lives in the selected schema and must never
reach the lake; a user who cannot write it is refused at start with the grant or DDL to run.

MariaDB cannot hold a transaction between its binlog write and its engine commit from outside, so
the MySQL window itself is argued (binlake/snapshot/signal.py, docs/full-load.md), not reproduced."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from capture_support import CaptureThread, captured, checkpoint_reached, master_position, wait_for

from binlake.config import PipelineConfig, parse_config
from binlake.demo.sample import create_sample
from binlake.demo.workload import Workload
from binlake.devdb import LocalMariaDB
from binlake.lake import Lake, snapshot_state_key, table_key
from binlake.merge.job import run as run_merge
from binlake.resync.job import run_resync
from binlake.rules import TableMapping
from binlake.snapshot.job import run_full_load
from binlake.snapshot.signal import SignalTableError
from binlake.snapshot.state import TableState
from binlake.validation import validate

pytestmark = pytest.mark.spark
SIGNAL = "binlake_signal"
NEVER = 600.0  # full_load.watermark_settle_seconds: a load that waited it would time the test out


def _config(mariadb: LocalMariaDB, source_db: str, lake: Path, user: str = "root", password_env: str | None = None,
            **full_load: Any) -> PipelineConfig:
    return parse_config({
        "name": "signal",
        "source": {"host": "127.0.0.1", "port": mariadb.port, "user": user, "password_env": password_env,
                   "server_id": 9292},
        "lake": {"root": str(lake)},
        "table_mappings": {"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "all",
                                      "object-locator": {"schema-name": source_db, "table-name": "%"},
                                      "rule-action": "include"}]},
        "full_load": {"chunk_rows": 300, "snapshot_method": "watermark", "watermark_settle_seconds": NEVER,
                      "signal_table": f"{source_db}.{SIGNAL}", **full_load},
        "capture": {"flush_seconds": 2, "start": "end"},
        "merge": {"trigger_seconds": 1, "max_files_per_batch": 1000},  # one catch-up batch: fewer Spark jobs
        "spark": {"master": "local[2]"},
    }, Path("signal.yaml"))


def _signal_events(mariadb: LocalMariaDB, source_db: str, start_file: str, start_pos: int) -> list[tuple[str, int]]:
    """(file, position) of every table-map event of the signal table from ``start_file:start_pos`` on."""
    files = [str(r[0]) for r in mariadb.execute("SHOW BINARY LOGS") if str(r[0]) >= start_file]
    found = []
    for file in files:
        at = f" FROM {start_pos}" if file == start_file else ""
        for row in mariadb.execute(f"SHOW BINLOG EVENTS IN '{file}'{at}"):
            if row[2] == "Table_map" and f"({source_db}.{SIGNAL})" in str(row[5]):
                found.append((file, int(str(row[1]))))
    return found


def test_signal_labels_each_chunk_before_its_signal_without_a_settle_wait(
    mariadb: LocalMariaDB, spark: Any, source_db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mariadb.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))", source_db)
    mariadb.execute("INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_1200", source_db)
    config = _config(mariadb, source_db, tmp_path / "lake", chunk_rows=1200)  # one chunk: the cheapest load
    assert not TableMapping.parse(config.table_mappings).is_selected(source_db, SIGNAL)
    with caplog.at_level(logging.INFO, logger="binlake"):
        run_full_load(config, spark)
    assert "exact low watermarks: signals are committed into" in caplog.text
    assert "without full_load.signal_table" not in caplog.text

    lake = Lake.from_config(config)
    rows = spark.read.format("delta").load(lake.uri(table_key(source_db, "t"))).orderBy("id").collect()
    assert [(r.id, r.v) for r in rows] == [tuple(r) for r in mariadb.execute("SELECT id, v FROM t ORDER BY id",
                                                                             source_db)]
    # the signal table: created by the load, written, and never a lake table
    assert mariadb.execute(f"SELECT signaller FROM {SIGNAL}", source_db) == [("signal:full-load",)]
    assert not lake.exists(snapshot_state_key(source_db, SIGNAL))
    assert not (tmp_path / "lake" / table_key(source_db, SIGNAL)).exists()
    # every chunk's label was read before a signal: a signal's events follow each label in the binlog
    state = TableState.from_json(lake.get_bytes(snapshot_state_key(source_db, "t")))
    labels = sorted((c.position.file, c.position.pos) for c in state.chunks if c.position is not None)
    assert len(labels) == len(state.chunks) == 1
    signals = _signal_events(mariadb, source_db, *labels[0])
    assert len(signals) >= len(set(labels))  # parallel chunks may read one binlog end, then each signals (slow test)
    assert all(any(s > label for s in signals) for label in labels)


def test_a_user_who_cannot_write_the_signal_table_is_refused_with_the_fix(
    mariadb: LocalMariaDB, spark: Any, source_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = "s1gnal-Pa55-never-logged"
    mariadb.execute(f"CREATE USER IF NOT EXISTS 'nosignal'@'127.0.0.1' IDENTIFIED BY '{password}'")
    mariadb.execute("GRANT SELECT, BINLOG MONITOR ON *.* TO 'nosignal'@'127.0.0.1'")
    monkeypatch.setenv("BINLAKE_SIGNAL_PASSWORD", password)
    mariadb.execute("CREATE TABLE t (id INT PRIMARY KEY)", source_db)
    config = _config(mariadb, source_db, tmp_path / "lake", "nosignal", "BINLAKE_SIGNAL_PASSWORD")
    with pytest.raises(SignalTableError) as missing:  # no table, and no right to create it
        run_full_load(config, spark)
    assert "does not exist" in str(missing.value)
    assert f"CREATE TABLE IF NOT EXISTS `{source_db}`.`{SIGNAL}`" in str(missing.value)
    assert f"GRANT SELECT, INSERT, UPDATE ON `{source_db}`.`{SIGNAL}` TO nosignal@127.0.0.1" in str(missing.value)

    mariadb.execute(f"CREATE TABLE {SIGNAL} (signaller VARCHAR(64) NOT NULL PRIMARY KEY, token CHAR(32) NOT NULL, "
                    "signalled_at TIMESTAMP(6) NOT NULL) ENGINE=InnoDB", source_db)
    with pytest.raises(SignalTableError) as denied:  # the table is there, but the user may not write it
        run_full_load(config, spark)
    assert f"Run GRANT SELECT, INSERT, UPDATE ON `{source_db}`.`{SIGNAL}` TO nosignal@127.0.0.1" in str(denied.value)
    assert password not in str(denied.value)
    assert not (tmp_path / "lake" / source_db).exists()  # refused before anything was written

    mariadb.execute(f"ALTER TABLE {SIGNAL} ENGINE=MyISAM", source_db)
    mariadb.execute(f"GRANT INSERT, UPDATE ON `{source_db}`.`{SIGNAL}` TO 'nosignal'@'127.0.0.1'")
    with pytest.raises(SignalTableError, match=r"MyISAM engine.*ENGINE=InnoDB"):
        run_full_load(config, spark)


def _normal(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def _behind_replication(mariadb: LocalMariaDB, db: str, statement: str) -> None:
    """Change the source without a binlog record: the lake then differs until a resync."""
    with mariadb.connect(db) as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_log_bin = 0")
        cur.execute(statement)


def _retail(mariadb: LocalMariaDB, spark: Any, lake: Lake, db: str) -> tuple[list[Any], list[Any]]:
    source = mariadb.execute("SELECT trans_id, customer_id, event, sku, amount, device, "
                             "DATE_FORMAT(trans_datetime, '%Y-%m-%d %H:%i:%s') FROM retail_trans ORDER BY trans_id", db)
    rows = spark.read.format("delta").load(lake.uri(table_key(db, "retail_trans"))).orderBy("trans_id").collect()
    return [(r.trans_id, r.customer_id, r.event, r.sku, r.amount, r.device,
             r.trans_datetime.strftime("%Y-%m-%d %H:%M:%S")) for r in rows], [tuple(r) for r in source]


def _items(mariadb: LocalMariaDB, spark: Any, lake: Lake, db: str) -> tuple[list[Any], list[Any]]:
    source = mariadb.execute("SELECT order_id, line_no, product, quantity, unit_price, status, attributes, "
                             "DATE_FORMAT(updated_at, '%Y-%m-%d %H:%i:%s.%f') FROM order_items "
                             "ORDER BY order_id, line_no", db)
    rows = spark.read.format("delta").load(lake.uri(table_key(db, "order_items"))).orderBy("order_id", "line_no")
    return [(r.order_id, r.line_no, r.product, r.quantity, str(r.unit_price), r.status, r.attributes,
             r.updated_at.strftime("%Y-%m-%d %H:%M:%S.%f")) for r in rows.collect()], [
        tuple(_normal(v) for v in row) for row in source]


@pytest.mark.slow  # 5-15 minutes on a shared 2-core machine
def test_signal_full_load_and_resync_under_workload_equal_source(
    mariadb: LocalMariaDB, spark: Any, source_db: str, tmp_path: Path
) -> None:
    with mariadb.connect(source_db, autocommit=False) as conn:
        create_sample(conn, retail_rows=4000, orders=400)
    config = _config(mariadb, source_db, tmp_path / "lake", chunk_rows=500)
    lake = Lake.from_config(config)
    capture = CaptureThread(config).start()
    try:
        wait_for(lambda: capture.error is not None or checkpoint_reached(config, master_position(mariadb))(), 30,
                 "the capture to start")
        workload = _running(Workload(lambda: mariadb.connect(source_db, autocommit=False), rate_per_s=150.0, seed=11))
        try:
            run_full_load(config, spark)
        finally:
            workload.stop()
        assert workload.stats.transactions > 50 and workload.stats.rollbacks > 0
        _caught_up(config, mariadb, capture)
        run_merge(spark, config, available_now=True)
        state = TableState.from_json(lake.get_bytes(snapshot_state_key(source_db, "retail_trans")))
        assert len(state.chunks) >= 8  # several chunks, each with its own signalled low watermark
        lake_rows, source_rows = _retail(mariadb, spark, lake, source_db)
        assert lake_rows == source_rows
        lake_rows, source_rows = _items(mariadb, spark, lake, source_db)
        assert lake_rows == source_rows

        # the online resync reads its chunks by the same method: rows changed behind replication come back
        _behind_replication(mariadb, source_db, "UPDATE order_items SET quantity = quantity + 1000 WHERE line_no = 1")
        lake_rows, source_rows = _items(mariadb, spark, lake, source_db)
        assert lake_rows != source_rows
        workload = _running(Workload(lambda: mariadb.connect(source_db, autocommit=False), rate_per_s=150.0, seed=12))
        try:
            report = run_resync(config, spark, f"{source_db}.order_items")
        finally:
            workload.stop()
        assert workload.stats.transactions > 10 and report.delivered == report.chunks >= 1
        _caught_up(config, mariadb, capture)
    finally:
        capture.stop()
    assert capture.error is None
    run_merge(spark, config, available_now=True)
    lake_rows, source_rows = _retail(mariadb, spark, lake, source_db)
    assert lake_rows == source_rows
    lake_rows, source_rows = _items(mariadb, spark, lake, source_db)
    assert lake_rows == source_rows
    assert [(r.status, r.source_rows == r.lake_rows) for r in validate(spark, config)] == [("OK", True)] * 2
    # the signals were in the binlog the capture read, yet no record and no lake table came of them
    assert {r["source_table"] for r in captured(config)} == {"retail_trans", "order_items"}
    assert not (tmp_path / "lake" / table_key(source_db, SIGNAL)).exists()
    assert sorted(str(r[0]) for r in mariadb.execute(f"SELECT signaller FROM {SIGNAL}", source_db)) == [
        "signal:full-load", "signal:resync", "signal:validate"]


def _running(workload: Workload) -> Workload:
    workload.start()
    return workload


def _caught_up(config: PipelineConfig, mariadb: LocalMariaDB, capture: CaptureThread) -> None:
    end = master_position(mariadb)
    wait_for(lambda: capture.error is not None or checkpoint_reached(config, end)(), 120, "the capture to catch up")
    assert capture.error is None
