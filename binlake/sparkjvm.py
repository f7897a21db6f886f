"""The one place binlake reaches into Spark's and Delta's JVM internals (classic Spark over py4j).

Everything here uses an API that is not public in PySpark or Delta's Python package, so it can
change in any release. Each function states the public behaviour it must match, and
``tests/integration/test_spark_jvm.py`` compares it with that behaviour on the same input:

* :func:`clone_session` — ``SparkSession.cloneSession()`` (JVM): a session with a copy of the
  parent's SQL conf. Public ``newSession()`` starts from the SparkContext's conf instead and
  would lose the merge's tuned settings.
* :func:`set_active_session` — ``SparkSession.setActiveSession`` (JVM, per thread): Delta and
  Spark look some things up through ``SparkSession.active``.
* :func:`committed_txn_version` — ``DeltaLog.forTable(...).update(...).transactions()``: the
  highest ``txn`` version an app id committed to a table. Public equivalent: the ``txn`` actions
  of the table's ``_delta_log`` (Delta protocol, *Transaction Identifiers*).

:func:`check_versions` runs when binlake builds a session: the Spark and Delta versions these
internals were tested with are :data:`TESTED`; another minor version logs a warning naming both,
another major version is refused (set ``BINLAKE_ALLOW_UNTESTED_SPARK=1`` to try anyway).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from typing import Any

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

TESTED = {"pyspark": (4, 2), "delta-spark": (4, 4)}
"""Per distribution, the ``(major, minor)`` these internals were tested with."""

ALLOW_UNTESTED_ENV = "BINLAKE_ALLOW_UNTESTED_SPARK"


class UntestedVersionError(RuntimeError):
    """The installed Spark or Delta has a major version these internals were never tested with."""


def major_minor(version: str) -> tuple[int, int]:
    """``"4.2.0"`` → ``(4, 2)``; ``"4.2.0.dev1"`` → ``(4, 2)`` (pure)."""
    parts = version.split(".")
    return int(parts[0]), int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def version_problem(distribution: str, installed: str) -> str | None:
    """Why ``installed`` of ``distribution`` is not a tested version, or None (pure)."""
    tested = TESTED[distribution]
    found = major_minor(installed)
    if found == tested:
        return None
    return (f"{distribution} {installed} is installed; binlake's Spark/Delta adapter "
            f"(binlake/sparkjvm.py) was tested with {tested[0]}.{tested[1]}.x")


def check_versions(installed: dict[str, str] | None = None, allow_untested: bool | None = None) -> None:
    """Warn about an untested minor version; refuse an untested major version (unless allowed).

    ``installed`` maps distribution → version (default: what is installed); ``allow_untested``
    defaults to the ``BINLAKE_ALLOW_UNTESTED_SPARK`` environment variable."""
    if installed is None:
        installed = {name: importlib.metadata.version(name) for name in TESTED}
    if allow_untested is None:
        allow_untested = os.environ.get(ALLOW_UNTESTED_ENV, "") not in ("", "0")
    for distribution, version in sorted(installed.items()):
        problem = version_problem(distribution, version)
        if problem is None:
            continue
        if major_minor(version)[0] != TESTED[distribution][0] and not allow_untested:
            raise UntestedVersionError(
                f"{problem}: install the tested versions (make setup), or set "
                f"{ALLOW_UNTESTED_ENV}=1 to run anyway and check the merge's results")
        log.warning("%s: it may still work; the merge's exactly-once relies on it", problem)


def jvm(spark: SparkSession) -> Any:
    """The py4j view of the driver JVM (classic Spark, not Spark Connect)."""
    gateway = spark._jvm
    if gateway is None:
        raise RuntimeError("binlake's merge needs a classic SparkSession (no Spark Connect)")
    return gateway


def clone_session(spark: SparkSession) -> SparkSession:
    """A new session sharing ``spark``'s SparkContext, cached data and Delta log cache, whose SQL
    conf starts as a copy of ``spark``'s and is its own from then on."""
    return SparkSession(spark.sparkContext, spark._jsparkSession.cloneSession())


def set_active_session(spark: SparkSession) -> None:
    """Make ``spark`` the active session of the calling thread, JVM side."""
    SparkSession._get_j_spark_session_class(jvm(spark)).setActiveSession(spark._jsparkSession)


def committed_txn_version(spark: SparkSession, path: str, app_id: str) -> int:
    """The highest transaction version ``app_id`` committed to the Delta table at ``path`` (-1 if
    none), from the table's current snapshot (read now, a small Spark job)."""
    delta_log = jvm(spark).org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)
    snapshot = delta_log.update(False, getattr(delta_log, "update$default$2")(),
                                getattr(delta_log, "update$default$3")())
    found = snapshot.transactions().get(app_id)
    return int(found.get()) if found.isDefined() else -1


def hadoop_filesystem(spark: SparkSession, path: str) -> tuple[Any, Any]:
    """``(FileSystem, Path)`` of Hadoop for ``path`` (local or ``s3a://``), with the session's
    Hadoop configuration."""
    gateway = jvm(spark)
    hadoop_path = gateway.org.apache.hadoop.fs.Path(path)
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    return hadoop_path.getFileSystem(conf), hadoop_path
