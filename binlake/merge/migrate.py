"""Migrating a merge checkpoint of Spark's file stream source to the lsn source, in place, at start.

Merges before :mod:`binlake.merge.stream` read the change log with Spark's file source: each entry
of the checkpoint's offset log (``offsets/<batch id>``) holds ``{"logOffset": <batch id>}`` and
``sources/0`` lists every file each batch read. The lsn source reads ``{"lsn": n}`` and needs no
``sources/0``. :func:`migrate_file_source_checkpoint` rewrites the checkpoint so the same query
(same query id — so the same Delta transaction app id, and batch ids that continue: nothing is
skipped or applied twice) goes on with the new source:

1. every offset-log entry of the file source gets the lsn offset of what the batches up to it had
   read: the highest last lsn of a file listed in ``sources/0`` for any batch at or below it
   (:func:`file_source_ends`). Every record at or below it was delivered: the capture writes its
   files in lsn order, so a file not read by then that ends at or below it can only be a crash's
   re-written duplicate (see :mod:`binlake.merge.offsets`);
2. ``sources`` is deleted last (it is what grew with history).

Each rewrite is atomic (Spark's own checkpoint file manager); a crash in between leaves some
entries rewritten and ``sources/0`` still there, and the next start finishes the job.

A batch the file source planned and did not commit is replayed by the new source over
``(end of the batch before, end of the batch]``. That replay plans the same steps as the first
attempt — required for exactly once (:mod:`binlake.merge.bounds`) — only if the batch's files were
exactly the records of that range: no file of it holds records at or below the previous end (a
re-written duplicate) and no two of its files overlap. Otherwise the migration refuses
(:class:`MigrationRefused`, with the fix: finish that batch with the previous binlake version).

This module is the one place that knows the layout of Spark's checkpoint and of the file source's
log (checked against Spark 4.2: ``v1`` headers, one JSON line per source offset, one JSON line per
file with ``path`` and ``batchId``, ``<n>.compact`` files holding all entries up to ``n``).
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession

from binlake.lake import MERGE_CHECKPOINT_DIR, Lake, parse_changelog_name
from binlake.merge.offsets import FILE_SOURCE_KEY, ChangelogOffset
from binlake.merge.txn import jvm

log = logging.getLogger(__name__)

SUPPORTED_SPARK = ("4.2",)
CHECKPOINT_MANAGER = "org.apache.spark.sql.execution.streaming.checkpointing.CheckpointFileManager"
OFFSETS, COMMITS, SOURCES = "offsets", "commits", "sources"


class MigrationRefused(RuntimeError):
    """The old checkpoint cannot be migrated without risking exactly once; the message says what to do."""


@dataclass(frozen=True)
class FileSourceEntry:
    """One line of the file source's log: batch ``batch_id`` read the change-log file ``path``."""

    batch_id: int
    path: str

    @property
    def lsn_range(self) -> tuple[int, int]:
        return parse_changelog_name(self.path.rsplit("/", 1)[-1])


