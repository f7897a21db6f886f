"""``make demo`` / ``binlake demo``: the whole pipeline on the embedded default, start to finish.

Steps (each logged with its number):

1. start a private MariaDB (binlog ROW, FULL image, FULL metadata) on ``source.port`` of
   ``conf/demo.yaml``, datadir ``.run/demo/db``; create ``retail`` with the sample tables and the
   ``binlake`` user (password from ``BINLAKE_SOURCE_PASSWORD``, or a random one kept in memory);
2. start the capture (``binlake capture``) — before the full load, so nothing is lost;
3. start a workload that inserts, updates and deletes while everything else runs;
4. run the full load (``spark-submit jobs/full_load.py``);
5. run the merge (``spark-submit streaming/merge.py``) and show status while the workload goes on;
6. stop the workload, wait until the lake has applied the source's last change;
7. stop the merge, validate the lake against the source (``spark-submit jobs/validate.py``);
8. print the summary; stop the capture and the database. Ctrl-C at any point stops everything.

The lake stays in ``./lake`` for the notebooks; ``make clean`` removes it and ``.run/``.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from binlake.capture.history import load_registry
from binlake.config import PipelineConfig, load_config
from binlake.demo.s3 import start_demo_s3
from binlake.demo.sample import create_sample
from binlake.demo.workload import Workload
from binlake.devdb import LocalMariaDB
from binlake.lake import Lake
from binlake.logs import configure_logging
from binlake.positions import make_lsn
from binlake.progress import read_progress
from binlake.status import pipeline_status, render_text

log = logging.getLogger("binlake.demo")

DEMO_DATABASE = "retail"
RETAIL_ROWS = 200_000
ORDERS = 20_000
CATCH_UP_TIMEOUT_S = 240.0


@dataclass
class Processes:
    """Child processes the demo started; :meth:`stop_all` ends every one of them."""

    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, argv: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        handle = log_path.open("wb")
        process = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.running[name] = process
        return process

    def stop(self, name: str, timeout: float = 60.0) -> None:
        process = self.running.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
            "SPARK_LOCAL_IP": "127.0.0.1"}


def spark_submit(script: str, config_path: Path, *args: str) -> list[str]:
    return [_bin("spark-submit"), "--master", "local[2]", "--driver-memory", "3g",
            "--conf", "spark.ui.enabled=false", script, "--config", str(config_path), *args]


def step(number: int, text: str) -> None:
    print(f"\n[{number}/8] {text}", flush=True)


def prepare_source(db: LocalMariaDB, config: PipelineConfig) -> None:
    """Sample database and the replication user with exactly the grants binlake needs."""
    db.execute(f"CREATE DATABASE IF NOT EXISTS {DEMO_DATABASE} CHARACTER SET utf8mb4")
    with db.connect(DEMO_DATABASE, autocommit=False) as conn:
        create_sample(conn, RETAIL_ROWS, ORDERS)
    password = config.source.password()
    user = config.source.user
    for statement in (
        f"CREATE USER IF NOT EXISTS '{user}'@'127.0.0.1' IDENTIFIED BY %s",
        f"ALTER USER '{user}'@'127.0.0.1' IDENTIFIED BY %s",
    ):
        with db.connect() as conn, conn.cursor() as cur:
            cur.execute(statement, (password,))
    db.execute(f"GRANT SELECT, RELOAD, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{user}'@'127.0.0.1'")


def source_counts(db: LocalMariaDB) -> dict[str, int]:
    rows = db.execute(f"SELECT 'retail_trans', COUNT(*) FROM {DEMO_DATABASE}.retail_trans UNION ALL "
                      f"SELECT 'order_items', COUNT(*) FROM {DEMO_DATABASE}.order_items")
    return {str(name): int(count) for name, count in rows}  # type: ignore[call-overload]


def wait_caught_up(db: LocalMariaDB, lake: Lake, alive: Callable[[], bool], timeout: float) -> bool:
    """Wait until the lake has applied everything up to the source's current binlog end."""
    file, pos = db.execute("SHOW MASTER STATUS")[0][:2]
    latest = load_registry(lake).latest  # the source's binlog end in the capture's current epoch
    target = make_lsn(str(file), int(pos), 0 if latest is None else latest.epoch)  # type: ignore[call-overload]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        applied = read_progress(lake).applied_lsn
        if applied is not None and applied >= target:
            return True
        time.sleep(2)
    return False


def fresh_dirs(run_dir: Path, lake_root: str | None) -> None:
    """Start from scratch: a new datadir, and an empty local lake (only if it is binlake's own)."""
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    if lake_root is None:
        return
    lake = Path(lake_root)
    if lake.exists() and any(lake.iterdir()) and not (lake / "_binlake").exists():
        raise SystemExit(f"{lake} exists and is not a binlake lake; refusing to wipe it (change lake.root)")
    shutil.rmtree(lake, ignore_errors=True)


