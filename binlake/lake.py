"""Lake paths and small-object storage on a local path or S3.

Every path binlake writes besides the Delta tables is named here (see docs/design.md, "Lake
layout"). Keys are relative to the lake root and always use ``/``::

    lake = Lake.from_config(config)
    lake.put_bytes(CHECKPOINT_KEY, b"{...}")      # atomic: readers see the old or the new bytes
    lake.uri(CHANGELOG_DIR)                       # "s3a://bucket/prefix/_binlake/changelog" for Spark

Storage guarantees:

* :meth:`Lake.put_bytes` is atomic. Local: the bytes go to ``_tmp-<uuid>-<name>`` in the target
  folder, are fsync'ed, renamed over the target, and the folder is fsync'ed — after it returns the
  object survives a crash of this process or of the machine. S3: one ``put_object`` (S3 objects
  appear whole, and a successful PUT is durable).
* :meth:`Lake.list` never returns temporary objects (names starting with ``_tmp-`` or ``.``).
* S3 is reached with boto3 using ``lake.s3`` (endpoint, region, path style); credentials come from
  the standard AWS chain, never from the config. Spark reads the same objects as ``s3a://``.
* Every operation goes through the lake's :class:`~binlake.retry.RetryPolicy` (``lake.retries``,
  ``lake.retry_max_seconds``): transient errors are retried with logged back-off (boto3's own
  silent retries are off), and a failure that stays raises :class:`~binlake.retry.LakeError`
  naming the object's URI and the cause. ``FileNotFoundError`` of a read is an answer, raised
  as is. Best-effort writes (``durable=False``) are tried once.
"""

from __future__ import annotations

import copy
import datetime
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from binlake.config import LakeConfig, PipelineConfig, S3Config
from binlake.names import encode_name
from binlake.retry import NO_RETRY, RetryPolicy

T = TypeVar("T")

BINLAKE_DIR = "_binlake"
CHANGELOG_DIR = f"{BINLAKE_DIR}/changelog"
CAPTURE_DIR = f"{BINLAKE_DIR}/capture"
CHECKPOINT_KEY = f"{CAPTURE_DIR}/checkpoint.json"
STATUS_KEY = f"{CAPTURE_DIR}/status.json"
HISTORY_KEY = f"{CAPTURE_DIR}/history.json"  # the binlog history (epoch) registry, binlake.capture.history
SNAPSHOTS_DIR = f"{BINLAKE_DIR}/snapshots"
MERGE_DIR = f"{BINLAKE_DIR}/merge"
MERGE_CHECKPOINT_DIR = f"{MERGE_DIR}/checkpoint"
MERGE_STATUS_KEY = f"{MERGE_DIR}/status.json"
MERGE_METRICS_DIR = f"{MERGE_DIR}/metrics"
TOMBSTONES_DIR = f"{BINLAKE_DIR}/tombstones"
CATALOG_KEY = f"{BINLAKE_DIR}/tables.json"  # source table → lake table, binlake.catalog
REGISTRATION_KEY = f"{BINLAKE_DIR}/registration.json"  # the last catalog registration, binlake.registration.status
RESYNC_DIR = f"{BINLAKE_DIR}/resync"  # online resyncs, one reader/writer: binlake.resync.store
MERGE_HEARTBEAT_KEY = f"{MERGE_DIR}/heartbeat.json"  # the running merge, binlake.merge.heartbeat
MERGE_BOUNDS_KEY = f"{MERGE_DIR}/bounds.json"  # the step bounds of the last batch, binlake.merge.bounds
CHANGELOG_REMOVED_KEY = f"{BINLAKE_DIR}/changelog-removed.json"  # change-log lifecycle floor, binlake.merge.cleanup
AUTORESYNC_DIR = f"{BINLAKE_DIR}/autoresync"  # requested automatic resyncs, binlake.merge.autoresync
VALIDATION_DIR = f"{BINLAKE_DIR}/validation"  # per-table verification records, binlake.verification

TMP_PREFIX = "_tmp-"


def table_segments(schema: str, table: str) -> str:
    """``<schema segment>/<table segment>``: the one place a table's names become a relative path.
    Every per-table path (Delta table, tombstones, full-load state, merge hand-off) ends with it; each
    segment is :func:`binlake.names.encode_name` of the name (reversible, distinct on case-insensitive
    stores, ``a-z 0-9 _`` names kept as they are)."""
    return f"{encode_name(schema)}/{encode_name(table)}"


def table_key(schema: str, table: str) -> str:
    """Folder of the Delta table for target ``schema.table``."""
    return table_segments(schema, table)


