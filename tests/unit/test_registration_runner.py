"""binlake.registration.runner: one registration process at a time, requests while one runs served
after it, failures retried after lake.catalog_retry_seconds, a process over its time killed — with
real child processes (a tiny Python program stands in for the worker)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from binlake.config import PipelineConfig, parse_config
from binlake.merge.metrics import TableMetrics
from binlake.registration.runner import RegistrationRunner, tables_may_have_changed


def config(tmp_path: Path, catalog: str = "glue", **lake: Any) -> PipelineConfig:
    return parse_config({"lake": {"root": str(tmp_path / "lake"), "catalog": catalog, **lake},
                         "table_mappings": {"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1",
                                                       "object-locator": {"schema-name": "shop", "table-name": "%"},
                                                       "rule-action": "include"}]}}, tmp_path / "c.yaml")


def program(tmp_path: Path, body: str) -> list[str]:
    """A worker stand-in: appends the config it got on stdin to runs.txt, then runs ``body``."""
    script = tmp_path / "worker.py"
    script.write_text("import json, sys, time\n"
                      f"open({str(tmp_path / 'runs.txt')!r}, 'a').write(json.loads(sys.stdin.read())['lake']['catalog']"
                      " + '\\n')\n" + body + "\n")
    return [sys.executable, str(script)]


def runs(tmp_path: Path) -> int:
    path = tmp_path / "runs.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_none_does_nothing(tmp_path: Path) -> None:
    runner = RegistrationRunner(config(tmp_path, "none"), command=lambda: program(tmp_path, "sys.exit(0)"))
    runner.request("x")
    assert not runner.running and runner.wait() and runs(tmp_path) == 0


def test_a_request_runs_the_worker_with_the_config_on_stdin(tmp_path: Path) -> None:
    runner = RegistrationRunner(config(tmp_path), command=lambda: program(tmp_path, "sys.exit(0)"))
    runner.request("merge start")
    assert runner.wait(30)
    assert (tmp_path / "runs.txt").read_text() == "glue\n"


def test_requests_while_one_runs_give_one_more_run(tmp_path: Path) -> None:
    runner = RegistrationRunner(config(tmp_path), command=lambda: program(tmp_path, "time.sleep(1)"))
    for _ in range(3):
        runner.request("batch")
    assert runner.wait(30)
    assert runs(tmp_path) == 2


def test_a_failure_is_retried_after_the_retry_time(tmp_path: Path) -> None:
    clock = Clock()
    runner = RegistrationRunner(config(tmp_path, catalog_retry_seconds=60), clock,
                                command=lambda: program(tmp_path, "sys.exit(1)"))
    runner.request("full load done")
    assert runner._child is not None
    runner._child.wait(30)
    runner.poll()
    assert runner.failures == 1 and not runner.running
    clock.now = 59
    runner.poll()
    assert not runner.running and runs(tmp_path) == 1
    clock.now = 61
    runner.poll()
    assert runner.running
    assert runner._child is not None and runner._child.wait(30) == 1
    runner.poll()
    assert runner.failures == 2 and runs(tmp_path) == 2


def test_wait_returns_false_on_failure_without_waiting_for_the_retry(tmp_path: Path) -> None:
    runner = RegistrationRunner(config(tmp_path), command=lambda: program(tmp_path, "sys.exit(1)"))
    runner.request("full load done")
    assert runner.wait(30) is False and runs(tmp_path) == 1


def test_a_process_over_its_time_is_killed_and_counts_as_failed(tmp_path: Path) -> None:
    clock = Clock()
    runner = RegistrationRunner(config(tmp_path, catalog_timeout_seconds=5), clock,
                                command=lambda: program(tmp_path, "time.sleep(600)"))
    runner.request("merge start")
    clock.now = 6
    runner.poll()
    assert runner.failures == 1 and not runner.running


def test_which_batches_ask_for_registration() -> None:
    merged = TableMetrics(1, "shop", "t", "merged", records=3)
    assert not tables_may_have_changed([merged])
    assert tables_may_have_changed([merged, TableMetrics(1, "shop", "u", "merged", ddl=1)])
    assert tables_may_have_changed([TableMetrics(1, "shop", "n", "joined")])


def test_the_config_passed_round_trips(tmp_path: Path) -> None:
    original = config(tmp_path, glue_endpoint="http://127.0.0.1:5000")
    again = parse_config(json.loads(json.dumps(original.model_dump(mode="json"))), Path("<registration>"))
    assert again == original


def test_deferred_requests_run_once_at_wait(tmp_path: Path) -> None:
    runner = RegistrationRunner(config(tmp_path), command=lambda: program(tmp_path, "sys.exit(0)"), deferred=True)
    runner.request("merge start")
    runner.after_batch([TableMetrics(1, "shop", "u", "merged", ddl=1)])
    runner.poll()
    assert not runner.running and runs(tmp_path) == 0
    assert runner.wait(30) and runs(tmp_path) == 1


def test_applied_resync_chunks_ask_for_registration(tmp_path: Path) -> None:
    runner = RegistrationRunner(config(tmp_path), command=lambda: program(tmp_path, "sys.exit(0)"))
    runner.after_chunks(2)
    assert runner.wait(30) and runs(tmp_path) == 1
