"""status.json of the merge: latest entry per table, and which batches are done (binlake.merge.metrics)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from binlake.lake import MERGE_STATUS_KEY, Lake
from binlake.merge.metrics import StatusFile, TableMetrics, lag

NOW = datetime.datetime(2024, 5, 1, 12, 0, 10, tzinfo=datetime.UTC)


def test_status_keeps_latest_per_table_and_knows_done_batches(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    status = StatusFile(lake, "app-1")
    assert not status.done(0)
    status.write(0, [TableMetrics(0, "s", "a", "merged", records=3, lsn=10)], NOW)
    status.write(1, [TableMetrics(1, "s", "b", "merged", records=1, lsn=12)], NOW)
    data = json.loads(lake.get_bytes(MERGE_STATUS_KEY))
    assert data["batch_id"] == 1 and data["lsn"] == 12 and set(data["tables"]) == {"s.a", "s.b"}
    reopened = StatusFile(lake, "app-1")
    assert reopened.done(0) and reopened.done(1) and not reopened.done(2)
    assert not StatusFile(lake, "app-2").done(0)  # a new checkpoint restarts batch ids


def test_error_does_not_mark_the_batch_done(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    status = StatusFile(lake, "app")
    status.write(4, [], NOW)
    status.write_error(5, NOW, "boom")
    data = json.loads(lake.get_bytes(MERGE_STATUS_KEY))
    assert (data["batch_id"], data["failed_batch_id"], data["last_error"]) == (4, 5, "boom")
    assert not StatusFile(lake, "app").done(5)


def test_lag_is_commit_minus_source_time() -> None:
    assert lag(NOW, datetime.datetime(2024, 5, 1, 12, 0, 0)) == 10.0
    assert lag(NOW, None) is None
