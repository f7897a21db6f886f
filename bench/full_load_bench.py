"""Full-load benchmark: the whole ``spark-submit jobs/full_load.py`` of ``retail_trans`` vs ``SELECT … INTO OUTFILE``.

    .venv/bin/python bench/full_load_bench.py [--rows 1000000] [--readers direct,arrow,jdbc] [--runs 1]

Starts a private MariaDB (own datadir and port under --workdir), fills ``bench.retail_trans`` (the
AWS CDC blog schema) with ``--rows`` rows (``INSERT … SELECT`` from MariaDB's SEQUENCE engine: 10M
rows in about a minute), then in the same run times

* the physical baseline: ``SELECT * FROM retail_trans INTO OUTFILE`` (server-side, no network; best of 2);
* binlake: the whole ``spark-submit jobs/full_load.py --config <generated yaml>`` into a local lake —
  JVM start, session, table creation and every chunk included, as a user runs it — for each
  ``--readers`` value (``full_load.reader``), ``--runs`` times, each a DROP_AND_CREATE reload;

and prints rows/s for both, their ratio, the job's CPU seconds (user + system, children included)
and the load average around each run: on a shared machine only ratios within one run compare.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from binlake.devdb import LocalMariaDB, free_port

REPO = Path(__file__).resolve().parent.parent

SCHEMA = """
CREATE TABLE retail_trans (
  trans_id BIGINT AUTO_INCREMENT PRIMARY KEY,
  customer_id VARCHAR(12),
  event VARCHAR(10),
  sku VARCHAR(10),
  amount INT,
  device VARCHAR(10),
  trans_datetime DATETIME
)"""

FILL = """
INSERT INTO retail_trans (customer_id, event, sku, amount, device, trans_datetime)
SELECT CONCAT('C', LPAD(seq MOD 100000, 9, '0')),
       ELT(1 + seq MOD 4, 'view', 'cart', 'purchase', 'return'),
       CONCAT('SKU', LPAD(seq MOD 9973, 5, '0')),
       seq MOD 1000,
       ELT(1 + seq MOD 3, 'mobile', 'web', 'pos'),
       TIMESTAMP('2024-01-01') + INTERVAL (seq MOD 31536000) SECOND
FROM seq_1_to_{rows}"""


def fill(db: LocalMariaDB, rows: int) -> None:
    db.execute("DROP DATABASE IF EXISTS bench")
    db.execute("CREATE DATABASE bench CHARACTER SET utf8mb4")
    db.execute(SCHEMA, "bench")
    db.execute(FILL.format(rows=rows), "bench")
    db.execute("ANALYZE TABLE retail_trans", "bench")


def outfile_seconds(db: LocalMariaDB) -> float:
    target = db.outfile_dir / "retail_trans.tsv"
    target.unlink(missing_ok=True)
    started = time.perf_counter()
    db.execute(f"SELECT * FROM retail_trans INTO OUTFILE '{target}'", "bench")
    seconds = time.perf_counter() - started
    target.unlink()
    return seconds


def bench_config(db: LocalMariaDB, lake: Path, reader: str, extra: dict[str, Any]) -> dict[str, Any]:
    """The pipeline config (YAML is JSON) of one timed run."""
    return {
        "name": "bench",
        "source": {"host": "127.0.0.1", "port": db.port, "user": "root", "password_env": None},
        "lake": {"root": str(lake)},
        "table_mappings": {"rules": [{
            "rule-type": "selection", "rule-id": "1", "rule-name": "retail",
            "object-locator": {"schema-name": "bench", "table-name": "retail_trans"}, "rule-action": "include",
        }]},
        "full_load": {"reader": reader, "target_table_prep_mode": "DROP_AND_CREATE", **extra},
        "spark": {"master": os.environ.get("BINLAKE_SPARK_MASTER", f"local[{os.cpu_count() or 2}]")},
    }


def submit(config_path: Path, log_path: Path) -> tuple[float, float]:
    """Run ``spark-submit jobs/full_load.py`` once: (wall seconds, CPU seconds of it and its children)."""
    submit_bin = Path(sys.executable).parent / "spark-submit"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with log_path.open("w") as log:
        result = subprocess.run([str(submit_bin), str(REPO / "jobs" / "full_load.py"), "--config", str(config_path)],
                                env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"spark-submit failed ({result.returncode}): see {log_path}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of retail_trans (e.g. 10000000)")
    parser.add_argument("--readers", default="direct", help="full_load.reader values timed (comma-separated), "
                        "e.g. direct,arrow,jdbc (at 10M rows arrow and jdbc take 10-20 minutes each here)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra full_load setting (repeatable), e.g. chunk_rows=1000000")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder, removed after")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="binlake-flbench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    extra = {key: int(value) if value.isdigit() else value for key, value in (i.split("=", 1) for i in args.set)}
    readers = [r.strip() for r in args.readers.split(",") if r.strip()]
    try:
        with LocalMariaDB(workdir / "db" / "data", free_port()) as db:
            started = time.perf_counter()
            fill(db, args.rows)
            print(f"filled bench.retail_trans with {args.rows:,} rows in {time.perf_counter() - started:.1f} s")
            results: list[tuple[str, float, float, str]] = []
            baseline = min(outfile_seconds(db) for _ in range(2))
            print(f"SELECT … INTO OUTFILE: {baseline:.2f} s = {args.rows / baseline:,.0f} rows/s "
                  f"(load average {load_average()})")
            for run, reader in ((run, reader) for run in range(1, args.runs + 1) for reader in readers):
                config_path = workdir / f"bench-{reader}.yaml"
                config_path.write_text(json.dumps(bench_config(db, workdir / "lake", reader, extra)))
                load_before = load_average()
                seconds, cpu = submit(config_path, workdir / f"full_load-{reader}-{run}.log")
                results.append((reader, seconds, cpu, f"{load_before} → {load_average()}"))
                print(f"spark-submit full_load.py, reader {reader}, run {run}: {seconds:.1f} s = "
                      f"{args.rows / seconds:,.0f} rows/s, {cpu:.1f} CPU-s (load average {results[-1][3]})")
            again = min(outfile_seconds(db) for _ in range(2))
            print(f"SELECT … INTO OUTFILE again: {again:.2f} s (load average {load_average()})")
            baseline = min(baseline, again)
        print()
        print(f"{args.rows:,} rows; baseline SELECT INTO OUTFILE {args.rows / baseline:>12,.0f} rows/s")
        for reader in readers:
            seconds = min(s for r, s, _, _ in results if r == reader)
            print(f"binlake spark-submit, reader {reader:<5}    {args.rows / seconds:>12,.0f} rows/s "
                  f"(best run {seconds:.1f} s) = {baseline / seconds:.3f}x OUTFILE")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
