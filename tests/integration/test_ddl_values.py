"""Schema changes that rewrite stored values, on a real MariaDB + Spark + Delta, while the capture runs
and the merge applies batches: ADD COLUMN with constant defaults (existing rows get the source's
value), ADD COLUMN … DEFAULT CURRENT_TIMESTAMP and a truncating MODIFY (automatic online resync),
DROP PARTITION (the lake loses the rows), the ``stop`` policy's error and its recovery, DROP DATABASE.
Every case ends with the lake table compared with the source table value by value.

The capture runs in a thread; the merge runs in-process with ``availableNow`` (it executes the
automatic resync requests at its end, then a later run applies the delivered chunks).
"""

from __future__ import annotations

import datetime
import decimal
import signal
from pathlib import Path
from typing import Any

import pytest
from capture_support import CaptureThread, caught_up, checkpoint_reached, master_position, wait_for, write_config
from conftest import include_schema_rules
from merge_helpers import run_merge

from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.lake import CHECKPOINT_KEY, Lake, table_key
from binlake.merge.autoresync import DONE, read_requests
from binlake.merge.ddlvalues import UnappliableDdlError
from binlake.merge.target import DROPPED_LSN, TargetTable
from binlake.progress import read_progress
from binlake.resync import store
from binlake.resync.job import run_resync
from binlake.snapshot.job import run_full_load

pytestmark = [pytest.mark.spark, pytest.mark.slow]  # 1-6 min each on this machine: capture, full load, 2-4 merges


def _beats(mariadb: LocalMariaDB) -> None:
    mariadb.execute("CREATE DATABASE IF NOT EXISTS beats")
    mariadb.execute("CREATE TABLE IF NOT EXISTS beats.beat (id INT AUTO_INCREMENT PRIMARY KEY)")


def _run(mariadb: LocalMariaDB, db: str, *statements: str, sql_mode: str | None = None) -> None:
    conn = mariadb.connect(db)
    try:
        with conn.cursor() as cur:
            if sql_mode is not None:
                cur.execute(f"SET SESSION sql_mode = '{sql_mode}'")
            for sql in statements:
                cur.execute(sql)
    finally:
        conn.close()


def _source(mariadb: LocalMariaDB, db: str, table: str, columns: str) -> list[tuple[Any, ...]]:
    conn = mariadb.connect(db)
    try:
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
            cur.execute(f"SELECT {columns} FROM `{table}` ORDER BY 1")
            return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


def _lake(spark: Any, config: PipelineConfig, db: str, table: str, columns: str) -> list[tuple[Any, ...]]:
    frame = spark.read.format("delta").load(Lake.from_config(config).uri(table_key(db, table)))
    return [tuple(r) for r in frame.selectExpr(*columns.split("; ")).orderBy(frame.columns[0]).collect()]


def _start(mariadb: LocalMariaDB, db: str, lake_dir: Path, make_config: Any, spark: Any, table: str,
           ddl: str, rows: str, **merge: Any) -> tuple[PipelineConfig, CaptureThread]:
    """The table created, loaded, captured and joined by the merge (one streamed change merged)."""
    _beats(mariadb)
    _run(mariadb, db, ddl, f"INSERT INTO {table} VALUES {rows}")
    config: PipelineConfig = make_config(
        lake_dir, include_schema_rules(f"{db}%", table), full_load={"chunk_rows": 1000},
        capture={"flush_seconds": 0.2}, merge={"optimize_every_batches": 0, **merge})
    capture = CaptureThread(config).start()
    run_full_load(config, spark)
    _run(mariadb, db, f"UPDATE {table} SET id = id WHERE id = 1", f"DELETE FROM {table} WHERE id = 2")
    caught_up(config, mariadb, capture)
    run_merge(spark, config)
    return config, capture


ORDERS = "CREATE TABLE orders (id INT PRIMARY KEY, name VARCHAR(20), qty INT)"
ORDER_ROWS = ",".join(f"({i}, 'name-{i}', {i * 10})" for i in range(1, 41))


