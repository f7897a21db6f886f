"""A private MariaDB server on its own datadir and loopback port, for the demo and the tests.

It is configured the way binlake needs a source to be: binlog in ROW format with FULL row image and
FULL row metadata, GTIDs, UTC. It is started from Debian's ``mariadb-server`` binaries
(``mariadb-install-db`` + ``mariadbd``), as the current user, with no system service involved.

Usage::

    with LocalMariaDB(Path(".run/db"), port=33306) as db:
        db.execute("CREATE DATABASE shop")
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import pymysql

from binlake.devproc import free_port, stop_process

__all__ = ["LocalMariaDB", "free_port"]

MY_CNF = """\
[mariadbd]
datadir = {datadir}
socket = {datadir}/mariadb.sock
pid-file = {datadir}/mariadb.pid
port = {port}
bind-address = 127.0.0.1
skip-name-resolve
server-id = {server_id}
log-bin = {datadir}/binlog
binlog_format = ROW
binlog_row_image = FULL
binlog_row_metadata = FULL
binlog_checksum = CRC32
max_binlog_size = {max_binlog_size}
gtid_domain_id = 0
default-time-zone = '+00:00'
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
sql_mode = STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION
innodb_buffer_pool_size = 512M
innodb_log_file_size = 256M
innodb_flush_log_at_trx_commit = 2
sync_binlog = 0
secure-file-priv = {datadir}/outfile
tmpdir = {datadir}/tmp
max_allowed_packet = 256M
max_connections = 300
log-error = {datadir}/mariadb.err
"""


def _find_binary(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(f"{name} not found: install Debian's mariadb-server (`make setup` does it)")


class LocalMariaDB:
    """A MariaDB server owned by this process. ``root`` has no password on loopback."""

    def __init__(
        self,
        datadir: Path,
        port: int,
        server_id: int = 1,
        max_binlog_size: int = 64 * 1024 * 1024,
        extra_cnf: str = "",
    ) -> None:
        """``extra_cnf``: more ``[mariadbd]`` lines, e.g. ``log_slave_updates = ON`` for a replica."""
        self.datadir = datadir.resolve()
        self.extra_cnf = extra_cnf
        self.port = port
        self.server_id = server_id
        self.max_binlog_size = max_binlog_size
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def cnf_path(self) -> Path:
        return self.datadir.parent / f"{self.datadir.name}.cnf"

    @property
    def outfile_dir(self) -> Path:
        """The folder ``SELECT ... INTO OUTFILE`` may write to (``secure-file-priv``)."""
        return self.datadir / "outfile"

    def _write_cnf(self) -> None:
        self.cnf_path.write_text(
            MY_CNF.format(
                datadir=self.datadir,
                port=self.port,
                server_id=self.server_id,
                max_binlog_size=self.max_binlog_size,
            )
            + (self.extra_cnf.strip() + "\n" if self.extra_cnf.strip() else "")
        )

    def install(self) -> None:
        """Create the datadir with system tables if it does not exist yet."""
        self.datadir.parent.mkdir(parents=True, exist_ok=True)
        self._write_cnf()
        if (self.datadir / "mysql").is_dir():
            return
        self.datadir.mkdir(parents=True, exist_ok=True)
        self.outfile_dir.mkdir(exist_ok=True)
        (self.datadir / "tmp").mkdir(exist_ok=True)
        subprocess.run(
            [
                _find_binary("mariadb-install-db"),
                f"--defaults-file={self.cnf_path}",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
        )

    def start(self, timeout: float = 60.0) -> None:
        """Start the server (installing the datadir first if needed) and wait until it answers."""
        self.install()
        self.outfile_dir.mkdir(exist_ok=True)
        (self.datadir / "tmp").mkdir(exist_ok=True)  # own tmpdir: servers never delete each other's temp files
        self.process = subprocess.Popen(
            [_find_binary("mariadbd"), f"--defaults-file={self.cnf_path}", "--user=root"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.datadir / "mariadb.err").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"mariadbd exited with {self.process.returncode}:\n{log}")
            try:
                self.connect().close()
                self._grant_root_remote()
                return
            except pymysql.err.OperationalError:
                time.sleep(0.2)
        raise TimeoutError(f"MariaDB on port {self.port} did not start within {timeout}s")

    def _grant_root_remote(self) -> None:
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''")
            cur.execute("GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")

    def stop(self, hard: bool = False) -> None:
        """Stop the server: SIGTERM (clean shutdown) or, with ``hard``, SIGKILL."""
        if self.process is None:
            return
        stop_process(self.process, hard, timeout=60)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def connect(self, database: str | None = None, autocommit: bool = True) -> Any:
        """A new pymysql connection as root over the unix socket."""
        return pymysql.connect(
            unix_socket=str(self.datadir / "mariadb.sock"),
            user="root",
            database=database,
            charset="utf8mb4",
            autocommit=autocommit,
        )

    def execute(self, sql: str, database: str | None = None) -> list[tuple[object, ...]]:
        """Run one statement and return its rows."""
        with self.connect(database) as conn, conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())

    def load_sql_file(self, path: Path, database: str) -> None:
        """Load a SQL script with the ``mariadb`` client (handles DELIMITER, comments, etc.)."""
        with path.open("rb") as script:
            subprocess.run(
                [
                    _find_binary("mariadb"),
                    "--user=root",
                    f"--socket={self.datadir / 'mariadb.sock'}",
                    "--default-character-set=utf8mb4",
                    "--force",
                    database,
                ],
                stdin=script,
                check=True,
                capture_output=True,
            )

    def __enter__(self) -> LocalMariaDB:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
