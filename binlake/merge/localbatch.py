"""A small micro-batch read on the driver: its summary and its small parts without a Spark job.

In steady state a micro-batch is a few change-log files of a few hundred KiB. Summarizing it
(:func:`binlake.merge.summary.summarize`) and collecting its small parts
(:class:`binlake.merge.smallparts.SmallParts`) are two Spark jobs, each a scan of those files, which
cost more than reading the files outright in the driver. :func:`read_local` reads exactly the
records the batch's reads deliver (:func:`binlake.merge.source.batch_records`: per read,
``after < lsn <= through``) with pyarrow, as long as the files total at most ``max_bytes``;
:func:`summarize_local` gives the same :class:`~binlake.merge.summary.TableChanges` as the Spark
summary of the same records (tested on the same files). Everything that is not small — large
parts, DDL steps, joins — still reads the batch with Spark (the batch's lazy DataFrame, untouched).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from binlake.changelog import CHANGELOG_SCHEMA
from binlake.lake import Lake
from binlake.merge.offsets import FileRead
from binlake.merge.summary import BUCKET_BITS, OP_DDL, OP_DELETE, TableChanges, changes_of

_GROUP_KEYS = ["source_schema", "source_table", "schema", "table", "columns", "bucket", "ddl_lsn", "ddl_kind", "ddl"]


def read_local(lake: Lake, reads: Sequence[FileRead], max_bytes: int) -> pa.Table | None:
    """The records ``reads`` deliver (of :data:`~binlake.changelog.CHANGELOG_SCHEMA`, in read order),
    or ``None`` — nothing kept — as soon as the files read pass ``max_bytes`` in all (then Spark reads
    the batch). A file is fetched once however many reads it has."""
    fetched: dict[str, pa.Table] = {}
    total = 0
    parts = []
    for read in reads:
        table = fetched.get(read.key)
        if table is None:
            data = lake.get_bytes(read.key)
            total += len(data)
            if total > max_bytes:
                return None
            table = fetched[read.key] = pq.read_table(io.BytesIO(data), schema=CHANGELOG_SCHEMA)
        lsn = table["lsn"]
        parts.append(table.filter(pc.and_(pc.greater(lsn, read.after), pc.less_equal(lsn, read.through))))
    return pa.concat_tables(parts) if parts else CHANGELOG_SCHEMA.empty_table()


def summarize_local(records: pa.Table) -> list[TableChanges]:
    """:func:`binlake.merge.summary.summarize` of ``records`` (a table of change-log records), in Arrow."""
    if records.num_rows == 0:
        return []
    is_ddl = pc.equal(records["op"], OP_DDL)
    images = pc.add(pc.coalesce(pc.binary_length(records["before"]), 0),
                    pc.coalesce(pc.binary_length(records["after"]), 0))
    grouped = pa.table({
        **{name: records[name] for name in _GROUP_KEYS[:5]},
        "bucket": pc.shift_right(records["lsn"], BUCKET_BITS),
        "ddl_lsn": pc.if_else(is_ddl, records["lsn"], pa.scalar(None, pa.int64())),
        "ddl_kind": pc.if_else(is_ddl, records["ddl_kind"], pa.scalar(None, pa.string())),
        "ddl": pc.if_else(is_ddl, records["ddl"], pa.scalar(None, pa.string())),
        "lsn": records["lsn"],
        "is_delete": pc.cast(pc.equal(records["op"], OP_DELETE), pa.int64()),
        "commit_ts": pc.cast(records["commit_ts"], pa.timestamp("us")),  # naive UTC, as a Spark Row gives it
        "images": pc.cast(images, pa.int64()),
    }).group_by(_GROUP_KEYS, use_threads=False).aggregate([
        ("lsn", "min"), ("lsn", "max"), ("lsn", "count"), ("is_delete", "sum"), ("commit_ts", "min"),
        ("commit_ts", "max"), ("images", "sum")])
    renamed = grouped.rename_columns([{"lsn_min": "min_lsn", "lsn_max": "max_lsn", "lsn_count": "rows",
                                       "is_delete_sum": "deletes", "commit_ts_min": "min_ts",
                                       "commit_ts_max": "max_ts", "images_sum": "bytes"}.get(n, n)
                                      for n in grouped.column_names])
    return changes_of(renamed.to_pylist())
