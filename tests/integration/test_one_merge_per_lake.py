"""One merge per lake (binlake.merge.singleton) with real processes: a merge started on a lake that a
running merge (``streaming/merge.py``, its own process) holds is refused before it writes anything;
once that merge is SIGKILLed, a merge started right after takes the lake over and merges exactly."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from capture_support import write_config
from merge_helpers import Source, load_table, merge_config, rows, run_merge
from test_merge_end_to_end import Group

from binlake.capture.checkpoint import Checkpoint, save_checkpoint
from binlake.lake import Lake
from binlake.merge.heartbeat import read_heartbeat
from binlake.merge.singleton import MergeAlreadyRunning
from binlake.positions import BinlogPosition

pytestmark = pytest.mark.spark


@pytest.mark.slow  # a merge process of its own (about two minutes here); the rules are unit-tested
def test_a_second_merge_is_refused_and_a_killed_one_is_taken_over(tmp_path: Path, spark: Any) -> None:
    root = tmp_path / "lake"
    lake = Lake(str(root))
    source = Source(lake)
    path = load_table(spark, lake, "t", [(i, f"r{i}", 0) for i in range(1, 11)], snapshot_pos=100)
    expected = {i: (i, f"r{i}", 0) for i in range(1, 11)}
    for pos, key in ((200, 1), (210, 2)):
        before = {"id": key, "name": expected[key][1], "qty": expected[key][2]}
        source.write(source.upd(pos, "t", (before, {"id": key, "name": f"u{pos}", "qty": pos})))
        expected[key] = (key, f"u{pos}", pos)
    save_checkpoint(lake, Checkpoint(BinlogPosition.of("binlog.000001", 300)))
    config = merge_config(root, trigger_seconds=1)
    log = tmp_path / "merge.log"
    running = Group([sys.executable, "streaming/merge.py", "--config", str(write_config(config, tmp_path / "m.yaml"))],
                    log)
    try:
        deadline = time.monotonic() + 180
        while rows(spark, path) != [expected[k] for k in sorted(expected)]:
            assert running.process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        beat = read_heartbeat(lake)
        assert beat is not None and beat.pid == running.process.pid and not beat.stopped and beat.token

        source.write(source.dele(220, "t", {"id": 3, "name": "r3", "qty": 0}))  # for whichever merge holds the lake
        with pytest.raises(MergeAlreadyRunning, match=rf"pid {running.process.pid}.*one merge per lake"):
            run_merge(spark, config)
        after = read_heartbeat(lake)
        assert after is not None and after.token == beat.token  # the refused merge wrote nothing, not even that
    finally:
        running.kill(signal.SIGKILL)
    expected.pop(3)
    source.write(source.ins(230, "t", {"id": 11, "name": "n11", "qty": 11}))
    expected[11] = (11, "n11", 11)
    save_checkpoint(lake, Checkpoint(BinlogPosition.of("binlog.000001", 400)))
    run_merge(spark, config)  # right after the SIGKILL: the dead merge holds nothing
    assert rows(spark, path) == [expected[k] for k in sorted(expected)]
    beat = read_heartbeat(lake)
    assert beat is not None and beat.stopped
