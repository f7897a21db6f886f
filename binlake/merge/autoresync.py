"""Automatic whole-table resyncs: the merge asks, a background runner executes, nothing is lost.

Anything in the merge that finds a lake table it cannot keep exact in place (a DDL whose effect on
stored values the lake cannot derive, a table created while replication runs, an online schema
change swap) calls :func:`request_resync`. The request is a small durable file, written before the
batch that found it completes::

    _binlake/autoresync/<table segments>/<lsn:020d>.json

named by the table and the lsn of the change that needs it, so a replayed batch writes the same
name and finds it there: **one request per (table, lsn), however often the batch runs**. A request
is never lost: it is written before the batch's commit file, and it stays ``pending`` until a
resync planned *after* it has delivered every chunk.

:class:`AutoResyncRunner` (started by the merge job, in a thread of the merge driver: it has the
Spark session and the config) executes pending requests with the ordinary online resync,
:func:`binlake.resync.job.run_resync` (reason ``auto``): the chunks are read from the source now —
after the change that caused the request, which the source executed before the capture saw it —
and delivered under ``_binlake/resync/``, where the merge applies them guarded by ``_binlake_lsn``
like any resync (docs/resync.md). Per table, one resync answers every request written before it was
planned. After a SIGKILL of the merge the runner resumes an unfinished ``auto`` resync planned after
the table's pending requests, or plans a new one (an older resync in flight is abandoned — its
delivered chunks stay exact on their own); a resync that was delivered but not yet recorded in the
request is found and recorded, not run again.

API for other parts of the merge::

    from binlake.merge.autoresync import request_resync
    request_resync(ctx, table_name, "ALTER … ADD COLUMN ts … DEFAULT CURRENT_TIMESTAMP", lsn=record.lsn)

A request that can never succeed (a table without a primary key, an SCD2 table) is marked
``failed`` with the resync's refusal and **stops the merge** (:class:`AutoResyncRefused`, raised by
:meth:`AutoResyncRunner.check` in the merge's main loop): the lake table would otherwise silently
differ from the source. Every later start stops the same way (:func:`unresolved_failures`) until
the table was reloaded by a full load whose snapshot lies after the request's lsn, or resynced whole
from reads after it. A source or Spark failure leaves the request pending; it is retried after
:data:`RETRY_SECONDS`.
"""

from __future__ import annotations

import datetime
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from binlake.lake import AUTORESYNC_DIR, Lake, autoresync_folder
from binlake.merge.summary import TableName
from binlake.resync import store
from binlake.resync.manifest import Resync

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from binlake.config import PipelineConfig
    from binlake.merge.apply import MergeContext

log = logging.getLogger(__name__)

