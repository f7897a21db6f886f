"""Tables applied concurrently (``merge.max_parallel_tables``): every commit carries the
transaction of its own table's step — read back from each table's Delta log — and the data is
exactly what the changes say."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from merge_helpers import Source, load_table, merge_config, r, rows, run_merge

from binlake.lake import Lake
from binlake.merge.job import checkpoint_app_id

pytestmark = pytest.mark.spark

TABLES = [f"p{i}" for i in range(4)]
TRUNCATED = {"p0", "p2"}  # a wipe, then rows: steps 0 (tagged DELETE) and 1 (MERGE)


def commits(table_path: Path, after: int) -> list[tuple[str, tuple[str, int] | None]]:
    """(operation, (txn app id, version) or None) of each commit of the table after version ``after``."""
    found = []
    for file in sorted((table_path / "_delta_log").glob("*.json")):
        if int(file.stem) <= after:
            continue
        actions = [json.loads(line) for line in file.read_text().splitlines() if line.strip()]
        operation = next(a["commitInfo"]["operation"] for a in actions if "commitInfo" in a)
        txns = [(a["txn"]["appId"], int(a["txn"]["version"])) for a in actions if "txn" in a]
        assert len(txns) <= 1, f"{file}: several transactions in one commit"
        found.append((operation, txns[0] if txns else None))
    return found


def test_concurrent_tables_commit_with_their_own_transactions(spark: Any, lake_dir: Path) -> None:
    lake = Lake(str(lake_dir))
    src = Source(lake)
    for table in TABLES:
        load_table(spark, lake, table, [(1, "a", 1), (2, "b", 2)], 100)
    loaded = {t: max(int(f.stem) for f in (lake_dir / "shop" / t / "_delta_log").glob("*.json")) for t in TABLES}

    def batch(base: int, qty: int) -> None:  # one change-log file: one micro-batch
        events = []
        for n, table in enumerate(TABLES):
            pos = base + 10 * n
            if table in TRUNCATED:
                events += [src.ins(pos, table, r(3, "gone", qty)),
                           src.ddl(pos + 1, table, "TRUNCATE", f"TRUNCATE {table}"),
                           src.ins(pos + 2, table, r(9, table, qty))]
            else:
                events += [src.upd(pos, table, (r(1, "a", 1), r(1, table, qty))),
                           src.dele(pos + 1, table, r(2, "b", 2))]
        src.write(*events)

    batch(200, 10)  # one batch: the tables' steps have different transaction versions in it
    threads: set[str] = set()
    config = merge_config(lake_dir, max_parallel_tables=4)
    run_merge(spark, config, after_commit=lambda _path, _version: threads.add(threading.current_thread().name))

    assert len(threads) > 1, "the tables were not applied concurrently"
    app_id = checkpoint_app_id(lake)
    for table in TABLES:
        path = lake_dir / "shop" / table
        if table in TRUNCATED:
            assert rows(spark, str(path)) == [(9, table, 10)]
            expected = [0, 1]  # batch 0: step 0 the DELETE of the TRUNCATE, step 1 the MERGE
        else:
            assert rows(spark, str(path)) == [(1, table, 10)]
            expected = [0]  # batch 0: step 0, the MERGE
        tagged = [(op, txn) for op, txn in commits(path, loaded[table]) if txn is not None]
        assert [txn for _, txn in tagged] == [(app_id, v) for v in expected], table
        assert {op for op, _ in tagged} <= {"MERGE", "DELETE"}, table
