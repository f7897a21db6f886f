"""MySQL GTID sets through the capture's tracker, failover check and resume decision (recorded
server facts of a MySQL primary and replicas: ``@@gtid_executed`` as the server's state)."""

from __future__ import annotations

import pytest

from binlake.capture.checkpoint import Checkpoint
from binlake.capture.gtids import GtidTracker, merge_sets, missing_gtids, union
from binlake.capture.history import FAILOVER_JOIN, FIRST_START, History, Registry
from binlake.capture.resume import HistoryRefused, ServerFacts, history_change, resume_decision
from binlake.positions import BinlogPosition

A = "3e11fa47-71ca-11e1-9e33-c80aa9429562"   # the old primary
B = "2174b383-5441-11e8-b90a-c80aa9429562"   # the replica promoted


def test_tracker_adds_untagged_and_tagged_gtids() -> None:
    tracker = GtidTracker(f"{A.upper()}:1-41")
    tracker.add(f"{A}:42")
    tracker.add(f"{A}:etl:1")
    tracker.add(f"{B}:7")
    assert tracker.text == f"{B}:7,{A}:1-42:etl:1"
    assert merge_sets(f"{A}:1-5", [f"{A}:6", f"{A}:8"]) == f"{A}:1-6:8"


def test_missing_and_union_in_mysql_form() -> None:
    assert missing_gtids(f"{A}:1-100", f"{A}:1-100,\n{B}:1-3") == []
    assert missing_gtids(f"{A}:1-100", f"{A}:1-97,{B}:1-3") == [f"{A}:98-100"]
    assert missing_gtids(f"{A}:1-10,{B}:5", f"{A}:1-10") == [f"{B}:5"]
    assert missing_gtids(f"{A}:1-10", None) == [f"{A}:1-10"]   # RESET BINARY LOGS AND GTIDS empties gtid_executed
    assert union(f"{A}:1-5", f"{A}:6-9,{B}:1", None) == f"{B}:1,{A}:1-9"


def _pos(file: str, pos: int, gtid: str | None = None, epoch: int = 0) -> BinlogPosition:
    return BinlogPosition.of(file, pos, gtid, epoch)


def _mysql(server_id: int, uuid: str, executed: str | None, end: str = "binlog.000002:3000") -> ServerFacts:
    file, pos = end.split(":")
    return ServerFacts(server_id, uuid, ((file, int(pos)),), _pos(file, int(pos), executed), executed, mariadb=False)


CHECKPOINT = Checkpoint(_pos("binlog.000008", 4200, f"{A}:1-42"), source_server_id=1)
REGISTRY = Registry((History(0, 1, FIRST_START, _pos("binlog.000007", 4), A),))


def test_same_mysql_server_resumes_by_file_and_position() -> None:
    primary = _mysql(1, A, f"{A}:1-50", "binlog.000008:9000")
    assert history_change(CHECKPOINT, primary) is None
    assert resume_decision(CHECKPOINT, REGISTRY, primary, lambda: None).start == CHECKPOINT.position


def test_failover_to_a_mysql_replica_with_every_gtid_joins_by_gtid() -> None:
    replica = _mysql(2, B, f"{A}:1-45,{B}:1-3")
    decision = resume_decision(CHECKPOINT, REGISTRY, replica, lambda: f"{A}:1-43")
    assert (decision.epoch, decision.start, decision.gtid) == (1, None, f"{A}:1-43")
    assert decision.history is not None and decision.history.began == FAILOVER_JOIN


def test_failover_to_a_lagging_mysql_replica_is_refused_naming_the_missing_interval() -> None:
    lagging = _mysql(2, B, f"{A}:1-40,{B}:1-3")
    with pytest.raises(HistoryRefused, match=f"{A}:41-43"):
        resume_decision(CHECKPOINT, REGISTRY, lagging, lambda: f"{A}:1-43")


def test_reset_of_the_mysql_server_is_another_history() -> None:
    reset = _mysql(1, A, None, "binlog.000008:9000")
    assert "not in the server" in (history_change(CHECKPOINT, reset) or "")
