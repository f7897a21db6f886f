"""Peer SQL corpora (Debezium, python-mysql-replication, Sakila) through the whole pipeline.

For each file: load it, start the capture, run the full load (every value through the JDBC path),
then delete and re-insert every row of every table (every value through the binlog → change log →
merge path), merge, and validate that each lake table equals its source table key by key.

A few broad files run by default; the rest are marked slow (``make test-slow``). Skipped with a
message where ``../shared/peer-sql`` is absent.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from capture_support import CaptureThread, checkpoint_reached, master_position, wait_for
from conftest import PEER_SQL, peer_sql_dir

from binlake.devdb import LocalMariaDB
from binlake.merge.job import run as run_merge
from binlake.snapshot.job import run_full_load
from binlake.validation import format_report, validate

DEFAULT_FILES = (  # the default suite's share; the rest (and these) run with -m slow
    "debezium__regression_test.sql",
    "debezium__unsigned_integer_test.sql",
    "debezium__json_test.sql",
)
# Sakila is loaded from its two files together.
SKIP_ALONE = {"test_db__sakila-mv-data.sql"}


def _files() -> list[Any]:
    if not PEER_SQL.is_dir():
        return [pytest.param("absent", id="peer-sql-absent")]
    names = sorted(p.name for p in PEER_SQL.glob("*.sql") if p.name not in SKIP_ALONE)
    return [pytest.param(name, id=name.removesuffix(".sql"),
                         marks=() if name in DEFAULT_FILES else pytest.mark.slow) for name in names]


def _mapping(database: str) -> dict[str, Any]:
    return {"rules": [
        {"rule-type": "selection", "rule-id": "1", "object-locator": {"schema-name": database, "table-name": "%"},
         "rule-action": "include"},
        {"rule-type": "selection", "rule-id": "2", "object-locator": {"schema-name": database,
                                                                    "table-name": "binlake_copy_%"},
         "rule-action": "exclude"},
    ]}


def _base_tables(db: LocalMariaDB, database: str) -> list[str]:
    return [str(name) for (name,) in db.execute(
        f"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{database}' "
        "AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME")]


def _rewrite_every_row(db: LocalMariaDB, database: str, table: str) -> None:
    """Delete and re-insert every row in one transaction, so each value passes through the binlog."""
    columns = [str(c) for (c,) in db.execute(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{}' AND TABLE_NAME = '{}' "
        "AND EXTRA NOT LIKE '%GENERATED%' ORDER BY ORDINAL_POSITION".format(database, table.replace("'", "''")))]
    quoted = ", ".join("`" + c.replace("`", "``") + "`" for c in columns)
    name = "`" + table.replace("`", "``") + "`"
    copy = f"`binlake_copy_{re.sub(r'[^A-Za-z0-9_]', '_', table)}`"
    with db.connect(database, autocommit=False) as conn, conn.cursor() as cur:
        cur.execute("SET SESSION foreign_key_checks = 0, sql_mode = ''")
        cur.execute(f"CREATE TABLE {copy} LIKE {name}")
        cur.execute(f"INSERT INTO {copy} ({quoted}) SELECT {quoted} FROM {name}")
        cur.execute(f"DELETE FROM {name}")
        cur.execute(f"INSERT INTO {name} ({quoted}) SELECT {quoted} FROM {copy}")
        conn.commit()
        cur.execute(f"DROP TABLE {copy}")


@pytest.mark.parametrize("file_name", _files())
def test_peer_corpus_through_full_load_and_stream(
    file_name: str, mariadb: LocalMariaDB, lake_dir: Path, make_config: Any, spark: Any
) -> None:
    folder = peer_sql_dir()
    database = "peer_" + re.sub(r"[^a-z0-9]+", "_", file_name.lower().removesuffix(".sql"))[:40]
    mariadb.execute(f"DROP DATABASE IF EXISTS `{database}`")
    mariadb.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
    try:
        mariadb.load_sql_file(folder / file_name, database)
        if file_name == "test_db__sakila-mv-schema.sql":
            mariadb.load_sql_file(folder / "test_db__sakila-mv-data.sql", database)
        config = make_config(lake_dir, _mapping(database), capture={"start": "end", "flush_seconds": 0.5},
                             merge={"max_files_per_batch": 1000})
        capture = CaptureThread(config).start()
        try:
            wait_for(lambda: checkpoint_reached(config, master_position(mariadb))(), 30, "the capture to start")
            run_full_load(config, spark)
            for table in _base_tables(mariadb, database):
                _rewrite_every_row(mariadb, database, table)
            end = master_position(mariadb)
            wait_for(lambda: capture.error is not None or checkpoint_reached(config, end)(), 120, "the capture")
        finally:
            capture.stop()
        run_merge(spark, config, available_now=True)
        results = validate(spark, config)
        report = format_report(results)
        assert results, report
        assert {r.status for r in results} == {"OK"}, report
        assert all(r.source_rows == r.lake_rows for r in results), report
    finally:
        mariadb.execute(f"DROP DATABASE IF EXISTS `{database}`")
