"""The resync files in the lake — the one module that reads and writes them.

Layout, per target table (``<segments>`` = :func:`binlake.lake.table_segments` of the lake table's
schema and name, as every per-table path)::

    _binlake/resync/<segments>/<resync id>/manifest.json        the resync job's plan and deliveries
    _binlake/resync/<segments>/<resync id>/applied.json         the merge's applied chunks
    _binlake/resync/<segments>/<resync id>/chunk-<n>-<attempt>/ one delivered chunk (Parquet, Spark)

Resync ids sort by creation time (``r<yyyymmddHHMMSS>-<hex>``). A chunk folder is written whole by
Spark before the manifest names it, and a new attempt writes a new folder, so the merge only ever
reads a complete folder that nobody writes to. Folders of chunks the merge has applied are deleted
by :func:`remove_chunk_data` after the applied record is written.
"""

from __future__ import annotations

import contextlib
import datetime
import uuid

from binlake.lake import RESYNC_DIR, Lake, resync_folder
from binlake.resync.manifest import Applied, Resync

MANIFEST = "manifest.json"
APPLIED = "applied.json"


def new_resync_id(now: datetime.datetime) -> str:
    return f"r{now.astimezone(datetime.UTC):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}"


def resync_key(schema: str, table: str, resync_id: str) -> str:
    return f"{resync_folder(schema, table)}/{resync_id}"


def chunk_data_key(resync: Resync, index: int) -> str:
    """A fresh folder for one delivery attempt of chunk ``index``."""
    return f"{resync_key(resync.schema, resync.table, resync.resync_id)}/chunk-{index:05d}-{uuid.uuid4().hex[:8]}"


def write_manifest(lake: Lake, resync: Resync) -> None:
    lake.put_bytes(f"{resync_key(resync.schema, resync.table, resync.resync_id)}/{MANIFEST}", resync.to_json())


def read_applied(lake: Lake, resync: Resync) -> Applied:
    key = f"{resync_key(resync.schema, resync.table, resync.resync_id)}/{APPLIED}"
    try:
        return Applied.from_json(lake.get_bytes(key))
    except FileNotFoundError:
        return Applied(resync.resync_id)


def write_applied(lake: Lake, resync: Resync, applied: Applied) -> None:
    lake.put_bytes(f"{resync_key(resync.schema, resync.table, resync.resync_id)}/{APPLIED}", applied.to_json())


def table_resyncs(lake: Lake, schema: str, table: str) -> list[Resync]:
    """Every resync of lake table ``schema.table``, oldest first."""
    return _manifests(lake, resync_folder(schema, table))


def all_resyncs(lake: Lake) -> list[Resync]:
    """Every resync of every table, oldest first per table."""
    return _manifests(lake, RESYNC_DIR)


def _manifests(lake: Lake, prefix: str) -> list[Resync]:
    keys = sorted(k for k in lake.list(prefix) if k.endswith(f"/{MANIFEST}"))
    resyncs = [Resync.from_json(lake.get_bytes(k)) for k in keys]
    return sorted(resyncs, key=lambda r: (r.schema, r.table, r.resync_id))


def remove_chunk_data(lake: Lake, key: str) -> None:
    """Delete one chunk folder (after the merge recorded it applied; best effort)."""
    for name in lake.list(key):
        with contextlib.suppress(FileNotFoundError):
            lake.delete(name)
