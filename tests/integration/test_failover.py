"""Failover and binlog resets on real servers: the change log's order survives a change of server.

Two private MariaDB servers in GTID replication (:mod:`failover_support`), the primary's binlog
numbers ahead of the replica's, so without an epoch in the order key the new primary's changes
would order *before* the old primary's and the merge would skip them as already applied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from capture_support import CaptureThread, captured, reach_end, wait_for
from failover_support import (
    PRIMARY_ID,
    REPLICA_ID,
    TcpProxy,
    checkpoint_at,
    end_of,
    gtid_pos,
    pipeline,
    promote,
    run_sql,
    server_pair,
    table_rows,
    wait_caught_up,
)
from merge_helpers import rows, run_merge

from binlake.capture.history import FAILOVER_JOIN, FIRST_START, START_AT_END, load_registry
from binlake.capture.resume import HistoryRefused
from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB, free_port
from binlake.lake import Lake, table_key
from binlake.positions import file_sequence, split_lsn
from binlake.snapshot.job import FullLoadError, run_full_load
from binlake.status import table_statuses

DB = "shop"
CREATE = "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40), qty INT)"


def _fill(db: LocalMariaDB) -> None:
    db.execute(f"CREATE DATABASE {DB}")
    run_sql(db, DB, CREATE, "INSERT INTO items VALUES " + ",".join(f"({i}, 'item{i}', {i})" for i in range(1, 201)))


def _capture_until(config: PipelineConfig, server: LocalMariaDB, epoch: int) -> None:
    """Run the capture until its checkpoint covers ``server``'s binlog end (in ``epoch``)."""
    capture = CaptureThread(config).start()
    try:
        reach_end(config, server, lambda: capture.error is not None, epoch,
                  what=f"the capture to reach the end of server {server.server_id}")
    finally:
        capture.stop()


def _lake_rows(spark: Any, config: PipelineConfig) -> list[tuple[Any, ...]]:
    return rows(spark, Lake.from_config(config).uri(table_key(DB, "items")))


def test_after_a_failover_the_capture_joins_the_replica_by_gtid_and_orders_its_changes_last(tmp_path: Path) -> None:
    """The short variant (no Spark): what the capture writes after a failover."""
    with server_pair(tmp_path / "servers") as (primary, replica):
        _fill(primary)
        old = pipeline(tmp_path / "lake", primary, DB)
        _capture_until(old, primary, 0)
        run_sql(primary, DB, "UPDATE items SET qty = 1000 WHERE id = 1")
        _capture_until(old, primary, 0)
        wait_caught_up(primary, replica)
        before = captured(old)
        primary.stop()
        promote(replica)

        new = pipeline(tmp_path / "lake", replica, DB)
        run_sql(replica, DB, "UPDATE items SET qty = 2000 WHERE id = 1", "DELETE FROM items WHERE id = 2")
        _capture_until(new, replica, 1)
        after = [r for r in captured(new) if r["lsn"] > max(b["lsn"] for b in before)]
        assert [(split_lsn(r["lsn"])[0], r["op"], r["after"], r["before"]["id"]) for r in after] == [
            (1, "U", {"id": "1", "name": "item1", "qty": "2000"}, "1"), (1, "D", None, "2")]
        assert [r["gtid"].split("-")[1] for r in after] == [str(REPLICA_ID)] * 2
        assert min(r["lsn"] for r in after) > max(b["lsn"] for b in before)
        assert load_registry(Lake.from_config(new)).latest.began == FAILOVER_JOIN  # type: ignore[union-attr]


def test_a_failover_behind_the_same_address_stops_the_reconnect_and_a_restart_joins(tmp_path: Path) -> None:
    """A VIP / DNS name moved to the promoted replica while the capture runs: its reconnect must not
    resume by file/position on another server's binlog."""
    with server_pair(tmp_path / "servers") as (primary, replica):
        _fill(primary)
        proxy = TcpProxy(primary.port)
        try:
            config = pipeline(tmp_path / "lake", primary, DB, port=proxy.port, reconnect_max_seconds=1.0)
            capture = CaptureThread(config).start()
            reach_end(config, primary, lambda: capture.error is not None, 0, 30, "the capture to start")
            run_sql(primary, DB, "UPDATE items SET qty = 1000 WHERE id = 1")
            reach_end(config, primary, lambda: capture.error is not None, 0, 30, "the capture")
            wait_caught_up(primary, replica)
            primary.stop()
            promote(replica)
            proxy.retarget(replica.port)  # the address now leads to the new primary
            wait_for(lambda: not capture.thread.is_alive(), 60, "the capture to stop")
            assert "after reconnecting" in str(capture.error)
            assert f"server_id {PRIMARY_ID} → {REPLICA_ID}" in str(capture.error)

            run_sql(replica, DB, "UPDATE items SET qty = 2000 WHERE id = 1")
            _capture_until(config, replica, 1)  # the restart joins the new primary by GTID
            updates = [r for r in captured(config) if r["op"] == "U"]
            assert [(split_lsn(r["lsn"])[0], r["after"]["qty"]) for r in updates] == [(0, "1000"), (1, "2000")]
        finally:
            proxy.close()