def changelog_key(lsn_first: int, lsn_last: int, file_id: str | None = None) -> str:
    """Key of one change-log file: ``_binlake/changelog/<lsn_first:020d>-<lsn_last:020d>-<uuid>.parquet``."""
    if lsn_first < 0 or lsn_last < lsn_first:
        raise ValueError(f"lsn range {lsn_first}..{lsn_last} is not a valid non-empty range")
    file_id = file_id or uuid.uuid4().hex
    return f"{CHANGELOG_DIR}/{lsn_first:020d}-{lsn_last:020d}-{file_id}.parquet"


def parse_changelog_name(key: str) -> tuple[int, int]:
    """``(lsn_first, lsn_last)`` from a change-log key or file name; ``ValueError`` if it is not one."""
    name = key.rsplit("/", 1)[-1]
    parts = name.removesuffix(".parquet").split("-", 2)
    if not name.endswith(".parquet") or len(parts) != 3 or not (parts[0].isdigit() and parts[1].isdigit()):
        raise ValueError(f"{key!r} is not a change-log file name")
    return int(parts[0]), int(parts[1])


def snapshot_state_key(schema: str, table: str) -> str:
    """Full-load state of one source table."""
    return f"{SNAPSHOTS_DIR}/{table_segments(schema, table)}.json"


def resync_folder(schema: str, table: str) -> str:
    """Folder of the online resyncs of target table ``schema.table`` (one sub-folder per resync)."""
    return f"{RESYNC_DIR}/{table_segments(schema, table)}"


def autoresync_folder(schema: str, table: str) -> str:
    """Folder of the automatic resync requests of target table ``schema.table`` (one file each)."""
    return f"{AUTORESYNC_DIR}/{table_segments(schema, table)}"


def verification_key(schema: str, table: str) -> str:
    """Verification record (``verified_as_of``) of target table ``schema.table``."""
    return f"{VALIDATION_DIR}/{table_segments(schema, table)}.json"


def tombstones_key(schema: str, table: str) -> str:
    """Delta table of deleted keys of target table ``schema.table``."""
    return f"{TOMBSTONES_DIR}/{table_segments(schema, table)}"


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One listed object: its key, size in bytes and last-modified time (UTC; S3 gives whole seconds)."""

    key: str
    size: int
    modified: datetime.datetime


class Storage(Protocol):
    """Byte storage under one root; keys are relative, ``/``-separated."""

    def put_bytes(self, key: str, data: bytes, durable: bool = True) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def list_info(self, prefix: str) -> list[ObjectInfo]: ...
    def list(self, prefix: str) -> list[str]: ...
    def delete(self, key: str) -> None: ...


def _is_temporary(name: str) -> bool:
    return name.startswith((TMP_PREFIX, "."))


class LocalStorage:
    """Storage in a local folder (atomic rename + fsync)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"key {key!r} must be relative and stay under the lake root")
        return self.root / key

    def put_bytes(self, key: str, data: bytes, durable: bool = True) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f"{TMP_PREFIX}{uuid.uuid4().hex}-{target.name}"
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                if durable:
                    os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if not durable:
            return
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def list_info(self, prefix: str) -> list[ObjectInfo]:
        base = self._path(prefix.rstrip("/")) if prefix else self.root
        if not base.is_dir():
            return []
        return sorted(self._walk_info(base), key=lambda info: info.key)

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix.rstrip("/")) if prefix else self.root
        if not base.is_dir():
            return []
        return sorted(self._walk(base))

    def _walk(self, folder: Path) -> Iterator[str]:
        for entry in os.scandir(folder):
            if _is_temporary(entry.name):
                continue
            if entry.is_dir(follow_symlinks=False):
                yield from self._walk(Path(entry.path))
            else:
                yield Path(entry.path).relative_to(self.root).as_posix()

    def _walk_info(self, folder: Path) -> Iterator[ObjectInfo]:
        for entry in os.scandir(folder):
            if _is_temporary(entry.name):
                continue
            if entry.is_dir(follow_symlinks=False):
                yield from self._walk_info(Path(entry.path))
                continue
            try:
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # removed since the folder was read
                continue
            yield ObjectInfo(Path(entry.path).relative_to(self.root).as_posix(), stat.st_size,
                             datetime.datetime.fromtimestamp(stat.st_mtime, datetime.UTC))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Storage:
    """Storage under ``s3a://bucket/prefix`` through boto3 (one PUT per object)."""

    def __init__(self, bucket: str, prefix: str, s3: S3Config) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.config = s3
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=s3.endpoint,
            region_name=s3.region,
            config=Config(
                s3={"addressing_style": "path" if s3.path_style else "auto"},
                retries={"total_max_attempts": 1, "mode": "standard"},  # Lake retries, and logs each retry
                connect_timeout=10,
                read_timeout=60,
            ),
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_bytes(self, key: str, data: bytes, durable: bool = True) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def get_bytes(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.NoSuchKey:
            raise FileNotFoundError(f"s3a://{self.bucket}/{self._key(key)}") from None
        body: bytes = response["Body"].read()
        return body

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def list_info(self, prefix: str) -> list[ObjectInfo]:
        full = self._key(prefix.rstrip("/")) + "/" if prefix else (f"{self.prefix}/" if self.prefix else "")
        strip = len(self.prefix) + 1 if self.prefix else 0
        infos: list[ObjectInfo] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
            for item in page.get("Contents", []):
                key = item["Key"][strip:]
                # "folder/" keys are directory markers (s3a mkdirs, the S3 console), never files
                if not key.endswith("/") and not _is_temporary(key.rsplit("/", 1)[-1]):
                    infos.append(ObjectInfo(key, int(item.get("Size", 0)), item["LastModified"]))
        return sorted(infos, key=lambda info: info.key)

    def list(self, prefix: str) -> list[str]:
        return [info.key for info in self.list_info(prefix)]

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))


