"""How far the lake has got: the source position up to which the merge has applied every change.

Used by ``binlake status`` (lag) and ``binlake validate`` (is a difference real, or still in flight?).
No Spark, no source connection: it reads binlake's own files in the lake.

``applied_lsn`` is exact under these facts:

* the merge's ``status.json`` holds ``lsn``: the highest change-log lsn it has merged;
* the change log holds every change of the selected tables; capture's checkpoint is a position
  up to which every such change is in a durable change-log file;
* change-log file names carry ``<lsn_first>-<lsn_last>``.

So everything up to the first change-log record the merge has *not* applied is in the lake: if no
file ends above the merge's lsn, that is the capture checkpoint (the stretch after the last change
held no change of a selected table); otherwise it is just below the first record of the earliest
file that ends above it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from binlake.changelog import list_changelog
from binlake.lake import CHECKPOINT_KEY, MERGE_STATUS_KEY, Lake, parse_changelog_name


def read_json(lake: Lake, key: str) -> dict[str, Any] | None:
    """A JSON object from the lake, or ``None`` when it does not exist (yet)."""
    if not lake.exists(key):
        return None
    data = json.loads(lake.get_bytes(key))
    return data if isinstance(data, dict) else None


@dataclass(frozen=True)
class LakeProgress:
    """Positions read from the lake's own state (``None`` = not known yet)."""

    merged_lsn: int | None       # highest change-log lsn the merge has applied
    captured_lsn: int | None     # capture checkpoint: all changes up to here are in the change log
    applied_lsn: int | None      # every change up to here is in the lake (see module docstring)


def applied_lsn(merged: int | None, captured: int | None, file_ranges: list[tuple[int, int]]) -> int | None:
    """Pure core of :func:`read_progress`: see the module docstring."""
    if merged is None:
        return None
    pending = [first for first, last in file_ranges if last > merged]
    if not pending:
        return max(merged, captured) if captured is not None else merged
    return max(merged, min(pending) - 1)


def read_progress(lake: Lake, baseline: int | None = None) -> LakeProgress:
    """Progress from the lake's files; ``baseline`` is an lsn known to be applied already (e.g. a
    table's snapshot position), used when the merge has applied nothing beyond it."""
    merge_status = read_json(lake, MERGE_STATUS_KEY) or {}
    checkpoint = read_json(lake, CHECKPOINT_KEY) or {}
    known = [lsn for lsn in (merge_status.get("lsn"), baseline) if lsn is not None]
    merged = max(known) if known else None
    captured = (checkpoint.get("position") or {}).get("lsn")
    ranges = [parse_changelog_name(key) for key in list_changelog(lake)]
    return LakeProgress(merged, captured, applied_lsn(merged, captured, ranges))
