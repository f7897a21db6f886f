"""Capture metrics: ``_binlake/capture/status.json``, its local copy, and a periodic log line.

``status.json`` (written every few seconds and on stop) holds: ``state`` (starting, running,
reconnecting, stopped, failed), ``position`` (last transaction boundary read) and
``checkpoint`` (last durable one), ``lag_seconds`` (now minus the source timestamp of the last
event read; 0 once a heartbeat says the capture is caught up), ``events_per_second`` and
``records_per_second`` over the last interval, totals, ``files_written``, ``last_file``,
``reconnects``, ``spilled_transactions`` and ``spill_files`` (transactions too large for memory, and
the scratch files they took, since start), ``error`` and times. Never any credential.

The lake may be what is failing, so every document also goes to a local file first
(:func:`local_status_path`: ``capture.local_status_file``, by default in the system temp folder)
— written atomically, never fsync'ed. :class:`StatusWriter` writes both (the lake copy once, no
retry: a status must never hold the capture up); :func:`read_status` returns the newer of the two,
so ``binlake status`` on the capture's machine shows a failure the lake never received.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from binlake.config import PipelineConfig
from binlake.lake import STATUS_KEY, Lake
from binlake.positions import BinlogPosition

log = logging.getLogger(__name__)


@dataclass
class CaptureMetrics:
    """Counters the runner updates; :meth:`snapshot` turns them into the status document."""

    started_at: float = field(default_factory=time.time)
    state: str = "starting"
    events: int = 0
    records: int = 0
    reconnects: int = 0
    spilled_transactions: int = 0
    spill_files: int = 0
    last_event_ts: int = 0
    caught_up: bool = False
    error: str | None = None
    _window_start: float = field(default_factory=time.monotonic)
    _window_events: int = 0
    _window_records: int = 0
    rates: tuple[float, float] = (0.0, 0.0)

    def lag_seconds(self, now: float | None = None) -> float | None:
        if self.caught_up:
            return 0.0
        if not self.last_event_ts:
            return None
        return max(0.0, (now or time.time()) - self.last_event_ts)

    def roll_window(self) -> None:
        """Close the rate window (events/s, records/s since the previous call)."""
        now = time.monotonic()
        elapsed = max(now - self._window_start, 1e-9)
        self.rates = ((self.events - self._window_events) / elapsed, (self.records - self._window_records) / elapsed)
        self._window_start, self._window_events, self._window_records = now, self.events, self.records

    def snapshot(self, position: BinlogPosition | None, checkpoint: BinlogPosition | None,
                 files_written: int, files_total: int, last_file: str | None) -> dict[str, Any]:
        lag = self.lag_seconds()
        return {
            "state": self.state,
            "pid": os.getpid(),
            "position": position.to_dict() if position else None,
            "checkpoint": checkpoint.to_dict() if checkpoint else None,
            "lag_seconds": None if lag is None else round(lag, 3),
            "events_per_second": round(self.rates[0], 1),
            "records_per_second": round(self.rates[1], 1),
            "events_total": self.events,
            "records_total": self.records,
            "files_written": files_written,
            "files_written_total": files_total,
            "last_file": last_file,
            "reconnects": self.reconnects,
            "spilled_transactions": self.spilled_transactions,
            "spill_files": self.spill_files,
            "error": self.error,
            "started_at": self.started_at,
            "updated_at": time.time(),
        }


def local_status_path(config: PipelineConfig) -> Path:
    """Where the capture of ``config`` keeps the local copy of its status (see module doc)."""
    if config.capture.local_status_file:
        return Path(config.capture.local_status_file).expanduser()
    root = hashlib.sha256(config.lake.root.encode()).hexdigest()[:12]
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in config.name)
    return Path(tempfile.gettempdir()) / f"binlake-status-{name}-{root}.json"


def _write_local(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class StatusWriter:
    """Writes each status document to the local copy, then to the lake (both best effort)."""

    def __init__(self, lake: Lake, local: Path | None) -> None:
        self.lake, self.local = lake, local
        self._failing: set[str] = set()  # copies whose last write failed (logged once until it works again)

    def write(self, status: dict[str, Any]) -> None:
        """Write ``status``; never raises (a warning when a copy starts or stops failing)."""
        data = json.dumps(status, indent=2).encode()
        local = self.local
        if local is not None:
            self._attempt(str(local), lambda: _write_local(local, data))
        self._attempt(self.lake.uri(STATUS_KEY), lambda: self.lake.put_bytes(STATUS_KEY, data, durable=False))

    def _attempt(self, where: str, write: Callable[[], None]) -> None:
        try:
            write()
        except Exception as exc:
            if where not in self._failing:
                log.warning("could not write the capture status to %s: %s", where, exc)
            self._failing.add(where)
            return
        if where in self._failing:
            log.info("the capture status is written to %s again", where)
            self._failing.discard(where)


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def read_status(lake: Lake, local: Path | None = None) -> dict[str, Any] | None:
    """The newest status document (by ``updated_at``) of the lake copy and the local copy, or
    ``None`` when neither exists. An unreachable lake counts as no lake copy; the answer then
    carries ``lake_error`` (why the lake copy could not be read)."""
    lake_error = None
    try:
        from_lake = _parse(lake.get_bytes(STATUS_KEY))
    except FileNotFoundError:
        from_lake = None
    except Exception as exc:  # the lake is down: the local copy may still say why
        from_lake, lake_error = None, str(exc)
    from_local = _parse(local.read_bytes()) if local is not None and local.is_file() else None
    copies = [copy for copy in (from_lake, from_local) if copy is not None]
    if not copies:
        return {"state": "unknown", "lake_error": lake_error} if lake_error else None
    newest = max(copies, key=lambda copy: float(copy.get("updated_at") or 0))
    return {**newest, "lake_error": lake_error} if lake_error else newest


def summary_line(status: dict[str, Any]) -> str:
    """One log line: position, lag, rates, files."""
    pos = status.get("position") or {}
    lag = status.get("lag_seconds")
    return (f"capture {status.get('state')}: at {pos.get('file')}:{pos.get('pos')} "
            f"lag {'?' if lag is None else f'{lag:.1f}s'}, {status.get('events_per_second')} events/s, "
            f"{status.get('records_per_second')} records/s, {status.get('files_written')} files written")
