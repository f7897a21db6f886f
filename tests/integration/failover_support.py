"""Two private MariaDB servers on loopback in GTID replication, for the failover tests.

``primary`` (server_id 11) and ``replica`` (server_id 12) both run with ``gtid_strict_mode`` and
``log_slave_updates``, so the replica's own binlog holds the primary's transactions under their
original GTIDs — what a promoted replica offers a capture after a failover. The primary's binlog
numbers are pushed ahead (``FLUSH BINARY LOGS``) so that file/offset positions of the two servers
are unrelated, as they are in production.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from capture_support import wait_for

from binlake.capture.checkpoint import load_checkpoint
from binlake.config import PipelineConfig, parse_config
from binlake.devdb import LocalMariaDB, free_port
from binlake.lake import Lake
from binlake.positions import BinlogPosition

REPLICATION_CNF = "gtid_strict_mode = ON\nlog_slave_updates = ON\n"
PRIMARY_ID, REPLICA_ID = 11, 12


@contextmanager
def server_pair(root: Path, flushes: int = 4) -> Iterator[tuple[LocalMariaDB, LocalMariaDB]]:
    """``(primary, replica)`` replicating by GTID (``MASTER_USE_GTID=slave_pos``); both stopped at exit."""
    primary = LocalMariaDB(root / "primary", free_port(), server_id=PRIMARY_ID, extra_cnf=REPLICATION_CNF)
    replica = LocalMariaDB(root / "replica", free_port(), server_id=REPLICA_ID, extra_cnf=REPLICATION_CNF)
    primary.start()
    try:
        replica.start()
        try:
            for _ in range(flushes):
                primary.execute("FLUSH BINARY LOGS")
            replica.execute("RESET MASTER")  # drop the replica's own start-up GTIDs: strict mode
            replica.execute("SET GLOBAL gtid_slave_pos = ''")
            replica.execute(f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={primary.port}, "
                            "MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos")
            replica.execute("START SLAVE")
            wait_caught_up(primary, replica)
            yield primary, replica
        finally:
            replica.stop()
    finally:
        primary.stop()


def gtid_pos(db: LocalMariaDB) -> str:
    return str(db.execute("SELECT @@GLOBAL.gtid_binlog_pos")[0][0] or "")


def wait_caught_up(primary: LocalMariaDB, replica: LocalMariaDB, timeout: float = 30) -> None:
    """Until the replica has executed everything the primary has binlogged."""
    target = gtid_pos(primary)

    def done() -> bool:
        status = replica.execute("SELECT @@GLOBAL.gtid_slave_pos")[0][0]
        return str(status or "") == target

    wait_for(done, timeout, f"the replica to reach {target}")


def promote(replica: LocalMariaDB) -> None:
    """What a manual / orchestrator promotion does: stop replicating, forget the primary."""
    replica.execute("STOP SLAVE")
    replica.execute("RESET SLAVE ALL")


def pipeline(lake_root: Path, server: LocalMariaDB, database: str, port: int | None = None,
             **capture: Any) -> PipelineConfig:
    """A pipeline reading ``server`` (root, no password; through ``port`` if given) into ``lake_root``."""
    return parse_config({
        "name": "failover",
        "source": {"host": "127.0.0.1", "port": port or server.port, "user": "root", "password_env": None,
                   "server_id": 950, "read_timeout_s": 10},
        "lake": {"root": str(lake_root)},
        "table_mappings": {"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "db",
                                      "object-locator": {"schema-name": database, "table-name": "%"},
                                      "rule-action": "include"}]},
        "full_load": {"chunk_rows": 50},
        "capture": {"flush_seconds": 0.2, **capture},
        "merge": {"optimize_every_batches": 0},
        "spark": {"master": "local[2]"},
    }, Path("failover.yaml"))


def end_of(db: LocalMariaDB) -> BinlogPosition:
    file, pos = db.execute("SHOW MASTER STATUS")[0][:2]
    return BinlogPosition.of(str(file), int(str(pos)))


def checkpoint_at(config: PipelineConfig, server: LocalMariaDB, epoch: int) -> Any:
    """A predicate: the capture checkpoint covers ``server``'s current binlog end, in ``epoch``."""
    target = end_of(server).in_epoch(epoch)
    lake = Lake.from_config(config)

    def reached() -> bool:
        checkpoint = load_checkpoint(lake)
        return checkpoint is not None and checkpoint.position.lsn >= target.lsn

    return reached


def run_sql(db: LocalMariaDB, database: str, *statements: str) -> None:
    """Each statement in its own autocommit transaction."""
    with db.connect(database) as conn, conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)


def table_rows(db: LocalMariaDB, database: str, table: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.execute(f"SELECT * FROM `{database}`.`{table}` ORDER BY id")]


class TcpProxy:
    """A loopback TCP forwarder standing in for a VIP or a DNS name: :meth:`retarget` points it at
    another server and cuts every open connection, as a failover behind one address does."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def retarget(self, port: int) -> None:
        self.target_port = port
        with self._lock:
            connections, self._open = self._open, []
        for s in connections:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.retarget(self.target_port)
        self._listener.close()
