"""Tables of a micro-batch applied concurrently (``merge.max_parallel_tables``).

A table's part of a batch is independent of every other table's (own Delta log, own transactions,
own tombstones), so :class:`TablePool` runs one function per table on up to ``workers`` threads:

* each running table has a session no other thread uses meanwhile
  (:func:`binlake.merge.txn.isolated_session`; cloned once, kept for later batches), so the
  transaction settings of one table's step never tag another table's commit;
* each session's Spark jobs go to its own FAIR scheduler pool (``binlake-merge-<n>``; with
  ``spark.scheduler.mode=FAIR``), so a small table's MERGE is not queued behind the tasks of a
  big one;
* the worker inherits the local properties of the calling thread (the stream's job group, so
  stopping the query cancels its jobs too);
* per table the steps still run in order, one thread at a time;
* :meth:`TablePool.map` returns once *every* table is done, failed or not — never while a worker
  may still commit — with the results in input order, and raises the error of the first failed
  table in input order (a replay of the batch then skips what the others committed).

With ``workers == 1`` the tables run one after the other in the calling thread on the caller's
session, exactly as without a pool.
"""

from __future__ import annotations

import itertools
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TypeVar

from pyspark.sql import SparkSession

from binlake.merge.txn import activate, isolated_session

T = TypeVar("T")
R = TypeVar("R")

POOL_PROPERTY = "spark.scheduler.pool"


class TablePool:
    """Runs ``fn(session, item)`` for each item, concurrently (see the module docstring).

    Worker threads live for one :meth:`map` call; the sessions outlive them (kept idle between
    batches, so each is cloned once), each used by one thread at a time."""

    def __init__(self, spark: SparkSession, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.spark = spark
        self.workers = workers
        self._idle: queue.SimpleQueue[tuple[SparkSession, str]] = queue.SimpleQueue()
        self._names = itertools.count()

    def map(self, fn: Callable[[SparkSession, T], R], items: Sequence[T]) -> list[R]:
        if self.workers == 1 or len(items) <= 1:
            return [fn(self.spark, item) for item in items]
        context = self.spark.sparkContext
        properties = context._jsc.sc().getLocalProperties().clone()  # the calling (stream) thread's, as now

        def run(item: T) -> R:
            session, pool = self._take()
            try:
                context._jsc.sc().setLocalProperties(properties.clone())  # own copy: the pool is set in it
                context.setLocalProperty(POOL_PROPERTY, pool)
                activate(session)
                return fn(session, item)
            finally:
                self._idle.put((session, pool))

        with ThreadPoolExecutor(min(self.workers, len(items)), thread_name_prefix="binlake-merge-table") as executor:
            futures: list[Future[R]] = [executor.submit(run, item) for item in items]
            wait(futures)
        return [future.result() for future in futures]  # the first failure in input order raises

    def _take(self) -> tuple[SparkSession, str]:
        """An idle session and its scheduler pool, or a new one."""
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return isolated_session(self.spark), f"binlake-merge-{next(self._names)}"
