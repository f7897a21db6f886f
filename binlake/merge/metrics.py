"""Per micro-batch, per table metrics: a Delta table for history, ``status.json`` for the latest.

``_binlake/merge/metrics`` (Delta, appended once per batch, idempotently with the batch's
transaction version) has one row per table the batch touched — see :data:`METRICS_SCHEMA`.
``lag_seconds`` is the end-to-end freshness of the newest change applied: Delta commit time of the
table's last commit in the batch minus the source commit time of that change (the source time has
the binlog's one-second resolution). ``lag_max_seconds`` is the same for the oldest change.

Counts are those of the commits a batch's (last) attempt made: when a batch is replayed after a
crash, steps committed by the failed attempt are skipped and not counted again.

``_binlake/merge/status.json`` holds the latest entry per table (also for tables not in the last
batch), the last batch id, the lsn reached and the last error — what ``binlake status`` shows.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession

from binlake.lake import MERGE_METRICS_DIR, MERGE_STATUS_KEY, Lake
from binlake.merge.txn import writer_options

METRICS_SCHEMA = (
    "batch_id BIGINT, schema STRING, `table` STRING, status STRING, records BIGINT, inserted BIGINT, "
    "updated BIGINT, deleted BIGINT, ddl BIGINT, lsn BIGINT, source_commit_ts TIMESTAMP, "
    "merged_at TIMESTAMP, lag_seconds DOUBLE, lag_max_seconds DOUBLE, seconds DOUBLE"
)

MERGED = "merged"
JOINED = "joined"


@dataclass(frozen=True)
class TableMetrics:
    """What one batch did to one table (``status``: merged, joined, waiting_for_snapshot, …)."""

    batch_id: int
    schema: str
    table: str
    status: str
    records: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    ddl: int = 0
    lsn: int | None = None
    source_commit_ts: datetime.datetime | None = None
    merged_at: datetime.datetime | None = None
    lag_seconds: float | None = None
    lag_max_seconds: float | None = None
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key, value in data.items():
            if isinstance(value, datetime.datetime):
                data[key] = value.isoformat()
        return data


def lag(merged_at: datetime.datetime, source_ts: datetime.datetime | None) -> float | None:
    """Seconds from the source commit to the Delta commit (None without a source time)."""
    if source_ts is None:
        return None
    if source_ts.tzinfo is None:
        source_ts = source_ts.replace(tzinfo=datetime.UTC)
    return round((merged_at - source_ts).total_seconds(), 3)


def _naive_utc(value: datetime.datetime | None) -> datetime.datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(datetime.UTC).replace(tzinfo=None)


def append_metrics(spark: SparkSession, lake: Lake, rows: Sequence[TableMetrics], app_id: str, version: int) -> None:
    """Append ``rows`` to the metrics table in one commit with transaction ``(app_id, version)``."""
    if not rows:
        return
    data = [tuple(_naive_utc(v) if isinstance(v, datetime.datetime) else v
                  for v in dataclasses.astuple(row)) for row in rows]
    frame = spark.createDataFrame(data, METRICS_SCHEMA)
    (frame.write.format("delta").mode("append").options(**writer_options(app_id, version))
     .save(lake.uri(MERGE_METRICS_DIR)))


class StatusFile:
    """The latest metrics per table, kept in memory and written to ``status.json`` after a batch."""

    def __init__(self, lake: Lake, app_id: str = "") -> None:
        self.lake = lake
        self.app_id = app_id
        self.tables: dict[str, dict[str, Any]] = {}
        try:
            previous = json.loads(lake.get_bytes(MERGE_STATUS_KEY))
            self.tables = dict(previous.get("tables", {}))
        except (FileNotFoundError, ValueError):
            pass

    def write(self, batch_id: int, rows: Sequence[TableMetrics], when: datetime.datetime,
              error: str | None = None) -> None:
        for row in rows:
            self.tables[f"{row.schema}.{row.table}"] = row.as_json()
        lsns = [t["lsn"] for t in self.tables.values() if t.get("lsn") is not None]
        data = {"app_id": self.app_id, "batch_id": batch_id, "updated_at": when.isoformat(),
                "lsn": max(lsns, default=None), "last_error": error, "tables": self.tables}
        self.lake.put_bytes(MERGE_STATUS_KEY, json.dumps(data, indent=1, sort_keys=True).encode())
