"""The merge's change-log cleanup (binlake.merge.cleanup) on a real local lake, without Spark: which
files it removes after which batch, what it records first, and a crash in the middle of it."""

from __future__ import annotations

import datetime
import json
import os
import uuid
from pathlib import Path

import pytest

from binlake.capture.checkpoint import Checkpoint, save_checkpoint
from binlake.changelog import CommittedTransaction, EventChanges, changelog_files, to_arrow, write_changelog
from binlake.chunks import ChunkRange
from binlake.lake import CHANGELOG_REMOVED_KEY, Lake, LocalStorage, snapshot_state_key, table_key
from binlake.lifecycle import ChangelogFile
from binlake.merge.cleanup import ChangelogCleanup, join_gap, read_removed_through
from binlake.merge.handoff import Handoff, record_join
from binlake.merge.summary import TableName
from binlake.positions import BinlogPosition
from binlake.snapshot.state import COMMITTED, COMPLETE, ChunkState, TableState

BINLOG = "binlog.000001"
NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
ORDERS = TableName("shop", "orders", "shop", "orders")


def lsn(pos: int) -> int:
    return BinlogPosition.of(BINLOG, pos).lsn


def write_file(lake: Lake, *positions: int, age: datetime.timedelta = datetime.timedelta(hours=2)) -> str:
    """One change-log file with an insert at each position, written ``age`` before now."""
    events = [EventChanges(lsn(p), BINLOG, p, "I", "shop", "orders", "shop", "orders", '[{"name": "id"}]',
                           None, [json.dumps({"id": str(p)})]) for p in positions]
    key = write_changelog(lake, to_arrow([CommittedTransaction(None, p, 0, (e,)) for p, e in zip(positions, events,
                                                                                                   strict=True)]))
    written = (datetime.datetime.now(datetime.UTC) - age).timestamp()
    os.utime(Path(lake.root) / key, (written, written))
    return key


def capture_at(lake: Lake, pos: int) -> None:
    save_checkpoint(lake, Checkpoint(BinlogPosition.of(BINLOG, pos)))


def load_state(lake: Lake, pos: int, load_id: str = "l1") -> TableState:
    position = BinlogPosition.of(BINLOG, pos)
    state = TableState(load_id, "shop", "orders", "shop", "orders", lake.uri(table_key("shop", "orders")),
                       "DROP_AND_CREATE", ("id",), position, NOW.isoformat(),
                       (ChunkState(0, ChunkRange(), "1=1", COMMITTED, position=position),), status=COMPLETE)
    lake.put_bytes(snapshot_state_key("shop", "orders"), state.to_json())
    return state


def cleanup(lake: Lake, hours: float = 1.0) -> ChangelogCleanup:
    from binlake.merge.job import capture_lsn

    return ChangelogCleanup(lake, hours, lambda: datetime.datetime.now(datetime.UTC), lambda: capture_lsn(lake),
                            every_seconds=0)


def ranges(lake: Lake) -> list[tuple[int, int]]:
    return [(f.first, f.last) for f in changelog_files(lake)]


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(str(tmp_path))
    for block in ((100, 110), (120, 130), (140, 150), (160, 170)):
        write_file(lake, *block)
    capture_at(lake, 170)
    return lake


def test_files_go_once_a_later_batch_runs_and_only_below_the_running_batch(lake: Lake) -> None:
    job = cleanup(lake)
    assert job.batch_finished(0, (lsn(100), lsn(130))) is None   # batch 0 is not committed: nothing known yet
    assert len(ranges(lake)) == 4 and read_removed_through(lake) is None
    second = job.batch_finished(1, (lsn(140), lsn(170)))   # batch 1 runs: batch 0 is committed
    assert second is not None and [(f.first, f.last) for f in second.remove] == [(lsn(100), lsn(110)),
                                                                                (lsn(120), lsn(130))]
    assert ranges(lake) == [(lsn(140), lsn(150)), (lsn(160), lsn(170))]
    assert read_removed_through(lake) == lsn(130)
    record = json.loads(lake.get_bytes(CHANGELOG_REMOVED_KEY))
    assert record["files_removed"] == 2 and record["pinned_by"] == ["merge"]


