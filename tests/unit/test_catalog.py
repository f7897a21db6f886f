"""The lake catalog (_binlake/tables.json), the refusal of the old layout, the merge's table guard and
the rows of ``binlake tables`` — on a local lake, no server."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from binlake.catalog import (
    CatalogEntry,
    LegacyLayoutError,
    TableGuard,
    check_no_legacy_layout,
    read_catalog,
    write_catalog,
)
from binlake.lake import CATALOG_KEY, Lake
from binlake.names import TargetCollisionError
from binlake.rules import TableMapping
from binlake.tables import render_text, table_rows, to_json

NOW = datetime.datetime(2026, 12, 1, 9, 0, tzinfo=datetime.UTC)


def entry(source: str, target: str | None = None) -> CatalogEntry:
    schema, table = source.split(".", 1)
    t_schema, t_table = (target or source).split(".", 1)
    return CatalogEntry(schema, table, t_schema, t_table)


def old_state(lake: Lake, key: str, schema: str, table: str, load_id: str = "old") -> None:
    lake.put_bytes(key, json.dumps({"load_id": load_id, "status": "complete",
                                    "source": {"schema": schema, "table": table},
                                    "target": {"schema": schema, "table": table, "path": "x"}}).encode())


def test_catalog_names_every_table_with_its_path(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    write_catalog(lake, [entry("s.a:b"), entry("s.a_b"), entry("s.A_B")], NOW)
    document = json.loads(lake.get_bytes(CATALOG_KEY))
    assert document["version"] == 1 and document["encoding"] == "binlake-name-1"
    assert [(t["source"]["table"], t["path"], t["state"]) for t in document["tables"]] == [
        ("A_B", "s/~a_~b", "_binlake/snapshots/s/~a_~b.json"),
        ("a:b", "s/a-3ab", "_binlake/snapshots/s/a-3ab.json"),
        ("a_b", "s/a_b", "_binlake/snapshots/s/a_b.json"),
    ]
    assert read_catalog(lake) == sorted([entry("s.a:b"), entry("s.a_b"), entry("s.A_B")])


def test_a_later_load_keeps_other_entries_and_replaces_a_taken_lake_table(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    write_catalog(lake, [entry("s.a"), entry("s.b"), entry("s.old", "s.c")], NOW)
    written = write_catalog(lake, [entry("s.a", "s.a2"), entry("s.new", "s.c")], NOW)
    assert written == read_catalog(lake) == sorted([entry("s.a", "s.a2"), entry("s.b"), entry("s.new", "s.c")])


def test_old_layout_is_refused_with_the_moves_to_make(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    old_state(lake, "_binlake/snapshots/shop/Orders.json", "shop", "Orders")
    check_no_legacy_layout(lake, [entry("shop.orders")])                      # plain names never moved
    with pytest.raises(LegacyLayoutError) as raised:
        check_no_legacy_layout(lake, [entry("shop.Orders"), entry("shop.items")])
    message = str(raised.value)
    assert "shop.Orders (full-load state at _binlake/snapshots/shop/Orders.json)" in message
    assert "shop/Orders → shop/~orders" in message
    assert "_binlake/snapshots/shop/Orders.json → _binlake/snapshots/shop/~orders.json" in message
    assert "_binlake/tombstones/shop/Orders → _binlake/tombstones/shop/~orders" in message
    assert "_binlake/merge/tables/shop/Orders.json → _binlake/merge/tables/shop/~orders.json" in message
    assert "shop.items" not in message


def test_old_key_holding_another_tables_new_state_is_not_taken_for_the_old_layout(tmp_path: Path) -> None:
    """``~x`` was the old state key of a table named ``~x`` and is the new one of ``X``."""
    lake = Lake(str(tmp_path))
    old_state(lake, "_binlake/snapshots/s/~x.json", "s", "X")
    check_no_legacy_layout(lake, [entry("s.~x"), entry("s.X")])


def test_old_folder_shared_by_colliding_tables_asks_for_a_reload(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    old_state(lake, "_binlake/snapshots/s/a:b.json", "s", "a:b")
    with pytest.raises(LegacyLayoutError, match=r"its old folder s/a_b also held another table's rows: reload"):
        check_no_legacy_layout(lake, [entry("s.a:b"), entry("s.a_b")])


def seen(source: str, target: str, low: int, high: int) -> tuple[CatalogEntry, int, int]:
    return entry(source, target), low, high


def test_merge_guard_refuses_two_sources_whose_records_interleave(tmp_path: Path) -> None:
    guard = TableGuard(Lake(str(tmp_path)))
    guard.check([seen("s.a", "s.a", 1, 5), seen("s.b", "s.b", 2, 6)])
    guard.check([seen("s.a", "s.a", 7, 9)])
    with pytest.raises(TargetCollisionError, match=r"`s`\.`A` and `s`\.`a` both map to lake table `s`\.`a`"):
        guard.check([seen("s.A", "s.a", 8, 12)])                     # 8 <= 9: side by side
    with pytest.raises(TargetCollisionError, match=r"`s`\.`X` and `s`\.`x`"):
        TableGuard(Lake(str(tmp_path))).check([seen("s.x", "s.x", 1, 10), seen("s.X", "s.x", 3, 4)])


def test_merge_guard_lets_a_renamed_table_continue_but_not_come_back(tmp_path: Path) -> None:
    """RENAME TABLE Foo TO foo under a lower-case rule: Foo's records (and the RENAME) come first."""
    guard = TableGuard(Lake(str(tmp_path)))
    guard.check([seen("s.Foo", "s.foo", 1, 10), seen("s.foo", "s.foo", 11, 20)])
    guard.check([seen("s.foo", "s.foo", 21, 30)])
    with pytest.raises(TargetCollisionError, match=r"`s`\.`Foo` and `s`\.`foo`"):
        guard.check([seen("s.Foo", "s.foo", 31, 32)])