def test_add_column_constant_defaults_give_existing_rows_the_source_values(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any
) -> None:
    config, capture = _start(mariadb, source_db, lake_dir, make_config, spark, "orders", ORDERS, ORDER_ROWS)
    crashed: list[int] = []

    def crash_after_the_update(path: str, version: int) -> None:
        """A crash right after the ADD COLUMN step's UPDATE: the replayed batch must skip it."""
        if path.endswith("/orders") and not crashed and "status" in TargetTable.load(spark, path).columns:
            crashed.append(version)
            raise RuntimeError("simulated crash after the ADD COLUMN commit")

    try:
        _run(mariadb, source_db,
             "ALTER TABLE orders ADD COLUMN status VARCHAR(10) NOT NULL DEFAULT 'new', "
             "ADD COLUMN note VARCHAR(8) NULL, ADD COLUMN price DECIMAL(5,2) DEFAULT 1.50 AFTER id, "
             "ADD COLUMN since DATE DEFAULT '2024-01-01' FIRST, ADD COLUMN flag BIT(1) DEFAULT b'1', "
             "ADD COLUMN stage ENUM('draft','open','done') NOT NULL DEFAULT 'open', ADD COLUMN n INT NOT NULL",
             "UPDATE orders SET status = 'paid', note = 'x', price = 9.99, stage = 'done', n = 7 WHERE id = 5",
             "INSERT INTO orders (id, name, qty, n) VALUES (100, 'fresh', 1, 3)",
             "ALTER TABLE orders MODIFY qty SMALLINT",  # narrowing whose values all fit: in place
             "UPDATE orders SET qty = 32000 WHERE id = 6")
        caught_up(config, mariadb, capture)
        with pytest.raises(Exception, match="simulated crash"):
            run_merge(spark, config, after_commit=crash_after_the_update)
        run_merge(spark, config)  # the replay of the batch
    finally:
        capture.stop()
    columns = "id, since, name, qty, status, note, price, CAST(flag AS UNSIGNED), stage, n"
    lake_columns = "id; since; name; qty; status; note; price; CAST(flag AS INT); stage; n"
    source = _source(mariadb, source_db, "orders", columns)
    assert _lake(spark, config, source_db, "orders", lake_columns) == source
    assert source[0][1:] == (datetime.date(2024, 1, 1), "name-1", 10, "new", None, decimal.Decimal("1.50"), 1,
                             "open", 0)
    assert crashed and not read_requests(Lake.from_config(config))  # nothing needed a resync


def _resynced(spark: Any, config: PipelineConfig, mariadb: LocalMariaDB, capture: CaptureThread) -> None:
    """Merge (the DDL step asks for a resync, run at the end of the merge), then apply its chunks."""
    caught_up(config, mariadb, capture)
    run_merge(spark, config)
    caught_up(config, mariadb, capture)
    run_merge(spark, config)


def test_current_timestamp_default_and_truncating_modify_resync_the_table(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any
) -> None:
    config, capture = _start(mariadb, source_db, lake_dir, make_config, spark, "orders", ORDERS, ORDER_ROWS)
    try:
        _run(mariadb, source_db, "ALTER TABLE orders ADD COLUMN ts TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP",
             "UPDATE orders SET qty = -1 WHERE id = 3")
        _run(mariadb, source_db, "ALTER TABLE orders MODIFY name VARCHAR(6)", sql_mode="")  # truncates silently
        _run(mariadb, source_db, "UPDATE orders SET name = 'after' WHERE id = 4")
        _resynced(spark, config, mariadb, capture)
    finally:
        capture.stop()
    lake = Lake.from_config(config)
    requests = read_requests(lake)
    assert [r.state for r in requests] == [DONE, DONE] and len({r.resync_id for r in requests}) == 1
    assert "CURRENT_TIMESTAMP" in requests[0].reason and "VARCHAR(6)" in (requests[1].statement or "")
    source = _source(mariadb, source_db, "orders", "id, name, qty, UNIX_TIMESTAMP(ts)")
    assert _lake(spark, config, source_db, "orders", "id; name; qty; CAST(ts AS BIGINT)") == source
    names = {row[0]: row[1] for row in source}
    assert (names[10], names[4]) == ("name-1", "after")  # 'name-10' truncated by the MODIFY
    (resync,) = store.table_resyncs(lake, source_db, "orders")
    assert store.read_applied(lake, resync).covers(resync)


EVENTS = ("CREATE TABLE events (id INT, y INT, what VARCHAR(10), PRIMARY KEY (id, y)) "
          "PARTITION BY RANGE (y) (PARTITION p2023 VALUES LESS THAN (2024), PARTITION p2024 VALUES LESS THAN (2025), "
          "PARTITION pmax VALUES LESS THAN MAXVALUE)")
EVENT_ROWS = ",".join(f"({i}, {2022 + i % 4}, 'e{i}')" for i in range(1, 61))


def test_drop_partition_removes_the_rows_from_the_lake(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any
) -> None:
    config, capture = _start(mariadb, source_db, lake_dir, make_config, spark, "events", EVENTS, EVENT_ROWS)
    try:
        before = len(_source(mariadb, source_db, "events", "id"))
        _run(mariadb, source_db, "ALTER TABLE events DROP PARTITION p2023", "UPDATE events SET what = 'u' WHERE id = 2")
        _resynced(spark, config, mariadb, capture)
    finally:
        capture.stop()
    source = _source(mariadb, source_db, "events", "id, y, what")
    assert len(source) < before and all(y >= 2024 for _, y, _ in source)
    assert _lake(spark, config, source_db, "events", "id; y; what") == source


