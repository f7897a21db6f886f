"""``binlake validate --every DURATION [--repair]``: the background verifier.

Rounds, one after the other, until SIGTERM/SIGINT:

1. **Validate** every selected table (:func:`binlake.validation.job.validate`), its source reads
   paced by ``validation.max_chunks_per_second`` in steps of ``validation.step_chunks`` chunks.
2. **Repair** (``--repair``): a table found ``DIFFERENT`` gets one online resync of exactly its
   differing chunks, started right after its validation; the merge applies it, the next round
   checks it.
3. **Record** each table once every one of its chunks was checked
   (:mod:`binlake.verification`): ``binlake status`` shows ``verified_as_of``.
4. **Sleep** until DURATION after the round started (a round longer than DURATION is followed at
   once by the next).

A stop request ends the step being read, then the loop: the tables finished in the round are
recorded, the one being validated is not (its record keeps its previous complete run). A round
that fails (the source or the lake unreachable) is logged and the next round tries again; a table
mapping that cannot be replicated ends the loop.

The same loop runs inside the continuous merge when ``merge.verify_every_minutes`` is set
(:class:`MergeVerifier`; ``merge.verify_repair`` for ``--repair``, ``merge.verify_wait_seconds`` for
``--wait``): on a thread of its own, with a
Spark session of its own (its jobs in the scheduler pool ``binlake-verifier``), started after the
merge query and stopped with it (between steps, as SIGTERM stops the command).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType

from pyspark.sql import SparkSession

from binlake.config import PipelineConfig
from binlake.names import LakeNameError, TargetCollisionError
from binlake.validation.job import validate
from binlake.validation.pace import Pacer, Stopped
from binlake.validation.report import CHECKSUM, TableValidation, format_report

log = logging.getLogger("binlake.validate")

VERIFIER_POOL = "binlake-verifier"
"""The Spark scheduler pool of the merge's verifier jobs (under FAIR scheduling they share the cores
with the merge's pools instead of queueing in front of its batches)."""

RoundHook = Callable[[int, Sequence[TableValidation]], None]


def run_every(
    spark: SparkSession, config: PipelineConfig, interval_seconds: float, stop: threading.Event, *,
    repair: bool = False, wait_seconds: float = 0.0, method: str = CHECKSUM,
    clock: Callable[[], float] = time.monotonic, after_round: RoundHook | None = None,
) -> int:
    """Run rounds (see the module docstring) until ``stop`` is set; returns the rounds completed.

    ``after_round(n, results)`` is called after round ``n`` (1-based) completed and was recorded.
    """
    if interval_seconds <= 0:
        raise ValueError(f"interval_seconds must be > 0, got {interval_seconds}")
    completed = 0
    while not stop.is_set():
        started = clock()
        pacer = Pacer(config.validation.max_chunks_per_second, stop, clock)
        log.info("verifier: round %d starting", completed + 1)
        try:
            results = validate(spark, config, wait_seconds, clock, method, repair=repair, pacer=pacer)
        except Stopped:
            log.info("verifier: stopped during round %d (its tables finished so far are recorded)", completed + 1)
            break
        except (TargetCollisionError, LakeNameError):
            raise
        except Exception:  # the source or the lake may be back by the next round
            log.exception("verifier: round %d failed; the next round tries again", completed + 1)
        else:
            completed += 1
            print(format_report(results), flush=True)
            log.info("verifier: round %d done in %.1f s: %s", completed, clock() - started, _summary(results))
            if after_round is not None:
                after_round(completed, results)
        stop.wait(max(0.0, interval_seconds - (clock() - started)))
    log.info("verifier: stopped after %d complete round(s)", completed)
    return completed


def _summary(results: Sequence[TableValidation]) -> str:
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no table selected"


def stop_on_signals(signals: Sequence[int] = (signal.SIGTERM, signal.SIGINT)) -> threading.Event:
    """An event set by the first of ``signals`` (installed in the calling, main, thread); the
    handlers that were there before come back with it, so a second signal stops at once."""
    stop = threading.Event()
    previous = {signum: signal.getsignal(signum) for signum in signals}

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("verifier: %s received; stopping after the current step (again: at once)",
                 signal.Signals(signum).name)
        stop.set()
        for number, before in previous.items():
            signal.signal(number, signal.SIG_DFL if before is None else before)

    for signum in signals:
        signal.signal(signum, handler)
    return stop


class MergeVerifier:
    """The background verifier of the continuous merge (``merge.verify_every_minutes``, module
    docstring). :meth:`start` does nothing when the key is 0; :meth:`stop` asks the loop to stop and
    waits for it. An error that ends the loop (a table mapping that cannot be replicated) is logged;
    the merge goes on."""

    def __init__(self, spark: SparkSession, config: PipelineConfig) -> None:
        self.spark = spark
        self.config = config
        self.interval_seconds = config.merge.verify_every_minutes * 60.0
        self.rounds = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.interval_seconds <= 0 or self._thread is not None:
            return
        log.info("verifier: validating every selected table every %g minute(s) beside the merge%s",
                 self.config.merge.verify_every_minutes, ", repairing" if self.config.merge.verify_repair else "")
        self._thread = threading.Thread(target=self._run, name="binlake-verifier", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from binlake.sparkjvm import clone_session, set_active_session

        try:
            session = clone_session(self.spark)
            set_active_session(session)
            session.sparkContext.setLocalProperty("spark.scheduler.pool", VERIFIER_POOL)
            self.rounds = run_every(session, self.config, self.interval_seconds, self._stop,
                                    repair=self.config.merge.verify_repair,
                                    wait_seconds=self.config.merge.verify_wait_seconds)
        except Exception:
            log.exception("verifier: stopped by this error; the merge goes on without it (fix the cause and "
                          "restart the merge, or run binlake validate --every)")

    def stop(self, timeout_seconds: float = 120.0) -> None:
        """Stop the loop after its current step and wait (at most ``timeout_seconds``) for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_seconds)
            if self._thread.is_alive():
                log.warning("verifier: still in a step after %.0f s; left to finish on its own", timeout_seconds)
