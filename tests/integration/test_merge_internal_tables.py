"""binlake's own Delta tables (metrics, tombstones) keep a flat file count: the maintenance round
compacts them and VACUUMs them with their short retention (binlake.merge.deltars.INTERNAL_RETENTION),
by delta-rs — or by Spark for a tombstone table delta-rs does not write (deletion vectors, as an
older binlake made them; slow) — while the lake table keeps what its OPTIMIZE removed. Every row is
kept, value by value, and a Spark MERGE reading the tombstones afterwards still applies them.

delta-rs VACUUMs by the wall clock, so "past the retention" is a second round with a retention of
2 s (``Maintenance(internal_retention=…)``), 2.5 s after the first."""

from __future__ import annotations

import dataclasses
import datetime
import os
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable as RsTable
from merge_helpers import Source, load_table, lsn, merge_config, rows, run_merge

from binlake.config import MergeConfig
from binlake.lake import MERGE_METRICS_DIR, Lake, tombstones_key
from binlake.merge import deltars
from binlake.merge.apply import MergeContext
from binlake.merge.cadence import METRICS
from binlake.merge.job import tune_session
from binlake.merge.maintenance import Maintenance
from binlake.merge.metrics import MERGED, TableMetrics, append_metrics
from binlake.rules import TableMapping

pytestmark = pytest.mark.spark

N = 20          # batches between two rounds (merge.optimize_every_batches)
SHORT = datetime.timedelta(seconds=2)
NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
CONFIG = MergeConfig(optimize_every_batches=N, metrics_retention_days=0)  # no row retention: files only


def data_files(folder: str) -> int:
    """Parquet data files on disk under a table's folder (its log's checkpoints left out)."""
    return sum(1 for top, _, names in os.walk(folder) if "_delta_log" not in top
               for n in names if n.endswith(".parquet"))


def log_entries(folder: str) -> int:
    """Commits and checkpoints in the table's log (Spark's checksum files left out)."""
    return sum(1 for n in os.listdir(Path(folder) / "_delta_log") if n.endswith((".json", ".parquet")))


def arrow_rows(path: str, version: int | None = None) -> list[tuple[Any, ...]]:
    """Every row of a table delta-rs reads, as sorted tuples (timestamps as naive UTC)."""
    table = RsTable(path, version=version).to_pyarrow_table()
    return sorted(tuple(v.replace(tzinfo=None) if isinstance(v, datetime.datetime) else v for v in row.values())
                  for row in table.to_pylist())


def metrics_row(i: int) -> TableMetrics:
    stamp = NOW + datetime.timedelta(seconds=i)
    return TableMetrics(i, "shop", "m", MERGED, records=i + 1, inserted=1, updated=i, deleted=i % 3, lsn=lsn(200 + i),
                        source_commit_ts=stamp, merged_at=stamp + datetime.timedelta(seconds=2), lag_seconds=2.0,
                        lag_max_seconds=2.5 + i, seconds=0.25 * i)


def tombstone(i: int) -> dict[str, Any]:
    """A tombstone of key ``100 + i`` (a row deleted at position ``200 + i``)."""
    return {"id": 100 + i, "_binlake_lsn": lsn(200 + i), "_binlake_commit_ts": NOW + datetime.timedelta(seconds=i)}


def context(spark: Any, lake: Lake, lake_dir: Path) -> MergeContext:
    return MergeContext(spark, lake, "t", TableMapping.parse(merge_config(lake_dir).table_mappings))