def test_recent_files_are_kept_for_the_retention(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    write_file(lake, 100, age=datetime.timedelta(minutes=5))
    write_file(lake, 120, age=datetime.timedelta(hours=3))
    capture_at(lake, 200)
    job = cleanup(lake, hours=1)
    job.batch_finished(0, (lsn(100), lsn(120)))
    job.batch_finished(1, (lsn(190), lsn(200)))
    assert ranges(lake) == [(lsn(100), lsn(100))]


def test_a_table_not_joined_keeps_the_change_log_after_its_snapshot(lake: Lake) -> None:
    load_state(lake, 125)
    job = cleanup(lake)
    job.batch_finished(0, (lsn(100), lsn(170)))
    plan = job.batch_finished(1, (lsn(180), lsn(190)))
    assert plan is not None and plan.pinned_by == ("table shop.orders (full load l1 not joined yet)",)
    assert ranges(lake)[0] == (lsn(120), lsn(130))          # holds the changes after the snapshot at 125
    assert join_gap(lake, Handoff("l1", True, lsn(125))) is None


def test_a_table_joined_by_the_running_batch_stays_pinned_until_that_batch_is_committed(lake: Lake) -> None:
    state = load_state(lake, 125)
    job = cleanup(lake)
    job.batch_finished(0, (lsn(100), lsn(170)))
    record_join(lake, ORDERS, Handoff.from_state(state), 1, NOW)   # batch 1 joins the table
    job.batch_finished(1, (lsn(171), lsn(172)))
    assert ranges(lake)[0] == (lsn(120), lsn(130))          # a replay of batch 1 joins again from 125
    job.batch_finished(2, (lsn(173), lsn(174)))              # batch 1 committed
    assert ranges(lake) == []
    assert join_gap(lake, Handoff("l1", True, lsn(125))) is not None  # a *new* join from 125 would miss records
    assert join_gap(lake, Handoff("l2", True, lsn(175))) is None


def test_nothing_is_removed_without_a_capture_checkpoint(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    write_file(lake, 100)
    job = cleanup(lake)
    job.batch_finished(0, (lsn(100), lsn(100)))
    plan = job.batch_finished(1, (lsn(200), lsn(200)))
    assert plan is not None and plan.floor is None and plan.pinned_by == ("capture",)
    assert len(ranges(lake)) == 1


def test_the_capture_checkpoint_bounds_what_goes(lake: Lake) -> None:
    capture_at(lake, 135)
    job = cleanup(lake)
    job.batch_finished(0, (lsn(100), lsn(170)))
    job.batch_finished(1, (lsn(171), lsn(180)))
    assert ranges(lake)[0] == (lsn(140), lsn(150))


def test_a_crash_in_the_middle_leaves_the_record_ahead_of_what_is_gone(lake: Lake) -> None:
    class Dying(LocalStorage):
        deletes = 0

        def delete(self, key: str) -> None:
            if Dying.deletes == 1:
                raise KeyboardInterrupt("killed")            # stands in for SIGKILL between two deletes
            Dying.deletes += 1
            super().delete(key)

    lake.storage = Dying(Path(lake.root))
    job = cleanup(lake)
    job.batch_finished(0, (lsn(100), lsn(150)))
    with pytest.raises(KeyboardInterrupt):
        job.batch_finished(1, (lsn(160), lsn(170)))
    assert ranges(lake) == [(lsn(120), lsn(130)), (lsn(140), lsn(150)), (lsn(160), lsn(170))]
    assert read_removed_through(lake) == lsn(150)            # written before the first delete
    restarted = Lake(lake.root)
    job = cleanup(restarted)                                 # a new merge run: batch 1 replays, then batch 2
    job.batch_finished(1, (lsn(160), lsn(170)))
    job.batch_finished(2, (lsn(171), lsn(171)))
    assert ranges(restarted) == []
    assert read_removed_through(restarted) == lsn(170)


def test_listing_gives_each_file_its_write_time_and_skips_temporary_files(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    key = write_file(lake, 100, age=datetime.timedelta(hours=5))
    (tmp_path / "_binlake" / "changelog" / f"_tmp-{uuid.uuid4().hex}-x.parquet").write_bytes(b"partial")
    [info] = lake.list_info("_binlake/changelog")
    assert info.key == key and info.size == (tmp_path / key).stat().st_size
    age = datetime.datetime.now(datetime.UTC) - info.modified
    assert datetime.timedelta(hours=4, minutes=59) < age < datetime.timedelta(hours=5, minutes=1)
    assert changelog_files(lake) == [ChangelogFile(lsn(100), lsn(100), key, info.modified)]


def test_the_cleanup_runs_at_most_once_per_period(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("binlake.merge.cleanup.time.monotonic", lambda: now[0])
    job = ChangelogCleanup(lake, 1.0, lambda: datetime.datetime.now(datetime.UTC), lambda: lsn(170),
                           every_seconds=60)
    assert job.batch_finished(0, (lsn(100), lsn(110))) is None        # nothing committed yet: not a run
    assert job.batch_finished(1, (lsn(120), lsn(130))) is not None    # first run
    now[0] = 101.0
    assert job.batch_finished(2, (lsn(140), lsn(150))) is None        # within the period
    now[0] = 161.0
    plan = job.batch_finished(3, (lsn(160), lsn(170)))                # due again
    assert plan is not None and [(f.first, f.last) for f in plan.remove] == [(lsn(120), lsn(130)),
                                                                            (lsn(140), lsn(150))]


def test_status_shows_how_far_the_change_log_was_cleaned_up_and_who_holds_it(lake: Lake) -> None:
    from binlake.config import parse_config
    from binlake.status import lsn_text, pipeline_status, render_text

    config = parse_config({"lake": {"root": lake.root}, "table_mappings": {"rules": [
        {"rule-type": "selection", "rule-id": "1", "object-locator": {"schema-name": "shop", "table-name": "%"},
         "rule-action": "include"}]}}, Path("t.yaml"))
    assert pipeline_status(config, lake)["merge"]["changelog_removed"] is None
    job = cleanup(lake)
    job.batch_finished(0, (lsn(100), lsn(130)))
    job.batch_finished(1, (lsn(140), lsn(170)))
    status = pipeline_status(config, lake)
    assert status["merge"]["changelog_removed"]["removed_through"] == lsn(130)
    text = render_text(status)
    assert f"change log: cleaned up to {lsn_text(lsn(130))} (2 file(s) removed; floor held by merge" in text
