"""Which Delta features a new lake table gets, and how a table changes its columns (binlake.tablefeatures),
and the plan of a one-commit rewrite (binlake.merge.reshape)."""

from __future__ import annotations

from pathlib import Path

import pytest

from binlake.config import ConfigError, parse_config
from binlake.merge.reshape import NewColumn, carried_properties, plan_columns, split_stats_columns
from binlake.tablefeatures import (
    ColumnChange,
    ReaderCompatibility,
    TableFeatures,
    Way,
    needs_column_mapping,
)

BROAD = TableFeatures()
MODERN = TableFeatures(ReaderCompatibility.MODERN)
MAPPING_ON_RENAME = TableFeatures(on_column_rename=ColumnChange.COLUMN_MAPPING)
CM_TABLE = {"delta.columnMapping.mode": "name", "delta.enableDeletionVectors": "true"}


def test_broad_tables_get_only_the_change_data_feed() -> None:
    assert BROAD.new_table_properties(["id", "amount", "_binlake_lsn"]) == {"delta.enableChangeDataFeed": "true"}


def test_modern_tables_get_deletion_vectors_and_column_mapping() -> None:
    assert MODERN.new_table_properties(["id"]) == {
        "delta.enableChangeDataFeed": "true", "delta.enableDeletionVectors": "true",
        "delta.columnMapping.mode": "name"}


@pytest.mark.parametrize("name", ["first name", "a,b", "x;y", "f(x)", "{j}", "a=b", "tab\there", "nl\nx"])
def test_a_name_delta_refuses_without_column_mapping_turns_it_on_in_broad_mode(name: str) -> None:
    assert needs_column_mapping(["id", name]) == [name]
    assert BROAD.new_table_properties(["id", name]) == {
        "delta.enableChangeDataFeed": "true", "delta.columnMapping.mode": "name",
        "delta.feature.timestampNtz": "supported"}  # reader protocol 3: delta-rs refuses instead of reading NULLs


@pytest.mark.parametrize("name", ["näme", "É😀", "c'q", "d\\e", "%_", "we`ird", "select", "Zz"])
def test_names_delta_takes_without_column_mapping(name: str) -> None:
    assert needs_column_mapping([name]) == []
    assert "delta.columnMapping.mode" not in BROAD.new_table_properties([name])


def test_a_back_quote_turns_the_change_data_feed_off_in_either_mode() -> None:
    assert BROAD.new_table_properties(["we`ird"])["delta.enableChangeDataFeed"] == "false"
    assert MODERN.new_table_properties(["we`ird"])["delta.enableChangeDataFeed"] == "false"


def test_a_table_with_column_mapping_changes_columns_in_place_whatever_the_mode() -> None:
    for features in (BROAD, MODERN, MAPPING_ON_RENAME):
        assert features.column_change(CM_TABLE) is Way.ALTER
        assert features.column_change({"delta.columnMapping.mode": "id"}) is Way.ALTER


def test_a_table_without_column_mapping_is_rewritten_or_gets_it_as_configured() -> None:
    assert BROAD.column_change({}) is Way.REWRITE
    assert BROAD.column_change({"delta.columnMapping.mode": "none"}) is Way.REWRITE
    assert MODERN.column_change({}) is Way.REWRITE  # a broad table stays broad after a switch to modern
    assert MAPPING_ON_RENAME.column_change({}) is Way.ENABLE_MAPPING


def test_a_new_name_delta_refuses_without_column_mapping_cannot_be_rewritten() -> None:
    assert BROAD.column_change({}, ["new name"]) is Way.ENABLE_MAPPING
    assert BROAD.column_change({}, ["new_name"]) is Way.REWRITE


def test_type_widening_only_in_modern_mode_or_where_the_table_has_it() -> None:
    assert not BROAD.may_widen_types({})
    assert not BROAD.may_widen_types(CM_TABLE)
    assert BROAD.may_widen_types({"delta.enableTypeWidening": "true"})
    assert MODERN.may_widen_types(CM_TABLE)
    assert not MODERN.may_widen_types({})  # a table created broad stays readable by delta-rs and polars


def test_config_declares_both_keys_with_broad_rewrite_defaults(tmp_path: Path) -> None:
    rule = {"rule-type": "selection", "rule-id": "1", "rule-name": "all", "rule-action": "include",
            "object-locator": {"schema-name": "%", "table-name": "%"}}
    base = {"lake": {"root": str(tmp_path)}, "table_mappings": {"rules": [rule]}}
    config = parse_config(base, Path("p.yaml"))
    assert TableFeatures.of(config.lake) == BROAD
    config = parse_config({**base, "lake": {"root": str(tmp_path), "reader_compatibility": "modern",
                                           "on_column_rename": "column_mapping"}}, Path("p.yaml"))
    assert TableFeatures.of(config.lake) == TableFeatures(ReaderCompatibility.MODERN, ColumnChange.COLUMN_MAPPING)
    with pytest.raises(ConfigError, match="reader_compatibility"):
        parse_config({**base, "lake": {"root": str(tmp_path), "reader_compatibility": "legacy"}}, Path("p.yaml"))


def test_rewrite_plan_renames_in_order_drops_and_casts_after_the_renames() -> None:
    columns = ["id", "a", "b", "c", "_binlake_lsn", "_binlake_commit_ts"]
    plan = plan_columns(columns, [("a", "x"), ("x", "y"), ("b", "a")], ["C"], {"Y": "bigint"})
    assert plan == (NewColumn("id", "id"), NewColumn("a", "y", "bigint"), NewColumn("b", "a"),
                    NewColumn("_binlake_lsn", "_binlake_lsn"), NewColumn("_binlake_commit_ts", "_binlake_commit_ts"))
    assert plan[1].select_sql() == "CAST(`a` AS bigint) AS `y`"
    assert NewColumn("we`ird", "n").select_sql() == "`we``ird` AS `n`"


def test_rewrite_plan_of_a_change_already_done_keeps_the_table_as_it_is() -> None:
    assert plan_columns(["id", "y"], [("a", "y")], ["gone"]) == (NewColumn("id", "id"), NewColumn("y", "y"))


def test_stats_columns_are_read_quoted_or_bare() -> None:
    assert split_stats_columns("`näme key`,`we``ird`,`_binlake_lsn`") == ["näme key", "we`ird", "_binlake_lsn"]
    assert split_stats_columns("id, _binlake_lsn") == ["id", "_binlake_lsn"]
    assert split_stats_columns("") == []


def test_carried_properties_follow_the_columns_and_leave_the_protocol_to_delta() -> None:
    properties = {"delta.dataSkippingStatsColumns": "`id`,`k`,`_binlake_lsn`", "binlake.merge.schemaLsn": "42",
                  "delta.enableChangeDataFeed": "true", "delta.minReaderVersion": "3",
                  "delta.minWriterVersion": "7", "delta.feature.timestampNtz": "supported"}
    plan = plan_columns(["id", "k", "v", "_binlake_lsn"], [("id", "ident")], ["k"])
    assert carried_properties(properties, plan) == {
        "delta.dataSkippingStatsColumns": "`ident`,`_binlake_lsn`", "binlake.merge.schemaLsn": "42",
        "delta.enableChangeDataFeed": "true"}
    only_dropped = carried_properties({"delta.dataSkippingStatsColumns": "`k`"}, plan)
    assert "delta.dataSkippingStatsColumns" not in only_dropped