def test_internal_tables_are_compacted_and_vacuumed_and_keep_every_row(spark: Any, lake_dir: Path) -> None:
    tune_session(spark, merge_config(lake_dir))  # as the merge does
    lake = Lake(str(lake_dir))
    path = load_table(spark, lake, "m", [(i, f"n{i}", i) for i in range(1, 11)], 100)
    metrics, tombs = lake.uri(MERGE_METRICS_DIR), lake.uri(tombstones_key("shop", "m"))
    deltars.create_table(tombs, None, pa.schema([("id", pa.int64()), ("_binlake_lsn", pa.int64()),
                                                 ("_binlake_commit_ts", pa.timestamp("us", "UTC"))]))  # as smallparts
    maintenance = Maintenance(context(spark, lake, lake_dir), CONFIG, lambda: None)
    for i in range(N):  # a batch: a metrics append (Spark creates the table), a tombstone append by delta-rs
        append_metrics(spark, lake, [metrics_row(i)])
        table = deltars.open_table(tombs, None)
        assert table is not None and table.writable
        deltars.append(table, pa.Table.from_pylist([tombstone(i)], schema=table.arrow_schema))
        if i == N - 1:
            before = {p: (RsTable(p).version(), data_files(p)) for p in (metrics, tombs, path)}
        maintenance.after_batch(i, [TableMetrics(i, "shop", "m", MERGED, inserted=1)])  # the last is a round

    expected: dict[str, list[tuple[Any, ...]]] = {
        metrics: sorted(tuple(v.replace(tzinfo=None) if isinstance(v, datetime.datetime) else v
                              for v in dataclasses.astuple(metrics_row(i))) for i in range(N)),
        tombs: sorted((t["id"], t["_binlake_lsn"], t["_binlake_commit_ts"].replace(tzinfo=None))
                      for t in map(tombstone, range(N)))}
    # round 1 (10-minute retention): one live file each; what the compaction removed is still on disk,
    # so the version a reader may still hold (the one before the compaction) reads whole
    for p in (metrics, tombs):
        assert arrow_rows(p) == expected[p], p
        assert arrow_rows(p, before[p][0]) == expected[p], p
        assert len(RsTable(p).file_uris()) == 1, p
        assert data_files(p) == before[p][1] + 1, p                     # the compacted file added, none deleted
        props = RsTable(p).metadata().configuration
        assert props["delta.deletedFileRetentionDuration"] == "interval 10 minutes", p
        assert props["delta.logRetentionDuration"] == "interval 10 minutes", p
    assert maintenance.state[METRICS]["batches"] == 0 and maintenance.state["shop.m"]["batches"] == 0
    assert len(RsTable(path).file_uris()) == 1                             # the lake table was OPTIMIZEd
    lake_files = data_files(path)

    # past the retention: only the live file of each internal table is left, its log a checkpoint and
    # the commits since (property change, compaction, VACUUM start/end); the lake table keeps what its
    # OPTIMIZE removed (merge.vacuum_retention_hours, at most daily: not this round)
    time.sleep(SHORT.total_seconds() + 0.5)
    Maintenance(context(spark, lake, lake_dir), CONFIG, lambda: None, internal_retention=SHORT).run(
        ["shop.m", METRICS])
    for p in (metrics, tombs):
        assert arrow_rows(p) == expected[p], p
        assert data_files(p) == 1, p
        assert RsTable(p).metadata().configuration["delta.deletedFileRetentionDuration"] == "interval 2 seconds"
        assert log_entries(p) <= 8, sorted(os.listdir(Path(p) / "_delta_log"))
    assert data_files(path) == lake_files > 1

    # a Spark MERGE reads the compacted tombstones: an insert older than its key's tombstone stays out,
    # a newer one comes in; the metrics table takes the merge's appends
    src = Source(lake)
    src.write(src.ins(150, "m", {"id": 100, "name": "stale", "qty": 0}),
              src.ins(250, "m", {"id": 101, "name": "back", "qty": 1}),
              src.upd(260, "m", ({"id": 1, "name": "n1", "qty": 1}, {"id": 1, "name": "n1b", "qty": 7})))
    run_merge(spark, merge_config(lake_dir, small_part_records=0))
    assert rows(spark, path) == [(1, "n1b", 7), *[(i, f"n{i}", i) for i in range(2, 11)], (101, "back", 1)]
    assert arrow_rows(tombs) == expected[tombs]
    after = arrow_rows(metrics)
    assert len(after) > N and set(expected[metrics]) <= set(after)


@pytest.mark.slow
def test_a_tombstone_table_delta_rs_does_not_write_is_maintained_by_spark(spark: Any, lake_dir: Path) -> None:
    tune_session(spark, merge_config(lake_dir))
    lake = Lake(str(lake_dir))
    load_table(spark, lake, "legacy", [(1, "a", 1)], 100)
    legacy = lake.uri(tombstones_key("shop", "legacy"))
    spark.sql(f"CREATE TABLE delta.`{legacy}` (id BIGINT, _binlake_lsn BIGINT, _binlake_commit_ts TIMESTAMP) "
              "USING delta TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")   # as an older binlake made it
    appended = [(200 + i, lsn(300 + i), (NOW + datetime.timedelta(seconds=i)).replace(tzinfo=None)) for i in range(4)]
    for row in appended:
        spark.createDataFrame([row], "id BIGINT, _binlake_lsn BIGINT, _binlake_commit_ts TIMESTAMP") \
            .write.format("delta").mode("append").save(legacy)
    table = deltars.open_table(legacy, None)
    assert table is not None and not table.writable
    on_disk = data_files(legacy)
    maintenance = Maintenance(context(spark, lake, lake_dir), MergeConfig(optimize_every_batches=1), lambda: None)
    maintenance.after_batch(0, [TableMetrics(0, "shop", "legacy", MERGED, inserted=1)])

    def content() -> list[tuple[Any, ...]]:
        return sorted(tuple(r) for r in spark.read.format("delta").load(legacy).collect())

    assert content() == sorted(appended)
    assert len(RsTable(legacy).file_uris()) == 1 and data_files(legacy) == on_disk + 1   # compacted, none deleted
    assert RsTable(legacy).metadata().configuration["delta.deletedFileRetentionDuration"] == "interval 10 minutes"
    time.sleep(SHORT.total_seconds() + 0.5)
    Maintenance(context(spark, lake, lake_dir), MergeConfig(optimize_every_batches=1), lambda: None,
                internal_retention=SHORT).run(["shop.legacy"])
    assert content() == sorted(appended)
    assert data_files(legacy) == 1            # Spark's VACUUM at the table's own (short) retention
