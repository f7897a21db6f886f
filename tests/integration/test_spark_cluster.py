"""The full load and the merge submitted to a real Spark standalone cluster (master + worker on
loopback) with ``spark-submit --master spark://…``: no driver-local assumptions about paths,
files or state. The executors run in the worker's own JVM and Python processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from capture_support import CaptureThread, checkpoint_reached, master_position, wait_for, write_config
from conftest import include_schema_rules
from spark_cluster import StandaloneCluster

from binlake.devdb import LocalMariaDB

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
    standalone = StandaloneCluster(tmp_path_factory.mktemp("cluster"), cores=1, memory="1g")
    standalone.start()
    yield standalone
    standalone.stop()


def submit(cluster: StandaloneCluster, script: str, config_path: Path, *args: str) -> str:
    command = [str(Path(sys.executable).parent / "spark-submit"), "--master", cluster.url,
               "--deploy-mode", "client", "--driver-memory", "1g", "--executor-memory", "1g",
               "--conf", "spark.ui.enabled=false", str(ROOT / script), "--config", str(config_path), *args]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
           "SPARK_LOCAL_IP": "127.0.0.1"}
    done = subprocess.run(command, env=env, capture_output=True, timeout=600, cwd="/")
    output = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0, output[-4000:]
    return output


@pytest.mark.slow  # ~2 minutes: a standalone master and worker (two more JVMs) besides the jobs
def test_full_load_and_merge_on_a_standalone_cluster(
    cluster: StandaloneCluster, mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any,
    spark: Any, tmp_path: Path,
) -> None:
    mariadb.execute("CREATE TABLE accounts (id INT PRIMARY KEY, owner VARCHAR(20), balance DECIMAL(12,2), "
                    "opened DATETIME(6))", source_db)
    mariadb.execute("INSERT INTO accounts VALUES " + ",".join(
        f"({i}, 'owner{i}', {i * 10}.50, '2024-02-{1 + i % 28:02d} 10:00:00.{i:06d}')" for i in range(1, 2001)),
        source_db)
    config = make_config(lake_dir, include_schema_rules(source_db),
                         full_load={"chunk_rows": 400}, capture={"start": "end", "flush_seconds": 0.2},
                         spark={"master": None})
    config_path = write_config(config, tmp_path / "cluster.yaml")
    capture = CaptureThread(config).start()
    try:
        wait_for(lambda: checkpoint_reached(config, master_position(mariadb))(), 30, "the capture to start")
        output = submit(cluster, "jobs/full_load.py", config_path)
        assert "accounts" in output
        mariadb.execute("UPDATE accounts SET balance = balance + 1 WHERE id <= 10", source_db)
        mariadb.execute("DELETE FROM accounts WHERE id BETWEEN 100 AND 109", source_db)
        mariadb.execute("INSERT INTO accounts VALUES (5000, 'late', 1.25, '2025-01-01 00:00:00.5')", source_db)
        end = master_position(mariadb)
        wait_for(lambda: capture.error is not None or checkpoint_reached(config, end)(), 60, "the capture")
    finally:
        capture.stop()
    submit(cluster, "streaming/merge.py", config_path, "--available-now")

    lake = spark.read.format("delta").load(f"{lake_dir}/{source_db}/accounts")
    rows = {r.id: (r.owner, str(r.balance), r.opened.isoformat(sep=" ")) for r in lake.collect()}
    source = {int(i): (o, str(b), str(d)) for i, o, b, d in mariadb.execute(
        "SELECT id, owner, balance, DATE_FORMAT(opened, '%Y-%m-%d %H:%i:%s.%f') FROM accounts", source_db)}
    assert len(rows) == 2000 - 10 + 1
    assert rows == source
    assert rows[3][1] == "31.50" and 105 not in rows and rows[5000] == ("late", "1.25", "2025-01-01 00:00:00.500000")
