"""binlake.registration.plan: catalog names, liveness, and the actions that make the catalog hold
exactly the live lake tables."""

from __future__ import annotations

import pytest

from binlake.config import CatalogKind
from binlake.merge import target
from binlake.registration.plan import (
    CREATE,
    DROP,
    REPLACE,
    Action,
    CatalogName,
    CatalogNameError,
    LakeTable,
    Registered,
    catalog_name,
    is_dropped,
    plan,
    same_location,
    without_helpers,
)

ROOT = "/lake"
SCHEMAS = {"shop": "/lake/shop", "Shop": "/lake/~shop", "crm": "/lake/crm"}


def test_property_names_are_the_merges() -> None:
    from binlake.registration import plan as p

    assert (p.DROPPED_LSN, p.TRUNCATE_LSN, p.SCHEMA_LSN) == (target.DROPPED_LSN, target.TRUNCATE_LSN,
                                                              target.SCHEMA_LSN)


def test_catalog_names_are_lower_case_and_back_quoted() -> None:
    name = catalog_name(CatalogKind.HIVE, "Shop", "Order_Items")
    assert name == CatalogName("shop", "order_items")
    assert name.sql == "`shop`.`order_items`"
    assert catalog_name(CatalogKind.GLUE, "shop", "a:b é") == CatalogName("shop", "a:b é")


@pytest.mark.parametrize("table", ["a:b", "a b", "a-b", "x$y", "é", "a.b", "a`b"])
def test_hive_refuses_names_spark_refuses_naming_the_fix(table: str) -> None:
    with pytest.raises(CatalogNameError, match="rename"):
        catalog_name(CatalogKind.HIVE, "shop", table)


def test_glue_refuses_multi_line_and_long_names() -> None:
    for bad in ("a\nb", "x" * 256):
        with pytest.raises(CatalogNameError):
            catalog_name(CatalogKind.GLUE, "shop", bad)


@pytest.mark.parametrize(("props", "dropped"), [
    ({}, False),
    ({target.TRUNCATE_LSN: "10"}, False),                                             # a TRUNCATE
    ({target.DROPPED_LSN: "10", target.TRUNCATE_LSN: "10", target.SCHEMA_LSN: "10"}, True),  # a DROP
    ({target.DROPPED_LSN: "10", target.TRUNCATE_LSN: "12", target.SCHEMA_LSN: "12"}, False),  # re-CREATEd
    ({target.DROPPED_LSN: "10", target.TRUNCATE_LSN: "10", target.SCHEMA_LSN: "15"}, False),  # renamed onto it
    ({target.DROPPED_LSN: "", target.TRUNCATE_LSN: "3"}, False),
])
def test_is_dropped(props: dict[str, str], dropped: bool) -> None:
    assert is_dropped(props) is dropped


def test_same_location_ignores_file_scheme_and_trailing_slash() -> None:
    assert same_location("file:/lake/shop/t", "/lake/shop/t/")
    assert same_location("file:///lake/shop/t", "/lake/shop/t")
    assert not same_location("/lake/shop/t", "/lake/shop/t2")


def lt(schema: str, table: str, live: bool = True, folder: str | None = None) -> LakeTable:
    return LakeTable(schema, table, f"/lake/{folder or schema}/{table}", live)


def test_new_live_tables_are_created_with_their_databases() -> None:
    result = plan(CatalogKind.HIVE, [lt("shop", "a"), lt("crm", "b"), lt("shop", "gone", live=False)], {}, ROOT,
                  SCHEMAS)
    assert result.actions == (Action(CatalogName("crm", "b"), CREATE, "/lake/crm/b"),
                              Action(CatalogName("shop", "a"), CREATE, "/lake/shop/a"))
    assert result.databases == (("crm", "/lake/crm"), ("shop", "/lake/shop"))
    assert result.registered == (CatalogName("crm", "b"), CatalogName("shop", "a"))


def test_a_second_run_plans_nothing() -> None:
    current = {CatalogName("shop", "a"): Registered("file:/lake/shop/a")}
    result = plan(CatalogKind.HIVE, [lt("shop", "a"), lt("shop", "gone", live=False)], current, ROOT, SCHEMAS)
    assert result.actions == () and result.databases == () and result.refused == ()
    assert result.registered == (CatalogName("shop", "a"),)


