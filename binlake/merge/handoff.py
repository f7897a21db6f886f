"""Hand-off from the full load to the stream, per table.

A table takes part in the merge once its full load is complete
(``_binlake/snapshots/<source schema>/<source table>.json``, status ``complete``). Until then its
records are left alone by the stream — they are not lost: when the merge first sees the table
complete (or completed again by a new load, i.e. a new ``load_id``), it *joins* the table: it
re-reads from the change log every file that may hold a change after the snapshot's lowest chunk
lsn, up to the end of the current batch, and applies those changes in the same micro-batch. Changes
at or below a row's own chunk lsn are then skipped by the lsn guard of the MERGE (each snapshot row
carries its chunk's lsn), changes above it are applied: no change is lost or doubled, including
those made while the full load ran.

After a join, ``_binlake/merge/tables/<schema>/<table>.json`` records which load the merge joined.
This requires the change log to be kept at least back to the oldest incomplete full load.

**No silent gap.** A table is joined — and, once joined, merged — only while the change log is
continuous from at or below its snapshot (:func:`gap`, from the capture's binlog history registry,
:func:`binlake.capture.history.snapshot_gap`). A snapshot older than the start of the change log
(the capture started after the full load, was restarted with ``start: end`` or an explicit
position, or the source changed history without a GTID join), or read from another server than
the epoch it is labelled with, leaves the table out: the merge logs an error naming it, the other
tables proceed, and ``binlake status`` shows the gap and the fix (reload that table). A reload
(new ``load_id``) with a snapshot inside the continuous change log joins again.
"""

from __future__ import annotations

import datetime
import json
import logging
from dataclasses import dataclass
from typing import Any

from binlake.capture.history import Registry, snapshot_gap
from binlake.lake import CHANGELOG_DIR, MERGE_DIR, Lake, parse_changelog_name, snapshot_state_key, table_segments
from binlake.merge.summary import TableName
from binlake.positions import BinlogPosition
from binlake.snapshot.state import TableState

log = logging.getLogger(__name__)

WAITING = "waiting_for_snapshot"
GAP = "gap_before_change_log"


@dataclass(frozen=True)
class Handoff:
    """What the merge needs from a table's full-load state."""

    load_id: str
    complete: bool
    min_lsn: int
    min_position: BinlogPosition | None = None
    server_id: int | None = None  # the server the snapshot was read from (None: older state files)

    @classmethod
    def from_state(cls, state: TableState) -> Handoff:
        low = state.min_position or state.low_watermark
        return cls(state.load_id, state.complete, low.lsn, low, state.source_server_id)


def gap(registry: Registry, handoff: Handoff) -> str | None:
    """Why the change log cannot complete this table's snapshot (``None``: it can; see module doc)."""
    if handoff.min_position is None:
        return None
    return snapshot_gap(registry, handoff.min_position, handoff.server_id)


def read_handoff(lake: Lake, name: TableName) -> Handoff | None:
    """The table's full-load state, or None when it has none (never loaded)."""
    key = snapshot_state_key(name.source_schema, name.source_table)
    try:
        raw = lake.get_bytes(key)
    except FileNotFoundError:
        return None
    return Handoff.from_state(TableState.from_json(raw))


def joined_key(name: TableName) -> str:
    """``_binlake/merge/tables/<schema>/<table>.json`` (target names, encoded as every table path)."""
    return f"{MERGE_DIR}/tables/{table_segments(name.schema, name.table)}.json"


def joined_load(lake: Lake, name: TableName) -> str | None:
    """The ``load_id`` the merge joined for this table, if any."""
    try:
        data: dict[str, Any] = json.loads(lake.get_bytes(joined_key(name)))
    except FileNotFoundError:
        return None
    return str(data.get("load_id")) if data.get("load_id") else None


def joined_in_batch(lake: Lake, name: TableName) -> int | None:
    """The batch id that joined the table (recorded after the join's last commit), if any: a
    replay of that very batch joins again, so it plans the same steps as its first attempt."""
    try:
        data: dict[str, Any] = json.loads(lake.get_bytes(joined_key(name)))
    except FileNotFoundError:
        return None
    return int(data["batch_id"]) if data.get("batch_id") is not None else None


def record_join(lake: Lake, name: TableName, handoff: Handoff, batch_id: int, when: datetime.datetime) -> None:
    data = {"load_id": handoff.load_id, "min_lsn": handoff.min_lsn, "batch_id": batch_id,
            "joined_at": when.isoformat(), "source": {"schema": name.source_schema, "table": name.source_table}}
    lake.put_bytes(joined_key(name), json.dumps(data, indent=1).encode())


def catchup_keys(lake: Lake, after_lsn: int, upto_lsn: int) -> list[str]:
    """Change-log files that may hold records with ``after_lsn < lsn <= upto_lsn``."""
    keys = []
    for key in lake.list(CHANGELOG_DIR):
        try:
            first, last = parse_changelog_name(key)
        except ValueError:
            continue
        if last > after_lsn and first <= upto_lsn:
            keys.append(key)
    return keys
