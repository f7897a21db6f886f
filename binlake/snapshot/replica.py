"""A full load read from a GTID replica (``full_load.source``), labelled in the primary's order.

The capture reads the primary's binlog; the chunks are read from a replica of it. A chunk's rows
get a label in the primary's lsn order that satisfies condition (A) of docs/full-load.md — every
change-log record at or before the label is in the chunk's snapshot — so the merge's per-row guard
completes the chunk exactly as for the watermark method, without its timing assumption on MariaDB:

1. just before a chunk's snapshot starts, the driver reads what the replica *holds* — MariaDB: a
   consistent-snapshot transaction's ``binlog_snapshot_file/position`` (the replica's own binlog,
   which with ``log_slave_updates`` carries the primary's transactions under their GTIDs), turned
   into the replica's GTID position by ``BINLOG_GTID_POS``; every later snapshot holds at least that
   (InnoDB snapshots only grow). MySQL: ``@@GLOBAL.gtid_executed``, then the
   ``full_load.watermark_settle_seconds`` wait of the watermark method (MySQL adds a GTID there after
   the engine commit, but binlake has not tested it on a MySQL server — see docs/full-load.md; with
   ``full_load.signal_table`` set, :mod:`binlake.snapshot.replicasignal` labels MySQL replica chunks
   instead, exactly and without the wait);
2. waits (``full_load.replica_wait_seconds``) until the capture's checkpoint covers those GTIDs;
3. translates them into the primary's order from the change log (:mod:`binlake.snapshot.replicalabel`).

:func:`open_replica` checks the replica first (:func:`replica_problems`, pure): it replicates from the
server of the capture's current binlog history, without replication filters, and (MariaDB) writes
the replicated transactions to its own binlog; (MySQL) commits them in the primary's order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from binlake.capture.checkpoint import load_checkpoint
from binlake.capture.history import History, Registry
from binlake.changelog import list_changelog, read_changelog
from binlake.config import FullLoadConfig
from binlake.lake import Lake, parse_changelog_name
from binlake.positions import BinlogPosition, split_lsn
from binlake.snapshot.replicalabel import Held, Record, ReplicaLabelError, translate
from binlake.source import Connection, SourceError, global_variables, is_mariadb, server_id

log = logging.getLogger("binlake.snapshot")

FILES_PER_READ = 8  # change-log files read at once while scanning backwards
POLL_SECONDS = 0.2
FILTERS = ("Replicate_Do_DB", "Replicate_Ignore_DB", "Replicate_Do_Table", "Replicate_Ignore_Table",
           "Replicate_Wild_Do_Table", "Replicate_Wild_Ignore_Table", "Replicate_Rewrite_DB",
           "Replicate_Do_Domain_Ids", "Replicate_Ignore_Domain_Ids")
MARIADB_SETTINGS = ("log_bin", "log_slave_updates", "slave_parallel_mode", "slave_parallel_threads", "gtid_slave_pos")
MYSQL_SETTINGS = ("gtid_mode", "replica_preserve_commit_order", "slave_preserve_commit_order",
                  "replica_parallel_workers", "slave_parallel_workers")


class ReplicaError(SourceError):
    """``full_load.source`` cannot be used as a replica; the message says why and what to do."""


class ChunkLabeller(Protocol):
    """Labels replica snapshots in the primary's order: called just before a snapshot starts, it returns
    the position the snapshot's rows carry (:class:`ReplicaLabeller`, or the signal's,
    :class:`binlake.snapshot.replicasignal.SignalledLabeller`)."""

    def __call__(self) -> BinlogPosition: ...

    def gtid(self, position: BinlogPosition) -> str | None: ...


@dataclass(frozen=True)
class ReplicaFacts:
    """What :func:`replica_problems` judges, read by :func:`replica_facts`."""

    mariadb: bool
    server_id: int
    status: Mapping[str, object] | None  # SHOW SLAVE/REPLICA STATUS (None: not a replica)
    settings: Mapping[str, str | None]


def _on(value: str | None) -> bool:
    return str(value).upper() in ("1", "ON")


def replica_problems(facts: ReplicaFacts, primary: History, signalled: bool = False) -> list[str]:
    """Why ``full_load.source`` cannot be read as a replica of ``primary`` (empty: it can).

    ``signalled``: chunks are labelled by a signal on the primary (:mod:`binlake.snapshot.replicasignal`),
    not from the replica's GTIDs, so what only the GTID translation needs (MariaDB: the replica's own
    binlog; MySQL: ``gtid_mode``) is not asked for; the commit order still is."""
    if facts.status is None:
        return [f"server_id {facts.server_id} is not a replica (SHOW {'SLAVE' if facts.mariadb else 'REPLICA'} "
                "STATUS is empty)"]
    problems = []
    status = facts.status
    master = status.get("Master_Server_Id", status.get("Source_Server_Id"))
    if master is None or int(str(master)) != primary.server_id:
        problems.append(f"it replicates from server_id {master}, not from the captured primary "
                        f"({primary.describe()}); a replica of a replica is not supported")
    uuid = status.get("Master_UUID", status.get("Source_UUID"))
    if primary.server_uuid and uuid and str(uuid).lower() != primary.server_uuid.lower():
        problems.append(f"its source is server_uuid {uuid}, not the captured primary's {primary.server_uuid}")
    filters = [f"{name} = {status[name]}" for name in FILTERS if status.get(name)]
    if filters:
        problems.append(f"it filters what it replicates ({'; '.join(filters)}): its tables need not hold the "
                        "primary's rows")
    settings = facts.settings
    if facts.mariadb:
        if signalled:
            return problems
        if not _on(settings.get("log_bin")) or not _on(settings.get("log_slave_updates")):
            problems.append("it must write the replicated transactions to its own binlog, under their GTIDs "
                            "(log_bin and log_slave_updates = ON): the consistent snapshot reports its position "
                            f"there (log_bin = {settings.get('log_bin')}, log_slave_updates = "
                            f"{settings.get('log_slave_updates')})")
        return problems
    if not signalled and not _on(settings.get("gtid_mode")):
        problems.append(f"gtid_mode must be ON (it is {settings.get('gtid_mode')})")
    workers = settings.get("replica_parallel_workers") or settings.get("slave_parallel_workers") or "0"
    preserve = settings.get("replica_preserve_commit_order") or settings.get("slave_preserve_commit_order")
    if int(workers) > 1 and not _on(preserve):
        problems.append(f"it applies with {workers} parallel workers without replica_preserve_commit_order = ON: "
                        "it need not commit the primary's transactions in the primary's order (STOP REPLICA "
                        "SQL_THREAD; SET GLOBAL replica_preserve_commit_order = ON; START REPLICA SQL_THREAD — on "
                        "RDS/Aurora the parameter group — or replica_parallel_workers = 1)")
    return problems


def replica_facts(conn: Connection) -> ReplicaFacts:
    mariadb = is_mariadb(conn)
    with conn.cursor() as cur:
        cur.execute("SHOW SLAVE STATUS" if mariadb else "SHOW REPLICA STATUS")
        row = cur.fetchone()
        names = [d[0] for d in cur.description or ()]
    status = None if row is None else dict(zip(names, row, strict=True))
    settings = global_variables(conn, MARIADB_SETTINGS if mariadb else MYSQL_SETTINGS)
    return ReplicaFacts(mariadb, server_id(conn), status, settings)


def held_now(conn: Connection, mariadb: bool) -> Held:
    """What every snapshot started from now on holds at least (step 1 of the module docstring)."""
    with conn.cursor() as cur:
        if not mariadb:
            cur.execute("SELECT @@GLOBAL.gtid_executed")
            return Held.parse(str(cur.fetchone()[0] or "").replace("\n", ""), mariadb=False)  # type: ignore[index]
        cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        cur.execute("SHOW SESSION STATUS LIKE 'binlog_snapshot_%'")
        status = {str(k).lower(): v for k, v in cur.fetchall()}
        cur.execute("COMMIT")
        file, pos = status.get("binlog_snapshot_file"), status.get("binlog_snapshot_position")
        cur.execute("SELECT BINLOG_GTID_POS(%s, %s)", (file, int(str(pos or 0))))
        gtid = cur.fetchone()[0]  # type: ignore[index]
    if gtid is None:
        raise ReplicaError(f"the replica's BINLOG_GTID_POS({file!r}, {pos}) is NULL: its binlog does not show "
                           "the GTID position of its snapshot (binlog purged or reset?)")
    return Held.parse(str(gtid), mariadb=True)


class ReplicaLabeller:
    """Labels for snapshots of a replica in the primary's order (thread-safe; labels never decrease).

    Call it just before a snapshot starts; the snapshot's rows carry the position it returns."""

    def __init__(self, connect: Callable[[], Connection], lake: Lake, history: History, mariadb: bool,
                 full_load: FullLoadConfig, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.connect = connect
        self.lake = lake
        self.history = history
        self.mariadb = mariadb
        self.wait_seconds = full_load.replica_wait_seconds
        self.settle_seconds = 0.0 if mariadb else full_load.watermark_settle_seconds
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._held: Held | None = None
        self._floor: Record | None = None
        self._gtids: dict[int, str] = {}

    def __call__(self) -> BinlogPosition:
        with self._lock:  # one at a time: what the replica holds is read in order, so it only grows
            with self.connect() as conn:
                held = held_now(conn, self.mariadb)
            if self.settle_seconds > 0:
                self.sleep(self.settle_seconds)
            self._check_forward(held)
            checkpoint = self._wait_for_capture(held)
            try:
                label = translate(held, checkpoint, self._newest_first(checkpoint.lsn), self._floor)
            except ReplicaLabelError as exc:
                raise ReplicaError(str(exc)) from None
            position = _position(label)
            if position.lsn < self.history.start_lsn:
                raise ReplicaError(f"the replica's snapshot ({held.text}) is older than the start of the capture's "
                                   f"{self.history.describe()}: wait until the replica has caught up, then run the "
                                   "full load again")
            self._held, self._floor = held, label
            self._gtids[position.lsn] = held.text
        log.debug("replica snapshot %s labelled %s", held.text, position)
        return position

    def gtid(self, position: BinlogPosition) -> str | None:
        """The GTIDs a snapshot labelled ``position`` holds (known for labels given by this object)."""
        return self._gtids.get(position.lsn)

    def _check_forward(self, held: Held) -> None:
        if self._held is not None and not held.includes(self._held):
            raise ReplicaError(f"the replica now holds {held.text}, less than {self._held.text} before: it was reset "
                               "or pointed at another source during the load; run the full load again")
        start = self.history.start_gtid or (None if self.history.start is None else self.history.start.gtid)
        if self._held is None and start and not held.includes(Held.parse(start, self.mariadb)):
            raise ReplicaError(f"the replica holds {held.text}, not yet the GTIDs {start} at which the capture's "
                               f"{self.history.describe()} began: changes before them are not in the change log. "
                               "Wait until the replica has caught up, then run the full load again")

    def _wait_for_capture(self, held: Held) -> Record:
        deadline = self.clock() + self.wait_seconds
        while True:
            checkpoint = load_checkpoint(self.lake)
            ahead = held.text if checkpoint is None else held.missing_from(checkpoint.position.gtid)
            if checkpoint is not None and ahead is None:
                p = checkpoint.position
                return Record(p.lsn, p.file, p.pos, p.gtid)
            if self.clock() >= deadline:
                at = "none" if checkpoint is None else f"{checkpoint.position} ({checkpoint.position.gtid})"
                raise ReplicaError(
                    f"the capture's checkpoint ({at}) has not reached the replica's snapshot ({ahead}) within "
                    f"full_load.replica_wait_seconds = {self.wait_seconds:g}: the rows of a replica snapshot are "
                    "labelled from the change log, so the capture must be running against the primary and have "
                    "passed them. Start the capture (or raise the setting) and run the full load again")
            self.sleep(POLL_SECONDS)

    def _newest_first(self, up_to: int) -> Iterator[Sequence[Record]]:
        """Change-log records at or before ``up_to`` (and after the floor), a few files at a time."""
        floor = -1 if self._floor is None else self._floor.lsn
        keys = [k for k in list_changelog(self.lake)
                if parse_changelog_name(k)[0] <= up_to and parse_changelog_name(k)[1] > floor]
        for end in range(len(keys), 0, -FILES_PER_READ):
            table = read_changelog(self.lake, keys[max(0, end - FILES_PER_READ):end])
            columns = [table.column(name).to_pylist() for name in ("lsn", "binlog_file", "binlog_pos", "gtid")]
            yield [Record(lsn, file, pos, gtid) for lsn, file, pos, gtid in zip(*columns, strict=True)]


def _position(label: Record) -> BinlogPosition:
    epoch = split_lsn(label.lsn)[0]
    position = BinlogPosition.of(label.file, label.pos, label.gtid, epoch)
    if position.lsn != label.lsn:
        raise ReplicaError(f"change-log position {label.file}:{label.pos} does not match its lsn {label.lsn}")
    return position


def open_replica(conn: Connection, connect: Callable[[], Connection], lake: Lake, registry: Registry,
                 full_load: FullLoadConfig, why_not_primary: str) -> tuple[History, ReplicaLabeller]:
    """The capture's current history and a labeller for ``full_load.source`` read as a replica of it;
    raises :class:`ReplicaError` naming every problem (``why_not_primary``: why it is not the captured
    server itself)."""
    history = registry.latest
    if history is None:
        raise ReplicaError("full_load.source is set, but the capture has not registered its binlog history yet: "
                           "start the capture against the primary first (the README's start order)")
    facts = replica_facts(conn)
    problems = replica_problems(facts, history)
    if problems:
        raise ReplicaError(
            f"{why_not_primary} — full_load.source points the full load at another server than the capture's, and it "
            f"cannot be read as a replica of the captured primary: {'; '.join(problems)}. Fix that, unset "
            "full_load.source, or point it at the captured server (another endpoint of the same instance)")
    mode = facts.settings.get("slave_parallel_mode") if facts.mariadb else facts.settings.get(
        "replica_preserve_commit_order")
    log.info("full_load.source is server_id %d, a replica of %s (%s): chunks are labelled in the primary's order "
             "from the replica's GTIDs and the change log", facts.server_id, history.describe(),
             f"slave_parallel_mode {mode}" if facts.mariadb else f"replica_preserve_commit_order {mode}")
    if not facts.mariadb and full_load.watermark_settle_seconds > 0:
        log.warning("replica full load on MySQL without full_load.signal_table: each chunk waits "
                    "full_load.watermark_settle_seconds (%.2f s) after reading the replica's gtid_executed — a timing "
                    "assumption, not a proof; set full_load.signal_table for a signal on the primary the replica's "
                    "snapshot waits for (docs/full-load.md)", full_load.watermark_settle_seconds)
    return history, ReplicaLabeller(connect, lake, history, facts.mariadb, full_load)
