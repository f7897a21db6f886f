"""Tables born in the stream: a selected table created while replication runs joins the merge at
its ``CREATE``, with an empty snapshot.

A table created by ``CREATE TABLE`` (plain, ``… LIKE``, ``… SELECT``, ``CREATE OR REPLACE``) holds no
row before the statement's position ``L``: every row it ever holds arrives in the change log after
``L``. ``CREATE … SELECT`` too: in row format the server logs the ``CREATE TABLE`` (with the
generated column list) and then the rows the ``SELECT`` inserted as row events, in one transaction
(checked on MariaDB 10.11; the capture keeps that transaction whole). So such a table needs no full
load. When the merge meets the CREATE of a table that has no full-load state, it records an
**empty snapshot at L** as the table's full-load state (:func:`record_birth`,
``_binlake/snapshots/…json`` through :class:`~binlake.snapshot.state.TableState`: status
``complete``, no chunks, low watermark = the CREATE's position, load id ``stream-<lsn>``, prep mode
:data:`BORN_PREP_MODE`), and the table joins like any loaded table: records at or below ``L`` are
skipped, every later one is applied by the usual lsn-guarded MERGE. ``binlake tables``, ``binlake
status``, the resync and the full load's guard read that state like any other.

The Delta table is created from the layout of the table's first row after ``L``
(:func:`create_born_table`): a table that is still empty at the source shows as ``created``
(``binlake tables``: "created in the stream, no row yet") until its first row arrives.

Replays: the state is written before the table's first commit; a replayed batch reads it back
(same ``L``, same load id), so it plans the same steps. A crash between the state and the Delta
table leaves a complete state without a table: the next attempt creates the table.

A table another one is renamed onto (``RENAME TABLE staging TO t``, or an online schema change's
swap with an unselected or never-loaded ``t``) while the lake has no state of it is born the same
way at the RENAME, and an automatic whole-table resync brings the rows it had then; if no row of it
comes through the stream before the resync's first chunk is due, that chunk creates the Delta table
and the join (:func:`join_from_chunk`). When the RENAME is a swap the merge applies in the lake
(:mod:`binlake.merge.swaps`: pt-osc's ``_t_old``, gh-ost's ``_t_del``, which receive ``t``'s rows)
and the other side handed its content over exactly, there is no resync: the Delta table is created
holding that content in one commit (:func:`binlake.merge.swapstep.create_swapped_in`), also when a
crash left the state without the table.

``CREATE TABLE IF NOT EXISTS`` is logged by MySQL even when the table exists (MariaDB 10.11 logs it
only when it creates the table): the birth is then not certain, so the merge also requests an
automatic whole-table resync (:func:`binlake.merge.autoresync.request_resync`), which is exact
whether or not the table had rows before. A table that exists at the source but has neither a full
load nor a birth in the change log (the selection rules were widened, the table predates the
capture) is never guessed: its records wait in the change log, the merge reports it as
:data:`binlake.status.WAITING_FOR_FULL_LOAD` and ``binlake status`` names the command that loads it.
"""

from __future__ import annotations

import datetime
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StructField, StructType, TimestampType, _parse_datatype_string

from binlake import typemap
from binlake.catalog import CatalogEntry, write_catalog
from binlake.lake import Lake, table_key
from binlake.merge.autoresync import request_resync
from binlake.merge.handoff import Handoff, record_join
from binlake.merge.layout import COMMIT_TS_COLUMN, LSN_COLUMN, Layout
from binlake.merge.renames import REPLACED, effect_of
from binlake.merge.summary import OP_DDL, DdlRecord, LayoutGroup, TableChanges, TableName
from binlake.merge.swapstep import born_by_swap, create_swapped_in
from binlake.positions import BinlogPosition, split_lsn
from binlake.snapshot.delta import create_table, has_stats
from binlake.snapshot.loader import write_state
from binlake.snapshot.state import COMPLETE, CREATED_IN_STREAM, TableState
from binlake.tablefeatures import TableFeatures

