"""Capture throughput: binlog → change-log records per second, against two baselines on the same binlog.

Workloads on the ``retail_trans`` table of a private MariaDB (started by this script):

* ``single``: 100K single-row INSERT transactions;
* ``update``: 100K single-row UPDATE transactions (before and after images: the backlog the
  Debezium figures in the README were measured on);
* ``bulk``: 1M rows in 1000-row INSERT statements;
* ``spill``: one transaction updating 1M rows (``UPDATE retail_trans SET amount = amount + 1``),
  captured in a child process twice — with the default ``capture.max_transaction_rows_in_memory``
  (the transaction spills to local files) and with the bound above the transaction (held in memory
  whole, as before spilling existed) — printing each run's peak RSS (``VmHWM``), records/s and the
  ratios.

For each, the same binlog range is read by

1. binlake's capture (``CaptureRunner``: decode, canonical values, Parquet files in a local lake,
   checkpoint) — timed from start until the checkpoint covers the range; also ``binlake capture``
   as a user runs it (a fresh process: interpreter start, imports, pre-flight included), timed from
   the process start until its checkpoint covers the range;
2. stock pymysqlreplication, decode only (iterate events, decode every row; default settings), and
   the same with ``freeze_schema=True`` for reference;
3. ``mariadb-binlog -v`` on the same binlog files and positions, output discarded.

Each row shows wall-clock seconds and rows/s and, except for mariadb-binlog, the reader's own CPU
time (user+sys of the capture thread, of the ``binlake capture`` process from its start, of the
stock reader's thread) and rows per CPU-second, with ratios to stock for both. On a shared,
loaded machine compare the CPU ratios: wall-clock rates move with other people's jobs.

Usage: ``python bench/capture_bench.py [--single N] [--bulk-rows N] [--spill-rows N]
[--only single,update,bulk,spill] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from full_load_bench import SCHEMA  # the retail_trans table of every bench
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

from binlake.capture.checkpoint import load_checkpoint
from binlake.capture.runner import CaptureRunner
from binlake.config import CaptureConfig, parse_config
from binlake.devdb import LocalMariaDB, free_port
from binlake.lake import Lake
from binlake.positions import BinlogPosition, make_lsn

SINGLE_PROC = """
CREATE PROCEDURE single_trx(n INT)
BEGIN
  DECLARE i INT DEFAULT 0;
  WHILE i < n DO
    INSERT INTO retail_trans (customer_id, event, sku, amount, device, trans_datetime)
    VALUES (CONCAT('C', LPAD(i % 100000, 8, '0')), ELT(1 + i % 3, 'view', 'cart', 'purchase'),
            CONCAT('SKU', i % 997), i % 1000, ELT(1 + i % 2, 'mobile', 'web'),
            '2024-01-01 00:00:00' + INTERVAL i SECOND);
    SET i = i + 1;
  END WHILE;
END"""

UPDATE_PROC = """
CREATE PROCEDURE update_trx(n INT)
BEGIN
  DECLARE i INT DEFAULT 0;
  DECLARE top BIGINT;
  SELECT MAX(trans_id) INTO top FROM retail_trans;
  WHILE i < n DO
    UPDATE retail_trans SET amount = amount + 1 WHERE trans_id = 1 + (i % top);
    SET i = i + 1;
  END WHILE;
END"""


@dataclass
class Result:
    """``seconds``: wall clock; ``cpu``: user+sys CPU seconds of the reader alone (its thread or
    process), which a loaded machine inflates far less than wall clock (0: not measured)."""

    seconds: float
    rows: int
    files: int = 0
    cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    @property
    def cpu_rate(self) -> float:
        return self.rows / self.cpu if self.cpu else 0.0


def process_cpu(pid: int) -> float:
    """User+sys CPU seconds so far of process ``pid`` (all its threads), from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def position(db: LocalMariaDB) -> BinlogPosition:
    file, pos = db.execute("SHOW MASTER STATUS")[0][:2]
    return BinlogPosition.of(str(file), int(str(pos)))


def run_single(db: LocalMariaDB, n: int) -> None:
    db.execute(f"CALL single_trx({n})", "retail")


def run_updates(db: LocalMariaDB, n: int) -> None:
    db.execute(f"CALL update_trx({n})", "retail")


