"""One merge per lake: a second merge started on a lake that a merge is running on is refused, and
a merge whose lake another merge has taken over stops before it writes another batch.

Two merges on one lake run the same checkpoint's batches side by side: both commit to the same Delta
tables and to the same checkpoint, which no store's log rules allow (on S3 a commit can even be
overwritten), and the lake can differ from the source until Spark finally refuses a checkpoint.
binlake's single-writer rule is therefore enforced, not only documented.

The claim is the merge heartbeat (:mod:`binlake.merge.heartbeat`) signed with a random token per run:

* :meth:`MergeClaim.acquire` reads the heartbeat. Another run's heartbeat that is not marked stopped,
  is younger than ``stale_seconds`` and is not provably dead refuses the start
  (:class:`MergeAlreadyRunning`, naming host, pid, age and what to do). Provably dead: written on this
  host by a process that no longer exists (a SIGKILLed merge restarts at once), or by this very
  process under a token no live claim of it holds. Otherwise the claim writes its own heartbeat.
  The first :meth:`MergeClaim.check` (before the merge writes anything) reads it back at least
  ``settle_seconds`` after that write (the merge's own start-up usually covers the wait): when two
  merges start at once on a store without conditional writes, the later writer keeps the lake and
  the earlier one is refused.
* A daemon thread rewrites the heartbeat every ``beat_seconds``, also during a long batch. Before each
  write it reads the heartbeat; if another run's token is there, the claim is *lost*: logged as an
  error, and nothing more is written.
* :meth:`MergeClaim.check` raises :class:`MergeDisplaced` once the claim is lost. The merge calls it
  before its checkpoint is touched, before each batch and before applying resync chunks, so a
  displaced merge commits no further batch (its current batch, if any, is replayed exactly once by
  whichever merge continues).
* :meth:`MergeClaim.release` stops the thread and marks the heartbeat stopped (only while it is ours).

A merge SIGKILLed on another host holds the lake until its heartbeat is ``stale_seconds`` old
(:func:`binlake.merge.heartbeat.stale_after`), which errs on the safe side.
"""

from __future__ import annotations

import datetime
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from binlake.lake import MERGE_HEARTBEAT_KEY, Lake
from binlake.merge.heartbeat import Heartbeat, read_heartbeat, write_heartbeat

log = logging.getLogger(__name__)

Clock = Callable[[], datetime.datetime]

_LIVE_TOKENS: set[str] = set()  # tokens of this process's claims between acquire and release
_LIVE_LOCK = threading.Lock()


class MergeAlreadyRunning(RuntimeError):
    """Another merge holds the lake (its heartbeat is fresh and it is not provably dead)."""


class MergeDisplaced(RuntimeError):
    """Another merge took the lake over while this one ran: this one must not write again."""


def process_alive(pid: int) -> bool:
    """Is process ``pid`` of this host alive (a zombie — killed, not yet reaped — is not)?"""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        state = stat.read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def holder_of(beat: Heartbeat | None, now: datetime.datetime, stale_seconds: float, host: str, pid: int,
              alive: Callable[[int], bool] = process_alive) -> Heartbeat | None:
    """The other merge ``beat`` says holds the lake, or ``None`` when the lake is free: no heartbeat,
    marked stopped, older than ``stale_seconds``, or written on this ``host`` by a process that is gone
    (or by this process ``pid`` under a token none of its live claims holds)."""
    if beat is None or not beat.running(now, stale_seconds):
        return None
    if beat.host == host:
        if beat.pid == pid:
            with _LIVE_LOCK:
                return beat if beat.token in _LIVE_TOKENS else None
        if not alive(beat.pid):
            return None
    return beat


