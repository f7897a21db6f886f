"""How much of a table one MERGE step may apply (records, bytes), fixed per batch for its replays.

The plan (:func:`binlake.merge.plan.plan_steps`) cuts a table's rows between two DDLs into steps of
at most :attr:`Bounds.records` change-log records and :attr:`Bounds.bytes` bytes of row images, so
the memory of a step does not depend on the size of the backlog (see docs/merge.md, *Memory*).

Replay stability: the steps of batch ``b`` — and so the Delta transaction of each — depend on the
bounds. A replay of ``b`` must plan the same steps, even when ``merge.max_batch_records`` /
``max_batch_bytes`` were changed before the restart: with coarser steps a replay would skip a step
by its transaction that covers more than the first attempt committed. So the bounds a batch first
ran with are recorded (``_binlake/merge/bounds.json``: app id, batch id, bounds) before any of its
commits, and a replay of that batch uses them (:func:`bounds_for_batch`). One record suffices:
Spark replays only the last batch it planned, after every earlier one is committed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from binlake.lake import MERGE_BOUNDS_KEY, Lake

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bounds:
    """Most change-log records and bytes of row images (``before`` + ``after``) per rows step.

    A step may exceed them only by what cannot be cut: the records of one lsn bucket
    (:data:`binlake.merge.summary.BUCKET_BITS`, 1 MiB of binlog)."""

    records: int
    bytes: int

    def __post_init__(self) -> None:
        if self.records < 1 or self.bytes < 1:
            raise ValueError(f"bounds must be >= 1, got {self.records} records, {self.bytes} bytes")

    def exceeded_by(self, records: int, size: int) -> bool:
        return records > self.records or size > self.bytes


UNBOUNDED = Bounds(2**62, 2**62)


def bounds_for_batch(lake: Lake, app_id: str, batch_id: int, configured: Bounds) -> Bounds:
    """The bounds batch ``batch_id`` of ``app_id`` plans with: those recorded by its first attempt
    when this is a replay, else ``configured`` (recorded now, durably, before the batch commits)."""
    recorded = _read(lake)
    if recorded is not None and recorded.get("app_id") == app_id and recorded.get("batch_id") == batch_id:
        bounds = Bounds(int(recorded["max_batch_records"]), int(recorded["max_batch_bytes"]))
        if bounds != configured:
            log.warning("merge batch %d is a replay: it keeps the bounds of its first attempt (%d records, %d "
                        "bytes per step); the configured ones apply from the next batch", batch_id,
                        bounds.records, bounds.bytes)
        return bounds
    data = {"app_id": app_id, "batch_id": batch_id, "max_batch_records": configured.records,
            "max_batch_bytes": configured.bytes}
    lake.put_bytes(MERGE_BOUNDS_KEY, json.dumps(data, indent=1).encode())
    return configured


def _read(lake: Lake) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(lake.get_bytes(MERGE_BOUNDS_KEY))
    except FileNotFoundError:
        return None
    return data
