"""The merge on an S3 lake (loopback S3 server): capture → full load → merge, each a separate
process, ``s3a://`` for Spark and boto3 for binlake's own files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from capture_support import CaptureThread, checkpoint_reached, master_position, wait_for

from binlake.config import parse_config
from binlake.devdb import LocalMariaDB
from binlake.devs3 import LocalS3
from binlake.lake import MERGE_STATUS_KEY, Lake

pytestmark = [pytest.mark.s3, pytest.mark.slow]
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def spark_submit(script: Path, config: Path, *extra: str) -> str:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    submit = Path(sys.executable).parent / "spark-submit"
    result = subprocess.run([str(submit), str(script), "--config", str(config), *extra], env=env,
                            capture_output=True, text=True, timeout=900, cwd=REPO)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    return result.stdout


def test_merge_into_s3_lake(
    mariadb: LocalMariaDB, source_db: str, s3_server: LocalS3, s3_bucket: str, tmp_path: Path
) -> None:
    mariadb.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))", source_db)
    mariadb.execute("INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_50", source_db)
    data = {
        "name": "merge-s3",
        "source": {"host": "127.0.0.1", "port": mariadb.port, "user": "root", "password_env": None,
                   "server_id": 5151},
        "lake": {"root": f"s3a://{s3_bucket}/lake", "s3": {"endpoint": s3_server.endpoint, "path_style": True}},
        "table_mappings": {"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "db",
                                      "object-locator": {"schema-name": source_db, "table-name": "%"},
                                      "rule-action": "include"}]},
        "capture": {"flush_seconds": 0.3},
        "spark": {"master": "local[2]"},
    }
    config_path = tmp_path / "s3.yaml"
    config_path.write_text(json.dumps(data))
    config = parse_config(data, config_path)
    capture = CaptureThread(config).start()
    try:
        wait_for(checkpoint_reached(config, master_position(mariadb)), 60, "the capture to start")
        spark_submit(REPO / "jobs" / "full_load.py", config_path)
        for statement in ("UPDATE t SET v = 'changed' WHERE id = 1", "DELETE FROM t WHERE id = 2",
                          "INSERT INTO t VALUES (100, 'new')", "UPDATE t SET id = 300 WHERE id = 3"):
            mariadb.execute(statement, source_db)
        wait_for(checkpoint_reached(config, master_position(mariadb)), 60, "the capture to catch up")
    finally:
        capture.stop()
    spark_submit(REPO / "streaming" / "merge.py", config_path, "--available-now")
    output = spark_submit(HERE / "delta_dump.py", config_path, "--table", f"{source_db}/t")
    lake_rows = [json.loads(line[4:]) for line in output.splitlines() if line.startswith("ROW ")]
    source = mariadb.execute("SELECT id, v FROM t ORDER BY id, v", source_db)
    assert [(r["id"], r["v"]) for r in lake_rows] == [tuple(row) for row in source]
    status = json.loads(Lake.from_config(config).get_bytes(MERGE_STATUS_KEY))
    assert status["tables"][f"{source_db}.t"]["status"] == "joined" and status["last_error"] is None
