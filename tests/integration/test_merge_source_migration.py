"""A merge checkpoint written by Spark's file stream source (binlake before the lsn source) keeps
working: the first start of this version migrates it in place (same query id, so the same Delta
transaction app id; batch ids go on), replays the batch the old source planned and did not commit
exactly once, and goes on from there; ``sources/0`` is gone afterwards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from delta.tables import DeltaTable
from merge_helpers import Source, load_table, merge_config, r, rows, run_merge
from pyspark.sql import DataFrame, SparkSession

from binlake.config import LakeConfig
from binlake.lake import CHANGELOG_DIR, MERGE_CHECKPOINT_DIR, MERGE_STATUS_KEY, Lake
from binlake.merge import job
from binlake.merge.source import CHANGELOG_SPARK_SCHEMA, BatchRecords

pytestmark = pytest.mark.spark


def file_source_stream(spark: SparkSession, lake: LakeConfig, max_files: int) -> DataFrame:
    """The merge stream of binlake before ``binlake.merge.stream``: Spark's file source over the change log."""
    return (spark.readStream.schema(CHANGELOG_SPARK_SCHEMA).option("maxFilesPerTrigger", max_files)
            .option("pathGlobFilter", "*.parquet").parquet(Lake(lake.root).uri(CHANGELOG_DIR)))


def merges(spark: Any, path: str) -> int:
    return DeltaTable.forPath(spark, path).history().filter("operation = 'MERGE'").count()


def checkpoint_offsets(lake_dir: Path) -> dict[int, dict[str, Any]]:
    folder = lake_dir / MERGE_CHECKPOINT_DIR / "offsets"
    return {int(p.name): json.loads(p.read_text().splitlines()[2]) for p in folder.iterdir() if p.name.isdigit()}


class CrashAfter:
    """Raise once, right after the first commit to a table whose path ends with ``suffix``."""

    def __init__(self, suffix: str) -> None:
        self.suffix, self.crashed = suffix, False

    def __call__(self, path: str, version: int) -> None:
        if not self.crashed and path.endswith(self.suffix):
            self.crashed = True
            raise RuntimeError(f"simulated crash after commit {version} to {path}")


def test_a_file_source_checkpoint_with_a_pending_batch_is_migrated_and_goes_on_exactly_once(
        spark: Any, lake_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = Lake(str(lake_dir))
    src = Source(lake)
    a = load_table(spark, lake, "a", [(1, "a", 1), (2, "b", 2)], 100)
    c = load_table(spark, lake, "c", [(1, "a", 1)], 100)
    config = merge_config(lake_dir, max_files_per_batch=1)
    src.write(src.upd(110, "a", (r(1, "a", 1), r(1, "a1", 10))))  # batch 0: committed by the old source
    src.write(src.upd(120, "a", (r(1, "a1", 10), r(1, "a2", 20))), src.ins(121, "c", r(2, "b", 2)))  # batch 1
    with monkeypatch.context() as old:  # the previous binlake: file source, no migration
        old.setattr(job, "read_changelog_stream", file_source_stream)
        old.setattr(job, "on_records", lambda _lake, process, *_: lambda frame, batch_id: process(
            BatchRecords(frame), batch_id))  # the file source's rows are the records
        old.setattr(job, "migrate_file_source_checkpoint", lambda _spark, _lake: {})
        with pytest.raises(Exception, match="simulated crash"):
            run_merge(spark, config, after_commit=CrashAfter("/shop/c"))
    assert (lake_dir / MERGE_CHECKPOINT_DIR / "sources" / "0").is_dir()
    assert checkpoint_offsets(lake_dir) == {0: {"logOffset": 0}, 1: {"logOffset": 1}}
    app_id = job.checkpoint_app_id(lake)
    assert rows(spark, c) == [(1, "a", 1), (2, "b", 2)]  # committed just before the crash

    src.write(src.upd(130, "c", (r(2, "b", 2), r(2, "b3", 30))))  # after the upgrade
    run_merge(spark, config)  # this version: migrates, replays batch 1 (all skipped), then batch 2
    assert not (lake_dir / MERGE_CHECKPOINT_DIR / "sources").exists()
    offsets = checkpoint_offsets(lake_dir)
    assert set(offsets) == {0, 1, 2} and all(set(o) == {"lsn"} for o in offsets.values())
    assert offsets[0]["lsn"] < offsets[1]["lsn"] < offsets[2]["lsn"]
    assert job.checkpoint_app_id(lake) == app_id
    assert rows(spark, a) == [(1, "a2", 20), (2, "b", 2)]
    assert rows(spark, c) == [(1, "a", 1), (2, "b3", 30)]
    assert (merges(spark, a), merges(spark, c)) == (2, 2)  # nothing applied twice, nothing skipped
    assert json.loads(lake.get_bytes(MERGE_STATUS_KEY))["batch_id"] == 2

    run_merge(spark, config)  # a second start: nothing to migrate, nothing new
    assert (merges(spark, a), merges(spark, c)) == (2, 2)
