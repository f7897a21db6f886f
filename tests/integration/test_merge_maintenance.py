"""Maintenance after a batch: OPTIMIZE, tombstone pruning; a table without a primary key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from delta.tables import DeltaTable
from merge_helpers import BINLOG, Source, load_table, merge_config, rows, run_merge

from binlake.capture.checkpoint import Checkpoint, save_checkpoint
from binlake.lake import Lake, tombstones_key
from binlake.merge.maintenance import STATE_KEY
from binlake.positions import BinlogPosition

pytestmark = pytest.mark.spark

NO_KEY = [("x", "int", False), ("y", "varchar", False)]


def test_optimize_prune_and_keyless_table(spark: Any, lake_dir: Path) -> None:
    lake = Lake(str(lake_dir))
    src = Source(lake)
    path = load_table(spark, lake, "m", [(1, "a", 1), (2, "b", 2), (3, "c", 3), (4, "d", 4)], 100)
    free = load_table(spark, lake, "free", [(1, "p"), (2, "q"), (3, "r")], 100, layout=NO_KEY)
    src.write(src.dele(110, "m", {"id": 2, "name": "b", "qty": 2}),
              src.upd(111, "m", ({"id": 1, "name": "a", "qty": 1}, {"id": 1, "name": "a1", "qty": 1})),
              src.upd(112, "free", ({"x": 2, "y": "q"}, {"x": 2, "y": "q2"}), layout=NO_KEY),
              src.dele(113, "free", {"x": 3, "y": "r"}, layout=NO_KEY),
              src.ins(114, "free", {"x": 3, "y": None}, layout=NO_KEY))
    save_checkpoint(lake, Checkpoint(BinlogPosition.of(BINLOG, 500)))  # the capture is past every tombstone
    # (the change-log file, kept, starts at 110: a tombstone at 110 is below every record still readable,
    # one at 113 is not — a replay of the file could hold an older upsert of its key)
    # the last VACUUM of both tables was long ago, so this maintenance round includes VACUUM + pruning
    long_ago = {"vacuumed_at": "2020-01-01T00:00:00+00:00", "schema": "shop"}
    lake.put_bytes(STATE_KEY, json.dumps({"tables": {f"shop.{t}": {**long_ago, "table": t} for t in ("m", "free")}})
                   .encode())
    # retention 0: tombstones may go at once; VACUUM 0 = never
    run_merge(spark, merge_config(lake_dir, optimize_every_batches=1, vacuum_retention_hours=0))
    assert rows(spark, path) == [(1, "a1", 1), (3, "c", 3), (4, "d", 4)]
    assert rows(spark, free, order=("x",)) == [(1, "p"), (2, "q2"), (3, None)]
    operations = [h["operation"] for h in DeltaTable.forPath(spark, path).history().collect()]
    assert "OPTIMIZE" in operations and "VACUUM START" not in operations
    assert spark.read.format("delta").load(lake.uri(tombstones_key("shop", "m"))).count() == 0
    # the keyless table's tombstones (2, q) at 112 and (3, r) at 113 stay while the change log still holds
    # records below them (before the lifecycle they went as soon as the capture checkpoint passed them)
    assert sorted(tuple(r) for r in spark.read.format("delta").load(lake.uri(tombstones_key("shop", "free")))
                  .select("x", "y").collect()) == [(2, "q"), (3, "r")]
