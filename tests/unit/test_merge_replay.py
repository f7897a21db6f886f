"""A replayed batch plans the same steps with the same transactions, whatever its first attempt
committed before the crash (the planner against every partial commit state, no Spark)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from binlake.merge.apply import batch_tag, plan_table
from binlake.merge.plan import DdlStep, RowsStep, Step, StepTxn, plan_steps, step_txn
from binlake.merge.summary import DdlRecord, LayoutGroup, TableChanges, TableName
from binlake.merge.target import SCHEMA_LSN, TRUNCATE_LSN, TargetTable

NAME = TableName("src", "t", "lake", "t")
APP = "binlake-merge-q1"
SNAPSHOT = 10


def group(low: int, high: int, deletes: int = 0, columns: str = "A") -> LayoutGroup:
    return LayoutGroup(columns, low, high, rows=high - low + 1, deletes=deletes)


def table(**properties: str) -> TargetTable:
    return TargetTable("/lake/t", {"id": "bigint"}, frozenset(), dict(properties))


# batch 7 of one table: rows, TRUNCATE, rows, ALTER, rows with deletes, DROP, CREATE (a wipe too), rows
BATCH = TableChanges(NAME, (
    DdlRecord(30, "TRUNCATE", "TRUNCATE t"),
    DdlRecord(50, "ALTER", "ALTER TABLE t RENAME COLUMN a TO b"),
    DdlRecord(70, "DROP", "DROP TABLE t"),
    DdlRecord(71, "CREATE", "CREATE TABLE t (id INT PRIMARY KEY)"),
), (group(20, 29), group(31, 49, deletes=2), group(51, 69, deletes=1), group(72, 90, deletes=1)))


@dataclasses.dataclass
class Lake:
    """What the batch's commits change that a later plan could read: the table's properties, and
    the transactions Delta recorded per app id."""

    table: TargetTable
    committed: dict[str, int] = dataclasses.field(default_factory=dict)

    def done(self, txn: StepTxn) -> bool:
        return self.committed.get(txn.app_id, -1) >= txn.version


def commit_points(steps: list[Step]) -> Iterator[tuple[str, int]]:
    """Every commit of a first attempt, in order, as ``(what, step index)`` (apply/ddlstep)."""
    for index, step in enumerate(steps):
        if isinstance(step, DdlStep) and step.record.wipes:
            yield "wipe properties", index
            yield "tagged", index
        elif isinstance(step, DdlStep):
            yield "schema", index
        else:
            if step.deletes:
                yield "tombstones", index
            yield "tagged", index


def commit(lake: Lake, steps: list[Step], point: tuple[str, int], batch_id: int) -> None:
    what, index = point
    step = steps[index]
    props = dict(lake.table.properties)
    if what == "wipe properties":
        assert isinstance(step, DdlStep)
        props.update(lake.table.wipe_properties(step.record.lsn, batch_tag(APP, batch_id), step.dropped_lsn))
    elif what == "schema":
        assert isinstance(step, DdlStep)
        props[SCHEMA_LSN] = str(step.record.lsn)
    elif what == "tagged":
        txn = step_txn(APP, batch_id, index)
        lake.committed[txn.app_id] = txn.version
    lake.table = dataclasses.replace(lake.table, properties=props)


def plan(lake: Lake, batch_id: int, history: bool, changes: TableChanges = BATCH) -> list[Step]:
    return plan_table(changes, SNAPSHOT, lake.table, batch_tag(APP, batch_id), history)


@pytest.mark.parametrize("history", [False, True], ids=["current-state", "scd2"])
@pytest.mark.parametrize("earlier_floor", [None, "25"], ids=["fresh", "truncated-before"])
def test_replay_plans_the_same_steps_after_every_partial_commit(history: bool, earlier_floor: str | None) -> None:
    batch_id = 7
    start = table(**({TRUNCATE_LSN: earlier_floor} if earlier_floor else {}))
    lake = Lake(start)
    first = plan(lake, batch_id, history)
    points = list(commit_points(first))
    tagged = [i for what, i in points if what == "tagged"]
    assert len(points) >= (12 if history else 5)
    for n, point in enumerate(points):
        commit(lake, first, point, batch_id)
        replay = plan(lake, batch_id, history)
        assert replay == first, f"after {point}"
        assert [step_txn(APP, batch_id, i) for i in range(len(replay))] == [
            step_txn(APP, batch_id, i) for i in range(len(first))]
        # the replay re-does exactly the tagged steps the first attempt had not committed yet
        committed_so_far = {i for what, i in points[: n + 1] if what == "tagged"}
        redone = {i for i in tagged if not lake.done(step_txn(APP, batch_id, i))}
        assert redone == set(tagged) - committed_so_far
    # the next batch plans from the floor the batch left: its last wipe
    assert lake.table.floor_before(batch_tag(APP, batch_id + 1)) == 71


def test_the_old_floor_would_have_shifted_the_steps() -> None:
    """Planning from the table's current truncateLsn (what the merge did) loses steps on replay."""
    lake = Lake(table())
    first = plan(lake, 7, history=True)
    commit(lake, first, ("wipe properties", 1), 7)
    assert plan_steps(BATCH, max(SNAPSHOT, lake.table.truncate_lsn), history=True) != first
    assert plan(lake, 7, history=True) == first


def test_a_new_app_id_plans_from_the_floor_the_old_one_left() -> None:
    lake = Lake(table())
    first = plan(lake, 7, history=False)
    for point in commit_points(first):
        commit(lake, first, point, 7)
    assert lake.table.floor_before(batch_tag("binlake-merge-q2", 7)) == 71
    assert plan_table(BATCH, SNAPSHOT, lake.table, batch_tag("binlake-merge-q2", 7), False) == first[2:]


def test_current_state_plan_keeps_only_what_follows_the_last_wipe() -> None:
    steps = plan(Lake(table()), 7, history=False)
    assert steps == [
        DdlStep(BATCH.ddls[1]),  # column DDL before the last wipe still applies
        DdlStep(BATCH.ddls[3], (BATCH.ddls[0], BATCH.ddls[2])),  # CREATE at 71 stands for the DROP and TRUNCATE
        RowsStep(71, None, (group(72, 90, deletes=1),)),
    ]
    assert isinstance(steps[1], DdlStep) and steps[1].dropped_lsn == 70


def test_scd2_plan_keeps_every_step() -> None:
    steps = plan(Lake(table()), 7, history=True)
    assert [type(s).__name__ for s in steps] == ["RowsStep", "DdlStep", "RowsStep", "DdlStep", "RowsStep",
                                                 "DdlStep", "DdlStep", "RowsStep"]