class MergeClaim:
    """This merge run's hold on the lake (see the module docstring)."""

    def __init__(self, lake: Lake, clock: Clock, stale_seconds: float, beat_seconds: float = 5.0,
                 settle_seconds: float = 1.0, sleep: Callable[[float], None] = time.sleep,
                 alive: Callable[[int], bool] = process_alive) -> None:
        self.lake = lake
        self.clock = clock
        self.stale_seconds = stale_seconds
        self.beat_seconds = min(beat_seconds, stale_seconds / 4)
        self.settle_seconds = settle_seconds
        self.token = secrets.token_hex(8)
        self._sleep = sleep
        self._alive = alive
        self._lost: Heartbeat | None = None
        self._written_at: float | None = None  # time.monotonic() of the first write, until confirmed
        self._refused: MergeAlreadyRunning | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one heartbeat read-and-write at a time

    def acquire(self) -> None:
        """Take the lake or raise :class:`MergeAlreadyRunning`; then keep it (a daemon thread)."""
        self._refuse_if_held()
        write_heartbeat(self.lake, self.clock(), token=self.token)
        self._written_at = time.monotonic()
        with _LIVE_LOCK:
            _LIVE_TOKENS.add(self.token)
        self._thread = threading.Thread(target=self._keep, name="binlake-merge-heartbeat", daemon=True)
        self._thread.start()
        log.info("merge: this run (token %s) holds the lake %s", self.token, self.lake.uri())

    def _refuse_if_held(self) -> None:
        beat = read_heartbeat(self.lake)
        holder = holder_of(beat, self.clock(), self.stale_seconds, socket.gethostname(), os.getpid(), self._alive)
        if holder is not None:
            raise MergeAlreadyRunning(self._message(holder, "is running"))
        if beat is not None and beat.running(self.clock(), self.stale_seconds):
            log.warning("merge: the previous merge (host %s, pid %d) is gone without stopping; taking the lake over",
                        beat.host, beat.pid)

    def _message(self, beat: Heartbeat | None, what: str) -> str:
        if beat is None:
            return f"another merge on {self.lake.uri()} {what}: its heartbeat ({MERGE_HEARTBEAT_KEY}) vanished"
        age = (self.clock() - beat.at).total_seconds()
        return (f"another merge on {self.lake.uri()} {what} (host {beat.host}, pid {beat.pid}, heartbeat "
                f"{age:.0f} s ago): one merge per lake. Stop it first; if it was killed on another host, start "
                f"this one again once its heartbeat is {self.stale_seconds:.0f} s old ({MERGE_HEARTBEAT_KEY})")

    def _keep(self) -> None:
        while not self._stop.wait(self.beat_seconds):
            try:
                self.beat()
            except Exception:  # a lake hiccup: the next beat tries again; staleness is minutes away
                log.warning("merge heartbeat not written", exc_info=True)
            if self._lost is not None:
                return

    def beat(self, stopped: bool = False) -> None:
        """Rewrite the heartbeat while it is ours; mark the claim lost (and write nothing) otherwise."""
        with self._lock:
            if self._lost is not None:
                return
            beat = read_heartbeat(self.lake)
            if beat is not None and beat.token != self.token:
                self._lost = beat
                log.error("merge: %s", self._displaced(beat))
                return
            write_heartbeat(self.lake, self.clock(), stopped=stopped, token=self.token)

    def _displaced(self, beat: Heartbeat) -> str:
        return (f"another merge (host {beat.host}, pid {beat.pid}) took over the lake {self.lake.uri()}: this "
                "merge writes nothing more and stops (one merge per lake; the other one continues from the "
                "checkpoint)")

    def check(self) -> None:
        """Raise :class:`MergeAlreadyRunning` when the read-back of the first write shows another
        run's heartbeat (this one is refused), :class:`MergeDisplaced` once another merge has taken
        the lake over."""
        self._confirm()
        if self._lost is not None:
            raise MergeDisplaced(self._displaced(self._lost))

    def _confirm(self) -> None:
        if self._refused is not None:
            raise self._refused
        if self._written_at is None:
            return
        self._sleep(max(0.0, self._written_at + self.settle_seconds - time.monotonic()))
        beat = read_heartbeat(self.lake)
        if beat is None or beat.token != self.token:
            self._refused = MergeAlreadyRunning(self._message(beat, "started at the same moment"))
            self._lost = beat
            raise self._refused
        self._written_at = None

    def release(self) -> None:
        """Stop keeping the lake; the heartbeat is marked stopped while it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.beat_seconds + 5)
        try:
            self.beat(stopped=True)
        except Exception:
            log.warning("merge heartbeat not marked stopped", exc_info=True)
        finally:
            with _LIVE_LOCK:
                _LIVE_TOKENS.discard(self.token)
