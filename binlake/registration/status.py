"""The catalog's part of ``binlake status``: the last registration's record, no Spark, no catalog call."""

from __future__ import annotations

from typing import Any

from binlake.config import CatalogKind, PipelineConfig
from binlake.lake import REGISTRATION_KEY, Lake
from binlake.progress import read_json


def catalog_status(config: PipelineConfig, lake: Lake) -> dict[str, Any] | None:
    """``None`` without ``lake.catalog``; else the last sync's record (``{"catalog": …, "never": True}``
    before the first one; ``{"error": …}`` when the lake cannot be read)."""
    if config.lake.catalog == CatalogKind.NONE:
        return None
    try:
        record = read_json(lake, REGISTRATION_KEY)
    except Exception as exc:  # the lake's own error is shown by the rest of the status
        return {"catalog": config.lake.catalog.value, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return record or {"catalog": config.lake.catalog.value, "never": True, "ok": False}


def catalog_lines(status: dict[str, Any] | None) -> list[str]:
    """The status text lines of :func:`catalog_status`'s value."""
    if status is None:
        return []
    kind = status.get("catalog", "?")
    if status.get("never"):
        return [f"catalog: {kind}: no registration yet (the full load and the merge run one; or `binlake catalog "
                "sync`)"]
    head = (f"catalog: {kind}: {len(status.get('registered') or [])} table(s) registered "
            f"({status.get('finished_at') or status.get('started_at') or '?'})")
    lines = [head + ("" if status.get("ok") else "  FAILED")]
    if status.get("error"):
        lines.append(f"  error: {status['error']} (retried by the merge; or `binlake catalog sync`)")
    lines += [f"  {f['table']}: failed: {f['error']}" for f in status.get("failed") or []]
    lines += [f"  {r['table']}: not registered: {r['why']}" for r in status.get("refused") or []]
    return lines
