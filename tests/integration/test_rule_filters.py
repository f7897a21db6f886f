"""DMS source filters end to end (real MariaDB, capture, Spark full load and merge, Delta): the
lake holds exactly the source rows the filter keeps — after the full load and after a stream in
which rows move into the filter (inserted), out of it (deleted), change key while moving, and are
inserted or deleted on either side — value for value; text compares by code point ('TECH' and
'tech ' are not 'tech' even under the column's case-insensitive, pad-space collation); validate
counts only the filtered rows and reports the lake equal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from capture_support import CaptureThread, checkpoint_reached, master_position, wait_for
from merge_helpers import rows

from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.lake import Lake, table_key
from binlake.merge.job import run as run_merge
from binlake.snapshot.job import run_full_load
from binlake.validation import validate

pytestmark = [pytest.mark.spark]

DEPTS = ["tech", "TECH", "tech ", "é", "E", "sales", None]


def filtered_mapping(schema: str) -> dict[str, Any]:
    """``dept IN ('tech', 'é') AND (n BETWEEN 10 AND 50 OR n IS NULL)`` in DMS terms."""
    return {"rules": [{
        "rule-type": "selection", "rule-id": "1", "rule-name": "emp", "rule-action": "include",
        "object-locator": {"schema-name": schema, "table-name": "emp"},
        "filters": [
            {"filter-type": "source", "column-name": "dept", "filter-conditions": [
                {"filter-operator": "eq", "value": "tech"}, {"filter-operator": "eq", "value": "é"}]},
            {"filter-type": "source", "column-name": "n", "filter-conditions": [
                {"filter-operator": "between", "start-value": "10", "end-value": "50"},
                {"filter-operator": "null"}]},
        ]}]}


def in_filter(dept: str | None, n: int | None) -> bool:
    """The oracle, written independently of binlake: the rows the mapping above selects."""
    return dept in ("tech", "é") and (n is None or 10 <= n <= 50)


def source_rows(db: LocalMariaDB, schema: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.execute(f"SELECT id, dept, n, note FROM `{schema}`.emp ORDER BY id")]


def stream_workload(db: LocalMariaDB, schema: str) -> dict[str, list[int]]:
    """Row changes across the filter's edge; returns the ids that moved out and in."""
    t = f"`{schema}`.emp"
    statements = [
        f"UPDATE {t} SET n = 99 WHERE id IN (1, 2)",                         # out (n)
        f"UPDATE {t} SET dept = 'TECH' WHERE id = 3",                        # out (case)
        f"UPDATE {t} SET dept = 'tech', n = 20 WHERE id IN (5, 6)",          # in
        f"UPDATE {t} SET n = NULL WHERE id = 8",                             # stays or moves in by NULL
        f"UPDATE {t} SET note = 'inside' WHERE id = 4",                      # in → in
        f"UPDATE {t} SET note = 'outside' WHERE id = 7",                     # out → out
        f"UPDATE {t} SET id = 1000, n = 30, dept = 'é' WHERE id = 9",        # key change moving in
        f"UPDATE {t} SET id = 1001, n = 51 WHERE id = 10",                   # key change moving out
        f"DELETE FROM {t} WHERE id IN (11, 12)",
        f"INSERT INTO {t} VALUES (2000, 'tech', 10, 'new in'), (2001, 'tech', 9, 'new out'), "
        f"(2002, 'é', NULL, 'null in'), (2003, 'tech ', 10, 'pad out')",
        f"UPDATE {t} SET n = 40 WHERE id = 1",                               # back in after moving out
    ]
    for statement in statements:
        db.execute(statement)
    return {"out": [2, 3], "in": [5, 6, 1000, 1]}


def test_filtered_table_holds_exactly_the_filtered_source_rows(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Callable[..., PipelineConfig], spark: Any
) -> None:
    mariadb.execute("CREATE TABLE emp (id INT PRIMARY KEY, dept VARCHAR(10), n INT, note VARCHAR(20))", source_db)
    values = []
    for i in range(1, 61):
        dept, n = DEPTS[i % len(DEPTS)], None if i % 9 == 0 else (i * 7) % 70
        if i in (1, 2, 4, 10, 11):
            dept, n = "tech", 10 + i
        if i in (3, 12):
            dept, n = "é", 50
        if i in (5, 6, 7):
            dept, n = "sales", 60
        values.append(f"({i}, {'NULL' if dept is None else repr(dept)}, {'NULL' if n is None else n}, 'r{i}')")
    mariadb.execute("INSERT INTO emp VALUES " + ", ".join(values), source_db)

    config = make_config(lake_dir, filtered_mapping(source_db), full_load={"chunk_rows": 16},
                         capture={"flush_seconds": 0.5, "start": "end"})
    path = Lake(str(lake_dir)).uri(table_key(source_db, "emp"))
    capture = CaptureThread(config).start()
    try:
        wait_for(lambda: capture.error is not None or checkpoint_reached(config, master_position(mariadb))(), 30,
                 "the capture to start")
        run_full_load(config, spark)
        loaded = [r for r in source_rows(mariadb, source_db) if in_filter(r[1], r[2])]
        assert 10 < len(loaded) < 40
        assert rows(spark, path, "id", "dept", "n", "note") == loaded

        moved = stream_workload(mariadb, source_db)
        end = master_position(mariadb)
        wait_for(lambda: capture.error is not None or checkpoint_reached(config, end)(), 60, "the capture")
    finally:
        capture.stop()
    run_merge(spark, config, available_now=True)

    expected = [r for r in source_rows(mariadb, source_db) if in_filter(r[1], r[2])]
    lake_rows = rows(spark, path, "id", "dept", "n", "note")
    assert lake_rows == expected
    ids = {r[0] for r in lake_rows}
    assert not ids & set(moved["out"]) and set(moved["in"]) <= ids
    assert {9, 10, 1001, 11, 12, 2001, 2003}.isdisjoint(ids) and {2000, 2002} <= ids

    (result,) = validate(spark, config)
    assert (result.status, result.source_rows, result.lake_rows) == ("OK", len(expected), len(expected))
