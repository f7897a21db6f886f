"""The lake is a real S3 server (s3proxy, objects on disk) and it goes away while ``binlake
capture`` runs under a workload: a short outage is waited out (each retry logged with the
object's s3a URI), a long one stops the capture (exit code 3) with ``binlake status`` still
showing why (the capture's local status copy; the lake cannot be read). After the server is
back and the capture restarted, the change log holds every committed change exactly once
(de-duplicated by ``(lsn, row_idx)``), value by value against the stock-library oracle; and (slow)
with a full load before the outage and the merge after it, the lake table equals the source."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from capture_support import (
    captured,
    checkpoint_reached,
    comparable,
    master_position,
    oracle_changes,
    start_subprocess,
    stop_subprocess,
    wait_for,
    write_config,
)
from conftest import include_schema_rules
from typer.testing import CliRunner

from binlake.capture.status import read_status
from binlake.cli import app
from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.devs3 import LocalS3
from binlake.lake import Lake

pytestmark = pytest.mark.s3
MakeConfig = Callable[..., PipelineConfig]
EXIT_LAKE_WRITE = 3
HERE = Path(__file__).resolve().parent


class Workload:
    """Single-row transactions in a thread: inserts, then updates and deletes of rows it inserted."""

    def __init__(self, db: LocalMariaDB, schema: str, transactions: int) -> None:
        self.db, self.schema, self.transactions = db, schema, transactions
        self.error: BaseException | None = None
        self.done = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with self.db.connect(self.schema) as conn, conn.cursor() as cur:
                for n in range(self.transactions):
                    if n % 5 == 3:
                        cur.execute(f"UPDATE acc SET balance = balance + 1, note = 'u{n}' WHERE id = {n - 2}")
                    elif n % 5 == 4:
                        cur.execute(f"DELETE FROM acc WHERE id = {n - 4}")
                    else:
                        cur.execute(f"INSERT INTO acc VALUES ({n}, {n}.25, 'i{n}')")
                    conn.commit()
                    self.done += 1
                    time.sleep(0.01)
        except BaseException as exc:
            self.error = exc

    def start(self) -> Workload:
        self.thread.start()
        return self

    def join(self) -> None:
        self.thread.join(timeout=120)
        assert self.error is None and self.done == self.transactions


def s3_config(make_config: MakeConfig, s3: LocalS3, bucket: str, schema: str, tmp_path: Path,
              retries: int) -> PipelineConfig:
    root = f"s3a://{bucket}/lake"
    return make_config(root, include_schema_rules(schema),
                       lake={"root": root, "s3": {"endpoint": s3.endpoint, "path_style": True}, "retries": retries,
                             "retry_max_seconds": 1.0},
                       capture={"flush_seconds": 0.2, "spill_dir": str(tmp_path / "spill")})


def started(config: PipelineConfig, db: LocalMariaDB, tmp_path: Path) -> tuple[Path, subprocess.Popen[bytes]]:
    config_path = write_config(config, tmp_path / "capture.yaml")
    process = start_subprocess(config_path, tmp_path / "capture.log")
    lake = Lake.from_config(config)
    wait_for(lambda: (read_status(lake) or {}).get("state") == "running", 60, "the capture to run")
    wait_for(checkpoint_reached(config, master_position(db)), 30, "the capture to be caught up")
    return config_path, process


def test_a_short_s3_outage_is_waited_out_with_logged_retries(
    mariadb: LocalMariaDB, source_db: str, make_config: MakeConfig, s3_server: LocalS3, s3_bucket: str,
    tmp_path: Path,
) -> None:
    mariadb.execute("CREATE TABLE acc (id INT PRIMARY KEY, balance DECIMAL(12,2), note VARCHAR(20))", source_db)
    config = s3_config(make_config, s3_server, s3_bucket, source_db, tmp_path, retries=40)
    start = master_position(mariadb)
    _, process = started(config, mariadb, tmp_path)
    try:
        workload = Workload(mariadb, source_db, 400).start()
        time.sleep(1.0)
        s3_server.stop()                                              # the lake goes away for ~6 s
        time.sleep(6.0)
        assert process.poll() is None                                 # still retrying
        s3_server.start()
        workload.join()
        end = master_position(mariadb)
        wait_for(checkpoint_reached(config, end), 60, "the capture to catch up after the outage")
    finally:
        s3_server.start()
        assert stop_subprocess(process) == 0
    log = (tmp_path / "capture.log").read_text()
    retries = [line for line in log.splitlines() if "WARNING binlake.retry" in line]
    assert retries and all(f"{config.lake.root}/_binlake/" in line for line in retries), log[-3000:]
    assert any("EndpointConnectionError" in line for line in retries)
    oracle = oracle_changes(mariadb, source_db, start, end)
    assert len(oracle) == 400
    assert comparable(captured(config)) == comparable(oracle)


def test_a_long_s3_outage_stops_the_capture_and_a_restart_loses_nothing(
    mariadb: LocalMariaDB, source_db: str, make_config: MakeConfig, s3_server: LocalS3, s3_bucket: str,
    tmp_path: Path,
) -> None:
    mariadb.execute("CREATE TABLE acc (id INT PRIMARY KEY, balance DECIMAL(12,2), note VARCHAR(20))", source_db)
    config = s3_config(make_config, s3_server, s3_bucket, source_db, tmp_path, retries=2)
    start = master_position(mariadb)
    config_path, process = started(config, mariadb, tmp_path)
    try:
        workload = Workload(mariadb, source_db, 300).start()
        time.sleep(1.0)
        s3_server.stop()
        assert process.wait(timeout=60) == EXIT_LAKE_WRITE
        shown = CliRunner().invoke(app, ["status", "--config", str(config_path)])   # the lake is still down
        workload.join()
    finally:
        s3_server.start()
        if process.poll() is None:
            stop_subprocess(process)
    log = (tmp_path / "capture.log").read_text()
    assert f"{config.lake.root}/_binlake/" in log and "the checkpoint stays at" in log, log[-3000:]
    assert shown.exit_code == 0, shown.output
    assert "capture: failed" in shown.output and f"{config.lake.root}/_binlake/" in shown.output, shown.output
    assert "lake:    cannot be read" in shown.output, shown.output

    end = master_position(mariadb)
    process = start_subprocess(config_path, tmp_path / "capture.log")
    try:
        wait_for(checkpoint_reached(config, end), 60, "the restarted capture to catch up")
    finally:
        assert stop_subprocess(process) == 0, (tmp_path / "capture.log").read_text()[-3000:]
    oracle = oracle_changes(mariadb, source_db, start, end)
    assert len(oracle) == 300
    assert comparable(captured(config)) == comparable(oracle)


def test_a_sigterm_during_an_s3_outage_stops_at_once_and_a_restart_loses_nothing(
    mariadb: LocalMariaDB, source_db: str, make_config: MakeConfig, s3_server: LocalS3, s3_bucket: str,
    tmp_path: Path,
) -> None:
    """The capture is waiting between retries when SIGTERM arrives: it stops without waiting for the
    lake (exit 0), writes nothing more, and the restart re-reads from the unmoved checkpoint."""
    mariadb.execute("CREATE TABLE acc (id INT PRIMARY KEY, balance DECIMAL(12,2), note VARCHAR(20))", source_db)
    config = s3_config(make_config, s3_server, s3_bucket, source_db, tmp_path, retries=100)
    start = master_position(mariadb)
    config_path, process = started(config, mariadb, tmp_path)
    try:
        s3_server.stop()
        workload = Workload(mariadb, source_db, 50).start()
        workload.join()
        log_path = tmp_path / "capture.log"
        wait_for(lambda: "WARNING binlake.retry: write" in log_path.read_text(), 30, "the capture to retry")
        stopped_at = time.monotonic()
        assert stop_subprocess(process, timeout=20) == 0
        assert time.monotonic() - stopped_at < 10                     # it did not wait out 100 retries
    finally:
        s3_server.start()
        if process.poll() is None:
            stop_subprocess(process)
    assert "stopped while writing to the lake" in log_path.read_text()
    end = master_position(mariadb)
    process = start_subprocess(config_path, log_path)
    try:
        wait_for(checkpoint_reached(config, end), 60, "the restarted capture to catch up")
    finally:
        assert stop_subprocess(process) == 0, log_path.read_text()[-3000:]
    oracle = oracle_changes(mariadb, source_db, start, end)
    assert len(oracle) == 50
    assert comparable(captured(config)) == comparable(oracle)


def spark_submit(script: Path, config: Path, *extra: str) -> str:
    """Run a binlake Spark job (s3a needs the jars spark-submit adds); its stdout."""
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    submit = Path(sys.executable).parent / "spark-submit"
    result = subprocess.run([str(submit), str(script), "--config", str(config), *extra], env=env,
                            capture_output=True, text=True, timeout=900, cwd=HERE.parents[1])
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    return result.stdout


@pytest.mark.slow
def test_after_an_s3_outage_the_merged_lake_equals_the_source(
    mariadb: LocalMariaDB, source_db: str, make_config: MakeConfig, s3_server: LocalS3, s3_bucket: str,
    tmp_path: Path,
) -> None:
    mariadb.execute("CREATE TABLE acc (id INT PRIMARY KEY, balance DECIMAL(12,2), note VARCHAR(20))", source_db)
    mariadb.execute("INSERT INTO acc SELECT seq + 10000, seq, 'seed' FROM seq_1_to_50", source_db)
    config = s3_config(make_config, s3_server, s3_bucket, source_db, tmp_path, retries=2)
    config_path, process = started(config, mariadb, tmp_path)
    try:
        spark_submit(HERE.parents[1] / "jobs" / "full_load.py", config_path)
        mariadb.execute("UPDATE acc SET note = 'changed' WHERE id = 10001", source_db)
        workload = Workload(mariadb, source_db, 300).start()
        time.sleep(1.0)
        s3_server.stop()
        assert process.wait(timeout=60) == EXIT_LAKE_WRITE
        workload.join()
        mariadb.execute("DELETE FROM acc WHERE id = 10002", source_db)
    finally:
        s3_server.start()
        if process.poll() is None:
            stop_subprocess(process)
    end = master_position(mariadb)
    process = start_subprocess(config_path, tmp_path / "capture.log")
    try:
        wait_for(checkpoint_reached(config, end), 60, "the restarted capture to catch up")
    finally:
        assert stop_subprocess(process) == 0, (tmp_path / "capture.log").read_text()[-3000:]
    spark_submit(HERE.parents[1] / "streaming" / "merge.py", config_path, "--available-now")
    output = spark_submit(HERE / "delta_dump.py", config_path, "--table", f"{source_db}/acc")
    lake = sorted((int(r["id"]), str(r["balance"]), r["note"])
                  for r in (json.loads(line[4:]) for line in output.splitlines() if line.startswith("ROW ")))
    source = sorted((int(str(i)), str(b), str(n)) for i, b, n in mariadb.execute("SELECT id, balance, note FROM acc",
                                                                                 source_db))
    assert len(source) == 50 - 1 + 300 * 3 // 5 - 300 // 5 and lake == source
