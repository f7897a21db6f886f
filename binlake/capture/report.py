"""What ``binlake capture-status`` shows: status.json, the checkpoint and the change-log files."""

from __future__ import annotations

import time
from typing import Any

from binlake.capture.checkpoint import load_checkpoint
from binlake.capture.status import local_status_path, read_status
from binlake.changelog import list_changelog
from binlake.config import PipelineConfig
from binlake.lake import Lake
from binlake.retry import NO_RETRY, LakeError


def status_report(config: PipelineConfig, lake: Lake | None = None) -> dict[str, Any]:
    """A flat dict: state, position, checkpoint, lag, rates, file counts, age of the status.

    The status is the newer of the lake's and the capture's local copy; the lake is asked once,
    without retries, so the read-out answers at once when the lake is down (``lake_error``)."""
    lake = (lake or Lake.from_config(config)).with_retry(NO_RETRY)
    status = read_status(lake, local_status_path(config)) or {}
    lake_error = status.get("lake_error")
    try:
        checkpoint = load_checkpoint(lake)
        changelog_files: int | None = len(list_changelog(lake))
    except LakeError as exc:
        checkpoint, changelog_files, lake_error = None, None, str(exc)
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
        "changelog_files": changelog_files,
        "last_file": status.get("last_file"),
        "reconnects": status.get("reconnects"),
        "error": status.get("error"),
        "lake_error": lake_error,
        "status_age_seconds": round(time.time() - updated, 1) if isinstance(updated, int | float) else None,
    }
