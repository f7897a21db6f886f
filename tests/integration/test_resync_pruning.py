"""A resync chunk's MERGE reads only the lake files whose key statistics overlap the chunk's range
(binlake.merge.resync.apply_chunk): proved by really removing a data file outside the range before
the chunk is applied — a MERGE that read it would fail — and the result checked value by value."""

from __future__ import annotations

import datetime
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from merge_helpers import load_table, lsn, rows, spark_schema

from binlake.chunks import ChunkRange
from binlake.lake import Lake, tombstones_key
from binlake.merge.resync import ChunkTarget, apply_chunk, same_values_sql
from binlake.merge.target import TargetTable
from binlake.resync.manifest import Resync, ResyncChunk
from binlake.resync.ranges import ResyncKey, lake_range_sql, lake_skipping_sql

pytestmark = pytest.mark.spark

KEYS = (ResyncKey("id", "bigint"),)
NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)


def test_a_chunk_merge_reads_only_the_files_of_its_range(spark: Any, lake_dir: Path) -> None:
    lake = Lake(str(lake_dir))
    path = load_table(spark, lake, "t", [], 100)
    for low in range(0, 50, 10):  # five files, ids [0, 10), [10, 20), … with min/max statistics on id
        # 35: changed by the stream at lsn 300, after the chunks' snapshot
        frame = spark.createDataFrame([(i, "late", -i, lsn(300), None) if i == 35 else (i, f"n{i}", i, lsn(100), None)
                                       for i in range(low, low + 10)],
                                      spark_schema([("id", "bigint", True), ("name", "varchar", False),
                                                    ("qty", "int", False)]))
        frame.coalesce(1).write.format("delta").mode("append").save(path)
    frame = spark.read.format("delta").load(path)
    files = {r[0] for r in frame.selectExpr("input_file_name()", "id").where("id < 10").collect()}
    (outside,) = files  # the file of [0, 10): never to be read by a chunk of [20, 30)
    local = Path(outside.removeprefix("file:"))
    # the chunk read at lsn 200: 21 changed, 22 deleted at the source since the lake got it
    chunk = ResyncChunk(0, ChunkRange((20,), (30,)), "`id` >= 20 AND `id` < 30", "x", lsn(200), 9)
    source = [(i, f"n{i}", i) for i in range(20, 30) if i != 22]
    source[1] = (21, "changed", -21)
    data = spark.createDataFrame([(*r, lsn(200), NOW.replace(tzinfo=None)) for r in source],
                                 spark_schema([("id", "bigint", True), ("name", "varchar", False),
                                               ("qty", "int", False)]))
    resync = Resync("r1", "shop", "t", "shop", "t", KEYS, NOW.isoformat(), (chunk,))
    table = TargetTable.load(spark, path)
    target = ChunkTarget(path, lake.uri(tombstones_key("shop", "t")), ["id"], dict(table.source_columns),
                         table.truncate_lsn, lake_range_sql(chunk.range, KEYS, "t"),
                         lake_skipping_sql(chunk.range, KEYS, "t"))
    moved = local.with_suffix(".away")
    shutil.move(local, moved)
    try:
        done = apply_chunk(spark, resync, chunk, target, data, NOW)
    finally:
        shutil.move(moved, local)
    assert (done.inserted, done.updated, done.deleted, done.skipped) == (0, 1, 1, None)  # only what differed
    expected = [(i, "late", -i) if i == 35 else (i, f"n{i}", i) for i in range(50) if i != 22]
    expected[21] = (21, "changed", -21)
    assert rows(spark, path) == expected
    lsns = dict(tuple(r) for r in spark.read.format("delta").load(path).select("id", "_binlake_lsn").collect())
    assert {i: v for i, v in lsns.items() if v != lsn(100)} == {21: lsn(200), 35: lsn(300)}  # equal rows: not written

    tombs = spark.read.format("delta").load(lake.uri(tombstones_key("shop", "t")))
    assert [tuple(r) for r in tombs.select("id", "_binlake_lsn").collect()] == [(22, lsn(200))]

    # a chunk of [30, 40) that holds what the lake holds, but for 35, which the stream changed after it
    equal = ResyncChunk(1, ChunkRange((30,), (40,)), "`id` >= 30 AND `id` < 40", "x", lsn(200), 10)
    data = spark.createDataFrame([(i, f"n{i}", i, lsn(200), NOW.replace(tzinfo=None)) for i in range(30, 40)],
                                 spark_schema([("id", "bigint", True), ("name", "varchar", False),
                                               ("qty", "int", False)]))
    files = _files(spark, path)
    target = ChunkTarget(path, lake.uri(tombstones_key("shop", "t")), ["id"], dict(table.source_columns),
                         table.truncate_lsn, lake_range_sql(equal.range, KEYS, "t"),
                         lake_skipping_sql(equal.range, KEYS, "t"))
    done = apply_chunk(spark, resync, equal, target, data, NOW)
    assert (done.inserted, done.updated, done.deleted, done.skipped) == (0, 0, 0, None)
    assert _files(spark, path) == files  # nothing differed: no file rewritten
    assert rows(spark, path) == expected


def _files(spark: Any, path: str) -> set[str]:
    return set(spark.read.format("delta").load(path).inputFiles())


def test_same_values_tell_apart_every_value_a_lake_row_can_differ_by(spark: Any) -> None:
    """The chunk MERGE leaves a lake row alone only when :func:`same_values_sql` holds: evaluated by
    Spark on pairs that must differ (and pairs that must not)."""
    types = {"x": "double", "f": "float", "s": "string", "b": "binary", "d": "decimal(10,2)", "ts": "timestamp"}
    ts = datetime.datetime(2026, 1, 1, 0, 0, 0, 1)
    base = {"x": 1.5, "f": 0.25, "s": "a", "b": b"\x00", "d": Decimal("1.10"), "ts": ts}
    differing = [("x", -0.0, 0.0), ("x", 1.0, None), ("x", 0.1 + 0.2, 0.3), ("f", -0.0, 0.0), ("s", "a", "a "),
                 ("s", "a", "A"), ("s", None, ""), ("b", b"\x00", b"\x00\x00"),
                 ("d", Decimal("1.10"), Decimal("1.11")),
                 ("ts", ts, ts.replace(microsecond=2))]
    same = [("x", float("nan"), float("nan")), ("x", None, None), ("s", "é", "é")]
    schema = ", ".join(f"{side}_{n} {t}" for side in "ts" for n, t in types.items())
    cases = [(column, a, b, True) for column, a, b in differing] + [(column, a, b, False) for column, a, b in same]
    data = []
    for column, a, b, _ in cases:
        left, right = dict(base, **{column: a}), dict(base, **{column: b})
        data.append(tuple(left[n] for n in types) + tuple(right[n] for n in types))
    frame = spark.createDataFrame(data, schema)
    condition = same_values_sql(types).replace("t.`", "`t_").replace("s.`", "`s_")
    got = [not r[0] for r in frame.selectExpr(condition).collect()]
    assert got == [differs for *_, differs in cases]
