"""A replica full load labelled by a signal committed on the primary: exact on MySQL, no settle wait.

With ``full_load.source`` a replica of the captured primary, ``full_load.signal_table`` set and the
watermark method (always on MySQL; forced with ``full_load.snapshot_method: watermark`` elsewhere),
each chunk's label is taken as::

    1. W = the PRIMARY's binlog end (SHOW MASTER STATUS / SHOW BINARY LOG STATUS), in the capture's epoch
    2. commit a signal with a fresh token on the PRIMARY (binlake.snapshot.signal)
    3. poll the REPLICA until the signal row carries that token (full_load.replica_wait_seconds)
    4. only then the chunk's consistent snapshot starts on the replica; its rows are labelled W

Why that is exact — every transaction ``T`` at or before ``W`` is in the replica's snapshot: on the
primary, ``T`` precedes the signal ``G`` in binlog order (``W`` was read before ``G`` was written;
:mod:`binlake.snapshot.signal`). The replica applies the primary's transactions in binlog order and
commits them in that order — always with one applier thread, and with a multi-threaded applier when
``replica_preserve_commit_order = ON`` (MySQL 8.0.27+'s default; MariaDB's parallel replication
commits in order within a replication domain). So once ``G`` is visible on the replica, ``T`` is
committed there, and a snapshot started after that sees it. What a snapshot holds beyond ``W`` carries
change-log records above the label, applied on top by the merge's per-row guard — exactly the
watermark method's argument (docs/full-load.md), with the replica's apply order in place of the
primary's commit order. The labels are the primary's positions; no GTID translation, change-log scan
or running capture is needed.

What would break it is refused at start (:func:`order_problems`, with
:func:`binlake.snapshot.replica.replica_problems` and :func:`binlake.snapshot.signal.prepare` on the
primary): a parallel applier that may commit out of order, a replica of another server, a replication
filter. A signal that never appears on the replica (lag, a stopped applier, a filter on the signal's
schema that the status does not show) stops the chunk after ``full_load.replica_wait_seconds`` with
those causes named (:func:`wait_visible`).

Pure except :meth:`SignalledLabeller.__call__`, :func:`token_on`, :func:`replica_status` and
:func:`open_signalled_replica`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pymysql

from binlake.capture.history import History, Registry
from binlake.config import PipelineConfig, SnapshotMethod
from binlake.gtidset import GtidSet, GtidSetError
from binlake.positions import BinlogPosition
from binlake.snapshot.replica import ReplicaError, ReplicaFacts, replica_facts, replica_problems
from binlake.snapshot.signal import Signal, SignalTable, prepare
from binlake.source import Connection, master_position, server_id

log = logging.getLogger("binlake.snapshot")

POLL_SECONDS = 0.05  # the signal usually arrives within milliseconds of its commit
ER_NO_SUCH_TABLE = 1146
ER_ACCESS_DENIED = (1142, 1044)  # table / database access denied


def uses_signal(method: SnapshotMethod, signal_table: str) -> bool:
    """Is a replica full load labelled by the primary's signal (else from the replica's GTIDs)? (pure)"""
    return method is SnapshotMethod.WATERMARK and SignalTable.parse(signal_table) is not None


def _count(value: str | None) -> int:
    return int(value) if value and value.strip().isdigit() else 0


def order_problems(facts: ReplicaFacts) -> list[str]:
    """Why the replica may commit the primary's transactions out of binlog order, each with its fix (pure).

    MySQL: more than one applier worker without ``replica_preserve_commit_order`` (or the pre-8.0.26
    ``slave_*`` names). MariaDB: parallel threads while the replica applies more than one GTID domain
    (it commits in order within a domain only)."""
    settings = facts.settings
    if not facts.mariadb:
        workers = _count(settings.get("replica_parallel_workers") or settings.get("slave_parallel_workers"))
        preserve = settings.get("replica_preserve_commit_order") or settings.get("slave_preserve_commit_order")
        if workers > 1 and str(preserve).upper() not in ("ON", "1"):
            return [f"replica_parallel_workers is {workers} and replica_preserve_commit_order is {preserve}: the "
                    "replica may commit a transaction before an earlier one of the primary, so a visible signal "
                    "would not prove the earlier ones committed. STOP REPLICA SQL_THREAD; SET GLOBAL "
                    "replica_preserve_commit_order = ON; START REPLICA SQL_THREAD (RDS/Aurora: the parameter "
                    "group), or replica_parallel_workers = 1"]
        return []
    threads = _count(settings.get("slave_parallel_threads"))
    try:
        domains = {d for (d, _), _ in GtidSet.parse(settings.get("gtid_slave_pos") or "").mariadb}
    except GtidSetError:
        domains = set()
    if threads > 0 and len(domains) > 1:
        return [f"slave_parallel_threads is {threads} and the replica applies GTID domains {sorted(domains)}: it "
                "commits in the primary's order only within a domain. SET GLOBAL slave_parallel_threads = 0 (with "
                "the replica stopped)"]
    return []


def wait_visible(seen: Callable[[], str | None], token: str, wait_seconds: float, clock: Callable[[], float],
                 sleep: Callable[[float], None], status: Callable[[], str]) -> int:
    """Poll ``seen`` (the replica's token now) until it is ``token``; returns the number of polls.

    Raises :class:`ReplicaError` after ``wait_seconds`` naming lag, a stopped applier and a filter on
    the signal's schema (``status``: the replica's state then, e.g. its SQL thread and lag)."""
    deadline = clock() + wait_seconds
    polls = 0
    while True:
        polls += 1
        if seen() == token:
            return polls
        if clock() >= deadline:
            raise ReplicaError(
                f"the signal committed on the primary (token {token}) has not reached the replica within "
                f"full_load.replica_wait_seconds = {wait_seconds:g} ({status()}): the replica lags behind the "
                "primary, its applier (SQL) thread is stopped, or a replication filter drops the signal table's "
                "schema. Check SHOW REPLICA STATUS (SHOW SLAVE STATUS on MariaDB), let it catch up or remove the "
                "filter (or raise the setting), then run the full load again — loaded chunks are kept")
        sleep(POLL_SECONDS)


def signalled_label(read_end: Callable[[], BinlogPosition], commit_signal: Callable[[], str],
                    wait_for: Callable[[str], object]) -> BinlogPosition:
    """Steps 1–3 of the module docstring in their order: the primary's end ``W`` read *before* the signal
    is committed, and returned only once the replica shows that signal's token."""
    low = read_end()
    wait_for(commit_signal())
    return low


