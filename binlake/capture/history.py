"""The binlog history registry: which binlog history each epoch of the order key is.

``_binlake/capture/history.json`` (one reader/writer: this module; replaced atomically)::

    {"format": 1, "histories": [
      {"epoch": 0, "server_id": 1, "server_uuid": null, "began": "first start",
       "start": {"file": "binlog.000003", "pos": 1234, "gtid": "0-1-77", "epoch": 0, "lsn": …} | null,
       "start_gtid": "0-1-77" | null, "created_at": "2026-12-01T09:00:00+00:00"},
      {"epoch": 1, "server_id": 2, …, "began": "gtid-join after failover", …}]}

An **epoch** (the high bits of every lsn, see :mod:`binlake.positions`) is one binlog history as
the capture read it: one server, from ``start`` on, never reset. Epochs only grow. How an epoch
``began`` says whether the change log is continuous across its start:

* ``gtid-join after failover`` — continuous: the capture verified that the new server had executed
  every transaction the lake holds and resumed right after them by GTID;
* ``first start``, ``explicit start``, ``start at end``, ``start without a checkpoint`` — a
  **gap**: changes before ``start`` are not in the change log (or not in this history).

``start`` is a lower bound of the epoch's first change: the exact start position for a file/pos
start; for a GTID start (failover join, ``capture.start_gtid``) the server's binlog end when the
capture decided to start, which is at or after the true join point (so checks against it are on
the safe side). ``null`` only for the entry adopted from a lake written before the registry
existed (trusted from lsn 0 as before).

The capture writes a new entry *before* the first record of the new epoch (so it is durable before
anything depends on it). Readers: the full load (which epoch a snapshot read from this server
belongs to), the merge and ``binlake status`` (:func:`Registry.coverage_start`: from where the
change log is continuous). binlake never deletes change-log files today; anything that does must
first register the new beginning of the change log here, or tables would join over a hole.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, replace
from typing import Any

from binlake.capture.checkpoint import Checkpoint
from binlake.capture.gtids import merge_sets, missing_gtids, union
from binlake.changelog import list_changelog, read_changelog
from binlake.config import PipelineConfig
from binlake.lake import HISTORY_KEY, SNAPSHOTS_DIR, Lake, parse_changelog_name
from binlake.positions import BinlogPosition, epoch_base
from binlake.snapshot.state import TableState

FORMAT = 1
FIRST_START = "first start"
FAILOVER_JOIN = "gtid-join after failover"
EXPLICIT_START = "explicit start"
START_AT_END = "start at end"
NO_CHECKPOINT = "start without a checkpoint"
BEGINNINGS = (FIRST_START, FAILOVER_JOIN, EXPLICIT_START, START_AT_END, NO_CHECKPOINT)


class HistoryError(ValueError):
    """The registry file cannot be used; the message says why."""


@dataclass(frozen=True)
class History:
    """One registry entry (see the module docstring for the fields)."""

    epoch: int
    server_id: int
    began: str
    start: BinlogPosition | None
    server_uuid: str | None = None
    start_gtid: str | None = None
    created_at: str = ""

    def __post_init__(self) -> None:
        epoch_base(self.epoch)  # validates the range
        if self.began not in BEGINNINGS:
            raise ValueError(f"unknown history beginning {self.began!r}")
        if self.start is not None and self.start.epoch != self.epoch:
            raise ValueError(f"history {self.epoch}: start position {self.start} is of another epoch")

    @property
    def gap(self) -> bool:
        """Does the change log miss changes right before this history's start?"""
        return self.began != FAILOVER_JOIN

    @property
    def start_lsn(self) -> int:
        """The lsn from which this history is in the change log (the epoch's base if unknown)."""
        return epoch_base(self.epoch) if self.start is None else self.start.lsn

    def same_server(self, server_id: int, server_uuid: str | None) -> bool:
        """Same server id, and same ``@@server_uuid`` when both are known (MySQL)."""
        return self.server_id == server_id and (None in (self.server_uuid, server_uuid)
                                               or self.server_uuid == server_uuid)

    def describe(self) -> str:
        start = "?" if self.start is None else f"{self.start.file}:{self.start.pos}"
        return f"epoch {self.epoch} (server_id {self.server_id}, {self.began} at {start})"

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "server_id": self.server_id, "server_uuid": self.server_uuid,
                "began": self.began, "start": None if self.start is None else self.start.to_dict(),
                "start_gtid": self.start_gtid, "created_at": self.created_at}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        missing = [key for key in ("epoch", "server_id", "began", "start") if key not in data]
        if missing:
            raise HistoryError(f"binlog history entry is missing key(s) {missing}: {data!r}")
        start = data["start"]
        return cls(int(data["epoch"]), int(data["server_id"]), str(data["began"]),
                   None if start is None else BinlogPosition.from_dict(start), data.get("server_uuid"),
                   data.get("start_gtid"), str(data.get("created_at") or ""))


