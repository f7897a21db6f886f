"""Merge benchmark: apply throughput and end-to-end freshness on a 1M-row ``retail_trans`` table.

    .venv/bin/python bench/merge_bench.py [--rows 1000000] [--backlog 100000] [--rate 200] [--seconds 60]
                                          [--reader-compatibility broad|modern]

Starts a private MariaDB (own datadir and port), fills ``bench.retail_trans`` (the AWS CDC blog
schema), starts binlake's capture, runs the full load, lets the merge join the table, then in the
same run:

1. **Backlog** — with the capture stopped, ``--backlog`` single-row UPDATE transactions (random
   keys) are committed by a stored procedure. Then, timed separately on that same binlog range:
   the capture (start → checkpoint covers the range: change-log records/s) and the merge
   (``availableNow`` over the resulting change log: changes merged/s).
2. **Steady load** — capture and merge (continuous, ``merge.trigger_seconds``) running, a client
   commits ``--rate`` single-row updates per second for ``--seconds``; each sets ``amount`` to a
   unique marker and notes its commit time. Freshness of a change = Delta commit time of the
   version that made it visible (change data feed ``_commit_timestamp``) minus the client's
   commit time; p50/p95 over the changes visible in the feed (a change overwritten within the same
   micro-batch is never visible and is not counted).

Prints the figures, with the capture throughput of step 1 beside the merge's. ``--reader-compatibility``
sets ``lake.reader_compatibility`` (broad: MERGEs rewrite whole files; modern: deletion vectors): run
once per mode on one machine to compare the merge's cost of each.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from full_load_bench import FILL, SCHEMA  # the retail_trans table of every bench

from binlake.capture.checkpoint import load_checkpoint
from binlake.capture.runner import CaptureRunner
from binlake.config import PipelineConfig, parse_config
from binlake.devdb import LocalMariaDB, free_port
from binlake.lake import MERGE_STATUS_KEY, Lake
from binlake.positions import BinlogPosition

UPDATE_PROC = """
CREATE PROCEDURE update_trx(n INT, max_id BIGINT)
BEGIN
  DECLARE i INT DEFAULT 0;
  DECLARE k BIGINT;
  WHILE i < n DO
    SET k = 1 + FLOOR(RAND() * max_id);
    UPDATE retail_trans SET amount = amount + 1, event = ELT(1 + i MOD 3, 'view', 'cart', 'purchase')
    WHERE trans_id = k;
    SET i = i + 1;
  END WHILE;
