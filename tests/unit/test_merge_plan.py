"""Steps of one table's batch: rows cut at DDLs, records at or below the floor left out, wipes folded,
no limit on steps; the transaction of each step."""

from __future__ import annotations

import pytest

from binlake.merge.plan import STEP_SLOTS, DdlStep, RowsStep, StepTxn, plan_steps, step_txn
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
    steps = plan_steps(changes, floor=25, history=True)
    assert steps == [RowsStep(25, 35, (group("A", 20, 30),)), DdlStep(new), RowsStep(35, None, (group("A", 40, 41),))]
    assert plan_steps(changes, floor=25) == [DdlStep(new), RowsStep(35, None, (group("A", 40, 41),))]


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


def test_txns_are_unique_and_increase_per_app_id_without_a_step_limit() -> None:
    app = "binlake-merge-q"
    assert step_txn(app, 0, 0) == StepTxn(app, 0)
    assert step_txn(app, 3, 2) == StepTxn(app, 3 * STEP_SLOTS + 2)
    assert step_txn(app, 3, STEP_SLOTS + 5) == StepTxn(f"{app}#1", 3 * STEP_SLOTS + 5)
    txns = [step_txn(app, b, i) for b in range(3) for i in range(3 * STEP_SLOTS + 7)]
    assert len(set(txns)) == len(txns)
    for app_id in {t.app_id for t in txns}:
        versions = [t.version for t in txns if t.app_id == app_id]
        assert versions == sorted(versions)
    with pytest.raises(ValueError, match="step_index"):
        step_txn(app, 1, -1)
    with pytest.raises(ValueError, match="batch_id"):
        step_txn(app, -1, 0)


def storm(cycles: int) -> TableChanges:
    """A staging table truncated and refilled ``cycles`` times: TRUNCATE at 10k, rows at 10k+1..+5."""
    ddls = tuple(DdlRecord(10 * k, "TRUNCATE", "TRUNCATE TABLE t") for k in range(1, cycles + 1))
    groups = tuple(group("A", 10 * k + 1, 10 * k + 5) for k in range(1, cycles + 1))
    return TableChanges(NAME, ddls, groups)


def test_truncate_storm_is_two_steps_for_a_current_state_table() -> None:
    changes = storm(5000)
    steps = plan_steps(changes, floor=0)
    assert steps == [DdlStep(changes.ddls[-1], changes.ddls[:-1]), RowsStep(50000, None, (group("A", 50001, 50005),))]


def test_truncate_storm_keeps_every_step_with_history() -> None:
    steps = plan_steps(storm(5000), floor=0, history=True)  # more steps than STEP_SLOTS: no error
    assert len(steps) == 10000 > STEP_SLOTS
    assert all(isinstance(s, RowsStep) and s.rows == 5 for s in steps[1::2])
    assert isinstance(steps[-1], RowsStep) and steps[-1].after_lsn == 50000


def test_wipes_below_the_floor_are_not_folded() -> None:
    changes = storm(3)
    assert plan_steps(changes, floor=30) == [RowsStep(30, None, (group("A", 31, 35),))]
    assert plan_steps(changes, floor=25) == [DdlStep(changes.ddls[2]), RowsStep(30, None, (group("A", 31, 35),))]


def test_create_or_replace_wipes_plain_create_does_not() -> None:
    assert DdlRecord(1, "CREATE", "create or replace table t (id int)").wipes
    assert not DdlRecord(1, "CREATE", "CREATE TABLE IF NOT EXISTS t (id int)").wipes
    assert DdlRecord(1, "drop", "DROP TABLE t").wipes
    assert not DdlRecord(1, "ALTER", "ALTER TABLE t TRUNCATE PARTITION p0").wipes
