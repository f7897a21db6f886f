"""Secrets stay secret, verbose or not: a ``--verbose`` capture, full load and merge run as real
processes against the loopback S3 server with session-token credentials and a source password read
from a file; then every byte they left behind — their output (Spark's JVM log included), every
local file under the test's folder (spill folder, local status, Spark scratch) and every object in
the bucket (change log, checkpoints, status files, snapshot state, Delta logs and data) — is
searched for the access key, the secret key, the session token and the password."""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from capture_support import checkpoint_reached, master_position, wait_for
from conftest import include_schema_rules

from binlake.config import parse_config
from binlake.devdb import LocalMariaDB
from binlake.devs3 import LocalS3
from binlake.logs import LOG_FORMAT, RedactingFormatter

pytestmark = pytest.mark.s3
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def run_logged(command: list[str], log: Path, env: dict[str, str], cwd: Path) -> str:
    """Run ``command`` to completion with stdout and stderr in ``log``; fail with its tail."""
    with log.open("wb") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, timeout=900)
    text = log.read_text(errors="replace")
    assert result.returncode == 0, f"{' '.join(command[:2])} failed:\n{text[-5000:]}"
    return text


def spark_submit(script: Path, config: Path, log: Path, env: dict[str, str], cwd: Path, *extra: str) -> str:
    submit = str(Path(sys.executable).parent / "spark-submit")
    return run_logged([submit, str(script), "--config", str(config), *extra], log, env, cwd)


def leaks(blob: bytes, named: dict[str, str]) -> list[str]:
    return [name for name, value in named.items() if value.encode() in blob]


@pytest.mark.slow
def test_no_secret_in_any_log_file_or_object(
    mariadb: LocalMariaDB, source_db: str, s3_server: LocalS3, s3_bucket: str, tmp_path: Path
) -> None:
    password = "pw-" + secrets.token_urlsafe(32)
    user = f"loader_{secrets.token_hex(3)}"
    mariadb.execute(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'")
    mariadb.execute(f"GRANT ALL ON *.* TO '{user}'@'127.0.0.1'")
    secret_dir = tmp_path / "secret"  # the password file: the one place the password may be
    secret_dir.mkdir()
    (secret_dir / "source-password").write_text(password + "\n")
    named = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
             "AWS_SESSION_TOKEN": s3_server.session_token, "source password": password}
    assert os.environ["AWS_SESSION_TOKEN"] == s3_server.session_token  # the session fixture's credentials

    mariadb.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(40))", source_db)
    mariadb.execute("INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_40", source_db)
    work, logs = tmp_path / "work", tmp_path / "logs"
    work.mkdir()
    logs.mkdir()
    data: dict[str, Any] = {
        "name": "secrets",
        "source": {"host": "127.0.0.1", "port": mariadb.port, "user": user, "password_env": None,
                   "password_file": str(secret_dir / "source-password"), "server_id": 6161},
        "lake": {"root": f"s3a://{s3_bucket}/lake", "s3": {"endpoint": s3_server.endpoint, "path_style": True}},
        "table_mappings": include_schema_rules(source_db),
        "capture": {"flush_seconds": 0.3, "spill_dir": str(tmp_path / "spill")},
        "spark": {"master": "local[2]"},
    }
    config_path = work / "pipeline.yaml"
    config_path.write_text(json.dumps(data))  # JSON is YAML
    config = parse_config(data, config_path)
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
           "SPARK_LOCAL_DIRS": str(tmp_path / "spark-local"), "PYTHONUNBUFFERED": "1"}

    capture_log = logs / "capture.log"
    with capture_log.open("wb") as out:
        capture = subprocess.Popen([sys.executable, "-m", "binlake.cli", "capture", "--config", str(config_path),
                                    "--verbose"], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work)
    try:
        wait_for(checkpoint_reached(config, master_position(mariadb)), 120, "the capture to start")
        spark_submit(REPO / "jobs" / "full_load.py", config_path, logs / "full_load.log", env, work, "--verbose")
        for statement in ("UPDATE t SET v = 'changed' WHERE id = 1", "DELETE FROM t WHERE id = 2",
                          "INSERT INTO t VALUES (100, 'new')"):
            mariadb.execute(statement, source_db)
        wait_for(checkpoint_reached(config, master_position(mariadb)), 120, "the capture to catch up")
    finally:
        capture.send_signal(signal.SIGTERM)
        assert capture.wait(timeout=60) == 0, capture_log.read_text(errors="replace")[-5000:]
    spark_submit(REPO / "streaming" / "merge.py", config_path, logs / "merge.log", env, work,
                 "--available-now", "--verbose")
    dump = spark_submit(HERE / "delta_dump.py", config_path, logs / "dump.log", env, work, "--table", f"{source_db}/t")

    lake_rows = [json.loads(line[4:]) for line in dump.splitlines() if line.startswith("ROW ")]
    source = mariadb.execute("SELECT id, v FROM t ORDER BY id", source_db)
    assert [(row["id"], row["v"]) for row in lake_rows] == [tuple(row) for row in source]
    assert " DEBUG binlake.capture" in capture_log.read_text()  # --verbose took effect

    found: list[str] = []
    files = [p for p in tmp_path.rglob("*") if p.is_file() and secret_dir not in p.parents]
    assert len(files) >= 5
    for path in files:
        found += [f"{path.relative_to(tmp_path)}: {name}" for name in leaks(path.read_bytes(), named)]
    client = s3_server.client()
    keys = [item["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket)
            for item in page.get("Contents", [])]
    assert any("/_delta_log/" in key for key in keys) and any("_binlake/changelog/" in key for key in keys)
    for key in keys:
        body = client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
        found += [f"s3://{s3_bucket}/{key}: {name}" for name in leaks(body, named)]
    assert found == []


@pytest.mark.parametrize("formatter", [logging.Formatter(LOG_FORMAT), RedactingFormatter(LOG_FORMAT)],
                         ids=["plain", "redacting"])
def test_botocore_at_debug_logs_the_token_unless_the_formatter_masks_it(
    s3_server: LocalS3, s3_bucket: str, formatter: logging.Formatter
) -> None:
    """Why botocore is kept at WARNING, and what the formatter adds if someone turns it up anyway:
    its DEBUG lines carry the access key and the session token (and the signature)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    botocore = logging.getLogger("botocore")
    level = botocore.level
    botocore.addHandler(handler)
    botocore.setLevel(logging.DEBUG)
    try:
        s3_server.client().put_object(Bucket=s3_bucket, Key="k", Body=b"v")
    finally:
        botocore.removeHandler(handler)
        botocore.setLevel(level)
    named = {"AWS_ACCESS_KEY_ID": s3_server.access_key, "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
             "AWS_SESSION_TOKEN": s3_server.session_token}
    output = stream.getvalue()
    if isinstance(formatter, RedactingFormatter):
        assert leaks(output.encode(), named) == [] and "Signature=" not in output
    else:
        assert leaks(output.encode(), named) == ["AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN"]
