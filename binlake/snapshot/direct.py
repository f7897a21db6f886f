"""The direct write path (``full_load.reader: direct``): each chunk read and written to Parquet by one task.

On the ``arrow`` path Spark turns a chunk's Arrow batches into rows, casts them and writes them;
here the task does everything itself, without Spark rows. The task is a Spark task with a cluster
master (:func:`run_chunk`), and :func:`write_chunk` called in the driver's chunk thread with a
local one (:mod:`binlake.snapshot.session`: no Python workers, no SparkSession needed). It:

1. reads the chunk with ConnectorX exactly as the ``arrow`` reader does (same session-init
   statements, statement and wire forms: :func:`binlake.snapshot.arrowread.read_batches`), in
   batches of at most ``batch_rows`` rows;
2. turns each batch into the table's lake columns with pyarrow (:mod:`binlake.snapshot.lakearrow`:
   the exact Delta types, ``_binlake_lsn`` and ``_binlake_commit_ts``);
3. streams them into one Parquet file in the table folder (one row group per batch: memory stays
   bounded by the batch, whatever the chunk size), with Delta's statistics of the table's
   statistics columns;
4. returns the file and the snapshot's position, count and read time to the driver, which commits
   the file as the chunk's one Delta commit (:func:`binlake.snapshot.deltars.commit_files`).

A task that fails removes its file; a file written by a task whose commit never happens (the job
killed in between) is not part of the table — Delta's VACUUM removes it — and the chunk is read
again. The direct path applies to a local lake whose table columns are exactly the source
columns plus the metadata columns (:func:`lake_plan`); elsewhere the load keeps the ``arrow`` path.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from binlake.snapshot import delta, deltars
from binlake.snapshot.arrowread import (
    BYTES,
    DOUBLE,
    LONG,
    TEXT,
    ArrowSource,
    arrow_chunk_query,
    batch_rows_for,
    read_batches,
    wire_form,
)
from binlake.snapshot.deltars import TableLayout, WrittenFile, now_ms
from binlake.snapshot.discovery import SourceTable
from binlake.snapshot.lakearrow import (
    LSN_SOURCE,
    READ_TS_SOURCE,
    FileStats,
    LakeColumn,
    LakePlan,
    convertible,
    delta_type_name,
    stats_column_names,
)
from binlake.snapshot.reading import COMMIT_TS_COLUMN, HIT, LSN_COLUMN, READ_TS, SNAP_FILE, SNAP_LSN
from binlake.tablefeatures import COLUMN_MAPPING, DELETION_VECTORS, TableFeatures
from binlake.typemap import spark_type

META = 4  # a conformed batch starts with SNAP_FILE, SNAP_LSN, READ_TS, HIT


class NotDirect(ValueError):
    """The table cannot be written by the direct path (the message says why); the arrow path is used."""


def lake_plan(table: SourceTable, layout: TableLayout) -> LakePlan:
    """How ``table``'s chunks become rows of the Delta table of ``layout``; :class:`NotDirect` when a
    table column has no exact producer here (an add-column rule's column, a type the source column
    does not map to — e.g. a DO_NOTHING append to an older table)."""
    by_target = {c.target_name: (i, c) for i, c in enumerate(table.columns)}
    names = [f.name for f in layout.fields]
    with_stats = stats_column_names(layout.configuration, names)
    columns = []
    for field in layout.fields:
        stats = field.name in with_stats
        if field.name == LSN_COLUMN and field.delta_type == "long":
            columns.append(LakeColumn(field.name, field.physical, field.field_id, "long", LSN_SOURCE, None, stats))
        elif field.name == COMMIT_TS_COLUMN and field.delta_type == "timestamp":
            columns.append(LakeColumn(field.name, field.physical, field.field_id, "timestamp", READ_TS_SOURCE, None,
                                      stats))
        elif field.name in by_target:
            index, column = by_target[field.name]
            form, expected = wire_form(column.type), delta_type_name(spark_type(column.type))
            if field.delta_type != expected or not convertible(form, expected):
                raise NotDirect(f"column {field.name!r} is {field.delta_type} in the lake, the source's "
                                f"{column.type.spec} maps to {expected}")
            columns.append(LakeColumn(field.name, field.physical, field.field_id, expected, META + index, form, stats))
        else:
            raise NotDirect(f"the lake column {field.name!r} is not a source column (an add-column rule?)")
    missing = sorted(set(by_target) - set(names))
    if missing:
        raise NotDirect(f"source column(s) {missing} are not in the lake table")
    return LakePlan(tuple(columns), layout.deletion_vectors)


_WITH_STATS = frozenset({"byte", "short", "integer", "long", "float", "double", "string", "date", "timestamp",
                         "timestamp_ntz"})  # and decimal(p,s): the types Spark collects min/max of (delta.has_stats)


def create_direct_table(path: str, table: SourceTable, features: TableFeatures) -> bool:
    """Create ``table``'s empty Delta table with delta-rs when that gives Spark's table (no column
    mapping, no deletion vectors, no add-column rules: :mod:`binlake.snapshot.deltars`); False (nothing
    done) otherwise — Spark creates it then. Statistics on the key columns and ``_binlake_lsn``."""
    if table.target.added_columns:
        return False
    columns = [(c.target_name, delta_type_name(spark_type(c.type))) for c in table.columns]
    columns += [(LSN_COLUMN, "long"), (COMMIT_TS_COLUMN, "timestamp")]
    kinds = dict(columns)
    names = {c.name: c.target_name for c in table.columns}
    keys = [names[k] for k in table.key_columns if k in names]
    stats_on = [k for k in keys if kinds[k] in _WITH_STATS or kinds[k].startswith("decimal(")]
    properties = delta.table_properties(path, [name for name, _ in columns], features, [*stats_on, LSN_COLUMN])
    if COLUMN_MAPPING in properties or DELETION_VECTORS in properties:
        return False
    deltars.create_table(path, columns, properties)
    return True


_RAW = {LONG: "int64", DOUBLE: "float64", BYTES: "binary", TEXT: "string"}


@dataclass(frozen=True)
class ChunkTask:
    """Everything one chunk's Spark task needs (pickled into the task; ``source.url`` holds the password)."""

    source: ArrowSource
    query: str
    forms: tuple[str, ...]
    names: tuple[str, ...]
    batch_rows: int
    plan: LakePlan
    folder: str  # the table folder (local)


