"""A replica snapshot's GTIDs placed in the primary's change-log order (binlake.snapshot.replicalabel),
and the checks a replica must pass (binlake.snapshot.replica.replica_problems)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence

import pytest

from binlake.capture.history import FIRST_START, History
from binlake.positions import BinlogPosition, make_lsn
from binlake.snapshot.replica import ReplicaFacts, replica_problems
from binlake.snapshot.replicalabel import Held, Record, ReplicaLabelError, translate

UUID = "3e11fa47-71ca-11e1-9e33-c80aa9429562"


def rec(pos: int, gtid: str | None, file: str = "binlog.000007") -> Record:
    return Record(make_lsn(file, pos), file, pos, gtid)


def checkpoint(pos: int, gtid: str) -> Record:
    return rec(pos, gtid)


def groups(records: Sequence[Record], size: int = 2) -> list[list[Record]]:
    """Newest first, ``size`` records per group (as files are read backwards)."""
    ordered = sorted(records, key=lambda r: r.lsn)
    chunks = [ordered[i:i + size] for i in range(0, len(ordered), size)]
    return list(reversed(chunks))


# one domain: transactions 0-11-1 .. 0-11-5, one record each at positions 100, 200, … 500
LOG = [rec(100 * n, f"0-11-{n}") for n in range(1, 6)]


def test_the_label_is_the_last_record_before_the_first_one_the_snapshot_lacks() -> None:
    label = translate(Held.parse("0-11-3", mariadb=True), checkpoint(600, "0-11-5"), groups(LOG))
    assert (label.lsn, label.gtid) == (LOG[2].lsn, "0-11-3")
    held = {r.lsn for r in LOG if Held.parse("0-11-3", mariadb=True).has(r.gtid or "")}
    assert all(r.lsn in held for r in LOG if r.lsn <= label.lsn)  # (A): at or before the label: in the snapshot
    assert all(r.lsn not in held for r in LOG if r.lsn > label.lsn)  # exact here: after it, not


def test_a_snapshot_holding_everything_is_labelled_with_the_checkpoint_without_reading() -> None:
    def unread() -> Iterator[list[Record]]:
        raise AssertionError("the change log must not be read")
        yield []

    label = translate(Held.parse("0-11-5", mariadb=True), checkpoint(600, "0-11-5"), unread())
    assert label.lsn == checkpoint(600, "0-11-5").lsn


def test_a_checkpoint_that_does_not_cover_the_snapshot_is_refused() -> None:
    with pytest.raises(ReplicaLabelError, match=r"does not cover the replica's snapshot yet \(domain 0 at 5"):
        translate(Held.parse("0-11-5", mariadb=True), checkpoint(400, "0-11-4"), groups(LOG))


def test_records_after_the_checkpoint_and_at_or_below_the_floor_are_ignored() -> None:
    floor = LOG[1]  # a previous label: everything up to 0-11-2 held
    later = groups([*LOG, rec(700, "0-11-6")])  # 0-11-6 is after the checkpoint
    label = translate(Held.parse("0-11-4", mariadb=True), checkpoint(600, "0-11-5"), later, floor)
    assert label.lsn == LOG[3].lsn
    first_missing_only = translate(Held.parse("0-11-2", mariadb=True), checkpoint(600, "0-11-5"), groups(LOG), floor)
    assert first_missing_only.lsn == floor.lsn  # the first record after the floor is already missing


def test_the_first_record_of_the_change_log_missing_labels_just_before_it() -> None:
    label = translate(Held.parse("0-11-0", mariadb=True), checkpoint(600, "0-11-5"), groups(LOG))
    assert label.lsn == LOG[0].lsn - 1


def test_domains_are_ordered_independently() -> None:
    # domain 1 lags on the replica (out-of-order parallel apply across domains is allowed)
    log = [rec(100, "0-11-1"), rec(200, "1-11-1"), rec(300, "0-11-2"), rec(400, "1-11-2"), rec(500, "0-11-3")]
    held = Held.parse("0-11-3,1-11-1", mariadb=True)
    label = translate(held, checkpoint(600, "0-11-3,1-11-2"), groups(log, 1))
    assert label.lsn == log[2].lsn  # 1-11-2 at 400 is the first missing; 0-11-3 after it is replayed idempotently
    # a domain the snapshot is complete in does not keep the scan going: domain 5 never appears
    label = translate(Held.parse("0-11-3,1-11-2,5-11-9", mariadb=True), checkpoint(600, "0-11-3,1-11-2,5-11-9"),
                      groups(log, 1))
    assert label.lsn == checkpoint(600, "").lsn


def test_the_scan_stops_once_every_lagging_stream_has_a_held_record() -> None:
    read: list[int] = []
    log = [rec(100 * n, f"0-11-{n}") for n in range(1, 11)]

    def newest_first() -> Iterator[list[Record]]:
        for group in groups(log, 2):
            read.append(group[0].lsn)
            yield group

    label = translate(Held.parse("0-11-8", mariadb=True), checkpoint(1100, "0-11-10"), newest_first())
    assert label.lsn == log[7].lsn and len(read) == 2  # 9..10 missing, 7..8 held: stop


def test_a_held_transaction_after_a_missing_one_is_refused() -> None:
    log = [rec(100, "0-11-1"), rec(200, "0-11-2"), rec(300, "0-11-3")]
    snapshot = Held.parse("0-11-3", mariadb=True)
    mysql = Held.parse(f"{UUID}:1:3", mariadb=False)  # MySQL: 2 missing, 3 held: not a prefix
    mysql_log = [rec(100, f"{UUID}:1"), rec(200, f"{UUID}:2"), rec(300, f"{UUID}:3")]
    assert translate(snapshot, checkpoint(400, "0-11-3"), groups(log)).lsn == checkpoint(400, "").lsn
    with pytest.raises(ReplicaLabelError, match=f"lacks {UUID}:2 .*replica_preserve_commit_order"):
        translate(mysql, checkpoint(400, f"{UUID}:1-3"), groups(mysql_log, 1))  # the hole shows in the set
    # a MariaDB position cannot show a hole; the change log shows one: 0-11-3 written before 0-11-2
    with pytest.raises(ReplicaLabelError, match="lacks 0-11-3 but holds a later transaction of domain 0"):
        translate(Held.parse("0-11-2", True), checkpoint(400, "0-11-3"), [[rec(300, "0-11-2"), rec(200, "0-11-3")]])


def test_mysql_gtid_sets_are_one_stream() -> None:
    log = [rec(100, f"{UUID}:1"), rec(200, f"{UUID}:2"), rec(300, f"{UUID}:3")]
    label = translate(Held.parse(f"{UUID}:1-2", mariadb=False), checkpoint(400, f"{UUID}:1-3"), groups(log))
    assert (label.lsn, label.gtid) == (log[1].lsn, f"{UUID}:1-2")


def test_held_positions_only_grow_and_records_need_gtids() -> None:
    assert Held.parse("0-11-5,1-11-2", True).includes(Held.parse("0-11-4", True))
    assert not Held.parse("0-11-5", True).includes(Held.parse("0-11-4,1-11-1", True))
    assert Held.parse(f"{UUID}:1-9", False).includes(Held.parse(f"{UUID}:1-5", False))
    with pytest.raises(ReplicaLabelError, match="not in the MySQL form"):
        Held.parse("0-11-5", mariadb=False)
    with pytest.raises(ReplicaLabelError, match="carries no GTID"):
        translate(Held.parse("0-11-1", True), checkpoint(400, "0-11-3"), [[rec(300, None)]])


PRIMARY = History(0, 11, FIRST_START, BinlogPosition.of("binlog.000005", 4))
GOOD_MARIADB: dict[str, str | None] = {"log_bin": "ON", "log_slave_updates": "ON", "slave_parallel_mode": "optimistic"}


def facts(status: Mapping[str, object] | None, settings: Mapping[str, str | None],
          mariadb: bool = True) -> ReplicaFacts:
    return ReplicaFacts(mariadb, 12, status, settings)


def test_a_mariadb_replica_of_the_captured_primary_with_log_slave_updates_passes() -> None:
    assert replica_problems(facts({"Master_Server_Id": 11, "Replicate_Do_DB": ""}, GOOD_MARIADB), PRIMARY) == []


@pytest.mark.parametrize(("status", "settings", "expected"), [
    (None, GOOD_MARIADB, "is not a replica"),
    ({"Master_Server_Id": 99}, GOOD_MARIADB, "replicates from server_id 99, not from the captured primary"),
    ({"Master_Server_Id": 11, "Replicate_Wild_Ignore_Table": "shop.%"}, GOOD_MARIADB,
     "filters what it replicates .Replicate_Wild_Ignore_Table = shop.%"),
    ({"Master_Server_Id": 11}, {**GOOD_MARIADB, "log_slave_updates": "OFF"}, "log_slave_updates = OFF"),
])
def test_mariadb_replicas_that_cannot_be_labelled_are_refused_by_name(
        status: dict[str, object] | None, settings: dict[str, str | None], expected: str) -> None:
    problems = replica_problems(facts(status, settings), PRIMARY)
    assert len(problems) == 1 and re.search(expected, problems[0]), problems


def test_mysql_replicas_need_gtids_and_commit_order() -> None:
    primary = History(0, 11, FIRST_START, BinlogPosition.of("binlog.000005", 4), server_uuid=UUID)
    status = {"Source_Server_Id": 11, "Source_UUID": UUID}
    ok = {"gtid_mode": "ON", "replica_parallel_workers": "4", "replica_preserve_commit_order": "ON"}
    assert replica_problems(facts(status, ok, mariadb=False), primary) == []
    unordered = replica_problems(facts(status, {**ok, "replica_preserve_commit_order": "OFF"}, False), primary)
    assert unordered and "replica_preserve_commit_order = ON" in unordered[0]
    assert replica_problems(facts(status, {**ok, "replica_preserve_commit_order": "OFF",
                                           "replica_parallel_workers": "1"}, False), primary) == []
    assert "gtid_mode must be ON" in replica_problems(facts(status, {**ok, "gtid_mode": "OFF"}, False), primary)[0]
    other = replica_problems(facts({**status, "Source_UUID": "4e11fa47-71ca-11e1-9e33-c80aa9429562"}, ok, False),
                             primary)
    assert other and "not the captured primary's" in other[0]
