"""The verification record (``verified_as_of``) in a local lake, and how ``binlake status`` shows it —
no server, no Spark."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from binlake.config import parse_config
from binlake.lake import Lake, snapshot_state_key, verification_key
from binlake.positions import make_lsn
from binlake.status import pipeline_status, render_text, to_prometheus
from binlake.validation.report import TableValidation
from binlake.verification import RecordError, Verification, VerificationRecord, all_records, read_record, write_run

P1 = make_lsn("binlog.000004", 120)
P2 = make_lsn("binlog.000004", 9_000)
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _run(status: str, as_of: int | None, at: datetime, **counts: int) -> Verification:
    result = TableValidation("lake_shop.orders", source="shop.orders", chunks=5, checksum_chunks=5, method="checksum",
                             as_of_lsn=as_of, **counts)
    if status == "DIFFERENT":
        result.differing_chunks, result.checksum_chunks = [3], 4
    if status == "IN FLIGHT":
        result.in_flight = 2
    assert result.status == status
    return Verification.of(result, at - timedelta(seconds=30), at)


def _lake(tmp_path: Path) -> tuple[Lake, object]:
    config = parse_config({"lake": {"root": str(tmp_path)}, "table_mappings": {"rules": [
        {"rule-type": "selection", "rule-id": "1", "object-locator": {"schema-name": "shop", "table-name": "%"},
         "rule-action": "include"}]}}, Path("t.yaml"))
    lake = Lake.from_config(config)
    lake.put_bytes(snapshot_state_key("shop", "orders"), json.dumps({
        "status": "complete", "source": {"schema": "shop", "table": "orders"},
        "target": {"schema": "lake_shop", "table": "orders"}, "rows": 10, "max_lsn": P1}).encode())
    return lake, config


def test_a_run_that_found_the_table_equal_is_its_verified_as_of_until_the_next_equal_one(tmp_path: Path) -> None:
    lake, config = _lake(tmp_path)
    assert read_record(lake, "lake_shop", "orders") is None
    first = write_run(lake, "lake_shop", "orders", _run("OK", P1, T0))
    assert (first.verified_as_of, first.last_run.status) == (P1, "OK")
    # a later run that found a difference (or rows in flight) is the last run; verified_as_of stays
    differs = _run("DIFFERENT", P2, T0 + timedelta(hours=1), mismatched=1).repaired("r42")
    second = write_run(lake, "lake_shop", "orders", differs)
    assert (second.verified_as_of, second.last_run, second.last_equal) == (P1, differs, first.last_run)
    in_flight = write_run(lake, "lake_shop", "orders", _run("IN FLIGHT", P2, T0 + timedelta(hours=2)))
    assert (in_flight.verified_as_of, in_flight.last_run.status) == (P1, "IN FLIGHT")
    text = render_text(pipeline_status(config, lake, now=T0 + timedelta(hours=2)))  # type: ignore[arg-type]
    assert ("lake_shop.orders: 000004:120 at 2026-12-01T12:00:00 (2.0 h ago, 5 chunk(s)); latest check "
            "2026-12-01T14:00:00: IN FLIGHT (2 row(s) changed while checked: not compared; try --wait)") in text
    third = write_run(lake, "lake_shop", "orders", _run("OK", P2, T0 + timedelta(hours=3)))
    assert third.verified_as_of == P2
    # the file is the record: read back field by field, and listed by target table
    assert read_record(lake, "lake_shop", "orders") == third
    assert all_records(lake) == {"lake_shop.orders": third}
    stored = json.loads(lake.get_bytes(verification_key("lake_shop", "orders")))
    assert stored["version"] == 1 and stored["last_equal"]["as_of_lsn"] == P2
    assert stored["last_run"]["differing_chunks"] == [] and stored["last_run"]["repair"] is None


def test_a_run_with_differences_keeps_its_counts_chunks_and_repair(tmp_path: Path) -> None:
    run = _run("DIFFERENT", P2, T0, mismatched=1, missing=2, extra=3).repaired(None, "no primary key")
    back = Verification.from_dict(json.loads(json.dumps(run.to_dict())))
    assert back == run
    assert (back.differing_chunks, back.mismatched, back.missing, back.extra, back.chunks, back.checksum_chunks) == (
        (3,), 1, 2, 3, 5, 4)
    assert (back.repair, back.repair_error, back.differs) == (None, "no primary key", True)
    assert VerificationRecord.first(run).last_equal is None


def test_unreadable_records_fail_loudly_and_are_replaced_by_the_next_run(tmp_path: Path) -> None:
    lake, _ = _lake(tmp_path)
    key = verification_key("lake_shop", "orders")
    lake.put_bytes(key, b"{not json")
    with pytest.raises(RecordError, match="not JSON"):
        read_record(lake, "lake_shop", "orders")
    lake.put_bytes(key, json.dumps({"version": 1, "last_run": {"status": "OK"}}).encode())
    with pytest.raises(RecordError, match="lacks source, table"):
        read_record(lake, "lake_shop", "orders")
    lake.put_bytes(key, json.dumps({"version": 99}).encode())
    with pytest.raises(RecordError, match="version 99"):
        read_record(lake, "lake_shop", "orders")
    assert all_records(lake) == {}
    assert write_run(lake, "lake_shop", "orders", _run("OK", P1, T0)).verified_as_of == P1


def test_status_shows_verified_as_of_with_its_age_and_a_difference_loudly(tmp_path: Path) -> None:
    lake, config = _lake(tmp_path)
    write_run(lake, "lake_shop", "orders", _run("OK", P1, T0))
    status = pipeline_status(config, lake, now=T0 + timedelta(minutes=90))  # type: ignore[arg-type]
    (table,) = status["tables"]
    assert table["verified_as_of"] == {"lsn": P1, "position": "000004:120", "at": T0.isoformat(),
                                       "age_seconds": 5400.0, "chunks": 5, "method": "checksum"}
    assert table["last_verification"]["status"] == "OK"
    text = render_text(status)
    assert "lake_shop.orders: 000004:120 at 2026-12-01T12:00:00 (1.5 h ago, 5 chunk(s))" in text
    assert "DIFFERENT" not in text
    assert 'binlake_table_verified_as_of_lsn{pipeline="binlake",table="lake_shop.orders"} ' + str(P1) in (
        to_prometheus(status))

    write_run(lake, "lake_shop", "orders", _run("DIFFERENT", P2, T0 + timedelta(hours=1), mismatched=1))
    text = render_text(pipeline_status(config, lake, now=T0 + timedelta(hours=2)))  # type: ignore[arg-type]
    assert "latest check 2026-12-01T13:00:00: DIFFERENT" in text
    assert ("lake_shop.orders: 1 of 5 chunk(s) differ (1 mismatched, 0 missing, 0 extra), checked "
            "2026-12-01T13:00:00; NOT REPAIRED: run binlake validate --config <config> --repair") in text
    status = pipeline_status(config, lake, now=T0 + timedelta(hours=2))  # type: ignore[arg-type]
    assert 'binlake_table_verification_differs{pipeline="binlake",table="lake_shop.orders"} 1' in to_prometheus(status)

    write_run(lake, "lake_shop", "orders", _run("DIFFERENT", P2, T0 + timedelta(hours=2), missing=1).repaired("r7"))
    text = render_text(pipeline_status(config, lake, now=T0 + timedelta(hours=2)))  # type: ignore[arg-type]
    assert "repair resync r7 started" in text and "NOT REPAIRED" not in text


def test_a_table_never_verified_shows_nothing(tmp_path: Path) -> None:
    lake, config = _lake(tmp_path)
    status = pipeline_status(config, lake)  # type: ignore[arg-type]
    assert (status["tables"][0]["verified_as_of"], status["tables"][0]["last_verification"]) == (None, None)
    assert "verified equal" not in render_text(status)


def test_binlake_tables_says_what_the_latest_verifications_found(tmp_path: Path) -> None:
    from binlake.rules import TableMapping
    from binlake.tables import render_text as tables_text
    from binlake.tables import table_rows

    lake, _ = _lake(tmp_path)
    mapping = TableMapping.parse({"rules": [
        {"rule-type": "selection", "rule-id": "1", "rule-action": "include",
         "object-locator": {"schema-name": "shop", "table-name": "%"}},
        {"rule-type": "transformation", "rule-id": "2", "rule-target": "schema", "rule-action": "add-prefix",
         "value": "lake_", "object-locator": {"schema-name": "shop"}}]})
    targets = [t for t in [mapping.target_for("shop", "orders")] if t]
    assert [(t.schema, t.table) for t in targets] == [("lake_shop", "orders")]
    assert table_rows(lake, targets)[0].verified is None
    write_run(lake, "lake_shop", "orders", _run("OK", P1, T0))
    assert table_rows(lake, targets)[0].verified == "verified equal as of 000004:120 (2026-12-01T12:00:00)"
    write_run(lake, "lake_shop", "orders", _run("DIFFERENT", P2, T0 + timedelta(hours=1), extra=2))
    assert "shop.orders: verified equal as of 000004:120 (2026-12-01T12:00:00); latest check 2026-12-01T13:00:00: " \
           "DIFFERENT in 1 of 5 chunk(s), NOT REPAIRED" in tables_text(table_rows(lake, targets))
    write_run(lake, "lake_shop", "orders", _run("DIFFERENT", P2, T0 + timedelta(hours=2), extra=2).repaired("r9"))
    assert table_rows(lake, targets)[0].verified == (
        "verified equal as of 000004:120 (2026-12-01T12:00:00); latest check 2026-12-01T14:00:00: DIFFERENT in 1 of 5 "
        "chunk(s), repair resync r9 started")