def main(workload_seconds: float = 30.0, config_path: Path = Path("conf/demo.yaml"), s3: bool = False) -> int:
    """The demo; with ``s3`` its lake is on a private S3-compatible server (:mod:`binlake.demo.s3`)."""
    configure_logging()
    os.environ.setdefault("BINLAKE_SOURCE_PASSWORD", secrets.token_urlsafe(18))
    config = load_config(config_path)
    if config.lake.is_s3:
        raise SystemExit("the demo writes a local lake; conf/demo.yaml must have a local lake.root")
    run_dir = Path(".run/demo").resolve()
    fresh_dirs(run_dir, None if s3 else config.lake.root)
    s3_server = None
    if s3:
        s3_server, config_path = start_demo_s3(run_dir, config_path)
        config = load_config(config_path)
        print(f"S3 lake {config.lake.root} on s3proxy at {s3_server.endpoint} (objects in {s3_server.basedir})")
    processes = Processes()
    db = LocalMariaDB(run_dir / "db", port=config.source.port)
    workload: Workload | None = None
    env = _child_env()
    try:
        step(1, f"MariaDB on 127.0.0.1:{config.source.port}, sample data ({RETAIL_ROWS:,} retail_trans rows)")
        db.start()
        prepare_source(db, config)
        step(2, "capture: binlog → change log (log: .run/demo/capture.log)")
        capture = processes.start("capture", [_bin("binlake"), "capture", "--config", str(config_path)],
                                  run_dir / "capture.log", env)
        step(3, "workload: inserts, updates, deletes, key changes, multi-table transactions, rollbacks")
        workload = Workload(lambda: db.connect(DEMO_DATABASE, autocommit=False), rate_per_s=40.0)
        workload.start()
        step(4, "full load (Spark): consistent parallel snapshots → Delta")
        full_load = subprocess.run(spark_submit("jobs/full_load.py", config_path), env=env,
                                   stderr=(run_dir / "full_load.log").open("wb"))
        if full_load.returncode != 0:
            print("full load failed; see .run/demo/full_load.log")
            return 1
        step(5, f"merge (Spark Structured Streaming) while the workload runs for {workload_seconds:.0f}s more")
        merge = processes.start("merge", spark_submit("streaming/merge.py", config_path),
                                run_dir / "merge.log", env)
        lake = Lake.from_config(config)
        deadline = time.monotonic() + workload_seconds
        while time.monotonic() < deadline:
            time.sleep(min(10.0, max(deadline - time.monotonic(), 0.1)))
            print(render_text(pipeline_status(config, lake)), flush=True)
            for name, process in (("capture", capture), ("merge", merge)):
                if process.poll() is not None:
                    print(f"{name} exited with {process.returncode}; see .run/demo/{name}.log")
                    return 1
        step(6, "workload stopped; waiting for the lake to catch up with the source")
        workload.stop()
        stats = workload.stats
        print(f"workload: {stats.transactions} transactions committed, {stats.rollbacks} rolled back")
        caught_up = wait_caught_up(db, lake, lambda: merge.poll() is None, CATCH_UP_TIMEOUT_S)
        print("caught up" if caught_up else "did not catch up in time; validation will show rows in flight")
        processes.stop("merge")
        step(7, "validate: source vs lake, key by key")
        validation = subprocess.run(spark_submit("jobs/validate.py", config_path, "--wait", "30"), env=env,
                                    stdout=subprocess.PIPE, stderr=(run_dir / "validate.log").open("wb"))
        report = validation.stdout.decode()
        print(report[report.find("binlake validate"):] if "binlake validate" in report else report)
        step(8, "summary")
        print(summary(config, lake, source_counts(db), validation.returncode))
        return 0 if validation.returncode == 0 else 1
    except KeyboardInterrupt:
        print("\ninterrupted: stopping everything the demo started")
        return 130
    finally:
        if workload is not None:
            workload.stop()
        processes.stop_all()
        db.stop()
        if s3_server is not None:
            s3_server.stop()


def summary(config: PipelineConfig, lake: Lake, counts: dict[str, int], validation_status: int) -> str:
    status: dict[str, Any] = pipeline_status(config, lake)
    lags = [t["lag_seconds"] for t in status["tables"] if t["lag_seconds"] is not None]
    lines = [
        render_text(status),
        "",
        "source rows: " + ", ".join(f"{name} {count:,}" for name, count in counts.items()),
        f"validation: {'lake equals source' if validation_status == 0 else 'see the report above'}",
        f"last end-to-end lag: {max(lags):.1f}s" if lags else "last end-to-end lag: -",
        f"lake: {config.lake.root}  (Delta tables under {config.lake.root}/{DEMO_DATABASE}/)",
        "next: jupyter notebook notebooks/  — 01_query_the_lake, 02_replication_lag",
    ]
    return "\n".join(lines)
