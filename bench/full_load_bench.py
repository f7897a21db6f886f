"""Full-load benchmark: binlake's full load of ``retail_trans`` vs MariaDB's own ``SELECT … INTO OUTFILE``.

    .venv/bin/python bench/full_load_bench.py [--rows 1000000] [--chunk-rows N] [--runs 2]

Starts a private MariaDB (own datadir and port under --workdir), fills ``bench.retail_trans`` (the
AWS CDC blog schema) with ``--rows`` rows, then in the same run times

* the physical baseline: ``SELECT * FROM retail_trans INTO OUTFILE`` (server-side, no network);
* binlake: :func:`binlake.snapshot.job.run_full_load` into a local lake, ``--runs`` times (the first
  run includes JIT warm-up; each run is a DROP_AND_CREATE reload). Spark's start-up is timed apart.

and prints rows/s for both and their ratio, for each ``--methods`` snapshot method (mariadb,
watermark) in the same run.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from binlake.config import PipelineConfig, parse_config
from binlake.devdb import LocalMariaDB, free_port

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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def outfile_seconds(db: LocalMariaDB) -> float:
    target = db.outfile_dir / "retail_trans.tsv"
    target.unlink(missing_ok=True)
    started = time.perf_counter()
    db.execute(f"SELECT * FROM retail_trans INTO OUTFILE '{target}'", "bench")
    seconds = time.perf_counter() - started
    target.unlink()
    return seconds


def bench_config(
    db: LocalMariaDB, lake: Path, chunk_rows: int, parallel: int, extra: dict[str, Any], spark_conf: dict[str, str]
) -> PipelineConfig:
    return parse_config(
        {
            "name": "bench",
            "source": {"host": "127.0.0.1", "port": db.port, "user": "root", "password_env": None},
            "lake": {"root": str(lake)},
            "table_mappings": {"rules": [{
                "rule-type": "selection", "rule-id": "1", "rule-name": "retail",
                "object-locator": {"schema-name": "bench", "table-name": "retail_trans"}, "rule-action": "include",
            }]},
            "full_load": {"chunk_rows": chunk_rows, "max_parallel_chunks": parallel, **extra},
            "spark": {"master": os.environ.get("BINLAKE_SPARK_MASTER", f"local[{os.cpu_count() or 2}]"),
                      "conf": spark_conf},
        },
        Path("bench.yaml"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=0, help="0 = rows / (2 x cores)")
    parser.add_argument("--parallel", type=int, default=0, help="chunks at once; 0 = Spark default parallelism")
    parser.add_argument("--fetch-size", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--methods", default="mariadb,watermark",
                        help="full_load.snapshot_method values timed in the same run (comma-separated)")
    parser.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE",
                        help="extra Spark setting (repeatable), e.g. spark.sql.parquet.compression.codec=zstd")
    parser.add_argument("--verbose", action="store_true", help="log the full load's steps")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder, removed after")
    args = parser.parse_args()
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="binlake-flbench-"))
    cores = os.cpu_count() or 2
    chunk_rows = args.chunk_rows or max(1, args.rows // (2 * cores))
    try:
        with LocalMariaDB(workdir / "db" / "data", free_port()) as db:
            started = time.perf_counter()
            fill(db, args.rows)
            print(f"filled bench.retail_trans with {args.rows:,} rows in {time.perf_counter() - started:.1f} s")
            baseline = min(outfile_seconds(db) for _ in range(2))
            print(f"SELECT … INTO OUTFILE: {baseline:.2f} s = {args.rows / baseline:,.0f} rows/s")

            from binlake.snapshot.job import run_full_load
            from binlake.spark import build_session

            methods = [m.strip() for m in args.methods.split(",") if m.strip()]
            configs = {method: bench_config(db, workdir / "lake", chunk_rows, args.parallel,
                                            {"jdbc_fetch_size": args.fetch_size, "snapshot_method": method},
                                            dict(item.split("=", 1) for item in args.spark_conf))
                       for method in methods}
            config = configs[methods[0]]
            started = time.perf_counter()
            spark = build_session(config, "bench")
            print(f"Spark session start: {time.perf_counter() - started:.1f} s "
                  f"({spark.sparkContext.master}, {chunk_rows:,} rows per chunk)")
            best: dict[str, float] = {}
            jvm_pid = int(spark.sparkContext._jvm.ProcessHandle.current().pid())  # type: ignore[union-attr]
            assert db.process is not None
            for run, method in ((run, method) for run in range(1, args.runs + 1) for method in methods):
                config = configs[method]
                cpu_before = cpu_seconds(jvm_pid), cpu_seconds(db.process.pid)
                started = time.perf_counter()
                [report] = run_full_load(config, spark)
                seconds = time.perf_counter() - started
                jvm_cpu = cpu_seconds(jvm_pid) - cpu_before[0]
                db_cpu = cpu_seconds(db.process.pid) - cpu_before[1]
                best[method] = min(best.get(method, float("inf")), seconds)
                assert report.rows == args.rows, report
                print(f"binlake full load ({method}) run {run}: {seconds:.2f} s = {args.rows / seconds:,.0f} rows/s "
                      f"({report.chunks} chunks, {report.bytes or 0:,} bytes of Parquet; CPU: Spark {jvm_cpu:.1f} s, "
                      f"MariaDB {db_cpu:.1f} s)")
            spark.stop()
        print()
        print(f"baseline  SELECT INTO OUTFILE  {args.rows / baseline:>12,.0f} rows/s")
        for method, seconds in best.items():
            print(f"binlake   full load, {method:<9} {args.rows / seconds:>12,.0f} rows/s (best run; "
                  f"baseline {seconds / baseline:.1f}x faster)")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