@dataclass(frozen=True)
class WrittenChunk:
    """What a chunk's task wrote and read: the Parquet file (None for an empty chunk) and the position."""

    rows: int
    snapshot_file: str
    lsn: int
    read_ts: int  # microseconds since the epoch, UTC
    files: tuple[WrittenFile, ...]


def chunk_task(source: ArrowSource, table: SourceTable, predicate: str, row_bytes: int, plan: LakePlan,
               folder: str) -> ChunkTask:
    forms = tuple(wire_form(c.type) for c in table.columns)
    names = (SNAP_FILE, SNAP_LSN, READ_TS, HIT, *(c.name for c in table.columns))
    return ChunkTask(source, arrow_chunk_query(table, predicate), forms, names,
                     batch_rows_for(source.batch_bytes, row_bytes), plan, folder)


def raw_schema(forms: Sequence[str]) -> object:
    """The Arrow schema batches are conformed to (position columns, hit, one column per wire form)."""
    import pyarrow as pa

    fields = [pa.field(SNAP_FILE, pa.string()), pa.field(SNAP_LSN, pa.int64()), pa.field(READ_TS, pa.int64()),
              pa.field(HIT, pa.int64())]
    fields += [pa.field(f"c{i}", getattr(pa, _RAW[form])()) for i, form in enumerate(forms)]
    return pa.schema(fields)


def write_chunk(task: ChunkTask) -> WrittenChunk:
    """Read one chunk and write its lake rows as one Parquet file (runs inside a Spark task)."""
    import pyarrow.parquet as pq

    name = f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
    target = os.path.join(task.folder, name)
    stats = FileStats(task.plan)
    writer = None
    position: tuple[str, int, int] | None = None
    try:
        for batch in read_batches(task.source, task.query, task.forms, task.names, raw_schema(task.forms),
                                  task.batch_rows):
            if batch.num_rows == 0:
                continue
            if position is None:
                position = (batch.column(0)[0].as_py(), batch.column(1)[0].as_py(), batch.column(2)[0].as_py())
            lake = task.plan.lake_batch(batch, 3, position[1], position[2])
            if lake.num_rows == 0:
                continue
            if writer is None:
                writer = pq.ParquetWriter(target, task.plan.schema(), compression="snappy",
                                          store_decimal_as_integer=True)
            writer.write_batch(lake)
            stats.add(lake)
        if writer is not None:
            writer.close()
            writer = None
    except BaseException:
        if writer is not None:
            writer.close()
        if os.path.exists(target):
            os.remove(target)
        raise
    if position is None or position[1] is None:
        raise RuntimeError("the chunk read returned no snapshot position row (is the binlog on?)")
    files: tuple[WrittenFile, ...] = ()
    if stats.rows:
        files = (WrittenFile(name, os.path.getsize(target), stats.rows, stats.to_json(), now_ms()),)
    return WrittenChunk(stats.rows, str(position[0]), int(position[1]), int(position[2]), files)


def run_chunk(spark: object, task: ChunkTask) -> WrittenChunk:
    """Run :func:`write_chunk` of ``task`` as one Spark task (one job) and return its result."""
    context = spark.sparkContext  # type: ignore[attr-defined]
    result: list[WrittenChunk] = context.parallelize([task], 1).map(write_chunk).collect()
    return result[0]
