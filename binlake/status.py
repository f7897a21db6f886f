"""``binlake status``: one read-out of the whole pipeline, from binlake's own files in the lake.

Per table: snapshot state (loading/complete, rows loaded, snapshot position), the position the
merge has applied, end-to-end lag, the last batch's counts and the last error. For the capture:
state, position, lag, events/s, files written. Optionally (``--source``) the source's current
binlog end, to show how far behind the change log is in bytes.

No Spark and no JVM: status is cheap enough to run from cron or a monitoring probe.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from binlake.capture.history import Registry, load_registry, snapshot_gap
from binlake.capture.report import status_report
from binlake.changelog import read_removed
from binlake.config import PipelineConfig
from binlake.lake import MERGE_STATUS_KEY, SNAPSHOTS_DIR, Lake
from binlake.positions import BinlogPosition, lsn_text
from binlake.progress import LakeProgress, read_json, read_progress
from binlake.registration.status import catalog_lines, catalog_status
from binlake.retry import NO_RETRY, LakeError
from binlake.verification import VerificationRecord, all_records

WAITING_FOR_FULL_LOAD = "waiting_for_full_load"
"""The merge's status of a table with neither a full load nor a CREATE in the change log
(set by :mod:`binlake.merge.birth`; defined here so that status needs no Spark)."""


@dataclass(frozen=True)
class TableStatus:
    table: str                      # target schema.table
    source: str                     # source schema.table
    snapshot: str                   # loading / complete / not loaded
    snapshot_rows: int | None
    snapshot_lsn: int | None        # max chunk position of the snapshot
    applied_lsn: int | None         # last change merged into this table
    lag_seconds: float | None       # source commit → Delta commit of that change
    last_batch: dict[str, Any] | None
    last_error: str | None
    gap: str | None = None          # why the change log cannot complete this snapshot (the table is not merged)
    verified_as_of: dict[str, Any] | None = None     # the last verification that found it equal (position, time, age)
    last_verification: dict[str, Any] | None = None  # the latest complete verification, whatever it found


def _snapshot_states(lake: Lake) -> list[dict[str, Any]]:
    states = []
    for key in lake.list(SNAPSHOTS_DIR):
        if key.endswith(".json"):
            data = read_json(lake, key)
            if data:
                states.append(data)
    return states


def _gap(registry: Registry, state: dict[str, Any]) -> str | None:
    low = state.get("min_position") or state.get("low_watermark")
    if state.get("status") != "complete" or not low:
        return None
    return snapshot_gap(registry, BinlogPosition.from_dict(low), state.get("source_server_id"))


def _verification(record: VerificationRecord | None, now: datetime) -> dict[str, Any]:
    """``verified_as_of`` and ``last_verification`` of a table's record (:mod:`binlake.verification`)."""
    if record is None:
        return {}
    run, equal = record.last_run, record.last_equal
    as_of = None
    if equal is not None:
        age = (now - datetime.fromisoformat(equal.finished_at)).total_seconds()
        as_of = {"lsn": equal.as_of_lsn, "position": lsn_text(equal.as_of_lsn), "at": equal.finished_at,
                 "age_seconds": round(age, 1), "chunks": equal.chunks, "method": equal.method}
    last = {key: value for key, value in run.to_dict().items() if key not in ("source", "table")}
    return {"verified_as_of": as_of, "last_verification": last}


def table_statuses(lake: Lake, now: datetime | None = None) -> list[TableStatus]:
    now = now or datetime.now(UTC)
    records = all_records(lake)
    merge = read_json(lake, MERGE_STATUS_KEY) or {}
    registry = load_registry(lake)
    merged_tables: dict[str, dict[str, Any]] = merge.get("tables", {})
    rows: dict[str, TableStatus] = {}
    for state in _snapshot_states(lake):
        target = f"{state['target']['schema']}.{state['target']['table']}"
        entry = merged_tables.get(target)
        rows[target] = TableStatus(
            table=target,
            source=f"{state['source']['schema']}.{state['source']['table']}",
            snapshot=state.get("status", "?"),
            snapshot_rows=state.get("rows"),
            snapshot_lsn=state.get("max_lsn"),
            applied_lsn=(entry or {}).get("lsn"),
            lag_seconds=(entry or {}).get("lag_seconds"),
            last_batch=entry,
            last_error=(entry or {}).get("error") or merge.get("last_error"),
            gap=_gap(registry, state),
            **_verification(records.get(target), now),
        )
    for target, entry in merged_tables.items():
        if target not in rows:
            rows[target] = TableStatus(target, "?", "not loaded", None, None, entry.get("lsn"),
                                       entry.get("lag_seconds"), entry, entry.get("error"),
                                       **_verification(records.get(target), now))
    return [rows[name] for name in sorted(rows)]


