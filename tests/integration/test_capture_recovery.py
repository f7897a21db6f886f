"""Durability and exactly-once hand-off: stop/resume, SIGKILL at random points, source restart, S3.

The check is always the same: the union of the change log, de-duplicated by ``(lsn, row_idx)``,
equals exactly the committed row changes of the source's binlog over the same range, in order,
value by value (oracle: the stock library + typemap, see capture_support).
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from capture_support import (
    CaptureThread,
    capture_range,
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

from binlake.capture.checkpoint import Checkpoint, save_checkpoint
from binlake.capture.report import status_report
from binlake.capture.status import read_status
from binlake.cli import app
from binlake.config import PipelineConfig, StartFrom
from binlake.devdb import LocalMariaDB
from binlake.devs3 import LocalS3
from binlake.lake import Lake

MakeConfig = Callable[..., PipelineConfig]

SCHEMA_SQL = [
    "CREATE TABLE acc (id INT PRIMARY KEY, owner VARCHAR(20), balance DECIMAL(12,2), ts DATETIME(6))",
    "CREATE TABLE log (seq BIGINT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(50))",
]


class Workload:
    """Mixed transactions (multi-row, multi-table, PK-changing updates, deletes) in a thread."""

    def __init__(self, db: LocalMariaDB, schema: str, transactions: int, pause: float, seed: int = 7) -> None:
        self.db, self.schema, self.transactions, self.pause = db, schema, transactions, pause
        self.rng = random.Random(seed)
        self.done = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.next_id = seed * 1_000_000   # each workload owns its id range
        self.ids: list[int] = []

    def start(self) -> Workload:
        self.thread.start()
        return self

    def join(self) -> None:
        self.thread.join(timeout=300)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error
        assert self.done == self.transactions

    def _statements(self) -> list[str]:
        kind = self.rng.random()
        if kind < 0.45 or len(self.ids) < 5:
            new = list(range(self.next_id, self.next_id + self.rng.randint(1, 4)))
            self.next_id += len(new)
            self.ids += new
            values = ",".join(f"({i}, 'o{i % 7}', {i}.25, NOW(6))" for i in new)
            return [f"INSERT INTO acc VALUES {values}", f"INSERT INTO log (note) VALUES ('ins {new[0]}')"]
        victim = self.rng.choice(self.ids)
        if kind < 0.75:
            return [f"UPDATE acc SET balance = balance + 1, ts = NOW(6) WHERE id = {victim}"]
        if kind < 0.85:  # the primary key changes
            self.ids.remove(victim)
            self.ids.append(self.next_id)
            self.next_id += 1
            return [f"UPDATE acc SET id = {self.ids[-1]} WHERE id = {victim}"]
        self.ids.remove(victim)
        return [f"DELETE FROM acc WHERE id = {victim}", f"INSERT INTO log (note) VALUES ('del {victim}')"]

    def _run(self) -> None:
        try:
            with self.db.connect(self.schema) as conn, conn.cursor() as cur:
                for _ in range(self.transactions):
                    cur.execute("BEGIN")
                    for statement in self._statements():
                        cur.execute(statement)
                    cur.execute("COMMIT")
                    self.done += 1
                    if self.pause:
                        time.sleep(self.pause)
        except BaseException as exc:
            self.error = exc


def prepare(db: LocalMariaDB, schema: str) -> None:
    with db.connect(schema) as conn, conn.cursor() as cur:
        for statement in SCHEMA_SQL:
            cur.execute(statement)


def assert_exactly_once(config: PipelineConfig, db: LocalMariaDB, schema: str, start: object, end: object) -> None:
    got = captured(config)
    oracle = oracle_changes(db, schema, start, end)  # type: ignore[arg-type]
    assert len(oracle) > 0
    assert comparable(got) == comparable(oracle)


def test_stop_and_resume_from_checkpoint(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: MakeConfig
) -> None:
    prepare(mariadb, source_db)
    start = master_position(mariadb)
    config = make_config(lake_dir, include_schema_rules(source_db), capture={"flush_seconds": 0.2})
    lake = Lake.from_config(config)
    capture = CaptureThread(config).start()
    wait_for(lambda: (read_status(lake) or {}).get("state") == "running", 30, "the capture to run")
    Workload(mariadb, source_db, 150, 0).start().join()
    wait_for(lambda: (read_status(lake) or {}).get("lag_seconds") == 0.0, 30, "an idle, caught-up capture")
    capture.stop()
    Workload(mariadb, source_db, 150, 0, seed=8).start().join()         # while the capture is down
    end = master_position(mariadb)
    capture_range(config, end)                                           # resumes from the checkpoint
    assert_exactly_once(config, mariadb, source_db, start, end)
    assert (read_status(lake) or {}).get("state") == "stopped"
    report = status_report(config)
    assert report["state"] == "stopped" and report["checkpoint"].startswith(end.file)
    assert report["changelog_files"] == report["files_written_total"] > 0
    config_path = write_config(config, lake_dir.parent / "status.yaml")
    shown = CliRunner().invoke(app, ["capture-status", "--config", str(config_path)])
    assert shown.exit_code == 0 and "lag_seconds" in shown.output and "stopped" in shown.output


def run_kill_loop(config: PipelineConfig, tmp_path: Path, workload: Workload, kills: int, seed: int) -> None:
    config_path = write_config(config, tmp_path / "capture.yaml")
    log_path = tmp_path / "capture.log"
    rng = random.Random(seed)
    for _ in range(kills):
        process = start_subprocess(config_path, log_path)
        time.sleep(rng.uniform(0.8, 2.5))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    workload.join()


@pytest.mark.parametrize("kills", [4])
def test_sigkill_at_random_points_loses_and_invents_nothing(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: MakeConfig, tmp_path: Path, kills: int
) -> None:
    kill_and_check(mariadb, source_db, lake_dir, make_config, tmp_path, kills, transactions=1500, seed=11)


@pytest.mark.slow
def test_sigkill_soak(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: MakeConfig, tmp_path: Path
) -> None:
    kill_and_check(mariadb, source_db, lake_dir, make_config, tmp_path, 25, transactions=20000, seed=12)


def kill_and_check(mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: MakeConfig,
                   tmp_path: Path, kills: int, transactions: int, seed: int) -> None:
    prepare(mariadb, source_db)
    start = master_position(mariadb)
    config = make_config(lake_dir, include_schema_rules(source_db), capture={
        "start": "checkpoint", "flush_seconds": 0.3, "flush_rows": 200})
    save_checkpoint(Lake.from_config(config), Checkpoint(start))   # every run resumes from the checkpoint
    workload = Workload(mariadb, source_db, transactions, 0.002, seed=seed).start()
    run_kill_loop(config, tmp_path, workload, kills, seed)
    end = master_position(mariadb)
    process = start_subprocess(write_config(config, tmp_path / "capture.yaml"), tmp_path / "capture.log")
    lake = Lake.from_config(config)
    try:
        wait_for(lambda: (read_status(lake) or {}).get("pid") == process.pid, 60, "the last capture to start")
        wait_for(checkpoint_reached(config, end), 120, "the restarted capture to catch up")
    finally:
        assert stop_subprocess(process) == 0, (tmp_path / "capture.log").read_text()[-3000:]
    assert_exactly_once(config, mariadb, source_db, start, end)
    assert len(captured(config, dedupe=False)) >= len(captured(config))


def test_source_restart_while_capturing(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: MakeConfig
) -> None:
    prepare(mariadb, source_db)
    start = master_position(mariadb)
    config = make_config(lake_dir, include_schema_rules(source_db), capture={
        "start": "position", "start_file": start.file, "start_pos": start.pos, "flush_seconds": 0.2,
        "reconnect_max_seconds": 1.0})
    capture = CaptureThread(config).start()
    try:
        Workload(mariadb, source_db, 200, 0).start().join()
        # capturing before the restart (a capture that cannot reach its source at start stops, by design;
        # on a loaded machine its first connection could otherwise come during the restart)
        wait_for(checkpoint_reached(config, master_position(mariadb)), 180, "the capture to stream")
        mariadb.restart()
        Workload(mariadb, source_db, 200, 0, seed=9).start().join()
        end = master_position(mariadb)
        wait_for(checkpoint_reached(config, end), 180, "the capture to catch up after the restart")
    finally:
        capture.stop()
    assert capture.runner.metrics.reconnects >= 1
    assert_exactly_once(config, mariadb, source_db, start, end)


@pytest.mark.s3
def test_capture_into_s3(
    mariadb: LocalMariaDB, source_db: str, make_config: MakeConfig, s3_server: LocalS3, s3_bucket: str
) -> None:
    prepare(mariadb, source_db)
    start = master_position(mariadb)
    Workload(mariadb, source_db, 100, 0).start().join()
    end = master_position(mariadb)
    root = f"s3a://{s3_bucket}/pipelines/p1"
    config = make_config(root, include_schema_rules(source_db),
                         lake={"root": root, "s3": {"endpoint": s3_server.endpoint, "path_style": True}},
                         capture={"start": "position", "start_file": start.file, "start_pos": start.pos,
                                  "flush_seconds": 0.2, "flush_rows": 50})
    capture_range(config, end)
    lake = Lake.from_config(config)
    assert lake.uri("_binlake/changelog") == f"{root}/_binlake/changelog"
    assert len(lake.list("_binlake/changelog")) >= 2 and lake.exists("_binlake/capture/checkpoint.json")
    assert_exactly_once(config, mariadb, source_db, start, end)


def test_start_after_a_gtid_set_then_resume_by_position(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: MakeConfig
) -> None:
    """MariaDB GTID start (the library's is_mariadb + auto_position mode), then a checkpoint restart."""
    prepare(mariadb, source_db)
    start = master_position(mariadb)
    gtid = str(mariadb.execute("SELECT @@gtid_binlog_pos")[0][0])
    Workload(mariadb, source_db, 100, 0).start().join()
    middle = master_position(mariadb)
    config = make_config(lake_dir, include_schema_rules(source_db),
                         capture={"start": "position", "start_gtid": gtid, "flush_seconds": 0.2})
    capture_range(config, middle)
    Workload(mariadb, source_db, 100, 0, seed=8).start().join()
    end = master_position(mariadb)
    resume = config.model_copy(update={"capture": config.capture.model_copy(update={"start": StartFrom.CHECKPOINT})})
    capture_range(resume, end)
    assert_exactly_once(resume, mariadb, source_db, start, end)
    last = captured(resume)[-1]
    assert last["gtid"] == str(mariadb.execute("SELECT @@gtid_binlog_pos")[0][0])


def test_an_explicit_start_is_applied_once_then_the_checkpoint_wins(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: MakeConfig
) -> None:
    """``capture.start: position`` left in the config: the restart resumes, it does not re-read."""
    prepare(mariadb, source_db)
    start = master_position(mariadb)
    Workload(mariadb, source_db, 60, 0).start().join()
    middle = master_position(mariadb)
    config = make_config(lake_dir, include_schema_rules(source_db), capture={
        "start": "position", "start_file": start.file, "start_pos": start.pos, "flush_seconds": 0.2})
    capture_range(config, middle)
    Workload(mariadb, source_db, 60, 0, seed=8).start().join()
    end = master_position(mariadb)
    capture_range(config, end)                                   # same setting: resumes at the checkpoint
    assert_exactly_once(config, mariadb, source_db, start, end)
    assert len(captured(config, dedupe=False)) == len(captured(config))   # nothing was read twice
    moved = config.model_copy(update={"capture": config.capture.model_copy(update={"start_pos": middle.pos,
                                                                                     "start_file": middle.file})})
    Workload(mariadb, source_db, 10, 0, seed=9).start().join()
    later = master_position(mariadb)
    capture_range(moved, later)                                  # a changed start applies again:
    assert len(captured(config, dedupe=False)) > len(captured(config))   # middle..end is read twice
    assert_exactly_once(config, mariadb, source_db, start, later)
