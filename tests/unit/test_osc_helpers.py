"""Online schema change helper tables are selected with their table (binlake.osc, binlake.rules; pure)."""

from __future__ import annotations

from typing import Any

import pytest

from binlake.merge.summary import DdlRecord
from binlake.merge.swaps import handovers, same_treatment
from binlake.osc import CHANGELOG, GH_OST, GHOST, OLD, PT_OSC, readings
from binlake.rules import TableMapping, TableTarget


def select(table: str, action: str = "include", rule_id: int = 1, schema: str = "shop") -> dict[str, Any]:
    return {"rule-type": "selection", "rule-id": str(rule_id), "rule-name": f"s{rule_id}", "rule-action": action,
            "object-locator": {"schema-name": schema, "table-name": table}}


def mapping(*rules: dict[str, Any]) -> TableMapping:
    return TableMapping.parse({"rules": list(rules) or [select("orders", "explicit")]})


def target(m: TableMapping, table: str, schema: str = "shop") -> TableTarget:
    found = m.target_for(schema, table)
    assert found is not None, table
    return found


@pytest.mark.parametrize(("name", "base", "tool", "role"), [
    ("_orders_gho", "orders", GH_OST, GHOST),
    ("_orders_ghc", "orders", GH_OST, CHANGELOG),
    ("_orders_del", "orders", GH_OST, OLD),
    ("_orders_new", "orders", PT_OSC, GHOST),
    ("_orders_old", "orders", PT_OSC, OLD),
    ("_my_orders_gho", "my_orders", GH_OST, GHOST),
])
def test_the_tools_names_read_as_helpers_of_their_table(name: str, base: str, tool: str, role: str) -> None:
    (helper,) = readings(name)
    assert (helper.base, helper.tool, helper.role) == (base, tool, role)
    assert helper.name_for(base) == name and helper.name_for("Sales") == name.replace(base, "Sales")


def test_ambiguous_names_list_every_reading_most_likely_first() -> None:
    """pt-osc prefixes one more ``_`` when its name is taken; gh-ost's --timestamp-old-table."""
    assert [(h.base, h.prefix) for h in readings("__orders_new")] == [("_orders", "_"), ("orders", "__")]
    assert [(h.base, h.suffix) for h in readings("_orders_20261201093000_del")] == [
        ("orders_20261201093000", "_del"), ("orders", "_20261201093000_del")]
    for plain in ("orders", "_gho", "__new", "orders_gho", "_orders_gho_x"):
        assert readings(plain) == (), plain


def test_a_selected_tables_helpers_are_selected_with_it_and_nothing_else() -> None:
    m = mapping()  # explicit shop.orders only
    for helper in ("_orders_gho", "_orders_del", "_orders_new", "_orders_old", "__orders_new",
                   "_orders_20261201093000_del"):
        found = target(m, helper)
        assert (found.schema, found.table, found.helper is not None) == ("shop", helper, True), helper
        assert m.is_selected("shop", helper)
    assert m.target_for("shop", "_orders_ghc") is None  # gh-ost's changelog: no row of orders
    assert m.target_for("shop", "_other_gho") is None and m.target_for("other", "_orders_gho") is None
    assert target(m, "orders").helper is None


def test_a_helper_gets_its_tables_names_column_rules_filter_and_added_columns() -> None:
    m = mapping(
        select("orders"),
        select("%", rule_id=2),
        {"rule-type": "transformation", "rule-id": "3", "rule-name": "t", "rule-target": "table",
         "object-locator": {"schema-name": "shop", "table-name": "orders"}, "rule-action": "rename", "value": "Sales"},
        {"rule-type": "transformation", "rule-id": "4", "rule-name": "s", "rule-target": "schema",
         "object-locator": {"schema-name": "shop"}, "rule-action": "add-prefix", "value": "raw_"},
        {"rule-type": "transformation", "rule-id": "5", "rule-name": "c", "rule-target": "column",
         "object-locator": {"schema-name": "shop", "table-name": "orders", "column-name": "qty"},
         "rule-action": "rename", "value": "quantity"},
        {"rule-type": "transformation", "rule-id": "6", "rule-name": "a", "rule-target": "column",
         "object-locator": {"schema-name": "shop", "table-name": "orders"}, "rule-action": "add-column",
         "value": "origin", "expression": "'db1'", "data-type": {"type": "string", "length": 8}},
    )
    base, ghost = target(m, "orders"), target(m, "_orders_gho")
    assert (ghost.schema, ghost.table, ghost.source_table) == ("raw_shop", "_Sales_gho", "_orders_gho")
    assert ghost.column_name("qty") == "quantity" == base.column_name("qty")  # orders's rule, not the helper's
    assert ghost.added_columns == base.added_columns and len(base.added_columns) == 1
    assert same_treatment(base, ghost)