@pytest.mark.slow
def test_failover_to_a_gtid_replica_continues_the_change_log(tmp_path: Path, spark: Any) -> None:
    with server_pair(tmp_path / "servers") as (primary, replica):
        _fill(primary)
        old = pipeline(tmp_path / "lake", primary, DB)
        capture = CaptureThread(old).start()
        reach_end(old, primary, lambda: capture.error is not None, 0, 30, "the capture to start")
        run_full_load(old, spark)
        run_sql(primary, DB, *[f"UPDATE items SET qty = qty + 1000 WHERE id = {i}" for i in range(1, 61)],
                "DELETE FROM items WHERE id BETWEEN 190 AND 200",
                "INSERT INTO items VALUES " + ",".join(f"({i}, 'new{i}', 0)" for i in range(201, 221)))
        wait_for(lambda: capture.error is not None or checkpoint_at(old, primary, 0)(), 30, "the capture")
        capture.stop()
        run_merge(spark, old)
        assert _lake_rows(spark, old) == table_rows(primary, DB, "items")

        wait_caught_up(primary, replica)
        lake_holds = gtid_pos(primary)
        old_file = end_of(primary).file
        primary.stop()  # the primary is gone
        promote(replica)
        assert file_sequence(end_of(replica).file) < file_sequence(old_file)  # positions are unrelated

        new = pipeline(tmp_path / "lake", replica, DB)  # the user points source.port at the new primary
        capture = CaptureThread(new).start()
        # rows last changed before the failover (1..60 updated, 150..160 loaded), new ones, deletes
        run_sql(replica, DB, *[f"UPDATE items SET qty = qty + 1, name = 'a{i}' WHERE id = {i}" for i in range(1, 31)],
                "DELETE FROM items WHERE id BETWEEN 150 AND 160", "DELETE FROM items WHERE id BETWEEN 201 AND 205",
                "INSERT INTO items VALUES " + ",".join(f"({i}, 'b{i}', 7)" for i in range(300, 311)),
                "UPDATE items SET qty = -1 WHERE id BETWEEN 40 AND 45")
        wait_for(lambda: capture.error is not None or checkpoint_at(new, replica, 1)(), 60, "the new capture")
        capture.stop()

        histories = load_registry(Lake.from_config(new)).histories
        assert [(h.epoch, h.server_id, h.began) for h in histories] == [(0, PRIMARY_ID, FIRST_START),
                                                                       (1, REPLICA_ID, FAILOVER_JOIN)]
        assert histories[1].start_gtid == lake_holds
        run_merge(spark, new)
        assert _lake_rows(spark, new) == table_rows(replica, DB, "items")

        # a full load from the new server hands off in the new epoch
        run_full_load(new, spark)
        run_sql(replica, DB, "UPDATE items SET qty = 99 WHERE id BETWEEN 1 AND 5", "DELETE FROM items WHERE id = 300")
        _capture_until(new, replica, 1)
        run_merge(spark, new)
        assert _lake_rows(spark, new) == table_rows(replica, DB, "items")


def test_a_promoted_replica_that_lacks_transactions_is_refused(tmp_path: Path) -> None:
    with server_pair(tmp_path / "servers") as (primary, replica):
        _fill(primary)
        old = pipeline(tmp_path / "lake", primary, DB)
        _capture_until(old, primary, 0)
        wait_caught_up(primary, replica)
        replica.execute("STOP SLAVE")  # the replica falls behind ...
        run_sql(primary, DB, "UPDATE items SET qty = 0 WHERE id = 1", "UPDATE items SET qty = 0 WHERE id = 2")
        _capture_until(old, primary, 0)  # ... of transactions the lake already holds
        lost = gtid_pos(primary)
        primary.stop()
        promote(replica)

        new = pipeline(tmp_path / "lake", replica, DB)
        capture = CaptureThread(new).start()
        wait_for(lambda: not capture.thread.is_alive(), 30, "the capture to refuse")
        assert isinstance(capture.error, HistoryRefused)
        text = str(capture.error)
        assert lost in text and f"server_id {REPLICA_ID}" in text
        assert "capture.start: end" in text and "reload" in text
        assert [h.epoch for h in load_registry(Lake.from_config(new)).histories] == [0]  # nothing registered


@pytest.mark.slow
def test_reset_master_is_refused_then_start_end_and_a_new_full_load_equal_the_source(tmp_path: Path,
                                                                                    spark: Any) -> None:
    source = LocalMariaDB(tmp_path / "db", free_port(), server_id=21)
    with source:
        _fill(source)
        source.execute("FLUSH BINARY LOGS")
        source.execute("FLUSH BINARY LOGS")
        config = pipeline(tmp_path / "lake", source, DB)
        _capture_until(config, source, 0)
        run_full_load(config, spark)
        run_sql(source, DB, "UPDATE items SET qty = 5 WHERE id < 50")
        _capture_until(config, source, 0)
        run_merge(spark, config)

        source.execute("RESET MASTER")
        run_sql(source, DB, "UPDATE items SET qty = 6 WHERE id < 10", "DELETE FROM items WHERE id > 190")
        capture = CaptureThread(config).start()
        wait_for(lambda: not capture.thread.is_alive(), 30, "the capture to refuse")
        assert isinstance(capture.error, HistoryRefused) and "RESET MASTER" in str(capture.error)
        with pytest.raises(FullLoadError, match="RESET MASTER"):  # nor can a snapshot be ordered against it
            run_full_load(config, spark)

        restarted = pipeline(tmp_path / "lake", source, DB, start="end")
        _capture_until(restarted, source, 1)
        histories = load_registry(Lake.from_config(config)).histories
        assert [(h.epoch, h.began) for h in histories] == [(0, FIRST_START), (1, START_AT_END)]
        gaps = {t.table: t.gap for t in table_statuses(Lake.from_config(config))}
        assert "older than the start of the change log" in (gaps["shop.items"] or "")  # reload it
        run_full_load(config, spark)
        run_sql(source, DB, "UPDATE items SET qty = 7 WHERE id < 30",
                "INSERT INTO items VALUES (500, 'x', 9)")
        _capture_until(config, source, 1)  # capture.start: checkpoint again — start: end would open another gap
        run_merge(spark, config)
        assert _lake_rows(spark, config) == table_rows(source, DB, "items")
        assert [t.gap for t in table_statuses(Lake.from_config(config))] == [None]

