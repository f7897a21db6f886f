"""The full load's refusal to reload a table under a running merge (pure decision + lake reads).

A DROP_AND_CREATE or TRUNCATE_BEFORE_LOAD full load of a table the merge has joined, while the merge
runs, is not exact: the drop and the reload race the merge's commits (two writers on one Delta table,
and rows deleted at the source during the reload stay in the lake). ``binlake resync`` does the same
job online and exactly, so such a load is refused with a message pointing at it. A DO_NOTHING load,
a table the merge has not joined, or a merge that is not running (its heartbeat stopped or stale,
:mod:`binlake.merge.heartbeat`) are let through.
"""

from __future__ import annotations

import datetime

from binlake.config import PrepMode
from binlake.lake import Lake
from binlake.merge.handoff import joined_load, read_handoff
from binlake.merge.heartbeat import read_heartbeat, stale_after
from binlake.merge.summary import TableName
from binlake.snapshot.discovery import SourceTable

RELOADING_MODES = frozenset({PrepMode.DROP_AND_CREATE, PrepMode.TRUNCATE_BEFORE_LOAD})


class ReloadUnderMergeError(RuntimeError):
    """A full load would drop or truncate a table the running merge writes."""


def refuse_reload_while_merging(lake: Lake, table: SourceTable, mode: PrepMode, now: datetime.datetime,
                                trigger_seconds: float) -> None:
    """Raise :class:`ReloadUnderMergeError` when ``mode`` drops or truncates a joined table while the
    merge is running (see the module docstring)."""
    if mode not in RELOADING_MODES:
        return
    name = TableName(table.schema, table.name, table.target.schema, table.target.table)
    handoff = read_handoff(lake, name)
    if handoff is None or joined_load(lake, name) != handoff.load_id:
        return
    beat = read_heartbeat(lake)
    if beat is None or not beat.running(now, stale_after(trigger_seconds)):
        return
    raise ReloadUnderMergeError(
        f"{table.qualified}: refusing a {mode.value} full load of a table the running merge writes (merge "
        f"heartbeat {beat.at.isoformat()} from {beat.host} pid {beat.pid}): dropping or truncating it now "
        f"would race the merge and leave rows deleted at the source during the reload in the lake. "
        f"Re-synchronise it online instead: binlake resync --config <config> --table {table.qualified} "
        "(or stop the merge first)")
