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
        ("a.b", "a.b", True),
        ("a$b", "a$b", True),
        ("a(b)+", "a(b)+", True),
    ],
)
def test_locator_matching(locator: str, name: str, expected: bool) -> None:
    assert matches(locator, name) is expected


# The table of "Wildcards in table mapping" (AWS DMS User Guide,
# CHAP_Tasks.CustomizingTasks.TableMapping.SelectionTransformation.Wildcards):
#   %      Zero or more characters
#   _      A single character
#   [_]    A literal underscore character
#   [ab]   A set of characters. For example, [ab] matches either 'a' or 'b'.
#   [a-d]  A range of characters. For example,[a-d] matches either 'a', 'b', 'c', or 'd'.
@pytest.mark.parametrize(
    ("locator", "name", "expected"),
    [
        ("%", "", True),                  # zero …
        ("x%", "x", True),
        ("x%", "xyz", True),              # … or more characters
        ("_", "a", True),                 # a single character
        ("_", "", False),
        ("_", "ab", False),
        ("_", "é", True),                 # one character, not one byte
        ("t_1", "tx1", True),
        ("t_1", "t_1", True),
        ("my_table", "myXtable", True),   # what existing mappings now also select (README)
        ("[_]", "_", True),               # a literal underscore character
        ("[_]", "x", False),
        ("t[_]%", "t_orders", True),      # the mapping issue 9 reported as selecting nothing
        ("t[_]%", "tx_orders", False),
        ("[ab]", "a", True),              # [ab] matches either 'a' or 'b'
        ("[ab]", "b", True),
        ("[ab]", "c", False),
        ("[ab]", "ab", False),
        ("[a-d]", "a", True),             # [a-d] matches either 'a', 'b', 'c', or 'd'
        ("[a-d]", "b", True),
        ("[a-d]", "c", True),
        ("[a-d]", "d", True),
        ("[a-d]", "e", False),
        ("[a-d]", "-", False),
        ("[a-d]", "A", False),            # DMS selection rules are case-sensitive
        ("[a-]", "-", True),              # a '-' that closes no range is itself
        ("[%]", "%", True),               # inside a set, % and _ are themselves
        ("[%]", "x", False),
        ("[[]x", "[x", True),
        ("x]", "x]", True),
        ("TEST#_T%", "TEST#xT1", True),     # no escape character (DMS has one for Oracle endpoints only)
        ("TEST[_]T%", "TEST_T1", True),     # … where DMS's own example TEST#_T% wants this
        ("TEST[_]T%", "TESTxT1", False),
        ("log_20[0-9][0-9]_%", "log_2024_jan", True),
        ("log_20[0-9][0-9]_%", "log_20x4_jan", False),
    ],
)
def test_dms_wildcards(locator: str, name: str, expected: bool) -> None:
    assert matches(locator, name) is expected


@pytest.mark.parametrize(
    ("locator", "message"),
    [
        ("t[ab", "never closed"),
        ("t[]", "empty character set"),
        ("t[^a]", "negated"),
        ("t[!a]", "negated"),
        ("t[d-a]", "range"),
    ],
)
def test_malformed_wildcards_are_refused_naming_the_rule(locator: str, message: str) -> None:
    with pytest.raises(RuleError, match=rf"rule 's1' \(rules\[0\]\): object-locator.table-name: .*{message}"):
        TableMapping.parse({"rules": [sel(1, "s", locator)]})


def test_wildcards_in_schema_table_and_column_locators() -> None:
    mapping = TableMapping.parse({"rules": [
        sel(1, "shop_[0-9]", "order[_]%"),
        sel(2, "shop_[0-9]", "order[_]tmp", "exclude"),
        tr(3, "table", "add-prefix", "x_", schema_name="shop_[12]", table_name="order[_][ab]%"),
        tr(4, "column", "rename", "note", schema_name="shop%", table_name="%", column_name="c_[0-9]"),
    ]})
    assert mapping.is_selected("shop_1", "order_a")
    assert mapping.is_selected("shopX7", "order_a")              # '_' in the schema locator: one character
    assert not mapping.is_selected("shop_1", "orderXa")          # '[_]': the underscore only
    assert not mapping.is_selected("shop_1", "order_tmp")
    assert not mapping.is_selected("shop_10", "order_a")
    first, third = mapping.target_for("shop_1", "order_b1"), mapping.target_for("shop_3", "order_b1")
    assert first is not None and first.table == "x_order_b1"
    assert third is not None and third.table == "order_b1"
    assert first.column_name("c_1") == "note" and first.column_name("cX1") == "note"
    assert first.column_name("c_10") == "c_10"


def test_schema_pre_filter_agrees_with_selection() -> None:
    """The capture skips a schema's row events when ``schema_may_match`` says no: it must say yes for
    every schema that holds a selected table, with the new wildcards too."""
    mapping = TableMapping.parse({"rules": [sel(1, "db_[a-c]", "%"), sel(2, "hr", "staff", "explicit"),
                                            sel(3, "%", "%", "exclude")]})
    assert not mapping.schema_may_match("other")
    mapping = TableMapping.parse({"rules": [sel(1, "db_[a-c]", "%"), sel(2, "h_", "staff_", "explicit")]})
    for schema in ("db_a", "dbXc", "h_"):
        assert mapping.schema_may_match(schema)
    for schema in ("db_d", "db_ab", "hr"):
        assert not mapping.schema_may_match(schema)
    assert mapping.is_selected("dbXc", "t") and mapping.is_selected("h_", "staff_")
    assert not mapping.is_selected("hr", "staff_") and not mapping.is_selected("h_", "staffX")


def test_explicit_rules_compare_names_literally() -> None:
    """DMS: "If explicit is specified, you can select and include only one object that corresponds to an
    explicitly specified table and schema." — so '_' and '[' in an explicit rule are the characters."""
    mapping = TableMapping.parse({"rules": [sel(1, "s", "my_t[1]", "explicit")]})
    assert mapping.is_selected("s", "my_t[1]")
    assert not mapping.is_selected("s", "myXt1")


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
