"""The workload of the catalog tests (tests/integration/test_catalog_*.py): a full load, then CDC with
inserts, updates, deletes, a DROP TABLE, a RENAME TABLE and a new table, replicated by the real
capture (a thread) and merge (in-process, ``availableNow``), registration running as the pipeline
runs it (its own process)."""

from __future__ import annotations

from typing import Any

from capture_support import CaptureThread, caught_up
from merge_helpers import run_merge

from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.snapshot.job import run_full_load

LOADED = ("items", "old_name", "orders", "stale")
"""The tables of the full load; ``Items`` (an upper-case name) is registered as ``items``."""
AFTER_CDC = ("fresh", "items", "new_name", "orders")
"""The live tables after the CDC: ``stale`` dropped, ``old_name`` renamed to ``new_name``, ``fresh`` new."""
HELPER = "_orders_gho"
"""A gh-ost ghost table of ``orders``, still there at the end (the tool runs): replicated, never registered."""


def create_source(mariadb: LocalMariaDB, db: str, only_orders: bool = False) -> None:
    run = lambda sql: mariadb.execute(sql, db)  # noqa: E731
    run("CREATE TABLE orders (id INT PRIMARY KEY, item VARCHAR(20), qty INT, price DECIMAL(10,2))")
    run("INSERT INTO orders VALUES " + ",".join(f"({i}, 'item{i}', {i * 3}, {i}.25)" for i in range(1, 31)))
    if only_orders:
        return
    run("CREATE TABLE `Items` (sku VARCHAR(10) PRIMARY KEY, title VARCHAR(30))")
    run("INSERT INTO `Items` VALUES ('a1', 'Apple'), ('b2', 'Bread'), ('c3', 'Cheese')")
    run("CREATE TABLE stale (id INT PRIMARY KEY, note VARCHAR(10))")
    run("INSERT INTO stale VALUES (1, 'x'), (2, 'y')")
    run("CREATE TABLE old_name (id INT PRIMARY KEY, v BIGINT)")
    run("INSERT INTO old_name VALUES " + ",".join(f"({i}, {i * 1000})" for i in range(1, 11)))


def change_source(mariadb: LocalMariaDB, db: str) -> None:
    run = lambda sql: mariadb.execute(sql, db)  # noqa: E731
    run("UPDATE orders SET qty = qty + 1, item = 'changed' WHERE id <= 5")
    run("DELETE FROM orders WHERE id BETWEEN 20 AND 24")
    run("INSERT INTO orders VALUES (100, 'new', 1, 9.99)")
    run("UPDATE `Items` SET title = 'Brie' WHERE sku = 'c3'")
    run("DROP TABLE stale")
    run(f"RENAME TABLE `{db}`.`old_name` TO `{db}`.`new_name`")
    run("CREATE TABLE fresh (id INT PRIMARY KEY, label VARCHAR(10))")
    run("INSERT INTO fresh VALUES (1, 'one'), (2, 'two')")
    run(f"CREATE TABLE {HELPER} LIKE orders")
    run(f"INSERT INTO {HELPER} SELECT * FROM orders")


def replicate(mariadb: LocalMariaDB, db: str, config: PipelineConfig, spark: Any, loaded: Any = None) -> None:
    """Source tables, capture, full load; ``loaded(config)`` is called once the full load has
    registered its tables; then the CDC, caught up by two merge runs (the second applies the
    resync of the table renamed onto ``new_name``, which brings its rows)."""
    create_source(mariadb, db)
    capture = CaptureThread(config).start()
    try:
        caught_up(config, mariadb, capture)
        run_full_load(config, spark)
        if loaded is not None:
            loaded(config)
        change_source(mariadb, db)
        caught_up(config, mariadb, capture)
        run_merge(spark, config)
        caught_up(config, mariadb, capture)
        run_merge(spark, config)
    finally:
        capture.stop()


def source_rows(mariadb: LocalMariaDB, db: str, table: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in mariadb.execute(f"SELECT * FROM `{table}`", db))


def source_name(table: str) -> str:
    return "Items" if table == "items" else table
