"""Steps of one table's batch: rows cut at DDLs, records at or below the floor left out."""

from __future__ import annotations

import pytest

from binlake.merge.plan import STEP_SLOTS, DdlStep, RowsStep, plan_steps, txn_version
from binlake.merge.summary import DdlRecord, LayoutGroup, TableChanges, TableName

NAME = TableName("src", "t", "lake", "t")


def group(columns: str, low: int, high: int, deletes: int = 0) -> LayoutGroup:
    return LayoutGroup(columns, low, high, rows=high - low + 1, deletes=deletes)


def test_rows_only_is_one_step() -> None:
    steps = plan_steps(TableChanges(NAME, (), (group("A", 10, 20),)), floor=0)
    assert steps == [RowsStep(0, None, (group("A", 10, 20),))]


def test_cut_at_ddl() -> None:
    ddl = DdlRecord(30, "ALTER", "ALTER TABLE t ADD c INT")
    changes = TableChanges(NAME, (ddl,), (group("A", 10, 20), group("B", 40, 50, deletes=2)))
    steps = plan_steps(changes, floor=0)
    assert steps == [RowsStep(0, 30, (group("A", 10, 20),)), DdlStep(ddl), RowsStep(30, None, (group("B", 40, 50, 2),))]
    assert isinstance(steps[2], RowsStep) and steps[2].deletes == 2


def test_floor_drops_old_ddl_and_rows() -> None:
    old = DdlRecord(15, "ALTER", "x")
    new = DdlRecord(35, "TRUNCATE", "TRUNCATE t")
    changes = TableChanges(NAME, (old, new), (group("A", 10, 12), group("A", 20, 30), group("A", 40, 41)))
    steps = plan_steps(changes, floor=25)
    assert steps == [RowsStep(25, 35, (group("A", 20, 30),)), DdlStep(new), RowsStep(35, None, (group("A", 40, 41),))]


def test_ddl_only() -> None:
    ddl = DdlRecord(5, "DROP", "DROP TABLE t")
    assert plan_steps(TableChanges(NAME, (ddl,), ()), floor=0) == [DdlStep(ddl)]


def test_latest_layout_is_the_highest_lsn() -> None:
    step = RowsStep(0, None, (group("new", 30, 40), group("old", 5, 50)))
    assert step.latest.columns == "old"


def test_straddling_detection() -> None:
    ddl = DdlRecord(30, "ALTER", "")
    assert TableChanges(NAME, (ddl,), (group("A", 10, 40),)).straddling()
    assert not TableChanges(NAME, (ddl,), (group("A", 10, 20), group("A", 31, 40))).straddling()


def test_txn_versions_increase_over_batches_and_steps() -> None:
    assert txn_version(0, 0) == 0
    assert txn_version(1, 0) > txn_version(0, STEP_SLOTS - 1)
    assert txn_version(3, 2) < txn_version(3, 3)
    with pytest.raises(ValueError):
        txn_version(1, STEP_SLOTS)