def parse_file_source_log(text: str) -> list[FileSourceEntry]:
    """The entries of one ``sources/0`` file (``v1`` then one JSON object per line)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("v"):
        raise ValueError(f"not a file-source log file: {text[:80]!r}")
    entries = []
    for line in lines[1:]:
        data = json.loads(line)
        entries.append(FileSourceEntry(int(data["batchId"]), str(data["path"])))
    return entries


def file_source_ends(entries: Iterable[FileSourceEntry], batch_ids: Iterable[int]) -> dict[int, ChangelogOffset]:
    """For each of ``batch_ids``: the lsn offset of every file read by batches at or below it."""
    ordered = sorted(entries, key=lambda e: e.batch_id)
    ends: dict[int, ChangelogOffset] = {}
    reached, i = -1, 0
    for batch_id in sorted(batch_ids):
        while i < len(ordered) and ordered[i].batch_id <= batch_id:
            reached = max(reached, ordered[i].lsn_range[1])
            i += 1
        ends[batch_id] = ChangelogOffset(reached)
    return ends


def source_offset(text: str) -> dict[str, Any]:
    """The (single) source offset of an offset-log entry: its third line."""
    lines = text.splitlines()
    if len(lines) != 3 or not lines[0].startswith("v"):
        raise ValueError(f"offset-log entry is not a version line, a metadata line and one source offset: {text!r}")
    data: dict[str, Any] = json.loads(lines[2])
    return data


def with_source_offset(text: str, offset: ChangelogOffset) -> str:
    """The offset-log entry ``text`` with its source offset replaced by ``offset`` (rest kept)."""
    source_offset(text)  # validates the layout
    version, metadata, _ = text.splitlines()
    return f"{version}\n{metadata}\n{json.dumps(offset.to_dict())}"


def check_pending(entries: Iterable[FileSourceEntry], batch_id: int, previous_end: ChangelogOffset) -> None:
    """Refuse when the uncommitted batch ``batch_id`` cannot be replayed as the same records (module docstring)."""
    ranges = sorted(e.lsn_range for e in entries if e.batch_id == batch_id)
    below = [r for r in ranges if r[0] <= previous_end.lsn]
    overlapping = [(a, b) for a, b in itertools.pairwise(ranges) if b[0] <= a[1]]
    if below or overlapping:
        raise MigrationRefused(
            f"merge batch {batch_id} of the checkpoint (planned by Spark's file source, not committed) read change-log "
            "files re-written by a capture restart (records read again), so the new lsn source cannot replay it as "
            "the same steps: finish it with the previous binlake version (streaming/merge.py --available-now "
            "once), then start this version — the checkpoint is migrated then")


def migrate_file_source_checkpoint(spark: SparkSession, lake: Lake) -> dict[int, ChangelogOffset]:
    """Migrate the merge checkpoint if the file source wrote it (module docstring); the lsn offsets
    written, by batch id (empty: nothing to migrate)."""
    files = CheckpointFiles(spark, lake.uri(MERGE_CHECKPOINT_DIR))
    offsets = {b: files.read(f"{OFFSETS}/{b}") for b in files.batch_ids(OFFSETS)}
    old = {b: text for b, text in offsets.items() if FILE_SOURCE_KEY in source_offset(text)}
    if not old:
        if files.exists(SOURCES):
            files.delete(SOURCES)  # a migration that stopped after its rewrites
        return {}
    log_folder = f"{SOURCES}/0"
    entries = [e for name in files.names(log_folder) for e in parse_file_source_log(files.read(f"{log_folder}/{name}"))]
    ends = file_source_ends(entries, old)
    last = max(offsets)
    if last in old and last not in files.batch_ids(COMMITS):
        check_pending(entries, last, file_source_ends(entries, [last - 1])[last - 1])
    for batch_id in sorted(old):
        files.write(f"{OFFSETS}/{batch_id}", with_source_offset(old[batch_id], ends[batch_id]))
    files.delete(SOURCES)
    log.warning("merge checkpoint migrated from Spark's file source to the lsn source (same query id, batch ids "
                "go on): batch %d ends at lsn %d; %d file-source log entries removed", last, ends[max(old)].lsn,
                len(entries))
    return ends


class CheckpointFiles:
    """Files of a streaming checkpoint through Spark's checkpoint file manager (atomic writes, local or s3a)."""

    def __init__(self, spark: SparkSession, root: str) -> None:
        if not spark.version.startswith(SUPPORTED_SPARK):
            raise RuntimeError(f"binlake.merge.migrate knows the checkpoint layout of Spark {SUPPORTED_SPARK}, "
                               f"not {spark.version}: check it before migrating")
        self._jvm = jvm(spark)
        self._root = self._jvm.org.apache.hadoop.fs.Path(root)
        manager: Any = self._jvm
        for part in CHECKPOINT_MANAGER.split("."):
            manager = getattr(manager, part)
        self._fm = manager.create(self._root, spark._jsc.hadoopConfiguration())

    def _path(self, name: str) -> Any:
        return self._jvm.org.apache.hadoop.fs.Path(self._root, name)

    def exists(self, name: str) -> bool:
        return bool(self._fm.exists(self._path(name)))

    def names(self, folder: str) -> list[str]:
        """Names in ``folder`` (none if it does not exist), without hidden ones (``.``, ``_``: checksums,
        temporaries)."""
        if not self.exists(folder):
            return []
        names = [status.getPath().getName() for status in self._fm.list(self._path(folder))]
        return sorted(n for n in names if not n.startswith((".", "_")))

    def batch_ids(self, folder: str) -> list[int]:
        return sorted(int(n) for n in self.names(folder) if n.isdigit())

    def read(self, name: str) -> str:
        stream = self._fm.open(self._path(name))
        try:
            return str(self._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
        finally:
            stream.close()

    def write(self, name: str, text: str) -> None:
        out = self._fm.createAtomic(self._path(name), True)
        try:
            out.write(bytearray(text.encode()))
            out.close()
        except Exception:
            out.cancel()
            raise

    def delete(self, name: str) -> None:
        self._fm.delete(self._path(name))