def test_a_filtered_tables_helper_keeps_the_filter() -> None:
    filtered = select("orders") | {"filters": [{"filter-type": "source", "column-name": "qty",
                                                "filter-conditions": [{"filter-operator": "gte", "value": "10"}]}]}
    m = mapping(filtered)
    assert target(m, "_orders_new").row_filter == target(m, "orders").row_filter is not None


def test_an_exclude_rule_on_the_helpers_own_name_wins() -> None:
    m = mapping(select("%"), select("[_]%[_]gho", "exclude", 2))
    assert m.target_for("shop", "_orders_gho") is None
    assert target(m, "_orders_new").helper is not None


def test_a_helper_of_an_unselected_table_follows_the_rules_under_its_own_name() -> None:
    m = mapping(select("%"), select("orders", "exclude", 2))
    found = target(m, "_orders_gho")
    assert found.helper is None and found.table == "_orders_gho"
    assert target(m, "_orders_ghc").helper is None  # selected by %: an ordinary table then


def test_with_only_the_table_selected_the_swap_is_planned_between_lake_tables() -> None:
    swap = DdlRecord(7, "RENAME", "rename /* gh-ost */ table `shop`.`orders` to `shop`.`_orders_del`, "
                                  "`shop`.`_orders_gho` to `shop`.`orders`")
    m = mapping()

    def lake(name: tuple[str, str]) -> tuple[str, str] | None:
        found = m.target_for(*name)
        return None if found is None else (found.schema, found.table)

    moves = {(h.origin, h.target) for h in handovers(swap, "shop", lake)}
    assert moves == {(("shop", "_orders_gho"), ("shop", "orders")), (("shop", "orders"), ("shop", "_orders_del"))}


def test_binlake_tables_lists_a_helper_apart_and_says_whose_it_is(tmp_path: Any) -> None:
    from binlake.lake import Lake
    from binlake.tables import render_text, table_rows

    m = mapping()
    rows = table_rows(Lake(str(tmp_path)), [target(m, "_orders_gho"), target(m, "orders")])
    assert [(r.source_table, r.helper) for r in rows] == [("_orders_gho", "gh-ost ghost table of orders"),
                                                           ("orders", None)]
    text = render_text(rows).splitlines()
    assert text[1].startswith("shop.orders ") and text[2].startswith("shop._orders_gho ")
    assert "  shop._orders_gho: not a user table — gh-ost ghost table of orders, replicated with it while the " \
           "tool runs" in text


def test_the_capture_selects_a_helper_through_the_same_function() -> None:
    """binlake.capture.records.Layouts asks TableMapping.target_for: the ghost of a selected table is
    captured (and claimed: a user table renamed onto its lake name is refused), its changelog is not."""
    from binlake.capture.records import CaptureDataError, Layouts

    layouts = Layouts(mapping())
    ghost = layouts.target("shop", "_orders_gho")
    assert ghost is not None and ghost.helper is not None and (ghost.schema, ghost.table) == ("shop", "_orders_gho")
    assert layouts.target("shop", "_orders_ghc") is None
    renamed = mapping(select("orders", "explicit"), select("copy", "explicit", 2),
                      {"rule-type": "transformation", "rule-id": "3", "rule-name": "r", "rule-target": "table",
                       "object-locator": {"schema-name": "shop", "table-name": "copy"}, "rule-action": "rename",
                       "value": "_orders_gho"})
    layouts = Layouts(renamed)
    layouts.target("shop", "copy")
    with pytest.raises(CaptureDataError, match="both map to lake table"):
        layouts.target("shop", "_orders_gho")


def test_the_merge_verifier_is_off_by_default() -> None:
    from pathlib import Path

    from binlake.config import parse_config
    from binlake.validation.every import MergeVerifier

    config = parse_config({"lake": {"root": "/tmp/lake"}, "table_mappings": {"rules": [select("orders")]}},
                          Path("c.yaml"))
    verifier = MergeVerifier(None, config)  # type: ignore[arg-type]  # never touched when off
    verifier.start()
    verifier.stop()
    assert config.merge.verify_every_minutes == 0 and verifier.rounds == 0 and verifier._thread is None
