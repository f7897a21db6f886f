"""The maintenance cadence (binlake.merge.cadence): which tables are due for a round after a batch,
when the daily step joins it; and the retention properties binlake's own tables get
(binlake.merge.deltars)."""

from __future__ import annotations

import datetime

from binlake.merge.cadence import METRICS, VACUUM_EVERY, count_batch, daily_done, daily_due, round_done
from binlake.merge.deltars import INTERNAL_LOG_RETENTION, INTERNAL_RETENTION, internal_properties, interval

T0 = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)


def test_a_table_is_due_after_every_batches_that_changed_it_and_the_metrics_after_every_batches() -> None:
    state, due = count_batch({}, [("shop", "b"), ("shop", "a"), ("shop", "a")], T0, every=2)
    assert due == []
    assert state == {"shop.a": {"vacuumed_at": T0.isoformat(), "schema": "shop", "table": "a", "batches": 1},
                     "shop.b": {"vacuumed_at": T0.isoformat(), "schema": "shop", "table": "b", "batches": 1},
                     METRICS: {"batches": 1}}
    state, due = count_batch(state, [("shop", "b")], T0, every=2)
    assert due == ["shop.b", METRICS]                       # tables sorted, the metrics last
    assert state["shop.a"]["batches"] == 1 and state["shop.b"]["batches"] == 2 and state[METRICS]["batches"] == 2
    state[METRICS] = round_done(state[METRICS], T0)
    state["shop.b"] = round_done(state["shop.b"], T0)
    state, due = count_batch(state, [("shop", "a")], T0, every=2)
    assert due == ["shop.a"] and state[METRICS]["batches"] == 1 and state["shop.b"]["batches"] == 0


def test_nothing_is_counted_when_off_or_when_nothing_changed() -> None:
    before = {"shop.a": {"batches": 3, "schema": "shop", "table": "a"}}
    assert count_batch(before, [], T0, every=1) == (before, [])
    assert count_batch(before, [("shop", "a")], T0, every=0) == (before, [])
    state, _ = count_batch(before, [("shop", "a")], T0, every=5)
    assert before["shop.a"]["batches"] == 3 and state["shop.a"]["batches"] == 4   # the input is not changed


def test_the_daily_step_comes_a_period_after_a_table_was_first_seen_and_every_period_after() -> None:
    state, _ = count_batch({}, [("shop", "a")], T0, every=1)
    assert not daily_due(state["shop.a"], T0 + VACUUM_EVERY - datetime.timedelta(seconds=1))
    assert daily_due(state["shop.a"], T0 + VACUUM_EVERY)
    assert daily_due(state[METRICS], T0)                     # the metrics' first round has it
    later = daily_done(state["shop.a"], T0 + VACUUM_EVERY)
    assert not daily_due(later, T0 + 2 * VACUUM_EVERY - datetime.timedelta(seconds=1))
    assert daily_due(later, T0 + 2 * VACUUM_EVERY)


def test_round_done_resets_the_count_and_keeps_the_rest() -> None:
    entry = {"batches": 7, "schema": "shop", "table": "a", "vacuumed_at": "x"}
    assert round_done(entry, T0) == {"batches": 0, "schema": "shop", "table": "a", "vacuumed_at": "x",
                                     "optimized_at": T0.isoformat()}


def test_internal_tables_keep_their_log_and_their_removed_files_for_the_same_window() -> None:
    assert INTERNAL_RETENTION.total_seconds() == 600
    assert INTERNAL_LOG_RETENTION == "interval 10 minutes"   # the value earlier binlake versions set
    assert internal_properties() == {"delta.logRetentionDuration": "interval 10 minutes",
                                     "delta.deletedFileRetentionDuration": "interval 10 minutes"}
    assert interval(datetime.timedelta(seconds=90)) == "interval 90 seconds"
    assert interval(datetime.timedelta(hours=2)) == "interval 120 minutes"
