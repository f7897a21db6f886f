"""Tables created while replication runs (real MariaDB + capture + Spark + Delta): ``CREATE TABLE``,
``CREATE TABLE … LIKE`` and ``CREATE TABLE … SELECT`` of tables the ``%`` selection selects are born
in the lake at their CREATE — no full load — and equal their source tables value by value after
inserts, updates and deletes; a table that exists at the source without a full load or a CREATE in
the change log waits, reported as such with the command that loads it.

The capture runs in a thread; the merge runs in-process with ``availableNow``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from capture_support import CaptureThread, caught_up
from conftest import include_schema_rules
from merge_helpers import Source, load_table, merge_config, rows, run_merge
from merge_helpers import lsn as merge_lsn
from stream_tables import lake_columns, lake_rows, selected, source_rows

from binlake.catalog import read_catalog
from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.lake import MERGE_STATUS_KEY, Lake, table_key
from binlake.merge.autoresync import read_requests
from binlake.merge.summary import TableName
from binlake.merge.target import DROPPED_LSN, TargetTable, is_delta_table
from binlake.rules import TableMapping
from binlake.status import WAITING_FOR_FULL_LOAD, pipeline_status, render_text
from binlake.tables import table_rows

pytestmark = pytest.mark.spark


BASE = "CREATE TABLE base (id INT PRIMARY KEY, name VARCHAR(20), qty INT)"


def started(mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any,
            spark: Any) -> tuple[PipelineConfig, CaptureThread]:
    """The capture running on ``<db>.%`` from the binlog end, then ``base`` created (born in the
    stream too: no full load at all) with 20 rows."""
    config: PipelineConfig = make_config(
        lake_dir, include_schema_rules(source_db, "%"), capture={"flush_seconds": 0.2},
        merge={"optimize_every_batches": 0, "max_files_per_batch": 1000})
    capture = CaptureThread(config).start()
    caught_up(config, mariadb, capture)
    mariadb.execute(BASE, source_db)
    mariadb.execute("INSERT INTO base VALUES " + ",".join(f"({i}, 'b{i}', {i})" for i in range(1, 21)), source_db)
    return config, capture


@pytest.mark.slow
def test_tables_created_while_replicating_are_born_in_the_lake_and_exact(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any
) -> None:
    config, capture = started(mariadb, source_db, lake_dir, make_config, spark)
    try:
        run_merge(spark, config)
        db = source_db
        mariadb.execute("CREATE TABLE fresh (id INT PRIMARY KEY, note VARCHAR(20), n BIGINT)", db)
        mariadb.execute("INSERT INTO fresh VALUES (1, 'one', 1), (2, 'two', 2), (3, 'three', 3), (4, 'four', 4)", db)
        mariadb.execute("UPDATE fresh SET note = 'TWO', n = 20 WHERE id = 2", db)
        mariadb.execute("DELETE FROM fresh WHERE id = 3", db)
        mariadb.execute("CREATE TABLE copied (PRIMARY KEY (id)) SELECT id, name, qty * 2 AS qty2 FROM base "
                        "WHERE id <= 10", db)
        mariadb.execute("UPDATE copied SET name = 'changed' WHERE id = 5", db)
        mariadb.execute("CREATE TABLE twin LIKE base", db)
        mariadb.execute("INSERT INTO twin SELECT * FROM base WHERE id > 15", db)
        mariadb.execute("DELETE FROM twin WHERE id = 16", db)
        mariadb.execute("CREATE TABLE empty_one (id INT PRIMARY KEY, v INT)", db)  # no row yet
        caught_up(config, mariadb, capture)
        run_merge(spark, config)
        for table in ("fresh", "copied", "twin"):
            assert lake_rows(spark, config, db, table) == source_rows(mariadb, db, table), table
        assert lake_columns(spark, config, db, "copied") == ["id", "name", "qty2"]
        lake = Lake.from_config(config)
        assert not is_delta_table(spark, lake.uri(table_key(db, "empty_one")))
        # later changes, the still empty table's first rows, and a DROP + re-CREATE of a born table
        mariadb.execute("INSERT INTO empty_one VALUES (1, 10), (2, 20)", db)
        mariadb.execute("UPDATE fresh SET n = n + 100", db)
        mariadb.execute("DROP TABLE twin", db)
        mariadb.execute("CREATE TABLE twin (id INT PRIMARY KEY, other VARCHAR(5))", db)
        mariadb.execute("INSERT INTO twin VALUES (7, 'x')", db)
        caught_up(config, mariadb, capture)
        run_merge(spark, config)
    finally:
        capture.stop()
    for table in ("fresh", "copied", "twin", "empty_one", "base"):
        assert lake_rows(spark, config, db, table) == source_rows(mariadb, db, table), table
    assert lake_columns(spark, config, db, "twin") == ["id", "other"]
    states = {(r.source_table, r.state) for r in table_rows(lake, selected(config, mariadb, db))}
    assert {("fresh", "joined"), ("copied", "joined"), ("twin", "joined"), ("empty_one", "joined"),
            ("base", "joined")} <= states


@pytest.mark.slow
def test_a_table_without_full_load_or_create_in_the_change_log_waits_and_says_so(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any
) -> None:
    config, capture = started(mariadb, source_db, lake_dir, make_config, spark)
    try:
        conn = mariadb.connect(source_db)
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION sql_log_bin = 0")  # as if it predates the capture
                cur.execute("CREATE TABLE hidden (id INT PRIMARY KEY, v INT)")
                cur.execute("INSERT INTO hidden VALUES (1, 1), (2, 2)")
        finally:
            conn.close()
        mariadb.execute("INSERT INTO hidden VALUES (3, 3)", source_db)  # logged: the merge sees the table
        caught_up(config, mariadb, capture)
        run_merge(spark, config)
    finally:
        capture.stop()
    lake = Lake.from_config(config)
    assert not is_delta_table(spark, lake.uri(table_key(source_db, "hidden")))  # never a partial table
    text = render_text(pipeline_status(config))
    assert "WAITING FOR A FULL LOAD" in text and f"{source_db}.hidden" in text
    assert "full_load.py" in text
    (row,) = [r for r in table_rows(lake, selected(config, mariadb, source_db)) if r.source_table == "hidden"]
    assert row.state == "not loaded"


def test_merge_births_swaps_and_waiting_tables_from_a_written_change_log(spark: Any, lake_dir: Path) -> None:
    """The merge's side alone (a change log written by the test, no source): a CREATE of a table
    without full load is its birth (and one with a row only later); a loaded table another table
    is renamed onto gets a durable resync request; the table renamed away is wiped as DROP TABLE; a
    table with rows but no full load and no CREATE waits, reported as waiting for a full load."""
    lake = Lake(str(lake_dir))
    load_table(spark, lake, "t", [(1, "a", 1), (2, "b", 2)], 100)
    load_table(spark, lake, "old", [(1, "x", 1)], 100)
    src = Source(lake)
    swap = "RENAME TABLE `shop`.`t` TO `shop`.`_t_del`, `shop`.`_t_gho` TO `shop`.`t`"
    src.write(
        src.ddl(110, "born", "CREATE", "CREATE TABLE born (id BIGINT PRIMARY KEY, name TEXT, qty INT)"),
        src.ins(111, "born", {"id": 1, "name": "a", "qty": 1}, {"id": 2, "name": "b", "qty": 2}),
        src.upd(112, "born", ({"id": 1, "name": "a", "qty": 1}, {"id": 1, "name": "a2", "qty": 10})),
        src.dele(113, "born", {"id": 2, "name": "b", "qty": 2}),
        src.ddl(114, "later", "CREATE", "CREATE TABLE later (id BIGINT PRIMARY KEY, name TEXT, qty INT)"),
        src.ddl(116, "empty", "CREATE", "CREATE TABLE empty (id BIGINT PRIMARY KEY)"),  # no row yet
        src.ins(115, "hidden", {"id": 9, "name": "h", "qty": 9}),  # no full load, no CREATE
        src.ddl(120, "t", "RENAME", swap),
        src.upd(121, "t", ({"id": 1, "name": "a", "qty": 1}, {"id": 1, "name": "a", "qty": 5})),
        src.ddl(130, "old", "RENAME", "RENAME TABLE old TO old_2024"),
    )
    src.write(src.ins(140, "later", {"id": 3, "name": "c", "qty": 3}))
    run_merge(spark, merge_config(lake_dir, max_files_per_batch=1))
    assert rows(spark, lake.uri("shop/born")) == [(1, "a2", 10)]
    assert rows(spark, lake.uri("shop/later")) == [(3, "c", 3)]
    assert rows(spark, lake.uri("shop/t")) == [(1, "a", 5), (2, "b", 2)]  # kept until the resync's chunks
    (request,) = read_requests(lake, TableName("shop", "t", "shop", "t"))
    assert request.lsn == merge_lsn(120) and request.statement == swap
    assert rows(spark, lake.uri("shop/old")) == []
    assert TargetTable.load(spark, lake.uri("shop/old")).properties[DROPPED_LSN] == str(merge_lsn(130))
    assert not is_delta_table(spark, lake.uri("shop/hidden"))
    status = json.loads(lake.get_bytes(MERGE_STATUS_KEY))
    assert status["tables"]["shop.hidden"]["status"] == WAITING_FOR_FULL_LOAD
    assert "shop.hidden" in render_text(pipeline_status(merge_config(lake_dir), lake))
    mapping = TableMapping.parse(merge_config(lake_dir).table_mappings)
    targets = [t for n in ("born", "later", "empty", "hidden") if (t := mapping.target_for("shop", n))]
    assert {r.source_table: r.state for r in table_rows(lake, targets)} == {
        "born": "joined", "later": "joined", "empty": "created", "hidden": "not loaded"}
    # the lake's catalog (_binlake/tables.json) lists the tables born in the stream next to the loaded ones
    assert {(e.source_table, e.path) for e in read_catalog(lake)} >= {
        ("born", "shop/born"), ("later", "shop/later"), ("empty", "shop/empty")}
    assert "hidden" not in {e.source_table for e in read_catalog(lake)}
