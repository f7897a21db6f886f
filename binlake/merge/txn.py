"""Idempotent Delta commits: the transaction app id / version that make a replayed batch a no-op.

Delta records, per table, the highest ``txnVersion`` committed for each ``txnAppId``; a MERGE,
UPDATE, DELETE or write carrying a version at or below it is skipped without touching the table.
binlake commits every step of every micro-batch with the app id of the merge job (derived from the
streaming checkpoint's query id, so a new checkpoint is a new app) and the step's version, both from
:func:`binlake.merge.plan.step_txn`. Because a batch's plan is the same on every attempt, a batch
replayed after a crash re-does exactly the commits that did not happen. Commits without a
transaction (table properties, column changes, tombstone appends) are idempotent by state and never
skipped by Delta: a replay makes them again, with the same effect.

The settings live in a session's SQL conf, which every thread using that session sees. Tables
applied concurrently therefore each run in their own :func:`isolated_session`, so a commit is
only ever tagged with the transaction of its own table's step.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

from binlake.sparkjvm import clone_session, committed_txn_version, jvm, set_active_session

__all__ = ["APP_ID_CONF", "VERSION_CONF", "activate", "committed_version", "idempotent",
           "isolated_session", "jvm"]

APP_ID_CONF = "spark.databricks.delta.write.txnAppId"
VERSION_CONF = "spark.databricks.delta.write.txnVersion"


@contextmanager
def idempotent(spark: SparkSession, app_id: str, version: int) -> Iterator[None]:
    """Within the block, Delta DML commits carry ``(app_id, version)`` (session settings; one
    commit per block — the settings are removed on exit, also on error)."""
    spark.conf.set(APP_ID_CONF, app_id)
    spark.conf.set(VERSION_CONF, str(version))
    try:
        yield
    finally:
        spark.conf.unset(APP_ID_CONF)
        spark.conf.unset(VERSION_CONF)


def isolated_session(spark: SparkSession) -> SparkSession:
    """A session with a copy of ``spark``'s SQL conf (the merge's tuned settings) and state, and a
    conf of its own from then on: what :func:`idempotent` sets on it no other session sees. It
    shares ``spark``'s SparkContext, cached data and Delta log cache
    (:func:`binlake.sparkjvm.clone_session`). Made in the thread that will use it, it is that
    thread's active session too."""
    clone = clone_session(spark)
    clone.conf.unset(APP_ID_CONF)
    clone.conf.unset(VERSION_CONF)
    activate(clone)
    return clone


def activate(spark: SparkSession) -> None:
    """Make ``spark`` the active session of the calling thread (JVM side: Delta and Spark look some
    things up through ``SparkSession.active``)."""
    set_active_session(spark)


def committed_version(spark: SparkSession, path: str, app_id: str) -> int:
    """The highest transaction version ``app_id`` committed to the Delta table at ``path`` (-1 if
    none). Reads the table's current snapshot (a small Spark job)."""
    return committed_txn_version(spark, path, app_id)