@dataclass(frozen=True)
class Registry:
    """The registry's entries, oldest first (epochs strictly increasing)."""

    histories: tuple[History, ...] = ()

    def __post_init__(self) -> None:
        epochs = [h.epoch for h in self.histories]
        if any(b <= a for a, b in itertools.pairwise(epochs)):
            raise HistoryError(f"binlog history epochs must strictly increase, got {epochs}")

    @property
    def latest(self) -> History | None:
        return self.histories[-1] if self.histories else None

    @property
    def next_epoch(self) -> int:
        return 0 if self.latest is None else self.latest.epoch + 1

    def entry(self, epoch: int) -> History | None:
        return next((h for h in self.histories if h.epoch == epoch), None)

    def with_history(self, history: History) -> Registry:
        """A registry with ``history`` added (or replacing the entry of the same epoch, the latest)."""
        kept = tuple(h for h in self.histories if h.epoch != history.epoch)
        return Registry((*kept, history))

    def coverage_start(self) -> int | None:
        """The lsn from which the change log is continuous up to now: the start of the latest
        history that began with a gap (``None``: no registry, nothing is known; ``0`` for a lake
        written before the registry existed, trusted as before).

        A table whose snapshot is older than this (lower lsn) misses the changes of the gap."""
        gap = self.latest_gap
        if gap is None:
            return None if not self.histories else 0
        return 0 if gap.start is None else gap.start_lsn

    @property
    def latest_gap(self) -> History | None:
        return next((h for h in reversed(self.histories) if h.gap), None)

    def to_json(self) -> bytes:
        return json.dumps({"format": FORMAT, "histories": [h.to_dict() for h in self.histories]}, indent=1).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Registry:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise HistoryError(f"{HISTORY_KEY} is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise HistoryError(f"{HISTORY_KEY}: unknown format (expected {{'format': {FORMAT}, ...}})")
        return cls(tuple(History.from_dict(h) for h in data.get("histories", [])))


def load_registry(lake: Lake) -> Registry:
    """The registry (empty when the capture never wrote one)."""
    try:
        return Registry.from_json(lake.get_bytes(HISTORY_KEY))
    except FileNotFoundError:
        return Registry()


def save_registry(lake: Lake, registry: Registry) -> None:
    """Replace the registry atomically (call before writing any record of a new epoch)."""
    lake.put_bytes(HISTORY_KEY, registry.to_json())


def stamped(history: History, created_at: str) -> History:
    return replace(history, created_at=created_at)


def snapshot_history(registry: Registry, server_id: int, server_uuid: str | None,
                     gtid_state: str | None = None, mariadb: bool = False) -> History | None:
    """The history a snapshot read now from this server belongs to (``None``: no registry yet — the
    capture never ran — and the snapshot is labelled epoch 0, checked against the server when the
    capture registers epoch 0, see :func:`snapshot_gap`).

    Raises :class:`HistoryError` when the capture's latest history is another server's, or (MariaDB,
    ``gtid_state`` = ``@@gtid_binlog_state``) when the server no longer holds the GTIDs that history
    started at — its binlog was reset since: either way a snapshot of it could not be ordered
    against the change log."""
    latest = registry.latest
    if latest is None:
        return None
    fix = ("Start (or restart) the capture against this server first — after a failover it follows the new "
           "server by GTID — then reload")
    if not latest.same_server(server_id, server_uuid):
        raise HistoryError(
            f"the source is server_id {server_id}, but the capture's current binlog history is {latest.describe()}: "
            f"a snapshot of this server cannot be ordered against the change log. {fix}")
    if latest.start_gtid and missing_gtids(latest.start_gtid, gtid_state):  # MySQL: gtid_state = gtid_executed
        raise HistoryError(
            f"the source no longer holds GTID(s) {', '.join(missing_gtids(latest.start_gtid, gtid_state))} at which "
            f"the capture's binlog history {latest.describe()} began (@@gtid_binlog_state is "
            f"{gtid_state or 'empty'}): its binlog was reset (RESET MASTER). {fix}")
    return latest


def snapshot_gap(registry: Registry, min_position: BinlogPosition, server_id: int | None) -> str | None:
    """Why a table whose snapshot starts at ``min_position`` (read from ``server_id``) cannot be
    completed from the change log, or ``None`` when it can.

    It can when the change log is continuous from at or below the snapshot: ``min_position.lsn >=``
    :meth:`Registry.coverage_start`, and the snapshot's epoch is a history of the server it was
    read from. Without a registry (no capture ran yet, or a change log written by hand) there is
    nothing to check against (``None``); once the capture starts, it registers where the change
    log begins, and a table loaded before that is caught then."""
    coverage = registry.coverage_start()
    if coverage is None:
        return None
    fix = "run the capture first, then reload this table (a full load with a mapping selecting only it)"
    if min_position.lsn < coverage:
        gap = registry.latest_gap
        start = "?" if gap is None or gap.start is None else f"{gap.start.file}:{gap.start.pos}"
        began = "" if gap is None else f" ({gap.began}, epoch {gap.epoch})"
        return (f"snapshot at {min_position} is older than the start of the change log at {start}{began}: "
                f"changes in between are missing — {fix}")
    history = registry.entry(min_position.epoch)
    if history is not None and server_id is not None and history.server_id != server_id:
        return (f"snapshot was read from server_id {server_id}, but epoch {min_position.epoch} of the change log is "
                f"server_id {history.server_id}'s binlog — {fix}")
    return None


def lake_gtids(lake: Lake, checkpoint: Checkpoint) -> str | None:
    """Every GTID the lake holds: the checkpoint's set, the GTIDs of change-log records written
    after it (a process that died between a file and its checkpoint leaves such records), and the
    snapshot positions of full loads read in the checkpoint's history (a snapshot can be ahead of
    the capture)."""
    after = checkpoint.position.lsn
    keys = [key for key in list_changelog(lake) if parse_changelog_name(key)[1] > after]
    held = checkpoint.position.gtid
    if keys:
        table = read_changelog(lake, keys)
        later = [g for lsn, g in zip(table.column("lsn").to_pylist(), table.column("gtid").to_pylist(), strict=True)
                 if lsn > after and g]
        held = merge_sets(held, list(dict.fromkeys(later)))
    return union(held, *_snapshot_gtids(lake, checkpoint.position.epoch))


def _snapshot_gtids(lake: Lake, epoch: int) -> list[str]:
    gtids = []
    for key in lake.list(SNAPSHOTS_DIR):
        if key.endswith(".json"):
            high = TableState.from_json(lake.get_bytes(key)).max_position
            if high is not None and high.epoch == epoch and high.gtid:
                gtids.append(high.gtid)
    return gtids


def source_epoch(config: PipelineConfig) -> int:
    """The epoch of the configured source's current binlog (0 without a registry); for readers that
    compare a fresh source snapshot with lake lsns (validation). Raises :class:`HistoryError` when
    the capture's latest history is another server (see :func:`snapshot_history`)."""
    from binlake.source import connect, gtid_binlog_state, is_mariadb, server_id, server_uuid

    registry = load_registry(Lake.from_config(config))
    if registry.latest is None:
        return 0
    with connect(config.source) as conn:
        history = snapshot_history(registry, server_id(conn), server_uuid(conn), gtid_binlog_state(conn),
                                   is_mariadb(conn))
    return 0 if history is None else history.epoch
