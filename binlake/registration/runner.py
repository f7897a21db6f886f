"""Registration in the background: the full load and the merge ask, a process of its own registers.

:class:`RegistrationRunner` starts ``python -m binlake.registration.worker`` (one
:func:`~binlake.registration.sync.run_sync`, the config passed as JSON on stdin: it holds no
secret) whenever the set of lake tables may have changed — at the merge's start, after a batch that
applied DDL or joined a table (:func:`tables_may_have_changed`), after resync chunks the merge
applied (:meth:`after_chunks`), at the end of a full load. A ``deferred`` runner (an ``--available-now`` merge
run) only notes requests and registers once, in :meth:`wait` at the run's end. Its own
process (with its own SparkSession for Hive) means a metastore or Glue endpoint that is down, slow
or refusing can delay registration only: replication never waits for it, and the merge's session
never talks to a metastore.

One process at a time; a request while one runs is remembered and served when it ends. A failed
sync (exit status not 0, or over ``lake.catalog_timeout_seconds``: then it is killed) is retried
after ``lake.catalog_retry_seconds`` by the merge's idle loop (:meth:`poll`); its error is in
``_binlake/registration.json`` for ``binlake status``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from binlake.config import CatalogKind, PipelineConfig

log = logging.getLogger(__name__)

_GATEWAY_ENV = ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET")  # the worker starts its own JVM


class _Metrics(Protocol):
    """What the runner reads of a merge batch's table metrics (:class:`binlake.merge.metrics.TableMetrics`)."""

    @property
    def status(self) -> str: ...
    @property
    def ddl(self) -> int: ...


def tables_may_have_changed(metrics: Sequence[_Metrics]) -> bool:
    """Did a merge batch apply DDL to a table or join one (a new table, a table born in the stream)?"""
    return any(m.ddl > 0 or m.status == "joined" for m in metrics)


def worker_command() -> list[str]:
    return [sys.executable, "-m", "binlake.registration.worker"]


class RegistrationRunner:
    """Starts and watches the registration process (see the module docstring); a no-op with
    ``lake.catalog: none``. Thread-safe: the merge's batch function and its main loop both call it."""

    def __init__(self, config: PipelineConfig, clock: Callable[[], float] = time.monotonic,
                 command: Callable[[], list[str]] = worker_command, deferred: bool = False) -> None:
        self.config = config
        self.deferred = deferred  # requests only noted until wait() (an --available-now run: one sync at its end)
        self.enabled = config.lake.catalog != CatalogKind.NONE
        self._clock = clock
        self._command = command
        self._child: subprocess.Popen[bytes] | None = None
        self._started = 0.0
        self._wanted = False
        self._not_before = 0.0
        self.failures = 0
        self._lock = threading.RLock()

    def request(self, reason: str) -> None:
        """Ask for a sync (soon: now, or when the running one ends)."""
        if not self.enabled:
            return
        log.info("catalog registration requested: %s", reason)
        with self._lock:
            self._wanted = True
            self._not_before = 0.0
            self.poll()

    def after_batch(self, metrics: Sequence[_Metrics]) -> None:
        """The merge's hook after each batch: request a sync when the batch may have changed the set of
        lake tables. Never raises (replication must not depend on registration)."""
        try:
            if tables_may_have_changed(metrics):
                self.request("a merge batch applied DDL or joined a table")
            else:
                self.poll()
        except Exception:
            log.exception("catalog registration could not be requested (replication goes on)")

    def after_chunks(self, applied: int) -> None:
        """The merge's hook after resync chunks were applied: one may have created the Delta table of a
        table born in the stream (:func:`binlake.merge.birth.join_from_chunk`). Never raises."""
        try:
            self.request(f"{applied} resync chunk(s) applied")
        except Exception:
            log.exception("catalog registration could not be requested (replication goes on)")

    def poll(self) -> None:
        """Reap a finished process, stop one over its time, start the next one that is due."""
        if not self.enabled:
            return
        with self._lock:
            self._poll()

    def _poll(self) -> None:
        if self._child is not None:
            code = self._child.poll()
            if code is None and self._clock() - self._started > self.config.lake.catalog_timeout_seconds:
                log.error("catalog registration ran over lake.catalog_timeout_seconds (%.0f s): stopping it",
                          self.config.lake.catalog_timeout_seconds)
                self._child.kill()
                code = self._child.wait()
            if code is None:
                return
            self._child = None
            if code == 0:
                self.failures = 0
            else:
                self.failures += 1
                self._wanted = True
                self._not_before = self._clock() + self.config.lake.catalog_retry_seconds
                log.error("catalog registration failed (exit status %d, see its log lines and `binlake status`): "
                          "retried in %.0f s; replication goes on", code, self.config.lake.catalog_retry_seconds)
        if self._wanted and not self.deferred and self._clock() >= self._not_before:
            self._start()

    def _start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in _GATEWAY_ENV}
        payload = json.dumps(self.config.model_dump(mode="json")).encode()
        self._wanted = False
        try:
            child = subprocess.Popen(self._command(), stdin=subprocess.PIPE, env=env)
            assert child.stdin is not None
            child.stdin.write(payload)
            child.stdin.close()
        except OSError as exc:
            log.error("catalog registration could not start: %s: retried in %.0f s", exc,
                      self.config.lake.catalog_retry_seconds)
            self._wanted, self._not_before = True, self._clock() + self.config.lake.catalog_retry_seconds
            return
        self._child, self._started = child, self._clock()

    @property
    def running(self) -> bool:
        return self._child is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the running process and a pending request (not for retries of failures): True
        when the last one succeeded. ``timeout``: at most so many seconds (default
        ``lake.catalog_timeout_seconds``)."""
        if not self.enabled:
            return True
        self.deferred = False
        deadline = self._clock() + (self.config.lake.catalog_timeout_seconds if timeout is None else timeout)
        failures = self.failures
        while self._clock() < deadline:
            self.poll()
            if self._child is None and (not self._wanted or self.failures > failures):
                return self.failures == 0
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        """Stop a running process (the next start registers everything again)."""
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        if self._child is not None and self._child.poll() is None:
            self._child.terminate()
            try:
                self._child.wait(30)
            except subprocess.TimeoutExpired:
                self._child.kill()
                self._child.wait()
        self._child = None
