"""A backlog never wedges the merge: a large catch-up — many tables, and one wide row (TEXT + BLOB)
updated thousands of times — is caught up by ``spark-submit streaming/merge.py --available-now``
with spark-submit's default driver memory (1 GiB), joining every table from its full load; the
lake then equals the source value by value. The run prints the merge's peak RSS, its peak heap
after GC and its catch-up rate (figures for docs/merge.md, *Memory*).

Scaled to run here in minutes (the issue's 1M records / 100K updates of a 100 KB row take hours on
2 shared cores): BACKLOG_TABLES × ROWS inserted then updated twice, plus HOT_UPDATES of a
~100 KB-image row — bounded steps make memory independent of these numbers."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from capture_support import CaptureThread, checkpoint_reached, master_position, wait_for, write_config
from conftest import include_schema_rules

from binlake.changelog import list_changelog
from binlake.devdb import LocalMariaDB
from binlake.lake import Lake
from binlake.snapshot.job import run_full_load

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BACKLOG_TABLES = 10
ROWS = 10_000
HOT_UPDATES = 2_000


def _hot_update(n: int) -> str:
    """~51 KB of text and ~26 KB of bytes, different for every n: a change image of ~100 KB as JSON."""
    return (f"UPDATE hot SET body = CONCAT({n}, ':', REPEAT(MD5({n}), 1600)), "
            f"data = UNHEX(REPEAT(MD5({n} + 1), 1600)), n = {n} WHERE id = 1")


def _workload(db: LocalMariaDB, database: str) -> None:
    for t in range(BACKLOG_TABLES):
        db.execute(f"INSERT INTO t{t} SELECT seq, seq * {t}, CONCAT('r', seq) FROM seq_1_to_{ROWS}", database)
        db.execute(f"UPDATE t{t} SET v = v + 1, s = CONCAT(s, '+')", database)
        db.execute(f"UPDATE t{t} SET v = -v WHERE id % 3 = 0", database)
        db.execute(f"DELETE FROM t{t} WHERE id % 7 = 0", database)
    with db.connect(database, autocommit=True) as conn, conn.cursor() as cur:
        for n in range(1, HOT_UPDATES + 1):
            cur.execute(_hot_update(n))
            if n % 500 == 0:
                cur.execute(f"UPDATE hot SET n = -{n} WHERE id = 2")  # the other hot row


def _source(db: LocalMariaDB, database: str, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in db.execute(sql, database)]


def _lake(spark: Any, path: str, columns: list[str], order: str) -> list[tuple[Any, ...]]:
    frame = spark.read.format("delta").load(path).orderBy(order).select(*columns)
    return [tuple(bytes(v) if isinstance(v, bytearray) else v for v in row) for row in frame.collect()]


def _spark_submit_merge(config_path: Path, log: Path) -> tuple[float, int]:
    """``spark-submit streaming/merge.py --available-now`` with spark-submit's defaults (1 GiB driver);
    its wall time and the largest process's peak RSS (KiB)."""
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    env.pop("BINLAKE_SPARK_MASTER", None)
    gc_log = log.with_suffix(".gc")
    submit = [str(Path(sys.executable).parent / "spark-submit"), "--driver-java-options", f"-Xlog:gc:file={gc_log}",
              "streaming/merge.py", "--config", str(config_path), "--available-now"]
    started = time.monotonic()
    with log.open("wb") as out:
        result = subprocess.run(submit, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, timeout=3000)
    seconds = time.monotonic() - started
    assert result.returncode == 0, log.read_text()[-5000:]
    assert "OutOfMemoryError" not in log.read_text()
    heaps = [int(m) for m in re.findall(r"->(\d+)M\(", gc_log.read_text())] if gc_log.exists() else []
    print(f"merge heap after GC: peak {max(heaps, default=0)} MiB over {len(heaps)} collections")
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def test_a_large_backlog_with_a_hot_wide_row_is_caught_up_in_one_gib(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any, tmp_path: Path,
) -> None:
    for t in range(BACKLOG_TABLES):
        mariadb.execute(f"CREATE TABLE t{t} (id INT PRIMARY KEY, v BIGINT, s VARCHAR(40))", source_db)
    mariadb.execute("CREATE TABLE hot (id INT PRIMARY KEY, n INT, body MEDIUMTEXT, data MEDIUMBLOB)", source_db)
    mariadb.execute("INSERT INTO hot VALUES (1, 0, 'start', x'00'), (2, 0, 'other', x'01')", source_db)
    config = make_config(lake_dir, include_schema_rules(source_db),
                         capture={"start": "end", "flush_seconds": 1.0}, merge={"optimize_every_batches": 0})
    capture = CaptureThread(config).start()
    try:
        wait_for(checkpoint_reached(config, master_position(mariadb)), 60, "the capture to start")
        run_full_load(config, spark)                 # every table is joined from its snapshot
        _workload(mariadb, source_db)
        end = master_position(mariadb)
        wait_for(lambda: capture.error is not None or checkpoint_reached(config, end)(), 1200, "the capture")
    finally:
        capture.stop()
    assert capture.error is None
    lake = Lake.from_config(config)
    changelog = lake_dir / "_binlake" / "changelog"
    size = sum(p.stat().st_size for p in changelog.glob("*.parquet"))
    records = spark.read.parquet(str(changelog)).count()
    print(f"backlog: {records} change records in {len(list_changelog(lake))} files, {size / 2**20:.0f} MiB")

    seconds, rss = _spark_submit_merge(write_config(config, tmp_path / "merge.yaml"), tmp_path / "merge.log")
    print(f"catch-up: {seconds:.0f} s, {records / seconds:.0f} records/s, peak RSS {rss / 1024:.0f} MiB")

    base = f"{config.lake.root}/{source_db}"
    for t in range(BACKLOG_TABLES):
        assert _lake(spark, f"{base}/t{t}", ["id", "v", "s"], "id") == _source(
            mariadb, source_db, f"SELECT id, v, s FROM t{t} ORDER BY id"), f"t{t}"
    hot = _source(mariadb, source_db, "SELECT id, n, body, data FROM hot ORDER BY id")
    assert _lake(spark, f"{base}/hot", ["id", "n", "body", "data"], "id") == [
        (i, n, body, bytes(data)) for i, n, body, data in hot]
    assert hot[0][1] == HOT_UPDATES
