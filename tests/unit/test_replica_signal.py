"""A replica full load labelled by a signal on the primary (binlake.snapshot.replicasignal): the order of
its steps, the commit-order checks, and the wait for the signal on the replica."""

from __future__ import annotations

import pymysql
import pytest

from binlake.capture.history import FIRST_START, History
from binlake.config import SnapshotMethod
from binlake.positions import BinlogPosition
from binlake.snapshot.replica import ReplicaError, ReplicaFacts, replica_problems
from binlake.snapshot.replicasignal import order_problems, signalled_label, token_on, uses_signal, wait_visible
from binlake.snapshot.signal import Signal, SignalTable

PRIMARY = History(0, 11, FIRST_START, BinlogPosition.of("binlog.000005", 4))
STATUS = {"Source_Server_Id": 11}


def mysql(**settings: str | None) -> ReplicaFacts:
    return ReplicaFacts(False, 12, STATUS, settings)


def mariadb(**settings: str | None) -> ReplicaFacts:
    return ReplicaFacts(True, 12, {"Master_Server_Id": 11}, settings)


def test_the_signal_is_used_with_the_watermark_method_and_a_signal_table_only() -> None:
    assert uses_signal(SnapshotMethod.WATERMARK, "binlake.binlake_signal")
    assert not uses_signal(SnapshotMethod.WATERMARK, "")  # the settle wait, as before
    assert not uses_signal(SnapshotMethod.MARIADB, "binlake.binlake_signal")  # MariaDB: the replica's GTIDs


def test_the_end_is_read_before_the_signal_and_returned_only_after_the_replica_shows_it() -> None:
    events: list[str] = []
    end = BinlogPosition.of("binlog.000005", 900, "0-11-42")

    def read_end() -> BinlogPosition:
        events.append("read W")
        return end

    def commit() -> str:
        events.append("commit")
        return "t1"

    assert signalled_label(read_end, commit, lambda token: events.append(f"seen {token}")) == end
    assert events == ["read W", "commit", "seen t1"]


def test_mysql_replicas_must_commit_in_the_primarys_order() -> None:
    assert order_problems(mysql(replica_parallel_workers="1", replica_preserve_commit_order="OFF")) == []
    assert order_problems(mysql(replica_parallel_workers="4", replica_preserve_commit_order="ON")) == []
    assert order_problems(mysql(slave_parallel_workers="0", slave_preserve_commit_order="OFF")) == []  # < 8.0.26
    assert order_problems(mysql(slave_parallel_workers="8", slave_preserve_commit_order="ON")) == []
    for facts in (mysql(replica_parallel_workers="4", replica_preserve_commit_order="OFF"),
                  mysql(slave_parallel_workers="4", slave_preserve_commit_order="0")):
        [problem] = order_problems(facts)
        assert "replica_parallel_workers is 4" in problem
        assert "SET GLOBAL replica_preserve_commit_order = ON" in problem and "replica_parallel_workers = 1" in problem


def test_mariadb_replicas_with_parallel_threads_over_several_domains_are_refused() -> None:
    assert order_problems(mariadb(slave_parallel_threads="4", gtid_slave_pos="0-11-40")) == []
    assert order_problems(mariadb(slave_parallel_threads="0", gtid_slave_pos="0-11-40,1-11-3")) == []
    [problem] = order_problems(mariadb(slave_parallel_threads="4", gtid_slave_pos="0-11-40,1-11-3"))
    assert "domains [0, 1]" in problem and "slave_parallel_threads = 0" in problem


def test_with_signals_the_replica_needs_no_gtid_translation_but_the_same_source_and_no_filters() -> None:
    no_gtids = mysql(gtid_mode="OFF", replica_parallel_workers="4", replica_preserve_commit_order="ON")
    assert replica_problems(no_gtids, PRIMARY, signalled=True) == []
    assert "gtid_mode must be ON" in replica_problems(no_gtids, PRIMARY)[0]
    no_own_binlog = mariadb(log_bin="OFF", log_slave_updates="OFF")
    assert replica_problems(no_own_binlog, PRIMARY, signalled=True) == []
    assert replica_problems(no_own_binlog, PRIMARY)
    filtered = ReplicaFacts(False, 12, {**STATUS, "Replicate_Ignore_DB": "binlake"}, {"gtid_mode": "OFF"})
    assert "Replicate_Ignore_DB = binlake" in replica_problems(filtered, PRIMARY, signalled=True)[0]
    other = ReplicaFacts(False, 12, {"Source_Server_Id": 99}, {})
    assert "not from the captured primary" in replica_problems(other, PRIMARY, signalled=True)[0]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_wait_polls_until_the_replica_shows_this_token() -> None:
    clock = Clock()
    seen = iter([None, "older", "older", "mine"])  # not replicated yet, a previous signal, then ours
    assert wait_visible(lambda: next(seen), "mine", 5, clock, clock.sleep, lambda: "") == 4
    assert 0 < clock.now < 1


def test_a_signal_that_never_arrives_stops_the_chunk_naming_lag_a_stopped_applier_and_filters() -> None:
    clock = Clock()
    with pytest.raises(ReplicaError) as refused:
        wait_visible(lambda: "older", "mine", 2, clock, clock.sleep, lambda: "SQL thread running: No")
    message = str(refused.value)
    assert "full_load.replica_wait_seconds = 2" in message and "SQL thread running: No" in message
    assert all(cause in message for cause in ("lags", "applier (SQL) thread is stopped", "replication filter"))
    assert 2 <= clock.now < 2.2


class Replica:
    """A stand-in for the replica's connection: its cursor answers one query or raises ``error``."""

    def __init__(self, token: str | None = None, error: Exception | None = None) -> None:
        self.token, self.error, self.commits = token, error, 0
        self.queries: list[tuple[str, object]] = []

    def cursor(self) -> Replica:
        return self

    def __enter__(self) -> Replica:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def execute(self, sql: str, args: object) -> None:
        self.queries.append((sql, args))
        if self.error is not None:
            raise self.error

    def fetchone(self) -> tuple[str] | None:
        return None if self.token is None else (self.token,)

    def commit(self) -> None:
        self.commits += 1


SIGNALLER = Signal(SignalTable("binlake", "binlake_signal"), "shop:full-load")


def test_the_replica_is_read_afresh_each_poll_and_a_missing_table_is_not_there_yet() -> None:
    replica = Replica("t1")
    assert token_on(replica, SIGNALLER) == "t1"  # type: ignore[arg-type]
    assert replica.commits == 1  # no repeatable-read view kept across polls
    assert replica.queries == [(SIGNALLER.select_sql(), ("shop:full-load",))]
    missing = Replica(error=pymysql.err.ProgrammingError(1146, "Table 'binlake.binlake_signal' doesn't exist"))
    assert token_on(missing, SIGNALLER) is None  # type: ignore[arg-type]
    denied = Replica(error=pymysql.err.OperationalError(1142, "SELECT command denied to user 'ro'"))
    with pytest.raises(ReplicaError, match=r"GRANT SELECT ON `binlake`.`binlake_signal`"):
        token_on(denied, SIGNALLER)  # type: ignore[arg-type]
