"""A transaction larger than the capture's in-memory bound reaches the change log as several files
(spilled parts); the merge may see them in different micro-batches. After catching up, the lake
must equal the source row for row, and validation must say so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from capture_support import CaptureThread, checkpoint_reached, master_position, wait_for
from conftest import include_schema_rules

from binlake.changelog import list_changelog
from binlake.devdb import LocalMariaDB
from binlake.lake import Lake
from binlake.merge.job import run as run_merge
from binlake.snapshot.job import run_full_load
from binlake.validation import validate

pytestmark = pytest.mark.spark

ROWS = 3000


def _big_transaction(db: LocalMariaDB, database: str) -> None:
    """~6,000 row changes of every kind over two tables, committed at once."""
    with db.connect(database, autocommit=False) as conn, conn.cursor() as cur:
        cur.execute("UPDATE big SET v = v + 1, s = CONCAT(s, '+')")
        cur.execute("DELETE FROM big WHERE id % 7 = 0")
        cur.execute("INSERT INTO big (id, v, s) SELECT id + 10000, v * 2, 'copy' FROM big WHERE id <= 900")
        cur.execute("UPDATE big SET id = id + 100000 WHERE id BETWEEN 10 AND 40")   # primary-key changes
        cur.execute("UPDATE big SET v = -v WHERE id BETWEEN 10001 AND 10300")       # churn on new rows
        cur.execute("DELETE FROM big WHERE id BETWEEN 10301 AND 10350")             # insert, then delete
        cur.execute("INSERT INTO other (a, b) SELECT id, v FROM big WHERE id <= 500")
        conn.commit()
        cur.execute("UPDATE big SET s = 'after' WHERE id = 1")                     # a small one after it
        conn.commit()


def _table(db: LocalMariaDB, database: str, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in db.execute(sql, database)]


def test_spilled_transaction_merges_to_the_source_state(mariadb: LocalMariaDB, source_db: str, lake_dir: Path,
                                                         make_config: Any, spark: Any) -> None:
    mariadb.execute("CREATE TABLE big (id INT PRIMARY KEY, v INT, s VARCHAR(20))", source_db)
    mariadb.execute("CREATE TABLE other (a INT PRIMARY KEY, b INT)", source_db)
    mariadb.execute(f"INSERT INTO big SELECT seq, seq, CONCAT('r', seq) FROM seq_1_to_{ROWS}", source_db)
    config = make_config(lake_dir, include_schema_rules(source_db), full_load={"chunk_rows": 1000},
                         capture={"start": "end", "flush_seconds": 0.3, "max_transaction_rows_in_memory": 500},
                         merge={"max_files_per_batch": 2})
    capture = CaptureThread(config).start()
    try:
        wait_for(lambda: checkpoint_reached(config, master_position(mariadb))(), 30, "the capture to start")
        run_full_load(config, spark)
        _big_transaction(mariadb, source_db)
        end = master_position(mariadb)
        wait_for(lambda: capture.error is not None or checkpoint_reached(config, end)(), 120, "the capture")
    finally:
        capture.stop()
    assert capture.error is None
    assert len(list_changelog(Lake.from_config(config))) >= 6      # the transaction was spilled in parts

    run_merge(spark, config, available_now=True)

    lake = f"{config.lake.root}/{source_db}"
    big = [tuple(r) for r in spark.read.format("delta").load(f"{lake}/big").orderBy("id")
           .select("id", "v", "s").collect()]
    other = [tuple(r) for r in spark.read.format("delta").load(f"{lake}/other").orderBy("a")
             .select("a", "b").collect()]
    assert big == _table(mariadb, source_db, "SELECT id, v, s FROM big ORDER BY id")
    assert other == _table(mariadb, source_db, "SELECT a, b FROM other ORDER BY a")
    assert len(big) > ROWS and (1, 2, "r1+") not in big and (1, 2, "after") in big
    assert {r.status for r in validate(spark, config)} == {"OK"}