def pipeline_status(config: PipelineConfig, lake: Lake | None = None,
                    source_end_lsn: int | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Everything ``binlake status`` shows, as one JSON-ready dict. The lake is asked once, without
    retries: when it cannot be read, the capture's part comes from its local status copy and
    ``lake_error`` says why the rest is missing."""
    lake = (lake or Lake.from_config(config)).with_retry(NO_RETRY)
    capture = status_report(config, lake)
    try:
        progress, merge = read_progress(lake), read_json(lake, MERGE_STATUS_KEY) or {}
        tables = table_statuses(lake, now)
        history, lake_error = [h.to_dict() for h in load_registry(lake).histories], capture.get("lake_error")
        removed = read_removed(lake)  # the change-log lifecycle: binlake.merge.cleanup
    except LakeError as exc:
        progress, merge, tables, history, lake_error = LakeProgress(None, None, None), {}, [], [], str(exc)
        removed = None
    return {
        "pipeline": config.name,
        "lake": config.lake.root,
        "capture": capture,
        "merge": {
            "batch_id": merge.get("batch_id"),
            "updated_at": merge.get("updated_at"),
            "merged_lsn": progress.merged_lsn,
            "applied_lsn": progress.applied_lsn,
            "changelog_removed": removed,
            "last_error": merge.get("last_error"),
        },
        "source_end_lsn": source_end_lsn,
        "history": history,
        "tables": [asdict(t) for t in tables],
        "lake_error": lake_error,
        "catalog": catalog_status(config, lake),  # lake tables by name (binlake.registration)
    }


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def render_text(status: dict[str, Any]) -> str:
    """A plain-text read-out (also what the demo prints)."""
    capture, merge = status["capture"], status["merge"]
    lines = [
        f"pipeline {status['pipeline']}   lake {status['lake']}",
        f"capture: {capture['state']}  position {capture['position'] or '-'}  lag {_num(capture['lag_seconds'])}s  "
        f"events/s {_num(capture['events_per_second'])}  change-log files {capture['changelog_files']}"
        + (f"  error: {capture['error']}" if capture.get("error") else ""),
        f"merge:   batch {_num(merge['batch_id'])}  applied up to {lsn_text(merge['applied_lsn'])}"
        + (f"  error: {merge['last_error']}" if merge.get("last_error") else ""),
    ]
    removed = merge.get("changelog_removed")
    if removed:
        lines.append(f"change log: cleaned up to {lsn_text(removed.get('removed_through'))} "
                     f"({removed.get('files_removed', 0)} file(s) removed; floor held by "
                     f"{', '.join(removed.get('pinned_by') or []) or '-'}, {removed.get('updated_at', '?')})")
    if status.get("source_end_lsn") is not None:
        lines.append(f"source:  binlog end {lsn_text(status['source_end_lsn'])}")
    if status.get("lake_error"):
        lines.append(f"lake:    cannot be read: {status['lake_error']}")
    lines += catalog_lines(status.get("catalog"))
    histories = status.get("history") or []
    if histories:
        latest = histories[-1]
        start = latest.get("start") or {}
        lines.append(f"history: epoch {latest['epoch']} (server_id {latest['server_id']}, {latest['began']} at "
                     f"{start.get('file', '?')}:{start.get('pos', '?')}); {len(histories)} binlog histories")
    header = f"{'table':<34} {'snapshot':<10} {'rows loaded':>11} {'applied':>16} {'lag s':>7} " \
             f"{'ins':>6} {'upd':>6} {'del':>6}  error"
    lines += ["", header, "-" * len(header)]
    for table in status["tables"]:
        batch = table["last_batch"] or {}
        lines.append(
            f"{table['table']:<34} {table['snapshot']:<10} {_num(table['snapshot_rows']):>11} "
            f"{lsn_text(table['applied_lsn'] or table['snapshot_lsn']):>16} {_num(table['lag_seconds']):>7} "
            f"{_num(batch.get('inserted')):>6} {_num(batch.get('updated')):>6} {_num(batch.get('deleted')):>6}  "
            f"{table['last_error'] or ''}"
        )
    lines += _verification_lines(status["tables"])
    gaps = [table for table in status["tables"] if table.get("gap")]
    if gaps:
        lines += ["", "NOT MERGED — the change log cannot complete these snapshots:"]
        lines += [f"  {table['table']}: {table['gap']}" for table in gaps]
    unloaded = [table["table"] for table in status["tables"] if table["snapshot"] == "not loaded"
                and (table["last_batch"] or {}).get("status") == WAITING_FOR_FULL_LOAD]
    if unloaded:
        lines += ["", "WAITING FOR A FULL LOAD — the source has these tables, the lake has none of their rows (no "
                  "full load, no CREATE in the change log); their changes wait in the change log:"]
        lines += [f"  {table}" for table in unloaded]
        lines.append("  load them: spark-submit jobs/full_load.py --config <config> (while the merge runs, with "
                     "full_load.target_table_prep_mode: DO_NOTHING so tables already loaded are skipped)")
    return "\n".join(lines)


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{max(seconds, 0):.0f} s"


def _verification_lines(tables: list[dict[str, Any]]) -> list[str]:
    """The verifier's part of the read-out: ``verified_as_of`` per table, then, loudly, the tables
    whose latest verification found rows that differ."""
    checked = [t for t in tables if t.get("last_verification")]
    if not checked:
        return []
    lines = ["", "verified equal as of (binlake validate: every chunk matched a source snapshot at or after "
             "this position):"]
    for table in checked:
        as_of, last = table.get("verified_as_of"), table["last_verification"]
        text = (f"{as_of['position']} at {as_of['at'][:19]} ({_age(as_of['age_seconds'])} ago, {as_of['chunks']} "
                f"chunk(s))" if as_of else "never")
        if last["status"] != "OK":
            text += f"; latest check {last['finished_at'][:19]}: {last['status']}"
            if last["status"] == "IN FLIGHT":
                text += f" ({last['in_flight']} row(s) changed while checked: not compared; try --wait)"
        lines.append(f"  {table['table']}: {text}")
    differing = [t for t in checked if t["last_verification"]["status"] == "DIFFERENT"]
    if differing:
        lines += ["", "DIFFERENT — the latest verification found lake rows that differ from the source:"]
    for table in differing:
        last = table["last_verification"]
        text = (f"  {table['table']}: {len(last['differing_chunks'])} of {last['chunks']} chunk(s) differ "
                f"({last['mismatched']} mismatched, {last['missing']} missing, {last['extra']} extra), checked "
                f"{last['finished_at'][:19]}; ")
        if last.get("repair"):
            text += (f"repair resync {last['repair']} started (binlake tables shows when the merge has applied it; "
                     "the next verification checks it)")
        else:
            text += ("NOT REPAIRED" + (f" ({last['repair_error']})" if last.get("repair_error") else "")
                     + ": run binlake validate --config <config> --repair")
        lines.append(text)
    return lines


def source_end_lsn(config: PipelineConfig) -> int | None:
    """The source's current binlog end as an lsn (``None`` when the source cannot be reached)."""
    from binlake.source import SourceError, connect, master_position, server_id, server_uuid

    try:
        conn = connect(config.source)
    except SourceError:
        return None
    try:
        end = master_position(conn)
        latest = load_registry(Lake.from_config(config)).latest  # the end in the capture's current epoch
        if latest is not None and latest.same_server(server_id(conn), server_uuid(conn)):
            end = end.in_epoch(latest.epoch)
        return end.lsn
    finally:
        conn.close()


def _label(value: str) -> str:
    """A Prometheus label value: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


_METRICS = {
    "binlake_capture_running": "1 while the capture runs (its status file says running).",
    "binlake_capture_lag_seconds": "Source commit time of the last event read to now, as the capture saw it.",
    "binlake_capture_events_per_second": "Binlog events read per second (last interval).",
    "binlake_capture_changelog_files": "Change-log files in the lake.",
    "binlake_capture_status_age_seconds": "Seconds since the capture last wrote its status (stale = not running).",
    "binlake_merge_batch_id": "Last micro-batch the merge finished.",
    "binlake_merge_applied_lsn": "Source position (lsn) up to which every change is in the lake.",
    "binlake_source_end_lsn": "The source's binlog end (lsn), with --source.",
    "binlake_capture_epoch": "Binlog history (epoch) the capture reads now; it grows on a failover, reset or gap.",
    "binlake_table_snapshot_complete": "1 when the table's full load is complete.",
    "binlake_table_snapshot_rows": "Rows the full load wrote.",
    "binlake_table_applied_lsn": "Last source position merged into the table.",
    "binlake_table_lag_seconds": "Source commit to Delta commit of the table's last merged change.",
    "binlake_table_last_batch_rows": "Rows the last batch inserted, updated and deleted (label op).",
    "binlake_table_error": "1 when the table's last merge reported an error.",
    "binlake_table_gap": "1 when the change log cannot complete the table's snapshot: not merged until reloaded.",
    "binlake_table_verified_as_of_lsn": "Source position (lsn) the table was last verified equal as of.",
    "binlake_table_verified_age_seconds": "Seconds since the verification that found the table equal finished.",
    "binlake_table_verification_differs": "1 when the table's latest verification found rows that differ.",
    "binlake_catalog_ok": "1 when the last registration in lake.catalog had no failure (binlake.registration).",
    "binlake_catalog_tables": "Lake tables registered by name at the last registration in lake.catalog.",
    "binlake_catalog_refused": "Live lake tables the catalog cannot hold under their names (listed by binlake status).",
}


def to_prometheus(status: dict[str, Any]) -> str:
    """The status in the Prometheus text exposition format (gauges), e.g. for node_exporter's
    textfile collector: ``binlake status --prometheus > /var/lib/node_exporter/binlake.prom``.
    Every sample carries ``pipeline``; table samples also ``table``. Unknown values are left out."""
    pipeline = f'pipeline="{_label(str(status["pipeline"]))}"'
    samples: dict[str, list[str]] = {name: [] for name in _METRICS}

    def add(name: str, value: Any, labels: str = "") -> None:
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, int | float):
            samples[name].append(f"{name}{{{pipeline}{labels}}} {value}")

    capture, merge = status["capture"], status["merge"]
    add("binlake_capture_running", capture.get("state") == "running")
    add("binlake_capture_lag_seconds", capture.get("lag_seconds"))
    add("binlake_capture_events_per_second", capture.get("events_per_second"))
    add("binlake_capture_changelog_files", capture.get("changelog_files"))
    add("binlake_capture_status_age_seconds", capture.get("status_age_seconds"))
    add("binlake_merge_batch_id", merge.get("batch_id"))
    add("binlake_merge_applied_lsn", merge.get("applied_lsn"))
    add("binlake_source_end_lsn", status.get("source_end_lsn"))
    if status.get("history"):
        add("binlake_capture_epoch", status["history"][-1]["epoch"])
    for table in status["tables"]:
        labels = f',table="{_label(table["table"])}"'
        batch = table.get("last_batch") or {}
        add("binlake_table_snapshot_complete", table["snapshot"] == "complete", labels)
        add("binlake_table_snapshot_rows", table.get("snapshot_rows"), labels)
        add("binlake_table_applied_lsn", table.get("applied_lsn"), labels)
        add("binlake_table_lag_seconds", table.get("lag_seconds"), labels)
        for op in ("inserted", "updated", "deleted"):
            add("binlake_table_last_batch_rows", batch.get(op), f'{labels},op="{op}"')
        add("binlake_table_error", bool(table.get("last_error")), labels)
        if "gap" in table:  # known once binlake has a history registry to check against
            add("binlake_table_gap", bool(table["gap"]), labels)
        as_of, last = table.get("verified_as_of") or {}, table.get("last_verification")
        add("binlake_table_verified_as_of_lsn", as_of.get("lsn"), labels)
        add("binlake_table_verified_age_seconds", as_of.get("age_seconds"), labels)
        if last:
            add("binlake_table_verification_differs", last["status"] == "DIFFERENT", labels)
    catalog = status.get("catalog")
    if catalog:
        add("binlake_catalog_ok", bool(catalog.get("ok")))
        add("binlake_catalog_tables", len(catalog.get("registered") or []))
        add("binlake_catalog_refused", len(catalog.get("refused") or []))
    lines: list[str] = []
    for name, help_text in _METRICS.items():
        if samples[name]:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *samples[name]]
    return "\n".join(lines) + "\n"


def to_json(status: dict[str, Any]) -> str:
    return json.dumps(status, indent=2, default=str)
