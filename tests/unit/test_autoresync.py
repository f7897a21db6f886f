"""Automatic resync requests: durable, one per (table, lsn), served once, never lost (no server)."""

from __future__ import annotations

import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from binlake.chunks import WHOLE
from binlake.lake import Lake
from binlake.merge.autoresync import (
    DONE,
    FAILED,
    PENDING,
    AutoResyncRefused,
    AutoResyncRunner,
    delivered_after_lsn,
    read_requests,
    request_resync,
)
from binlake.merge.summary import TableName
from binlake.resync import store
from binlake.resync.job import NotSelectedError, ResyncError
from binlake.resync.manifest import Resync, ResyncChunk
from binlake.resync.ranges import ResyncKey

T = TableName("shop", "Orders", "shop", "orders")


def ctx(lake: Lake) -> Any:
    return SimpleNamespace(lake=lake)


def delivered(lake: Lake, created: datetime.datetime, lsn: int | None, resync_id: str = "r1",
              reason: str = "auto") -> Resync:
    chunk = ResyncChunk(0, WHOLE, "1=1", None if lsn is None else "_binlake/resync/x", lsn)
    resync = Resync(resync_id, "shop", "Orders", "shop", "orders", (ResyncKey("id", "int"),), created.isoformat(),
                    (chunk,), reason=reason)
    store.write_manifest(lake, resync)
    return resync


class FakeRun:
    """Stands in for run_resync (the real one needs a source and Spark: tested end to end)."""

    def __init__(self, lake: Lake, error: Exception | None = None) -> None:
        self.lake = lake
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def __call__(self, config: Any, spark: Any, table: str, **kwargs: Any) -> Any:
        self.calls.append({"table": table, **kwargs})
        if self.error is not None:
            raise self.error
        resync = delivered(self.lake, datetime.datetime.now(datetime.UTC), 10**9, f"r{len(self.calls)}")
        return SimpleNamespace(resync_id=resync.resync_id)


def test_a_request_is_written_once_per_table_and_lsn(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    assert request_resync(ctx(lake), T, "ADD COLUMN with DEFAULT CURRENT_TIMESTAMP", lsn=42, statement="ALTER …")
    assert not request_resync(ctx(lake), T, "a replayed batch", lsn=42)
    assert request_resync(ctx(lake), T, "DROP PARTITION", lsn=50)
    requests = read_requests(lake, T)
    assert [(r.lsn, r.reason, r.state) for r in requests] == [
        (42, "ADD COLUMN with DEFAULT CURRENT_TIMESTAMP", PENDING), (50, "DROP PARTITION", PENDING)]
    assert requests[0].statement == "ALTER …"
    with pytest.raises(ValueError, match="reason"):
        request_resync(ctx(lake), T, "", lsn=1)


def test_one_resync_serves_every_pending_request_of_a_table_and_runs_once(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    request_resync(ctx(lake), T, "first", lsn=42)
    request_resync(ctx(lake), T, "second", lsn=50)
    run = FakeRun(lake)
    runner = AutoResyncRunner(None, None, lake, run=run)  # type: ignore[arg-type]
    assert runner.run_pending() == 1
    assert [c["table"] for c in run.calls] == ["shop.Orders"]
    assert run.calls[0]["reason"] == "auto" and run.calls[0]["restart"] is True
    assert {(r.state, r.resync_id) for r in read_requests(lake)} == {(DONE, "r1")}
    assert runner.run_pending() == 0 and len(run.calls) == 1
    request_resync(ctx(lake), T, "a replay of the first", lsn=42)
    assert runner.run_pending() == 0 and len(run.calls) == 1


def test_a_resync_delivered_before_a_crash_is_recorded_not_run_again(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    request_resync(ctx(lake), T, "why", lsn=42)
    delivered(lake, datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1), 100, "rdone")
    run = FakeRun(lake)
    AutoResyncRunner(None, None, lake, run=run).run_pending()  # type: ignore[arg-type]
    assert run.calls == [] and read_requests(lake)[0].resync_id == "rdone"


def test_an_older_resync_does_not_answer_a_newer_request(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    delivered(lake, datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1), 10, "rold", reason="resync")
    request_resync(ctx(lake), T, "why", lsn=42)
    run = FakeRun(lake)
    AutoResyncRunner(None, None, lake, run=run).run_pending()  # type: ignore[arg-type]
    assert len(run.calls) == 1 and read_requests(lake)[0].resync_id == "r1"


def test_an_unfinished_auto_resync_planned_after_the_request_is_resumed(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    request_resync(ctx(lake), T, "why", lsn=42)
    delivered(lake, datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1), None, "rhalf")
    run = FakeRun(lake)
    AutoResyncRunner(None, None, lake, run=run).run_pending()  # type: ignore[arg-type]
    assert run.calls[0]["restart"] is False


def test_a_refused_resync_fails_the_request_and_a_transient_error_keeps_it(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    request_resync(ctx(lake), T, "why", lsn=42)
    AutoResyncRunner(None, None, lake, run=FakeRun(lake, RuntimeError("source down"))).run_pending()  # type: ignore[arg-type]
    assert read_requests(lake)[0].state == PENDING
    AutoResyncRunner(None, None, lake, run=FakeRun(lake, ResyncError("no primary key"))).run_pending()  # type: ignore[arg-type]
    request = read_requests(lake)[0]
    assert (request.state, request.error) == (FAILED, "no primary key")


def test_a_table_gone_from_the_source_needs_no_resync_and_stops_nothing(tmp_path: Path) -> None:
    """An online schema change's _t_del: renamed onto (a request), dropped right after."""
    lake = Lake(str(tmp_path))
    request_resync(ctx(lake), T, "renamed onto", lsn=42)
    runner = AutoResyncRunner(None, None, lake, run=FakeRun(lake, NotSelectedError("not selected")))  # type: ignore[arg-type]
    runner.run_pending()
    assert read_requests(lake)[0].state == DONE
    runner.check()


def test_a_refused_resync_stops_the_merge_now_and_at_every_start_until_made_good(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    request_resync(ctx(lake), T, "ALTER … ADD COLUMN ts … DEFAULT CURRENT_TIMESTAMP", lsn=42)
    runner = AutoResyncRunner(None, None, lake, run=FakeRun(lake, ResyncError("no primary key")))  # type: ignore[arg-type]
    runner.check()                                                    # nothing refused yet
    runner.run_pending()
    with pytest.raises(AutoResyncRefused, match=r"shop\.orders.*lsn 42.*no primary key.*DROP_AND_CREATE"):
        runner.check()
    with pytest.raises(AutoResyncRefused):                            # a restarted merge stops too
        AutoResyncRunner(None, None, lake).check()  # type: ignore[arg-type]
    delivered(lake, datetime.datetime.now(datetime.UTC), 41, "r1", reason="resync")
    with pytest.raises(AutoResyncRefused):                            # read before the change: not enough
        AutoResyncRunner(None, None, lake).check()  # type: ignore[arg-type]
    delivered(lake, datetime.datetime.now(datetime.UTC), 42, "r2", reason="resync")
    AutoResyncRunner(None, None, lake).check()  # type: ignore[arg-type]


def test_delivered_after_lsn_needs_every_chunk_read_after_the_change(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    now = datetime.datetime.now(datetime.UTC)
    delivered(lake, now, 41, "r1", reason="resync")
    assert delivered_after_lsn(lake, T, 42) is None
    delivered(lake, now, 42, "r2", reason="resync")  # a snapshot at the statement's own position holds it
    found = delivered_after_lsn(lake, T, 42)
    assert found is not None and found.resync_id == "r2"
