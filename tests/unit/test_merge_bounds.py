"""Bounded steps: a table's rows between two DDLs are cut by lsn into steps of at most the bounds'
records and bytes, covering every lsn exactly once and in order; a replayed batch keeps the bounds
of its first attempt (no Spark)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from binlake.lake import MERGE_BOUNDS_KEY, Lake
from binlake.merge.bounds import UNBOUNDED, Bounds, bounds_for_batch
from binlake.merge.plan import DdlStep, RowsStep, Step, plan_steps, split_rows
from binlake.merge.summary import DdlRecord, LayoutGroup, TableChanges, TableName

NAME = TableName("src", "t", "lake", "t")


def group(low: int, high: int, rows: int = 1, size: int = 100, columns: str = "A", deletes: int = 0) -> LayoutGroup:
    return LayoutGroup(columns, low, high, rows=rows, deletes=deletes, bytes=size)


def ranges(steps: list[Step]) -> list[tuple[int, int | None]]:
    return [(s.after_lsn, s.before_lsn) for s in steps if isinstance(s, RowsStep)]


def covered(step: RowsStep, lsn: int) -> bool:
    return step.after_lsn < lsn and (step.before_lsn is None or lsn < step.before_lsn)


def test_a_step_within_the_bounds_is_left_as_it_is() -> None:
    step = RowsStep(0, None, (group(10, 20, rows=5), group(30, 40, rows=5)))
    assert split_rows(step, Bounds(10, 1000)) == [step]
    assert split_rows(step, UNBOUNDED) == [step]


def test_rows_are_cut_by_records_between_groups() -> None:
    groups = tuple(group(10 * i, 10 * i + 5, rows=4) for i in range(1, 7))  # 6 groups of 4 records
    parts = split_rows(RowsStep(3, None, groups), Bounds(records=8, bytes=10**9))
    assert [p.rows for p in parts] == [8, 8, 8]
    assert ranges(list(parts)) == [(3, 30), (29, 50), (49, None)]
    assert [g for p in parts for g in p.groups] == list(groups)


def test_rows_are_cut_by_bytes() -> None:
    groups = (group(10, 11, size=600), group(20, 21, size=600), group(30, 31, size=100), group(40, 41, size=600))
    parts = split_rows(RowsStep(0, 50, groups), Bounds(records=10**6, bytes=1000))
    assert [[g.min_lsn for g in p.groups] for p in parts] == [[10], [20, 30], [40]]
    assert ranges(list(parts)) == [(0, 20), (19, 40), (39, 50)]


def test_a_group_larger_than_the_bounds_is_a_step_of_its_own() -> None:
    parts = split_rows(RowsStep(0, None, (group(1, 2), group(5, 6, rows=50), group(9, 9))), Bounds(3, 10**9))
    assert [p.rows for p in parts] == [1, 50, 1]


def test_groups_overlapping_in_lsn_are_never_separated() -> None:
    # two layouts interleaved in one lsn bucket: a cut between them would split records of both
    groups = (group(10, 30, rows=5, columns="A"), group(12, 28, rows=5, columns="B"), group(40, 41, rows=5))
    parts = split_rows(RowsStep(0, None, groups), Bounds(records=5, bytes=10**9))
    assert [{g.columns for g in p.groups} for p in parts] == [{"A", "B"}, {"A"}]
    assert ranges(list(parts)) == [(0, 40), (39, None)]


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 100])
def test_every_lsn_is_in_exactly_one_step_in_order(limit: int) -> None:
    ddls = (DdlRecord(50, "ALTER", "ALTER TABLE t ADD c INT"), DdlRecord(90, "ALTER", "ALTER TABLE t DROP c"))
    groups = tuple(group(lo, lo + 2, rows=2) for lo in (12, 20, 31, 40, 44, 55, 60, 71, 80, 95, 99))
    steps = plan_steps(TableChanges(NAME, ddls, groups), floor=11, limits=Bounds(limit, 10**9))
    rows = [s for s in steps if isinstance(s, RowsStep)]
    assert [type(s).__name__ for s in steps].count("DdlStep") == 2
    lsns = [lsn for g in groups for lsn in range(g.min_lsn, g.max_lsn + 1)]
    for lsn in lsns:
        assert sum(covered(s, lsn) for s in rows) == 1, lsn
    for ddl in ddls:
        assert not any(covered(s, ddl.lsn) for s in rows)
    starts = [s.record.lsn if isinstance(s, DdlStep) else s.after_lsn + 1 for s in steps]
    assert starts == sorted(starts)  # steps in lsn order, each DDL between its rows
    assert all(s.rows <= max(limit, 2) for s in rows)
    assert steps == plan_steps(TableChanges(NAME, ddls, groups), floor=11, limits=Bounds(limit, 10**9))


def test_without_bounds_the_plan_is_the_unbounded_one() -> None:
    groups = tuple(group(lo, lo + 1, rows=100) for lo in range(10, 40, 5))
    changes = TableChanges(NAME, (), groups)
    assert plan_steps(changes, floor=0) == plan_steps(changes, floor=0, limits=UNBOUNDED)
    assert len(plan_steps(changes, floor=0, limits=Bounds(100, 10**9))) == len(groups)


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="bounds must be >= 1"):
        Bounds(0, 10)


def test_a_replayed_batch_keeps_the_bounds_of_its_first_attempt(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    first, changed = Bounds(100, 1000), Bounds(5000, 10**9)
    assert bounds_for_batch(lake, "app", 7, first) == first  # first attempt: recorded before any commit
    assert json.loads(lake.get_bytes(MERGE_BOUNDS_KEY))["max_batch_records"] == 100
    assert bounds_for_batch(lake, "app", 7, changed) == first  # the replay after a config change
    assert bounds_for_batch(lake, "app", 8, changed) == changed  # the next batch
    assert bounds_for_batch(lake, "app", 8, first) == changed
    assert bounds_for_batch(lake, "other-app", 8, first) == first  # a new checkpoint is a new app