def run_bulk(db: LocalMariaDB, rows: int, per_statement: int = 1000) -> None:
    with db.connect("retail") as conn, conn.cursor() as cur:
        for start in range(0, rows, per_statement):
            values = ",".join(
                f"('C{(start + i) % 100000:08d}','purchase','SKU{(start + i) % 997}',{i},'web',"
                f"'2024-01-01 00:00:00' + INTERVAL {start + i} SECOND)" for i in range(per_statement))
            cur.execute("INSERT INTO retail_trans (customer_id, event, sku, amount, device, trans_datetime) "
                        f"VALUES {values}")


def capture_config(port: int, lake: Path, start: BinlogPosition, **capture: object) -> dict[str, object]:
    return {
        "source": {"host": "127.0.0.1", "port": port, "user": "root", "password_env": None, "server_id": 901},
        "lake": {"root": str(lake)},
        "table_mappings": {"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "retail",
                                      "object-locator": {"schema-name": "retail", "table-name": "%"},
                                      "rule-action": "include"}]},
        "capture": {"start": "position", "start_file": start.file, "start_pos": start.pos, **capture},
    }


def capture(db: LocalMariaDB, lake: Path, start: BinlogPosition, end: BinlogPosition) -> Result:
    return run_capture(capture_config(db.port, lake, start), end.lsn)


def run_capture(data: dict[str, object], end_lsn: int) -> Result:
    """Run a capture in a thread of this process until its checkpoint reaches ``end_lsn``."""
    config = parse_config(data, Path("bench.yaml"))
    lake = Path(config.lake.root)
    runner = CaptureRunner(config)
    thread = threading.Thread(target=runner.run, daemon=True)
    lake_store = Lake(str(lake))
    began = time.perf_counter()
    thread.start()
    assert thread.ident is not None
    thread_clock = time.pthread_getcpuclockid(thread.ident)
    while True:
        checkpoint = load_checkpoint(lake_store)
        if checkpoint is not None and checkpoint.position.lsn >= end_lsn:
            break
        if not thread.is_alive():
            raise RuntimeError("the capture stopped early: " + str(runner.metrics.error))
        time.sleep(0.1)
    seconds = time.perf_counter() - began
    cpu = time.clock_gettime(thread_clock)
    runner.stopping = True
    thread.join()
    assert runner.sink is not None
    return Result(seconds, runner.sink.records_written, runner.sink.files_written, cpu)


def capture_process(db: LocalMariaDB, lake: Path, start: BinlogPosition, end: BinlogPosition) -> Result:
    """``binlake capture --config`` in a fresh process, timed until its checkpoint covers ``end``."""
    lake.mkdir(parents=True, exist_ok=True)
    config = lake.parent / f"{lake.name}.json"  # JSON is YAML
    config.write_text(json.dumps(capture_config(db.port, lake, start)))
    binlake = Path(sys.executable).with_name("binlake")
    lake_store = Lake(str(lake))
    began = time.perf_counter()
    process = subprocess.Popen([str(binlake), "capture", "--config", str(config)], stderr=subprocess.DEVNULL)
    try:
        while True:
            checkpoint = load_checkpoint(lake_store)
            if checkpoint is not None and checkpoint.position.lsn >= end.lsn:
                break
            if process.poll() is not None:
                raise RuntimeError(f"binlake capture exited early with code {process.returncode}")
            time.sleep(0.05)
        seconds = time.perf_counter() - began
        cpu = process_cpu(process.pid)
    finally:
        process.terminate()
        process.wait(30)
    return Result(seconds, 0, 0, cpu)


def stock_decode(db: LocalMariaDB, start: BinlogPosition, end: BinlogPosition, freeze: bool) -> Result:
    stream = BinLogStreamReader(
        connection_settings={"host": "127.0.0.1", "port": db.port, "user": "root", "password": ""},
        server_id=902 + freeze, resume_stream=True, log_file=start.file, log_pos=start.pos, blocking=False,
        only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent], freeze_schema=freeze, enable_logging=False,
    )
    rows = 0
    began, cpu_began = time.perf_counter(), time.thread_time()
    for event in stream:
        if make_lsn(stream.log_file, event.packet.log_pos) > end.lsn:
            break
        rows += len(event.rows)
    seconds, cpu = time.perf_counter() - began, time.thread_time() - cpu_began
    stream.close()
    return Result(seconds, rows, cpu=cpu)


