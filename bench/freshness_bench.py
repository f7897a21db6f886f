"""Many-tables freshness benchmark: source commit → row visible to a Delta reader, for 1/10/40/100
tables changing at once. Modes, each over the same lake in the same run:

* ``parallel`` — the default merge: small table parts merged on the driver by delta-rs
  (``merge.small_part_records``), the rest by Spark, ``--parallel`` tables at a time;
* ``spark`` — the baseline: every part a Spark MERGE (``merge.small_part_records: 0``), also
  ``--parallel`` tables at a time (what binlake did before the driver-side merge);
* ``sequential`` — Spark MERGEs one table after the other (``merge.max_parallel_tables: 1``).

    .venv/bin/python bench/freshness_bench.py [--tables 1,10,40,100] [--modes parallel,spark]
        [--parallel 4] [--rate 40] [--seconds 45] [--probes-per-second 2]

Starts a private MariaDB with ``max(--tables)`` small tables ``bench.t000…`` (100 rows each), the
capture (in a thread) and one full load of all of them. Then, per table count ``N`` and mode, with
the capture and a continuous merge (trigger ``--trigger`` s) running over the same lake:

1. the merge first catches up (whatever the previous run left), then the load starts (before the
   first run, one update per table and an ``availableNow`` merge join every table: not timed here);
2. **steady load** — ``--rate`` single-row UPDATE transactions per second, round-robin over the
   first ``N`` tables, for ``--seconds``;
3. **probes** — ``--probes-per-second`` single-row INSERTs into a random one of those tables, each
   with a new key, its client time right after COMMIT noted;
4. after the load, up to ``--drain`` s for the merge to apply the rest, then the merge stops.

A probe is visible when the Delta commit that inserted it exists: its freshness is that commit's
timestamp (the table's change data feed, ``_commit_timestamp`` of the probe's ``insert`` row, read
once after the run so that no poller competes with the merge for the two cores) minus the probe's
client commit time. Probes of the first ``--warmup`` s are left out. A probe still not visible after
the drain counts as "late" (its freshness is then at least the time waited, shown as ``>``).
Batch duration: the merge's own per-batch log line (``merge batch …: … in X s``).

Prints one line per (N, mode) and the sequential/parallel ratios. Runs in ≲ 15 minutes with the
defaults on the 2-core machine; ``--tables`` and ``--modes`` run a subset.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from merge_bench import Capture, percentile, position

from binlake.config import PipelineConfig, parse_config
from binlake.devdb import LocalMariaDB, free_port
from binlake.lake import Lake

TABLE_DDL = """CREATE TABLE {name} (
  id BIGINT PRIMARY KEY, amount BIGINT NOT NULL, note VARCHAR(64) NOT NULL, updated DATETIME(6) NOT NULL
)"""
ROWS = 100
PROBE_BASE = 1_000_000


def table_name(index: int) -> str:
    return f"t{index:03d}"


def bench_config(db: LocalMariaDB, lake: Path, trigger: float, parallel: int,
                 small_part_records: int = 10_000) -> PipelineConfig:
    return parse_config({
        "name": "freshbench",
        "source": {"host": "127.0.0.1", "port": db.port, "user": "root", "password_env": None, "server_id": 913},
        "lake": {"root": str(lake)},
        "table_mappings": {"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "all",
                                      "object-locator": {"schema-name": "bench", "table-name": "t%"},
                                      "rule-action": "include"}]},
        "capture": {"start": "checkpoint", "flush_seconds": 0.5},
        "full_load": {"tables_in_parallel": 4},
        "merge": {"trigger_seconds": trigger, "max_files_per_batch": 200, "optimize_every_batches": 0,
                  "max_parallel_tables": parallel, "small_part_records": small_part_records},
        "spark": {"master": os.environ.get("BINLAKE_SPARK_MASTER", f"local[{os.cpu_count() or 2}]")},
    }, Path("freshness-bench.yaml"))


class BatchLog(logging.Handler):
    """Collects the merge's per-batch durations from its log line."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seconds: list[float] = []
        self.tables: list[int] = []
        self.phases: list[tuple[float, ...]] = []  # summary, small parts, tables, metrics and status

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("merge batch %d: %d table(s)") and isinstance(record.args, tuple):
            self.tables.append(int(str(record.args[1])))
            self.seconds.append(float(str(record.args[3])))
            self.phases.append(tuple(float(str(a)) for a in record.args[4:8]))


