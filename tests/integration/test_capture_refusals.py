"""The capture refuses to start, or stops, with a message naming the problem: wrong binlog settings,
missing grants, purged binlog, unreachable source, clashing server_id. Passwords never appear.

Settings and PURGE BINARY LOGS are exercised on a dedicated server so no other test sees them.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from capture_support import capture_range, master_position, write_config
from conftest import include_schema_rules

from binlake.capture.runner import CaptureRunner
from binlake.config import ConfigError, PipelineConfig, parse_config
from binlake.devdb import LocalMariaDB, free_port
from binlake.source import BinlogPurgedError, SourceGrantsError, SourceSettingsError, SourceUnreachableError

MakeConfig = Callable[..., PipelineConfig]


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMariaDB]:
    server = LocalMariaDB(tmp_path_factory.mktemp("refusals") / "data", free_port(), server_id=7,
                          max_binlog_size=4096)
    server.start()
    server.execute("CREATE DATABASE shop")
    server.execute("CREATE TABLE shop.t (id INT PRIMARY KEY)")
    yield server
    server.stop()


def purge_binlogs_before(db: LocalMariaDB, file: str, timeout: float = 60) -> None:
    """``PURGE BINARY LOGS TO file`` until it took effect.

    MariaDB silently keeps a binlog that InnoDB crash recovery may still need, until the
    asynchronous binlog checkpoint has moved past it; a PURGE right after a rotation can be a no-op.
    """
    deadline = time.monotonic() + timeout
    while True:
        db.execute(f"PURGE BINARY LOGS TO '{file}'")
        oldest = str(db.execute("SHOW BINARY LOGS")[0][0])
        if oldest == file:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"PURGE BINARY LOGS TO '{file}' still leaves {oldest} after {timeout}s")
        time.sleep(0.2)


def config_for(db: LocalMariaDB, lake: Path, **capture: Any) -> PipelineConfig:
    return parse_config({
        "source": {"host": "127.0.0.1", "port": db.port, "user": "root", "password_env": None, "server_id": 77},
        "lake": {"root": str(lake)}, "table_mappings": include_schema_rules("shop"),
        "capture": {"flush_seconds": 0.2, **capture},
    }, Path("refusals.yaml"))


@pytest.mark.parametrize(("variable", "value"), [("binlog_format", "STATEMENT"), ("binlog_format", "MIXED"),
                                                 ("binlog_row_image", "MINIMAL"), ("binlog_row_metadata", "MINIMAL")])
def test_wrong_binlog_settings_are_refused_by_name(own_server: LocalMariaDB, tmp_path: Path, variable: str,
                                                   value: str) -> None:
    own_server.execute(f"SET GLOBAL {variable} = '{value}'")
    try:
        with pytest.raises(SourceSettingsError, match=f"{variable} is {value}, binlake needs"):
            CaptureRunner(config_for(own_server, tmp_path)).preflight()
    finally:
        own_server.execute(f"SET GLOBAL {variable} = DEFAULT" if variable == "binlog_format" else
                           f"SET GLOBAL {variable} = 'FULL'")
        own_server.execute("SET GLOBAL binlog_format = 'ROW'")


def test_purged_binlog_stops_with_a_full_load_message(own_server: LocalMariaDB, tmp_path: Path) -> None:
    config = config_for(own_server, tmp_path / "lake")
    own_server.execute("INSERT INTO shop.t VALUES (1)")
    capture_range(config, master_position(own_server))          # checkpoint at the current end
    for i in range(2, 40):                                       # small max_binlog_size: several rotations
        own_server.execute(f"INSERT INTO shop.t VALUES ({i})")
    own_server.execute("FLUSH BINARY LOGS")
    current = master_position(own_server).file
    purge_binlogs_before(own_server, current)
    with pytest.raises(BinlogPurgedError, match="a new full load is required"):
        CaptureRunner(config).preflight()
    config_path = write_config(config, tmp_path / "capture.yaml")
    result = subprocess.run([".venv/bin/binlake", "capture", "--config", str(config_path)],
                            cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "no longer has the binlog" in result.stderr and "new full load is required" in result.stderr


def test_explicit_position_in_a_purged_file_is_refused(own_server: LocalMariaDB, tmp_path: Path) -> None:
    own_server.execute("FLUSH BINARY LOGS")
    purge_binlogs_before(own_server, master_position(own_server).file)
    config = config_for(own_server, tmp_path, start="position", start_file="binlog.000001", start_pos=4)
    with pytest.raises(BinlogPurgedError, match=r"binlog\.000001"):
        CaptureRunner(config).preflight()


def test_missing_replication_grants_are_named_and_the_password_never_logged(
    mariadb: LocalMariaDB, lake_dir: Path, make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "s3cr3t-Pa55"
    mariadb.execute("CREATE USER IF NOT EXISTS 'weak'@'127.0.0.1' IDENTIFIED BY 's3cr3t-Pa55'")
    mariadb.execute("GRANT SELECT ON *.* TO 'weak'@'127.0.0.1'")
    monkeypatch.setenv("WEAK_PASSWORD", secret)
    config = make_config(lake_dir, include_schema_rules("x"), source={"user": "weak", "password_env": "WEAK_PASSWORD"})
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SourceGrantsError, match="REPLICATION SLAVE, REPLICATION CLIENT") as error:
        CaptureRunner(config).preflight()
    monkeypatch.setenv("WEAK_PASSWORD", "wrong-" + secret)
    with pytest.raises(SourceUnreachableError, match="Access denied") as denied:
        CaptureRunner(config).preflight()
    assert secret not in str(error.value) + str(denied.value) + caplog.text


def test_unreachable_source_and_clashing_server_id(
    mariadb: LocalMariaDB, lake_dir: Path, make_config: MakeConfig
) -> None:
    config = make_config(lake_dir, include_schema_rules("x"), source={"port": free_port(), "connect_timeout_s": 2})
    with pytest.raises(SourceUnreachableError, match="cannot connect to source"):
        CaptureRunner(config).preflight()
    clash = make_config(lake_dir, include_schema_rules("x"), source={"server_id": 1})
    with pytest.raises(ConfigError, match="server_id"):
        CaptureRunner(clash).preflight()
