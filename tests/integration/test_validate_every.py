"""The background verifier (``binlake validate --every … --repair``) on a real MariaDB + Spark + Delta:
its record says the position each table was verified equal as of, with the right counts; a lake row
corrupted behind binlake's back (an UPDATE of the Delta table itself) is found in exactly its chunk by
the next round, repaired by a resync of that chunk only, and the lake equals the source again value
by value — which ``binlake status`` shows. A stop request ends a round between steps and records
nothing for the table it was reading.

The capture runs in a thread and the merge in-process with ``availableNow`` (as test_resync does); the
verifier runs in a thread, stopped through the event its SIGTERM handler sets.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from capture_support import CaptureThread, caught_up, wait_for, write_config
from conftest import include_schema_rules
from merge_helpers import rows, run_merge

from binlake.chunks import ChunkRange
from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.lake import Lake, table_key
from binlake.resync import store
from binlake.snapshot.job import run_full_load
from binlake.status import pipeline_status, render_text, source_end_lsn
from binlake.validation import TableValidation, validate
from binlake.validation.every import run_every
from binlake.validation.pace import Pacer, Stopped
from binlake.verification import VerificationRecord, read_record

pytestmark = pytest.mark.spark
ROOT = Path(__file__).resolve().parents[2]

ITEMS = "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20), qty INT)"


def _rounds(spark: Any, config: PipelineConfig, rounds: int, repair: bool) -> list[Sequence[TableValidation]]:
    """Run the verifier every 0.5 s in a thread; stop it (as its SIGTERM handler does) after ``rounds``."""
    stop, seen = threading.Event(), []

    def after_round(n: int, results: Sequence[TableValidation]) -> None:
        seen.append(results)
        if n == rounds:
            stop.set()

    done: list[int] = []
    thread = threading.Thread(target=lambda: done.append(
        run_every(spark, config, 0.5, stop, repair=repair, after_round=after_round)))
    thread.start()
    thread.join(300)
    assert not thread.is_alive() and done == [rounds]
    return seen


def _record(config: PipelineConfig, db: str) -> VerificationRecord:
    record = read_record(Lake.from_config(config), db, "items")
    assert record is not None
    return record


def test_the_verifier_records_verified_as_of_finds_a_corrupted_chunk_and_repairs_it(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any
) -> None:
    mariadb.execute(ITEMS, source_db)
    mariadb.execute("INSERT INTO items VALUES " + ",".join(f"({i}, 'i{i}', {i})" for i in range(1, 1001)), source_db)
    config: PipelineConfig = make_config(
        lake_dir, include_schema_rules(source_db, "items"), full_load={"chunk_rows": 200},
        capture={"flush_seconds": 0.2}, merge={"optimize_every_batches": 0},
        validation={"step_chunks": 3, "max_chunks_per_second": 100})
    capture = CaptureThread(config).start()
    try:
        run_full_load(config, spark)
        mariadb.execute("UPDATE items SET name = 'streamed' WHERE id = 900", source_db)  # the merge joins the table
        caught_up(config, mariadb, capture)
        run_merge(spark, config)
        end = source_end_lsn(config)

        # two rounds, then stopped: the table equal as of the binlog end (nothing was written since)
        first, second = _rounds(spark, config, 2, repair=True)
        assert [(r.status, r.chunks, r.checksum_chunks) for r in [*first, *second]] == [("OK", 5, 5)] * 2
        record = _record(config, source_db)
        assert record.last_equal == record.last_run
        run = record.last_run
        assert (run.source, run.table, run.status, run.as_of_lsn) == (
            f"{source_db}.items", f"{source_db}.items", "OK", end)
        assert (run.chunks, run.checksum_chunks, run.differing_chunks, run.mismatched, run.missing, run.extra,
                run.in_flight, run.repair) == (5, 5, (), 0, 0, 0, 0, None)
        assert run.started_at <= run.finished_at

        # a stop request ends the next validation after its first step: nothing more is recorded
        stopped = Pacer(stop=threading.Event())
        stopped.stop.set()
        with pytest.raises(Stopped):
            validate(spark, config, pacer=stopped)
        assert _record(config, source_db) == record

        # a lake row changed behind binlake's back, in chunk 3 ([601, 801)); its _binlake_lsn unchanged
        path = Lake.from_config(config).uri(table_key(source_db, "items"))
        spark.sql(f"UPDATE delta.`{path}` SET qty = -7 WHERE id = 650")
        (found,) = _rounds(spark, config, 1, repair=True)
        assert [(r.status, r.differing_chunks, r.mismatched, r.missing, r.extra) for r in found] == [
            ("DIFFERENT", [3], 1, 0, 0)]
        assert [(c.start, c.end) for c in map(ChunkRange.from_dict, found[0].repair_ranges)] == [((601,), (801,))]
        differs = _record(config, source_db)
        assert (differs.last_run.status, differs.last_run.differing_chunks, differs.last_run.mismatched) == (
            "DIFFERENT", (3,), 1)
        assert differs.last_run.repair is not None and differs.last_equal == record.last_equal  # claim kept
        text = render_text(pipeline_status(config))
        assert f"{source_db}.items: 1 of 5 chunk(s) differ (1 mismatched, 0 missing, 0 extra)" in text
        assert f"repair resync {differs.last_run.repair} started" in text

        # the merge applies the repair's one chunk; the next round finds the table equal again
        caught_up(config, mariadb, capture)
        run_merge(spark, config)
        (again,) = _rounds(spark, config, 1, repair=True)
        assert [r.status for r in again] == ["OK"]
    finally:
        capture.stop()
    repaired = _record(config, source_db)
    assert repaired.last_equal == repaired.last_run and repaired.verified_as_of is not None
    assert repaired.verified_as_of >= record.verified_as_of  # type: ignore[operator]
    source = [tuple(r) for r in mariadb.execute("SELECT id, name, qty FROM items ORDER BY id", source_db)]
    assert rows(spark, path, "id", "name", "qty") == source
    status = pipeline_status(config)
    (table,) = [t for t in status["tables"] if t["table"] == f"{source_db}.items"]
    assert (table["verified_as_of"]["lsn"], table["last_verification"]["status"]) == (repaired.verified_as_of, "OK")
    assert "DIFFERENT" not in render_text(status)


@pytest.mark.slow
def test_the_verifier_command_runs_rounds_until_sigterm_and_exits_cleanly(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any, tmp_path: Path
) -> None:
    mariadb.execute(ITEMS, source_db)
    mariadb.execute("INSERT INTO items VALUES " + ",".join(f"({i}, 'i{i}', {i})" for i in range(1, 501)), source_db)
    config: PipelineConfig = make_config(lake_dir, include_schema_rules(source_db, "items"),
                                         full_load={"chunk_rows": 100},
                                         validation={"step_chunks": 1, "max_chunks_per_second": 2})
    run_full_load(config, spark)
    log, config_file = tmp_path / "verifier.log", write_config(config, tmp_path / "c.yaml")
    with log.open("ab") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "binlake.cli", "validate", "--config", str(config_file), "--every", "1s"],
            stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
    try:
        finished: set[str] = set()

        def two_rounds() -> bool:
            record = read_record(Lake.from_config(config), source_db, "items")
            if record is not None:
                finished.add(record.last_run.finished_at)
            assert process.poll() is None, log.read_text()[-3000:]
            return len(finished) >= 2

        wait_for(two_rounds, 300, "two rounds of the verifier")
        time.sleep(1.0)  # most likely inside a step or a paced pause of the third round
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 0, log.read_text()[-3000:]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
    text = log.read_text()
    assert "SIGTERM received; stopping after the current step (again: at once)" in text and "verifier: stopped" in text
    record = _record(config, source_db)
    assert (record.last_run.status, record.last_run.chunks, record.last_equal) == ("OK", 5, record.last_run)
    assert "Traceback" not in text


@pytest.mark.slow  # 182 s at a load average of ~14
def test_the_continuous_merge_runs_the_verifier_which_finds_and_repairs_a_corrupted_row(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any, spark: Any
) -> None:
    """``merge.verify_every_minutes`` + ``merge.verify_repair``: the continuous merge runs the
    verifier on its own thread; a lake row corrupted while it runs — and while the source is written
    all the time — is found, repaired by a resync the same merge applies, recorded equal again; the
    verifier stops with the merge."""
    mariadb.execute(ITEMS, source_db)
    mariadb.execute("INSERT INTO items VALUES " + ",".join(f"({i}, 'i{i}', {i})" for i in range(1, 1001)), source_db)
    config: PipelineConfig = make_config(
        lake_dir, include_schema_rules(source_db, "items"), full_load={"chunk_rows": 200},
        capture={"flush_seconds": 0.2},
        merge={"optimize_every_batches": 0, "trigger_seconds": 1, "verify_every_minutes": 0.02, "verify_repair": True,
               "verify_wait_seconds": 60},
        validation={"step_chunks": 3, "max_chunks_per_second": 100})
    capture = CaptureThread(config).start()
    path = Lake.from_config(config).uri(table_key(source_db, "items"))
    progress: dict[str, Any] = {}

    def watch() -> None:
        """Corrupt a row once the verifier has recorded the table equal; wait for the repair it then
        starts (a resync of the table: only a round that found it DIFFERENT makes one) to be applied,
        then for a round started after that to record the table equal again; then stop the merge.
        Rounds take about a second, so their statuses are not sampled: the resync is the trace."""
        lake = Lake.from_config(config)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            record = read_record(lake, source_db, "items")
            run = record.last_run if record is not None else None
            if run is not None and "corrupted" not in progress and run.status == "OK":
                progress["before"] = store.table_resyncs(lake, source_db, "items")
                progress["corrupted"] = datetime.now(UTC).isoformat()
                spark.sql(f"UPDATE delta.`{path}` SET qty = -7 WHERE id = 650")  # behind binlake's back
            elif "corrupted" in progress and "repaired" not in progress:
                resyncs = store.table_resyncs(lake, source_db, "items")
                if resyncs and all(store.read_applied(lake, r).covers(r) for r in resyncs):
                    progress["repaired"], progress["resyncs"] = datetime.now(UTC).isoformat(), resyncs
            elif run is not None and "repaired" in progress and run.started_at > progress["repaired"] \
                    and run.status == "OK":
                progress["equal_again"] = run
                break
            # steady writes at the source: the lake is always a little behind its latest snapshot, so the
            # verifier must wait for the merge (verify_wait_seconds) to tell the corrupted row from one in flight
            mariadb.execute("INSERT INTO beats.beat VALUES ()")
            time.sleep(0.5)
        for query in spark.streams.active:
            query.stop()

    try:
        run_full_load(config, spark)
        mariadb.execute("UPDATE items SET name = 'streamed' WHERE id = 900", source_db)
        caught_up(config, mariadb, capture)
        run_merge(spark, config)  # joined
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        from binlake.merge.job import run

        run(spark, config, available_now=False)  # until the watcher stops it
        watcher.join(10)
    finally:
        capture.stop()
    assert progress["before"] == [] and "equal_again" in progress, progress
    (resync,) = progress["resyncs"]  # one repair, of the one differing chunk: the one holding id 650
    assert [(c.range.start, c.range.end) for c in resync.chunks] == [((601,), (801,))]
    record = _record(config, source_db)
    assert record.last_equal == record.last_run and record.verified_as_of is not None
    assert rows(spark, path) == [tuple(r) for r in mariadb.execute("SELECT * FROM items ORDER BY id", source_db)]
    assert not any(t.name == "binlake-verifier" and t.is_alive() for t in threading.enumerate())
    source = [tuple(r) for r in mariadb.execute("SELECT id, name, qty FROM items ORDER BY id", source_db)]
    assert rows(spark, path, "id", "name", "qty") == source
