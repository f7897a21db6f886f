"""Change-log writes that fail for real: the lake's change-log folder becomes a regular file while
``binlake capture`` runs as a process under a workload. The capture stops (exit code 3) naming the
path; ``binlake status`` shows the failure although the lake's status.json cannot be written
either (the capture's local status copy); the checkpoint stayed where the last durable file was.
The folder is repaired, the capture restarted, the merge run: the lake equals the source value
by value — nothing lost, nothing invented. The same with a lake on a full file system (a small
tmpfs, ENOSPC) when ``mount`` is permitted."""

from __future__ import annotations

import errno
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

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

from binlake.capture.checkpoint import load_checkpoint
from binlake.capture.status import local_status_path, read_status
from binlake.cli import app
from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.lake import CHANGELOG_DIR, STATUS_KEY, Lake
from binlake.merge.job import run as run_merge
from binlake.positions import BinlogPosition
from binlake.snapshot.job import run_full_load

MakeConfig = Callable[..., PipelineConfig]
EXIT_LAKE_WRITE = 3


class Source:
    """The ``acc`` table and one autocommit transaction per change, ids handed out in order."""

    def __init__(self, db: LocalMariaDB, schema: str) -> None:
        self.db, self.schema, self.next_id = db, schema, 1
        db.execute("CREATE TABLE acc (id INT PRIMARY KEY, owner VARCHAR(20), balance DECIMAL(12,2), note TEXT)",
                   schema)

    def insert(self, count: int) -> list[int]:
        ids = list(range(self.next_id, self.next_id + count))
        self.next_id += count
        for i in ids:
            self.db.execute(f"INSERT INTO acc VALUES ({i}, 'o{i % 5}', {i}.50, 'n{i}')", self.schema)
        return ids

    def update(self, ids: list[int], tag: str) -> None:
        for i in ids:
            self.db.execute(f"UPDATE acc SET balance = balance + 1, note = CONCAT(note, '{tag}') WHERE id = {i}",
                            self.schema)

    def delete(self, ids: list[int]) -> None:
        for i in ids:
            self.db.execute(f"DELETE FROM acc WHERE id = {i}", self.schema)

    def rows(self) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.db.execute("SELECT id, owner, balance, note FROM acc ORDER BY id", self.schema)]


def lake_rows(spark: Any, config: PipelineConfig, schema: str) -> list[tuple[Any, ...]]:
    frame = spark.read.format("delta").load(f"{config.lake.root}/{schema}/acc")
    return [tuple(r) for r in frame.orderBy("id").select("id", "owner", "balance", "note").collect()]


def outage(db: LocalMariaDB, source: Source, config: PipelineConfig, tmp_path: Path,
           after_start: Callable[[], object] = lambda: None) -> tuple[BinlogPosition, BinlogPosition]:
    """The scenario of the module docstring; returns the binlog range the capture read, start and end."""
    seeded = source.insert(30)
    config_path = write_config(config, tmp_path / "capture.yaml")
    log_path = tmp_path / "capture.log"
    lake, lake_dir = Lake.from_config(config), Path(config.lake.root)
    start = master_position(db)
    process = start_subprocess(config_path, log_path)
    try:
        wait_for(lambda: (read_status(lake) or {}).get("state") == "running", 60, "the capture to run")
        wait_for(checkpoint_reached(config, start), 30, "the capture to be caught up")
        after_start()

        fresh = source.insert(5)                                     # A: written while the lake works
        source.update(seeded[:5], "a")
        source.delete(seeded[5:7])
        wait_for(checkpoint_reached(config, master_position(db)), 30, "the capture to write A")
        durable = load_checkpoint(lake)
        assert durable is not None

        changelog, status_json = lake_dir / CHANGELOG_DIR, lake_dir / STATUS_KEY
        changelog.rename(changelog.with_name("changelog.aside"))    # B: the change-log folder is a file now,
        changelog.write_text("not a folder")                         # and status.json a folder (the lake copy
        status_json.unlink()                                         # of the status cannot be written either)
        status_json.mkdir()
        inserted = source.insert(20)
        source.update(inserted[:10] + seeded[10:20] + fresh, "b")    # 25 updates
        source.delete(inserted[15:18] + seeded[20:22])
        assert process.wait(timeout=60) == EXIT_LAKE_WRITE
    finally:
        if process.poll() is None:
            stop_subprocess(process)
    log = log_path.read_text()
    assert f"{changelog}" in log and "the checkpoint stays at" in log, log[-3000:]
    after = load_checkpoint(lake)
    assert after is not None and after.position == durable.position  # not one transaction of B past it

    shown = CliRunner().invoke(app, ["status", "--config", str(config_path)])
    assert shown.exit_code == 0, shown.output
    assert "capture: failed" in shown.output and str(changelog) in shown.output, shown.output
    local = read_status(lake, local_status_path(config)) or {}
    assert local.get("state") == "failed" and local.get("lake_error")    # the local copy answered

    changelog.unlink()                                               # the lake is repaired
    changelog.with_name("changelog.aside").rename(changelog)
    shutil.rmtree(status_json)
    source.update(inserted[:3] + seeded[10:12], "c")                 # C: more while the capture is down
    source.delete(inserted[3:5])
    end = master_position(db)
    process = start_subprocess(config_path, log_path)
    try:
        wait_for(checkpoint_reached(config, end), 60, "the restarted capture to catch up")
    finally:
        assert stop_subprocess(process) == 0, log_path.read_text()[-3000:]
    return start, end