END"""
MARK = 1_000_000_000
TABLE = "bench.retail_trans"


def position(db: LocalMariaDB) -> BinlogPosition:
    file, pos = db.execute("SHOW MASTER STATUS")[0][:2]
    return BinlogPosition.of(str(file), int(str(pos)))


def bench_config(db: LocalMariaDB, lake: Path, trigger: float, reader_compatibility: str = "broad") -> PipelineConfig:
    return parse_config({
        "name": "mergebench",
        "source": {"host": "127.0.0.1", "port": db.port, "user": "root", "password_env": None, "server_id": 911},
        "lake": {"root": str(lake), "reader_compatibility": reader_compatibility},
        "table_mappings": {"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "retail",
                                      "object-locator": {"schema-name": "bench", "table-name": "retail_trans"},
                                      "rule-action": "include"}]},
        "capture": {"start": "checkpoint", "flush_seconds": 0.5},
        "merge": {"trigger_seconds": trigger, "max_files_per_batch": 200, "optimize_every_batches": 0},
        "spark": {"master": os.environ.get("BINLAKE_SPARK_MASTER", f"local[{os.cpu_count() or 2}]")},
    }, Path("merge-bench.yaml"))


class Capture:
    """The capture in a thread (resumes from its checkpoint on each start)."""

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config
        self.lake = Lake.from_config(config)
        self.runner: CaptureRunner | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.runner = CaptureRunner(self.config)
        self.thread = threading.Thread(target=self.runner.run, daemon=True)
        self.thread.start()

    def wait_for(self, target: BinlogPosition, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            checkpoint = load_checkpoint(self.lake)
            if checkpoint is not None and checkpoint.position.lsn >= target.lsn:
                return
            if self.thread is not None and not self.thread.is_alive():
                raise RuntimeError("the capture stopped early")
            time.sleep(0.05)
        raise TimeoutError(f"capture did not reach {target}")

    def records_written(self) -> int:
        assert self.runner is not None and self.runner.sink is not None
        return int(self.runner.sink.records_written)

    def stop(self) -> None:
        if self.runner is not None and self.thread is not None:
            self.runner.stopping = True
            self.thread.join(timeout=120)
            if self.thread.is_alive():
                raise RuntimeError("the capture did not stop")


@dataclass
class SteadyLoad:
    """Single-row updates at a fixed rate; ``commits[seq]`` = client time (epoch s) after commit."""

    db: LocalMariaDB
    rate: float
    max_id: int
    commits: dict[int, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self, seconds: float) -> None:
        import random

        rng = random.Random(5)
        with self.db.connect("bench", autocommit=True) as conn, conn.cursor() as cur:
            began = time.monotonic()
            seq = 0
            while time.monotonic() - began < seconds:
                due = began + seq / self.rate
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                cur.execute("UPDATE retail_trans SET amount = %s WHERE trans_id = %s",
                            (MARK + seq, rng.randint(1, self.max_id)))
                self.commits[seq] = time.time()
                seq += 1


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def merged_lsn(lake: Lake) -> int:
    try:
        status = json.loads(lake.get_bytes(MERGE_STATUS_KEY))
    except FileNotFoundError:
        return -1
    return int((status.get("tables", {}).get(TABLE) or {}).get("lsn") or -1)


def wait_merged(lake: Lake, lsn: int, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while merged_lsn(lake) < lsn:
        if time.monotonic() > deadline:
            raise TimeoutError(f"merge did not reach lsn {lsn}")
        time.sleep(0.2)


def last_batch(lake: Lake) -> int:
    return int(json.loads(lake.get_bytes(MERGE_STATUS_KEY))["batch_id"])


def last_change_lsn(lake: Lake) -> int:
    from binlake.changelog import list_changelog
    from binlake.lake import parse_changelog_name

    return max(parse_changelog_name(key)[1] for key in list_changelog(lake))


def freshness(spark: Any, path: str, from_version: int, commits: dict[int, float]) -> list[float]:
    feed = (spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", from_version)
            .load(path).filter(f"_change_type = 'update_postimage' AND amount >= {MARK}")
            .selectExpr("amount", "unix_micros(_commit_timestamp) AS committed").collect())
    return [row["committed"] / 1e6 - commits[row["amount"] - MARK] for row in feed if row["amount"] - MARK in commits]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backlog", type=int, default=100_000, help="single-row updates merged from a backlog")
    parser.add_argument("--rate", type=float, default=200.0, help="updates/s of the steady load")
    parser.add_argument("--seconds", type=float, default=60.0, help="duration of the steady load")
    parser.add_argument("--trigger", type=float, default=1.0, help="merge.trigger_seconds for the steady load")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder, removed after")
    parser.add_argument("--reader-compatibility", choices=["broad", "modern"], default="broad",
                        help="lake.reader_compatibility of the bench table (the merge's cost per mode)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="binlake-mergebench-"))
    try:
        with LocalMariaDB(workdir / "db" / "data", free_port()) as db:
            run(db, workdir, args)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def run(db: LocalMariaDB, workdir: Path, args: argparse.Namespace) -> None:
    from delta.tables import DeltaTable

    from binlake.merge.job import run as run_merge
    from binlake.merge.job import start as start_merge
    from binlake.snapshot.job import run_full_load
    from binlake.spark import build_session

    db.execute("CREATE DATABASE bench CHARACTER SET utf8mb4")
    db.execute(SCHEMA, "bench")
    db.execute(UPDATE_PROC, "bench")
    began = time.perf_counter()
    db.execute(FILL.format(rows=args.rows), "bench")
    print(f"filled {TABLE} with {args.rows:,} rows in {time.perf_counter() - began:.1f} s")

    config = bench_config(db, workdir / "lake", args.trigger, args.reader_compatibility)
    lake = Lake.from_config(config)
    capture = Capture(config)
    capture.start()
    capture.wait_for(position(db))
    spark = build_session(config, "merge-bench")
    began = time.perf_counter()
    run_full_load(config, spark)
    print(f"full load: {time.perf_counter() - began:.1f} s")
    db.execute(f"CALL update_trx(100, {args.rows})", "bench")  # the merge joins the table on these
    capture.wait_for(position(db))
    run_merge(spark, config, available_now=True)
    path = lake.uri("bench/retail_trans")

    # 1. backlog: capture and merge timed on the same binlog range
    capture.stop()
    began = time.perf_counter()
    db.execute(f"CALL update_trx({args.backlog}, {args.rows})", "bench")
    print(f"backlog: {args.backlog:,} single-row update transactions committed in "
          f"{time.perf_counter() - began:.1f} s")
    end = position(db)
    capture.start()
    began = time.perf_counter()
    capture.wait_for(end)
    capture_seconds = time.perf_counter() - began
    capture_records = capture.records_written()
    batch_before = last_batch(lake)
    began = time.perf_counter()
    run_merge(spark, config, available_now=True)
    merge_seconds = time.perf_counter() - began
    batches = last_batch(lake) - batch_before
    capture_rate = capture_records / capture_seconds
    merge_rate = capture_records / merge_seconds
    print(f"capture: {capture_records:,} records in {capture_seconds:.1f} s = {capture_rate:,.0f} records/s")
    print(f"merge:   {capture_records:,} changes in {merge_seconds:.1f} s = {merge_rate:,.0f} changes/s "
          f"(availableNow, {batches} batch(es) of <= 200 files)")

    # 2. steady load: freshness
    version = DeltaTable.forPath(spark, path).history(1).collect()[0]["version"] + 1
    query = start_merge(spark, config, available_now=False)
    load = SteadyLoad(db, args.rate, args.rows)
    began = time.perf_counter()
    load.run(args.seconds)
    load_seconds = time.perf_counter() - began
    capture.wait_for(position(db))
    wait_merged(lake, last_change_lsn(lake))
    drained = time.perf_counter() - began
    query.stop()
    capture.stop()
    fresh = freshness(spark, path, version, load.commits)
    print(f"steady load: {len(load.commits):,} updates in {load_seconds:.1f} s "
          f"({len(load.commits) / load_seconds:,.0f}/s); all merged {drained - load_seconds:.1f} s after the last")
    print()
    features = sorted(DeltaTable.forPath(spark, path).detail().collect()[0]["tableFeatures"])
    print(f"lake.reader_compatibility         {args.reader_compatibility:>10}  (table features: {', '.join(features)})")
    print(f"capture throughput (backlog)      {capture_rate:>10,.0f} records/s")
    print(f"merge apply throughput (backlog)  {merge_rate:>10,.0f} changes/s")
    if fresh:
        print(f"freshness at {args.rate:,.0f} updates/s        p50 {statistics.median(fresh):6.2f} s   "
              f"p95 {percentile(fresh, 0.95):6.2f} s   ({len(fresh):,} visible changes, trigger {args.trigger} s)")
    spark.stop()


if __name__ == "__main__":
    main()