@dataclass
class Workload:
    """The steady load and the probes over the first ``tables`` tables."""

    db: LocalMariaDB
    tables: int
    rate: float
    probe_rate: float
    next_probe: int
    probes: dict[int, tuple[str, float]] = field(default_factory=dict)  # key → (table, client commit time)
    transactions: int = 0

    def run(self, seconds: float) -> None:
        load = threading.Thread(target=self._steady, args=(seconds,))
        load.start()
        self._probe(seconds)
        load.join()

    def _steady(self, seconds: float) -> None:
        with self.db.connect("bench", autocommit=True) as conn, conn.cursor() as cur:
            began = time.monotonic()
            seq = 0
            while time.monotonic() - began < seconds:
                pause = began + seq / self.rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                cur.execute(f"UPDATE {table_name(seq % self.tables)} SET amount = amount + 1, updated = NOW(6) "
                            "WHERE id = %s", (1 + seq % ROWS,))
                seq += 1
            self.transactions = seq

    def _probe(self, seconds: float) -> None:
        rng = random.Random(11)
        with self.db.connect("bench", autocommit=True) as conn, conn.cursor() as cur:
            began = time.monotonic()
            n = 0
            while time.monotonic() - began < seconds:
                pause = began + n / self.probe_rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                table, key = table_name(rng.randrange(self.tables)), self.next_probe + n
                cur.execute(f"INSERT INTO {table} VALUES (%s, 0, 'probe', NOW(6))", (key,))
                self.probes[key] = (table, time.time())
                n += 1