def token_on(conn: Connection, signal: Signal) -> str | None:
    """The replica's token of ``signal``'s row now (a fresh read: the transaction ends after it).
    Raises :class:`ReplicaError` with the GRANT when the replica's user may not read the table."""
    try:
        with conn.cursor() as cur:
            cur.execute(signal.select_sql(), (signal.signaller,))
            row = cur.fetchone()
        conn.commit()
    except pymysql.err.MySQLError as exc:
        code = exc.args[0] if exc.args else None
        if code == ER_NO_SUCH_TABLE:
            return None  # not replicated yet (or filtered: the wait names it)
        if code in ER_ACCESS_DENIED:
            raise ReplicaError(f"full_load.source's user may not read the signal table {signal.table.qualified} on "
                               f"the replica ({exc.args[-1]}): GRANT SELECT ON {signal.table.qualified} to it (on "
                               "the primary: grants replicate)") from None
        raise
    return None if row is None else str(row[0])


def replica_status(conn: Connection) -> str:
    """The replica's applier state in a few words, for :func:`wait_visible`'s error."""
    status = replica_facts(conn).status or {}
    sql = status.get("Replica_SQL_Running", status.get("Slave_SQL_Running"))
    io = status.get("Replica_IO_Running", status.get("Slave_IO_Running"))
    lag = status.get("Seconds_Behind_Source", status.get("Seconds_Behind_Master"))
    return f"SQL thread running: {sql}, IO thread running: {io}, seconds behind: {lag}"


class SignalledLabeller:
    """Labels replica snapshots with the primary's binlog end, once the replica shows the signal
    committed after it (thread-safe: one label at a time, so the signaller's row holds our token
    until we have seen it)."""

    def __init__(self, connect_primary: Callable[[], Connection], connect_replica: Callable[[], Connection],
                 signal: Signal, history: History, wait_seconds: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.connect_primary = connect_primary
        self.connect_replica = connect_replica
        self.signal = signal
        self.history = history
        self.wait_seconds = wait_seconds
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._gtids: dict[int, str | None] = {}

    def __call__(self) -> BinlogPosition:
        with self._lock, self.connect_primary() as primary, self.connect_replica() as replica:
            def wait_for(token: str) -> int:
                return wait_visible(lambda: token_on(replica, self.signal), token, self.wait_seconds, self.clock,
                                    self.sleep, lambda: replica_status(replica))

            low = signalled_label(lambda: master_position(primary).in_epoch(self.history.epoch),
                                  lambda: self.signal.commit(primary), wait_for)
            self._gtids[low.lsn] = low.gtid
        log.debug("the replica showed the signal committed after %s: its snapshot is labelled so", low)
        return low  # 4. the caller starts the snapshot now

    def gtid(self, position: BinlogPosition) -> str | None:
        """The primary's GTID set at a label this object gave."""
        return self._gtids.get(position.lsn)


def open_signalled_replica(conn: Connection, connect_replica: Callable[[], Connection],
                           connect_primary: Callable[[], Connection], registry: Registry, config: PipelineConfig,
                           why_not_primary: str) -> tuple[History, SignalledLabeller]:
    """The capture's current history and a :class:`SignalledLabeller` for ``full_load.source`` (``conn``);
    raises :class:`ReplicaError` (or :class:`~binlake.snapshot.signal.SignalTableError`) naming every problem."""
    history = registry.latest
    if history is None:
        raise ReplicaError("full_load.source is set, but the capture has not registered its binlog history yet: "
                           "start the capture against the primary first (the README's start order)")
    table = SignalTable.parse(config.full_load.signal_table)
    assert table is not None  # uses_signal
    facts = replica_facts(conn)
    problems = replica_problems(facts, history, signalled=True) + order_problems(facts)
    if problems:
        raise ReplicaError(
            f"{why_not_primary} — full_load.source points the full load at another server than the capture's, and it "
            f"cannot be read as a replica of the captured primary with signals: {'; '.join(problems)}. Fix that, "
            "unset full_load.source, or point it at the captured server")
    with connect_primary() as primary:
        primary_id = server_id(primary)
        if primary_id != history.server_id:
            raise ReplicaError(f"the signal goes to the capture's source, server_id {primary_id}, but the capture's "
                               f"current history is {history.describe()}: point source at the captured primary")
        signal = prepare(primary, table, f"{config.name}:full-load")
    log.info("full_load.source is server_id %d, a replica of %s: each chunk's snapshot starts once the replica shows "
             "a signal committed on the primary into %s after the chunk's low watermark (no settle wait)",
             facts.server_id, history.describe(), table.qualified)
    return history, SignalledLabeller(connect_primary, connect_replica, signal, history,
                                      config.full_load.replica_wait_seconds)

