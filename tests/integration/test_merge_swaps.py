"""The merge applies an online schema change swap in the lake (binlake.merge.swaps): when the ghost
table's whole life is in the change log, lake ``t`` becomes lake ``_t_gho`` as of the RENAME in one
Delta commit — no resync, and no Delta version of ``t`` that is neither the old table nor the new
one. Change logs written by the test (no source), so each case is a few merge runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from merge_helpers import LAYOUT, Source, load_table, merge_config, rows, run_merge, spark_schema
from merge_helpers import lsn as merge_lsn

from binlake.changelog import EventChanges
from binlake.config import PipelineConfig
from binlake.lake import Lake
from binlake.merge.autoresync import read_requests
from binlake.merge.birth import clear_unborn_log
from binlake.merge.summary import TableName
from binlake.merge.swapstep import HANDOVER_LSN, HANDOVER_VERSION
from binlake.merge.target import TRUNCATE_LSN, TargetTable, is_delta_table
from binlake.snapshot.delta import create_table
from binlake.tablefeatures import DEFAULT

pytestmark = pytest.mark.spark

GHOST = [*LAYOUT, ("status", "varchar", False)]
SWAP = "rename /* gh-ost */ table `shop`.`t` to `shop`.`_t_del`, `shop`.`_t_gho` to `shop`.`t`"
OLD = [(1, "a", 1), (2, "b", 2), (3, "c", 3)]
AT_SWAP = [(1, "a", 1, "vip"), (2, "b", 20, "new"), (4, "d", 4, "new")]  # the ghost (= the new t) at the RENAME
FINAL = [(1, "a", 5, "after"), (2, "b", 20, "new"), (4, "d", 4, "new"), (9, "z", 9, "late")]


def r(i: int, name: str, qty: int, status: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"id": i, "name": name, "qty": qty}
    return row if status is None else {**row, "status": status}


def gh_ost_log(src: Source) -> list[list[EventChanges]]:
    """gh-ost's sequence as change-log records, in three files: the ghost's birth and copy with
    changes to ``t`` mirrored on the ghost; the swap (its record for each of the three names); the
    new ``t``'s changes after it."""
    g = {"layout": GHOST}
    before = [
        src.ddl(110, "_t_gho", "CREATE", "create /* gh-ost */ table `shop`.`_t_gho` like `shop`.`t`"),
        src.ddl(111, "_t_gho", "ALTER", "alter /* gh-ost */ table `shop`.`_t_gho` add column status "
                                        "varchar(10) not null default 'new'"),
        src.ins(112, "_t_gho", r(1, "a", 1, "new"), r(2, "b", 2, "new"), **g),  # copy of the first range
        src.upd(113, "t", (r(2, "b", 2), r(2, "b", 20))),
        src.upd(114, "_t_gho", (r(2, "b", 2, "new"), r(2, "b", 20, "new")), **g),
        src.dele(115, "t", r(3, "c", 3)),
        src.ins(116, "t", r(4, "d", 4)),
        src.ins(117, "_t_gho", r(4, "d", 4, "new"), **g),  # copy of the second range (3 is gone)
        src.upd(118, "_t_gho", (r(1, "a", 1, "new"), r(1, "a", 1, "vip")), **g),
    ]
    swap = [src.ddl(120, table, "RENAME", SWAP) for table in ("t", "_t_del", "_t_gho")]
    after = [src.upd(121, "t", (r(1, "a", 1, "vip"), r(1, "a", 5, "after")), **g),
             src.ins(122, "t", r(9, "z", 9, "late"), **g)]
    return [before, swap, after]


def versions_of_t(spark: Any, path: str) -> list[tuple[int, list[str], list[tuple[Any, ...]]]]:
    """Every Delta version of ``t``: (version, source columns, rows sorted by id)."""
    last = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").agg({"version": "max"}).first()[0]
    out = []
    for version in range(last + 1):
        frame = spark.read.format("delta").option("versionAsOf", version).load(path)
        columns = [c for c in frame.columns if not c.startswith("_binlake")]
        out.append((version, columns, sorted(tuple(row) for row in frame.select(*columns).collect())))
    return out


def assert_never_half_old(spark: Any, path: str) -> None:
    """Each version of ``t`` is the old table (old columns, a state of the old rows) or the new one
    (the ghost's columns, never a NULL in the NOT NULL column the old table lacked), and the first
    version with the new columns is exactly the ghost at the RENAME."""
    seen = versions_of_t(spark, path)
    new = [(v, rows_) for v, columns, rows_ in seen if columns == ["id", "name", "qty", "status"]]
    old = [v for v, columns, _ in seen if columns == ["id", "name", "qty"]]
    assert len(old) + len(new) == len(seen), seen
    assert new and max(old) < new[0][0], seen
    assert new[0][1] == AT_SWAP, seen
    assert all(row[3] is not None for _, rows_ in new for row in rows_), seen


def only_t(config: PipelineConfig) -> PipelineConfig:
    """``config`` with a mapping that selects ``shop.t`` alone (its helper tables come with it)."""
    rule = {"rule-type": "selection", "rule-id": "1", "rule-name": "t", "rule-action": "explicit",
            "object-locator": {"schema-name": "shop", "table-name": "t"}}
    return config.model_copy(update={"table_mappings": {"rules": [rule]}})


