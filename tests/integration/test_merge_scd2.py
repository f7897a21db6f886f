"""SCD type 2 tables keep every version, valid from/to by source commit time; replays add nothing."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
from merge_helpers import T0, Source, commit_time, load_table, merge_config, rows, run_merge

from binlake.lake import Lake

pytestmark = pytest.mark.spark


def r(i: int, name: str) -> dict[str, Any]:
    return {"id": i, "name": name, "qty": i}


def ts(pos: int) -> datetime.datetime:
    return commit_time(pos).replace(tzinfo=None)


def test_history_versions(spark: Any, lake_dir: Path) -> None:
    lake = Lake(str(lake_dir))
    src = Source(lake)
    path = load_table(spark, lake, "hist", [(1, "a", 1)], 100)
    events = [src.upd(110, "hist", (r(1, "a"), r(1, "b"))), src.upd(120, "hist", (r(1, "b"), r(1, "c"))),
              src.ins(130, "hist", r(2, "x")), src.dele(140, "hist", r(2, "x"))]
    src.write(*events)
    config = merge_config(lake_dir, scd2_tables=["shop.hist"])
    run_merge(spark, config)
    columns = ("id", "name", "_binlake_valid_from", "_binlake_valid_to", "_binlake_is_current")
    t0 = T0.replace(tzinfo=None)
    expected = [(1, "a", t0, ts(110), False), (1, "b", ts(110), ts(120), False), (1, "c", ts(120), None, True),
                (2, "x", ts(130), ts(140), False)]
    assert rows(spark, path, *columns, order=("id", "_binlake_lsn")) == expected
    src.write(*events, src.upd(150, "hist", (r(1, "c"), r(1, "d"))))  # replays + one new change
    run_merge(spark, config)
    expected[2] = (1, "c", ts(120), ts(150), False)
    expected.insert(3, (1, "d", ts(150), None, True))
    assert rows(spark, path, *columns, order=("id", "_binlake_lsn")) == expected
