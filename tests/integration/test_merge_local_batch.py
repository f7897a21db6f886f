"""A small micro-batch read on the driver (binlake.merge.localbatch) gives exactly what Spark gives
for the same reads: the same summary (tables, layouts, lsn buckets, counts, bytes, commit times, DDL
records) and the same records of the small parts — on change-log files with several tables, two row
layouts of one table, DDL, deletes, multi-row events, lsn buckets a MiB of binlog apart, and reads
that take only part of a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from merge_helpers import LAYOUT, Source, lsn, r

from binlake.changelog import changelog_files
from binlake.lake import Lake
from binlake.merge.localbatch import read_local, summarize_local
from binlake.merge.offsets import FileRead
from binlake.merge.smallparts import SmallParts
from binlake.merge.source import batch_records
from binlake.merge.summary import summarize

pytestmark = pytest.mark.spark

WIDE = [*LAYOUT, ("note", "varchar(20)", False)]


def _write_changelog(lake: Lake) -> None:
    source = Source(lake)
    source.write(source.ins(100, "a", r(1, "x", 1), r(2, "y", 2)), source.ins(110, "b", r(1, "b1", 1)),
                 source.upd(120, "a", (r(1, "x", 1), r(1, "x2", 10))))
    source.write(source.dele(130, "a", r(2, "y", 2)),
                 source.ddl(140, "a", "ALTER", "ALTER TABLE a ADD note VARCHAR(20)"),
                 source.ins(150, "a", {**r(3, "ü€", 3), "note": "n"}, layout=WIDE))
    far = 3 << 20  # three buckets (MiB of binlog) later
    source.write(source.upd(far, "b", (r(1, "b1", 1), r(1, "b2", 2))), source.dele(far + 10, "b", r(1, "b2", 2)),
                 source.ins(far + 20, "c", {"id": 9, "name": None, "qty": None}),
                 source.ddl(far + 30, "c", "TRUNCATE", "TRUNCATE c"))
    source.write(source.ins((5 << 20) + 5, "a", {**r(4, "z" * 500, 4), "note": None}, layout=WIDE))


def _reads(lake: Lake) -> list[FileRead]:
    files = sorted(changelog_files(lake), key=lambda f: f.first)
    reads = [FileRead(f.key, f.first - 1, f.last) for f in files]
    second = files[1]
    reads[1] = FileRead(second.key, lsn(130), second.last)  # only part of a file: its records above 130
    return reads


def _records(table: Any) -> list[tuple[Any, ...]]:
    return sorted(tuple(row.values()) for row in table.to_pylist())


def test_the_driver_reads_a_small_batch_exactly_as_spark_does(tmp_path: Path, spark: Any) -> None:
    lake = Lake(str(tmp_path / "lake"))
    _write_changelog(lake)
    reads = _reads(lake)
    frame = batch_records(spark, lake, reads)
    local = read_local(lake, reads, 16 << 20)
    assert local is not None and local.num_rows == frame.count() == 11

    by_spark, by_driver = summarize(frame), summarize_local(local)
    assert by_driver == by_spark
    assert [s.name.table for s in by_driver] == ["a", "b", "c"]
    a = by_driver[0]
    assert [d.lsn for d in a.ddls] == [lsn(140)] and len({g.columns for g in a.groups}) == 2
    assert sum(g.deletes for g in by_driver[1].groups) == 1 and len(by_driver[1].groups) == 2  # two lsn buckets
    assert a.rows == 5 and a.bytes > 500  # the delete at 130 is not read (the partial read); one wide row

    names = [s.name for s in by_driver]
    collected, taken = SmallParts.collect(frame, names), SmallParts.from_local(local, names)
    for name in names:
        spark_rows, driver_rows = collected.rows_of(name), taken.rows_of(name)
        assert spark_rows is not None and driver_rows is not None
        assert _records(driver_rows) == _records(spark_rows)
        assert driver_rows.schema.names == spark_rows.schema.names


def test_a_batch_over_the_limit_is_left_to_spark(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    _write_changelog(lake)
    reads = _reads(lake)
    sizes = {f.key: len(lake.get_bytes(f.key)) for f in changelog_files(lake)}
    assert read_local(lake, reads, sum(sizes.values()) - 1) is None
    whole = read_local(lake, reads, sum(sizes.values()))
    assert whole is not None and whole.num_rows == 11
    empty = read_local(lake, [], 1)
    assert empty is not None and summarize_local(empty) == []
