"""The change-log lifecycle's planning (binlake.lifecycle): what may be removed, given every reader's position."""

from __future__ import annotations

import datetime

import pytest

from binlake.lifecycle import (
    CAPTURE,
    MERGE,
    ChangelogFile,
    Pin,
    TableReader,
    merge_pin,
    plan_removal,
    removed_gap,
    table_pins,
    tombstone_floor,
)

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
HOUR = datetime.timedelta(hours=1)
OLD = NOW - 2 * HOUR


def file(first: int, last: int, written: datetime.datetime = OLD) -> ChangelogFile:
    return ChangelogFile(first, last, f"_binlake/changelog/{first:020d}-{last:020d}-x.parquet", written)


FILES = [file(1, 10), file(11, 20), file(21, 30), file(31, 40)]


def keys(files: tuple[ChangelogFile, ...]) -> list[tuple[int, int]]:
    return [(f.first, f.last) for f in files]


def test_files_at_or_below_every_pin_and_older_than_the_retention_go() -> None:
    plan = plan_removal(FILES, [Pin(MERGE, 25), Pin(CAPTURE, 40)], NOW, HOUR)
    assert plan.floor == 25 and plan.pinned_by == (MERGE,)
    assert keys(plan.remove) == [(1, 10), (11, 20)]
    assert keys(plan.keep) == [(21, 30), (31, 40)]        # 21..30 straddles the floor: some records still needed
    assert plan.kept_first_lsn == 21


def test_the_lowest_reader_holds_the_floor() -> None:
    pins = [Pin(MERGE, 40), Pin(CAPTURE, 40), Pin("table shop.orders (full load l1 not joined yet)", 12)]
    plan = plan_removal(FILES, pins, NOW, HOUR)
    assert plan.floor == 12 and plan.pinned_by == ("table shop.orders (full load l1 not joined yet)",)
    assert keys(plan.remove) == [(1, 10)]


def test_the_capture_checkpoint_bounds_the_floor() -> None:
    plan = plan_removal(FILES, [Pin(MERGE, 40), Pin(CAPTURE, 20)], NOW, HOUR)
    assert plan.floor == 20 and keys(plan.remove) == [(1, 10), (11, 20)]


def test_recent_files_stay_within_the_retention() -> None:
    files = [file(1, 10), file(11, 20, NOW - HOUR / 2), file(21, 30, NOW - 3 * HOUR)]
    plan = plan_removal(files, [Pin(MERGE, 40), Pin(CAPTURE, 40)], NOW, HOUR)
    assert keys(plan.remove) == [(1, 10), (21, 30)]
    exactly = plan_removal([file(1, 10, NOW - HOUR)], [Pin(MERGE, 40), Pin(CAPTURE, 40)], NOW, HOUR)
    assert keys(exactly.remove) == [(1, 10)]               # written exactly one retention ago: old enough


def test_zero_retention_removes_by_position_alone() -> None:
    plan = plan_removal([file(1, 10, NOW)], [Pin(MERGE, 10), Pin(CAPTURE, 10)], NOW, datetime.timedelta(0))
    assert keys(plan.remove) == [(1, 10)]


@pytest.mark.parametrize("pins", [
    [Pin(MERGE, None), Pin(CAPTURE, 40)],                  # the merge has not committed a batch in this run
    [Pin(MERGE, 40), Pin(CAPTURE, None)],                  # no capture checkpoint
    [Pin(MERGE, 40)],                                      # a reader missing altogether
    [Pin(CAPTURE, 40)],
    [],
])
def test_an_unknown_or_missing_reader_removes_nothing(pins: list[Pin]) -> None:
    plan = plan_removal(FILES, pins, NOW, HOUR)
    assert plan.floor is None and plan.remove == () and keys(plan.keep) == keys(tuple(FILES))
    assert plan.pinned_by


def test_a_negative_retention_is_refused() -> None:
    with pytest.raises(ValueError, match="retention"):
        plan_removal(FILES, [Pin(MERGE, 1), Pin(CAPTURE, 1)], NOW, -HOUR)


def test_the_merge_pin_is_its_committed_position_bounded_by_the_running_batch() -> None:
    assert merge_pin(None, 5) == Pin(MERGE, None)
    assert merge_pin(30, None) == Pin(MERGE, 30)
    assert merge_pin(30, 31) == Pin(MERGE, 30)
    # the running batch re-reads a capture's re-written duplicate of older records: its file stays
    assert merge_pin(30, 11) == Pin(MERGE, 10)


def test_tables_pin_until_their_joining_batch_is_committed() -> None:
    waiting = TableReader("shop.a", "l1", 100)                                   # complete or loading, not joined
    reloaded = TableReader("shop.b", "l2", 200, joined_load="l1", joined_batch=3)  # a new load, not joined yet
    joining = TableReader("shop.c", "l1", 300, joined_load="l1", joined_batch=7)   # joined by the batch running
    joined = TableReader("shop.d", "l1", 400, joined_load="l1", joined_batch=6)    # joined by a committed batch
    old_record = TableReader("shop.e", "l1", 500, joined_load="l1")                # joined, batch not recorded
    gap = TableReader("shop.f", "l1", 50, gap=True)                                # never joinable: pins nothing
    pins = table_pins([waiting, reloaded, joining, joined, old_record, gap], running_batch=7)
    assert [p.lsn for p in pins] == [100, 200, 300]
    assert "shop.a" in pins[0].reader and "not joined" in pins[0].reader and "batch 7" in pins[2].reader
    # batch ids of an earlier merge checkpoint above the running one: still pinned (the safe side)
    assert [p.lsn for p in table_pins([joined], running_batch=2)] == [400]
    assert [p.lsn for p in table_pins([joined], running_batch=None)] == [400]


def test_a_table_not_joined_keeps_its_change_log() -> None:
    pins = [merge_pin(40, 41), Pin(CAPTURE, 40), *table_pins([TableReader("shop.a", "l1", 15)], 9)]
    plan = plan_removal(FILES, pins, NOW, HOUR)
    assert keys(plan.remove) == [(1, 10)]                  # 11..20 holds records after the snapshot at 15
    assert all(f.last > 15 for f in plan.keep)


def test_tombstones_go_below_every_reader_that_could_replay_an_older_upsert() -> None:
    # the bound is exclusive: a tombstone at the oldest kept record's lsn is below every upsert still readable
    assert tombstone_floor(kept_first_lsn=21, capture_lsn=40, resync_lsns=[]) == 22
    assert tombstone_floor(kept_first_lsn=21, capture_lsn=15, resync_lsns=[]) == 16
    assert tombstone_floor(kept_first_lsn=21, capture_lsn=40, resync_lsns=[33, 18]) == 19  # a chunk read at 18
    assert tombstone_floor(kept_first_lsn=None, capture_lsn=40, resync_lsns=[]) == 41      # no change log kept
    assert tombstone_floor(kept_first_lsn=21, capture_lsn=None, resync_lsns=[]) is None     # unknown: keep all


def test_a_join_below_what_was_removed_is_a_gap() -> None:
    assert removed_gap(None, 5) is None
    assert removed_gap(20, 20) is None and removed_gap(20, 25) is None
    message = removed_gap(20, 15)
    assert message is not None and "lsn 20" in message and "lsn 15" in message and "reload" in message


def test_a_file_with_an_empty_range_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        file(5, 4)
