"""DMS add-column transformation rules, from the DMS documentation's examples ("Using
transformation rule expressions to define column content"): what binlake evaluates (constants,
$AR_H_COMMIT_TIMESTAMP, $AR_H_OPERATION), the full-load values, and the refusals by name."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest

from binlake.addcolumn import COMMIT_TIMESTAMP, CONSTANT, OPERATION
from binlake.rules import RuleError, TableMapping

SELECT_ALL = {"rule-type": "selection", "rule-id": "1", "rule-name": "1",
              "object-locator": {"schema-name": "Test", "table-name": "%"}, "rule-action": "include"}


def add(value: str, expression: Any, data_type: dict[str, Any], rule_id: int = 2, table: str = "%",
        **extra: Any) -> dict[str, Any]:
    return {"rule-type": "transformation", "rule-id": str(rule_id), "rule-name": str(rule_id),
            "rule-action": "add-column", "rule-target": "column",
            "object-locator": {"schema-name": "Test", "table-name": table},
            "value": value, "expression": expression, "data-type": data_type, **extra}


def added(*rules: dict[str, Any], table: str = "ITEM") -> tuple[Any, ...]:
    target = TableMapping.parse({"rules": [SELECT_ALL, *rules]}).target_for("Test", table)
    assert target is not None
    return target.added_columns


def test_commit_timestamp_header_as_in_the_dms_examples() -> None:
    (column,) = added(add("commit_ts", "$AR_H_COMMIT_TIMESTAMP", {"type": "datetime", "precision": 6}))
    assert (column.name, column.kind, column.spark_type) == ("commit_ts", COMMIT_TIMESTAMP, "timestamp")
    # full load: DMS gives the current time; binlake the time the chunk was read
    assert column.full_load_sql("`read_ts`") == "TIMESTAMP_MICROS(`read_ts`)"


def test_operation_header_is_insert_on_full_load() -> None:
    (column,) = added(add("Operation", "$AR_H_OPERATION", {"type": "string", "length": 50}))
    assert (column.kind, column.spark_type) == (OPERATION, "string")
    assert column.full_load_sql("x") == f"CAST(UNHEX('{b'INSERT'.hex().upper()}') AS STRING)"


@pytest.mark.parametrize(
    ("expression", "data_type", "value", "sql"),
    [
        ("'shop-a'", {"type": "string", "length": 10}, "shop-a", f"CAST(UNHEX('{b'shop-a'.hex().upper()}') AS STRING)"),
        ("'it''s'", {"type": "string"}, "it's", "CAST(UNHEX('" + b"it's".hex().upper() + "') AS STRING)"),
        ("7", {"type": "int4"}, 7, "CAST(7 AS INT)"),
        (7, {"type": "int8"}, 7, "CAST(7 AS BIGINT)"),
        ("-128", {"type": "int1"}, -128, "CAST(-128 AS TINYINT)"),
        ("18446744073709551615", {"type": "uint8"}, 18446744073709551615,
         "CAST(18446744073709551615 AS DECIMAL(20,0))"),
        ("1.50", {"type": "numeric", "precision": 5, "scale": 2}, Decimal("1.50"), "CAST(1.50 AS DECIMAL(5,2))"),
        ("1", {"type": "boolean"}, True, "TRUE"),
        ("'2024-02-29'", {"type": "date"}, datetime.date(2024, 2, 29), "DATE'2024-02-29'"),
        ("'2024-02-29 10:00:00'", {"type": "datetime"}, datetime.datetime(2024, 2, 29, 10),
         "CAST('2024-02-29 10:00:00.000000Z' AS TIMESTAMP)"),
        ("NULL", {"type": "string"}, None, "CAST(NULL AS STRING)"),
    ],
)
def test_constants_are_typed_and_rendered_from_the_value(expression: Any, data_type: dict[str, Any], value: Any,
                                                         sql: str) -> None:
    (column,) = added(add("c", expression, data_type))
    assert (column.kind, column.value) == (CONSTANT, value)
    assert column.full_load_sql("x") == column.constant_sql() == sql


def test_columns_of_several_rules_in_rule_id_order_only_on_matching_tables() -> None:
    rules = [add("b", "'x'", {"type": "string"}, rule_id=9), add("a", "1", {"type": "int4"}, rule_id=3, table="IT%"),
             add("z", "2", {"type": "int4"}, rule_id=4, table="OTHER")]
    assert [c.name for c in added(*rules)] == ["a", "b"]
    assert [c.name for c in added(*rules, table="OTHER")] == ["z", "b"]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (add("t", "$AR_H_TIMESTAMP", {"type": "datetime"}), "$AR_H_TIMESTAMP is not supported: it is the time of the "
                                                             "operation"),
        (add("t", "$AR_H_STREAM_POSITION", {"type": "string"}), "$AR_H_STREAM_POSITION is not supported"),
        (add("t", "$AR_H_CHANGE_SEQ", {"type": "string"}), "$AR_H_CHANGE_SEQ is not supported"),
        (add("t", "$AR_H_USER", {"type": "string"}), "$AR_H_USER is not supported"),
        (add("FULL_NAME", "$FIRST_NAME||'_'||$LAST_NAME", {"type": "string", "length": 50}),
         "no other headers or column values"),
        (add("Operation", "operation_indicator('D', 'U', 'I')", {"type": "string"}), "no SQLite functions"),
        (add("t", "$AR_H_COMMIT_TIMESTAMP", {"type": "string"}), "needs data-type 'datetime'"),
        (add("t", "$AR_H_OPERATION", {"type": "int4"}), "needs data-type 'string'"),
        (add("t", "'abc'", {"type": "int4"}), "does not fit data-type int"),
        (add("t", "300", {"type": "int1"}), "outside -128..127"),
        (add("t", "1.5", {"type": "numeric", "precision": 3, "scale": 0}), "not exactly a decimal(3,0)"),
        (add("t", "'x'", {"type": "blob"}), "data-type 'blob' is not supported"),
        (add("t", "'x'", {"type": "numeric", "precision": 40}), "precision 1..38"),
        (add("t", "'x'", {"type": "string"}, **{"before-image-def": {"column-prefix": "BI_"}}), "before-image-def"),
        (add("_binlake_x", "'x'", {"type": "string"}), "binlake's own"),
        ({**add("t", "'x'", {"type": "string"}), "rule-target": "table"}, "needs rule-target 'column'"),
        ({k: v for k, v in add("t", "'x'", {"type": "string"}).items() if k != "data-type"}, "needs 'data-type'"),
        ({k: v for k, v in add("t", "'x'", {"type": "string"}).items() if k != "expression"}, "needs an 'expression'"),
    ],
)
def test_unsupported_add_columns_are_refused_naming_the_rule_and_part(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleError, match=r"rule '2' \(rules\[1\]\)") as info:
        TableMapping.parse({"rules": [SELECT_ALL, rule]})
    assert message in str(info.value)


def test_two_added_columns_of_one_name_are_refused() -> None:
    mapping = TableMapping.parse({"rules": [SELECT_ALL, add("x", "1", {"type": "int4"}),
                                            add("X", "2", {"type": "int4"}, rule_id=3)]})
    with pytest.raises(RuleError, match="several add-column rules add a column named"):
        mapping.target_for("Test", "ITEM")


def test_change_data_type_stays_refused_by_name() -> None:
    rule = {"rule-type": "transformation", "rule-id": "2", "rule-name": "2", "rule-action": "change-data-type",
            "rule-target": "column", "object-locator": {"schema-name": "Test", "table-name": "%", "column-name": "c"},
            "data-type": {"type": "int8"}}
    with pytest.raises(RuleError, match=r"rule '2' .*rule-action 'change-data-type' is not supported"):
        TableMapping.parse({"rules": [SELECT_ALL, rule]})