if TYPE_CHECKING:
    from binlake.merge.apply import MergeContext

log = logging.getLogger(__name__)

BORN_PREP_MODE = CREATED_IN_STREAM
BORN_LOAD_PREFIX = "stream-"
CREATED = "created"  # born, but no row yet: no Delta table until the first one


def birth_record(ddls: Sequence[DdlRecord]) -> DdlRecord | None:
    """The first statement (in lsn order) among ``ddls`` that creates the table, if any."""
    return next((d for d in ddls if d.creates), None)


def is_born(handoff: Handoff) -> bool:
    """Was this table's "full load" an empty snapshot at its CREATE in the stream?"""
    return handoff.load_id.startswith(BORN_LOAD_PREFIX)


def born_state(name: TableName, position: BinlogPosition, path: str, when: str) -> TableState:
    """The full-load state of a table born at ``position``: complete, empty, joined from there."""
    return TableState(
        load_id=f"{BORN_LOAD_PREFIX}{position.lsn}", source_schema=name.source_schema,
        source_table=name.source_table, schema=name.schema, table=name.table, path=path,
        prep_mode=BORN_PREP_MODE, key_columns=(), low_watermark=position, started_at=when, chunks=(),
        status=COMPLETE, finished_at=when, seconds=0.0, size_bytes=0)


def record_birth(ctx: MergeContext, name: TableName, changes: TableChanges, records: DataFrame) -> Handoff | None:
    """For a table without a full-load state: when the batch holds its CREATE, record the empty
    snapshot at the CREATE (and, for ``IF NOT EXISTS``, request a resync) and return its hand-off;
    else ``None`` (the table waits for a full load)."""
    record = birth_record(changes.ddls)
    renamed = next((d for d in changes.ddls if effect_of(d, name, ctx.mapping).kind == REPLACED), None)
    if renamed is not None and (record is None or renamed.lsn < record.lsn):
        record = renamed  # another table renamed onto a name the lake has none of: born here, resynced
    if record is None:
        return None
    row = (records.filter((F.col("op") == OP_DDL) & (F.col("lsn") == record.lsn))
           .select("binlog_file", "binlog_pos").first())
    if row is None:  # cannot happen: the summary was built from these records
        raise RuntimeError(f"{name.qualified}: the CREATE at lsn {record.lsn} is not in the batch")
    position = BinlogPosition.of(row["binlog_file"], int(row["binlog_pos"]), None, split_lsn(record.lsn)[0])
    if position.lsn != record.lsn:
        raise RuntimeError(f"{name.qualified}: the CREATE's position {position} does not give its lsn {record.lsn}")
    state = born_state(name, position, ctx.lake.uri(table_key(name.schema, name.table)), ctx.clock().isoformat())
    write_state(ctx.lake, state)
    write_catalog(ctx.lake, [CatalogEntry(name.source_schema, name.source_table, name.schema, name.table)],
                  ctx.clock())
    log.info("%s: created at the source at %s while replication runs: joins the merge there with an empty "
             "snapshot (no full load needed)", name.qualified, position)
    if record is renamed and born_by_swap(ctx, name, record.lsn) is not None:
        log.info("%s: born at lsn %d by an online schema change swap the lake applies: no resync", name.qualified,
                 record.lsn)
    elif record is renamed:
        request_resync(ctx, name, "another table was renamed onto this one: its rows are not in the lake",
                       lsn=record.lsn, statement=record.ddl)
    elif not record.certainly_new:
        request_resync(ctx, name, "CREATE TABLE IF NOT EXISTS: the table may have existed with rows before",
                       lsn=record.lsn, statement=record.ddl)
    return Handoff.from_state(state)


