"""The one place binlake writes Delta tables with delta-rs (the ``deltalake`` package) instead of Spark.

The driver-side merge of small table parts (:mod:`binlake.merge.smallparts`) commits with
delta-rs, in the merge's own process, while Spark writes every other commit of the same tables.
Both write the Delta protocol; this module keeps delta-rs to what both agree on:

* :func:`writable` — only tables whose protocol features delta-rs 1.x writes exactly like Delta
  Spark (:data:`WRITER_FEATURES`: the change data feed — delta-rs writes its ``_change_data``
  files —, ``timestampNtz`` and the legacy ``appendOnly``/``invariants``); deletion vectors,
  column mapping, type widening and anything newer go to Spark;
* :func:`merge_rows` — the MERGE of :mod:`binlake.merge.upsert` with the same clauses and the same
  transaction ``(app id, version)`` (a ``txn`` action Spark's Delta reads as its own:
  :func:`binlake.merge.txn.committed_version`); it refuses to commit a version the table already
  has, as Delta Spark skips it;
* :func:`append` — a blind append to binlake's own tables (tombstones, metrics), and
  :func:`compact_and_vacuum` — their maintenance, with the short retention of
  :data:`INTERNAL_RETENTION` (no Spark job, and Delta Spark's 168-hour VACUUM check not involved);
* S3: the lake's endpoint, region and addressing; credentials from the AWS chain of the process
  (environment, profile, instance or container role), never from binlake's config — the same
  chain as s3a and boto3. Commits use a plain PUT of the log entry (``AWS_S3_ALLOW_UNSAFE_RENAME``):
  safe because each table has one writer at a time, the merge (docs/merge.md, the S3 log store rule).

:func:`check_version` runs when the merge starts: a ``deltalake`` major version other than
:data:`TESTED_MAJOR` turns the driver-side merge off with a warning (Spark applies everything).
``tests/integration/test_merge_small_parts.py`` compares these commits with Spark's on the same
change log, value by value, change feed and transaction versions included.
"""

from __future__ import annotations

import datetime
import functools
import importlib.metadata
import logging
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from binlake.config import S3Config

log = logging.getLogger(__name__)

TESTED_MAJOR = 1
WRITER_FEATURES = frozenset({"changeDataFeed", "timestampNtz", "appendOnly", "invariants"})
READER_FEATURES = frozenset({"timestampNtz"})
_SPARK_NAMES = {"long": "bigint", "integer": "int", "short": "smallint", "byte": "tinyint"}


@functools.cache
def check_version(installed: str | None = None) -> bool:
    """Is the installed ``deltalake`` one this adapter was tested with? Warns when not (once: the
    answer is kept, so the per-batch metrics append asks it without reading package metadata)."""
    version = installed or importlib.metadata.version("deltalake")
    if version.split(".")[0] == str(TESTED_MAJOR):
        return True
    log.warning("deltalake %s is installed; binlake's delta-rs adapter (binlake/merge/deltars.py) was tested "
                "with %d.x: small table parts are merged by Spark instead", version, TESTED_MAJOR)
    return False


def table_uri(uri: str) -> str:
    """delta-rs's name of a lake path: ``s3://`` for Spark's ``s3a://``; local paths as they are."""
    return "s3://" + uri.removeprefix("s3a://") if uri.startswith("s3a://") else uri


def storage_options(s3: S3Config | None) -> dict[str, str]:
    """delta-rs storage options for the lake (no credential: see the module docstring)."""
    if s3 is None:
        return {}
    options = {"AWS_REGION": s3.region, "AWS_S3_ALLOW_UNSAFE_RENAME": "true"}
    if s3.endpoint:
        options["AWS_ENDPOINT_URL"] = s3.endpoint
        if s3.endpoint.startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    if s3.path_style:
        options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] = "false"
    return options


@dataclass(frozen=True)
class DeltaRsTable:
    """A lake table as delta-rs sees it at one version: what the driver-side merge needs to know."""

    handle: Any  # deltalake.DeltaTable
    columns: dict[str, str]  # name → normalized Spark type, every column (metadata ones included)
    properties: dict[str, str]
    writable: bool
    why_not: str

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema(self.handle.schema().to_arrow())

    def committed_version(self, app_id: str) -> int:
        """Highest transaction version ``app_id`` committed (-1: none)."""
        version = self.handle.transaction_version(app_id)
        return -1 if version is None else int(version)


def is_table(uri: str, s3: S3Config | None) -> bool:
    """Is there a Delta table at ``uri`` (a ``_delta_log`` with a commit)? What Delta Spark's
    ``DeltaTable.isDeltaTable`` answers, without a call into the JVM (which refreshes the table's
    snapshot there: the main cost of a small part before this)."""
    from deltalake import DeltaTable

    return bool(DeltaTable.is_deltatable(table_uri(uri), storage_options(s3)))