def mariadb_binlog(db: LocalMariaDB, start: BinlogPosition, end: BinlogPosition, rows: int) -> Result:
    files = sorted(p.name for p in db.datadir.glob("binlog.[0-9]*"))
    wanted = [f for f in files if start.file <= f <= end.file]
    tool = shutil.which("mariadb-binlog") or shutil.which("mysqlbinlog") or "mariadb-binlog"
    command = [tool, "-v", f"--start-position={start.pos}", f"--stop-position={end.pos}",
               *[str(db.datadir / f) for f in wanted]]
    began = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return Result(time.perf_counter() - began, rows)


def measure(name: str, db: LocalMariaDB, workdir: Path, workload: Callable[[], None]) -> dict[str, Result]:
    db.execute("FLUSH BINARY LOGS")
    start = position(db)
    began = time.perf_counter()
    workload()
    print(f"[{name}] workload written in {time.perf_counter() - began:.1f}s", flush=True)
    end = position(db)
    results = {"binlake capture": capture(db, workdir / f"lake-{name}", start, end)}
    process = capture_process(db, workdir / f"lake-{name}-process", start, end)
    results["binlake capture (process)"] = Result(process.seconds, results["binlake capture"].rows, cpu=process.cpu)
    results["stock pymysqlreplication"] = stock_decode(db, start, end, freeze=False)
    results["stock, freeze_schema=True"] = stock_decode(db, start, end, freeze=True)
    results["mariadb-binlog -v"] = mariadb_binlog(db, start, end, results["binlake capture"].rows)
    return results


def report(name: str, results: dict[str, Result]) -> None:
    """Wall-clock and per-CPU-second rates; the ratios to stock compare like with like (the CPU
    ratio is the one to trust on a loaded machine; mariadb-binlog's CPU is not measured)."""
    stock = results["stock pymysqlreplication"]
    print(f"\n{name}: {results['binlake capture'].rows:,} rows")
    print(f"  {'reader':<28}{'seconds':>9}{'rows/s':>12}{'vs stock':>10}{'CPU s':>8}{'rows/CPU-s':>12}"
          f"{'vs stock':>10}  notes")
    for reader, result in results.items():
        notes = f"{result.files} change-log files" if result.files else ""
        cpu = (f"{result.cpu:>8.2f}{result.cpu_rate:>12,.0f}{result.cpu_rate / stock.cpu_rate:>9.2f}x"
               if result.cpu else f"{'':>30}")
        print(f"  {reader:<28}{result.seconds:>9.2f}{result.rate:>12,.0f}{result.rate / stock.rate:>9.2f}x"
              f"{cpu}  {notes}")


