"""The binlog history registry, GTID-set containment and the resume / failover decision (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from binlake.capture.checkpoint import Checkpoint
from binlake.capture.gtids import MariadbGtid, merge_sets, missing_gtids
from binlake.capture.history import (
    EXPLICIT_START,
    FAILOVER_JOIN,
    FIRST_START,
    NO_CHECKPOINT,
    START_AT_END,
    History,
    HistoryError,
    Registry,
    load_registry,
    save_registry,
)
from binlake.capture.records import CaptureDataError
from binlake.capture.resume import HistoryRefused, ServerFacts, history_change, new_start_decision, resume_decision
from binlake.capture.transactions import TransactionAssembler
from binlake.lake import Lake
from binlake.positions import BinlogPosition, epoch_base, make_lsn

# -- GTID sets ---------------------------------------------------------------------------------------


def test_gtid_containment_per_domain_and_server() -> None:
    assert missing_gtids("0-1-42", "0-1-42") == []
    assert missing_gtids("0-1-42", "0-1-50,0-2-60") == []
    assert missing_gtids("0-1-42,1-1-7", "0-1-42,1-1-6") == ["1-1-7"]
    # a lagging replica promoted: it has 0-1-40, then wrote 0-2-41.. itself — seq 43 >= 42 is not enough
    assert missing_gtids("0-1-42", "0-1-40,0-2-43") == ["0-1-42"]
    assert missing_gtids("0-1-42", None) == ["0-1-42"]  # RESET MASTER empties the state
    assert missing_gtids(None, "0-1-1") == []
    assert missing_gtids("0-1-42,5-3-9", "5-3-9") == ["0-1-42"]


def test_gtid_parsing_refuses_other_forms() -> None:
    assert MariadbGtid.parse(" 0-12-345 ") == MariadbGtid(0, 12, 345)
    with pytest.raises(ValueError, match="domain-server-seq"):
        MariadbGtid.parse("0-1")
    # a MySQL set compared with a MariaDB state: nothing in common (binlake.gtidset; tests/unit/test_gtidset.py)
    assert missing_gtids("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5", "0-1-1") == [
        "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"]


def test_merge_sets_keeps_the_last_gtid_per_domain() -> None:
    assert merge_sets("0-1-42,1-1-3", ["0-1-43", "0-2-44"]) == "0-2-44,1-1-3"
    assert merge_sets(None, []) is None


# -- the registry ------------------------------------------------------------------------------------


def _pos(file: str, pos: int, gtid: str | None = None, epoch: int = 0) -> BinlogPosition:
    return BinlogPosition.of(file, pos, gtid, epoch)


def test_registry_round_trips_through_the_lake(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    assert load_registry(lake) == Registry()
    registry = Registry((History(0, 1, FIRST_START, _pos("binlog.000003", 100, "0-1-5"), created_at="t0"),
                         History(1, 2, FAILOVER_JOIN, _pos("binlog.000001", 900, "0-1-9", 1), None, "0-1-9", "t1")))
    save_registry(lake, registry)
    assert load_registry(lake) == registry
    assert load_registry(lake).latest == registry.histories[1]


def test_registry_refuses_bad_entries() -> None:
    start = _pos("binlog.000001", 4)
    with pytest.raises(HistoryError, match="strictly increase"):
        Registry((History(1, 1, FIRST_START, start.in_epoch(1)), History(1, 2, FAILOVER_JOIN, start.in_epoch(1))))
    with pytest.raises(ValueError, match="another epoch"):
        History(2, 1, EXPLICIT_START, start)
    with pytest.raises(ValueError, match="unknown history beginning"):
        History(0, 1, "sideways", start)


def test_coverage_starts_at_the_latest_gap_and_failover_joins_continue_it() -> None:
    first = History(0, 1, FIRST_START, _pos("binlog.000003", 100))
    joined = History(1, 2, FAILOVER_JOIN, _pos("binlog.000001", 500, epoch=1))
    restarted = History(2, 2, START_AT_END, _pos("binlog.000002", 77, epoch=2))
    assert Registry().coverage_start() is None
    assert Registry((first,)).coverage_start() == make_lsn("binlog.000003", 100)
    assert Registry((first, joined)).coverage_start() == make_lsn("binlog.000003", 100)
    assert Registry((first, joined, restarted)).coverage_start() == make_lsn("binlog.000002", 77, 2)
    adopted = History(0, 1, FIRST_START, None)  # a lake from before the registry: trusted from the start
    assert Registry((adopted,)).coverage_start() == 0


# -- the decision ------------------------------------------------------------------------------------

A_FILES = (("binlog.000007", 5000), ("binlog.000008", 9000))


def _server(server_id: int = 1, binlogs: tuple[tuple[str, int], ...] = A_FILES, end: str = "binlog.000008:9000",
            state: str | None = "0-1-42") -> ServerFacts:
    file, pos = end.split(":")
    return ServerFacts(server_id, None, binlogs, _pos(file, int(pos), state), state)


CHECKPOINT = Checkpoint(_pos("binlog.000008", 4200, "0-1-42"), source_server_id=1)
REGISTRY = Registry((History(0, 1, FIRST_START, _pos("binlog.000007", 4)),))


def test_same_server_same_history_resumes_in_the_checkpoint_epoch() -> None:
    assert history_change(CHECKPOINT, _server()) is None
    decision = resume_decision(CHECKPOINT, REGISTRY, _server(), lambda: None)
    assert (decision.epoch, decision.start, decision.gtid, decision.history) == (0, CHECKPOINT.position, None, None)


def test_a_lake_without_registry_adopts_its_checkpoint_history() -> None:
    decision = resume_decision(CHECKPOINT, Registry(), _server(), lambda: None)
    assert decision.start == CHECKPOINT.position
    assert decision.history is not None and decision.history.start is None and decision.history.epoch == 0


def test_failover_to_a_replica_that_has_every_gtid_joins_by_gtid_in_a_new_epoch() -> None:
    replica = _server(2, (("binlog.000002", 3000),), "binlog.000002:3000", "0-1-42,0-2-3")
    assert history_change(CHECKPOINT, replica) == "server_id 1 → 2"
    decision = resume_decision(CHECKPOINT, REGISTRY, replica, lambda: "0-1-42")
    assert (decision.epoch, decision.start, decision.gtid) == (1, None, "0-1-42")
    assert decision.history is not None
    assert (decision.history.began, decision.history.server_id, decision.history.start_gtid) == (FAILOVER_JOIN, 2,
                                                                                               "0-1-42")
    assert decision.history.start == _pos("binlog.000002", 3000, epoch=1)  # an upper bound of the join point
    assert "failover: server_id 1 → 2" in decision.message and "epoch 1" in decision.message


def test_failover_counts_records_written_after_the_checkpoint() -> None:
    replica = _server(2, (("binlog.000002", 3000),), "binlog.000002:3000", "0-1-42")
    with pytest.raises(HistoryRefused, match="GTID\\(s\\) 0-1-43 that the lake already holds"):
        resume_decision(CHECKPOINT, REGISTRY, replica, lambda: "0-1-43")


def test_failover_to_a_lagging_replica_is_refused_naming_the_missing_gtid() -> None:
    lagging = _server(2, (("binlog.000002", 3000),), "binlog.000002:3000", "0-1-40,0-2-44")
    with pytest.raises(HistoryRefused) as refused:
        resume_decision(CHECKPOINT, REGISTRY, lagging, lambda: "0-1-42")
    text = str(refused.value)
    assert "0-1-42" in text and "server_id 2" in text and "capture.start: end" in text and "reload" in text


def test_reset_master_on_the_same_server_is_another_history() -> None:
    reset = _server(1, (("binlog.000001", 700),), "binlog.000001:700", None)
    assert "RESET MASTER" in (history_change(CHECKPOINT, reset) or "")
    with pytest.raises(HistoryRefused, match="not executed"):
        resume_decision(CHECKPOINT, REGISTRY, reset, lambda: "0-1-42")
    shorter = _server(1, (("binlog.000008", 100),), "binlog.000008:100", "0-1-42")
    assert "shorter than the checkpoint offset" in (history_change(CHECKPOINT, shorter) or "")
    no_gtids = _server(1, A_FILES, "binlog.000008:9000", "0-1-12")
    assert "@@gtid_binlog_state" in (history_change(CHECKPOINT, no_gtids) or "")


def test_a_checkpoint_without_gtid_cannot_follow_a_failover() -> None:
    checkpoint = Checkpoint(_pos("binlog.000008", 4200), source_server_id=1)
    with pytest.raises(HistoryRefused, match="carries no GTID"):
        resume_decision(checkpoint, REGISTRY, _server(2), lambda: None)


def test_a_join_registered_by_a_run_that_saved_no_checkpoint_is_reused() -> None:
    replica = _server(2, (("binlog.000002", 3000),), "binlog.000002:3000", "0-1-42")
    first = resume_decision(CHECKPOINT, REGISTRY, replica, lambda: "0-1-42")
    assert first.history is not None
    registry = REGISTRY.with_history(first.history)
    again = resume_decision(CHECKPOINT, registry, replica, lambda: "0-1-42")
    assert (again.epoch, again.gtid, again.history) == (1, "0-1-42", None)


def test_a_newer_epoch_without_checkpoint_continues_only_with_gtids_the_server_has() -> None:
    registry = REGISTRY.with_history(History(1, 2, FAILOVER_JOIN, _pos("binlog.000002", 80, epoch=1)))
    with pytest.raises(HistoryRefused, match="0-2-43"):  # records of the other server, written after the checkpoint
        resume_decision(CHECKPOINT, registry, _server(), lambda: "0-1-42,0-2-43")
    decision = resume_decision(CHECKPOINT, registry, _server(), lambda: "0-1-42")
    assert decision.epoch == 2 and decision.start == CHECKPOINT.position.in_epoch(2)


def test_first_start_is_epoch_zero_and_later_explicit_starts_open_a_gap() -> None:
    end = _server()
    first = new_start_decision(None, Registry(), end, end.end, None, START_AT_END)
    assert first.epoch == 0 and first.history is not None and first.history.began == FIRST_START
    assert first.start == end.end
    explicit = new_start_decision(CHECKPOINT, REGISTRY, end, _pos("binlog.000008", 5000), None, EXPLICIT_START)
    assert explicit.epoch == 1 and explicit.start == _pos("binlog.000008", 5000, epoch=1)
    assert explicit.history is not None and explicit.history.gap and "a gap" in explicit.message
    lost = new_start_decision(None, REGISTRY, end, end.end, None, START_AT_END)
    assert lost.epoch == 1 and lost.history is not None and lost.history.began == NO_CHECKPOINT


def test_an_explicit_start_before_the_checkpoint_of_the_same_history_is_a_re_read_in_its_epoch() -> None:
    decision = new_start_decision(CHECKPOINT, REGISTRY, _server(), _pos("binlog.000007", 300), None, EXPLICIT_START)
    assert (decision.epoch, decision.start, decision.history) == (0, _pos("binlog.000007", 300), None)
    assert "re-reading" in decision.message
    other = _server(2, (("binlog.000007", 5000),), "binlog.000007:5000", "0-1-42")  # another server: a gap
    assert new_start_decision(CHECKPOINT, REGISTRY, other, _pos("binlog.000007", 300), None, EXPLICIT_START).epoch == 1


def test_start_at_end_exactly_at_the_checkpoint_is_a_resume() -> None:
    server = _server(end="binlog.000008:4200")
    decision = new_start_decision(CHECKPOINT, REGISTRY, server, server.end, None, START_AT_END)
    assert (decision.epoch, decision.start, decision.history) == (0, CHECKPOINT.position, None)


def test_a_gtid_start_is_bounded_by_the_end_at_decision_time() -> None:
    server = _server(end="binlog.000008:9000")
    decision = new_start_decision(CHECKPOINT, REGISTRY, server, None, "0-1-30", EXPLICIT_START)
    assert (decision.epoch, decision.start, decision.gtid) == (1, None, "0-1-30")
    assert decision.history is not None and decision.history.start == server.end.in_epoch(1)
    assert decision.history.start_lsn > epoch_base(1)


# -- the assembler writes the epoch and keeps the order invariant ------------------------------------


def _assembler(start: BinlogPosition) -> TransactionAssembler:
    from test_capture_assembler import FakeLayouts, fake_records

    return TransactionAssembler(FakeLayouts(), start, records=fake_records)


def test_records_and_positions_carry_the_start_epoch() -> None:
    from test_capture_assembler import rows

    asm = _assembler(_pos("binlog.000001", 4, "0-1-42", epoch=2))
    asm.on_gtid("0-2-43", 0)
    asm.on_rows(rows("orders", 200, 1))
    asm.on_xid(1, 250, 1)
    asm.on_gtid("0-2-44", 1)
    asm.on_query("ALTER TABLE orders ADD c INT", "shop", 300, 1)
    batch = asm.pending_batch()
    (txn, ddl), position = batch.transactions, batch.position
    assert txn.events[0].lsn == make_lsn("binlog.000001", 200, epoch=2)
    assert ddl.events[0].lsn == make_lsn("binlog.000001", 300, epoch=2)
    assert position == _pos("binlog.000001", 300, epoch=2) and position.epoch == 2


def test_a_record_at_or_before_the_start_is_refused_and_the_position_does_not_move() -> None:
    from test_capture_assembler import rows

    asm = _assembler(_pos("binlog.000005", 1000, "0-1-42"))
    asm.on_gtid("0-1-43", 0)
    asm.on_rows(rows("orders", 900, 1))  # the binlog went backwards under the capture
    with pytest.raises(CaptureDataError, match="at or before"):
        asm.on_xid(1, 950, 1)
    assert asm.position == _pos("binlog.000005", 1000) and asm.pending == []


# -- snapshots against the registry ------------------------------------------------------------------


def test_a_snapshot_belongs_to_the_latest_history_of_its_server_only() -> None:
    from binlake.capture.history import snapshot_history

    registry = Registry((History(0, 1, FIRST_START, _pos("binlog.000003", 100)),
                         History(1, 2, FAILOVER_JOIN, _pos("binlog.000001", 500, epoch=1))))
    assert snapshot_history(Registry(), 1, None) is None
    assert snapshot_history(registry, 2, None) == registry.histories[1]
    with pytest.raises(HistoryError, match="Start \\(or restart\\) the capture against this server first"):
        snapshot_history(registry, 1, None)  # the old primary: the change log follows server 2 now
    joined = History(1, 2, FAILOVER_JOIN, _pos("binlog.000001", 500, epoch=1), None, "0-1-42")
    reset = Registry((registry.histories[0], joined))
    assert snapshot_history(reset, 2, None, "0-1-42,0-2-50", mariadb=True) == joined
    with pytest.raises(HistoryError, match="RESET MASTER"):
        snapshot_history(reset, 2, None, None, mariadb=True)  # the state was emptied since the join


def test_snapshot_gap_names_the_gap_and_the_fix() -> None:
    from binlake.capture.history import snapshot_gap

    registry = Registry((History(0, 1, FIRST_START, _pos("binlog.000003", 100)),
                         History(1, 2, FAILOVER_JOIN, _pos("binlog.000001", 500, epoch=1))))
    assert snapshot_gap(Registry(), _pos("binlog.000001", 4), 1) is None  # no capture yet: nothing to say
    assert snapshot_gap(registry, _pos("binlog.000003", 100), 1) is None  # at the start: complete
    assert snapshot_gap(registry, _pos("binlog.000001", 20, epoch=1), 2) is None  # after a continuous join
    before = snapshot_gap(registry, _pos("binlog.000002", 9), 1)
    assert before is not None and "older than the start of the change log at binlog.000003:100" in before
    assert "reload this table" in before
    other = snapshot_gap(registry, _pos("binlog.000009", 9), 7)
    assert other is not None and "server_id 7" in other
    gap = registry.with_history(History(2, 2, START_AT_END, _pos("binlog.000004", 10, epoch=2)))
    joined_before = snapshot_gap(gap, _pos("binlog.000001", 20, epoch=1), 2)  # joined, then a gap began
    assert joined_before is not None and "start at end, epoch 2" in joined_before


def test_status_text_and_gauges_show_the_epoch_and_the_tables_left_out() -> None:
    from binlake.status import render_text, to_prometheus

    history = History(1, 2, FAILOVER_JOIN, _pos("binlog.000001", 500, epoch=1), None, "0-1-42")
    table = {"table": "shop.items", "snapshot": "complete", "snapshot_rows": 10, "snapshot_lsn": None,
             "applied_lsn": make_lsn("binlog.000001", 900, 1), "lag_seconds": None, "last_batch": None,
             "last_error": None, "gap": "snapshot at binlog.000002:9 is older than the start of the change log"}
    status = {"pipeline": "p", "lake": "/l", "source_end_lsn": None, "history": [history.to_dict()],
              "capture": {"state": "running", "position": None, "lag_seconds": None, "events_per_second": None,
                          "changelog_files": 0},
              "merge": {"batch_id": 3, "applied_lsn": make_lsn("binlog.000001", 900, 1), "last_error": None},
              "tables": [table]}
    text = render_text(status)
    assert "history: epoch 1 (server_id 2, gtid-join after failover at binlog.000001:500)" in text
    assert "e1:000001:900" in text
    assert "NOT MERGED" in text and "shop.items: snapshot at binlog.000002:9 is older" in text
    samples = dict(line.rsplit(" ", 1) for line in to_prometheus(status).splitlines() if not line.startswith("#"))
    assert samples['binlake_capture_epoch{pipeline="p"}'] == "1"
    assert samples['binlake_table_gap{pipeline="p",table="shop.items"}'] == "1"


def test_the_lake_holds_the_gtids_of_its_checkpoint_later_records_and_snapshots(tmp_path: Path) -> None:
    from binlake.capture.gtids import union
    from binlake.capture.history import lake_gtids
    from binlake.chunks import ChunkRange
    from binlake.lake import snapshot_state_key
    from binlake.snapshot.state import COMMITTED, ChunkState, TableState

    lake = Lake(str(tmp_path))
    checkpoint = Checkpoint(_pos("binlog.000002", 100, "0-1-5"), source_server_id=1)
    assert lake_gtids(lake, checkpoint) == "0-1-5"
    for table, position in (("ahead", _pos("binlog.000002", 900, "0-1-9")),        # a snapshot ahead of the capture
                            ("older", _pos("binlog.000001", 10, "0-1-2")),
                            ("reset", _pos("binlog.000001", 10, "0-1-99", epoch=1))):  # another history: not held
        chunk = ChunkState(0, ChunkRange(None, None), "1=1", COMMITTED, 1, position)
        state = TableState("id", "src", table, "lake", table, "/p", "DROP_AND_CREATE", ("id",), position,
                           "2026-01-01T00:00:00+00:00", (chunk,))
        lake.put_bytes(snapshot_state_key("src", table), state.to_json())
    assert lake_gtids(lake, checkpoint) == "0-1-9"
    assert union("0-1-42,1-1-3", "0-2-50", None) == "0-2-50,1-1-3"


def test_a_lake_from_before_the_registry_fails_over_into_epoch_one() -> None:
    replica = _server(2, (("binlog.000002", 3000),), "binlog.000002:3000", "0-1-42")
    decision = resume_decision(CHECKPOINT, Registry(), replica, lambda: "0-1-42")
    assert decision.epoch == 1 and decision.history is not None and decision.history.epoch == 1
