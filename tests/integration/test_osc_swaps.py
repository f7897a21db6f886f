"""Online schema change swaps while replication runs (real MariaDB + capture + Spark + Delta): the
statement sequences of gh-ost and pt-online-schema-change run in SQL — helper table, ALTER, chunked
``INSERT IGNORE … SELECT`` copies, changes to the original and the helper table during the copy
(gh-ost applies them itself, pt-osc through real triggers), the one-statement ``RENAME TABLE`` swap,
the DROP of the old table — and afterwards the lake's ``t`` equals the source's new ``t`` (its new
column and every value) without a reload by hand. With a mapping that selects ``t`` alone its
helper tables are replicated with it (binlake.osc), so the swap is applied in the lake as when they
are selected by name: no resync, no half-old version of ``t``.

The capture runs in a thread; the merge runs in-process with ``availableNow`` (its automatic resync
runner delivers at the end of each run; the next run applies the chunks once they are due).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from capture_support import CaptureThread, caught_up, write_config
from conftest import include_schema_rules
from merge_helpers import run_merge
from stream_tables import lake_columns, lake_rows, source_rows
from test_merge_replay_kill import kill_after_commits
from test_merge_swaps import versions_of_t

from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.lake import Lake, table_key
from binlake.merge.autoresync import read_requests
from binlake.merge.summary import TableName
from binlake.merge.target import TargetTable, is_delta_table
from binlake.registration.plan import is_dropped
from binlake.resync import store

pytestmark = pytest.mark.spark

T = "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20), qty INT)"


def replicating(mariadb: LocalMariaDB, db: str, lake_dir: Path, make_config: Any, spark: Any,
                tables: str) -> tuple[PipelineConfig, CaptureThread]:
    """The capture on ``db.<tables>`` from the binlog end; ``t`` created (born in the stream) with 40
    rows and joined by a first merge."""
    config: PipelineConfig = make_config(
        lake_dir, include_schema_rules(db, tables), capture={"flush_seconds": 0.2},
        merge={"optimize_every_batches": 0, "max_files_per_batch": 1000, "trigger_seconds": 1})
    capture = CaptureThread(config).start()
    caught_up(config, mariadb, capture)
    mariadb.execute(T, db)
    mariadb.execute("INSERT INTO t VALUES " + ",".join(f"({i}, 'n{i}', {i})" for i in range(1, 41)), db)
    caught_up(config, mariadb, capture)
    run_merge(spark, config)
    return config, capture


def gh_ost(mariadb: LocalMariaDB, db: str, at_swap: list[tuple[Any, ...]] | None = None,
           before_swap: Callable[[], None] | None = None) -> None:
    """gh-ost's statements (its own comments kept), with the row changes it applies to the ghost;
    ``at_swap`` receives the ghost's rows just before the swap (the new ``t`` at the RENAME);
    ``before_swap`` runs just before it (e.g. a merge of the copy)."""
    run = lambda sql: mariadb.execute(sql, db)  # noqa: E731
    run(f"create /* gh-ost */ table `{db}`.`_t_ghc` (id bigint auto_increment, last_update timestamp not null "
        "default current_timestamp on update current_timestamp, hint varchar(64) charset ascii not null, "
        "value varchar(4096) charset ascii not null, primary key(id), unique key hint_uidx(hint))")
    run(f"create /* gh-ost */ table `{db}`.`_t_gho` like `{db}`.`t`")
    run(f"alter /* gh-ost */ table `{db}`.`_t_gho` add column status varchar(10) not null default 'new'")
    run(f"insert /* gh-ost */ into `{db}`.`_t_ghc` (id, hint, value) values (2, 'state', 'migrating')")
    copy = (f"insert /* gh-ost `{db}`.`t` */ ignore into `{db}`.`_t_gho` (`id`, `name`, `qty`) "
            f"(select `id`, `name`, `qty` from `{db}`.`t` force index (`PRIMARY`) where ((`id` >= %s)) and "
            "((`id` <= %s)) lock in share mode)")
    run(copy % (1, 20))
    # changes to t during the copy, applied to the ghost by gh-ost from the binlog
    run("UPDATE t SET qty = qty + 100 WHERE id IN (3, 25)")
    run(f"update /* gh-ost */ `{db}`.`_t_gho` set `id`=3, `name`='n3', `qty`=103 where ((`id` = 3))")
    run("DELETE FROM t WHERE id IN (4, 30)")
    run(f"delete /* gh-ost */ from `{db}`.`_t_gho` where ((`id` = 4))")
    run("INSERT INTO t VALUES (50, 'fifty', 50)")
    run(f"replace /* gh-ost */ into `{db}`.`_t_gho` (`id`, `name`, `qty`) values (50, 'fifty', 50)")
    run("UPDATE _t_gho SET status = 'vip' WHERE id IN (5, 50)")  # the ghost's own column changes too
    run(copy % (21, 50))
    if at_swap is not None:
        at_swap.extend(source_rows(mariadb, db, "_t_gho"))
    if before_swap is not None:
        before_swap()
    run(f"rename /* gh-ost */ table `{db}`.`t` to `{db}`.`_t_del`, `{db}`.`_t_gho` to `{db}`.`t`")
    run("UPDATE t SET qty = -7, status = 'after' WHERE id = 7")  # the new t changes after the swap
    run(f"drop /* gh-ost */ table if exists `{db}`.`_t_del`")
    run(f"drop /* gh-ost */ table if exists `{db}`.`_t_ghc`")


def pt_osc(mariadb: LocalMariaDB, db: str, at_swap: list[tuple[Any, ...]] | None = None,
           before_swap: Callable[[], None] | None = None, drop_old: bool = True) -> None:
    """pt-online-schema-change's statements: new table, ALTER, three real triggers, chunked copy
    while t changes, the swap, the drops (``drop_old=False``: ``--no-drop-old-table``, ``_t_old``
    stays with the old table's rows); ``at_swap`` and ``before_swap`` as for :func:`gh_ost`."""
    run = lambda sql: mariadb.execute(sql, db)  # noqa: E731
    run(f"CREATE TABLE `{db}`.`_t_new` LIKE `{db}`.`t`")
    run(f"ALTER TABLE `{db}`.`_t_new` ADD COLUMN status VARCHAR(10) NOT NULL DEFAULT 'new'")
    run(f"CREATE TRIGGER `pt_osc_{db}_t_del` AFTER DELETE ON `{db}`.`t` FOR EACH ROW DELETE IGNORE FROM "
        f"`{db}`.`_t_new` WHERE `{db}`.`_t_new`.`id` <=> OLD.`id`")
    run(f"CREATE TRIGGER `pt_osc_{db}_t_upd` AFTER UPDATE ON `{db}`.`t` FOR EACH ROW BEGIN DELETE IGNORE FROM "
        f"`{db}`.`_t_new` WHERE !(OLD.`id` <=> NEW.`id`) AND `{db}`.`_t_new`.`id` <=> OLD.`id`; REPLACE INTO "
        f"`{db}`.`_t_new` (`id`, `name`, `qty`) VALUES (NEW.`id`, NEW.`name`, NEW.`qty`); END")
    run(f"CREATE TRIGGER `pt_osc_{db}_t_ins` AFTER INSERT ON `{db}`.`t` FOR EACH ROW REPLACE INTO "
        f"`{db}`.`_t_new` (`id`, `name`, `qty`) VALUES (NEW.`id`, NEW.`name`, NEW.`qty`)")
    copy = (f"INSERT LOW_PRIORITY IGNORE INTO `{db}`.`_t_new` (`id`, `name`, `qty`) SELECT `id`, `name`, `qty` "
            f"FROM `{db}`.`t` FORCE INDEX(`PRIMARY`) WHERE ((`id` >= '%s')) AND ((`id` <= '%s')) "
            "LOCK IN SHARE MODE /*pt-online-schema-change copy nibble*/")
    run(copy % (1, 20))
    run("UPDATE t SET qty = qty + 100 WHERE id IN (3, 25)")   # the triggers copy these to _t_new
    run("DELETE FROM t WHERE id IN (4, 30)")
    run("INSERT INTO t VALUES (50, 'fifty', 50)")
    run("UPDATE _t_new SET status = 'vip' WHERE id IN (5, 50)")
    run(copy % (21, 50))
    if at_swap is not None:
        at_swap.extend(source_rows(mariadb, db, "_t_new"))
    if before_swap is not None:
        before_swap()
    run(f"RENAME TABLE `{db}`.`t` TO `{db}`.`_t_old`, `{db}`.`_t_new` TO `{db}`.`t`")
    run("UPDATE t SET qty = -7, status = 'after' WHERE id = 7")
    if drop_old:
        run(f"DROP TABLE IF EXISTS `{db}`.`_t_old`")
    for kind in ("del", "upd", "ins"):
        run(f"DROP TRIGGER IF EXISTS `{db}`.`pt_osc_{db}_t_{kind}`")


def no_rows(spark: Any, config: PipelineConfig, db: str, table: str) -> bool:
    """The lake table is empty, or was never created (``_t_del`` is born at the swap and dropped
    before any row of it is in the stream)."""
    path = Lake.from_config(config).uri(table_key(db, table))
    return not is_delta_table(spark, path) or lake_rows(spark, config, db, table) == []


def swap_and_check(mariadb: LocalMariaDB, db: str, config: PipelineConfig, capture: CaptureThread, spark: Any,
                   swap: Any) -> None:
    try:
        swap(mariadb, db)
        caught_up(config, mariadb, capture)
        run_merge(spark, config)  # applies the swap, requests the resync; the runner delivers its chunks
        caught_up(config, mariadb, capture)
        run_merge(spark, config)  # the chunks are due now: applied
    finally:
        capture.stop()
    assert lake_columns(spark, config, db, "t") == ["id", "name", "qty", "status"]
    expected = source_rows(mariadb, db, "t")
    assert ("vip" in {r[3] for r in expected}) and (7, "n7", -7, "after") in expected
    assert lake_rows(spark, config, db, "t") == expected


def assert_old_or_new(spark: Any, config: PipelineConfig, db: str, at_swap: list[tuple[Any, ...]]) -> None:
    """Every Delta version of lake ``t`` is the old table or the new one: the old columns, or the
    new ones with the NOT NULL ``status`` never NULL; the first new one is the source's helper at
    the RENAME, value by value."""
    versions = versions_of_t(spark, Lake.from_config(config).uri(table_key(db, "t")))
    assert all(columns in (["id", "name", "qty"], ["id", "name", "qty", "status"]) for _, columns, _ in versions)
    new = [rows for _, columns, rows in versions if columns == ["id", "name", "qty", "status"]]
    assert new and new[0] == sorted(at_swap), (new[0], at_swap)
    assert all(row[3] is not None for rows in new for row in rows)


def swapped_with_only_t_selected(mariadb: LocalMariaDB, db: str, lake_dir: Path, make_config: Any, spark: Any,
                                 swap: Any, helper: str) -> PipelineConfig:
    """With a mapping selecting ``t`` alone, run the tool's sequence; the merge runs just before the
    RENAME (the helper's birth, copy and mirrored changes are merged by then: lake ``helper`` equals
    the source's) and after it. The swap is applied in the lake: no resync of ``t``, never half-old,
    lake ``t`` = source ``t``."""
    config, capture = replicating(mariadb, db, lake_dir, make_config, spark, "t")
    at_swap: list[tuple[Any, ...]] = []

    def merge_before_swap() -> None:
        caught_up(config, mariadb, capture)
        run_merge(spark, config)
        assert lake_rows(spark, config, db, helper) == sorted(at_swap)

    try:
        swap(mariadb, db, at_swap, merge_before_swap)
        caught_up(config, mariadb, capture)
        run_merge(spark, config)
    finally:
        capture.stop()
    lake = Lake.from_config(config)
    assert read_requests(lake, TableName(db, "t", db, "t")) == [] and store.table_resyncs(lake, db, "t") == []
    expected = source_rows(mariadb, db, "t")
    assert ("vip" in {r[3] for r in expected}) and (7, "n7", -7, "after") in expected
    assert lake_rows(spark, config, db, "t") == expected
    assert_old_or_new(spark, config, db, at_swap)
    ghost = TargetTable.load(spark, lake.uri(table_key(db, helper)))
    assert is_dropped(ghost.properties) and no_rows(spark, config, db, helper)  # renamed away: as DROP TABLE
    return config


@pytest.mark.slow  # 104 s and 80 s at a load average of ~10
def test_gh_ost_swap_with_only_t_selected_is_applied_in_the_lake(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any
) -> None:
    """The mapping names ``t`` only: its ghost ``_t_gho`` and old table ``_t_del`` are replicated
    with it (binlake.osc), gh-ost's changelog ``_t_ghc`` is not."""
    config = swapped_with_only_t_selected(mariadb, source_db, lake_dir, make_config, spark,
                                          lambda m, db, at, before: gh_ost(m, db, at, before), "_t_gho")
    assert no_rows(spark, config, source_db, "_t_del")
    assert not is_delta_table(spark, Lake.from_config(config).uri(table_key(source_db, "_t_ghc")))


@pytest.mark.slow  # 104 s and 80 s at a load average of ~10
def test_pt_osc_swap_with_only_t_selected_is_applied_in_the_lake(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any
) -> None:
    config = swapped_with_only_t_selected(mariadb, source_db, lake_dir, make_config, spark,
                                          lambda m, db, at, before: pt_osc(m, db, at, before), "_t_new")
    assert no_rows(spark, config, source_db, "_t_old")


@pytest.mark.slow  # 291 s at a load average of ~15
def test_pt_osc_old_table_kept_is_born_by_the_swap_not_resynced(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any
) -> None:
    """pt-osc ``--no-drop-old-table``: ``_t_old`` stays at the source with the old table's rows. In
    the lake it is born at the RENAME holding lake ``t``'s rows of then (one commit), not resynced."""
    old_t: list[tuple[Any, ...]] = []

    def swap(m: LocalMariaDB, db: str, at: list[tuple[Any, ...]], before: Callable[[], None]) -> None:
        def before_swap() -> None:
            old_t.extend(source_rows(m, db, "t"))
            before()
        pt_osc(m, db, at, before_swap, drop_old=False)

    config = swapped_with_only_t_selected(mariadb, source_db, lake_dir, make_config, spark, swap, "_t_new")
    lake = Lake.from_config(config)
    expected = source_rows(mariadb, source_db, "_t_old")
    assert expected == sorted(old_t) and (3, "n3", 103) in expected  # the old t, with its last changes
    assert lake_rows(spark, config, source_db, "_t_old") == expected
    assert versions_of_t(spark, lake.uri(table_key(source_db, "_t_old")))[0][2] == expected  # from version 0
    old = TableName(source_db, "_t_old", source_db, "_t_old")
    assert read_requests(lake, old) == [] and store.table_resyncs(lake, source_db, "_t_old") == []


@pytest.mark.slow
def test_gh_ost_swap_with_the_ghost_table_selected(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any
) -> None:
    """The ghost is replicated too: the swap is applied in the lake — one commit of ``t`` holding the
    ghost as it was at the RENAME, no resync — and no Delta version of ``t`` is half-old (each has the
    old columns, or the new ones with the NOT NULL ``status`` never NULL; the first new one is the
    source's ghost at the RENAME, value by value)."""
    config, capture = replicating(mariadb, source_db, lake_dir, make_config, spark, "%")
    at_swap: list[tuple[Any, ...]] = []
    swap_and_check(mariadb, source_db, config, capture, spark, lambda m, db: gh_ost(m, db, at_swap))
    for helper in ("_t_gho", "_t_del", "_t_ghc"):  # gone from the source: empty in the lake (as DROP TABLE)
        assert no_rows(spark, config, source_db, helper), helper
    lake = Lake.from_config(config)
    assert read_requests(lake, TableName(source_db, "t", source_db, "t")) == []
    versions = versions_of_t(spark, lake.uri(table_key(source_db, "t")))
    new = [rows for _, columns, rows in versions if columns == ["id", "name", "qty", "status"]]
    assert all(columns in (["id", "name", "qty"], ["id", "name", "qty", "status"]) for _, columns, _ in versions)
    assert new and new[0] == sorted(at_swap), (new[0], at_swap)
    assert all(row[3] is not None for rows in new for row in rows)


@pytest.mark.slow
def test_pt_online_schema_change_swap(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any
) -> None:
    config, capture = replicating(mariadb, source_db, lake_dir, make_config, spark, "%")
    swap_and_check(mariadb, source_db, config, capture, spark, pt_osc)
    for helper in ("_t_new", "_t_old"):
        assert no_rows(spark, config, source_db, helper), helper


@pytest.mark.slow
def test_merge_killed_around_the_swap_still_converges(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, tmp_path: Path, make_config: Any, spark: Any
) -> None:
    """The merge process (``streaming/merge.py``) SIGKILLed right after each of its first new commits
    to ``t``, ``_t_gho`` or ``_t_del`` — the ghost's birth and rows, the swap's wipe of the ghost, the
    resync request's ``schemaLsn``, … — and restarted: the lake's ``t`` still equals the source's."""
    config, capture = replicating(mariadb, source_db, lake_dir, make_config, spark, "%")
    prefixes = tuple(f"{source_db}/{table}:" for table in ("t", "_t_gho", "_t_del"))
    try:
        gh_ost(mariadb, source_db)
        caught_up(config, mariadb, capture)
        killed = kill_after_commits(write_config(config, tmp_path / "merge.yaml"), lake_dir, tmp_path / "merge.log",
                                    lambda commit: commit.startswith(prefixes), max_kills=6)
        caught_up(config, mariadb, capture)
        run_merge(spark, config)  # the resync's chunks are due now
    finally:
        capture.stop()
    print(f"{len(killed)} kills:", *killed, sep="\n  ")
    assert len(killed) >= 3
    assert lake_columns(spark, config, source_db, "t") == ["id", "name", "qty", "status"]
    assert lake_rows(spark, config, source_db, "t") == source_rows(mariadb, source_db, "t")
    assert no_rows(spark, config, source_db, "_t_gho")
