"""What ``binlake capture-status`` shows: status.json, the checkpoint and the change-log files."""

from __future__ import annotations

import time
from typing import Any

from binlake.capture.checkpoint import load_checkpoint
from binlake.capture.status import read_status
from binlake.changelog import list_changelog
from binlake.config import PipelineConfig
from binlake.lake import Lake


def status_report(config: PipelineConfig, lake: Lake | None = None) -> dict[str, Any]:
    """A flat dict: state, position, checkpoint, lag, rates, file counts, age of the status."""
    lake = lake or Lake.from_config(config)
    status = read_status(lake) or {}
    checkpoint = load_checkpoint(lake)
    position = status.get("position") or {}
    updated = status.get("updated_at")
    return {
        "state": status.get("state", "never ran"),
        "position": f"{position.get('file')}:{position.get('pos')}" if position else None,
        "gtid": position.get("gtid"),
        "checkpoint": str(checkpoint.position) if checkpoint else None,
        "lag_seconds": status.get("lag_seconds"),
        "events_per_second": status.get("events_per_second"),
        "records_per_second": status.get("records_per_second"),
        "files_written_total": checkpoint.files_written if checkpoint else 0,
        "changelog_files": len(list_changelog(lake)),
        "last_file": status.get("last_file"),
        "reconnects": status.get("reconnects"),
        "error": status.get("error"),
        "status_age_seconds": round(time.time() - updated, 1) if isinstance(updated, int | float) else None,
    }
