"""Capture metrics: ``_binlake/capture/status.json`` and a periodic log line.

``status.json`` (written every few seconds and on stop) holds: ``state`` (starting, running,
reconnecting, stopped, failed), ``position`` (last transaction boundary read) and
``checkpoint`` (last durable one), ``lag_seconds`` (now minus the source timestamp of the last
event read; 0 once a heartbeat says the capture is caught up), ``events_per_second`` and
``records_per_second`` over the last interval, totals, ``files_written``, ``last_file``,
``reconnects``, ``spilled_transactions`` and ``spill_files`` (transactions too large for memory, and
the scratch files they took, since start), ``error`` and times. Never any credential.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from binlake.lake import STATUS_KEY, Lake
from binlake.positions import BinlogPosition


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


def write_status(lake: Lake, status: dict[str, Any]) -> None:
    """Replace ``status.json`` atomically."""
    lake.put_bytes(STATUS_KEY, json.dumps(status, indent=2).encode(), durable=False)


def read_status(lake: Lake) -> dict[str, Any] | None:
    """The last status document, or ``None`` when the capture never wrote one."""
    try:
        data = json.loads(lake.get_bytes(STATUS_KEY))
    except FileNotFoundError:
        return None
    return data if isinstance(data, dict) else None


def summary_line(status: dict[str, Any]) -> str:
    """One log line: position, lag, rates, files."""
    pos = status.get("position") or {}
    lag = status.get("lag_seconds")
    return (f"capture {status.get('state')}: at {pos.get('file')}:{pos.get('pos')} "
            f"lag {'?' if lag is None else f'{lag:.1f}s'}, {status.get('events_per_second')} events/s, "
            f"{status.get('records_per_second')} records/s, {status.get('files_written')} files written")
