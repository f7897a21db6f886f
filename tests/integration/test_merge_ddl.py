"""DDL mid-stream: add / rename / widen / retype / drop column, TRUNCATE, DROP + CREATE TABLE."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from merge_helpers import LAYOUT, Source, load_table, merge_config, rows, run_merge

from binlake.lake import Lake
from binlake.merge.target import DROPPED_LSN, TargetTable

pytestmark = pytest.mark.spark

WITH_NOTE = [*LAYOUT, ("note", "varchar", False)]
RENAMED = [("id", "bigint", True), ("title", "varchar", False), ("qty", "int", False), ("note", "varchar", False)]
WIDENED = [("id", "bigint", True), ("title", "varchar", False), ("qty", "bigint", False), ("note", "varchar", False)]
DROPPED = [("id", "bigint", True), ("title", "varchar", False), ("qty", "bigint", False)]
AS_TEXT = [("id", "bigint", True), ("title", "varchar", False), ("qty", "varchar", False)]


def write_scenario(lake: Lake) -> None:
    """Rows and DDL interleaved over two files; the last DDL's rows only come in the second."""
    src = Source(lake)
    src.write(
        src.upd(110, "evolve", ({"id": 1, "name": "a", "qty": 1}, {"id": 1, "name": "a1", "qty": 1})),
        src.ddl(120, "evolve", "ALTER", "ALTER TABLE evolve ADD COLUMN note VARCHAR(20) COMMENT 'x, DROP qty'"),
        src.ins(130, "evolve", {"id": 3, "name": "c", "qty": 3, "note": "n3"}, layout=WITH_NOTE),
        src.ddl(140, "evolve", "ALTER", "ALTER TABLE `evolve` RENAME COLUMN `name` TO `title`"),
        src.ddl(145, "evolve", "ALTER", "ALTER TABLE evolve MODIFY qty BIGINT"),
        src.ins(110, "trunc", {"id": 3, "name": "c", "qty": 3}),
        src.ddl(120, "trunc", "TRUNCATE", "TRUNCATE TABLE trunc"),
        src.ins(130, "trunc", {"id": 5, "name": "e", "qty": 5}),
        src.ddl(120, "dropped", "DROP", "DROP TABLE dropped"),
    )
    src.write(
        src.upd(150, "evolve", ({"id": 1, "title": "a1", "qty": 1, "note": None},
                                {"id": 1, "title": "a2", "qty": 2**40, "note": None}), layout=WIDENED),
        src.ddl(160, "evolve", "ALTER", "ALTER TABLE evolve DROP COLUMN note"),
        src.ins(170, "evolve", {"id": 4, "title": "d", "qty": 4}, layout=DROPPED),
        src.ddl(180, "evolve", "ALTER", "ALTER TABLE evolve MODIFY qty VARCHAR(30)"),
        src.upd(190, "evolve", ({"id": 4, "title": "d", "qty": "4"}, {"id": 4, "title": "d", "qty": "x"}),
                layout=AS_TEXT),
        src.ins(115, "trunc", {"id": 4, "name": "late replay", "qty": 4}),  # before the TRUNCATE: ignored
        src.ddl(125, "dropped", "CREATE", "CREATE TABLE dropped (id BIGINT PRIMARY KEY, name TEXT, qty INT)"),
        src.ins(130, "dropped", {"id": 7, "name": "g", "qty": 7}),
    )


def assert_final(spark: Any, lake: Lake) -> None:
    evolve, trunc, dropped = (lake.uri(f"shop/{t}") for t in ("evolve", "trunc", "dropped"))
    assert TargetTable.load(spark, evolve).columns == {"id": "bigint", "title": "string", "qty": "string"}
    assert rows(spark, evolve) == [(1, "a2", "1099511627776"), (2, "b", "2"), (3, "c", "3"), (4, "d", "x")]
    assert rows(spark, trunc) == [(5, "e", 5)]
    assert rows(spark, dropped) == [(7, "g", 7)]
    assert TargetTable.load(spark, dropped).properties[DROPPED_LSN]


