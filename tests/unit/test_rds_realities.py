"""RDS / Aurora realities without a server: binlog retention from recorded values, the PARTIAL_JSON
refusal by name, and the full_load.source override (pure parts)."""

from __future__ import annotations

from pathlib import Path

from binlake.config import PipelineConfig, parse_config
from binlake.retention import Retention, retention_from, retention_warning
from binlake.snapshot.job import full_load_view
from binlake.source import binlog_settings_problems

NO_VARIABLES: dict[str, str | None] = {"binlog_expire_logs_seconds": None, "expire_logs_days": None}


def test_rds_retention_hours_win_over_the_variables() -> None:
    retention = retention_from("168", True, {"binlog_expire_logs_seconds": "2592000", "expire_logs_days": "0"})
    assert retention.hours == 168 and "rds_configuration" in retention.setting
    assert retention_warning(retention, 24) is None


def test_rds_null_retention_is_as_short_as_possible_and_warned() -> None:
    retention = retention_from(None, True, NO_VARIABLES)
    assert retention.hours == 0
    warning = retention_warning(retention, 24)
    assert warning is not None and "rds_set_configuration('binlog retention hours', 168)" in warning
    assert "capture.min_binlog_retention_hours = 24" in warning


def test_mysql8_and_mariadb_expiry_variables() -> None:
    assert retention_from(None, False, {"binlog_expire_logs_seconds": "2592000", "expire_logs_days": "0"}).hours \
        == 720  # MySQL 8's default: 30 days
    assert retention_from(None, False, {"binlog_expire_logs_seconds": "0", "expire_logs_days": "7.000000"}).hours \
        == 168  # MariaDB prints expire_logs_days as a decimal
    assert retention_from(None, False, {"binlog_expire_logs_seconds": None, "expire_logs_days": "3"}).hours == 72
    never = retention_from(None, False, {"binlog_expire_logs_seconds": "0", "expire_logs_days": "0"})
    assert never.hours is None and retention_warning(never, 24) is None and "no automatic expiry" in never.describe()


def test_short_expiry_is_warned_with_the_margin() -> None:
    short = retention_from(None, False, {"binlog_expire_logs_seconds": "3600", "expire_logs_days": "0"})
    assert short == Retention(1.0, "binlog_expire_logs_seconds = 3600")
    assert "only 1 h" in (retention_warning(short, 24) or "")
    assert retention_warning(short, 0.5) is None


def test_partial_json_is_refused_by_name_and_mariadb_lacks_the_setting() -> None:
    base = {"log_bin": "ON", "binlog_format": "ROW", "binlog_row_image": "FULL", "binlog_row_metadata": "FULL"}
    problems = binlog_settings_problems({**base, "binlog_row_value_options": "PARTIAL_JSON",
                                         "binlog_transaction_compression": "OFF"})
    assert len(problems) == 1 and problems[0].startswith("binlog_row_value_options is PARTIAL_JSON")
    assert binlog_settings_problems({**base, "binlog_row_value_options": None}) == []  # MariaDB


def _config(**full_load: object) -> PipelineConfig:
    return parse_config({"source": {"host": "primary.example", "password_env": None},
                         "lake": {"root": "/tmp/lake"}, "table_mappings": {"rules": [
                             {"rule-type": "selection", "rule-id": "1", "rule-name": "a",
                              "object-locator": {"schema-name": "s", "table-name": "%"}, "rule-action": "include"}]},
                         "full_load": full_load}, Path("x.yaml"))


def test_full_load_source_override_replaces_only_the_full_loads_source() -> None:
    plain = _config()
    assert full_load_view(plain) is plain
    overridden = _config(source={"host": "reader.example", "port": 3307, "password_env": None,
                                 "tls": {"mode": "required"}})
    view = full_load_view(overridden)
    assert (view.source.host, view.source.port, view.source.tls.mode.value) == ("reader.example", 3307, "required")
    assert overridden.source.host == "primary.example"
