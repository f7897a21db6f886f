"""Grant parsing for the pre-flight checks (binlake.source, pure parts)."""

from __future__ import annotations

from binlake.source import missing_privileges, parse_grants, purged_message


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