def load_tables(spark: Any, lake: Lake) -> None:
    load_table(spark, lake, "evolve", [(1, "a", 1), (2, "b", 2)], 100)
    load_table(spark, lake, "trunc", [(1, "a", 1), (2, "b", 2)], 100)
    load_table(spark, lake, "dropped", [(1, "a", 1)], 100)


def test_schema_changes_and_table_statements(spark: Any, lake_dir: Path) -> None:
    lake = Lake(str(lake_dir))
    load_tables(spark, lake)
    write_scenario(lake)
    run_merge(spark, merge_config(lake_dir, max_files_per_batch=1))
    assert_final(spark, lake)


@pytest.mark.slow
def test_replay_after_checkpoint_reset_changes_nothing(spark: Any, lake_dir: Path) -> None:
    """A new checkpoint is a new app id: only the lsn guards, schemaLsn and truncateLsn protect."""
    lake = Lake(str(lake_dir))
    load_tables(spark, lake)
    write_scenario(lake)
    run_merge(spark, merge_config(lake_dir, max_files_per_batch=10))
    assert_final(spark, lake)
    shutil.rmtree(lake_dir / "_binlake" / "merge" / "checkpoint")
    run_merge(spark, merge_config(lake_dir, max_files_per_batch=10))
    assert_final(spark, lake)


QUOTED = [("id", "bigint", True), ("we`ird", "varchar", False)]
QUOTED_ADDED = [*LAYOUT, ("n`b", "varchar", False)]


def test_back_quoted_column_names_merge_with_the_change_data_feed_off(spark: Any, lake_dir: Path) -> None:
    """Delta's MERGE cannot handle a back-quote in a column name with the change data feed on:
    a table loaded with such a column has the feed off; one that gains it by DDL turns it off."""
    lake = Lake(str(lake_dir))
    quoted = load_table(spark, lake, "quoted", [(1, "a"), (2, "b")], 100, layout=QUOTED)
    added = load_table(spark, lake, "added", [(1, "a", 1)], 100)
    assert TargetTable.load(spark, quoted).properties["delta.enableChangeDataFeed"] == "false"
    assert TargetTable.load(spark, added).properties["delta.enableChangeDataFeed"] == "true"
    src = Source(lake)
    src.write(
        src.upd(110, "quoted", ({"id": 1, "we`ird": "a"}, {"id": 1, "we`ird": "a`1"}), layout=QUOTED),
        src.dele(111, "quoted", {"id": 2, "we`ird": "b"}, layout=QUOTED),
        src.ins(112, "quoted", {"id": 3, "we`ird": "c"}, layout=QUOTED),
        src.ins(110, "added", {"id": 2, "name": "b", "qty": 2}),
        src.ddl(120, "added", "ALTER", "ALTER TABLE added ADD COLUMN `n``b` VARCHAR(9)"),
        src.ins(130, "added", {"id": 3, "name": "c", "qty": 3, "n`b": "x`y"}, layout=QUOTED_ADDED),
        src.upd(131, "added", ({"id": 1, "name": "a", "qty": 1, "n`b": None},
                               {"id": 1, "name": "a", "qty": 10, "n`b": "z"}), layout=QUOTED_ADDED),
    )
    run_merge(spark, merge_config(lake_dir))
    assert rows(spark, quoted) == [(1, "a`1"), (3, "c")]
    assert rows(spark, added) == [(1, "a", 10, "z"), (2, "b", 2, None), (3, "c", 3, "x`y")]
    assert TargetTable.load(spark, added).properties["delta.enableChangeDataFeed"] == "false"
    feed = spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", 0) \
        .option("endingVersion", 2).load(added)
    assert sorted(r["id"] for r in feed.collect()) == [1, 2]   # the feed is readable up to where it stopped