def join_from_chunk(spark: SparkSession, lake: Lake, name: TableName, handoff: Handoff, path: str, chunk: DataFrame,
                    when: datetime.datetime, features: TableFeatures) -> None:
    """A born table that has no Delta table yet when a resync chunk of it is due (no row of it came
    through the stream up to the chunk's lsn — the merge has passed it — e.g. a table renamed onto
    a new name and not changed since): create the table with the chunk's columns and record the
    join (batch ``-1``: outside any batch), so the chunk applies and later batches merge into it."""
    clear_unborn_log(spark, path)
    create_table(spark, path, StructType([StructField(f.name, f.dataType, True) for f in chunk.schema.fields]),
                 features, [LSN_COLUMN])
    record_join(lake, name, handoff, -1, when)
    log.info("%s: created Delta table %s from a resync chunk's columns (no row of it in the stream yet)",
             name.qualified, path)


def first_layout(groups: Sequence[LayoutGroup], after_lsn: int) -> Layout | None:
    """The layout of the earliest row records above ``after_lsn``, if any."""
    later = [g for g in groups if g.max_lsn > after_lsn]
    return Layout.parse(min(later, key=lambda g: (g.min_lsn, g.max_lsn)).columns) if later else None


def born_schema(layout: Layout) -> StructType:
    """A lake table's schema for ``layout``: the source columns (all nullable, as the full load
    makes them) and binlake's ``_binlake_lsn`` / ``_binlake_commit_ts``."""
    fields = [StructField(c.name, _parse_datatype_string(typemap.spark_type(c.column_type)), True)
              for c in layout.columns]
    return StructType([*fields, StructField(LSN_COLUMN, LongType(), True),
                       StructField(COMMIT_TS_COLUMN, TimestampType(), True)])


_COMMITTED = re.compile(r"^\d{20}\.(json|checkpoint\b.*\.parquet)$")


def clear_unborn_log(spark: SparkSession, path: str) -> None:
    """Remove the ``_delta_log`` a creation of the Delta table at ``path`` killed before its first
    commit left (a temporary commit file, Delta's ``_staged_commits`` folder): no version was ever
    committed there, so no reader saw a table, and Delta refuses to create one over it
    (``DELTA_TABLE_NOT_FOUND``: a SIGKILL of the merge while it created a born table would stop it
    for good). Does nothing when the log holds a committed version. (Hadoop's FileSystem API, so it
    sees the hidden temporary files on any store.)"""
    if spark._jvm is None:
        return
    folder = spark._jvm.org.apache.hadoop.fs.Path(f"{path.rstrip('/')}/_delta_log")
    fs = folder.getFileSystem(spark._jsc.hadoopConfiguration())
    if not fs.exists(folder):
        return
    names = [status.getPath().getName() for status in fs.listStatus(folder)]
    if any(_COMMITTED.match(name) for name in names):
        return
    log.warning("%s: removing the log of a table creation that never committed (%s)", path, ", ".join(names))
    fs.delete(folder, True)


def create_born_table(ctx: MergeContext, path: str, changes: TableChanges, after_lsn: int) -> bool:
    """Create the Delta table of a born table from its first row's layout; False when the batch
    holds no row of it yet (the table stays :data:`CREATED`). A table born by a swap (``after_lsn``
    is its RENAME's) is created holding the swapped-in content instead."""
    swapped = born_by_swap(ctx, changes.name, after_lsn)
    if swapped is not None:
        clear_unborn_log(ctx.spark, path)
        create_swapped_in(ctx, changes.name, path, swapped, after_lsn)
        return True
    layout = first_layout(changes.groups, after_lsn)
    if layout is None:
        return False
    schema = born_schema(layout)
    keys = set(layout.key_columns) if layout.has_primary_key else set()
    stats_on = [f.name for f in schema.fields if f.name in keys and has_stats(f.dataType)]
    clear_unborn_log(ctx.spark, path)
    create_table(ctx.spark, path, schema, ctx.features, [*stats_on, LSN_COLUMN])
    log.info("%s: created Delta table %s (%d column(s), from the first row's layout)", changes.name.qualified,
             path, len(layout.columns))
    return True
