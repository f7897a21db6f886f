"""Transactions, selection/transformation rules, PK-changing updates and DDL between row events."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from capture_support import capture_range, captured, master_position
from conftest import include_schema_rules

from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB

MakeConfig = Callable[..., PipelineConfig]


def run_sql(db: LocalMariaDB, schema: str, *statements: str) -> None:
    with db.connect(schema) as conn, conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)


def capture_statements(db: LocalMariaDB, schema: str, lake_dir: Path, make_config: MakeConfig,
                       mappings: dict[str, Any], *statements: str) -> list[dict[str, Any]]:
    start = master_position(db)
    run_sql(db, schema, *statements)
    end = master_position(db)
    config = make_config(lake_dir, mappings, capture={
        "start": "position", "start_file": start.file, "start_pos": start.pos, "flush_seconds": 0.2})
    capture_range(config, end)
    return captured(config)


def brief(record: dict[str, Any]) -> tuple[Any, ...]:
    return (record["op"], record["source_table"], record["before"], record["after"])


def test_transactions_rules_and_pk_changes(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: MakeConfig
) -> None:
    mappings = {"rules": [
        *include_schema_rules(source_db)["rules"],
        {"rule-type": "selection", "rule-id": "2", "rule-name": "skip", "rule-action": "exclude",
         "object-locator": {"schema-name": source_db, "table-name": "skipped"}},
        {"rule-type": "transformation", "rule-id": "3", "rule-name": "rename-table", "rule-target": "table",
         "rule-action": "rename", "value": "orders_v2",
         "object-locator": {"schema-name": source_db, "table-name": "orders"}},
        {"rule-type": "transformation", "rule-id": "4", "rule-name": "hide", "rule-target": "column",
         "rule-action": "remove-column",
         "object-locator": {"schema-name": source_db, "table-name": "orders", "column-name": "secret"}},
        {"rule-type": "transformation", "rule-id": "5", "rule-name": "rn", "rule-target": "column",
         "rule-action": "rename", "value": "qty",
         "object-locator": {"schema-name": source_db, "table-name": "items", "column-name": "n"}},
    ]}
    got = capture_statements(
        mariadb, source_db, lake_dir, make_config, mappings,
        "CREATE TABLE orders (id INT PRIMARY KEY, v VARCHAR(10), secret VARCHAR(10))",
        "CREATE TABLE items (oid INT, line INT, n INT, PRIMARY KEY (oid, line))",
        "CREATE TABLE skipped (id INT PRIMARY KEY)",
        "BEGIN",
        "INSERT INTO orders VALUES (1, 'a', 's1'), (2, 'b', 's2')",
        "INSERT INTO items VALUES (1, 1, 5), (1, 2, 6)",
        "INSERT INTO skipped VALUES (1)",
        "COMMIT",
        "BEGIN", "INSERT INTO orders VALUES (3, 'rolled', 'x')", "ROLLBACK",
        "UPDATE orders SET id = 10 WHERE id = 1",                 # primary key changes
        "UPDATE items SET line = line + 10 WHERE oid = 1",        # one event, two rows
        "DELETE FROM orders WHERE id = 2",
    )
    rows = [r for r in got if r["op"] != "DDL"]
    assert [brief(r) for r in rows] == [
        ("I", "orders", None, {"id": "1", "v": "a"}),
        ("I", "orders", None, {"id": "2", "v": "b"}),
        ("I", "items", None, {"oid": "1", "line": "1", "qty": "5"}),
        ("I", "items", None, {"oid": "1", "line": "2", "qty": "6"}),
        ("U", "orders", {"id": "1", "v": "a"}, {"id": "10", "v": "a"}),
        ("U", "items", {"oid": "1", "line": "1", "qty": "5"}, {"oid": "1", "line": "11", "qty": "5"}),
        ("U", "items", {"oid": "1", "line": "2", "qty": "6"}, {"oid": "1", "line": "12", "qty": "6"}),
        ("D", "orders", {"id": "2", "v": "b"}, None),
    ]
    first_txn = rows[:4]
    assert len({(r["gtid"], r["xid"], r["commit_ts"]) for r in first_txn}) == 1
    assert [r["row_idx"] for r in first_txn] == [0, 1, 0, 1]
    assert len({r["gtid"] for r in rows}) == 4
    assert {r["table"] for r in rows if r["source_table"] == "orders"} == {"orders_v2"}
    assert [c["name"] for c in rows[0]["columns"]] == ["id", "v"]
    assert [(c["name"], c["pk"]) for c in rows[2]["columns"]] == [("oid", True), ("line", True), ("qty", False)]
    keys = [(r["lsn"], r["row_idx"]) for r in got]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert [r["source_table"] for r in got if r["op"] == "DDL"] == ["orders", "items"]   # not "skipped"


def test_ddl_between_row_events(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: MakeConfig
) -> None:
    got = capture_statements(
        mariadb, source_db, lake_dir, make_config, include_schema_rules(source_db),
        "CREATE TABLE t (id INT PRIMARY KEY, a INT, b VARCHAR(5))",
        "INSERT INTO t VALUES (1, 10, 'x')",
        "ALTER TABLE t ADD COLUMN c DATE AFTER a",
        "INSERT INTO t VALUES (2, 20, '2024-01-02', 'y')",
        "ALTER TABLE t DROP COLUMN a",
        "UPDATE t SET b = 'z' WHERE id = 2",
        "ALTER TABLE t RENAME COLUMN b TO bee, MODIFY c DATETIME",
        "INSERT INTO t VALUES (3, '2024-01-03 04:05:06', 'w')",
        "RENAME TABLE t TO t2",
        "DELETE FROM t2 WHERE id = 1",
        "TRUNCATE t2",
        "DROP TABLE t2",
    )
    assert [(r["op"], r["ddl_kind"], r["source_table"]) for r in got] == [
        ("DDL", "CREATE", "t"), ("I", None, "t"), ("DDL", "ALTER", "t"), ("I", None, "t"), ("DDL", "ALTER", "t"),
        ("U", None, "t"), ("DDL", "ALTER", "t"), ("I", None, "t"), ("DDL", "RENAME", "t"), ("DDL", "RENAME", "t2"),
        ("D", None, "t2"),
        ("DDL", "TRUNCATE", "t2"), ("DDL", "DROP", "t2"),
    ]
    assert got[1]["after"] == {"id": "1", "a": "10", "b": "x"}
    assert got[3]["after"] == {"id": "2", "a": "20", "c": "2024-01-02", "b": "y"}
    assert got[5]["before"] == {"id": "2", "c": "2024-01-02", "b": "y"} and got[5]["after"]["b"] == "z"
    assert got[7]["after"] == {"id": "3", "c": "2024-01-03 04:05:06", "bee": "w"}
    assert [c["type"] for c in got[7]["columns"]] == ["int", "datetime", "varchar"]
    assert got[10]["before"] == {"id": "1", "c": None, "bee": "x"}
    assert got[2]["ddl"] == "ALTER TABLE t ADD COLUMN c DATE AFTER a" and got[2]["columns"] == []
    assert all(r["xid"] is None and r["gtid"] for r in got if r["op"] == "DDL")


def test_table_ids_change_with_every_ddl(mariadb: LocalMariaDB, source_db: str) -> None:
    """What makes table-map caching by id sound on MariaDB (the capture also clears its cache on DDL)."""
    from pymysqlreplication import BinLogStreamReader
    from pymysqlreplication.row_event import WriteRowsEvent

    statements = ["ALTER TABLE t ADD COLUMN b INT", "ALTER TABLE t ADD COLUMN c INT, ALGORITHM=INSTANT",
                  "ALTER TABLE t DROP COLUMN b", "ALTER TABLE t RENAME COLUMN c TO cc",
                  "ALTER TABLE t MODIFY cc BIGINT", "ALTER TABLE t ADD INDEX (cc)", "TRUNCATE t",
                  "OPTIMIZE TABLE t", "FLUSH TABLES"]
    run_sql(mariadb, source_db, "CREATE TABLE t (id INT PRIMARY KEY, a INT)")
    start = master_position(mariadb)
    run_sql(mariadb, source_db, "INSERT INTO t (id) VALUES (0)")
    for i, statement in enumerate(statements, start=1):
        run_sql(mariadb, source_db, statement, f"INSERT INTO t (id) VALUES ({i})")
    stream = BinLogStreamReader(
        connection_settings={"host": "127.0.0.1", "port": mariadb.port, "user": "root", "password": ""},
        server_id=8123, log_file=start.file, log_pos=start.pos, resume_stream=True, blocking=False,
        only_events=[WriteRowsEvent], only_schemas=[source_db], enable_logging=False)
    try:
        ids = [event.table_id for event in stream]
    finally:
        stream.close()
    assert len(ids) == len(statements) + 1 and len(set(ids)) == len(ids)