def visible_at(spark: Any, lake: Lake, probes: dict[int, tuple[str, float]]) -> dict[int, float]:
    """Commit time (epoch s) of the Delta commit that inserted each visible probe."""
    found: dict[int, float] = {}
    by_table: dict[str, list[int]] = {}
    for key, (table, _) in probes.items():
        by_table.setdefault(table, []).append(key)
    for table, keys in by_table.items():
        feed = (spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", 0)
                .load(lake.uri(f"bench/{table}")).filter(f"_change_type = 'insert' AND id >= {min(keys)}"
                                                         f" AND id <= {max(keys)}")
                .selectExpr("id", "unix_micros(_commit_timestamp) AS committed").collect())
        wanted = set(keys)
        found.update({int(r["id"]): r["committed"] / 1e6 for r in feed if int(r["id"]) in wanted})
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default="1,10,40,100", help="table counts, comma-separated")
    parser.add_argument("--modes", default="parallel,spark", help="parallel, spark and/or sequential")
    parser.add_argument("--parallel", type=int, default=4, help="merge.max_parallel_tables of the parallel mode")
    parser.add_argument("--rate", type=float, default=40.0, help="single-row update transactions/s (all tables)")
    parser.add_argument("--probes-per-second", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=45.0, help="duration of the load per run")
    parser.add_argument("--warmup", type=float, default=8.0, help="probes of the first seconds left out")
    parser.add_argument("--drain", type=float, default=45.0, help="most seconds to wait for the rest after the load")
    parser.add_argument("--trigger", type=float, default=1.0, help="merge.trigger_seconds")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder, removed after")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="binlake-freshbench-"))
    try:
        with LocalMariaDB(workdir / "db" / "data", free_port()) as db:
            run(db, workdir, args)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def run(db: LocalMariaDB, workdir: Path, args: argparse.Namespace) -> None:
    from binlake.merge.job import run as run_merge
    from binlake.merge.job import start as start_merge
    from binlake.snapshot.job import run_full_load
    from binlake.spark import build_session

    counts = [int(n) for n in args.tables.split(",")]
    modes = [m.strip() for m in args.modes.split(",")]
    db.execute("CREATE DATABASE bench CHARACTER SET utf8mb4")
    for i in range(max(counts)):
        db.execute(TABLE_DDL.format(name=table_name(i)), "bench")
        db.execute(f"INSERT INTO {table_name(i)} SELECT seq, 0, 'row', NOW(6) FROM seq_1_to_{ROWS}", "bench")
    config = bench_config(db, workdir / "lake", args.trigger, 1)
    lake = Lake.from_config(config)
    capture = Capture(config)
    capture.start()
    capture.wait_for(position(db))
    spark = build_session(config, "freshness-bench")
    began = time.perf_counter()
    run_full_load(config, spark)
    print(f"{max(counts)} tables created and fully loaded in {time.perf_counter() - began:.0f} s", flush=True)
    for i in range(max(counts)):  # the merge joins each table (catch-up from its snapshot) on these
        db.execute(f"UPDATE {table_name(i)} SET amount = amount + 1 WHERE id = 1", "bench")
    capture.wait_for(position(db))
    began = time.perf_counter()
    run_merge(spark, bench_config(db, workdir / "lake", args.trigger, args.parallel), available_now=True)
    print(f"the merge joined them in {time.perf_counter() - began:.0f} s", flush=True)
    batches = BatchLog()
    logging.getLogger("binlake.merge.batch").addHandler(batches)
    logging.getLogger("binlake.merge.batch").setLevel(logging.INFO)
    results: dict[tuple[int, str], dict[str, float]] = {}
    next_probe = PROBE_BASE
    print(f"steady load {args.rate:g} tx/s over the tables, {args.probes_per_second:g} probes/s, "
          f"{args.seconds:g} s per run, trigger {args.trigger:g} s, load average {os.getloadavg()[0]:.1f}")
    print(f"{'tables':>6} {'mode':<14} {'p50 s':>7} {'p95 s':>7} {'late':>5} {'probes':>6} {'batch p50 s':>11} "
          f"{'batch max s':>11} {'tables/batch':>12} {'load avg':>8}")
    for count in counts:
        for mode in modes:
            parallel = 1 if mode == "sequential" else args.parallel
            run_config = bench_config(db, workdir / "lake", args.trigger, parallel,
                                      10_000 if mode == "parallel" else 0)
            query = start_merge(spark, run_config, available_now=False)
            try:
                wait_caught_up(lake, capture, db, timeout=300)
                del batches.seconds[:], batches.tables[:], batches.phases[:]
                work = Workload(db, count, args.rate, args.probes_per_second, next_probe)
                started = time.time()
                work.run(args.seconds)
                next_probe += len(work.probes) + 1
                stop = time.time()
                counted = {k: v for k, v in work.probes.items() if v[1] - started >= args.warmup}
                deadline = time.monotonic() + args.drain
                while time.monotonic() < deadline:
                    time.sleep(3)
                    if merged_past(lake, capture, db):
                        break
            finally:
                query.stop()
            seen = visible_at(spark, lake, counted)
            waited = time.time()
            fresh = sorted(seen[k] - t for k, (_, t) in counted.items() if k in seen)
            late = [waited - t for k, (_, t) in counted.items() if k not in seen]
            values = sorted(fresh + late)  # a late probe is at least as stale as the time waited
            row = {
                "p50": percentile(values, 0.5) if values else float("nan"),
                "p95": percentile(values, 0.95) if values else float("nan"),
                "late": len(late), "probes": len(counted),
                "batch_p50": statistics.median(batches.seconds) if batches.seconds else float("nan"),
                "batch_max": max(batches.seconds, default=float("nan")),
                "tables": statistics.mean(batches.tables) if batches.tables else 0.0,
                "load": os.getloadavg()[0], "drain": waited - stop,
            }
            results[(count, mode)] = row
            bound = ">" if late and percentile(values, 0.95) in late else " "
            print(f"{count:>6} {mode + f'({parallel})':<14} {row['p50']:>7.1f} {bound}{row['p95']:>6.1f} "
                  f"{row['late']:>5} {row['probes']:>6} {row['batch_p50']:>11.1f} {row['batch_max']:>11.1f} "
                  f"{row['tables']:>12.1f} {row['load']:>8.1f}", flush=True)
            if batches.phases:
                medians = [statistics.median(p[i] for p in batches.phases) for i in range(4)]
                print("         batch phases, p50 s: summary {:.2f}, small parts {:.2f}, tables {:.2f}, "
                      "metrics and status {:.2f}".format(*medians), flush=True)
    capture.stop()
    for baseline in ("spark", "sequential"):
        if "parallel" not in modes or baseline not in modes:
            continue
        print(f"{baseline} / parallel (how many times fresher the default merge is):")
        for count in counts:
            par, base = results[(count, "parallel")], results[(count, baseline)]
            print(f"  {count:>3} tables: p50 {base['p50'] / par['p50']:.2f}×, p95 {base['p95'] / par['p95']:.2f}×, "
                  f"batch {base['batch_p50'] / par['batch_p50']:.2f}×")


def merged_past(lake: Lake, capture: Capture, db: LocalMariaDB) -> bool:
    """Has the merge applied everything the source has committed (status.json's lsn of every
    table it saw at or above the source's position, once the capture has it)?"""
    import json

    from binlake.capture.checkpoint import load_checkpoint
    from binlake.lake import MERGE_STATUS_KEY

    target = position(db).lsn
    checkpoint = load_checkpoint(lake)
    if checkpoint is None or checkpoint.position.lsn < target:
        return False
    try:
        status = json.loads(lake.get_bytes(MERGE_STATUS_KEY))
    except FileNotFoundError:
        return False
    return bool(status.get("lsn") is not None and int(status["lsn"]) >= capture_last_change(lake))


def capture_last_change(lake: Lake) -> int:
    from binlake.changelog import list_changelog
    from binlake.lake import parse_changelog_name

    return max((parse_changelog_name(key)[1] for key in list_changelog(lake)), default=0)


def wait_caught_up(lake: Lake, capture: Capture, db: LocalMariaDB, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not merged_past(lake, capture, db):
        if time.monotonic() > deadline:
            print(f"  (the merge did not catch up within {timeout:.0f} s; measuring anyway)")
            return
        time.sleep(1)


if __name__ == "__main__":
    main()
