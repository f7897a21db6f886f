"""``binlake tables``: every source table the mapping selects → its target name → its lake path, with
its state as binlake's own files tell it (no Spark).

States: ``not loaded`` (no full-load state: run the full load; its changes wait in the change log),
``loading``, ``loaded`` (full load complete, the merge has not joined it yet: its changes wait in
the change log), ``created`` (created at the source while replication runs, no row merged yet: it
needs no full load, :mod:`binlake.merge.birth`), ``joined`` (the merge applies its changes),
``old layout`` (an older binlake loaded it under paths that changed: migrate, see
:mod:`binlake.catalog`), ``collision`` (another selected table has the same lake table: refused by
the full load, the capture and the merge), ``bad name`` (the name cannot become a lake path).

An online schema change helper table replicated with its table (:mod:`binlake.osc`: gh-ost's
``_t_gho``, pt-osc's ``_t_new``, …) is no user table: its row says so (``helper``), the text lists it
apart, after the user tables. It lives only while the tool runs; the tool's ``DROP`` empties it in the
lake as any ``DROP TABLE`` does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from binlake.catalog import CatalogEntry, current_paths, find_legacy_state
from binlake.config import PipelineConfig
from binlake.lake import Lake
from binlake.names import LakeNameError, TargetClaims, TargetCollisionError
from binlake.progress import read_json
from binlake.rules import TableMapping, TableTarget
from binlake.snapshot.state import CREATED_IN_STREAM


@dataclass(frozen=True)
class TableRow:
    source_schema: str
    source_table: str
    schema: str
    table: str
    path: str | None          # the Delta table's URI (None: the name cannot become a path)
    state: str
    load_id: str | None = None
    problem: str | None = None
    resync: str | None = None  # the latest online resync (binlake.resync), e.g. "r… applied (4 chunk(s), …)"
    waiting: str | None = None  # an automatic resync asked and not applied yet (binlake.merge.autoresync)
    verified: str | None = None  # the latest verifications (binlake.verification), e.g. "verified equal as of …"
    helper: str | None = None  # an online schema change helper table, e.g. "gh-ost ghost table of orders"


def _state(lake: Lake, entry: CatalogEntry) -> tuple[str, str | None]:
    if find_legacy_state(lake, entry) is not None:
        return "old layout", None
    snapshot = read_json(lake, entry.state_key)
    if snapshot is None:
        return "not loaded", None
    load_id = str(snapshot.get("load_id")) if snapshot.get("load_id") else None
    if snapshot.get("status") != "complete":
        return "loading", load_id
    joined = read_json(lake, current_paths(entry)["joined"])
    if joined and joined.get("load_id") == load_id:
        return "joined", load_id
    return ("created" if snapshot.get("prep_mode") == CREATED_IN_STREAM else "loaded"), load_id


def table_rows(lake: Lake, targets: Sequence[TableTarget]) -> list[TableRow]:
    """One row per selected table (``targets`` from :func:`binlake.snapshot.discovery.selected_targets`)."""
    claims = TargetClaims()
    problems: dict[tuple[str, str], tuple[str, str]] = {}
    for t in targets:
        try:
            claims.claim((t.source_schema, t.source_table), (t.schema, t.table))
        except TargetCollisionError as exc:
            problems[(t.source_schema, t.source_table)] = ("collision", str(exc))
    owners: dict[tuple[str, str], tuple[str, str]] = {}
    for t in targets:
        owner = owners.setdefault((t.schema, t.table), (t.source_schema, t.source_table))
        if owner != (t.source_schema, t.source_table):
            problems.setdefault(owner, problems[(t.source_schema, t.source_table)])
    rows = []
    for t in targets:
        entry = CatalogEntry(t.source_schema, t.source_table, t.schema, t.table)
        problem = problems.get((t.source_schema, t.source_table))
        try:
            path = lake.uri(entry.path)
            state, load_id = _state(lake, entry) if problem is None else (problem[0], None)
        except LakeNameError as exc:
            path, state, load_id, problem = None, "bad name", None, ("bad name", str(exc))
        rows.append(TableRow(t.source_schema, t.source_table, t.schema, t.table, path, state, load_id,
                             problem[1] if problem else None, None if path is None else last_resync(lake, entry),
                             None if path is None else unapplied_resync(lake, entry),
                             None if path is None else last_verification(lake, entry),
                             t.helper.describe() if t.helper is not None else None))
    return rows


def unapplied_resync(lake: Lake, entry: CatalogEntry) -> str | None:
    """The table's automatic resync requests that are not applied yet (pending, or served by a
    resync whose chunks are not all applied), said in a sentence; None when there are none. After an
    online schema change swap the lake could not apply in place, the table is half-old until then."""
    from binlake.merge.autoresync import DONE, read_requests
    from binlake.merge.summary import TableName
    from binlake.merge.swaps import SWAP_REASON
    from binlake.resync import store

    resyncs = {r.resync_id: r for r in store.table_resyncs(lake, entry.schema, entry.table)}

    def applied(resync_id: str | None) -> bool:
        resync = resyncs.get(resync_id or "")
        return resync is not None and store.read_applied(lake, resync).covers(resync) and not resync.pending

    name = TableName(entry.source_schema, entry.source_table, entry.schema, entry.table)
    open_ = [r for r in read_requests(lake, name)
             if r.state != DONE or (r.resync_id is not None and not applied(r.resync_id))]
    if not open_:
        return None
    lsns = ", ".join(str(r.lsn) for r in open_)
    if any(SWAP_REASON in r.reason for r in open_):
        return (f"being resynced after an {SWAP_REASON} (lsn {lsns}): the lake table is half-old (rows and "
                "columns of the table before the swap) until every chunk is applied")
    return f"automatic resync asked (lsn {lsns}), not applied yet: " + "; ".join(sorted({r.reason for r in open_}))


def last_verification(lake: Lake, entry: CatalogEntry) -> str | None:
    """The table's verification record in one line, or None when no validation checked it in full."""
    from binlake.verification import RecordError, read_record

    try:
        record = read_record(lake, entry.schema, entry.table)
    except RecordError as exc:
        return f"verification record unreadable: {exc}"
    return record.summary() if record else None


