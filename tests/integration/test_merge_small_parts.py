"""Small parts merged by delta-rs on the driver (binlake.merge.smallparts) equal Spark's MERGE of the
same change log: every value of every type, binlake's columns, the change data feed, the
transaction versions, tombstones — and a replay after a commit skips it whichever path committed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from merge_helpers import Source, load_table, merge_config, run_merge
from pyspark.sql import SparkSession

from binlake.lake import Lake, tombstones_key
from binlake.merge.txn import committed_version
from binlake.typemap import float32_text

pytestmark = pytest.mark.spark

TYPES: list[tuple[str, str, bool]] = [
    ("id", "bigint", True), ("Grp", "tinyint", True), ("t_u", "tinyint unsigned", False),
    ("s_u", "smallint unsigned", False), ("m", "mediumint", False), ("i_u", "int unsigned", False),
    ("b_u", "bigint unsigned", False), ("d", "decimal(10,2)", False), ("d38", "decimal(38,10)", False),
    ("d65", "decimal(65,5)", False), ("f", "float", False), ("db", "double", False), ("bit1", "bit(1)", False),
    ("bit10", "bit(10)", False), ("bit64", "bit(64)", False), ("y", "year", False), ("dt", "date", False),
    ("dtm", "datetime(6)", False), ("ts", "timestamp(3)", False), ("tm", "time(2)", False),
    ("c", "char", False), ("vc", "varchar", False), ("tx", "text", False), ("bl", "blob", False),
    ("bn", "binary(4)", False), ("e", "enum('a','b c')", False), ("st", "set('x','y')", False),
    ("js", "json", False),
]
NAMES = [n for n, _, _ in TYPES]


def row(i: int, **values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": i, "Grp": -128 if i % 2 else 127, "t_u": 255, "s_u": 65535, "m": -8388608, "i_u": 4294967295,
        "b_u": 18446744073709551615, "d": "-12345678.90", "d38": "1234567890123456789012345678.0123456789",
        "d65": "123456789012345678901234567890123456789012345678901234567890.12345", "f": float32_text(3.4028235e38),
        "db": repr(-1.7976931348623157e308), "bit1": "1", "bit10": "1023", "bit64": "18446744073709551615",
        "y": "2155", "dt": "0001-01-01", "dtm": "9999-12-31 23:59:59.999999", "ts": "2038-01-19 03:14:07.499",
        "tm": "-838:59:59.00", "c": "ab", "vc": "héllo ✓ 'q' \"dq\"", "tx": "line1\nline2\t\\", "bl": "00FF10",
        "bn": "61620000", "e": "b c", "st": "x,y", "js": '{"a": [1, 2.5, null]}',
    }
    base.update(values)
    return base


def changes(source: Source) -> None:
    """Three batches (max_files_per_batch = 1): inserts of edge values and NULLs, updates (one that
    moves a key), deletes and a re-insert of a deleted key."""
    source.layouts["t"] = TYPES
    nulls = {n: None for n in NAMES if n not in ("id", "Grp")}
    source.write(source.ins(200, "t", row(1), row(2, f=float32_text(1e-45), db="5e-324", d="0.00", bit1="0"),
                            row(3, **nulls), row(4, f="-0.0", db="0.1", tm="00:00:00.50", dtm="1970-01-01 00:00:00")))
    source.write(source.upd(300, "t", (row(1), row(1, vc="updated", ts="1970-01-01 00:00:01.000")),
                            (row(2), row(20, vc="moved key"))),
                 source.dele(310, "t", row(4)), source.ins(320, "t", row(5)))
    source.write(source.dele(400, "t", row(5)), source.ins(410, "t", row(4, vc="back")),
                 source.upd(420, "t", (row(3, **nulls), row(3, **{**nulls, "vc": "no longer null"}))))


def _lake(tmp_path: Path, spark: SparkSession, name: str) -> tuple[Lake, str]:
    lake = Lake(str(tmp_path / name))
    path = load_table(spark, lake, "t", [], 100, layout=TYPES)
    changes(Source(lake))
    return lake, path


def _table_rows(spark: SparkSession, path: str) -> list[tuple[Any, ...]]:
    return sorted((tuple(r) for r in spark.read.format("delta").load(path).collect()), key=repr)


def _feed(spark: SparkSession, path: str) -> list[tuple[Any, ...]]:
    feed = spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", 0).load(path)
    return sorted((tuple(r) for r in feed.drop("_commit_timestamp").collect()), key=repr)


def _engines(path: str) -> list[str]:
    """Per commit of the table, who wrote it (commitInfo engineInfo / clientVersion)."""
    engines = []
    for entry in sorted(Path(path, "_delta_log").glob("*.json")):
        for line in entry.read_text().splitlines():
            info = json.loads(line).get("commitInfo")
            if info is not None:
                engines.append(str(info.get("engineInfo") or info.get("clientVersion")))
    return engines


def test_delta_rs_parts_equal_spark_merges_value_by_value(spark: SparkSession, tmp_path: Path) -> None:
    spark_lake, spark_path = _lake(tmp_path, spark, "spark")
    small_lake, small_path = _lake(tmp_path, spark, "small")
    run_merge(spark, merge_config(spark_lake.root, small_part_records=0, max_files_per_batch=1))
    run_merge(spark, merge_config(small_lake.root, max_files_per_batch=1))

    # batch 0 joins the table to the stream after its full load (its catch-up is as small)
    assert [e.startswith("delta-rs") for e in _engines(small_path)][-3:] == [True, True, True]
    assert not any(e.startswith("delta-rs") for e in _engines(spark_path))
    expected = _table_rows(spark, spark_path)
    assert sorted(r[0] for r in expected) == [1, 3, 4, 20]  # the oracle itself: 2 moved to 20, 5 deleted, 4 back
    assert _table_rows(spark, small_path) == expected
    assert _feed(spark, small_path) == _feed(spark, spark_path)
    tomb = [_table_rows(spark, lake.uri(tombstones_key("shop", "t"))) for lake in (spark_lake, small_lake)]
    assert tomb[1] == tomb[0] and len(tomb[0]) >= 2
    app_ids = {json.loads(line)["txn"]["appId"] for entry in Path(small_path, "_delta_log").glob("*.json")
               for line in entry.read_text().splitlines() if "txn" in json.loads(line)}
    assert len(app_ids) == 1
    app_id = app_ids.pop()
    assert committed_version(spark, small_path, app_id) >= 0


@pytest.mark.slow  # three merges (minutes on a loaded machine); the default suite's replay tests cover the skip too
def test_a_replayed_batch_skips_the_delta_rs_commit(spark: SparkSession, tmp_path: Path) -> None:
    """The merge dies right after a delta-rs commit (before the checkpoint records the batch); the
    restarted merge replays the batch and ends equal to a merge that never died."""
    oracle_lake, oracle_path = _lake(tmp_path, spark, "oracle")
    run_merge(spark, merge_config(oracle_lake.root, small_part_records=0, max_files_per_batch=1))
    lake, path = _lake(tmp_path, spark, "replayed")
    commits: list[int] = []

    def crash(table_path: str, version: int) -> None:
        commits.append(version)
        if len(commits) == 3:  # batch 2's delta-rs MERGE
            raise RuntimeError("killed after the commit")

    with pytest.raises(Exception, match="killed after the commit"):
        run_merge(spark, merge_config(lake.root, max_files_per_batch=1), after_commit=crash)
    run_merge(spark, merge_config(lake.root, max_files_per_batch=1))
    assert _table_rows(spark, path) == _table_rows(spark, oracle_path)
    merges = [e for e in _engines(path) if e.startswith("delta-rs")]
    assert len(merges) == 3  # one per batch: the replay of batch 2 committed nothing again
