"""What a RENAME does to each lake table (binlake.merge.renames) and which CREATEs are births (pure)."""

from __future__ import annotations

import pytest

from binlake.merge.birth import birth_record, first_layout
from binlake.merge.layout import Evolution
from binlake.merge.plan import DdlStep, plan_steps
from binlake.merge.renames import (
    CONTINUED,
    GONE,
    REPLACED,
    UNCHANGED,
    RenameEffect,
    contents_after,
    effect_of,
    mark_gone,
    rename_pairs,
)
from binlake.merge.resync import chunk_evolution
from binlake.merge.summary import DdlRecord, LayoutGroup, TableChanges, TableName
from binlake.rules import TableMapping

GHOST_SWAP = "rename /* gh-ost */ table `d`.`t` to `d`.`_t_del`, `d`.`_t_gho` to `d`.`t`"
PT_OSC_SWAP = "RENAME TABLE `d`.`t` TO `d`.`_t_old`, `d`.`_t_new` TO `d`.`t`"


def mapping(*tables: str, lower: bool = False) -> TableMapping:
    """Select ``d.<table>`` for each of ``tables`` (``%`` wildcards), optionally lower-casing names."""
    rules: list[dict[str, object]] = [
        {"rule-type": "selection", "rule-id": str(i), "rule-name": f"r{i}", "rule-action": "include",
         "object-locator": {"schema-name": "d", "table-name": t}} for i, t in enumerate(tables, 1)]
    if lower:
        rules.append({"rule-type": "transformation", "rule-id": "99", "rule-name": "low", "rule-target": "table",
                      "rule-action": "convert-lowercase", "object-locator": {"schema-name": "d", "table-name": "%"}})
    return TableMapping.parse({"rules": rules})


def name(table: str, lake_table: str | None = None) -> TableName:
    return TableName("d", table, "d", lake_table or table)


def effect(sql: str, table: str, selected: TableMapping) -> RenameEffect:
    return effect_of(DdlRecord(100, "RENAME", sql), name(table), selected)


def test_pairs_of_rename_and_alter_rename() -> None:
    assert rename_pairs(GHOST_SWAP, "x") == ((("d", "t"), ("d", "_t_del")), (("d", "_t_gho"), ("d", "t")))
    assert rename_pairs("RENAME TABLE a TO b", "s") == ((("s", "a"), ("s", "b")),)
    assert rename_pairs("ALTER TABLE a ADD c INT, RENAME TO o.b", "s") == ((("s", "a"), ("o", "b")),)
    assert rename_pairs("ALTER TABLE a ADD c INT", "s") == ()
    assert rename_pairs("DROP TABLE a", "s") == ()


def test_contents_after_follows_the_pairs_in_order() -> None:
    a, b, c = ("s", "a"), ("s", "b"), ("s", "c")
    assert contents_after([(a, b), (b, c)]) == {a: None, b: None, c: a}
    assert contents_after([(a, c), (b, a), (c, b)]) == {a: b, b: a, c: None}  # a swap through c


@pytest.mark.parametrize("swap, helper, old", [(GHOST_SWAP, "_t_gho", "_t_del"), (PT_OSC_SWAP, "_t_new", "_t_old")])
def test_an_online_schema_change_swap_replaces_the_table(swap: str, helper: str, old: str) -> None:
    only_t = mapping("t")
    assert effect(swap, "t", only_t) == RenameEffect(REPLACED, ("d", "t"), ("d", helper))
    every = mapping("%")  # the helper tables are selected too: each lake table gets its own effect
    assert effect(swap, "t", every) == RenameEffect(REPLACED, ("d", "t"), ("d", helper))
    assert effect(swap, helper, every) == RenameEffect(GONE)
    assert effect(swap, old, every) == RenameEffect(REPLACED, ("d", old), ("d", "t"))


