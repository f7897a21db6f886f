"""Lake progress (how far the lake has applied the source) and the `binlake status` read-out, from
binlake's own files in a local lake — no server, no Spark."""

from __future__ import annotations

import json
from pathlib import Path

from binlake.config import parse_config
from binlake.lake import CHECKPOINT_KEY, MERGE_STATUS_KEY, STATUS_KEY, Lake, changelog_key, snapshot_state_key
from binlake.positions import make_lsn
from binlake.progress import applied_lsn, read_progress
from binlake.status import lsn_text, pipeline_status, render_text, to_prometheus

L1 = make_lsn("binlog.000002", 1000)
L2 = make_lsn("binlog.000002", 2000)
L3 = make_lsn("binlog.000003", 500)


def test_applied_lsn_rules() -> None:
    assert applied_lsn(None, L3, [(L1, L2)]) is None                 # the merge has applied nothing yet
    assert applied_lsn(L2, L3, [(L1, L2)]) == L3                     # every file merged: up to the checkpoint
    assert applied_lsn(L1, L3, [(L1, L1), (L2, L3)]) == L2 - 1       # a file ends above: just below its start
    assert applied_lsn(L2, None, []) == L2


def _lake(tmp_path: Path) -> tuple[Lake, object]:
    config = parse_config({"lake": {"root": str(tmp_path)}, "table_mappings": {"rules": [
        {"rule-type": "selection", "rule-id": "1", "object-locator": {"schema-name": "shop", "table-name": "%"},
         "rule-action": "include"}]}}, Path("t.yaml"))
    return Lake.from_config(config), config


def test_status_reads_every_part(tmp_path: Path) -> None:
    lake, config = _lake(tmp_path)
    lake.put_bytes(snapshot_state_key("shop", "orders"), json.dumps({
        "status": "complete", "source": {"schema": "shop", "table": "orders"},
        "target": {"schema": "lake_shop", "table": "orders"}, "rows": 1234, "max_lsn": L1}).encode())
    lake.put_bytes(snapshot_state_key("shop", "items"), json.dumps({
        "status": "loading", "source": {"schema": "shop", "table": "items"},
        "target": {"schema": "lake_shop", "table": "items"}, "rows": 10, "max_lsn": None}).encode())
    lake.put_bytes(MERGE_STATUS_KEY, json.dumps({"batch_id": 7, "lsn": L2, "last_error": None, "tables": {
        "lake_shop.orders": {"lsn": L2, "lag_seconds": 1.5, "inserted": 3, "updated": 2, "deleted": 1}}}).encode())
    lake.put_bytes(CHECKPOINT_KEY, json.dumps({"version": 1, "position": {"file": "binlog.000003", "pos": 500,
                                                                          "lsn": L3}}).encode())
    lake.put_bytes(STATUS_KEY, json.dumps({"state": "running", "position": {"file": "binlog.000003", "pos": 500},
                                          "lag_seconds": 0.0, "events_per_second": 42.0}).encode())
    lake.put_bytes(changelog_key(L1, L2), b"x")

    progress = read_progress(lake)
    assert (progress.merged_lsn, progress.captured_lsn, progress.applied_lsn) == (L2, L3, L3)

    status = pipeline_status(config, lake)  # type: ignore[arg-type]
    tables = {t["table"]: t for t in status["tables"]}
    assert tables["lake_shop.orders"]["snapshot"] == "complete"
    assert tables["lake_shop.orders"]["snapshot_rows"] == 1234
    assert tables["lake_shop.orders"]["applied_lsn"] == L2
    assert tables["lake_shop.orders"]["lag_seconds"] == 1.5
    assert tables["lake_shop.items"]["snapshot"] == "loading"
    assert tables["lake_shop.items"]["applied_lsn"] is None
    assert status["capture"]["state"] == "running"
    assert status["merge"]["applied_lsn"] == L3

    text = render_text(status)
    orders_line = next(line for line in text.splitlines() if line.startswith("lake_shop.orders"))
    assert orders_line.split()[:5] == ["lake_shop.orders", "complete", "1234", lsn_text(L2), "1.5"]
    assert orders_line.split()[5:8] == ["3", "2", "1"]
    assert "capture: running" in text and "events/s 42.0" in text
    assert lsn_text(L2) == "000002:2000"