def open_table(uri: str, s3: S3Config | None) -> DeltaRsTable | None:
    """The Delta table at ``uri`` (a lake path), or ``None`` where there is none."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        handle = DeltaTable(table_uri(uri), storage_options=storage_options(s3))
    except TableNotFoundError:
        return None
    columns = {field.name: _spark_type(field.type) for field in handle.schema().fields}
    problem = _unwritable(handle.protocol())
    return DeltaRsTable(handle, columns, dict(handle.metadata().configuration), problem is None, problem or "")


def create_table(uri: str, s3: S3Config | None, schema: pa.Schema) -> DeltaRsTable:
    """A new, empty Delta table at ``uri`` with ``schema`` and no table features (an existing table
    is left as it is and returned)."""
    from deltalake import DeltaTable

    DeltaTable.create(table_uri(uri), schema, mode="ignore", storage_options=storage_options(s3))
    table = open_table(uri, s3)
    assert table is not None
    return table


def _spark_type(delta_type: Any) -> str:
    """A Delta schema type as Spark's ``simpleString`` writes it (``long`` → ``bigint``); nested
    types as ``struct``/``array``/``map`` (binlake's tables have none)."""
    name = getattr(delta_type, "type", None)
    if not isinstance(name, str):
        return "nested"
    name = name.replace(" ", "")
    return _SPARK_NAMES.get(name, name)


def _unwritable(protocol: Any) -> str | None:
    writer = set(protocol.writer_features or ())
    reader = set(protocol.reader_features or ())
    if protocol.min_writer_version > 7 or protocol.min_reader_version > 3:
        return f"protocol ({protocol.min_reader_version}, {protocol.min_writer_version})"
    if protocol.min_writer_version >= 7 and not writer <= WRITER_FEATURES:
        return f"writer features {sorted(writer - WRITER_FEATURES)}"
    if protocol.min_writer_version in (5, 6):
        return "column mapping / identity columns (writer version 5-6)"
    if protocol.min_reader_version == 2:
        return "column mapping (reader version 2)"
    if not reader <= READER_FEATURES:
        return f"reader features {sorted(reader - READER_FEATURES)}"
    return None


def quote(name: str) -> str:
    """A DataFusion SQL identifier (case kept, any character)."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class MergeClauses:
    """The MERGE of :mod:`binlake.merge.upsert`, in DataFusion SQL over aliases ``t`` / ``s``."""

    on: str
    delete_when: str
    update_when: str
    insert_when: str
    assignments: Mapping[str, str]  # quoted target column → source expression


def merge_rows(table: DeltaRsTable, source: pa.Table, clauses: MergeClauses, app_id: str,
               version: int) -> dict[str, int]:
    """One MERGE of ``source`` into ``table``, committed with transaction ``(app_id, version)``; no
    commit when the table already has that version (the metrics are then all 0)."""
    from deltalake import CommitProperties, Transaction

    if table.committed_version(app_id) >= version:
        return {}
    merger = table.handle.merge(
        source, clauses.on, source_alias="s", target_alias="t",
        commit_properties=CommitProperties(app_transactions=[Transaction(app_id, version)]))
    result: dict[str, int] = (
        merger.when_matched_delete(predicate=clauses.delete_when)
        .when_matched_update(dict(clauses.assignments), predicate=clauses.update_when)
        .when_not_matched_insert(dict(clauses.assignments), predicate=clauses.insert_when)
        .execute())
    _checkpoint_when_due(table)
    return result


CHECKPOINT_EVERY = 10
"""A checkpoint every this many versions (Delta Spark's default interval; delta-rs's own is 100), so
opening a table — by delta-rs each batch, or by Spark — reads at most this many log entries."""


LOG_RETENTION = "delta.logRetentionDuration"


def _checkpoint_when_due(table: DeltaRsTable) -> bool:
    """Checkpoint the table when its version is a multiple of :data:`CHECKPOINT_EVERY`; made one?"""
    if table.handle.version() % CHECKPOINT_EVERY != 0:
        return False
    checkpoint(table)
    return True


LAST_CHECKPOINT_CRC = "_delta_log/._last_checkpoint.crc"
"""Hadoop's checksum of ``_last_checkpoint`` on a local lake, written by Delta Spark's checkpoints."""


def checkpoint(table: DeltaRsTable) -> None:
    """Write a checkpoint of the table's current version (and ``_last_checkpoint``).

    On a local lake Delta Spark writes ``_last_checkpoint`` through Hadoop's checksummed file
    system, which keeps a ``.crc`` beside it; delta-rs rewrites the file and not its checksum, and
    every later Spark read of the table then fails the checksum (``ChecksumException``) and falls
    back to listing the whole log. The stale checksum is removed before and after the write (Hadoop
    reads a file without a ``.crc`` unverified). S3 keeps no such file."""
    crc = _local_path(table.handle.table_uri, LAST_CHECKPOINT_CRC)
    if crc is not None:
        crc.unlink(missing_ok=True)
    table.handle.create_checkpoint()
    if crc is not None:
        crc.unlink(missing_ok=True)


def _local_path(uri: str, key: str) -> Path | None:
    """The local file ``key`` of the table at ``uri``, or ``None`` for a table on S3."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme not in ("", "file"):
        return None
    return Path(urllib.parse.unquote(parsed.path) if parsed.scheme else uri) / key


FILE_RETENTION = "delta.deletedFileRetentionDuration"
INTERNAL_RETENTION = datetime.timedelta(minutes=10)
"""How long binlake's own tables (metrics, tombstones) keep what a newer version no longer needs:
log entries older than their latest checkpoint (``delta.logRetentionDuration``) and the data files
a compaction or a DELETE removed (``delta.deletedFileRetentionDuration``, what :func:`vacuum` reads).
Both are the same window, so every version of the last 10 minutes stays readable whole (its log and
its files) and none older is promised. That is enough: their only readers are the merge itself,
which reads the latest version between batches in the driver that also runs the maintenance, and
people reading the latest metrics, whose queries last seconds. Delta's defaults (30 days of log,
7 days of files) would keep one data file and two log files per batch for days."""


def interval(retention: datetime.timedelta) -> str:
    """A Delta interval property value (``interval 10 minutes``; seconds when not whole minutes)."""
    seconds = int(retention.total_seconds())
    return f"interval {seconds // 60} minutes" if seconds % 60 == 0 else f"interval {seconds} seconds"


INTERNAL_LOG_RETENTION = interval(INTERNAL_RETENTION)


def internal_properties(retention: datetime.timedelta = INTERNAL_RETENTION) -> dict[str, str]:
    """The retention properties of binlake's own tables (:data:`INTERNAL_RETENTION`)."""
    return {LOG_RETENTION: interval(retention), FILE_RETENTION: interval(retention)}


def append(table: DeltaRsTable, rows: pa.Table) -> None:
    """Append ``rows`` (cast to the table's schema) in one commit, without a transaction — to one of
    binlake's own tables: it gets :func:`internal_properties` where it has none of its own (once;
    :func:`compact_and_vacuum` sets the maintenance's), and every :data:`CHECKPOINT_EVERY` versions a
    checkpoint and the removal of the log entries it makes unnecessary beyond that retention, so its
    log stays a few dozen files however long the merge runs."""
    from deltalake import write_deltalake

    missing = {k: v for k, v in internal_properties().items() if k not in table.properties}
    if missing:
        table.handle.alter.set_table_properties(missing)
    write_deltalake(table.handle, rows.cast(table.arrow_schema), mode="append")
    if _checkpoint_when_due(table):
        table.handle.cleanup_metadata()


@dataclass(frozen=True)
class Maintained:
    """What :func:`compact_and_vacuum` did to one table (file counts)."""

    compacted: int  # small files rewritten (removed from the table)
    written: int    # files the compaction wrote
    vacuumed: int   # removed or unreferenced files deleted from storage


def compact_and_vacuum(table: DeltaRsTable, retention: datetime.timedelta = INTERNAL_RETENTION) -> Maintained:
    """Compact one of binlake's own tables (bin-packing, rows and their order kept), then delete the
    files it no longer references that are older than ``retention``, then checkpoint it and drop the
    log entries older than ``retention``. Nothing else writes the table meanwhile (the maintenance
    runs between batches, in the merge's driver).

    ``retention`` becomes the table's ``delta.deletedFileRetentionDuration`` (and
    ``delta.logRetentionDuration``), which delta-rs's VACUUM reads when given no hours (its own
    argument is whole hours) and Spark's honours too. The VACUUM is *full*: it lists the table's
    folder rather than trusting the log since the last checkpoint — a checkpoint drops the remove
    actions older than the retention, so a *lite* VACUUM would never delete a file compacted away
    before it (checked on deltalake 1.6.6) — and also deletes files of writes that never committed
    (a SIGKILLed append), by their modification time."""
    handle = table.handle
    wanted = internal_properties(retention)
    if any(table.properties.get(k) != v for k, v in wanted.items()):
        handle.alter.set_table_properties(wanted)
    metrics = handle.optimize.compact()
    deleted = handle.vacuum(dry_run=False, full=True, enforce_retention_duration=False)
    checkpoint(table)
    handle.cleanup_metadata()
    return Maintained(int(metrics.get("numFilesRemoved", 0)), int(metrics.get("numFilesAdded", 0)), len(deleted))


def read_columns(table: DeltaRsTable, columns: Sequence[str], filter_expression: Any = None) -> pa.Table:
    """``columns`` of the table's rows matching ``filter_expression`` (a pyarrow dataset expression;
    files are skipped by their statistics)."""
    dataset = table.handle.to_pyarrow_dataset()
    return dataset.to_table(columns=list(columns), filter=filter_expression)
