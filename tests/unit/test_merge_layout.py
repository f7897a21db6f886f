"""Row layouts and the schema changes that make a lake table match one (binlake.merge.layout)."""

from __future__ import annotations

import json

import pytest

from binlake.merge.layout import Layout, layouts_union, normalize_spark_type, plan_evolution, plan_renames


def layout(*columns: tuple[str, str, bool]) -> Layout:
    return Layout.parse(json.dumps([{"name": n, "type": t, "pk": pk} for n, t, pk in columns]))


def test_parse_and_keys() -> None:
    lay = layout(("id", "bigint", True), ("v", "varchar", False))
    assert lay.names == ("id", "v")
    assert lay.key_columns == ("id",)
    assert lay.has_primary_key
    assert lay.column("v") is not None and lay.column("v").spark_type == "string"  # type: ignore[union-attr]


def test_table_without_primary_key_is_keyed_by_all_columns() -> None:
    lay = layout(("a", "int", False), ("b", "int", False))
    assert lay.key_columns == ("a", "b")
    assert not lay.has_primary_key


@pytest.mark.parametrize("text", ["not json", "{}", '[{"name": 1, "type": "int"}]', '[{"name": "a"}]'])
def test_parse_rejects_bad_layouts(text: str) -> None:
    with pytest.raises(ValueError):
        Layout.parse(text)


@pytest.mark.parametrize(
    ("given", "expected"),
    [("long", "bigint"), ("INTEGER", "int"), ("decimal(20, 0)", "decimal(20,0)"), ("timestamp_ntz", "timestamp_ntz"),
     ("varchar(12)", "string"), ("decimal", "decimal(10,0)"), ("short", "smallint")],
)
def test_normalize_spark_type(given: str, expected: str) -> None:
    assert normalize_spark_type(given) == expected


def test_plan_evolution_add_drop_retype() -> None:
    table = {"id": "bigint", "old": "string", "n": "int"}
    new = layout(("id", "bigint", True), ("n", "bigint", False), ("added", "decimal(10,2)", False))
    evolution = plan_evolution(table, new)
    assert evolution.drops == ("old",)
    assert evolution.adds == (("added", "decimal(10,2)"),)
    assert evolution.retypes == (("n", "int", "bigint"),)


def test_plan_evolution_same_layout_is_empty_and_case_insensitive() -> None:
    assert plan_evolution({"ID": "bigint", "v": "string"}, layout(("id", "bigint", True), ("v", "text", False))).empty


def test_plan_renames_only_what_is_left() -> None:
    assert plan_renames(["a", "b"], [("a", "c")]) == (("a", "c"),)
    assert plan_renames(["c", "b"], [("a", "c")]) == ()  # already done (replay)
    assert plan_renames(["a", "b"], [("a", "b")]) == ()  # target exists: not a rename we can do
    assert plan_renames(["a"], [("a", "x"), ("x", "y")]) == (("a", "x"), ("x", "y"))


def test_layouts_union_marks_columns_missing_from_some_layouts() -> None:
    before = layout(("id", "int", True), ("gone", "int", False))
    after = layout(("id", "bigint", True), ("new", "int", False))
    columns, optional = layouts_union([before, after])
    assert [(c.name, c.type_spec) for c in columns] == [("id", "bigint"), ("gone", "int"), ("new", "int")]
    assert optional == {"gone", "new"}
