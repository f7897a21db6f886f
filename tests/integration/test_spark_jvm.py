"""binlake/sparkjvm.py's JVM shortcuts against the public behaviour they stand for, on one real
Spark + Delta session: the cloned session's conf, the active session, and the transaction
versions Delta recorded — read back from the table's ``_delta_log`` as the Delta protocol
defines them (``txn`` actions)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from binlake.merge.txn import APP_ID_CONF, VERSION_CONF, idempotent
from binlake.sparkjvm import clone_session, committed_txn_version, jvm, set_active_session

SETTING = "spark.sql.shuffle.partitions"


def txn_versions_in_log(table: Path) -> dict[str, int]:
    """Per app id, the highest ``txn.version`` in the table's Delta log (the protocol's view)."""
    versions: dict[str, int] = {}
    for commit in sorted((table / "_delta_log").glob("*.json")):
        for line in commit.read_text().splitlines():
            action = json.loads(line)
            if "txn" in action:
                app, version = action["txn"]["appId"], int(action["txn"]["version"])
                versions[app] = max(version, versions.get(app, -1))
    return versions


def test_committed_txn_version_equals_the_txn_actions_of_the_delta_log(spark: Any, tmp_path: Path) -> None:
    table = tmp_path / "t"
    spark.range(3).write.format("delta").save(str(table))
    for app, version in [("app-a", 4), ("app-b", 7), ("app-a", 9)]:
        with idempotent(spark, app, version):
            spark.sql(f"UPDATE delta.`{table}` SET id = id + 1")
    with idempotent(spark, "app-a", 5):  # at or below the recorded 9: Delta skips it, no txn action
        spark.sql(f"UPDATE delta.`{table}` SET id = id + 100")

    in_log = txn_versions_in_log(table)
    assert in_log == {"app-a": 9, "app-b": 7}
    for app in ("app-a", "app-b", "app-never"):
        assert committed_txn_version(spark, str(table), app) == in_log.get(app, -1)
    assert sorted(r.id for r in spark.read.format("delta").load(str(table)).collect()) == [3, 4, 5]


def test_a_cloned_session_copies_the_sql_conf_then_keeps_its_own(spark: Any) -> None:
    before = spark.conf.get(SETTING)
    spark.conf.set(SETTING, "7")
    try:
        clone = clone_session(spark)
        public = spark.newSession()  # public API: starts from the SparkContext's conf
        assert clone.conf.get(SETTING) == "7"
        assert public.conf.get(SETTING) != "7", "newSession kept the session setting: cloneSession is not needed"
        clone.conf.set(APP_ID_CONF, "only-the-clone")
        clone.conf.set(SETTING, "3")
        assert spark.conf.get(APP_ID_CONF, None) is None
        assert spark.conf.get(SETTING) == "7"
        assert clone.sparkContext is spark.sparkContext
    finally:
        spark.conf.set(SETTING, before)
        spark.conf.unset(VERSION_CONF)


def test_set_active_session_is_per_thread_and_seen_by_the_jvm(spark: Any) -> None:
    clone = clone_session(spark)
    seen: dict[str, Any] = {}

    def in_thread() -> None:
        set_active_session(clone)
        active = SparkSession._get_j_spark_session_class(jvm(clone)).getActiveSession()
        seen["same"] = active.isDefined() and active.get().equals(clone._jsparkSession)

    worker = threading.Thread(target=in_thread)
    worker.start()
    worker.join()
    assert seen["same"]
    main_active = SparkSession._get_j_spark_session_class(jvm(spark)).getActiveSession()
    assert not (main_active.isDefined() and main_active.get().equals(clone._jsparkSession))
