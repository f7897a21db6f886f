"""Online resync without a server: manifest and applied-state round trips, which chunks are due,
resuming after a partial delivery, which lake rows a range holds (SQL), the merge's conditions, and
the full load's refusal to reload a table under a running merge."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from binlake.chunks import WHOLE, ChunkRange
from binlake.config import PrepMode
from binlake.lake import Lake, snapshot_state_key
from binlake.merge.handoff import Handoff, record_join
from binlake.merge.heartbeat import read_heartbeat, write_heartbeat
from binlake.merge.resync import chunk_condition, same_values_sql
from binlake.merge.summary import TableName
from binlake.positions import BinlogPosition
from binlake.resync import store
from binlake.resync.guard import ReloadUnderMergeError, refuse_reload_while_merging
from binlake.resync.manifest import Applied, AppliedChunk, Resync, ResyncChunk, chunk_app_id, due_chunks
from binlake.resync.ranges import ResyncKey, exact_problem, lake_range_sql
from binlake.resync.report import format_chunks, last_resync_text
from binlake.rules import TableTarget
from binlake.snapshot.discovery import SourceTable
from binlake.snapshot.state import COMMITTED, COMPLETE, ChunkState, TableState
from binlake.typemap import ColumnType

NOW = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.UTC)
KEYS = (ResyncKey("a", "int"), ResyncKey("b", "varchar", "utf8mb4_bin"))


def resync(chunks: tuple[ResyncChunk, ...], **kwargs: object) -> Resync:
    return Resync("r20261201100000-abcd0123", "shop", "Orders", "shop", "Orders", KEYS, NOW.isoformat(), chunks,
                  **kwargs)  # type: ignore[arg-type]


def chunk(index: int, start: tuple[object, ...] | None, end: tuple[object, ...] | None,
          lsn: int | None = None) -> ResyncChunk:
    data = None if lsn is None else f"_binlake/resync/shop/~orders/x/chunk-{index:05d}-0"
    return ResyncChunk(index, ChunkRange(start, end), f"pred {index}", data, lsn, 10 if lsn else 0)  # type: ignore[arg-type]


def test_manifest_round_trip_keeps_ranges_keys_and_deliveries() -> None:
    original = resync((chunk(0, None, (5, "m")), chunk(2, (5, "m"), (9, "é")), chunk(3, (9, "é"), None, 77)),
                      where="qty > 3", note="n")
    restored = Resync.from_json(original.to_json())
    assert restored == original
    assert restored.chunks[1].range.end == (9, "é")
    assert [c.index for c in restored.pending] == [0, 2]
    assert restored.key_columns == ("a", "b")


def test_manifest_refuses_unknown_versions_and_unordered_chunks() -> None:
    raw = resync((chunk(0, None, None),)).to_json().replace(b'"version": 1', b'"version": 9')
    with pytest.raises(ValueError, match="version 9"):
        Resync.from_json(raw)
    with pytest.raises(ValueError, match="ascending"):
        resync((chunk(1, (1, "a"), None), chunk(0, None, (1, "a"))))


def test_applied_round_trip_and_covers() -> None:
    r = resync((chunk(0, None, (5, "m"), 10), chunk(1, (5, "m"), None, 12)))
    applied = Applied(r.resync_id).with_chunk(AppliedChunk(0, NOW.isoformat(), 1, 2, 3))
    assert Applied.from_json(applied.to_json()) == applied
    assert not applied.covers(r)
    applied = applied.with_chunk(AppliedChunk(1, NOW.isoformat(), skipped="truncated"))
    assert applied.covers(r)
    assert "applied (2 chunk(s)" in last_resync_text(r, applied)
    assert "skipped: truncated" in format_chunks(r, applied)


def test_a_chunk_is_due_once_the_lake_holds_every_change_up_to_its_snapshot() -> None:
    r = resync((chunk(0, None, (5, "m"), 100), chunk(1, (5, "m"), (7, "a"), 200), chunk(2, (7, "a"), None)))
    none = Applied(r.resync_id)
    assert due_chunks(r, none, None) == []
    assert [c.index for c in due_chunks(r, none, 99)] == []
    assert [c.index for c in due_chunks(r, none, 100)] == [0]
    assert [c.index for c in due_chunks(r, none, 500)] == [0, 1]  # chunk 2 is not delivered
    done = none.with_chunk(AppliedChunk(0, NOW.isoformat()))
    assert [c.index for c in due_chunks(r, done, 500)] == [1]


def test_an_abandoned_resync_delivers_nothing_more_but_its_delivered_chunks_count() -> None:
    r = resync((chunk(0, None, (5, "m"), 100), chunk(1, (5, "m"), None)), abandoned=True)
    assert r.pending == ()
    assert Applied(r.resync_id).with_chunk(AppliedChunk(0, NOW.isoformat())).covers(r)


def test_chunk_app_ids_are_deterministic_and_distinct() -> None:
    assert chunk_app_id("r1", 0) == chunk_app_id("r1", 0)
    assert len({chunk_app_id(r, i) for r in ("r1", "r2") for i in range(3)}) == 6


def test_resume_after_a_partial_delivery_finds_the_pending_chunks(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    r = resync((chunk(0, None, (5, "m")), chunk(1, (5, "m"), (7, "a")), chunk(2, (7, "a"), None)))
    store.write_manifest(lake, r)
    r = r.with_chunk(chunk(1, (5, "m"), (7, "a"), 300))
    store.write_manifest(lake, r)  # chunk 1 delivered, then the job was killed
    (found,) = store.table_resyncs(lake, "shop", "Orders")
    assert found == r
    assert [c.index for c in found.pending] == [0, 2]
    assert store.all_resyncs(lake) == [r]
    key = store.chunk_data_key(r, 0)
    assert key.startswith("_binlake/resync/shop/~orders/r20261201100000-abcd0123/chunk-00000-")
    assert key != store.chunk_data_key(r, 0)  # every attempt writes a new folder
    assert store.read_applied(lake, r) == Applied(r.resync_id)


def test_lake_range_sql_is_half_open_and_lexicographic() -> None:
    assert lake_range_sql(WHOLE, KEYS) == "TRUE"
    sql = lake_range_sql(ChunkRange((5, "m"), (9, "z")), KEYS, "t")
    assert "t.`a`" in sql and "t.`b`" in sql and sql.endswith("= 1)")
    assert lake_range_sql(ChunkRange(None, (5, "m")), KEYS).endswith("= 0)")
    assert lake_range_sql(ChunkRange((5, "m"), None), KEYS).endswith("= 1)")


def test_ranges_are_exact_only_where_spark_orders_keys_as_the_source() -> None:
    ranges = [ChunkRange(None, (5, "m")), ChunkRange((5, "m"), None)]
    assert exact_problem(ranges, KEYS) is None
    ci = (ResyncKey("a", "int"), ResyncKey("b", "varchar", "utf8mb4_general_ci"))
    assert "collation" in (exact_problem(ranges, ci) or "")
    assert exact_problem([WHOLE], ci) is None
    assert exact_problem([ChunkRange(None, (Decimal("1.5"),)), ChunkRange((Decimal("1.5"),), None)],
                         [ResyncKey("d", "decimal(10,2)")]) is None


def test_merge_conditions_never_touch_rows_newer_than_the_snapshot() -> None:
    condition = chunk_condition(["a", "b"], 42)
    assert condition["on"] == "t.`a` <=> s.`a` AND t.`b` <=> s.`b`"
    assert condition["update"] == condition["delete"] == "coalesce(t._binlake_lsn, -1) <= 42"


def test_same_values_compare_every_column_null_safely_and_floats_by_their_text() -> None:
    assert same_values_sql({"n": "string", "x": "double", "f": "float"}) == (
        "t.`n` <=> s.`n` AND CAST(t.`x` AS STRING) <=> CAST(s.`x` AS STRING)"
        " AND CAST(t.`f` AS STRING) <=> CAST(s.`f` AS STRING)")
    assert same_values_sql({}) == "TRUE"  # a table keyed by all its columns: a key match is a value match


def _joined_table(lake: Lake) -> SourceTable:
    target = TableTarget("shop", "orders", "shop", "orders")
    table = SourceTable(target, (), ("id",), (ColumnType.parse("int"),), "InnoDB", 0, 0)
    position = BinlogPosition.of("binlog.000001", 400)
    state = TableState(uuid.uuid4().hex, "shop", "orders", "shop", "orders", "x", "DROP_AND_CREATE", ("id",),
                       position, NOW.isoformat(), (ChunkState(0, WHOLE, "1=1", COMMITTED, position=position),),
                       status=COMPLETE)
    lake.put_bytes(snapshot_state_key("shop", "orders"), state.to_json())
    record_join(lake, TableName("shop", "orders", "shop", "orders"), Handoff.from_state(state), 0, NOW)
    return table


def test_full_load_refuses_to_drop_a_joined_table_while_the_merge_runs(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    table = _joined_table(lake)
    refuse_reload_while_merging(lake, table, PrepMode.DROP_AND_CREATE, NOW, 5.0)  # no heartbeat: not running
    write_heartbeat(lake, NOW)
    with pytest.raises(ReloadUnderMergeError, match=r"binlake resync --config <config> --table shop\.orders"):
        refuse_reload_while_merging(lake, table, PrepMode.DROP_AND_CREATE, NOW, 5.0)
    with pytest.raises(ReloadUnderMergeError):
        refuse_reload_while_merging(lake, table, PrepMode.TRUNCATE_BEFORE_LOAD, NOW, 5.0)
    refuse_reload_while_merging(lake, table, PrepMode.DO_NOTHING, NOW, 5.0)
    later = NOW + datetime.timedelta(minutes=10)
    refuse_reload_while_merging(lake, table, PrepMode.DROP_AND_CREATE, later, 5.0)  # stale: a killed merge
    write_heartbeat(lake, NOW, stopped=True)
    beat = read_heartbeat(lake)
    assert beat is not None and beat.stopped
    refuse_reload_while_merging(lake, table, PrepMode.DROP_AND_CREATE, NOW, 5.0)


def test_binlake_tables_shows_the_latest_resync(tmp_path: Path) -> None:
    from binlake.tables import render_text, table_rows

    lake = Lake(str(tmp_path))
    r = Resync("r20261201100000-abcd0123", "shop", "orders", "shop", "orders", (ResyncKey("id", "int"),),
               NOW.isoformat(), (chunk(0, None, (5,), 10), chunk(1, (5,), None)))
    store.write_manifest(lake, r)
    (row,) = table_rows(lake, [TableTarget("shop", "orders", "shop", "orders")])
    assert row.resync == "r20261201100000-abcd0123 running: 1/2 delivered, 0/2 applied"
    assert "shop.orders: last resync r20261201100000-abcd0123 running" in render_text([row])


def test_the_report_of_a_resumed_run_counts_only_its_own_rows() -> None:
    from binlake.resync.report import ResyncReport

    r = resync((chunk(0, None, (5, "m"), 10), chunk(1, (5, "m"), None, 12)))
    report = ResyncReport.of(r, 2.0, before=frozenset({0}))
    assert (report.delivered, report.rows, report.rows_this_run, report.rows_per_second) == (2, 20, 10, 5.0)
    assert "2 of 2 chunk(s) delivered, 20 rows (10 in this run" in report.text()
