"""Tables of a micro-batch applied concurrently (``merge.max_parallel_tables``).

A table's part of a batch is independent of every other table's (own Delta log, own transactions,
own tombstones), so :class:`TablePool` runs one function per table on up to ``workers`` threads:

* each worker thread has its own session (:func:`binlake.merge.txn.isolated_session`, made once
  per thread and reused across batches), so the transaction settings of one table's step never
  tag another table's commit;
* each worker thread submits its Spark jobs in its own FAIR scheduler pool
  (``binlake-merge-<n>``; with ``spark.scheduler.mode=FAIR``), so a small table's MERGE is not
  queued behind the tasks of a big one;
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
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TypeVar

from pyspark.sql import SparkSession

from binlake.merge.txn import activate, isolated_session

T = TypeVar("T")
R = TypeVar("R")

POOL_PROPERTY = "spark.scheduler.pool"


class TablePool:
    """Runs ``fn(session, item)`` for each item, concurrently (see the module docstring)."""

    def __init__(self, spark: SparkSession, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.spark = spark
        self.workers = workers
        self._local = threading.local()
        self._names = itertools.count()
        self._executor = (ThreadPoolExecutor(workers, thread_name_prefix="binlake-merge-table")
                          if workers > 1 else None)

    def map(self, fn: Callable[[SparkSession, T], R], items: Sequence[T]) -> list[R]:
        if self._executor is None or len(items) <= 1:
            return [fn(self.spark, item) for item in items]
        jsc = self.spark.sparkContext._jsc.sc()
        properties = jsc.getLocalProperties().clone()  # the calling (stream) thread's, as it is now

        def run(item: T) -> R:
            jsc.setLocalProperties(properties)
            return fn(self._session(), item)

        futures: list[Future[R]] = [self._executor.submit(run, item) for item in items]
        wait(futures)
        return [future.result() for future in futures]  # the first failure in input order raises

    def _session(self) -> SparkSession:
        """This worker thread's session (made on its first task) in this worker's scheduler pool."""
        session: SparkSession | None = getattr(self._local, "session", None)
        if session is None:
            session = isolated_session(self.spark)
            self._local.session = session
            self._local.pool = f"binlake-merge-{next(self._names)}"
        activate(session)
        self.spark.sparkContext.setLocalProperty(POOL_PROPERTY, self._local.pool)
        return session

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
