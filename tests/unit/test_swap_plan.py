"""Which renames the merge applies as swaps in the lake, and the phases of a batch (binlake.merge.swaps, pure)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from binlake.lake import Lake
from binlake.merge.autoresync import DONE, ResyncRequest
from binlake.merge.plan import DdlStep, RowsStep, plan_steps
from binlake.merge.summary import DdlRecord, LayoutGroup, SwapSource, TableChanges, TableName
from binlake.merge.swaps import SWAP_REASON, Handover, handovers, hands_over, swap_into, swap_plan
from binlake.rules import TableMapping, TableTarget
from binlake.tables import render_text, table_rows

GHOST_SWAP = "rename /* gh-ost */ table `d`.`t` to `d`.`_t_del`, `d`.`_t_gho` to `d`.`t`"


def mapping(*tables: str, extra: tuple[dict[str, Any], ...] = ()) -> TableMapping:
    rules: list[dict[str, Any]] = [
        {"rule-type": "selection", "rule-id": str(i), "rule-name": f"r{i}", "rule-action": "include",
         "object-locator": {"schema-name": "d", "table-name": t}} for i, t in enumerate(tables, 1)]
    return TableMapping.parse({"rules": [*rules, *extra]})


def changes(table: str, *ddls: DdlRecord) -> TableChanges:
    return TableChanges(TableName("d", table, "d", table), ddls)


def rename(lsn: int, sql: str = GHOST_SWAP) -> DdlRecord:
    return DdlRecord(lsn, "RENAME", sql)


def target(m: TableMapping) -> Any:
    def find(name: tuple[str, str]) -> tuple[str, str] | None:
        found = m.target_for(*name)
        return None if found is None else (found.schema, found.table)
    return find


def test_a_gh_ost_swap_moves_the_ghost_into_t_and_t_into_the_old_table() -> None:
    moves = handovers(rename(7), "d", target(mapping("%")))
    assert {(m.origin, m.target) for m in moves} == {(("d", "_t_gho"), ("d", "t")), (("d", "t"), ("d", "_t_del"))}
    assert {(m.origin, m.target) for m in handovers(rename(7), "d", target(mapping("t")))} == {
        (("d", "_t_gho"), ("d", "t")), (("d", "t"), ("d", "_t_del"))}  # t's helpers are selected with it
    unselected = {"rule-type": "selection", "rule-id": "9", "rule-name": "no", "rule-action": "exclude",
                  "object-locator": {"schema-name": "d", "table-name": "[_]%"}}
    assert handovers(rename(7), "d", target(mapping("t", extra=(unselected,)))) == ()  # the ghost excluded


def test_a_cycle_of_renames_is_never_a_swap() -> None:
    cycle = rename(7, "RENAME TABLE d.a TO d.tmp, d.b TO d.a, d.tmp TO d.b")
    assert handovers(cycle, "d", target(mapping("a", "b"))) == ()
    assert handovers(DdlRecord(7, "ALTER", "ALTER TABLE d.a ADD c INT"), "d", target(mapping("%"))) == ()


def test_phases_put_the_ghost_before_t_and_t_before_the_old_table() -> None:
    batch = [changes("t", rename(7)), changes("_t_del", rename(7)), changes("other"), changes("_t_gho", rename(7))]
    plan = swap_plan(batch, mapping("%"))
    assert [[c.name.table for c in phase] for phase in plan.phases] == [["other", "_t_gho"], ["t"], ["_t_del"]]
    move = swap_into(plan.swaps, ("d", "t"), 7)
    assert move is not None and move.origin == ("d", "_t_gho")
    assert swap_into(plan.swaps, ("d", "t"), 8) is None
    assert hands_over(plan.swaps, ("d", "_t_gho"), 7) and hands_over(plan.swaps, ("d", "t"))
    assert not hands_over(plan.swaps, ("d", "_t_del"))


def test_no_swap_without_the_ghost_in_the_batch_or_with_history_or_other_rules() -> None:
    assert swap_plan([changes("t", rename(7))], mapping("%")).swaps == frozenset()
    batch = [changes("t", rename(7)), changes("_t_gho", rename(7))]
    assert swap_into(swap_plan(batch, mapping("%"), frozenset({"d.t"})).swaps, ("d", "t"), 7) is None
    renamed_column = {"rule-type": "transformation", "rule-id": "50", "rule-name": "c", "rule-target": "column",
                      "rule-action": "rename", "value": "qty2",
                      "object-locator": {"schema-name": "d", "table-name": "t", "column-name": "qty"}}
    plan = swap_plan(batch, mapping("%", extra=(renamed_column,)))
    assert swap_into(plan.swaps, ("d", "t"), 7) is not None  # the ghost is t's helper: t's column rules
    staged = rename(7, "RENAME TABLE d.t TO d.t_before, d.stage TO d.t")
    plan = swap_plan([changes("t", staged), changes("stage", staged)], mapping("%", extra=(renamed_column,)))
    assert swap_into(plan.swaps, ("d", "t"), 7) is None  # stage's lake rows would keep the name qty
    assert len(plan.phases) == 1


def test_renames_back_and_forth_in_one_batch_are_not_swaps() -> None:
    there, back = rename(7, "RENAME TABLE d.a TO d.b"), rename(9, "RENAME TABLE d.b TO d.a")
    plan = swap_plan([changes("a", there, back), changes("b", there, back)], mapping("%"))
    assert plan.swaps == frozenset() and len(plan.phases) == 1


def test_a_swap_is_a_wipe_so_the_rows_before_it_are_not_merged() -> None:
    swap = DdlRecord(20, "RENAME", GHOST_SWAP, swap=SwapSource(("d", "_t_gho"), 4))
    groups = (LayoutGroup("[]", 11, 12, 2), LayoutGroup("[]", 21, 22, 2))
    steps = plan_steps(TableChanges(TableName("d", "t", "d", "t"), (swap,), groups), 10)
    assert steps == [DdlStep(swap), RowsStep(20, None, (groups[1],))]
    kept = plan_steps(TableChanges(TableName("d", "t", "d", "t"), (swap,), groups), 10, history=True)
    assert [type(s).__name__ for s in kept] == ["RowsStep", "DdlStep", "RowsStep"]


def test_handover_names_both_sources() -> None:
    (move,) = [m for m in handovers(rename(7), "d", target(mapping("%"))) if m.target == ("d", "t")]
    assert move == Handover(("d", "_t_gho"), ("d", "t"), 7, ("d", "_t_gho"), ("d", "t"))


def test_binlake_tables_says_a_table_is_half_old_until_its_swap_resync_is_applied(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    target = TableTarget("d", "t", "d", "t")
    (row,) = table_rows(lake, [target])
    assert row.waiting is None
    request = ResyncRequest("d", "t", "d", "t", 120, f"renamed onto this table from d._t_gho ({SWAP_REASON})",
                            "2026-12-01T10:00:00+00:00")
    lake.put_bytes(request.key, request.to_json())
    (row,) = table_rows(lake, [target])
    assert row.waiting is not None and "half-old" in row.waiting and "lsn 120" in row.waiting
    assert f"d.t: {row.waiting}" in render_text([row])
    lake.put_bytes(request.key, replace(request, state=DONE, resync_id="r-gone").to_json())
    (row,) = table_rows(lake, [target])
    assert row.waiting is not None  # done, but no applied resync of that id: still half-old
