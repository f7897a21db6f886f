"""DMS table-mapping rules: selection and transformation, value by value."""

from __future__ import annotations

from typing import Any

import pytest

from binlake.rules import RuleError, TableMapping, matches


def sel(rule_id: int, schema: str, table: str, action: str = "include") -> dict[str, Any]:
    return {
        "rule-type": "selection",
        "rule-id": str(rule_id),
        "rule-name": f"s{rule_id}",
        "object-locator": {"schema-name": schema, "table-name": table},
        "rule-action": action,
    }


def tr(rule_id: int, target: str, action: str, value: str | None = None, **locator: str) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "rule-type": "transformation",
        "rule-id": str(rule_id),
        "rule-name": f"t{rule_id}",
        "rule-target": target,
        "object-locator": {k.replace("_", "-"): v for k, v in locator.items()},
        "rule-action": action,
    }
    if value is not None:
        rule["value"] = value
    return rule


@pytest.mark.parametrize(
    ("locator", "name", "expected"),
    [
        ("%", "anything", True),
        ("shop", "shop", True),
        ("shop", "Shop", False),
        ("sh%", "shop", True),
        ("%op", "shop", True),
        ("s%p", "sp", True),
        ("s%p", "shops", False),
        ("a.b", "axb", False),
        ("t_1", "tx1", False),
    ],
)
def test_locator_matching(locator: str, name: str, expected: bool) -> None:
    assert matches(locator, name) is expected


def test_include_and_exclude() -> None:
    mapping = TableMapping.parse(
        {"rules": [sel(1, "shop", "%"), sel(2, "shop", "tmp_%", "exclude"), sel(3, "hr", "staff", "explicit")]}
    )
    assert mapping.is_selected("shop", "orders")
    assert not mapping.is_selected("shop", "tmp_orders")
    assert mapping.is_selected("hr", "staff")
    assert not mapping.is_selected("hr", "salaries")
    assert not mapping.is_selected("other", "orders")
    assert mapping.target_for("shop", "tmp_x") is None
    assert mapping.schema_may_match("shop") and not mapping.schema_may_match("other")


def test_renames_apply_in_rule_id_order() -> None:
    mapping = TableMapping.parse(
        {
            "rules": [
                sel(1, "Shop", "%"),
                tr(5, "table", "add-prefix", "raw_", schema_name="Shop", table_name="%"),
                tr(3, "table", "convert-lowercase", schema_name="Shop", table_name="%"),
                tr(4, "schema", "rename", "lake_shop", schema_name="Shop"),
                tr(6, "column", "rename", "fname", schema_name="Shop", table_name="Actor", column_name="first_name"),
                tr(7, "column", "remove-column", schema_name="Shop", table_name="%", column_name="secret%"),
                tr(8, "column", "convert-uppercase", schema_name="Shop", table_name="Actor", column_name="last%"),
            ]
        }
    )
    target = mapping.target_for("Shop", "Actor")
    assert target is not None
    assert (target.schema, target.table) == ("lake_shop", "raw_actor")
    assert (target.source_schema, target.source_table) == ("Shop", "Actor")
    assert target.column_name("first_name") == "fname"
    assert target.column_name("last_name") == "LAST_NAME"
    assert target.column_name("secret_token") is None
    assert target.column_name("id") == "id"
    other = mapping.target_for("Shop", "Film")
    assert other is not None and other.column_name("last_name") == "last_name"


@pytest.mark.parametrize(
    ("action", "value", "old", "name", "expected"),
    [
        ("remove-prefix", "tbl_", None, "tbl_orders", "orders"),
        ("remove-prefix", "tbl_", None, "orders", "orders"),
        ("replace-prefix", "t_", "tbl_", "tbl_orders", "t_orders"),
        ("add-suffix", "_v1", None, "orders", "orders_v1"),
        ("remove-suffix", "_bak", None, "orders_bak", "orders"),
        ("replace-suffix", "_new", "_old", "orders_old", "orders_new"),
        ("convert-uppercase", None, None, "orders", "ORDERS"),
    ],
)
def test_prefix_suffix_case_actions(action: str, value: str | None, old: str | None, name: str, expected: str) -> None:
    rule = tr(2, "table", action, value, schema_name="s", table_name="%")
    if old is not None:
        rule["old-value"] = old
    mapping = TableMapping.parse({"rules": [sel(1, "s", "%"), rule]})
    target = mapping.target_for("s", name)
    assert target is not None and target.table == expected


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([], "no selection rule includes"),
        ([sel(1, "s", "%", "exclude")], "no selection rule includes"),
        ([sel(1, "s", "%", "bogus")], "selection rule-action"),
        ([sel(1, "s%", "t", "explicit")], "explicit"),
        ([{**sel(1, "s", "%"), "filters": [{"filter-type": "source"}]}], "filters"),
        ([sel(1, "s", "%"), tr(2, "table", "add-column", "x", schema_name="s", table_name="t")], "add-column"),
        ([sel(1, "s", "%"), tr(2, "table", "rename", None, schema_name="s", table_name="t")], "needs a string 'value'"),
        ([sel(1, "s", "%"), tr(2, "table", "remove-column", schema_name="s", table_name="t")], "rule-target 'column'"),
        ([{"rule-type": "selection", "rule-id": "1", "rule-action": "include"}], "object-locator is missing"),
        ([{"rule-type": "magic"}], "rule-type 'magic'"),
    ],
)
def test_bad_mappings_name_the_problem(rules: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(RuleError, match=message):
        TableMapping.parse({"rules": rules})


def test_table_settings_rules_are_ignored() -> None:
    mapping = TableMapping.parse(
        {"rules": [sel(1, "s", "%"), {"rule-type": "table-settings", "rule-id": "9", "parallel-load": {}}]}
    )
    assert mapping.is_selected("s", "t")
