"""When the merge's maintenance (:mod:`binlake.merge.maintenance`) runs: pure rules over its
progress state, the JSON of ``_binlake/merge/maintenance.json``.

The state maps a name — ``schema.table`` of a lake table, or :data:`METRICS` — to an entry:
``batches`` (batches that changed it since its last round), ``optimized_at`` (its last round),
``vacuumed_at`` (its last daily step), and for a lake table ``schema`` / ``table``. Times are ISO
8601 with a zone.

* A lake table counts a batch when the batch changed it (merged or joined, at least one row or
  DDL); the metrics table counts every batch that changed any table (each one appends its rows).
* A name is *due* for a round once it counted ``merge.optimize_every_batches`` batches (0 = never).
  A round compacts the lake table and compacts and vacuums binlake's own tables (its tombstones,
  the metrics) — see the maintenance module.
* The *daily* step (row retention of tombstones and metrics, VACUUM of the lake table) joins a
  round when :data:`VACUUM_EVERY` has passed since the last one; a lake table seen for the first
  time counts as vacuumed then (its first daily step a period later), the metrics table is due at
  its first round.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

VACUUM_EVERY = datetime.timedelta(hours=24)
METRICS = "_binlake.merge.metrics"

State = dict[str, dict[str, Any]]


def count_batch(state: Mapping[str, Mapping[str, Any]], changed: Sequence[tuple[str, str]],
                now: datetime.datetime, every: int) -> tuple[State, list[str]]:
    """The state after one batch that changed the lake tables ``changed`` (``(schema, table)``
    pairs), and the names now due for a round: the changed tables in sorted order, then
    :data:`METRICS`. Nothing is counted when ``every`` is 0 (maintenance off) or nothing changed."""
    new: State = {name: dict(entry) for name, entry in state.items()}
    tables = sorted(set(changed))
    if every <= 0 or not tables:
        return new, []
    names = [f"{schema}.{table}" for schema, table in tables]
    for (schema, table), name in zip(tables, names, strict=True):
        entry = new.setdefault(name, {"vacuumed_at": now.isoformat()})  # first daily step a period later
        entry.update(schema=schema, table=table)
    for name in [*names, METRICS]:
        entry = new.setdefault(name, {})
        entry["batches"] = int(entry.get("batches", 0)) + 1
    return new, [name for name in [*names, METRICS] if new[name]["batches"] >= every]


def daily_due(entry: Mapping[str, Any], now: datetime.datetime) -> bool:
    """Is the daily step due for this entry (never done, or :data:`VACUUM_EVERY` ago)?"""
    last = entry.get("vacuumed_at")
    return last is None or now - datetime.datetime.fromisoformat(str(last)) >= VACUUM_EVERY


def round_done(entry: Mapping[str, Any], now: datetime.datetime) -> dict[str, Any]:
    """The entry after a round: no batch counted since, the round's time."""
    return {**entry, "batches": 0, "optimized_at": now.isoformat()}


def daily_done(entry: Mapping[str, Any], now: datetime.datetime) -> dict[str, Any]:
    """The entry after its daily step."""
    return {**entry, "vacuumed_at": now.isoformat()}
