"""Migrating a file-source merge checkpoint (binlake.merge.migrate): the pure parts — reading the file
source's log, the lsn offset of each batch, rewriting an offset-log entry, refusing a pending batch
that could not be replayed as the same steps."""

from __future__ import annotations

import json

import pytest

from binlake.lake import changelog_key
from binlake.merge.migrate import (
    FileSourceEntry,
    MigrationRefused,
    check_pending,
    file_source_ends,
    parse_file_source_log,
    source_offset,
    with_source_offset,
)
from binlake.merge.offsets import START, ChangelogOffset

METADATA = '{"batchWatermarkMs":0,"batchTimestampMs":1796139645287,"conf":{"spark.sql.shuffle.partitions":"200"}}'


def entry(batch_id: int, first: int, last: int) -> FileSourceEntry:
    return FileSourceEntry(batch_id, f"file:///lake/{changelog_key(first, last)}")


def log_text(*entries: FileSourceEntry) -> str:
    lines = [json.dumps({"path": e.path, "timestamp": 1796139645000, "batchId": e.batch_id}) for e in entries]
    return "\n".join(["v1", *lines])


def test_the_file_source_log_is_read_compacted_or_not() -> None:
    entries = [entry(0, 1, 10), entry(0, 11, 20), entry(1, 21, 30)]
    assert parse_file_source_log(log_text(*entries)) == entries
    assert parse_file_source_log("v1\n") == []
    with pytest.raises(ValueError, match="file-source log"):
        parse_file_source_log("")


def test_each_batch_ends_at_the_highest_lsn_read_by_it_or_before() -> None:
    # batch 2 read only a re-written duplicate (lower than what batch 1 read): its end stays
    entries = [entry(0, 1, 10), entry(0, 11, 20), entry(1, 21, 30), entry(2, 15, 25), entry(3, 31, 40)]
    ends = file_source_ends(entries, [0, 1, 2, 3, 4])
    assert ends == {0: ChangelogOffset(20), 1: ChangelogOffset(30), 2: ChangelogOffset(30),
                    3: ChangelogOffset(40), 4: ChangelogOffset(40)}
    assert file_source_ends([], [-1, 0]) == {-1: START, 0: START}


def test_an_offset_log_entry_keeps_its_metadata_and_gets_the_lsn_offset() -> None:
    text = f'v1\n{METADATA}\n{{"logOffset":3}}'
    assert source_offset(text) == {"logOffset": 3}
    rewritten = with_source_offset(text, ChangelogOffset(1234))
    assert rewritten.splitlines()[:2] == ["v1", METADATA]
    assert source_offset(rewritten) == {"lsn": 1234}
    with pytest.raises(ValueError, match="one source offset"):
        source_offset(f'v1\n{METADATA}\n{{"logOffset":3}}\n{{"logOffset":4}}')


def test_a_pending_batch_of_new_whole_files_migrates() -> None:
    check_pending([entry(0, 1, 10), entry(1, 11, 20), entry(1, 21, 30)], 1, ChangelogOffset(10))


@pytest.mark.parametrize("entries", [
    [entry(0, 1, 10), entry(1, 5, 20)],                     # a re-write reaching below the previous end
    [entry(0, 1, 10), entry(1, 11, 20), entry(1, 15, 30)],  # two files of the batch overlap
])
def test_a_pending_batch_with_re_written_records_is_refused_with_the_fix(entries: list[FileSourceEntry]) -> None:
    with pytest.raises(MigrationRefused, match="previous binlake version"):
        check_pending(entries, 1, ChangelogOffset(10))
