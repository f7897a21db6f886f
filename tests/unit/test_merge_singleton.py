"""One merge per lake (binlake.merge.singleton): refusal, take-over of a dead merge, displacement."""

from __future__ import annotations

import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from binlake.lake import MERGE_HEARTBEAT_KEY, Lake
from binlake.merge.heartbeat import read_heartbeat, write_heartbeat
from binlake.merge.singleton import MergeAlreadyRunning, MergeClaim, MergeDisplaced, process_alive

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)


def _claim(lake: Lake, now: datetime.datetime = NOW, **kwargs: object) -> MergeClaim:
    kwargs.setdefault("sleep", lambda _s: None)
    return MergeClaim(lake, lambda: now, 120.0, **kwargs)  # type: ignore[arg-type]


def _foreign(lake: Lake, at: datetime.datetime, host: str = "other-host", pid: int = 4242,
             stopped: bool = False) -> None:
    body = {"at": at.isoformat(), "stopped": stopped, "host": host, "pid": pid, "token": "theirs"}
    lake.put_bytes(MERGE_HEARTBEAT_KEY, json.dumps(body).encode())


def test_a_second_merge_is_refused_while_the_first_holds_the_lake(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    first = _claim(lake)
    first.acquire()
    first.check()
    try:
        with pytest.raises(MergeAlreadyRunning, match=rf"pid {os.getpid()}.*one merge per lake"):
            _claim(lake).acquire()
        first.check()  # the refused one took nothing
        beat = read_heartbeat(lake)
        assert beat is not None and beat.token == first.token and not beat.stopped
    finally:
        first.release()
    beat = read_heartbeat(lake)
    assert beat is not None and beat.stopped and beat.token == first.token
    second = _claim(lake)
    second.acquire()  # a stopped merge holds nothing
    second.release()


def test_a_merge_on_another_host_holds_the_lake_until_its_heartbeat_is_stale(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    _foreign(lake, NOW - datetime.timedelta(seconds=60))
    with pytest.raises(MergeAlreadyRunning, match="host other-host, pid 4242, heartbeat 60 s ago"):
        _claim(lake).acquire()
    _foreign(lake, NOW - datetime.timedelta(seconds=121))
    claim = _claim(lake)
    claim.acquire()
    claim.release()


def test_a_killed_merge_on_this_host_is_taken_over_at_once(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _foreign(lake, NOW, host=socket.gethostname(), pid=child.pid)
        with pytest.raises(MergeAlreadyRunning):
            _claim(lake).acquire()  # alive
        child.send_signal(signal.SIGKILL)
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, not reaped: a zombie
        assert not process_alive(child.pid)
        claim = _claim(lake)
        claim.acquire()
        claim.release()
    finally:
        child.kill()
        child.wait()


def test_a_claim_this_process_abandoned_without_release_does_not_hold_the_lake(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    write_heartbeat(lake, NOW, token="abandoned")  # this pid, a token no live claim holds
    claim = _claim(lake)
    claim.acquire()
    claim.release()


def test_of_two_merges_starting_at_once_the_later_writer_keeps_the_lake(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))

    def meanwhile(_seconds: float) -> None:  # during the first one's settle, the other one writes
        _foreign(lake, NOW)

    earlier = _claim(lake, sleep=meanwhile, beat_seconds=3600)
    earlier.acquire()
    with pytest.raises(MergeAlreadyRunning, match="started at the same moment"):
        earlier.check()  # before it writes anything
    with pytest.raises(MergeAlreadyRunning):
        earlier.check()
    earlier.release()
    beat = read_heartbeat(lake)
    assert beat is not None and beat.token == "theirs" and not beat.stopped


def test_a_displaced_merge_stops_writing_and_leaves_the_heartbeat_to_the_other(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    claim = _claim(lake, beat_seconds=3600)
    claim.acquire()
    claim.beat()
    claim.check()
    _foreign(lake, NOW)  # another merge (whose start did not see this one's heartbeat) took over
    claim.beat()
    with pytest.raises(MergeDisplaced, match=r"host other-host, pid 4242.*writes nothing more"):
        claim.check()
    claim.release()
    beat = read_heartbeat(lake)
    assert beat is not None and beat.token == "theirs" and not beat.stopped


def test_the_heartbeat_thread_keeps_a_long_batch_fresh(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    clock = [NOW]
    claim = MergeClaim(lake, lambda: clock[0], 120.0, beat_seconds=0.05, sleep=lambda _s: None)
    claim.acquire()
    try:
        clock[0] = NOW + datetime.timedelta(seconds=90)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            beat = read_heartbeat(lake)
            if beat is not None and beat.at == clock[0]:
                break
            time.sleep(0.02)
        beat = read_heartbeat(lake)
        assert beat is not None and beat.at == clock[0] and beat.token == claim.token
    finally:
        claim.release()


def test_process_alive() -> None:
    assert process_alive(os.getpid())
    assert not process_alive(0)