def split_s3a(root: str) -> tuple[str, str]:
    """``s3a://bucket/some/prefix`` → ``("bucket", "some/prefix")``."""
    rest = root.removeprefix("s3a://")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError(f"lake root {root!r} names no bucket (expected s3a://bucket/prefix)")
    return bucket, prefix.strip("/")


def retry_policy(lake: LakeConfig) -> RetryPolicy:
    """The retry policy the config asks for."""
    return RetryPolicy(retries=lake.retries, max_seconds=lake.retry_max_seconds)


class Lake:
    """The lake root: path helpers plus the storage behind it."""

    def __init__(self, root: str, s3: S3Config | None = None, retry: RetryPolicy | None = None) -> None:
        self.root = root.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.storage: Storage
        if self.root.startswith("s3a://"):
            bucket, prefix = split_s3a(self.root)
            self.storage = S3Storage(bucket, prefix, s3 or S3Config())
        else:
            self.storage = LocalStorage(Path(self.root.removeprefix("file://")))

    @classmethod
    def from_config(cls, config: PipelineConfig) -> Lake:
        return cls(config.lake.root, config.lake.s3, retry_policy(config.lake))

    def with_retry(self, retry: RetryPolicy) -> Lake:
        """The same lake (same storage) with another retry policy."""
        other = copy.copy(self)
        other.retry = retry
        return other

    def _call(self, verb: str, key: str, operation: Callable[[], T], retry: bool = True) -> T:
        policy = self.retry if retry else NO_RETRY
        return policy.call(operation, verb, self.uri(key), passthrough=(FileNotFoundError,) if verb == "read" else ())

    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3a://")

    @property
    def s3_config(self) -> S3Config | None:
        """How the lake's S3 is reached (``None`` for a local lake)."""
        return self.storage.config if isinstance(self.storage, S3Storage) else None

    def uri(self, key: str = "") -> str:
        """What Spark (or a person) uses to reach ``key``: ``s3a://…`` or an absolute local path."""
        return f"{self.root}/{key}" if key else self.root

    def put_bytes(self, key: str, data: bytes, durable: bool = True) -> None:
        """Write ``data`` at ``key`` atomically and durably (see module docstring).

        ``durable=False`` (local only) skips the fsyncs: still atomic, but a machine crash may lose
        it — for best-effort documents such as status.json, which are also tried only once (a
        failing lake must not hold the caller up for a document the next update replaces).
        """
        self._call("write", key, lambda: self.storage.put_bytes(key, data, durable), retry=durable)

    def get_bytes(self, key: str) -> bytes:
        """The bytes at ``key``; ``FileNotFoundError`` when there are none."""
        return self._call("read", key, lambda: self.storage.get_bytes(key))

    def exists(self, key: str) -> bool:
        return self._call("look up", key, lambda: self.storage.exists(key))

    def list_info(self, prefix: str) -> list[ObjectInfo]:
        """As :meth:`list`, with each object's size and last-modified time (what the change-log
        lifecycle ages files by; an object removed while the folder is read is left out)."""
        return self._call("list", prefix, lambda: self.storage.list_info(prefix))

    def list(self, prefix: str) -> list[str]:
        """Keys under folder ``prefix`` (recursive, sorted, no temporary objects)."""
        return self._call("list", prefix, lambda: self.storage.list(prefix))

    def delete(self, key: str) -> None:
        """Remove ``key``; no error when it does not exist."""
        self._call("delete", key, lambda: self.storage.delete(key))
