"""Grant parsing and binlog settings for the pre-flight checks (binlake.source, pure parts)."""

from __future__ import annotations

from binlake.source import (
    BINLOG_SETTINGS,
    binlog_settings_problems,
    describe_binlog_settings,
    missing_privileges,
    parse_grants,
    purged_message,
)


def test_grants_with_mariadb_names_and_roles() -> None:
    scopes, roles = parse_grants([
        "GRANT SELECT, RELOAD, BINLOG MONITOR, REPLICATION SLAVE ON *.* TO `binlake`@`%` IDENTIFIED BY PASSWORD '*X'",
        "GRANT `cdc_role` TO `binlake`@`%`",
    ])
    assert scopes["*.*"] >= {"SELECT", "REPLICATION SLAVE", "BINLOG MONITOR"}
    assert roles == ["cdc_role"]
    assert missing_privileges(scopes, need_replication=True) == []


def test_missing_privileges_are_named() -> None:
    scopes, _ = parse_grants(["GRANT USAGE ON *.* TO `u`@`%`", "GRANT SELECT ON `shop`.* TO `u`@`%`"])
    assert missing_privileges(scopes, need_replication=True) == ["REPLICATION SLAVE", "REPLICATION CLIENT"]
    assert missing_privileges(scopes, need_replication=False) == []
    scopes, _ = parse_grants(["GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `u`@`%`"])
    assert missing_privileges(scopes, need_replication=True) == ["SELECT"]
    scopes, _ = parse_grants(["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"])
    assert missing_privileges(scopes, need_replication=True) == []


def test_purged_message_says_a_new_full_load_is_required() -> None:
    assert "new full load is required" in purged_message("binlog.000001:4", "gone")


# --- binlog settings (check_binlog_settings' pure part) -------------------------------------------

MYSQL_8_0 = {  # SHOW GLOBAL VARIABLES of a MySQL 8.0.36 server set up for binlake (MySQL's documented names)
    "version": "8.0.36", "log_bin": "ON", "binlog_format": "ROW", "binlog_row_image": "FULL",
    "binlog_row_metadata": "FULL", "binlog_checksum": "CRC32", "log_bin_compress": None,
    "log_bin_compress_min_len": None, "binlog_transaction_compression": "OFF", "binlog_row_value_options": "",
    "gtid_mode": "ON", "enforce_gtid_consistency": "ON", "gtid_strict_mode": None, "gtid_domain_id": None,
    "encrypt_binlog": None, "binlog_encryption": "OFF",
}
MARIADB_10_11 = {  # the same on MariaDB 10.11 with log_bin_compress on
    "version": "10.11.19-MariaDB-log", "log_bin": "ON", "binlog_format": "ROW", "binlog_row_image": "FULL",
    "binlog_row_metadata": "FULL", "binlog_checksum": "CRC32", "log_bin_compress": "ON",
    "log_bin_compress_min_len": "10", "binlog_transaction_compression": None, "binlog_row_value_options": None,
    "gtid_mode": None, "enforce_gtid_consistency": None, "gtid_strict_mode": "OFF", "gtid_domain_id": "0",
    "encrypt_binlog": "OFF", "binlog_encryption": None,
}


def test_a_well_set_mysql_or_mariadb_server_passes_and_every_setting_is_reported() -> None:
    assert set(MYSQL_8_0) == set(MARIADB_10_11) == set(BINLOG_SETTINGS)
    assert binlog_settings_problems(MYSQL_8_0) == []
    assert binlog_settings_problems(MARIADB_10_11) == []
    line = describe_binlog_settings(MARIADB_10_11)
    assert "log_bin_compress=ON" in line and "binlog_row_metadata=FULL" in line and "encrypt_binlog=OFF" in line
    assert line.endswith("(not on this server: binlog_transaction_compression, binlog_row_value_options, "
                         "gtid_mode, enforce_gtid_consistency, binlog_encryption)")
    assert "binlog_row_value_options=''" in describe_binlog_settings(MYSQL_8_0)


def test_mysql_transaction_compression_and_partial_json_are_refused_by_name_with_the_fix() -> None:
    problems = binlog_settings_problems({**MYSQL_8_0, "binlog_transaction_compression": "ON",
                                         "binlog_row_value_options": "PARTIAL_JSON"})
    assert len(problems) == 2
    assert problems[0].startswith("binlog_transaction_compression is ON, binlake needs OFF: "
                                  "SET GLOBAL binlog_transaction_compression=OFF")
    assert "SET SESSION binlog_transaction_compression=ON" in problems[0]
    assert problems[1].startswith("binlog_row_value_options is PARTIAL_JSON, binlake needs it empty: "
                                  "SET GLOBAL binlog_row_value_options=''")


def test_required_settings_are_refused_on_either_server_and_missing_ones_named() -> None:
    assert binlog_settings_problems({**MYSQL_8_0, "binlog_row_metadata": "MINIMAL"}) == [
        "binlog_row_metadata is MINIMAL, binlake needs FULL: SET GLOBAL binlog_row_metadata=FULL and "
        "binlog_row_metadata=FULL in my.cnf (needs MariaDB >= 10.5 or MySQL >= 8.0.14)"]
    old = {**MARIADB_10_11, "binlog_row_metadata": None, "binlog_format": "MIXED"}
    assert [p.split(":")[0] for p in binlog_settings_problems(old)] == [
        "binlog_format is MIXED, binlake needs ROW",
        "binlog_row_metadata is missing (server too old), binlake needs FULL"]