def peak_rss_mb() -> float:
    """This process's peak resident set size (``VmHWM``), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def spill_child(data_json: str, end_lsn: int) -> None:
    """``--spill-child``: one capture run in this (fresh) process; prints its figures as JSON."""
    data = json.loads(data_json)
    baseline = peak_rss_mb()  # the interpreter with binlake, pyarrow and pymysqlreplication imported
    result = run_capture(data, end_lsn)
    print(json.dumps({"seconds": result.seconds, "rows": result.rows, "files": result.files,
                      "baseline_mb": baseline, "peak_mb": peak_rss_mb()}))


def measure_spill(db: LocalMariaDB, workdir: Path, rows: int) -> dict[str, dict[str, float]]:
    """One ``rows``-row UPDATE transaction, captured with the default bound and with spilling off."""
    have = int(str(db.execute("SELECT COUNT(*) FROM retail_trans", "retail")[0][0]))
    if have < rows:
        run_bulk(db, rows - have)
    db.execute("CREATE DATABASE IF NOT EXISTS bench_marker")
    db.execute("CREATE TABLE IF NOT EXISTS bench_marker.m (id INT AUTO_INCREMENT PRIMARY KEY)")
    db.execute("FLUSH BINARY LOGS")
    start = position(db)
    began = time.perf_counter()
    db.execute(f"UPDATE retail_trans SET amount = amount + 1 ORDER BY trans_id LIMIT {rows}", "retail")
    print(f"[spill] {rows:,}-row UPDATE written in {time.perf_counter() - began:.1f}s", flush=True)
    # A transaction on an unselected table after it marks where the capture is done: the big one may
    # end its binlog file, the checkpoint moves only at transaction boundaries, and MariaDB may write
    # a Binlog_checkpoint event after the marker (so the end is the marker's XID, not the file's end).
    db.execute("INSERT INTO bench_marker.m VALUES ()")
    file = position(db).file
    xids = [row for row in db.execute(f"SHOW BINLOG EVENTS IN '{file}'") if row[2] == "Xid"]
    end = BinlogPosition.of(file, int(str(xids[-1][4])))
    default_bound = CaptureConfig().max_transaction_rows_in_memory
    runs = {f"spilling (bound {default_bound:,})": default_bound, f"in memory (bound {2 * rows:,})": 2 * rows}
    out = {}
    for name, bound in runs.items():
        data = capture_config(db.port, workdir / f"lake-spill-{bound}", start,
                              max_transaction_rows_in_memory=bound, spill_dir=str(workdir / "spill"))
        child = subprocess.run([sys.executable, __file__, "--spill-child", json.dumps(data), str(end.lsn)],
                               check=True, stdout=subprocess.PIPE, text=True)
        out[name] = json.loads(child.stdout.strip().splitlines()[-1])
    return out


def report_spill(rows: int, results: dict[str, dict[str, float]]) -> None:
    print(f"\none {rows:,}-row UPDATE transaction (capture in a child process)")
    print(f"  {'run':<30}{'peak RSS MiB':>13}{'above start':>12}{'seconds':>9}{'rows/s':>11}  files")
    for name, r in results.items():
        print(f"  {name:<30}{r['peak_mb']:>13,.0f}{r['peak_mb'] - r['baseline_mb']:>12,.0f}{r['seconds']:>9.2f}"
              f"{r['rows'] / r['seconds']:>11,.0f}  {r['files']:.0f}")
    spilled, in_memory = results.values()
    rss, growth = in_memory["peak_mb"] / spilled["peak_mb"], (
        (in_memory["peak_mb"] - in_memory["baseline_mb"]) / (spilled["peak_mb"] - spilled["baseline_mb"]))
    speed = (spilled["rows"] / spilled["seconds"]) / (in_memory["rows"] / in_memory["seconds"])
    print(f"  in memory / spilling: peak RSS {rss:.2f}x ({growth:.2f}x above start); "
          f"spilling runs at {speed:.2f}x the records/s of in memory")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--single", type=int, default=100_000, help="single-row transactions")
    parser.add_argument("--bulk-rows", type=int, default=1_000_000, help="rows of the bulk workload")
    parser.add_argument("--spill-rows", type=int, default=1_000_000, help="rows of the one-transaction UPDATE")
    parser.add_argument("--only", default="single,update,bulk,spill", help="comma-separated workloads to run")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--spill-child", nargs=2, metavar=("CONFIG_JSON", "END_LSN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.spill_child:
        spill_child(args.spill_child[0], int(args.spill_child[1]))
        return
    only = set(args.only.split(","))
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="binlake-capture-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    db = LocalMariaDB(workdir / "db" / "data", free_port())
    db.start()
    try:
        db.execute("CREATE DATABASE IF NOT EXISTS retail")
        db.execute("DROP TABLE IF EXISTS retail_trans", "retail")
        db.execute(SCHEMA, "retail")
        db.execute("DROP PROCEDURE IF EXISTS single_trx", "retail")
        db.execute(SINGLE_PROC, "retail")
        db.execute("DROP PROCEDURE IF EXISTS update_trx", "retail")
        db.execute(UPDATE_PROC, "retail")
        if "single" in only:
            single = measure("single", db, workdir, lambda: run_single(db, args.single))
            report(f"{args.single:,} single-row transactions", single)
        if "update" in only:
            if not db.execute("SELECT 1 FROM retail_trans LIMIT 1", "retail"):
                run_bulk(db, args.single)
            update = measure("update", db, workdir, lambda: run_updates(db, args.single))
            report(f"{args.single:,} single-row UPDATE transactions", update)
        if "bulk" in only:
            bulk = measure("bulk", db, workdir, lambda: run_bulk(db, args.bulk_rows))
            report(f"{args.bulk_rows:,} rows in 1000-row INSERTs", bulk)
        if "spill" in only:
            report_spill(args.spill_rows, measure_spill(db, workdir, args.spill_rows))
    finally:
        db.stop()
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
