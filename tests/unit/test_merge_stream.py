"""The merge stream's Spark source planning (binlake.merge.stream), called as Spark's planner calls it,
over a local lake (no Spark needed: the planning methods are plain Python)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadMaxFiles

from binlake.config import LakeConfig, S3Config
from binlake.lake import Lake, changelog_key
from binlake.merge.stream import ChangelogStreamReader, lake_of, reads_of, source_options


def reader(root: Path, max_files: int = 2) -> ChangelogStreamReader:
    return ChangelogStreamReader(source_options(LakeConfig(root=str(root)), max_files))


def write(lake: Lake, first: int, last: int) -> str:
    key = changelog_key(first, last)
    lake.put_bytes(key, b"parquet bytes do not matter to the planning", durable=False)
    return key


def test_batches_follow_the_change_log_by_lsn_at_most_max_files_each(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    keys = [write(lake, 10 * i + 1, 10 * i + 10) for i in range(5)]
    source = reader(tmp_path)
    start = source.initialOffset()
    assert start == {"lsn": -1}
    end = source.latestOffset(start, source.getDefaultReadLimit())
    assert end == {"lsn": 20}
    [partition] = source.partitions(start, end)
    assert [row[0] for row in partition.value] == keys[:2]
    assert source.latestOffset(end, ReadAllAvailable()) == {"lsn": 50}
    assert source.latestOffset(end, ReadMaxFiles(1)) == {"lsn": 30}
    assert source.partitions(end, end) == []


def test_available_now_stops_at_the_end_it_saw_when_it_began(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    write(lake, 1, 10)
    source = reader(tmp_path)
    source.prepareForTriggerAvailableNow()
    write(lake, 11, 20)  # the capture goes on writing
    end = source.latestOffset(source.initialOffset(), source.getDefaultReadLimit())
    assert end == {"lsn": 10}
    assert source.latestOffset(end, source.getDefaultReadLimit()) == end


def test_a_re_write_below_the_offset_is_read_above_it(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    write(lake, 1, 10)
    source = reader(tmp_path)
    end = source.latestOffset(source.initialOffset(), ReadAllAvailable())
    rewrite = write(lake, 5, 15)  # a capture restarted from lsn 4 wrote 5..15 again, and more
    following = source.latestOffset(end, ReadAllAvailable())
    assert following == {"lsn": 15}
    [partition] = source.partitions(end, following)
    assert partition.value == [(rewrite, 10, 15)]


def test_a_batch_whose_files_were_removed_stops_the_stream_with_the_reason(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    key = write(lake, 1, 10)
    source = reader(tmp_path)
    end = source.latestOffset(source.initialOffset(), ReadAllAvailable())
    lake.delete(key)
    with pytest.raises(RuntimeError, match="removed by hand"):
        source.partitions(source.initialOffset(), end)


def test_the_options_carry_where_the_lake_is_and_no_secret(tmp_path: Path) -> None:
    config = LakeConfig(root="s3a://bucket/prefix", s3=S3Config(endpoint="http://127.0.0.1:9000", path_style=True),
                        retries=3, retry_max_seconds=5.0)
    options = source_options(config, 7)
    assert set(options) == {"lake", "max_files"}
    lake = lake_of(options)
    assert lake.uri("x") == "s3a://bucket/prefix/x" and lake.retry.retries == 3
    assert "secret" not in options["lake"].lower() and "key" not in options["lake"].lower()
    with pytest.raises(ValueError, match="max_files_per_batch"):
        source_options(config, 0)


def test_rows_of_a_batch_become_reads_in_lsn_order() -> None:
    rows = [{"key": "b", "after": 10, "through": 20}, {"key": "a", "after": -1, "through": 10}]
    assert [(r.key, r.after, r.through) for r in reads_of(rows)] == [("a", -1, 10), ("b", 10, 20)]
