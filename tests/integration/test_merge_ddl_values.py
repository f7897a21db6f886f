"""The merge's DDL steps that rewrite stored values, on hand-written change logs (Spark + Delta, no
server; the end-to-end cases with MariaDB are in test_ddl_values.py): ADD COLUMN values for older
rows exactly once across a crash and replay; unappliable DDL asks for one resync per statement or
stops the merge (``merge.on_unappliable_ddl``)."""

from __future__ import annotations

import decimal
from pathlib import Path
from typing import Any

import pytest
from merge_helpers import LAYOUT, Source, load_table, lsn, merge_config, rows, run_merge

from binlake.lake import Lake
from binlake.merge.autoresync import PENDING, read_requests

pytestmark = pytest.mark.spark

ADDED = [*LAYOUT, ("status", "varchar", False), ("price", "decimal(5,2)", False), ("flag", "bit(1)", False)]


class Crash(RuntimeError):
    pass


def test_add_column_values_are_applied_once_across_a_crash_and_replay(spark: Any, lake_dir: Path) -> None:
    lake = Lake(str(lake_dir))
    path = load_table(spark, lake, "orders", [(1, "a", 1), (2, "b", 2), (3, "c", 3)], 100)
    src = Source(lake)
    src.write(src.upd(110, "orders", ({"id": 1, "name": "a", "qty": 1}, {"id": 1, "name": "a1", "qty": 1})))
    src.write(
        src.ddl(120, "orders", "ALTER", "ALTER TABLE orders ADD COLUMN status VARCHAR(10) NOT NULL DEFAULT 'new', "
                "ADD price DECIMAL(5,2) DEFAULT 1.5 AFTER id, ADD COLUMN flag BIT(1) DEFAULT b'1'"),
        src.ins(130, "orders", {"id": 4, "name": "d", "qty": 4, "status": "paid", "price": "9.99", "flag": "0"},
                layout=ADDED),
        src.upd(140, "orders", ({"id": 2, "name": "b", "qty": 2, "status": "new", "price": "1.50", "flag": "1"},
                                {"id": 2, "name": "b", "qty": 20, "status": "new", "price": "1.50", "flag": "1"}),
                layout=ADDED),
    )
    config = merge_config(lake_dir, max_files_per_batch=1)
    crashed: list[int] = []

    def crash_after_the_add_column_step(table: str, version: int) -> None:
        if table == path and version % 1000 == 0 and not crashed and "status" in spark.read.format("delta").load(
                path).columns:
            crashed.append(version)
            raise Crash("after the ADD COLUMN step's commit")

    with pytest.raises(Exception, match="ADD COLUMN step"):
        run_merge(spark, config, after_commit=crash_after_the_add_column_step)
    run_merge(spark, config)  # the replay of the crashed batch, then the rest
    assert crashed
    d = decimal.Decimal
    assert rows(spark, path, "id", "name", "qty", "status", "price", "flag") == [
        (1, "a1", 1, "new", d("1.50"), True), (2, "b", 20, "new", d("1.50"), True), (3, "c", 3, "new", d("1.50"), True),
        (4, "d", 4, "paid", d("9.99"), False)]
    # one UPDATE for the older rows: a replay did not write them again
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").where("operation = 'UPDATE'").count()
    assert history == 1
    assert not read_requests(lake)


def test_unappliable_ddl_requests_one_resync_or_stops_the_merge(spark: Any, lake_dir: Path) -> None:
    lake = Lake(str(lake_dir))
    load_table(spark, lake, "events", [(1, "a", 1), (2, "b", 2)], 100)
    src = Source(lake)
    src.write(src.upd(110, "events", ({"id": 1, "name": "a", "qty": 1}, {"id": 1, "name": "a1", "qty": 1})))
    src.write(src.ddl(120, "events", "ALTER", "ALTER TABLE events DROP PARTITION p2023"))
    stop = merge_config(lake_dir, on_unappliable_ddl="stop")
    with pytest.raises(Exception) as failure:
        run_merge(spark, stop)
    text = str(failure.value)
    assert "shop.events" in text and "DROP PARTITION p2023" in text
    assert "binlake resync --config <pipeline.yaml> --table shop.events" in text
    assert not read_requests(lake)
    config = merge_config(lake_dir)  # resync (the default): the replayed batch asks once
    run_merge(spark, config)
    run_merge(spark, config)
    (request,) = read_requests(lake)
    assert (request.lsn, request.state) == (lsn(120), PENDING)  # no source here: the resync cannot run yet
    assert "DROP PARTITION deletes the partition's rows" in request.reason
    assert request.statement == "ALTER TABLE events DROP PARTITION p2023"