@pytest.mark.parametrize("selection", ["t alone", pytest.param("every table", marks=pytest.mark.slow)])
def test_a_gh_ost_swap_with_the_ghost_replicated_is_one_commit_of_t(spark: Any, lake_dir: Path,
                                                                    selection: str) -> None:
    lake = Lake(str(lake_dir))
    path = load_table(spark, lake, "t", OLD, 100)
    src = Source(lake)
    for records in gh_ost_log(src):
        src.write(*records)
    config = merge_config(lake_dir, max_files_per_batch=1, max_parallel_tables=2)
    run_merge(spark, config if selection == "every table" else only_t(config))
    assert rows(spark, path) == FINAL
    assert read_requests(lake, TableName("shop", "t", "shop", "t")) == []  # no resync: the lake had the ghost
    assert_never_half_old(spark, path)
    ghost = TargetTable.load(spark, lake.uri("shop/_t_gho"))
    assert rows(spark, ghost.path) == [] and ghost.properties[HANDOVER_LSN] == str(merge_lsn(120))
    assert TargetTable.load(spark, path).properties[TRUNCATE_LSN] == str(merge_lsn(120))
    # born at the swap holding t's rows then (gh-ost's old table; pt-osc's _t_old): one commit, no resync
    old_t = lake.uri("shop/_t_del")
    assert rows(spark, old_t) == [(1, "a", 1), (2, "b", 20), (4, "d", 4)]
    assert versions_of_t(spark, old_t)[0][2] == [(1, "a", 1), (2, "b", 20), (4, "d", 4)]  # version 0 already
    assert read_requests(lake, TableName("shop", "_t_del", "shop", "_t_del")) == []
    properties = TargetTable.load(spark, old_t).properties  # a new lake table's, t's statistics columns
    assert properties.get("delta.enableChangeDataFeed") == "true"
    assert properties.get("delta.dataSkippingStatsColumns") == TargetTable.load(spark, path).properties.get(
        "delta.dataSkippingStatsColumns")


@pytest.mark.slow
def test_a_swap_in_one_batch_replayed_after_crashes_on_both_sides(spark: Any, lake_dir: Path) -> None:
    """Birth, copy, swap and later changes in one batch (the ghost's rows before its rename are
    merged although the rename wipes it); the merge crashes right after the ghost's wipe (before
    ``t``'s phase), then right after ``t``'s swap commit: each restart replays the batch, the swap
    reads the version the ghost recorded, and nothing is applied twice."""
    lake = Lake(str(lake_dir))
    path = load_table(spark, lake, "t", OLD, 100)
    src = Source(lake)
    src.write(*[record for part in gh_ost_log(src) for record in part])
    config = merge_config(lake_dir, max_parallel_tables=2)
    ghost_path = lake.uri("shop/_t_gho")
    crashed: list[str] = []

    def crash(at: str) -> Any:
        def hook(commit_path: str, _version: int) -> None:
            table = TargetTable.load(spark, commit_path)
            wiped_ghost = commit_path == ghost_path and table.truncate_lsn == merge_lsn(120)
            swapped_t = commit_path == path and "status" in table.columns
            if at not in crashed and ((at == "ghost" and wiped_ghost) or (at == "t" and swapped_t)):
                crashed.append(at)
                raise RuntimeError(f"simulated crash after {at}'s commit")
        return hook

    for at in ("ghost", "t"):
        with pytest.raises(Exception, match="simulated crash"):
            run_merge(spark, config, after_commit=crash(at))
    assert crashed == ["ghost", "t"]
    run_merge(spark, config)
    assert rows(spark, path) == FINAL
    assert read_requests(lake, TableName("shop", "t", "shop", "t")) == []
    assert_never_half_old(spark, path)
    overwrites = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").filter("operationParameters.mode = 'Overwrite'").count()
    assert overwrites == 1  # the swap committed once
    assert TargetTable.load(spark, ghost_path).properties[HANDOVER_VERSION] != "-1"


def test_a_ghost_with_an_unserved_resync_is_not_swapped_in(spark: Any, lake_dir: Path) -> None:
    """The ghost's ALTER adds a column whose value the lake cannot derive (an automatic resync of the
    ghost, never served before the swap): its lake rows are not known exact, so ``t`` is resynced
    as before (a durable request) and keeps its rows until then — never the ghost's."""
    lake = Lake(str(lake_dir))
    path = load_table(spark, lake, "t", OLD, 100)
    src = Source(lake)
    records = [record for part in gh_ost_log(src) for record in part]
    records[1] = src.ddl(111, "_t_gho", "ALTER", "alter /* gh-ost */ table `shop`.`_t_gho` add column status "
                                                 "varchar(10) not null default 'new', add column ts timestamp "
                                                 "not null default current_timestamp")
    src.write(*records)
    run_merge(spark, merge_config(lake_dir))
    (request,) = read_requests(lake, TableName("shop", "t", "shop", "t"))
    assert request.lsn == merge_lsn(120)
    assert TargetTable.load(spark, lake.uri("shop/_t_gho")).properties[HANDOVER_VERSION] == "-1"
    assert {row[0] for row in rows(spark, path)} == {1, 2, 4, 9}  # the stream's changes after the swap, old rows


def test_a_born_table_whose_creation_was_killed_before_its_first_commit_is_created_again(
        spark: Any, lake_dir: Path) -> None:
    """What a SIGKILL in the middle of creating a born table leaves (seen in the slow gh-ost kill
    test: ``_delta_log`` with only a temporary commit file and ``_staged_commits``) is removed, so
    the retry creates the table instead of failing with DELTA_TABLE_NOT_FOUND for ever."""
    log = lake_dir / "shop" / "_t_ghc" / "_delta_log"
    (log / "_staged_commits").mkdir(parents=True)
    (log / ".00000000000000000000.json.7a1eeae0.tmp").write_text('{"commitInfo":{}}\n')
    path = str(log.parent)
    clear_unborn_log(spark, path)
    assert not log.exists()
    create_table(spark, path, spark_schema(LAYOUT), DEFAULT)
    assert is_delta_table(spark, path) and rows(spark, path) == []
    clear_unborn_log(spark, path)  # a committed table is never touched
    assert is_delta_table(spark, path)