def test_stop_policy_names_table_statement_and_command_then_a_resync_lets_the_merge_go_on(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any
) -> None:
    config, capture = _start(mariadb, source_db, lake_dir, make_config, spark, "events", EVENTS, EVENT_ROWS,
                             on_unappliable_ddl="stop")
    try:
        _run(mariadb, source_db, "ALTER TABLE events TRUNCATE PARTITION p2024")
        caught_up(config, mariadb, capture)
        with pytest.raises(Exception) as failure:
            run_merge(spark, config)
        text = str(failure.value)
        assert f"{source_db}.events" in text and "TRUNCATE PARTITION p2024" in text
        assert f"binlake resync --config <pipeline.yaml> --table {source_db}.events" in text
        assert isinstance(failure.value, UnappliableDdlError) or "UnappliableDdlError" in text
        with pytest.raises(Exception, match="TRUNCATE PARTITION"):  # stays stopped: nothing skipped
            run_merge(spark, config)
        run_resync(config, spark, f"{source_db}.events")  # the command the error names
        _resynced(spark, config, mariadb, capture)
    finally:
        capture.stop()
    assert not read_requests(Lake.from_config(config))
    source = _source(mariadb, source_db, "events", "id, y, what")
    assert all(y != 2024 for _, y, _ in source)
    assert _lake(spark, config, source_db, "events", "id; y; what") == source


def test_drop_database_drops_each_selected_table_in_it(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any
) -> None:
    other = f"{source_db}_x"
    mariadb.execute(f"CREATE DATABASE {other}")
    _run(mariadb, other, ORDERS, f"INSERT INTO orders VALUES {ORDER_ROWS}")
    config, capture = _start(mariadb, source_db, lake_dir, make_config, spark, "orders", ORDERS, ORDER_ROWS)
    try:
        _run(mariadb, other, "UPDATE orders SET qty = 0 WHERE id = 1")
        caught_up(config, mariadb, capture)
        run_merge(spark, config)  # joins the other database's table too
        mariadb.execute(f"DROP DATABASE {other}")
        _run(mariadb, source_db, "UPDATE orders SET qty = 1 WHERE id = 1")
        caught_up(config, mariadb, capture)
        run_merge(spark, config)
    finally:
        capture.stop()
    assert _lake(spark, config, other, "orders", "id") == []
    path = Lake.from_config(config).uri(table_key(other, "orders"))
    assert TargetTable.load(spark, path).properties[DROPPED_LSN]
    source = _source(mariadb, source_db, "orders", "id, name, qty")
    assert _lake(spark, config, source_db, "orders", "id; name; qty") == source


def test_a_resync_request_survives_a_sigkill_of_the_merge(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any, tmp_path: Path
) -> None:
    """Capture and merge as real processes; the merge is SIGKILLed as soon as the DROP PARTITION's
    resync request is durable (before, during or after the resync it starts): the restarted merge
    serves the request with one resync, and the lake ends equal to the source."""
    from test_resync import Group

    _beats(mariadb)
    _run(mariadb, source_db, EVENTS, f"INSERT INTO events VALUES {EVENT_ROWS}")
    config: PipelineConfig = make_config(
        lake_dir, include_schema_rules(source_db, "events"), capture={"flush_seconds": 0.5},
        merge={"optimize_every_batches": 0, "trigger_seconds": 1.0})
    config_path = write_config(config, tmp_path / "pipeline.yaml")
    lake = Lake.from_config(config)
    merge_args = ["streaming/merge.py", "--config", str(config_path)]
    capture = Group(["-m", "binlake.cli", "capture", "--config", str(config_path)], tmp_path / "capture.log")
    merge: Any = None
    try:
        wait_for(lambda: lake.exists(CHECKPOINT_KEY), 120, "the capture's first checkpoint")
        run_full_load(config, spark)
        merge = Group(merge_args, tmp_path / "merge.log")
        _run(mariadb, source_db, "UPDATE events SET what = 'joined' WHERE id = 1")  # the merge joins on it
        _run(mariadb, source_db, "ALTER TABLE events DROP PARTITION p2023", "UPDATE events SET what = 'u' WHERE id = 2")
        wait_for(lambda: bool(read_requests(lake)), 600, "the resync request")
        merge.kill()
        merge = Group(merge_args, tmp_path / "merge.log")
        wait_for(lambda: all(r.state == DONE for r in read_requests(lake)), 600, "the request served")
        (resync,) = store.table_resyncs(lake, source_db, "events")
        wait_for(lambda: store.read_applied(lake, resync).covers(resync), 600, "the resync applied")
        end = master_position(mariadb)
        wait_for(checkpoint_reached(config, end), 120, "the capture to reach the binlog end")
        wait_for(lambda: (read_progress(lake).applied_lsn or 0) >= end.lsn, 300, "the merge to catch up")
    finally:
        if merge is not None:
            merge.kill(signal.SIGTERM)
        capture.kill(signal.SIGTERM)
    (request,) = read_requests(lake)
    assert request.resync_id == resync.resync_id and resync.reason == "auto"
    source = _source(mariadb, source_db, "events", "id, y, what")
    assert all(y >= 2024 for _, y, _ in source)
    assert _lake(spark, config, source_db, "events", "id; y; what") == source
