"""The full-load state file: JSON round trip, derived positions, never complete with pending chunks."""

from __future__ import annotations

import json

import pytest

from binlake.chunks import ChunkRange
from binlake.positions import BinlogPosition
from binlake.snapshot.state import COMMITTED, ChunkState, TableState


def make_state(*chunks: ChunkState) -> TableState:
    return TableState(
        load_id="abc", source_schema="src", source_table="orders", schema="lake", table="orders",
        path="/lake/lake/orders", prep_mode="DROP_AND_CREATE", key_columns=("id",),
        low_watermark=BinlogPosition.of("binlog.000001", 100, "0-1-1"), started_at="2024-01-01T00:00:00+00:00",
        chunks=chunks,
    )


def committed(chunk_id: int, pos: int, rows: int) -> ChunkState:
    return ChunkState(chunk_id, ChunkRange((chunk_id * 10,), (chunk_id * 10 + 10,)), f"p{chunk_id}", COMMITTED,
                      rows, BinlogPosition.of("binlog.000002", pos))


def test_json_round_trip_and_layout() -> None:
    state = make_state(committed(0, 500, 3), committed(1, 400, 4), ChunkState(2, ChunkRange((20,), None), "p2"))
    raw = json.loads(state.to_json())
    assert raw["format"] == 1 and raw["status"] == "loading"
    assert raw["source"] == {"schema": "src", "table": "orders"}
    assert raw["target"] == {"schema": "lake", "table": "orders", "path": "/lake/lake/orders"}
    assert raw["rows"] == 7
    assert raw["min_lsn"] == (2 << 32) | 400 and raw["max_lsn"] == (2 << 32) | 500
    assert raw["min_position"]["pos"] == 400 and raw["chunks"][2]["position"] is None
    assert TableState.from_json(state.to_json()) == state


def test_never_complete_with_pending_chunks() -> None:
    state = make_state(committed(0, 500, 3), ChunkState(1, ChunkRange((10,), None), "p1"))
    with pytest.raises(ValueError, match="not committed"):
        state.completed("2024-01-01T00:01:00+00:00", 60.0, 123)
    done = state.with_chunk(committed(1, 600, 2)).completed("2024-01-01T00:01:00+00:00", 60.0, 123)
    assert done.complete and done.rows == 5 and json.loads(done.to_json())["bytes"] == 123


def test_loading_fails_loudly_on_missing_keys_or_other_format() -> None:
    raw = json.loads(make_state().to_json())
    del raw["low_watermark"]
    with pytest.raises(ValueError, match="low_watermark"):
        TableState.from_dict(raw)
    raw = json.loads(make_state().to_json())
    raw["format"] = 99
    with pytest.raises(ValueError, match="format"):
        TableState.from_dict(raw)
