"""DDL table names under lower_case_table_names, and DROP DATABASE as DROP TABLE of each selected table."""

from __future__ import annotations

import pytest

from binlake.capture.ddl import TableRef, classify, resolve, same_database
from binlake.capture.records import Layouts
from binlake.capture.transactions import TransactionAssembler
from binlake.positions import BinlogPosition
from binlake.rules import TableMapping

MAPPING = TableMapping.parse({"rules": [
    {"rule-type": "selection", "rule-id": "1", "rule-name": "shop",
     "object-locator": {"schema-name": "%", "table-name": "%"}, "rule-action": "include"},
    {"rule-type": "selection", "rule-id": "2", "rule-name": "no-audit",
     "object-locator": {"schema-name": "%", "table-name": "audit"}, "rule-action": "exclude"},
]})


def test_drop_database_and_schema_name_the_database() -> None:
    for sql in ("DROP DATABASE shop", "drop schema if exists `shop`", "DROP DATABASE `shop` /* c */"):
        statement = classify(sql, "other")
        assert (statement.kind, statement.verb, statement.database, statement.tables) == ("DROP", "DATABASE",
                                                                                         "shop", ())
    assert classify("CREATE DATABASE shop", "x").kind == "OTHER"


@pytest.mark.parametrize(("setting", "expected"), [
    (0, TableRef("Shop", "Orders")),   # case-sensitive: as written (another table than shop.orders)
    (1, TableRef("shop", "orders")),   # stored and compared in lower case
    (2, TableRef("SHOP", "orDers")),   # compared in lower case, spelled as created (the known table)
])
def test_names_resolve_as_the_server_resolves_them(setting: int, expected: TableRef) -> None:
    known = [("SHOP", "orDers"), ("SHOP", "items")]
    assert resolve(TableRef("Shop", "Orders"), setting, known) == expected


def test_setting_2_keeps_an_unknown_or_ambiguous_name_as_written() -> None:
    assert resolve(TableRef("a", "T"), 2, [("a", "x")]) == TableRef("a", "T")
    assert resolve(TableRef("a", "T"), 2, [("a", "t"), ("a", "T")]) == TableRef("a", "T")
    assert same_database("Shop", "shop", 1) and same_database("Shop", "shop", 2)
    assert not same_database("Shop", "shop", 0)


def assembler(setting: int, known: list[tuple[str, str]]) -> TransactionAssembler:
    layouts = Layouts(MAPPING)
    layouts.lower_case_table_names = setting
    layouts.claim([t for s, n in known if (t := MAPPING.target_for(s, n)) is not None])
    return TransactionAssembler(layouts, BinlogPosition.of("binlog.000003", 100, "0-1-10"))


def ddl_records(asm: TransactionAssembler) -> list[tuple[str, str, str | None, int]]:
    return [(e.source_schema, e.source_table, e.ddl_kind, e.first_row_idx)
            for txn in asm.pending_batch()[0] for e in txn.events]


def test_drop_database_drops_each_selected_table_of_it() -> None:
    asm = assembler(0, [("shop", "orders"), ("shop", "items"), ("shop", "audit"), ("other", "t")])
    asm.on_gtid("0-1-11", 1)
    asm.on_query("DROP DATABASE shop", "", 500, 42)
    assert ddl_records(asm) == [("shop", "items", "DROP", 0), ("shop", "orders", "DROP", 1)]


def test_drop_database_under_lower_case_names() -> None:
    asm = assembler(1, [("shop", "orders")])
    asm.on_gtid("0-1-11", 1)
    asm.on_query("DROP DATABASE SHOP", "", 500, 42)
    assert ddl_records(asm) == [("shop", "orders", "DROP", 0)]
    case_sensitive = assembler(0, [("shop", "orders")])
    case_sensitive.on_gtid("0-1-11", 1)
    case_sensitive.on_query("DROP DATABASE SHOP", "", 500, 42)  # another database on a case-sensitive server
    assert ddl_records(case_sensitive) == []


@pytest.mark.parametrize(("setting", "expected"), [
    (0, [("Shop", "Orders", "ALTER", 0)]),
    (1, [("shop", "orders", "ALTER", 0)]),
    (2, [("shop", "orders", "ALTER", 0)]),
])
def test_ddl_names_follow_lower_case_table_names(setting: int, expected: list[tuple[str, str, str, int]]) -> None:
    """The table maps name the table ``shop.orders``; the statement says ``Shop.Orders``."""
    asm = assembler(setting, [("shop", "orders")])
    asm.on_gtid("0-1-11", 1)
    asm.on_query("ALTER TABLE Shop.Orders ADD COLUMN x INT", "shop", 500, 42)
    assert ddl_records(asm) == expected


def test_exchange_partition_changes_both_tables_and_is_no_rename() -> None:
    from binlake.merge.renames import rename_pairs

    sql = "ALTER TABLE shop.events EXCHANGE PARTITION p2023 WITH TABLE archive.events_2023"
    statement = classify(sql, "x")
    assert (statement.kind, statement.verb) == ("ALTER", "EXCHANGE")
    assert statement.tables == (TableRef("shop", "events"), TableRef("archive", "events_2023"))
    assert rename_pairs(sql, "x") == ()
    asm = assembler(0, [("shop", "events"), ("archive", "events_2023")])
    asm.on_gtid("0-1-11", 1)
    asm.on_query(sql, "x", 500, 42)
    assert ddl_records(asm) == [("shop", "events", "ALTER", 0), ("archive", "events_2023", "ALTER", 1)]
