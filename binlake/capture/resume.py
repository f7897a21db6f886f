"""Where the capture continues, and in which epoch: resume, failover join, or a new history (pure).

Inputs: the checkpoint, the history registry (:mod:`binlake.capture.history`) and what the server
says about itself (:class:`ServerFacts`). Output: a :class:`Decision`, or :class:`HistoryRefused`
with a message that says what happened and how to recover. The rules:

1. **Same history** — the server is the checkpoint's (same ``server_id``) and its binlog still
   contains the checkpoint (its file is not newer than the newest binlog nor shorter than the
   checkpoint offset, and ``@@gtid_binlog_state`` holds the checkpoint's GTIDs): resume at the
   checkpoint's file/position in the checkpoint's epoch.
2. **Another history** — another server (failover) or the same server after ``RESET MASTER``: the
   GTIDs the lake holds (the checkpoint's set, change-log records written after it, snapshots)
   must all be in the server's ``@@gtid_binlog_state``. Then: a new epoch that *continues* the
   change log (``gtid-join after failover``), streamed from right after those GTIDs. Else refuse,
   naming the missing GTIDs: the lake may hold changes the new server never had.
3. **An explicit start** (``capture.start: position`` applied for the first time, ``start: end``,
   or no checkpoint): epoch 0 for the very first start of a lake, else a new epoch that begins
   with a **gap** — except a file/position start at or before the checkpoint of the same history
   (``start: end`` with nothing written since, or a deliberate re-read), which stays in the
   checkpoint's epoch: a re-read writes records again with the same lsn, and readers drop them.

A new epoch is registered before anything is streamed. If a run registered an epoch and died
before its first checkpoint, the next run reuses that epoch when it is the same failover join;
otherwise it takes the next one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from binlake import source as src
from binlake.capture.checkpoint import Checkpoint
from binlake.capture.gtids import missing_gtids
from binlake.capture.history import (
    FAILOVER_JOIN,
    FIRST_START,
    NO_CHECKPOINT,
    History,
    Registry,
)
from binlake.positions import BinlogPosition, file_sequence
from binlake.source import SourceError


class HistoryRefused(SourceError):
    """The capture cannot continue the change log on this server without risking a silent
    difference; the message names what is missing and how to recover."""


@dataclass(frozen=True)
class ServerFacts:
    """What the source says about its binlog history (read by :func:`binlake.source.server_facts`).

    ``binlogs``: ``SHOW BINARY LOGS`` (name, size), oldest first. ``end``: the binlog end (epoch 0)
    with ``@@gtid_binlog_pos``. ``gtid_state``: ``@@gtid_binlog_state`` (MariaDB; ``None`` on MySQL).
    """

    server_id: int
    server_uuid: str | None
    binlogs: tuple[tuple[str, int], ...]
    end: BinlogPosition
    gtid_state: str | None
    mariadb: bool = True


@dataclass(frozen=True)
class Decision:
    """``start``: file/pos to stream from (in ``epoch``), or ``None`` with ``gtid``: stream after that
    GTID set. ``history``: the registry entry to write before streaming (``None``: none)."""

    epoch: int
    start: BinlogPosition | None
    gtid: str | None
    history: History | None
    message: str


def history_change(checkpoint: Checkpoint, server: ServerFacts) -> str | None:
    """Why ``server``'s binlog is not the history the checkpoint was read from (``None``: it is)."""
    position = checkpoint.position
    if checkpoint.source_server_id is not None and checkpoint.source_server_id != server.server_id:
        return f"server_id {checkpoint.source_server_id} → {server.server_id}"
    names = [name for name, _ in server.binlogs]
    sizes = dict(server.binlogs)
    if names and file_sequence(position.file) > file_sequence(names[-1]):
        return (f"the server's newest binlog {names[-1]} is older than the checkpoint's {position.file} "
                "(RESET MASTER?)")
    if position.file in sizes and sizes[position.file] < position.pos:
        return (f"binlog {position.file} is {sizes[position.file]} bytes, shorter than the checkpoint offset "
                f"{position.pos} (RESET MASTER?)")
    if position.gtid and missing_gtids(position.gtid, server.gtid_state):  # MySQL: gtid_state is gtid_executed
        return (f"the checkpoint's GTIDs {position.gtid} are not in the server's @@gtid_binlog_state "
                f"{server.gtid_state or '(empty)'} (RESET MASTER?)")
    return None


