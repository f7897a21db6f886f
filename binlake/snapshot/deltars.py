"""The direct write path's side of a Delta table, through delta-rs's public API (``deltalake`` 1.x).

The direct path (:mod:`binlake.snapshot.direct`) writes a chunk's Parquet files itself; this
module reads what it needs of the table (column types, physical names and ids under column
mapping, statistics settings, deletion vectors) and commits the files as **one Delta commit per
chunk**, tagged exactly as a Spark append of the chunk is (:func:`binlake.snapshot.delta.append_chunk`):
``userMetadata = {"binlake_load": <load id>, "chunk": <chunk id>}`` plus Spark's
``operationMetrics`` (``numFiles``, ``numOutputRows``, ``numOutputBytes``), so the resume logic
(:func:`committed_chunks`, the same contract as :func:`binlake.snapshot.delta.committed_chunks`)
finds chunks committed either way. Appending is all delta-rs does to an existing table, which every
writer feature binlake's tables have (``changeDataFeed``, ``columnMapping``, ``deletionVectors``,
``timestampNtz``, ``appendOnly``, ``invariants``) allows without extra actions.

:func:`create_table` creates a new table with delta-rs — without starting Delta in Spark's JVM,
about 6 CPU-seconds of a load's fixed cost — only when it needs neither column mapping nor
deletion vectors (``broad`` tables with plain names): the same schema and properties as Spark's
``create_table`` (:func:`binlake.snapshot.delta.create_table`), and the same protocol but for the
legacy ``appendOnly`` / ``invariants`` writer features, which Spark lists because it upgrades a
legacy protocol and which constrain nothing here (no constraint, no ``delta.appendOnly``).
Column-mapped tables are created by Spark, whose physical names and ids delta-rs then follows.
Local lakes only: the files are written with local file I/O.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from binlake.snapshot.delta import ChunkCommit

SUPPORTED_DELTALAKE = ("1.",)  # the versions whose create_write_transaction / history were checked


def deltalake_version() -> str | None:
    try:
        return importlib.metadata.version("deltalake")
    except importlib.metadata.PackageNotFoundError:
        return None


def deltalake_supported() -> bool:
    version = deltalake_version()
    return version is not None and version.startswith(SUPPORTED_DELTALAKE)


@dataclass(frozen=True)
class Field:
    """One column of the table's schema: logical name, Delta type name, Parquet name and field id."""

    name: str
    delta_type: str
    physical: str
    field_id: int | None


@dataclass(frozen=True)
class TableLayout:
    """What a writer of the table's data files must follow."""

    fields: tuple[Field, ...]
    configuration: dict[str, str]
    deletion_vectors: bool


@dataclass(frozen=True)
class WrittenFile:
    """A data file written into the table folder, not yet committed (``path`` relative to the table)."""

    path: str
    size: int
    rows: int
    stats: str  # Delta's stats JSON
    modified_ms: int


def is_table(path: str) -> bool:
    from deltalake import DeltaTable

    return bool(DeltaTable.is_deltatable(path))


def table_layout(path: str) -> TableLayout:
    """The table's columns in order (nested types come out as their JSON text: never written here)."""
    from deltalake import DeltaTable

    table = DeltaTable(path)
    fields = []
    for field in json.loads(table.schema().to_json())["fields"]:
        meta = field.get("metadata") or {}
        kind = field["type"] if isinstance(field["type"], str) else json.dumps(field["type"])
        field_id = meta.get("delta.columnMapping.id")
        fields.append(Field(field["name"], kind, str(meta.get("delta.columnMapping.physicalName", field["name"])),
                            None if field_id is None else int(field_id)))
    configuration = dict(table.metadata().configuration)
    features = table.protocol().writer_features or []
    return TableLayout(tuple(fields), configuration, "deletionVectors" in features)


def drop_table(path: str) -> None:
    """Delete the (local) table folder and everything in it; nothing happens when absent."""
    import shutil

    if os.path.isdir(path):
        shutil.rmtree(path)


def create_table(path: str, columns: Sequence[tuple[str, str]], properties: dict[str, str]) -> None:
    """Create the empty table of ``columns`` (``(name, Delta type name)``, all nullable) with ``properties``."""
    from deltalake import DeltaTable, Schema

    fields = [{"name": name, "type": kind, "nullable": True, "metadata": {}} for name, kind in columns]
    schema = Schema.from_json(json.dumps({"type": "struct", "fields": fields}))
    DeltaTable.create(path, schema, mode="error", configuration=dict(properties))


def commit_files(path: str, files: Sequence[WrittenFile], load_id: str, chunk_id: int) -> None:
    """Append ``files`` to the table in one commit tagged with ``(load_id, chunk_id)``."""
    from deltalake import DeltaTable
    from deltalake.transaction import AddAction, CommitProperties, RemoveAction

    table = DeltaTable(path)
    actions: list[AddAction | RemoveAction] = [
        AddAction(f.path, f.size, {}, f.modified_ms, True, f.stats) for f in files
    ]
    metadata: dict[str, Any] = {
        "userMetadata": json.dumps({"binlake_load": load_id, "chunk": chunk_id}),
        "operationMetrics": {"numFiles": str(len(files)), "numOutputRows": str(sum(f.rows for f in files)),
                             "numOutputBytes": str(sum(f.size for f in files))},
    }
    table.create_write_transaction(actions, "append", table.schema(),
                                   commit_properties=CommitProperties(custom_metadata=metadata))


def committed_chunks(path: str, load_id: str) -> dict[int, ChunkCommit]:
    """``{chunk id: commit}`` of the chunks of ``load_id`` in the table's history (delta-rs's reading
    of every commit, Spark's or delta-rs's)."""
    from deltalake import DeltaTable

    if not is_table(path):
        return {}
    found: dict[int, ChunkCommit] = {}
    for entry in DeltaTable(path).history():
        try:
            meta = json.loads(entry.get("userMetadata") or "")
        except ValueError:
            continue
        if isinstance(meta, dict) and meta.get("binlake_load") == load_id and "chunk" in meta:
            metrics = entry.get("operationMetrics") or {}
            found[int(meta["chunk"])] = ChunkCommit(int(entry["version"]), int(metrics.get("numOutputRows", 0)),
                                                    int(metrics.get("numOutputBytes", 0)))
    return found


def now_ms() -> int:
    return int(time.time() * 1000)
