"""Resync benchmark: ``binlake resync`` of ``retail_trans`` while ~200 updates/s run, next to the full
load of the same table in the same run.

    .venv/bin/python bench/resync_bench.py [--rows 200000] [--updates-per-second 200] [--chunk-rows N]

Starts a private MariaDB, fills ``bench.retail_trans`` (as ``full_load_bench.py``), starts the capture
(``binlake capture``) and times the full load (in-process, :func:`binlake.snapshot.job.run_full_load`).
Then starts the merge (``streaming/merge.py``, continuous) and an update workload, and times the
resync (:func:`binlake.resync.job.run_resync`: read + deliver) and the end-to-end time until the
merge has applied every chunk. While the resync runs it samples the merge's freshness (seconds
between the source commit of the newest merged change and now, from ``status.json``). Prints
rows/s of both and the freshness; finally, once the merge has caught up, checks the lake against the
source (row count, sum of a column every update changes). ``--diverged N`` rows are changed at the
source behind replication's back before the resync, so that the check also shows they were repaired.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml
from full_load_bench import bench_config, fill

from binlake.devdb import LocalMariaDB, free_port
from binlake.lake import MERGE_STATUS_KEY, Lake, table_key
from binlake.progress import read_progress
from binlake.source import master_position

ROOT = Path(__file__).resolve().parents[1]


class Updates:
    """``rate`` single-row updates per second on random keys, in a thread."""

    def __init__(self, db: LocalMariaDB, rows: int, rate: float) -> None:
        self.db, self.rows, self.rate = db, rows, rate
        self.done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        conn = self.db.connect("bench")
        rng = random.Random(1)
        started = time.perf_counter()
        with conn.cursor() as cur:
            while not self._stop.is_set():
                cur.execute("UPDATE retail_trans SET amount = amount + 1 WHERE trans_id = %s",
                            (rng.randint(1, self.rows),))
                self.done += 1
                ahead = self.done / self.rate - (time.perf_counter() - started)
                if ahead > 0:
                    time.sleep(ahead)
        conn.close()

    def __enter__(self) -> Updates:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *args], stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)


def diverge(db: LocalMariaDB, rows: int, count: int) -> None:
    """``count`` rows, spread over the table, changed with ``sql_log_bin = 0``: the lake cannot know, the
    resync must repair them (the final check compares the sum of the column they change)."""
    if count <= 0:
        return
    conn = db.connect("bench")
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_log_bin = 0")
            cur.execute("UPDATE retail_trans SET amount = amount + 7 WHERE trans_id MOD %s = 0",
                        (max(1, rows // count),))
        conn.commit()
    finally:
        conn.close()


def freshness(lake: Lake) -> float | None:
    try:
        status = json.loads(lake.get_bytes(MERGE_STATUS_KEY))
    except (FileNotFoundError, ValueError):
        return None
    lags = [t.get("lag_seconds") for t in status.get("tables", {}).values() if t.get("lag_seconds") is not None]
    return max(lags) if lags else None


def chunk_merges(table_dir: Path) -> list[dict[str, str]]:
    """The operation metrics of the resync chunk MERGEs in a local Delta table's log (the commits whose
    transaction app id is a resync chunk's): times, files changed (Delta's history keeps no count of
    the files a MERGE read: the scan time is the figure to compare)."""
    found = []
    for commit in sorted((table_dir / "_delta_log").glob("*.json")):
        actions = [json.loads(line) for line in commit.read_text().splitlines() if line.strip()]
        if any(a.get("txn", {}).get("appId", "").startswith("binlake-resync-") for a in actions):
            found += [a["commitInfo"].get("operationMetrics", {}) for a in actions if "commitInfo" in a]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="table rows (1000000 for the issue's figure)")
    parser.add_argument("--updates-per-second", type=float, default=200.0)
    parser.add_argument("--chunk-rows", type=int, default=0, help="0 = rows / (2 x cores)")
    parser.add_argument("--diverged", type=int, default=1000,
                        help="rows changed at the source behind replication's back before the resync (repaired by it)")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder, removed after")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="binlake-rsbench-"))
    cores = os.cpu_count() or 2
    chunk_rows = args.chunk_rows or max(1, args.rows // (2 * cores))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with LocalMariaDB(workdir / "db" / "data", free_port()) as db:
            fill(db, args.rows)
            db.execute("CREATE DATABASE beats")
            db.execute("CREATE TABLE beats.beat (id INT AUTO_INCREMENT PRIMARY KEY)")
            print(f"filled bench.retail_trans with {args.rows:,} rows")
            data = bench_config(db, workdir / "lake", "auto", {"chunk_rows": chunk_rows})
            config_path = workdir / "bench.yaml"
            data["capture"] = {**data.get("capture", {}), "flush_seconds": 0.5}
            data["merge"] = {**data.get("merge", {}), "trigger_seconds": 2.0, "optimize_every_batches": 0}
            config_path.write_text(yaml.safe_dump(data))
            processes.append(start(["-m", "binlake.cli", "capture", "--config", str(config_path)],
                                   workdir / "capture.log"))

            from binlake.config import load_config
            from binlake.resync import store
            from binlake.resync.job import run_resync
            from binlake.snapshot.job import run_full_load
            from binlake.spark import build_session

            config = load_config(config_path)
            spark = build_session(config, "bench")
            started = time.perf_counter()
            [load] = run_full_load(config, spark)
            load_seconds = time.perf_counter() - started
            print(f"full load: {load_seconds:.2f} s = {args.rows / load_seconds:,.0f} rows/s ({load.chunks} chunks)")
            processes.append(start(["streaming/merge.py", "--config", str(config_path)], workdir / "merge.log"))
            lake = Lake.from_config(config)
            time.sleep(20)  # the merge joins the table
            lags: list[float] = []
            diverge(db, args.rows, args.diverged)
            with Updates(db, args.rows, args.updates_per_second) as updates:
                time.sleep(10)
                sampling = threading.Event()

                def sample() -> None:
                    while not sampling.wait(1.0):
                        lag = freshness(lake)
                        if lag is not None:
                            lags.append(lag)

                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                started = time.perf_counter()
                report = run_resync(config, spark, "bench.retail_trans")
                resync_seconds = time.perf_counter() - started
                (resync,) = [r for r in store.table_resyncs(lake, "bench", "retail_trans")
                             if r.resync_id == report.resync_id]
                while not store.read_applied(lake, resync).covers(resync):
                    time.sleep(0.5)
                applied_seconds = time.perf_counter() - started
                sampling.set()
                sampler.join()
                rate = updates.done / max(applied_seconds, 1e-9)
            conn = db.connect()
            end = master_position(conn).lsn  # the merge catches up with the last updates before the check
            conn.close()
            deadline = time.monotonic() + 900
            while (read_progress(lake).applied_lsn or 0) < end and time.monotonic() < deadline:
                db.execute("INSERT INTO beats.beat VALUES ()")  # an unselected table moves the capture on
                time.sleep(2)
            lake_rows = spark.read.format("delta").load(lake.uri(table_key("bench", "retail_trans")))
            lake_sum = lake_rows.selectExpr("count(*)", "sum(amount)").first()
            merges = chunk_merges(workdir / "lake" / table_key("bench", "retail_trans"))
            source_sum = db.execute("SELECT COUNT(*), SUM(amount) FROM retail_trans", "bench")[0]
            spark.stop()
        print()
        print(f"full load            {args.rows / load_seconds:>12,.0f} rows/s  ({load_seconds:.1f} s)")
        print(f"resync read+deliver  {args.rows / resync_seconds:>12,.0f} rows/s  ({resync_seconds:.1f} s, "
              f"{report.chunks} chunks)")
        print(f"resync until applied {args.rows / applied_seconds:>12,.0f} rows/s  ({applied_seconds:.1f} s)")
        print(f"updates meanwhile    {rate:>12,.0f} /s")
        if lags:
            print(f"merge freshness      median {sorted(lags)[len(lags) // 2]:.1f} s, max {max(lags):.1f} s "
                  f"during the resync")
        for i, m in enumerate(merges):
            seconds, scan = int(m.get("executionTimeMs", 0)) / 1000, int(m.get("scanTimeMs", 0)) / 1000
            print(f"chunk MERGE {i:<8} {seconds:.1f} s (finding the rows to change: {scan:.1f} s), "
                  f"{m.get('numTargetFilesRemoved', '?')} file(s) rewritten, "
                  f"{m.get('numTargetDeletionVectorsAdded', '?')} deletion vector(s) added; rows: "
                  f"{m.get('numSourceRows', '?')} differing in, {m.get('numTargetRowsUpdated', '?')} updated, "
                  f"{m.get('numTargetRowsInserted', '?')} inserted, {m.get('numTargetRowsDeleted', '?')} deleted, "
                  f"{m.get('numTargetRowsCopied', '?')} copied")
        same = [int(str(v)) for v in lake_sum] == [int(str(v)) for v in source_sum]  # type: ignore[union-attr]
        print(f"check                lake {tuple(lake_sum)} vs source {tuple(source_sum)}: "  # type: ignore[arg-type]
              f"{'equal' if same else 'DIFFERENT'}")
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=60)
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