def test_prometheus_text_has_one_sample_per_known_value_with_escaped_labels() -> None:
    status = {
        "pipeline": "demo", "lake": "/l", "source_end_lsn": L3,
        "capture": {"state": "running", "lag_seconds": 0.5, "events_per_second": 42.0, "changelog_files": 7,
                    "status_age_seconds": None},
        "merge": {"batch_id": 9, "applied_lsn": L2},
        "tables": [
            {"table": "shop.orders", "snapshot": "complete", "snapshot_rows": 1234, "applied_lsn": L2,
             "lag_seconds": 1.5, "last_batch": {"inserted": 3, "updated": 2, "deleted": 1}, "last_error": None},
            {"table": 'we"ird\\name', "snapshot": "loading", "snapshot_rows": None, "applied_lsn": None,
             "lag_seconds": None, "last_batch": None, "last_error": "boom"},
        ],
    }
    text = to_prometheus(status)
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    assert samples['binlake_capture_running{pipeline="demo"}'] == "1"
    assert samples['binlake_capture_lag_seconds{pipeline="demo"}'] == "0.5"
    assert samples['binlake_merge_applied_lsn{pipeline="demo"}'] == str(L2)
    assert samples['binlake_source_end_lsn{pipeline="demo"}'] == str(L3)
    assert samples['binlake_table_snapshot_rows{pipeline="demo",table="shop.orders"}'] == "1234"
    assert samples['binlake_table_last_batch_rows{pipeline="demo",table="shop.orders",op="deleted"}'] == "1"
    assert samples['binlake_table_snapshot_complete{pipeline="demo",table="we\\"ird\\\\name"}'] == "0"
    assert samples['binlake_table_error{pipeline="demo",table="we\\"ird\\\\name"}'] == "1"
    assert samples['binlake_table_error{pipeline="demo",table="shop.orders"}'] == "0"
    assert not any("status_age" in key for key in samples)             # unknown values are left out
    assert [key for key in samples if "ird" in key] == [
        'binlake_table_snapshot_complete{pipeline="demo",table="we\\"ird\\\\name"}',
        'binlake_table_error{pipeline="demo",table="we\\"ird\\\\name"}']
    assert len(samples) == 7 + 8 + 2
    assert text.count("# TYPE binlake_table_last_batch_rows gauge") == 1 and text.endswith("\n")


def test_status_command_prints_prometheus_from_the_lake(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from binlake.cli import app

    lake, _ = _lake(tmp_path / "lake")
    lake.put_bytes(snapshot_state_key("shop", "orders"), json.dumps({
        "status": "complete", "source": {"schema": "shop", "table": "orders"},
        "target": {"schema": "shop", "table": "orders"}, "rows": 77, "max_lsn": L1}).encode())
    config = tmp_path / "p.yaml"
    config.write_text(f"lake:\n  root: {tmp_path / 'lake'}\ntable_mappings:\n  rules:\n"
                      "    - {rule-type: selection, rule-id: '1', rule-action: include,\n"
                      "       object-locator: {schema-name: shop, table-name: '%'}}\n")
    shown = CliRunner().invoke(app, ["status", "--config", str(config), "--prometheus"])
    assert shown.exit_code == 0, shown.output
    assert 'binlake_table_snapshot_rows{pipeline="binlake",table="shop.orders"} 77' in shown.output.splitlines()
    assert 'binlake_capture_running{pipeline="binlake"} 0' in shown.output.splitlines()
    both = CliRunner().invoke(app, ["status", "--config", str(config), "--prometheus", "--json"])
    assert both.exit_code != 0 and "choose one of --json and --prometheus" in both.output
