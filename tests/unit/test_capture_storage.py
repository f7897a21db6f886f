"""Lake paths, local storage, change-log files, checkpoint and the flush policy/sink."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from binlake.capture.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from binlake.capture.sink import ChangeLogSink, FlushPolicy
from binlake.changelog import (
    CHANGELOG_SCHEMA,
    OP_DDL,
    OP_UPDATE,
    CommittedTransaction,
    EventChanges,
    list_changelog,
    read_changelog,
    records,
    to_arrow,
    write_changelog,
)
from binlake.lake import CHECKPOINT_KEY, Lake, changelog_key, parse_changelog_name, snapshot_state_key
from binlake.positions import BinlogPosition, make_lsn


def test_paths_follow_the_design_layout() -> None:
    key = changelog_key(5, 17, "abc")
    assert key == "_binlake/changelog/00000000000000000005-00000000000000000017-abc.parquet"
    assert parse_changelog_name(key) == (5, 17)
    assert snapshot_state_key("shop", "orders") == "_binlake/snapshots/shop/orders.json"
    with pytest.raises(ValueError):
        changelog_key(9, 3)
    with pytest.raises(ValueError):
        parse_changelog_name("_binlake/changelog/_tmp-x.parquet")


def test_local_put_is_atomic_and_listing_hides_temporary_files(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    lake.put_bytes("a/b/c.json", b"one")
    lake.put_bytes("a/b/c.json", b"two")
    (tmp_path / "a" / "b" / "_tmp-123-x.json").write_bytes(b"partial")
    (tmp_path / "a" / ".hidden").write_bytes(b"")
    assert lake.get_bytes("a/b/c.json") == b"two"
    assert lake.list("a") == ["a/b/c.json"]
    assert lake.exists("a/b/c.json") and not lake.exists("a/nope")
    lake.delete("a/b/c.json")
    lake.delete("a/b/c.json")
    assert lake.list("a") == [] and lake.list("missing") == []
    with pytest.raises(ValueError):
        lake.put_bytes("../escape", b"")
    with pytest.raises(FileNotFoundError):
        lake.get_bytes("a/b/c.json")


def insert_event(file: str, pos: int, *ids: int) -> EventChanges:
    return EventChanges(make_lsn(file, pos), file, pos, "I", "s", "t", "s2", "t2", '[{"name":"id"}]',
                        None, [json.dumps({"id": str(i)}) for i in ids])


def test_arrow_table_matches_the_design_schema_and_numbers_rows_per_event() -> None:
    update = EventChanges(make_lsn("binlog.000001", 900), "binlog.000001", 900, OP_UPDATE, "s", "t", "s", "t", "[]",
                          ['{"id":"1"}'], ['{"id":"2"}'])
    ddl = EventChanges(make_lsn("binlog.000001", 950), "binlog.000001", 950, OP_DDL, "s", "t", "s", "t", "[]",
                       None, None, ddl="DROP TABLE t, u", ddl_kind="DROP")
    ddl2 = EventChanges(ddl.lsn, "binlog.000001", 950, OP_DDL, "s", "u", "s", "u", "[]", None, None,
                        ddl="DROP TABLE t, u", ddl_kind="DROP", first_row_idx=1)
    table = to_arrow([CommittedTransaction("0-1-5", 9, 1_000_000, (insert_event("binlog.000001", 800, 1, 2), update)),
                      CommittedTransaction("0-1-6", None, 2_000_000, (ddl, ddl2))])
    assert table.schema == CHANGELOG_SCHEMA
    rows = records(table)
    assert [(r["row_idx"], r["op"], r["xid"]) for r in rows] == [(0, "I", 9), (1, "I", 9), (0, "U", 9),
                                                                 (0, "DDL", None), (1, "DDL", None)]
    assert rows[2]["before"] == {"id": "1"} and rows[2]["after"] == {"id": "2"}
    assert rows[0]["commit_ts"].timestamp() == 1.0 and rows[3]["ddl_kind"] == "DROP"
    assert CHANGELOG_SCHEMA.names == [
        "lsn", "row_idx", "binlog_file", "binlog_pos", "gtid", "xid", "commit_ts", "op", "source_schema",
        "source_table", "schema", "table", "before", "after", "columns", "ddl", "ddl_kind"]
    assert CHANGELOG_SCHEMA.field("commit_ts").type == pa.timestamp("us", tz="UTC")


def test_event_changes_validate_op_and_images() -> None:
    with pytest.raises(ValueError, match="op"):
        EventChanges(1, "f.000001", 1, "X", "s", "t", "s", "t", "[]", None, ["{}"])
    with pytest.raises(ValueError, match="ddl_kind"):
        EventChanges(1, "f.000001", 1, OP_DDL, "s", "t", "s", "t", "[]", None, None, ddl="x", ddl_kind="GRANT")
    with pytest.raises(ValueError, match="same number"):
        EventChanges(1, "f.000001", 1, OP_UPDATE, "s", "t", "s", "t", "[]", ["{}"], ["{}", "{}"])


def test_written_files_are_named_by_lsn_and_read_back_deduplicated(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    txn = CommittedTransaction("0-1-5", 9, 0, (insert_event("binlog.000002", 500, 1, 2, 3),))
    first = write_changelog(lake, to_arrow([txn]))
    second = write_changelog(lake, to_arrow([txn]))        # a crash replay writes the same records again
    assert first != second and list_changelog(lake) == sorted([first, second])
    assert parse_changelog_name(first) == (make_lsn("binlog.000002", 500),) * 2
    assert read_changelog(lake).num_rows == 3
    assert read_changelog(lake, dedupe=False).num_rows == 6
    with pytest.raises(ValueError, match="empty"):
        write_changelog(lake, CHANGELOG_SCHEMA.empty_table())


def test_checkpoint_round_trip_and_loud_failures(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    assert load_checkpoint(lake) is None
    checkpoint = Checkpoint(BinlogPosition.of("binlog.000007", 1234, "0-1-99"), source_server_id=3, files_written=4)
    save_checkpoint(lake, checkpoint)
    loaded = load_checkpoint(lake)
    assert loaded == checkpoint and loaded is not None and loaded.position.gtid == "0-1-99"
    lake.put_bytes(CHECKPOINT_KEY, b'{"version": 1}')
    with pytest.raises(CheckpointError, match="position"):
        load_checkpoint(lake)
    lake.put_bytes(CHECKPOINT_KEY, b'{"version": 2, "position": {"file": "binlog.000001", "pos": 4}}')
    with pytest.raises(CheckpointError, match="version"):
        load_checkpoint(lake)
    lake.put_bytes(CHECKPOINT_KEY, b"{not json")
    with pytest.raises(CheckpointError, match="JSON"):
        load_checkpoint(lake)


def test_flush_policy_bounds() -> None:
    policy = FlushPolicy(max_rows=100, max_seconds=2.0)
    assert not policy.due(0, None, None, now=10.0)
    assert policy.due(100, 9.9, None, now=10.0)
    assert not policy.due(5, 9.0, None, now=10.0)
    assert policy.due(5, 8.0, None, now=10.0)
    assert policy.due(0, None, 7.5, now=10.0)
    with pytest.raises(ValueError):
        FlushPolicy(0, 1.0)


def test_caught_up_flush_waits_a_quarter_period_after_the_previous_one() -> None:
    policy = FlushPolicy(max_rows=100, max_seconds=2.0)
    assert not policy.due_caught_up(None, None, now=10.0)  # nothing pending
    assert policy.due_caught_up(9.99, None, now=10.0)  # no flush yet
    assert not policy.due_caught_up(9.99, 9.6, now=10.0)  # at most 1 / CAUGHT_UP_FRACTION files per period
    assert policy.due_caught_up(9.99, 9.5, now=10.0)


class RecordingLake(Lake):
    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.puts: list[str] = []

    def put_bytes(self, key: str, data: bytes, durable: bool = True) -> None:
        self.puts.append(key.split("/")[1])
        super().put_bytes(key, data, durable)


def test_sink_writes_the_file_before_the_checkpoint(tmp_path: Path) -> None:
    lake = RecordingLake(str(tmp_path))
    sink = ChangeLogSink(lake, source_server_id=1)
    position = BinlogPosition.of("binlog.000002", 600)
    sink.flush([CommittedTransaction(None, 1, 0, (insert_event("binlog.000002", 500, 1),))], position)
    assert lake.puts == ["changelog", "capture"]
    sink.flush([], position)                      # nothing new: no write at all
    assert lake.puts == ["changelog", "capture"]
    sink.flush([], BinlogPosition.of("binlog.000002", 700))   # position moved (unselected tables)
    assert lake.puts == ["changelog", "capture", "capture"]
    loaded = load_checkpoint(lake)
    assert loaded is not None and loaded.position.pos == 700 and loaded.files_written == 1
    assert ChangeLogSink(lake, 1).files_written_total == 1
