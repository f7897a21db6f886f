"""The signal table of the watermark method: its name, the rule that keeps it out of the lake, the
settings that would defeat it, and the order that makes the low watermark exact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from binlake.config import ConfigError, parse_config
from binlake.positions import BinlogPosition
from binlake.rules import TableMapping
from binlake.snapshot.signal import (
    SignalTable,
    filtered_out,
    literal_locator,
    low_watermark_before,
    settings_problems,
    with_exclusion,
)

SIGNAL = SignalTable("binlake", "binlake_signal")
EVERYTHING = {"rules": [{"rule-type": "selection", "rule-id": "7", "rule-name": "all",
                         "object-locator": {"schema-name": "%", "table-name": "%"}, "rule-action": "include"}]}


def _config(**full_load: Any) -> dict[str, Any]:
    return {"lake": {"root": "/tmp/lake"}, "table_mappings": EVERYTHING, "full_load": full_load}


def test_parse() -> None:
    assert SignalTable.parse("") is None and SignalTable.parse("  ") is None
    assert SignalTable.parse(" binlake.binlake_signal ") == SIGNAL
    assert SIGNAL.qualified == "`binlake`.`binlake_signal`"
    for bad in ("binlake", ".t", "s.", "a.b.c", "`s`.t", "s." + "t" * 65):
        with pytest.raises(ValueError, match=r"<schema>\.<table>"):
            SignalTable.parse(bad)


def test_the_config_refuses_a_malformed_name_by_key() -> None:
    with pytest.raises(ConfigError, match=r"full_load.signal_table.*<schema>\.<table>"):
        parse_config(_config(signal_table="just_a_table"), Path("p.yaml"))


def test_the_signal_table_is_never_selected_whatever_the_mapping() -> None:
    config = parse_config(_config(signal_table="binlake.binlake_signal"), Path("p.yaml"))
    mapping = TableMapping.parse(config.table_mappings)
    assert not mapping.is_selected("binlake", "binlake_signal")
    assert mapping.target_for("binlake", "binlake_signal") is None
    # the exclusion is literal: '_' is a DMS wildcard, so an unescaped locator would exclude these too
    assert mapping.is_selected("binlake", "binlakeXsignal") and mapping.is_selected("binlake", "binlake_signals")
    assert mapping.is_selected("shop", "binlake_signal") and mapping.is_selected("binlake", "orders")
    # validating the config again (model_copy, re-parse) does not add the rule twice
    again = type(config).model_validate(config.model_dump())
    assert again.table_mappings == config.table_mappings
    assert [r["rule-id"] for r in config.table_mappings["rules"]] == ["7", "8"]


def test_without_a_signal_table_the_mapping_is_the_users() -> None:
    assert parse_config(_config(), Path("p.yaml")).table_mappings == EVERYTHING


def test_literal_locators_escape_the_wildcard_syntax() -> None:
    assert literal_locator("a_b%c[d") == "a[_]b[%]c[[]d"
    rules = with_exclusion(EVERYTHING, SignalTable("x%y", "t[1]_z"))
    mapping = TableMapping.parse(rules)
    assert not mapping.is_selected("x%y", "t[1]_z")
    assert mapping.is_selected("xAy", "t[1]_z") and mapping.is_selected("x%y", "t1_z")


def test_binlog_filters() -> None:
    assert not filtered_out("binlake", "", "")
    assert filtered_out("binlake", "shop,crm", "")  # binlog-do-db lists other schemas only
    assert not filtered_out("binlake", "shop, binlake", "")
    assert filtered_out("binlake", "", "binlake")
    assert not filtered_out("binlake", "", "binlake_old")


@pytest.mark.parametrize(("mariadb", "order_commits", "sql_log_bin", "do_db", "problem"), [
    (False, "ON", "1", "", None),
    (True, None, "1", "", None),  # MariaDB has no binlog_order_commits: commit_ordered runs in binlog order
    (False, "OFF", "1", "", "binlog_order_commits is OFF"),
    (False, None, "1", "", "does not show binlog_order_commits"),
    (False, "ON", "0", "", "sql_log_bin is off"),
    (False, "ON", "1", "shop", "keeps schema 'binlake' out of the binlog"),
])
def test_settings_that_defeat_the_barrier(mariadb: bool, order_commits: str | None, sql_log_bin: str,
                                          do_db: str, problem: str | None) -> None:
    problems = settings_problems(SIGNAL, mariadb, order_commits, sql_log_bin, do_db, "")
    assert problems == [] if problem is None else (len(problems) == 1 and problem in problems[0])


def test_the_label_is_read_before_the_signal_is_committed() -> None:
    events: list[str] = []
    end = BinlogPosition.of("binlog.000009", 1234, epoch=1)

    def read_end() -> BinlogPosition:
        events.append("read")
        return end

    def commit_signal() -> None:
        events.append("signal")

    assert low_watermark_before(read_end, commit_signal) == end
    assert events == ["read", "signal"]


def test_the_signal_always_changes_its_row_and_names_its_grant() -> None:
    sql = SIGNAL.upsert_sql()
    assert sql.startswith("INSERT INTO `binlake`.`binlake_signal`") and "ON DUPLICATE KEY UPDATE token = %s" in sql
    assert "VALUES(" not in sql.partition("UPDATE")[2].replace(" ", "")  # VALUES() there: deprecated in MySQL 8.0.20
    assert "ENGINE=InnoDB" in SIGNAL.create_sql()
    assert "GRANT SELECT, INSERT, UPDATE ON `binlake`.`binlake_signal` TO 'u'@'%'" in SIGNAL.setup_help("'u'@'%'")
