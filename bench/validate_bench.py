"""Validation benchmark: ``binlake validate`` by chunk checksums vs the full row comparison.

    .venv/bin/python bench/validate_bench.py [--rows 200000] [--chunk-rows N] [--runs 2]

Starts a private MariaDB (own datadir and port under --workdir), fills ``bench.retail_trans`` (the
AWS CDC blog schema, as bench/full_load_bench.py) with ``--rows`` rows, full-loads it into a local
lake, then in the same run times :func:`binlake.validation.validate`

* ``method="rows"`` — the reference: every source row read through JDBC and joined with the lake;
* ``method="checksum"`` — per chunk, count + hash sum computed by MariaDB and by Spark, no row read —

each ``--runs`` times (best run kept) on the equal lake, then again both with one lake row changed
(the checksum path then reads that one chunk's rows), and prints the times and their ratios.
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

from full_load_bench import bench_config, fill

from binlake.devdb import LocalMariaDB, free_port


def best_time(runs: int, action: Any) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--chunk-rows", type=int, default=0, help="0 = rows / (2 x cores)")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--verbose", action="store_true", help="log validation's steps")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder, removed after")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="binlake-valbench-"))
    chunk_rows = args.chunk_rows or max(1, args.rows // (2 * (os.cpu_count() or 2)))
    try:
        with LocalMariaDB(workdir / "db" / "data", free_port()) as db:
            fill(db, args.rows)
            from binlake.config import parse_config
            from binlake.snapshot.job import run_full_load
            from binlake.spark import build_session
            from binlake.validation import validate

            config = parse_config(bench_config(db, workdir / "lake", "auto", {"chunk_rows": chunk_rows}),
                                  workdir / "bench.yaml")
            spark = build_session(config, "bench")
            [report] = run_full_load(config, spark)
            print(f"loaded {report.rows:,} rows in {report.chunks} chunks ({spark.sparkContext.master})")

            def check(method: str) -> Any:
                [result] = validate(spark, config, method=method)
                return result

            rows_s, by_rows = best_time(args.runs, lambda: check("rows"))
            assert (by_rows.status, by_rows.source_rows) == ("OK", args.rows), by_rows
            sums_s, by_sums = best_time(args.runs, lambda: check("checksum"))
            assert (by_sums.status, by_sums.checksum_chunks) == ("OK", by_sums.chunks), by_sums
            spark.sql(f"UPDATE delta.`{workdir / 'lake' / 'bench' / 'retail_trans'}` SET amount = -1 "
                      "WHERE trans_id = 7")
            diff_s, by_diff = best_time(args.runs, lambda: check("checksum"))
            assert (by_diff.mismatched, by_diff.checksum_chunks) == (1, by_diff.chunks - 1), by_diff
            rows_diff_s, by_rows_diff = best_time(args.runs, lambda: check("rows"))
            assert by_rows_diff.mismatched == 1, by_rows_diff
            spark.stop()
        print()
        print(f"{'':<40} {'equal':>8} {'1 row changed':>14}")
        print(f"{'rows      every row compared':<40} {rows_s:>7.2f}s {rows_diff_s:>13.2f}s")
        print(f"{'checksum  then rows of differing chunks':<40} {sums_s:>7.2f}s {diff_s:>13.2f}s"
              f"   ({by_sums.chunks} chunks; {by_diff.chunks - 1} settled by checksum when 1 row changed)")
        print(f"{'ratio     rows / checksum':<40} {rows_s / sums_s:>7.1f}x {rows_diff_s / diff_s:>13.1f}x")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
