"""A full load read from a GTID replica (``full_load.source``) while the capture reads the primary:
chunks labelled in the primary's change-log order from the replica's GTIDs (binlake.snapshot.replica),
or — MySQL's way, forced here with ``full_load.snapshot_method: watermark`` — with the primary's binlog
end once the replica shows a signal committed on the primary after it (binlake.snapshot.replicasignal).

Two real MariaDB servers in GTID replication (:mod:`failover_support`, the primary's binlog numbers
ahead of the replica's, so a replica position taken for a primary one would be visibly wrong).
"""

from __future__ import annotations

import logging
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from capture_support import CaptureThread, captured, wait_for
from failover_support import (
    PRIMARY_ID,
    REPLICA_ID,
    checkpoint_at,
    pipeline,
    run_sql,
    server_pair,
    table_rows,
    wait_caught_up,
)

from binlake.capture.history import load_registry
from binlake.config import PipelineConfig, parse_config
from binlake.demo.sample import create_sample
from binlake.demo.workload import Workload
from binlake.devdb import LocalMariaDB
from binlake.lake import Lake, snapshot_state_key, table_key
from binlake.merge.job import run as run_merge
from binlake.positions import split_lsn
from binlake.snapshot.job import run_full_load
from binlake.snapshot.replica import ReplicaError, open_replica
from binlake.snapshot.replicalabel import Held
from binlake.snapshot.replicasignal import open_signalled_replica
from binlake.snapshot.state import TableState
from binlake.source import connect

DB = "shop"
SIGNAL = "binlake_signal"
NEVER = 600.0  # full_load.watermark_settle_seconds: a load that waited it would time the test out


def _reading_replica(config: PipelineConfig, replica: LocalMariaDB, **full_load: Any) -> PipelineConfig:
    source = config.source.model_copy(update={"port": replica.port})
    return config.model_copy(update={"full_load": config.full_load.model_copy(update={"source": source, **full_load})})


def _capture_to_end(config: PipelineConfig, primary: LocalMariaDB) -> None:
    reached = checkpoint_at(config, primary, 0)
    wait_for(reached, 60, "the capture to reach the primary's end")


def test_replica_labels_are_the_primary_positions_before_what_the_replica_lacks(tmp_path: Path) -> None:
    """The labeller on real servers (no Spark): a lagging replica's snapshot is labelled right before the
    first change it lacks; a caught-up one with the checkpoint; refusals name the problem."""
    with server_pair(tmp_path / "servers") as (primary, replica):
        primary.execute(f"CREATE DATABASE {DB}")
        run_sql(primary, DB, "CREATE TABLE items (id INT PRIMARY KEY, qty INT)",
                "INSERT INTO items VALUES " + ",".join(f"({i}, {i})" for i in range(1, 51)))
        config = pipeline(tmp_path / "lake", primary, DB)
        reading = _reading_replica(config, replica, replica_wait_seconds=3)
        replica_source = reading.full_load.source
        assert replica_source is not None
        lake = Lake.from_config(config)
        capture = CaptureThread(config).start()
        try:
            wait_for(lambda: capture.error is not None or bool(load_registry(lake).histories), 30, "the capture")
            wait_caught_up(primary, replica)
            replica.execute("STOP SLAVE SQL_THREAD")  # the replica lags behind these:
            run_sql(primary, DB, *[f"UPDATE items SET qty = qty + 100 WHERE id = {i}" for i in range(1, 11)])
            _capture_to_end(config, primary)
            with connect(replica_source) as conn:
                history, labeller = open_replica(conn, lambda: connect(replica_source), lake, load_registry(lake),
                                                 reading.full_load, "not the captured server")
            held = Held.parse(str(replica.execute("SELECT @@gtid_binlog_pos")[0][0]), mariadb=True)
            lagging = labeller()
            records = captured(config)
            assert split_lsn(lagging.lsn)[0] == history.epoch and lagging.gtid == held.text
            assert all(held.has(r["gtid"]) for r in records if r["lsn"] <= lagging.lsn)  # (A)
            after = [r for r in records if r["lsn"] > lagging.lsn]
            assert [r["after"]["qty"] for r in after] == [str(i + 100) for i in range(1, 11)]  # exactly the lag
            assert not any(held.has(r["gtid"]) for r in after)

            replica.execute("START SLAVE SQL_THREAD")
            wait_caught_up(primary, replica)
            caught_up = labeller()
            assert caught_up.lsn >= after[-1]["lsn"]  # it lacks nothing: the checkpoint's position

            capture.stop()  # a replica ahead of the capture: waited for, then refused by name
            run_sql(primary, DB, "UPDATE items SET qty = 0 WHERE id = 1")
            wait_caught_up(primary, replica)
            with pytest.raises(ReplicaError, match=r"has not reached the replica's snapshot .*replica_wait_seconds"):
                labeller()
        finally:
            capture.stop()

        replica.execute("STOP SLAVE")
        replica.execute("SET GLOBAL replicate_wild_ignore_table = 'shop.%'")
        try:
            with connect(replica_source) as conn, pytest.raises(ReplicaError, match="Replicate_Wild_Ignore_Table"):
                open_replica(conn, lambda: connect(replica_source), lake, load_registry(lake), reading.full_load,
                             "not the captured server")
        finally:
            replica.execute("SET GLOBAL replicate_wild_ignore_table = ''")


