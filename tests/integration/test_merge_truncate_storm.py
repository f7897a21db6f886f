"""A staging table truncated and refilled thousands of times (a common ETL pattern), all captured
before the merge runs, so one micro-batch holds every cycle: the merge converges and the lake equals
the source. (Before, one expression branch per DDL segment overflowed the JVM's stack from ~600
cycles on, and every restart replayed the same batch.)"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pymysql
import pytest
from capture_support import CaptureThread, checkpoint_reached, master_position, wait_for
from conftest import include_schema_rules
from delta.tables import DeltaTable

from binlake.devdb import LocalMariaDB
from binlake.merge.job import run as run_merge
from binlake.snapshot.job import run_full_load

pytestmark = pytest.mark.spark

CYCLES_PER_ROUND_TRIP = 100


def cycle(k: int) -> list[str]:
    """Cycle ``k``: empty the table, refill it with 1..5 rows, and touch them (update, delete)."""
    rows = ", ".join(f"({i}, {k}, 'c{k}-{i}')" for i in range(1, 2 + k % 5))
    statements = ["TRUNCATE TABLE stage", f"INSERT INTO stage (id, v, s) VALUES {rows}"]
    if k % 3 == 0:
        statements.append("UPDATE stage SET v = -v, s = CONCAT(s, '+') WHERE id = 1")
    if k % 4 == 0:
        statements.append("DELETE FROM stage WHERE id = 2")
    if k % 50 == 0:
        statements.append(f"INSERT INTO steady (id, k) VALUES ({k}, {k})")
    return statements


def storm(db: LocalMariaDB, database: str, cycles: int) -> None:
    """``cycles`` cycles, many per round trip (multi-statement batches over one connection)."""
    conn = pymysql.connect(unix_socket=str(db.datadir / "mariadb.sock"), user="root", database=database,
                           autocommit=True, client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
    try:
        with conn.cursor() as cur:
            for first in range(1, cycles + 1, CYCLES_PER_ROUND_TRIP):
                last = min(cycles, first + CYCLES_PER_ROUND_TRIP - 1)
                cur.execute(";\n".join(s for k in range(first, last + 1) for s in cycle(k)))
                while cur.nextset():
                    pass
    finally:
        conn.close()


def source_rows(db: LocalMariaDB, database: str, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in db.execute(sql, database)]


def lake_rows(spark: Any, path: str, columns: list[str], order: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in spark.read.format("delta").load(path).select(*columns).orderBy(order).collect()]


@pytest.mark.parametrize("cycles", [700, pytest.param(5000, marks=pytest.mark.slow)])
def test_truncate_storm_converges(mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any,
                                  spark: Any, cycles: int) -> None:
    mariadb.execute("CREATE TABLE stage (id INT PRIMARY KEY, v INT, s VARCHAR(20))", source_db)
    mariadb.execute("CREATE TABLE steady (id INT PRIMARY KEY, k INT)", source_db)
    mariadb.execute("INSERT INTO stage VALUES (1, 0, 'loaded'), (9, 0, 'loaded')", source_db)
    config = make_config(lake_dir, include_schema_rules(source_db), capture={"start": "end", "flush_seconds": 0.5},
                         merge={"max_files_per_batch": 10_000, "optimize_every_batches": 0})
    capture = CaptureThread(config).start()
    try:
        wait_for(checkpoint_reached(config, master_position(mariadb)), 30, "the capture to start")
        run_full_load(config, spark)
        started = time.monotonic()
        storm(mariadb, source_db, cycles)
        end = master_position(mariadb)
        wait_for(lambda: capture.error is not None or checkpoint_reached(config, end)(), 300, "the capture")
        print(f"{cycles} truncate + refill cycles made and captured in {time.monotonic() - started:.1f} s")
    finally:
        capture.stop()
    assert capture.error is None

    started = time.monotonic()
    run_merge(spark, config, available_now=True)  # one batch holds every cycle
    lake = f"{config.lake.root}/{source_db}"
    merges = DeltaTable.forPath(spark, f"{lake}/stage").history().filter("operation = 'MERGE'").count()
    print(f"merge: {cycles} cycles in {time.monotonic() - started:.1f} s, {merges} MERGE commit(s) on stage")

    expected = source_rows(mariadb, source_db, "SELECT id, v, s FROM stage ORDER BY id")
    assert expected and all(s.startswith(f"c{cycles}-") for _, _, s in expected)  # the last cycle's rows
    assert lake_rows(spark, f"{lake}/stage", ["id", "v", "s"], "id") == expected
    assert lake_rows(spark, f"{lake}/steady", ["id", "k"], "id") == source_rows(
        mariadb, source_db, "SELECT id, k FROM steady ORDER BY id")