def test_a_dropped_or_renamed_away_table_loses_its_name() -> None:
    current = {CatalogName("shop", "t"): Registered("/lake/shop/t"), CatalogName("shop", "t2"): Registered("/x")}
    result = plan(CatalogKind.HIVE, [lt("shop", "t", live=False)], current, ROOT, SCHEMAS)
    assert result.actions == (Action(CatalogName("shop", "t"), DROP, "/lake/shop/t"),)


def test_a_name_elsewhere_is_never_replaced_nor_dropped() -> None:
    current = {CatalogName("shop", "a"): Registered("s3://other/a"),
               CatalogName("shop", "b"): Registered("/lake/shop/b", external=False),
               CatalogName("shop", "gone"): Registered("s3://other/gone")}
    result = plan(CatalogKind.HIVE, [lt("shop", "a"), lt("shop", "b"), lt("shop", "gone", live=False)], current,
                  ROOT, SCHEMAS)
    assert result.actions == ()
    assert [t for t, _ in result.refused] == ["shop.a", "shop.b"]
    assert "not binlake's" in result.refused[0][1] and "managed" in result.refused[1][1]


def test_a_table_moved_inside_the_lake_is_replaced() -> None:
    current = {CatalogName("shop", "a"): Registered("/lake/shop/old_a")}
    result = plan(CatalogKind.GLUE, [lt("shop", "a")], current, ROOT, SCHEMAS)
    assert result.actions == (Action(CatalogName("shop", "a"), REPLACE, "/lake/shop/a"),)


def test_lake_root_prefix_is_not_inside() -> None:
    current = {CatalogName("shop", "a"): Registered("/lake2/shop/a")}
    result = plan(CatalogKind.HIVE, [lt("shop", "a")], current, ROOT, SCHEMAS)
    assert result.actions == () and result.refused


def test_names_equal_but_for_case_are_both_refused() -> None:
    result = plan(CatalogKind.HIVE, [lt("shop", "Foo", folder="shop"), lt("shop", "foo")], {}, ROOT, SCHEMAS)
    assert result.actions == ()
    assert sorted(t for t, _ in result.refused) == ["shop.Foo", "shop.foo"]
    assert "ignore case" in result.refused[0][1]


def test_a_live_table_keeps_the_name_a_dropped_one_of_other_case_had() -> None:
    current = {CatalogName("shop", "foo"): Registered("/lake/shop/~foo")}
    tables = [LakeTable("shop", "Foo", "/lake/shop/~foo", False), lt("shop", "foo")]
    result = plan(CatalogKind.HIVE, tables, current, ROOT, SCHEMAS)
    assert result.actions == (Action(CatalogName("shop", "foo"), REPLACE, "/lake/shop/foo"),)


def test_unregistrable_names_are_refused_only_when_live() -> None:
    result = plan(CatalogKind.HIVE, [lt("shop", "a:b"), lt("shop", "c-d", live=False)], {}, ROOT, SCHEMAS)
    assert [t for t, _ in result.refused] == ["shop.a:b"]


def test_online_schema_change_helpers_are_never_registered_and_an_old_registration_is_dropped() -> None:
    tables = [lt("shop", "orders"), lt("shop", "_orders_gho"), lt("shop", "_orders_ghc"), lt("shop", "_orders_new"),
              lt("shop", "_lonely_gho"), lt("crm", "_orders_gho")]  # no lonely table; crm has no orders table
    assert [t.table for t in without_helpers(tables) if not t.live] == ["_orders_gho", "_orders_ghc", "_orders_new"]
    current = {CatalogName("shop", "_orders_gho"): Registered("/lake/shop/_orders_gho")}  # by an older binlake
    result = plan(CatalogKind.HIVE, tables, current, ROOT, SCHEMAS)
    assert [(str(a.name), a.kind) for a in result.actions] == [
        ("crm._orders_gho", CREATE), ("shop._lonely_gho", CREATE), ("shop.orders", CREATE),
        ("shop._orders_gho", DROP)]
    assert CatalogName("shop", "_orders_new") not in result.registered
