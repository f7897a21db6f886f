"""The full load's SparkSession, started only when a table needs Spark.

With ``full_load.reader: direct`` on a local lake and a local master, a load needs no Spark at
all: delta-rs creates and commits the tables (:mod:`binlake.snapshot.deltars`) and the chunks are
read and written by the driver's chunk threads (:func:`binlake.snapshot.direct.write_chunk` —
ConnectorX, pyarrow casts and Parquet writing release the GIL, so they run in parallel as Spark's
local task threads would). Starting a SparkSession with Delta's extension costs about 6.5 CPU-s
on this machine (the SparkContext 2.3, the SQL session and Delta 4.1; Python workers more), a
large part of a whole ``spark-submit`` of a 1M-row table, so :class:`SparkOnDemand` starts it on
first use — a table the direct path cannot write (an add-column rule, column mapping, a cluster
master whose executors run the tasks), TRUNCATE, a resumed chunk read from the change feed.
The job's session settings (:func:`binlake.snapshot.job.job_spark_settings`) are applied then.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

_LOCAL = re.compile(r"^local(?:\[(\*|\d+)(?:,\s*\d+)?\])?$")


def local_parallelism(master: str | None) -> int | None:
    """The task slots of a local master (``local`` 1, ``local[4]`` 4, ``local[*]`` the cores), None for
    any other master (its executors run the tasks) or none known."""
    match = _LOCAL.match((master or "").strip())
    if match is None:
        return None
    slots = match.group(1)
    if slots is None:
        return 1
    return (os.cpu_count() or 1) if slots == "*" else max(1, int(slots))


class SparkOnDemand:
    """A SparkSession started by ``start`` on the first :meth:`get` (thread-safe), then configured once
    (:meth:`configure_with`); ``master`` decides :meth:`parallelism` before it starts."""

    def __init__(self, start: Callable[[], SparkSession], master: str | None) -> None:
        self._start = start
        self._configure: Callable[[SparkSession], None] = lambda _: None
        self._session: SparkSession | None = None
        self._lock = threading.Lock()
        self.master = master

    @classmethod
    def running(cls, session: SparkSession) -> SparkOnDemand:
        """An already started session (tests, notebooks)."""
        on_demand = cls(lambda: session, str(session.sparkContext.master))
        on_demand._session = session
        return on_demand

    def configure_with(self, configure: Callable[[SparkSession], None]) -> None:
        """Apply ``configure`` to the session when it starts (now, when it has)."""
        with self._lock:
            self._configure = configure
            if self._session is not None:
                configure(self._session)

    @property
    def started(self) -> bool:
        return self._session is not None

    def get(self) -> SparkSession:
        with self._lock:
            if self._session is None:
                log.info("starting the Spark session (master %s)", self.master or "from spark-submit")
                session = self._start()
                self._configure(session)
                self._session = session
            return self._session

    def parallelism(self) -> int:
        """Chunks at once by default: a local master's slots without starting Spark, else Spark's default."""
        if not self.started:
            slots = local_parallelism(self.master)
            if slots is not None:
                return slots
        return int(self.get().sparkContext.defaultParallelism)

    def stop(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.stop()
                self._session = None


def submitted_master() -> str | None:
    """The master ``spark-submit`` was given (its JVM's ``spark.master``), read without starting Spark;
    None outside ``spark-submit``."""
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        return None
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()  # connects to spark-submit's JVM (already running); starts nothing
    master = SparkConf().get("spark.master", None)
    return None if master is None else str(master)