def resume_decision(checkpoint: Checkpoint, registry: Registry, server: ServerFacts,
                    lake_gtids: Callable[[], str | None]) -> Decision:
    """Rules 1 and 2 (``capture.start: checkpoint``, or an explicit start already applied).

    ``lake_gtids()``: every GTID the lake holds (checkpoint set + records written after it, which a
    run that died before its checkpoint may have left, in any epoch).
    """
    epoch = checkpoint.position.epoch
    latest = registry.latest
    change = history_change(checkpoint, server)
    if change is None and (latest is None or latest.epoch == epoch):
        adopted = None if latest is not None else History(epoch, server.server_id, FIRST_START, None,
                                                          server.server_uuid, checkpoint.position.gtid)
        return Decision(epoch, checkpoint.position, None, adopted, f"resuming from the checkpoint at "
                        f"{checkpoint.position}")
    held = lake_gtids()
    if change is not None and not held:
        raise HistoryRefused(
            f"the source's binlog is not the history the checkpoint was read from ({change}), and the checkpoint "
            "carries no GTID to find its place in the new history. Recover: start the capture with "
            "capture.start: end, then reload every table (full load)")
    missing = missing_gtids(held, server.gtid_state)  # both forms (binlake.gtidset for MySQL)
    if missing:
        raise HistoryRefused(
            f"failover refused ({change or 'records written after the checkpoint'}): the source (server_id "
            f"{server.server_id}) has not executed GTID(s) {', '.join(missing)} that the lake already holds "
            f"(@@gtid_binlog_state is {server.gtid_state or 'empty'}) — a replica that was behind was promoted, "
            "or the binlog was reset, and those transactions are lost on this server. The lake may contain "
            "changes this server never had. Recover: point source.host/port at a server that has them (let a "
            "replica catch up before promoting it), or accept the loss: start the capture with "
            "capture.start: end, then reload the affected tables (a full load with a mapping selecting them)")
    if change is None:  # same history, but a run registered a newer epoch and saved no checkpoint in it
        new_epoch = max(registry.next_epoch, epoch + 1)
        start = checkpoint.position.in_epoch(new_epoch)
        history = History(new_epoch, server.server_id, FAILOVER_JOIN, start, server.server_uuid,
                          checkpoint.position.gtid)
        return Decision(new_epoch, start, None, history, f"resuming from the checkpoint at {checkpoint.position} "
                        f"in epoch {new_epoch} (a newer epoch was registered by a run that saved no checkpoint)")
    reuse = (latest is not None and latest.epoch > epoch and latest.began == FAILOVER_JOIN
             and latest.same_server(server.server_id, server.server_uuid) and latest.start_gtid == held)
    new_epoch = latest.epoch if reuse and latest is not None else max(registry.next_epoch, epoch + 1)
    joined = None if reuse else History(new_epoch, server.server_id, FAILOVER_JOIN,
                                        server.end.in_epoch(new_epoch), server.server_uuid, held)
    return Decision(new_epoch, None, held, joined,
                    f"failover: {change}; the source has every GTID the lake holds: resuming after GTID {held}, "
                    f"epoch {new_epoch}")


def new_start_decision(checkpoint: Checkpoint | None, registry: Registry, server: ServerFacts,
                       start: BinlogPosition | None, gtid: str | None, began: str) -> Decision:
    """Rule 3: a start at ``start`` (file/pos, epoch 0) or after ``gtid``; ``began`` says which.

    A file/position start at or before the checkpoint of the same history is a re-read, not a gap:
    it stays in the checkpoint's epoch, so what it writes again has the same ``(lsn, row_idx)`` as
    before (duplicates that readers drop, never a gap)."""
    if checkpoint is not None and start is not None and history_change(checkpoint, server) is None and (
            registry.latest is None or registry.latest.epoch == checkpoint.position.epoch):
        epoch = checkpoint.position.epoch
        again = start.in_epoch(epoch)
        if again <= checkpoint.position:
            adopted = None if registry.latest is not None else History(epoch, server.server_id, FIRST_START, None,
                                                                       server.server_uuid, checkpoint.position.gtid)
            what = "resuming" if again == checkpoint.position else (
                f"re-reading from {again}, before the checkpoint {checkpoint.position} (records written again "
                "keep their lsn)")
            return Decision(epoch, again, None, adopted, f"the start point is in the checkpoint's history: {what}")
    if checkpoint is None and registry.latest is None:
        epoch, began = 0, FIRST_START
    else:
        floor = -1 if checkpoint is None else checkpoint.position.epoch
        epoch = max(registry.next_epoch, floor + 1)
        began = began if checkpoint is not None else NO_CHECKPOINT
    at = (start or server.end).in_epoch(epoch)  # a GTID start: the end now bounds the true start from above
    history = History(epoch, server.server_id, began, at, server.server_uuid, gtid or at.gtid)
    where = f"after GTID {gtid}" if start is None else str(start)
    gap = "" if began == FIRST_START else "; changes before it are not in the change log (a gap)"
    return Decision(epoch, None if start is None else at, gtid, history,
                    f"epoch {epoch} ({began}) starts {where}{gap}")




def read_server_facts(conn: Any) -> ServerFacts:
    """:class:`ServerFacts` of the server behind ``conn`` (a few statements)."""
    mariadb = src.is_mariadb(conn)
    return ServerFacts(src.server_id(conn), src.server_uuid(conn), tuple(src.binlog_files(conn)),
                       src.master_position(conn), src.gtid_binlog_state(conn), mariadb)
