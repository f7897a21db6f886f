"""DMS selection-rule source filters, from the DMS documentation's own examples ("Using source
filters"): which rows each example keeps, the MariaDB predicate the source reads run, and the
refusals of what binlake cannot apply exactly."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest

from binlake.rowfilter import BoundFilter, keeps, mariadb_sql
from binlake.rules import RuleError, TableMapping, TableTarget
from binlake.typemap import ColumnType

EMPLOYEE = {  # test.employee as the examples use it
    "empid": ColumnType.parse("int"),
    "dept": ColumnType.parse("varchar"),
    "empstartdate": ColumnType.parse("date"),
    "date_of_record": ColumnType.parse("datetime(0)"),
    "salary": ColumnType.parse("decimal(10,2)"),
    "score": ColumnType.parse("double"),
}


def mapping(*filters: dict[str, Any], action: str = "include", table: str = "employee") -> dict[str, Any]:
    return {"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1",
                       "object-locator": {"schema-name": "test", "table-name": table},
                       "rule-action": action, "filters": list(filters)}]}


def source(column: str, *conditions: dict[str, Any]) -> dict[str, Any]:
    return {"filter-type": "source", "column-name": column, "filter-conditions": list(conditions)}


def op(operator: str, *values: str) -> dict[str, Any]:
    condition: dict[str, Any] = {"filter-operator": operator}
    if len(values) == 1:
        condition["value"] = values[0]
    elif len(values) == 2:
        condition["start-value"], condition["end-value"] = values
    return condition


def target(data: dict[str, Any], table: str = "employee") -> TableTarget:
    found = TableMapping.parse(data).target_for("test", table)
    assert found is not None
    return found


def bound(data: dict[str, Any], types: dict[str, ColumnType] | None = None) -> BoundFilter:
    row_filter = target(data).row_filter
    assert row_filter is not None
    lookup = types or EMPLOYEE
    return row_filter.bind(lambda c: (c, lookup[c]) if c in lookup else None, "test.employee")


def kept(data: dict[str, Any], column: str, values: list[Any]) -> list[Any]:
    f = bound(data)
    return [v for v in values if keeps(f, {column: v})]


IDS = [None, 1, 10, 11, 49, 50, 51, 75, 76, 99, 100, 101]


def test_single_filter_empid_gte_100() -> None:
    data = mapping(source("empid", op("gte", "100")))
    assert kept(data, "empid", IDS) == [100, 101]
    assert mariadb_sql(bound(data)) == "`empid` >= 100"


def test_multiple_operators_on_one_column_are_ored() -> None:
    data = mapping(source("empid", op("lte", "10"), op("between", "50", "75"), op("gte", "100")))
    assert kept(data, "empid", IDS) == [1, 10, 50, 51, 75, 100, 101]
    assert mariadb_sql(bound(data)) == "(`empid` <= 10 OR (`empid` >= 50 AND `empid` <= 75) OR `empid` >= 100)"


def test_filters_on_two_columns_are_anded() -> None:
    data = mapping(source("empid", op("lte", "100")), source("dept", op("eq", "tech")))
    f = bound(data)
    rows = [(5, "tech"), (5, "sales"), (101, "tech"), (None, "tech"), (5, None), (100, "tech")]
    assert [r for r in rows if keeps(f, {"empid": r[0], "dept": r[1]})] == [(5, "tech"), (100, "tech")]
    assert mariadb_sql(f) == "(`empid` <= 100 AND CAST(CONVERT(`dept` USING utf8mb4) AS BINARY) = X'74656368')"


def test_filtering_null_values() -> None:
    data = mapping(source("dept", op("null")))
    assert kept(data, "dept", [None, "", "tech"]) == [None]
    assert mariadb_sql(bound(data)) == "CAST(CONVERT(`dept` USING utf8mb4) AS BINARY) IS NULL"


def test_notbetween_keeps_below_start_or_above_end() -> None:
    data = mapping(source("empid", op("notbetween", "50", "75")))
    assert kept(data, "empid", IDS) == [1, 10, 11, 49, 76, 99, 100, 101]  # NULL is neither below nor above
    assert mariadb_sql(bound(data)) == "(`empid` < 50 OR `empid` > 75)"


def test_multiple_filters_with_negative_operators() -> None:
    data = mapping(source("empid", op("noteq", "50")), source("dept", op("notnull")))
    f = bound(data)
    rows = [(50, "tech"), (51, "tech"), (51, None), (None, "tech")]
    assert [r for r in rows if keeps(f, {"empid": r[0], "dept": r[1]})] == [(51, "tech")]


def test_date_filter_empstartdate_gte_2002_01_01() -> None:
    data = mapping(source("empstartdate", op("gte", "2002-01-01")))
    days = [datetime.date(2001, 12, 31), datetime.date(2002, 1, 1), datetime.date(2010, 5, 5), None]
    assert kept(data, "empstartdate", days) == days[1:3]
    sql = mariadb_sql(bound(data))
    assert sql.endswith(" >= DATE'2002-01-01'") and "THEN NULL ELSE `empstartdate` END" in sql


def test_datetime_filter_takes_a_date_as_midnight() -> None:  # the knowledge-centre example (date_of_record)
    data = mapping(source("date_of_record", op("gte", "2019-01-08")))
    times = [datetime.datetime(2019, 1, 7, 23, 59, 59), datetime.datetime(2019, 1, 8), datetime.datetime(2019, 1, 8, 1)]
    assert kept(data, "date_of_record", times) == times[1:]
    assert mariadb_sql(bound(data)).endswith(" >= TIMESTAMP'2019-01-08 00:00:00.000000'")


def test_ste_is_lte_and_numbers_compare_numerically() -> None:
    data = mapping(source("salary", op("ste", "1000.5")))
    assert kept(data, "salary", [Decimal("999.99"), Decimal("1000.50"), Decimal("1000.51"), Decimal("10000")]) == [
        Decimal("999.99"), Decimal("1000.50")]
    assert mariadb_sql(bound(data)) == "`salary` <= 1000.5"
    ints = mapping(source("empid", op("gte", "10.5")))
    assert kept(ints, "empid", [10, 11]) == [11]


def test_text_compares_by_code_point_not_collation() -> None:
    data = mapping(source("dept", op("eq", "tech"), op("between", "a", "b")))
    assert kept(data, "dept", ["tech", "TECH", "tech ", "a", "abc", "b", "B", "é"]) == ["tech", "a", "abc", "b"]
    quote = mapping(source("dept", op("eq", "o'k\\; DROP TABLE x")))
    assert mariadb_sql(bound(quote)) == ("CAST(CONVERT(`dept` USING utf8mb4) AS BINARY) = "
                                         "X'" + b"o'k\\; DROP TABLE x".hex().upper() + "'")


def test_filter_on_a_wildcard_rule_applies_to_each_selected_table() -> None:
    data = mapping(source("empid", op("eq", "1")), table="emp%")
    for name in ("employee", "employees"):
        assert target(data, name).row_filter is not None


def test_tables_without_filters_have_none() -> None:
    plain = {"rules": [{"rule-type": "selection", "rule-id": "1", "object-locator": {"schema-name": "test",
                        "table-name": "%"}, "rule-action": "include", "filters": []}]}
    assert target(plain).row_filter is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (mapping(source("empid", op("noteq", "50"), op("eq", "7"))), "holds only that one condition"),
        (mapping(source("empid", op("like", "5%"))), "filter-operator 'like' is not supported"),
        (mapping(source("empid", {"filter-operator": "between", "start-value": "1"})), "needs 'end-value'"),
        (mapping(source("empid", {"filter-operator": "eq"})), "eq needs 'value'"),
        (mapping({"filter-type": "target", "column-name": "x", "filter-conditions": [op("null")]}), "filter-type"),
        (mapping(source("empid")), "filter-conditions must be a non-empty list"),
        (mapping(source("empid", op("eq", "1")), action="exclude"), "rule-action 'include' only"),
        (mapping(source("empid", op("eq", "1")), action="explicit"), "rule-action 'include' only"),
        ({"rules": [{"rule-type": "selection", "rule-id": "1", "object-locator": {"schema-name": "s",
          "table-name": "t"}, "rule-action": "include", "filters": {"column-name": "x"}}]}, "non-empty list"),
    ],
)
def test_malformed_filters_are_refused_naming_the_part(data: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleError, match=r"rule '1'|rules\[0\]") as info:
        TableMapping.parse(data)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("score", "1", "type double cannot be filtered exactly"),
        ("empid", "ten", "'ten' is not a number"),
        ("empid", "1e3", "is not a number"),
        ("empstartdate", "01/02/2002", "is not a date value (YYYY-MM-DD)"),
        ("empstartdate", "2002-02-30", "is not a valid date"),
        ("missing", "1", "the table has no such column"),
    ],
)
def test_filters_the_columns_cannot_take_are_refused(column: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match="filter on column") as info:
        bound(mapping(source(column, op("eq", value))))
    assert message in str(info.value)


def test_a_table_selected_by_a_filtered_rule_and_another_include_rule_is_refused() -> None:
    data = mapping(source("empid", op("eq", "1")))
    data["rules"].append({"rule-type": "selection", "rule-id": "2", "object-locator": {"schema-name": "test",
                          "table-name": "%"}, "rule-action": "include"})
    mapping_ = TableMapping.parse(data)
    assert mapping_.target_for("test", "other") is not None
    with pytest.raises(RuleError, match=r"several include rules .*rule-id 1, rule-id 2"):
        mapping_.target_for("test", "employee")


def test_a_filter_on_a_removed_column_is_refused() -> None:
    data = mapping(source("empid", op("eq", "1")))
    data["rules"].append({"rule-type": "transformation", "rule-id": "2", "rule-target": "column",
                          "object-locator": {"schema-name": "test", "table-name": "employee", "column-name": "empid"},
                          "rule-action": "remove-column"})
    t = target(data)
    assert t.column_name("empid") is None
    assert t.row_filter is not None
    with pytest.raises(ValueError, match=r"no such column \(or a transformation rule removes it\)"):
        t.row_filter.bind(lambda c: None if t.column_name(c) is None else (c, EMPLOYEE[c]), "test.employee")


def test_every_source_read_of_a_filtered_table_ands_the_filter_to_its_chunk() -> None:
    from binlake.snapshot.discovery import SourceColumn, SourceTable
    from binlake.snapshot.reading import chunk_query
    from binlake.validation.checksum import source_sum_query

    data = mapping(source("empid", op("gte", "100")))
    columns = tuple(SourceColumn(n, n, EMPLOYEE[n], True) for n in ("empid", "dept"))
    plain = SourceTable(target(data), columns, ("empid",), (EMPLOYEE["empid"],), "InnoDB", 0, 0)
    filtered = SourceTable(plain.target, columns, ("empid",), (EMPLOYEE["empid"],), "InnoDB", 0, 0, bound(data))
    chunk = "`empid` >= 0 AND `empid` < 50"
    assert f"WHERE {chunk}) AS _b" in chunk_query(plain, chunk)
    assert f"WHERE ({chunk}) AND `empid` >= 100) AS _b" in chunk_query(filtered, chunk)  # full load, resync, rows
    assert f"WHERE ({chunk}) AND `empid` >= 100) AS _b" in source_sum_query(filtered, chunk)  # validation sums