def test_renamed_away_is_gone_unless_the_new_name_is_the_same_lake_table() -> None:
    assert effect("RENAME TABLE t TO t_2024", "t", mapping("t")) == RenameEffect(GONE)
    assert effect("RENAME TABLE d.t TO other.t", "t", mapping("t")) == RenameEffect(GONE)
    lower = mapping("%", lower=True)  # Foo and foo both map to lake table foo
    record = DdlRecord(100, "RENAME", "RENAME TABLE Foo TO foo")
    assert effect_of(record, name("Foo", "foo"), lower) == RenameEffect(CONTINUED, ("d", "foo"), ("d", "Foo"))
    assert effect_of(record, name("foo", "foo"), lower).kind == CONTINUED


def test_a_table_renamed_onto_a_selected_name_from_outside() -> None:
    outside = RenameEffect(REPLACED, ("d", "t"), ("d", "staging"))
    assert effect("RENAME TABLE staging TO t", "t", mapping("t")) == outside
    assert effect("ALTER TABLE staging RENAME TO t", "t", mapping("t")).kind == REPLACED
    assert effect("RENAME TABLE a TO b", "t", mapping("%")) == RenameEffect(UNCHANGED)
    assert effect("RENAME TABLE a TO tmp, tmp TO b", "tmp", mapping("%")) == RenameEffect(UNCHANGED)  # never existed


def test_gone_renames_are_planned_as_drops() -> None:
    records = (DdlRecord(100, "RENAME", GHOST_SWAP), DdlRecord(120, "ALTER", "ALTER TABLE _t_gho ADD c INT"))
    marked = mark_gone(TableChanges(name("_t_gho"), records, ()), mapping("%"))
    assert [d.gone for d in marked.ddls] == [True, False]
    (step, alter) = plan_steps(marked, floor=0)
    assert isinstance(step, DdlStep) and step.record.wipes and step.dropped_lsn == 100
    assert isinstance(alter, DdlStep) and not alter.record.wipes
    unmarked = mark_gone(TableChanges(name("t"), records[:1], ()), mapping("%"))  # t is REPLACED: not a wipe
    assert not unmarked.ddls[0].wipes


def test_creates_and_births() -> None:
    like = DdlRecord(10, "CREATE", "create /* gh-ost */ table `d`.`_t_gho` like `d`.`t`")
    assert like.creates and like.certainly_new and like.wipes
    maybe = DdlRecord(10, "CREATE", "CREATE TABLE IF NOT EXISTS t (id INT)")
    assert maybe.creates and not maybe.certainly_new and not maybe.wipes
    temporary = DdlRecord(10, "CREATE", "CREATE TEMPORARY TABLE t (id INT)")
    assert not temporary.creates and not temporary.wipes
    alter = DdlRecord(5, "ALTER", "ALTER TABLE t ADD c INT")
    assert birth_record((alter, like, DdlRecord(20, "CREATE", "CREATE TABLE t (id INT)"))) == like
    assert birth_record((alter,)) is None


def test_first_layout_is_the_earliest_row_after_the_birth() -> None:
    a = '[{"name": "id", "type": "int", "pk": true}]'
    b = '[{"name": "id", "type": "int", "pk": true}, {"name": "c", "type": "int", "pk": false}]'
    groups = (LayoutGroup(b, 40, 50, 2), LayoutGroup(a, 5, 8, 1), LayoutGroup(a, 20, 30, 3))
    layout = first_layout(groups, after_lsn=10)
    assert layout is not None and layout.names == ("id",)
    assert first_layout(groups, after_lsn=60) is None


def test_a_chunk_read_after_a_swap_brings_the_new_tables_columns() -> None:
    lake = {"id": "int", "name": "string", "gone": "int"}
    chunk = {"id": "int", "NAME": "string", "status": "string"}
    assert chunk_evolution(lake, chunk) == Evolution(drops=("gone",), adds=(("status", "string"),))
    assert chunk_evolution(chunk, chunk).empty