PENDING, DONE, FAILED = "pending", "done", "failed"
AUTO_REASON = "auto"  # the resync manifest's reason (binlake.resync.manifest.REASONS)
RETRY_SECONDS = 60.0
_VERSION = 1


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class ResyncRequest:
    """One durable request: table (source and lake names), the lsn of the change that needs it, why
    (free text, logged and shown), the statement if any; ``state`` pending → done (``resync_id``) or
    failed (``error``). ``requested_at``: wall clock (UTC) when first written."""

    source_schema: str
    source_table: str
    schema: str
    table: str
    lsn: int
    reason: str
    requested_at: str
    statement: str | None = None
    state: str = PENDING
    resync_id: str | None = None
    error: str | None = None

    @property
    def name(self) -> TableName:
        return TableName(self.source_schema, self.source_table, self.schema, self.table)

    @property
    def key(self) -> str:
        return request_key(self.name, self.lsn)

    @property
    def requested(self) -> datetime.datetime:
        return datetime.datetime.fromisoformat(self.requested_at)

    def to_json(self) -> bytes:
        return json.dumps({"version": _VERSION, **asdict(self)}, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ResyncRequest:
        raw: dict[str, Any] = json.loads(data)
        raw.pop("version", None)
        missing = [k for k in ("source_schema", "source_table", "schema", "table", "lsn", "reason", "requested_at")
                   if k not in raw]
        if missing:
            raise ValueError(f"resync request is missing key(s) {missing}")
        return cls(**raw)


def request_key(name: TableName, lsn: int) -> str:
    """Lake key of the request for lake table ``name`` caused at ``lsn``."""
    if lsn < 0:
        raise ValueError(f"lsn must be >= 0, got {lsn}")
    return f"{autoresync_folder(name.schema, name.table)}/{lsn:020d}.json"


def request_resync(ctx: MergeContext, table: TableName, reason: str, *, lsn: int,
                   statement: str | None = None) -> bool:
    """Ask for an automatic whole-table resync of ``table`` because of the change at ``lsn``.

    Durable before it returns; idempotent per ``(table, lsn)`` — a replayed batch calling it again
    changes nothing (returns False; True when this call wrote the request). ``reason`` is free text
    for the log and ``binlake tables``; ``statement`` the source statement, if any.
    """
    if not reason:
        raise ValueError("reason must say why the table needs a resync")
    key = request_key(table, lsn)
    if ctx.lake.exists(key):
        log.info("%s: automatic resync for lsn %d already requested", table.qualified, lsn)
        return False
    request = ResyncRequest(table.source_schema, table.source_table, table.schema, table.table, lsn, reason,
                            _now().isoformat(), statement)
    ctx.lake.put_bytes(key, request.to_json())
    log.warning("%s: automatic online resync requested (lsn %d): %s", table.qualified, lsn, reason)
    return True


def read_requests(lake: Lake, table: TableName | None = None) -> list[ResyncRequest]:
    """Every request (of one lake table, or of all), ordered by table and lsn."""
    prefix = AUTORESYNC_DIR if table is None else autoresync_folder(table.schema, table.table)
    keys = sorted(k for k in lake.list(prefix) if k.endswith(".json"))
    requests = [ResyncRequest.from_json(lake.get_bytes(k)) for k in keys]
    return sorted(requests, key=lambda r: (r.schema, r.table, r.lsn))


def _write(lake: Lake, request: ResyncRequest) -> None:
    lake.put_bytes(request.key, request.to_json())


def _created(resync: Resync) -> datetime.datetime:
    return datetime.datetime.fromisoformat(resync.created_at)


def _whole(resync: Resync) -> bool:
    return resync.where is None and resync.reason in ("resync", AUTO_REASON) and not resync.abandoned


def delivered_after_lsn(lake: Lake, table: TableName, lsn: int) -> Resync | None:
    """A whole-table resync of ``table`` delivered entirely from reads at or after ``lsn`` (every
    chunk's snapshot lsn ``>= lsn``: a snapshot at a change's own position includes it), if any: it
    brings every row to a state after that change."""
    for resync in reversed(store.table_resyncs(lake, table.schema, table.table)):
        if _whole(resync) and resync.chunks and not resync.pending and all(
                c.lsn is not None and c.lsn >= lsn for c in resync.chunks):
            return resync
    return None


class AutoResyncRefused(RuntimeError):
    """An automatic resync the lake needs was refused: the merge stops (module docstring)."""


def unresolved_failures(lake: Lake) -> list[ResyncRequest]:
    """Failed requests not made good since: no full load of the table has a snapshot after the
    request's lsn, and no whole-table resync was delivered from reads after it."""
    from binlake.merge.handoff import read_handoff

    unresolved = []
    for request in read_requests(lake):
        if request.state != FAILED:
            continue
        handoff = read_handoff(lake, request.name)
        reloaded = handoff is not None and handoff.complete and handoff.min_lsn >= request.lsn
        if not reloaded and delivered_after_lsn(lake, request.name, request.lsn) is None:
            unresolved.append(request)
    return unresolved


def refusal_message(requests: list[ResyncRequest]) -> str:
    """The error that stops the merge for ``requests`` (failed, unresolved)."""
    lines = [f"{r.name.qualified}: the lake table cannot be kept exact after lsn {r.lsn} ({r.reason}) and the "
             f"automatic resync was refused: {r.error}" for r in requests]
    return ("; ".join(lines) + ". Reload each such table with the full load (full_load.target_table_prep_mode "
            "DROP_AND_CREATE) while the merge is stopped, then restart the merge")


RunResync = Callable[..., Any]


class AutoResyncRunner:
    """Executes pending requests, one table at a time (module docstring). :meth:`run_pending` is one
    pass (used by the thread, and directly by ``--available-now`` runs and tests)."""

    def __init__(self, config: PipelineConfig, spark: SparkSession, lake: Lake, poll_seconds: float = 5.0,
                 run: RunResync | None = None) -> None:
        self.config = config
        self.spark = spark
        self.lake = lake
        self.poll_seconds = poll_seconds
        self._run = run
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retry_at: dict[TableName, float] = {}
        self._refused: list[ResyncRequest] = []
        self._refused_before: list[ResyncRequest] | None = None

    def check(self) -> None:
        """Raise :class:`AutoResyncRefused` if a resync was refused (in this run, or before it and not
        made good since): the merge must stop rather than leave the table different. The lake is read
        for earlier refusals once per run (the first call); later calls only look at this run's."""
        if self._refused_before is None:
            self._refused_before = unresolved_failures(self.lake)
        refused = self._refused or self._refused_before
        if refused:
            raise AutoResyncRefused(refusal_message(refused))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="binlake-autoresync", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop; a resync in progress is left to finish or resume after a restart."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_pending()
            except Exception:  # never kill the thread: the request stays pending
                log.exception("automatic resync pass failed; retrying in %.0f s", self.poll_seconds)
            self._stop.wait(self.poll_seconds)

    def run_pending(self) -> int:
        """Run (or record) a resync for every table with pending requests; returns tables handled."""
        by_table: dict[TableName, list[ResyncRequest]] = {}
        for request in read_requests(self.lake):
            if request.state == PENDING:
                by_table.setdefault(request.name, []).append(request)
        handled = 0
        for name, requests in by_table.items():
            if self._stop.is_set():
                break
            if time.monotonic() < self._retry_at.get(name, 0.0):
                continue
            handled += self._serve(name, requests)
        return handled

    def _serve(self, name: TableName, requests: list[ResyncRequest]) -> int:
        latest = max(r.requested for r in requests)
        done = self._delivered_since(name, latest)
        if done is not None:
            self._finish(requests, done.resync_id)
            return 1
        active = [r for r in store.table_resyncs(self.lake, name.schema, name.table) if r.pending]
        resume = bool(active) and active[-1].reason == AUTO_REASON and _created(active[-1]) >= latest
        why = "; ".join(sorted({r.reason for r in requests}))
        log.warning("%s: %s automatic online resync for %d request(s): %s", name.qualified,
                    "resuming the" if resume else "starting an", len(requests), why)
        from binlake.resync.job import NotSelectedError, ResyncError, run_resync

        run = self._run or run_resync
        try:
            report = run(self.config, self.spark, f"{name.source_schema}.{name.source_table}",
                         reason=AUTO_REASON, restart=not resume)
        except NotSelectedError as exc:
            # gone from the source since (an online schema change's _t_del, dropped right after the swap):
            # the DROP or RENAME that took it away is in the change log and empties the lake table
            log.info("%s: no automatic resync needed: the table is no longer at the source (%s)", name.qualified, exc)
            for request in requests:
                _write(self.lake, replace(request, state=DONE, error=f"not needed: {exc}"))
            return 1
        except ResyncError as exc:
            log.error("%s: automatic resync refused — the merge stops (the lake table would differ from the "
                      "source): %s", name.qualified, exc)
            failed = [replace(request, state=FAILED, error=str(exc)) for request in requests]
            for request in failed:
                _write(self.lake, request)
            self._refused.extend(failed)
            return 1
        except Exception:
            log.exception("%s: automatic resync failed; retrying in %.0f s", name.qualified, RETRY_SECONDS)
            self._retry_at[name] = time.monotonic() + RETRY_SECONDS
            return 0
        self._finish(requests, report.resync_id)
        return 1

    def _delivered_since(self, name: TableName, since: datetime.datetime) -> Resync | None:
        """A whole-table resync planned after ``since`` whose every chunk is delivered."""
        for resync in reversed(store.table_resyncs(self.lake, name.schema, name.table)):
            if _whole(resync) and not resync.pending and _created(resync) >= since:
                return resync
        return None

    def _finish(self, requests: list[ResyncRequest], resync_id: str) -> None:
        for request in requests:
            _write(self.lake, replace(request, state=DONE, resync_id=resync_id))
        log.info("%s: automatic resync %s delivered (lsn(s) %s); the merge applies its chunks",
                 requests[0].name.qualified, resync_id, ", ".join(str(r.lsn) for r in requests))
