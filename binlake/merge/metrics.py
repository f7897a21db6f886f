"""Per micro-batch, per table metrics: a Delta table for history, ``status.json`` for the latest.

``_binlake/merge/metrics`` (Delta, appended once per batch; a batch replayed after a crash does
not append again unless the crash fell between the append and the ``status.json`` write — then
its rows appear twice: dedupe on ``(batch_id, schema, table)`` where it matters) has one row per
table the batch touched — see :data:`METRICS_SCHEMA`.
``lag_seconds`` is the end-to-end freshness of the newest change applied: Delta commit time of the
table's last commit in the batch minus the source commit time of that change (the source time has
the binlog's one-second resolution). ``lag_max_seconds`` is the same for the oldest change.

Counts are those of the commits a batch's (last) attempt made: when a batch is replayed after a
crash, steps committed by the failed attempt are skipped and not counted again.

Retention: maintenance deletes rows whose ``merged_at`` is older than ``merge.metrics_retention_days``
(:func:`prune_metrics`, once a day). Appends come in ``merged_at`` order, so a reader filtering on a
recent ``merged_at`` (:func:`recent_metrics`) reads only the newest files (Delta's file statistics).
Its files (one per batch) are compacted and VACUUMed every maintenance round with a 10-minute
retention (:data:`binlake.merge.deltars.INTERNAL_RETENTION`), so a query of the latest metrics reads
a few files however long the merge has run.

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

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from binlake.lake import MERGE_METRICS_DIR, MERGE_STATUS_KEY, Lake
from binlake.merge import deltars
from binlake.merge.sql import delta_ref

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


def append_metrics(spark: SparkSession, lake: Lake, rows: Sequence[TableMetrics]) -> None:
    """Append ``rows`` to the metrics table in one commit (a blind append: Delta's transaction id
    would make it ~15x slower; :meth:`StatusFile.done` keeps a replayed batch from appending again).
    Once the table exists, with delta-rs (:mod:`binlake.merge.deltars`: no Spark job per batch);
    Spark creates it, and appends where delta-rs does not write the table's protocol."""
    if not rows:
        return
    path = lake.uri(MERGE_METRICS_DIR)
    table = deltars.open_table(path, lake.s3_config) if deltars.check_version() else None
    if table is not None and table.writable:
        records = [{f.name: _utc(getattr(row, f.name)) for f in dataclasses.fields(row)} for row in rows]
        deltars.append(table, pa.Table.from_pylist(records, schema=table.arrow_schema))
        return
    data = [tuple(_naive_utc(v) if isinstance(v, datetime.datetime) else v
                  for v in dataclasses.astuple(row)) for row in rows]
    frame = spark.createDataFrame(data, METRICS_SCHEMA)
    frame.write.format("delta").mode("append").save(path)


def _utc(value: object) -> object:
    """Datetimes as aware UTC (naive ones are UTC already), other values as they are."""
    if isinstance(value, datetime.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    return value


def prune_metrics(spark: SparkSession, path: str, older_than: datetime.datetime) -> int:
    """Delete the metrics rows at ``path`` whose ``merged_at`` is before ``older_than``; how many."""
    stamp = _naive_utc(older_than)
    assert stamp is not None
    result = spark.sql(f"DELETE FROM {delta_ref(path)} "
                       f"WHERE merged_at < TIMESTAMP '{stamp.strftime('%Y-%m-%d %H:%M:%S')}'").collect()
    return int(result[0]["num_affected_rows"] or 0) if result and "num_affected_rows" in result[0].asDict() else 0


def recent_metrics(spark: SparkSession, lake: Lake, hours: float) -> DataFrame:
    """The metrics rows merged in the last ``hours`` (what the lag notebook charts)."""
    since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=hours)
    naive = _naive_utc(since)
    assert naive is not None
    return (spark.read.format("delta").load(lake.uri(MERGE_METRICS_DIR))
            .where(F.col("merged_at") >= F.lit(naive)))


class StatusFile:
    """The latest metrics per table, kept in memory and written to ``status.json`` after a batch.

    ``batch_id`` is the last batch completed by app ``app_id``; a failure is recorded as
    ``last_error`` / ``failed_batch_id`` without changing it. Written without fsync (best effort).
    """

    def __init__(self, lake: Lake, app_id: str = "") -> None:
        self.lake = lake
        self.app_id = app_id
        self.tables: dict[str, dict[str, Any]] = {}
        self._last: tuple[str, int] | None = None
        try:
            previous = json.loads(lake.get_bytes(MERGE_STATUS_KEY))
        except (FileNotFoundError, ValueError):
            return
        self.tables = dict(previous.get("tables", {}))
        if previous.get("batch_id") is not None:
            self._last = (str(previous.get("app_id")), int(previous["batch_id"]))

    def done(self, batch_id: int) -> bool:
        """Did this app already complete ``batch_id`` (metrics appended, status written)?"""
        return self._last is not None and self._last[0] == self.app_id and batch_id <= self._last[1]

    def write(self, batch_id: int, rows: Sequence[TableMetrics], when: datetime.datetime) -> None:
        for row in rows:
            self.tables[f"{row.schema}.{row.table}"] = row.as_json()
        self._last = (self.app_id, batch_id)
        self._put(when, None, None)

    def write_error(self, batch_id: int, when: datetime.datetime, error: str) -> None:
        self._put(when, error, batch_id)

    def _put(self, when: datetime.datetime, error: str | None, failed_batch: int | None) -> None:
        lsns = [t["lsn"] for t in self.tables.values() if t.get("lsn") is not None]
        last_batch = self._last[1] if self._last is not None and self._last[0] == self.app_id else None
        data = {"app_id": self.app_id, "batch_id": last_batch, "updated_at": when.isoformat(),
                "lsn": max(lsns, default=None), "last_error": error, "failed_batch_id": failed_batch,
                "tables": self.tables}
        self.lake.put_bytes(MERGE_STATUS_KEY, json.dumps(data, indent=1, sort_keys=True).encode(), durable=False)
