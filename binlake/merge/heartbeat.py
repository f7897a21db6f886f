"""``_binlake/merge/heartbeat.json``: is a merge running right now? (One writer: the merge job.)

The running merge writes it every few seconds, from a thread of its own, also during a long batch
(:class:`binlake.merge.singleton.MergeClaim`), and once more marked ``stopped`` when it ends. Each
merge run signs it with a random ``token``: that is how a second merge started on the same lake is
refused, and how a merge whose heartbeat was taken over stops (:mod:`binlake.merge.singleton`).
Readers (that, and the full load's refusal to drop a table the merge writes,
:mod:`binlake.resync.guard`) take the merge as running when the heartbeat is not marked stopped and
is younger than :func:`stale_after` — so a SIGKILLed merge on another host counts as running for
that long, which errs on the safe side.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
from dataclasses import dataclass

from binlake.lake import MERGE_HEARTBEAT_KEY, Lake

MIN_STALE_SECONDS = 120.0


@dataclass(frozen=True)
class Heartbeat:
    at: datetime.datetime
    stopped: bool
    host: str
    pid: int
    token: str | None = None  # the merge run that wrote it (None: written by a binlake before tokens)

    def running(self, now: datetime.datetime, stale_seconds: float) -> bool:
        return not self.stopped and (now - self.at).total_seconds() < stale_seconds


def stale_after(trigger_seconds: float) -> float:
    """Seconds after which a heartbeat no longer means "running"."""
    return max(MIN_STALE_SECONDS, 10 * trigger_seconds)


def write_heartbeat(lake: Lake, now: datetime.datetime, stopped: bool = False, token: str | None = None) -> None:
    data = {"at": now.isoformat(), "stopped": stopped, "host": socket.gethostname(), "pid": os.getpid(),
            "token": token}
    lake.put_bytes(MERGE_HEARTBEAT_KEY, json.dumps(data).encode(), durable=False)


def read_heartbeat(lake: Lake) -> Heartbeat | None:
    try:
        data = json.loads(lake.get_bytes(MERGE_HEARTBEAT_KEY))
    except (FileNotFoundError, ValueError):
        return None
    return Heartbeat(datetime.datetime.fromisoformat(data["at"]), bool(data.get("stopped")),
                     str(data.get("host")), int(data.get("pid") or 0), data.get("token"))
