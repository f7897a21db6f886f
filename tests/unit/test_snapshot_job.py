"""The full-load job's pure checks: no-primary-key policy, metadata-column clashes, arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from binlake.config import PipelineConfig, SparkConfig, parse_config
from binlake.rules import TableTarget
from binlake.snapshot.discovery import SourceColumn, SourceTable
from binlake.snapshot.job import FullLoadError, check_tables, job_spark_settings, parse_args
from binlake.typemap import ColumnType

INT = ColumnType("int")


def source_table(name: str, key: tuple[str, ...], columns: tuple[str, ...] = ("id",), engine: str = "InnoDB"
                 ) -> SourceTable:
    cols = tuple(SourceColumn(c, c, INT, True) for c in columns)
    return SourceTable(TableTarget("s", name, "s", name), cols, key, tuple(INT for _ in key), engine, 0, 0)


def config(policy: str) -> PipelineConfig:
    rules = {"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "all", "rule-action": "include",
                        "object-locator": {"schema-name": "%", "table-name": "%"}}]}
    return parse_config({"lake": {"root": "/tmp/lake"}, "table_mappings": rules,
                         "full_load": {"no_primary_key": policy}}, Path("t.yaml"))


def test_refuse_names_every_table_without_a_key() -> None:
    tables = [source_table("a", ()), source_table("b", ("id",)), source_table("c", ())]
    with pytest.raises(FullLoadError, match=r"2 selected table\(s\) have no primary key: s.a, s.c"):
        check_tables(tables, config("refuse"))


def test_load_whole_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="binlake.snapshot"):
        check_tables([source_table("a", ()), source_table("m", ("id",), engine="MyISAM")], config("load_whole"))
    assert "s.a has no primary key" in caplog.text
    assert "s.m uses the MyISAM engine" in caplog.text


def test_metadata_column_clash_is_refused() -> None:
    with pytest.raises(FullLoadError, match="_binlake_lsn"):
        check_tables([source_table("a", ("id",), ("id", "_binlake_lsn"))], config("refuse"))


def test_arguments() -> None:
    args = parse_args(["--config", "conf/demo.yaml", "--restart"])
    assert args.config == "conf/demo.yaml" and args.restart
    with pytest.raises(SystemExit):
        parse_args([])


def test_job_spark_settings_yield_to_the_config() -> None:
    settings = job_spark_settings(config("refuse"), 4)
    assert settings["spark.sql.readSideCharPadding"] == "false"
    assert settings["spark.databricks.delta.snapshotPartitions"] == "4"
    custom = config("refuse").model_copy(update={"spark": SparkConfig(conf={
        "spark.databricks.delta.snapshotPartitions": "50"})})
    assert "spark.databricks.delta.snapshotPartitions" not in job_spark_settings(custom, 4)
