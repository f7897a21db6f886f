"""RDS / Aurora realities played on MariaDB: the pre-flight of a user without SUPER (what RDS's
master user is), the binlog retention report and warning, and the full_load.source override
(accepted for another endpoint of the captured server, refused for another server)."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from capture_support import CaptureThread, checkpoint_reached, master_position, wait_for
from conftest import include_schema_rules

from binlake import source as src
from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB, free_port
from binlake.retention import check_retention
from binlake.snapshot.job import FullLoadError, run_full_load

MakeConfig = Callable[..., PipelineConfig]


@pytest.fixture
def no_super_user(mariadb: LocalMariaDB) -> Iterator[str]:
    """A user with only SELECT, REPLICATION SLAVE and REPLICATION CLIENT (BINLOG MONITOR on MariaDB);
    its password is in BINLAKE_TEST_RDS_PASSWORD."""
    password = secrets.token_urlsafe(12)
    mariadb.execute("DROP USER IF EXISTS 'rds_like'@'127.0.0.1'")
    mariadb.execute(f"CREATE USER 'rds_like'@'127.0.0.1' IDENTIFIED BY '{password}'")
    mariadb.execute("GRANT SELECT, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'rds_like'@'127.0.0.1'")
    os.environ["BINLAKE_TEST_RDS_PASSWORD"] = password
    yield "rds_like"
    os.environ.pop("BINLAKE_TEST_RDS_PASSWORD", None)
    mariadb.execute("DROP USER IF EXISTS 'rds_like'@'127.0.0.1'")


def test_preflight_and_retention_without_super(
    mariadb: LocalMariaDB, make_config: MakeConfig, no_super_user: str, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = make_config(tmp_path / "lake", include_schema_rules("mysql"),
                         source={"user": no_super_user, "password_env": "BINLAKE_TEST_RDS_PASSWORD"})
    grants = " ".join(str(row[0]) for row in mariadb.execute("SHOW GRANTS FOR 'rds_like'@'127.0.0.1'"))
    assert "SUPER" not in grants and "ALL" not in grants
    previous = mariadb.execute("SELECT @@GLOBAL.binlog_expire_logs_seconds")[0][0]
    try:
        with src.connect(config.source) as conn, caplog.at_level(logging.INFO, logger="binlake"):
            src.check_binlog_settings(conn)
            src.check_grants(conn, need_replication=True)
            assert src.master_position(conn).pos > 0
            assert check_retention(conn, 24).hours is None  # the test server never expires binlogs
            mariadb.execute("SET GLOBAL binlog_expire_logs_seconds = 7200")
            retention = check_retention(conn, 24)
    finally:
        mariadb.execute(f"SET GLOBAL binlog_expire_logs_seconds = {previous}")
    assert retention.hours == 2 and retention.setting == "binlog_expire_logs_seconds = 7200"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("keeps its binlogs only 2 h" in w and "min_binlog_retention_hours = 24" in w for w in warnings)
    assert "no automatic expiry" in caplog.text


@pytest.mark.spark
@pytest.mark.slow  # starts a second server
def test_full_load_source_override(
    mariadb: LocalMariaDB, make_config: MakeConfig, source_db: str, spark: Any, tmp_path: Path,
) -> None:
    mariadb.execute("CREATE TABLE t (id INT PRIMARY KEY, v INT)", source_db)
    mariadb.execute("INSERT INTO t VALUES (1, 10), (2, 20)", source_db)
    config = make_config(tmp_path / "lake", include_schema_rules(source_db), capture={"start": "end"})
    with_capture = CaptureThread(config).start()  # registers the captured history
    wait_for(lambda: with_capture.error is not None or checkpoint_reached(config, master_position(mariadb))(), 30,
             "the capture to start")
    with_capture.stop()

    other = LocalMariaDB(tmp_path / "other" / "data", free_port(), server_id=77)
    other.start()
    try:
        other.execute(f"CREATE DATABASE `{source_db}`")
        other.execute("CREATE TABLE t (id INT PRIMARY KEY, v INT)", source_db)
        elsewhere = config.model_copy(update={"full_load": config.full_load.model_copy(
            update={"source": config.source.model_copy(update={"port": other.port})})})
        with pytest.raises(FullLoadError, match=r"server_id 77.*full_load\.source points the full load at another"):
            run_full_load(elsewhere, spark)
    finally:
        other.stop()

    same_server = config.model_copy(update={"full_load": config.full_load.model_copy(
        update={"source": config.source.model_copy(update={"host": "localhost"})})})
    reports = run_full_load(same_server, spark)
    assert [(r.status, r.rows) for r in reports] == [("complete", 2)]