def outage_config(make_config: MakeConfig, lake_dir: Path, schema: str, tmp_path: Path) -> PipelineConfig:
    return make_config(lake_dir, include_schema_rules(schema), full_load={"chunk_rows": 1000},
                       capture={"flush_seconds": 0.2, "spill_dir": str(tmp_path / "spill")}, lake={"retries": 2})


def test_a_change_log_folder_that_cannot_be_written_stops_the_capture_and_loses_nothing(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: MakeConfig, tmp_path: Path
) -> None:
    """The change log after the restart: every committed change exactly once (stock-library oracle)."""
    config = outage_config(make_config, lake_dir, source_db, tmp_path)
    start, end = outage(mariadb, Source(mariadb, source_db), config, tmp_path)
    oracle = oracle_changes(mariadb, source_db, start, end)
    assert len(oracle) == (5 + 5 + 2) + (20 + 25 + 5) + (5 + 2)       # A + B + C
    assert comparable(captured(config)) == comparable(oracle)


@pytest.mark.slow
@pytest.mark.spark
def test_after_a_change_log_outage_the_merged_lake_equals_the_source(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: MakeConfig, tmp_path: Path, spark: Any
) -> None:
    """The same outage with a full load taken while the capture runs, then the merge: value by value."""
    config = outage_config(make_config, lake_dir, source_db, tmp_path)
    source = Source(mariadb, source_db)
    outage(mariadb, source, config, tmp_path, after_start=lambda: run_full_load(config, spark))
    run_merge(spark, config, available_now=True)
    expected = source.rows()
    assert len(expected) == 30 + 5 + 20 - 2 - 5 - 2
    assert (1, "o1", Decimal("2.50"), "n1a") in expected and (11, "o1", Decimal("13.50"), "n11bc") in expected
    assert lake_rows(spark, config, source_db) == expected


@contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (skips the test when mounting is not permitted)."""
    path.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> Path:
    """Write a file in ``folder`` until the file system is full (ENOSPC); the file."""
    filler = folder / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_a_full_lake_file_system_stops_the_capture_and_loses_nothing(
    mariadb: LocalMariaDB, source_db: str, make_config: MakeConfig, tmp_path: Path
) -> None:
    source = Source(mariadb, source_db)
    seeded = source.insert(10)
    with small_tmpfs(tmp_path / "fs", "16m") as mount:
        lake_dir = mount / "lake"
        config = outage_config(make_config, lake_dir, source_db, tmp_path)
        config_path = write_config(config, tmp_path / "capture.yaml")
        log_path = tmp_path / "capture.log"
        lake = Lake.from_config(config)
        start = master_position(mariadb)
        process = start_subprocess(config_path, log_path)
        try:
            wait_for(lambda: (read_status(lake) or {}).get("state") == "running", 60, "the capture to run")
            wait_for(checkpoint_reached(config, start), 30, "the capture to be caught up")
            durable = load_checkpoint(lake)
            filler = fill(mount)                                       # the disk is full
            inserted = source.insert(20)
            source.update(inserted[:10] + seeded, "f")
            source.delete(inserted[10:15])
            assert process.wait(timeout=60) == EXIT_LAKE_WRITE
        finally:
            if process.poll() is None:
                stop_subprocess(process)
        log = log_path.read_text()
        assert "No space left on device" in log and f"{lake_dir}/_binlake/" in log, log[-3000:]
        assert durable is not None and load_checkpoint(lake) == durable
        assert (read_status(lake, local_status_path(config)) or {}).get("state") == "failed"

        filler.unlink()                                                # room again
        end = master_position(mariadb)
        process = start_subprocess(config_path, log_path)
        try:
            wait_for(checkpoint_reached(config, end), 60, "the restarted capture to catch up")
        finally:
            assert stop_subprocess(process) == 0, log_path.read_text()[-3000:]
        oracle = oracle_changes(mariadb, source_db, start, end)
        assert len(oracle) == 20 + 20 + 5
        assert comparable(captured(config)) == comparable(oracle)
