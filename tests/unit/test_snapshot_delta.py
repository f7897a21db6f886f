"""Table properties the full load gives a lake table (binlake.snapshot.delta)."""

from __future__ import annotations

from binlake.snapshot.delta import change_data_feed_blockers, stats_columns


def test_only_a_back_quote_rules_out_the_change_data_feed() -> None:
    assert change_data_feed_blockers(["id", "we`ird", "ok \"[$]'", "`b"]) == ["`b", "we`ird"]
    assert change_data_feed_blockers(["id", "special\"[$]'_id", "ünï cødé", "a.b", "a b"]) == []


def test_stats_columns_are_quoted_with_doubled_back_quotes() -> None:
    assert stats_columns(["id", "a b", "x`y"]) == "`id`,`a b`,`x``y`"
