"""The merge stream's Spark source: the change log tracked by lsn (PySpark's Python streaming data source).

A micro-batch of this source is not the change-log records but the *reads* that deliver them
(:class:`binlake.merge.offsets.FileRead` rows: ``key``, ``after``, ``through``); the batch function
turns them into the records with one Parquet scan in the JVM (:func:`binlake.merge.source.batch_records`),
so the records never pass through Python. Offsets are :class:`~binlake.merge.offsets.ChangelogOffset`
dicts (``{"lsn": n}``): the checkpoint holds one per batch, and each trigger lists only the files the
lifecycle keeps (:mod:`binlake.merge.cleanup`) — neither grows with the history of the change log.

Spark calls the planning methods (:meth:`ChangelogStreamReader.latestOffset`, ``partitions``) in a
Python process of the driver, and ``read`` in the executors' Python workers; both rebuild the lake
from the source's options (root, S3 endpoint settings and retry policy; credentials come from the
AWS chain of the process, never from the options).

* ``latestOffset`` reads at most ``merge.max_files_per_batch`` files per batch (also under
  ``availableNow``, which :meth:`~ChangelogStreamReader.prepareForTriggerAvailableNow` bounds by the
  change log's end when the run began, so a run ends while the capture keeps writing);
* ``partitions(start, end)`` lists again and plans the reads of ``(start, end]``
  (:func:`~binlake.merge.offsets.read_plan`) — the same records on every attempt of the batch; it
  fails loudly when files the batch needs are gone (:func:`~binlake.merge.offsets.missing_end`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadLimit, ReadMaxFiles, SupportsTriggerAvailableNow
from pyspark.sql.types import LongType, StringType, StructField, StructType

from binlake.changelog import list_changelog
from binlake.config import LakeConfig, S3Config
from binlake.lake import Lake, parse_changelog_name, retry_policy
from binlake.merge.offsets import START, ChangelogOffset, FileRange, FileRead, missing_end, next_end, read_plan

SOURCE_NAME = "binlake_changelog"
LAKE_OPTION = "lake"
MAX_FILES_OPTION = "max_files"  # option names: lower case (Spark hands them over lower-cased)

READS_SCHEMA = StructType([StructField("key", StringType(), False), StructField("after", LongType(), False),
                           StructField("through", LongType(), False)])


def source_options(lake: LakeConfig, max_files: int) -> dict[str, str]:
    """The options of the source for ``lake`` (what a Python worker needs to reach it, no secret)."""
    if max_files < 1:
        raise ValueError(f"max_files_per_batch must be >= 1, got {max_files}")
    where = {"root": lake.root, "s3": lake.s3.model_dump(), "retries": lake.retries,
             "retry_max_seconds": lake.retry_max_seconds}
    return {LAKE_OPTION: json.dumps(where), MAX_FILES_OPTION: str(max_files)}


def lake_of(options: Mapping[str, str]) -> Lake:
    """The lake named by :func:`source_options`."""
    where = json.loads(options[LAKE_OPTION])
    config = LakeConfig(root=where["root"], s3=S3Config(**where["s3"]), retries=where["retries"],
                        retry_max_seconds=where["retry_max_seconds"])
    return Lake(config.root, config.s3, retry_policy(config))


def changelog_ranges(lake: Lake) -> list[FileRange]:
    """Every change-log file's lsn range, from the names alone (one listing; no per-file metadata:
    the planning needs no write times)."""
    return [FileRange(*parse_changelog_name(key), key) for key in list_changelog(lake)]


class ChangelogSource(DataSource):
    """``spark.readStream.format("binlake_changelog")``: see the module docstring."""

    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def schema(self) -> StructType:
        return READS_SCHEMA

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        return ChangelogStreamReader(self.options)


class ChangelogStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Plans micro-batches of change-log reads by lsn (see the module docstring)."""

    def __init__(self, options: Mapping[str, str]) -> None:
        self.options = dict(options)
        self.max_files = int(self.options[MAX_FILES_OPTION])
        self._lake: Lake | None = None
        self._until: ChangelogOffset | None = None

    @property
    def lake(self) -> Lake:
        if self._lake is None:
            self._lake = lake_of(self.options)
        return self._lake

    def initialOffset(self) -> dict[str, int]:
        return START.to_dict()

    def getDefaultReadLimit(self) -> ReadLimit:
        return ReadMaxFiles(self.max_files)

    def prepareForTriggerAvailableNow(self) -> None:
        """An ``availableNow`` run reads up to the change log's end as it is now."""
        self._until = ChangelogOffset(max((f.last for f in changelog_ranges(self.lake)), default=-1))

    def latestOffset(self, start: dict[str, Any], limit: ReadLimit) -> dict[str, int]:
        max_files = None if isinstance(limit, ReadAllAvailable) else self.max_files
        if isinstance(limit, ReadMaxFiles):
            max_files = limit.max_files
        begin = ChangelogOffset.from_dict(start)
        if self._until is not None and self._until <= begin:
            return begin.to_dict()
        return next_end(changelog_ranges(self.lake), begin, max_files, self._until).to_dict()

    def partitions(self, start: dict[str, Any], end: dict[str, Any]) -> Sequence[InputPartition]:
        begin, finish = ChangelogOffset.from_dict(start), ChangelogOffset.from_dict(end)
        if finish <= begin:
            return []
        reads = read_plan(changelog_ranges(self.lake), begin, finish)
        problem = missing_end(reads, begin, finish)
        if problem is not None:
            raise RuntimeError(problem)
        return [InputPartition([(r.key, r.after, r.through) for r in reads])]

    def read(self, partition: InputPartition) -> Iterator[tuple[str, int, int]]:
        yield from partition.value

    def commit(self, end: dict[str, Any]) -> None:
        """Nothing to release: the lifecycle removes applied files (:mod:`binlake.merge.cleanup`)."""


def reads_of(rows: Sequence[Any]) -> list[FileRead]:
    """The :class:`FileRead` values of a micro-batch's rows (``key``, ``after``, ``through``), in lsn order."""
    return sorted((FileRead(str(row["key"]), int(row["after"]), int(row["through"])) for row in rows),
                  key=lambda r: (r.after, r.key))
