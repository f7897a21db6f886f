"""Chunk statements, JDBC settings and lake expressions of the full load (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from binlake.config import parse_config
from binlake.rules import TableTarget
from binlake.snapshot.discovery import SourceColumn, SourceTable
from binlake.snapshot.loader import file_for_sequence, position_from_lsn
from binlake.snapshot.reading import SESSION_INIT, chunk_query, jdbc_source, lake_expressions
from binlake.typemap import ColumnType


def table() -> SourceTable:
    target = TableTarget("shop", "order", "lake", "orders")
    columns = (
        SourceColumn("id", "id", ColumnType("bigint", unsigned=True), False),
        SourceColumn("näme `x`", "name", ColumnType("varchar"), True),
    )
    return SourceTable(target, columns, ("id",), (ColumnType("bigint", unsigned=True),), "InnoDB", 10, 100)


def test_jdbc_url_never_holds_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINLAKE_TEST_SECRET", "hunter2")
    rules = {"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "all", "rule-action": "include",
                        "object-locator": {"schema-name": "%", "table-name": "%"}}]}
    config = parse_config({"source": {"host": "db", "port": 3307, "user": "u", "password_env": "BINLAKE_TEST_SECRET"},
                           "lake": {"root": "/tmp/lake"}, "table_mappings": rules}, Path("t.yaml"))
    source = jdbc_source(config)
    assert source.url == "jdbc:mysql://db:3307/"
    assert source.properties["password"] == "hunter2" and source.properties["user"] == "u"
    assert source.properties["sessionInitStatement"] == SESSION_INIT
    assert source.properties["tinyInt1isBit"] == "false"
    assert "hunter2" not in source.url


def test_session_init_starts_a_consistent_snapshot_before_reading_the_position() -> None:
    start = SESSION_INIT.index("START TRANSACTION WITH CONSISTENT SNAPSHOT")
    assert SESSION_INIT.index("BINLOG_SNAPSHOT_FILE") > start
    assert SESSION_INIT.index("time_zone = '+00:00'") < start


def test_chunk_query_quotes_names_and_keeps_the_predicate_inside_the_left_join() -> None:
    sql = chunk_query(table(), "`id` >= 5")
    assert sql.startswith("(") and sql.endswith(") AS _binlake_chunk")
    assert "FROM `shop`.`order` WHERE `id` >= 5) AS _b ON TRUE" in sql
    assert "`näme ``x``` AS c1" in sql
    assert "LEFT JOIN" in sql


def test_lake_expressions_name_target_columns_and_metadata_last() -> None:
    names = [name for _, name in lake_expressions(table())]
    assert names == ["id", "name", "_binlake_lsn", "_binlake_commit_ts"]


def test_position_from_lsn_keeps_the_file_numbering() -> None:
    assert file_for_sequence("mysql-bin.000009", 12) == "mysql-bin.000012"
    assert file_for_sequence("binlog.000001", 1234567) == "binlog.1234567"
    position = position_from_lsn((3 << 32) | 77, "binlog.000001")
    assert (position.file, position.pos) == ("binlog.000003", 77)