def last_resync(lake: Lake, entry: CatalogEntry) -> str | None:
    """The state of the table's latest online resync, or None when it never had one."""
    from binlake.resync import store
    from binlake.resync.report import last_resync_text

    resyncs = store.table_resyncs(lake, entry.schema, entry.table)
    return last_resync_text(resyncs[-1], store.read_applied(lake, resyncs[-1])) if resyncs else None


def list_tables(config: PipelineConfig, lake: Lake | None = None) -> list[TableRow]:
    """Ask the source which tables the mapping selects now; their rows."""
    from binlake.snapshot.discovery import selected_targets
    from binlake.source import connect

    with connect(config.source) as conn:
        targets = selected_targets(conn, TableMapping.parse(config.table_mappings))
    return table_rows(lake or Lake.from_config(config), targets)


def to_json(rows: Sequence[TableRow]) -> str:
    return json.dumps([_json_row(row) for row in rows], indent=1, ensure_ascii=False)


def _json_row(row: TableRow) -> dict[str, Any]:
    data = asdict(row)
    return {"source": {"schema": data.pop("source_schema"), "table": data.pop("source_table")},
            "target": {"schema": data.pop("schema"), "table": data.pop("table")}, **data}


def render_text(rows: Sequence[TableRow]) -> str:
    """Aligned columns: source, target, state, lake path; then the problems, one a line."""
    def q(schema: str, table: str) -> str:
        return f"{schema}.{table}"

    rows = [r for r in rows if r.helper is None] + [r for r in rows if r.helper is not None]
    lines = [("source table", "lake table", "state", "lake path")]
    lines += [(q(r.source_schema, r.source_table), q(r.schema, r.table), r.state, r.path or "-") for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(3)]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(line[:3], widths, strict=True)) + "  " + line[3]
            for line in lines]
    resyncs = [f"  {q(r.source_schema, r.source_table)}: last resync {r.resync}" for r in rows if r.resync]
    resyncs += [f"  {q(r.source_schema, r.source_table)}: {r.waiting}" for r in rows if r.waiting]
    resyncs += [f"  {q(r.source_schema, r.source_table)}: {r.verified}" for r in rows if r.verified]
    resyncs += [f"  {q(r.source_schema, r.source_table)}: not a user table — {r.helper}, replicated with it "
                "while the tool runs" for r in rows if r.helper]
    problems = sorted({r.problem for r in rows if r.problem})
    return ("\n".join(text + resyncs + [f"! {p}" for p in problems]) if rows
            else "no table is selected by the table mapping")