def test_tables_rows_show_state_path_and_collisions(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    mapping = TableMapping.parse({"rules": [
        {"rule-type": "selection", "rule-id": "1", "rule-name": "all", "rule-action": "include",
         "object-locator": {"schema-name": "s", "table-name": "%"}},
        {"rule-type": "transformation", "rule-id": "2", "rule-name": "lower", "rule-target": "table",
         "rule-action": "convert-lowercase", "object-locator": {"schema-name": "s", "table-name": "X%"}},
    ]})
    targets = [t for name in ("a:b", "a_b", "loading", "Xy", "xy") if (t := mapping.target_for("s", name))]
    old_state(lake, "_binlake/snapshots/s/a-3ab.json", "s", "a:b", load_id="L1")
    lake.put_bytes("_binlake/merge/tables/s/a-3ab.json", json.dumps({"load_id": "L1"}).encode())
    old_state(lake, "_binlake/snapshots/s/a_b.json", "s", "a_b")
    lake.put_bytes("_binlake/snapshots/s/loading.json", json.dumps({"status": "loading", "load_id": "L3"}).encode())
    rows = {r.source_table: r for r in table_rows(lake, targets)}
    assert rows["a:b"].state == "joined" and rows["a:b"].path == f"{tmp_path}/s/a-3ab"
    assert rows["a_b"].state == "loaded"
    assert rows["loading"].state == "loading"
    assert rows["Xy"].state == rows["xy"].state == "collision"
    assert "`s`.`Xy` and `s`.`xy` both map to lake table `s`.`xy`" in (rows["Xy"].problem or "")
    text = render_text(list(rows.values()))
    assert "s.a:b" in text and "joined" in text and "! source tables `s`.`Xy` and `s`.`xy`" in text
    data = json.loads(to_json(list(rows.values())))
    assert data[0]["source"] == {"schema": "s", "table": "a:b"} and data[0]["target"]["table"] == "a:b"


def test_merge_guard_refuses_a_table_written_under_the_old_layout(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    old_state(lake, "_binlake/snapshots/shop/Orders.json", "shop", "Orders")
    guard = TableGuard(lake)
    guard.check([seen("shop.orders", "shop.orders", 1, 2)])
    with pytest.raises(LegacyLayoutError, match=r"shop/Orders → shop/~orders"):
        guard.check([seen("shop.Orders", "shop.Orders", 3, 4)])


def test_capture_refuses_a_table_first_met_in_the_binlog_that_takes_another_ones_lake_table() -> None:
    """A table created while the capture runs is checked when its first table map arrives."""
    from binlake.capture.records import CaptureDataError, Layouts

    mapping = TableMapping.parse({"rules": [
        {"rule-type": "selection", "rule-id": "1", "rule-name": "all", "rule-action": "include",
         "object-locator": {"schema-name": "s", "table-name": "%"}},
        {"rule-type": "transformation", "rule-id": "2", "rule-name": "lower", "rule-target": "table",
         "rule-action": "convert-lowercase", "object-locator": {"schema-name": "s", "table-name": "%"}},
    ]})
    layouts = Layouts(mapping)
    existing, upper = mapping.target_for("s", "orders"), mapping.target_for("s", "Orders")
    assert existing is not None and upper is not None
    layouts.claim([existing])                                   # at start: what the source holds
    assert layouts.target("s", "orders") == existing
    assert layouts.target("other", "x") is None                 # not selected: nothing to claim
    with pytest.raises(CaptureDataError, match=r"`s`\.`Orders` and `s`\.`orders` both map to lake table `s`\.`orders`"):
        layouts.target("s", "Orders")
    with pytest.raises(CaptureDataError, match=r"`s`\.`Orders` and `s`\.`orders`"):
        Layouts(mapping).claim([existing, upper])


def test_capture_continues_a_lake_table_when_one_source_table_replaced_the_other() -> None:
    """RENAME TABLE Foo TO foo under a lower-case rule: the two never exist together — no collision."""
    from binlake.capture.records import CaptureDataError, Layouts

    mapping = TableMapping.parse({"rules": [
        {"rule-type": "selection", "rule-id": "1", "rule-name": "all", "rule-action": "include",
         "object-locator": {"schema-name": "s", "table-name": "%"}},
        {"rule-type": "transformation", "rule-id": "2", "rule-name": "lower", "rule-target": "table",
         "rule-action": "convert-lowercase", "object-locator": {"schema-name": "s", "table-name": "%"}},
    ]})
    on_source = {("s", "foo")}
    layouts = Layouts(mapping, exists=lambda schema, table: (schema, table) in on_source)
    assert layouts.target("s", "Foo") is not None          # replayed events of the old name
    assert layouts.target("s", "foo") is not None          # the new name takes the lake table over
    on_source.add(("s", "FOO"))
    with pytest.raises(CaptureDataError, match=r"`s`\.`FOO` and `s`\.`foo` both map"):
        layouts.target("s", "FOO")                         # created next to it: a real collision

    def unreachable(schema: str, table: str) -> bool:
        raise OSError("source down")

    with pytest.raises(CaptureDataError, match="both map"):   # unknown is never taken for gone
        Layouts(mapping, exists=unreachable).claim([t for n in ("Foo", "foo") if (t := mapping.target_for("s", n))])


def test_old_layout_of_a_renamed_target_is_refused_too(tmp_path: Path) -> None:
    """Source ``shop.orders`` renamed by a rule to ``Orders``: the state key is the same as before, but
    the table folder moved from ``shop/Orders`` to ``shop/~orders``."""
    lake = Lake(str(tmp_path))
    def state(folder: str) -> bytes:
        return json.dumps({"load_id": "old", "status": "complete", "source": {"schema": "shop", "table": "orders"},
                           "target": {"schema": "shop", "table": "Orders", "path": f"{tmp_path}/{folder}"}}).encode()

    lake.put_bytes("_binlake/snapshots/shop/orders.json", state("shop/Orders"))
    with pytest.raises(LegacyLayoutError, match=r"shop/Orders → shop/~orders"):
        check_no_legacy_layout(lake, [entry("shop.orders", "shop.Orders")])
    lake.put_bytes("shop/~orders/_delta_log/00000000000000000000.json", b"{}")       # after the moves
    check_no_legacy_layout(lake, [entry("shop.orders", "shop.Orders")])
    lake.put_bytes("_binlake/snapshots/shop/orders.json", state("shop/~orders"))  # written by this version
    check_no_legacy_layout(lake, [entry("shop.orders", "shop.Orders")])