def _normal(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


@pytest.mark.spark
@pytest.mark.slow  # two servers, the workload, the load and the merge: about 1-2 minutes
def test_full_load_from_a_replica_under_workload_equals_the_primary(
        tmp_path: Path, spark: Any, caplog: pytest.LogCaptureFixture) -> None:
    with server_pair(tmp_path / "servers") as (primary, replica):
        primary.execute(f"CREATE DATABASE {DB}")
        with primary.connect(DB, autocommit=False) as conn:
            create_sample(conn, retail_rows=2000, orders=150)
        wait_caught_up(primary, replica)
        config = pipeline(tmp_path / "lake", primary, DB, flush_seconds=1.0)
        config = config.model_copy(update={
            "full_load": config.full_load.model_copy(update={"chunk_rows": 300}),
            "merge": config.merge.model_copy(update={"max_files_per_batch": 5000})})  # one catch-up batch
        capture = CaptureThread(config).start()
        workload = Workload(lambda: primary.connect(DB, autocommit=False), rate_per_s=100.0, seed=7)
        try:
            wait_for(lambda: capture.error is not None or bool(load_registry(Lake.from_config(config)).histories), 30,
                     "the capture to start")
            workload.start()
            try:
                with caplog.at_level(logging.INFO, logger="binlake"):
                    reports = run_full_load(_reading_replica(config, replica), spark)
            finally:
                workload.stop()
            assert {r.status for r in reports} == {"complete"}
            assert workload.stats.transactions > 20 and workload.stats.rollbacks > 0
            assert f"server_id {REPLICA_ID}, a replica of epoch 0 (server_id {PRIMARY_ID}" in caplog.text
            wait_caught_up(primary, replica)
            _capture_to_end(config, primary)
        finally:
            capture.stop()
        run_merge(spark, config, available_now=True)

        lake = Lake.from_config(config)
        state = TableState.from_json(lake.get_bytes(snapshot_state_key(DB, "retail_trans")))
        assert len(state.chunks) >= 6 and state.source_server_id == PRIMARY_ID
        primary_files = {r["binlog_file"] for r in captured(config)}
        assert {c.position.file for c in state.chunks if c.position is not None} <= primary_files
        source = primary.execute("SELECT trans_id, customer_id, event, sku, amount, device, "
                                 "DATE_FORMAT(trans_datetime, '%Y-%m-%d %H:%i:%s') FROM retail_trans "
                                 "ORDER BY trans_id", DB)
        root = config.lake.root
        rows = spark.read.format("delta").load(f"{root}/{table_key(DB, 'retail_trans')}").orderBy("trans_id")
        assert [(r.trans_id, r.customer_id, r.event, r.sku, r.amount, r.device,
                 r.trans_datetime.strftime("%Y-%m-%d %H:%M:%S")) for r in rows.collect()] == [tuple(r) for r in source]
        items = primary.execute("SELECT order_id, line_no, product, quantity, unit_price, status, attributes, "
                                "DATE_FORMAT(updated_at, '%Y-%m-%d %H:%i:%s.%f') FROM order_items "
                                "ORDER BY order_id, line_no", DB)
        lake_items = spark.read.format("delta").load(f"{root}/{table_key(DB, 'order_items')}")
        assert [(r.order_id, r.line_no, r.product, r.quantity, str(r.unit_price), r.status, r.attributes,
                 r.updated_at.strftime("%Y-%m-%d %H:%M:%S.%f"))
                for r in lake_items.orderBy("order_id", "line_no").collect()] == [tuple(_normal(v) for v in row)
                                                                                 for row in items]


@pytest.mark.spark
@pytest.mark.slow  # two servers, a capture and a load: 80 s measured on the loaded machine (load average 16)
def test_forced_mysql_replica_load_waits_for_the_primarys_signal_and_equals_the_primary(
        tmp_path: Path, spark: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Each chunk's snapshot starts on the replica only once the signal committed on the primary after the
    chunk's label W is visible there: with the replica's applier stopped behind updates the load waits (no
    settle wait: it is ten minutes here), and a snapshot labelled W holds them; a signal that never comes
    stops the labeller naming the stopped applier."""
    with server_pair(tmp_path / "servers") as (primary, replica):
        primary.execute(f"CREATE DATABASE {DB}")
        run_sql(primary, DB, "CREATE TABLE items (id INT PRIMARY KEY, qty INT, note VARCHAR(20))",
                "INSERT INTO items SELECT seq, seq, CONCAT('n', seq) FROM seq_1_to_300")
        data = pipeline(tmp_path / "lake", primary, DB).model_dump(mode="json")
        data["full_load"].update(chunk_rows=1000, snapshot_method="watermark", watermark_settle_seconds=NEVER,
                                 signal_table=f"{DB}.{SIGNAL}")
        config = parse_config(data, Path("failover.yaml"))  # parsed: the signal table's exclude rule is added
        reading = _reading_replica(config, replica, replica_wait_seconds=30)
        replica_source = reading.full_load.source
        assert replica_source is not None
        lake = Lake.from_config(config)
        capture = CaptureThread(config).start()
        try:
            wait_for(lambda: capture.error is not None or bool(load_registry(lake).histories), 30, "the capture")
            wait_caught_up(primary, replica)
            replica.execute("STOP SLAVE SQL_THREAD")  # the replica holds none of these yet:
            run_sql(primary, DB, *[f"UPDATE items SET qty = qty + 1000, note = 'late' WHERE id = {i}"
                                   for i in range(1, 21)], "DELETE FROM items WHERE id = 300",
                    "INSERT INTO items VALUES (301, 301, 'new')")

            impatient = reading.full_load.model_copy(update={"replica_wait_seconds": 1.0})
            with connect(replica_source) as conn:
                _, labeller = open_signalled_replica(
                    conn, lambda: connect(replica_source), lambda: connect(config.source), load_registry(lake),
                    reading.model_copy(update={"full_load": impatient}), "not the captured server")
            with pytest.raises(ReplicaError, match=r"not reached the replica .*SQL thread running: No"):
                labeller()

            failures: list[BaseException] = []

            def load() -> None:
                try:
                    run_full_load(reading, spark)
                except BaseException as exc:
                    failures.append(exc)

            with caplog.at_level(logging.INFO, logger="binlake"):
                loader = threading.Thread(target=load, daemon=True)
                loader.start()
                time.sleep(3)
                assert loader.is_alive() and not failures, failures  # waiting for the signal, not reading
                assert not lake.exists(snapshot_state_key(DB, "items"))
                replica.execute("START SLAVE SQL_THREAD")
                loader.join(180)
            assert not loader.is_alive() and not failures, failures
            assert "once the replica shows a signal committed on the primary" in caplog.text
            assert "without full_load.signal_table" not in caplog.text
            signals = f"SELECT signaller, token FROM `{DB}`.`{SIGNAL}`"
            assert replica.execute(signals) == primary.execute(signals)  # the last chunk's signal reached it
            _capture_to_end(config, primary)
        finally:
            capture.stop()

        state = TableState.from_json(lake.get_bytes(snapshot_state_key(DB, "items")))
        assert len(state.chunks) == 1 and state.source_server_id == PRIMARY_ID
        late = max(r["lsn"] for r in captured(config) if r["source_table"] == "items")
        assert all(c.position is not None and c.position.lsn > late for c in state.chunks)  # labelled after the lag
        # nothing changed after the label: the loaded snapshot alone must equal the primary (it holds the lag)
        rows = spark.read.format("delta").load(lake.uri(table_key(DB, "items"))).orderBy("id").collect()
        assert [(r.id, r.qty, r.note) for r in rows] == table_rows(primary, DB, "items")
        assert not lake.exists(table_key(DB, SIGNAL))
