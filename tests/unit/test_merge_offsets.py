"""The merge stream's lsn offsets and read plans (binlake.merge.offsets), against a model of the
capture's files: a change log of whole events cut into files, with crash re-writes of the records
after a checkpoint (other cuts, same records)."""

from __future__ import annotations

import datetime
import itertools
import random

import pytest

from binlake.lake import changelog_key
from binlake.lifecycle import ChangelogFile
from binlake.merge.offsets import (
    START,
    ChangelogOffset,
    FileRead,
    OffsetError,
    missing_end,
    next_end,
    read_plan,
)

WRITTEN = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
LSNS = list(range(100, 3000, 7))  # event lsns (sparse, as binlog offsets are)


def changelog(*runs: tuple[int, list[int]]) -> dict[str, list[int]]:
    """Files of capture runs: each run starts at event index ``start`` and cuts files of the given sizes."""
    files: dict[str, list[int]] = {}
    for start, sizes in runs:
        i = start
        for size in sizes:
            events = LSNS[i:i + size]
            if not events:
                break
            files[changelog_key(events[0], events[-1])] = events
            i += size
    return files


def infos(files: dict[str, list[int]]) -> list[ChangelogFile]:
    return [ChangelogFile(lsns[0], lsns[-1], key, WRITTEN) for key, lsns in files.items()]


def delivered(files: dict[str, list[int]], reads: tuple[FileRead, ...]) -> list[int]:
    """The event lsns the reads deliver, in read order (a read takes its file's records in its stretch)."""
    return [lsn for r in reads for lsn in files[r.key] if r.after < lsn <= r.through]


def expected(files: dict[str, list[int]], start: int, end: int) -> list[int]:
    return sorted({lsn for lsns in files.values() for lsn in lsns if start < lsn <= end})


def test_without_re_writes_every_file_is_read_whole_once_in_lsn_order() -> None:
    files = changelog((0, [5, 5, 5, 5]))
    reads = read_plan(infos(files), START)
    assert [r.key for r in reads] == list(files)
    assert delivered(files, reads) == LSNS[:20]


def test_a_re_write_overlapping_the_offset_is_read_above_it_only() -> None:
    # the first run wrote 12 events in 3 files and died before its checkpoint moved past event 4;
    # the restarted run writes events 4.. again, cut differently
    files = changelog((0, [4, 4, 4]), (4, [6, 6, 6]))
    offset = ChangelogOffset(LSNS[11])  # the merge had read the first run's three files
    reads = read_plan(infos(files), offset)
    assert delivered(files, reads) == LSNS[12:22]
    assert reads[0].after == LSNS[11] and files[reads[0].key] == LSNS[10:16]


@pytest.mark.parametrize("seed", range(40))
def test_any_batch_delivers_each_record_of_its_range_exactly_once(seed: int) -> None:
    rng = random.Random(seed)
    runs = [(0, [rng.randint(1, 6) for _ in range(40)])]
    for _ in range(rng.randint(0, 3)):  # crash re-writes from some earlier checkpoint
        runs.append((rng.randint(0, 60), [rng.randint(1, 9) for _ in range(30)]))
    files = changelog(*runs)
    lo, hi = sorted(rng.sample(range(-1, LSNS[-1]), 2))
    reads = read_plan(infos(files), ChangelogOffset(lo), ChangelogOffset(hi))
    assert delivered(files, reads) == expected(files, lo, hi)
    for a, b in itertools.pairwise(reads):
        assert a.through == b.after  # stretches tile the range
    for r in reads:  # each stretch inside the batch and inside its file, and not empty there
        assert lo <= r.after and r.through <= min(hi, files[r.key][-1])
        assert any(r.after < lsn <= r.through for lsn in files[r.key])


def test_a_replay_that_lists_a_new_re_write_reads_the_same_records() -> None:
    before = changelog((0, [5, 5, 5]))
    after = {**before, **changelog((3, [20]))}  # a capture restart wrote events 3..22 again meanwhile
    start, end = ChangelogOffset(LSNS[4]), ChangelogOffset(LSNS[14])
    first = delivered(before, read_plan(infos(before), start, end))
    again = delivered(after, read_plan(infos(after), start, end))
    assert first == again == LSNS[5:15]


def test_next_end_reads_at_most_max_files_and_stops_at_until() -> None:
    files = infos(changelog((0, [3, 3, 3, 3])))
    assert next_end(files, START, 2) == ChangelogOffset(LSNS[5])
    assert next_end(files, ChangelogOffset(LSNS[5]), 2) == ChangelogOffset(LSNS[11])
    assert next_end(files, START) == ChangelogOffset(LSNS[11])
    assert next_end(files, START, 10, until=ChangelogOffset(LSNS[4])) == ChangelogOffset(LSNS[4])
    assert next_end(files, ChangelogOffset(LSNS[11]), 2) == ChangelogOffset(LSNS[11])  # nothing new
    with pytest.raises(ValueError, match="max_files"):
        next_end(files, START, 0)


def test_duplicates_do_not_count_against_max_files() -> None:
    files = infos(changelog((0, [3, 3]), (0, [3, 3]), (3, [6])))
    assert next_end(files, START, 2) == ChangelogOffset(LSNS[8])


def test_a_batch_whose_files_are_gone_is_refused_with_the_reason() -> None:
    files = infos(changelog((0, [3, 3])))
    start, end = START, ChangelogOffset(LSNS[8])
    problem = missing_end(read_plan(files, start, end), start, end)
    assert problem is not None and "removed by hand" in problem and str(LSNS[5]) in problem
    assert missing_end(read_plan(files, start, ChangelogOffset(LSNS[5])), start, ChangelogOffset(LSNS[5])) is None


def test_offsets_round_trip_and_refuse_what_they_cannot_read() -> None:
    assert ChangelogOffset.from_dict(ChangelogOffset(42).to_dict()) == ChangelogOffset(42)
    assert ChangelogOffset.from_dict({"lsn": -1}) == START
    with pytest.raises(OffsetError, match="older binlake"):
        ChangelogOffset.from_dict({"logOffset": 3})
    with pytest.raises(OffsetError, match="integer"):
        ChangelogOffset.from_dict({"lsn": "7"})
    with pytest.raises(OffsetError, match=">= -1"):
        ChangelogOffset(-2)
