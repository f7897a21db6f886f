"""The table properties of a Delta table, read from its transaction log without Spark.

Registration needs one fact per lake table that only the Delta table holds: whether the merge
applied a ``DROP TABLE`` to it (:data:`binlake.merge.target.DROPPED_LSN`). Reading it needs no JVM:
per the Delta protocol (``PROTOCOL.md``, "Metadata", "Checkpoints"), the table's properties are the
``configuration`` of the latest ``metaData`` action — in the newest commit file
(``_delta_log/<version>.json``, one action a line) that has one, else in the newest checkpoint at
or below the oldest commit looked at (classic ``<v>.checkpoint.parquet``, multi-part
``<v>.checkpoint.<i>.<n>.parquet``, or a V2 checkpoint ``<v>.checkpoint.<uuid>.json|parquet``).

Commits above the newest checkpoint are read newest first; a commit file being written is never
seen (Delta writes commits atomically: put-if-absent, rename on HDFS).
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pyarrow.parquet as pq

from binlake.lake import Lake

_COMMIT = re.compile(r"(\d{20})\.json")
_CHECKPOINT = re.compile(r"(\d{20})\.checkpoint(?:\.\d+\.\d+|\.[0-9a-fA-F-]{36})?\.(parquet|json)")


class DeltaLogError(RuntimeError):
    """A Delta log without the metadata the protocol promises (a damaged or foreign table)."""


def _versions(names: list[str]) -> tuple[list[int], dict[int, list[str]]]:
    commits: list[int] = []
    checkpoints: dict[int, list[str]] = {}
    for name in names:
        if (m := _COMMIT.fullmatch(name)) is not None:
            commits.append(int(m.group(1)))
        elif (m := _CHECKPOINT.fullmatch(name)) is not None:
            checkpoints.setdefault(int(m.group(1)), []).append(name)
    return sorted(commits), checkpoints


def _metadata_in_commit(data: bytes) -> dict[str, Any] | None:
    for line in data.decode("utf-8").splitlines():
        if line.strip():
            action = json.loads(line)
            if "metaData" in action:
                return dict(action["metaData"])
    return None


def _metadata_in_checkpoint(lake: Lake, log_key: str, names: list[str]) -> dict[str, Any] | None:
    for name in sorted(names):
        data = lake.get_bytes(f"{log_key}/{name}")
        if name.endswith(".json"):
            found = _metadata_in_commit(data)
        else:
            rows = pq.read_table(io.BytesIO(data), columns=["metaData"]).column("metaData").to_pylist()
            found = next((row for row in rows if row is not None), None)
        if found is not None:
            return dict(found)
    return None


def _configuration(metadata: dict[str, Any]) -> dict[str, str]:
    conf = metadata.get("configuration") or {}
    pairs = conf.items() if isinstance(conf, dict) else conf  # a Parquet map reads as (key, value) pairs
    return {str(k): str(v) for k, v in pairs}


def table_properties(lake: Lake, table_key: str) -> dict[str, str] | None:
    """The properties (``TBLPROPERTIES``) of the Delta table at ``table_key`` (relative to the lake
    root), or ``None`` when there is no Delta table there (no commit in ``_delta_log``)."""
    log_key = f"{table_key}/_delta_log"
    names = [key.rsplit("/", 1)[-1] for key in lake.list(log_key)]
    commits, checkpoints = _versions(names)
    if not commits and not checkpoints:
        return None
    newest_checkpoint = max(checkpoints, default=-1)
    for version in reversed(commits):
        if version <= newest_checkpoint:
            break
        metadata = _metadata_in_commit(lake.get_bytes(f"{log_key}/{version:020d}.json"))
        if metadata is not None:
            return _configuration(metadata)
    if newest_checkpoint >= 0:
        metadata = _metadata_in_checkpoint(lake, log_key, checkpoints[newest_checkpoint])
        if metadata is not None:
            return _configuration(metadata)
    raise DeltaLogError(f"{lake.uri(log_key)}: no metaData action in the commits after the newest checkpoint "
                        "nor in that checkpoint: not a Delta table binlake can read")
