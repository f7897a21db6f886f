"""The change log: one Parquet schema for every record, atomic file writer, reader.

The record layout is fixed by docs/design.md ("Change-log record") and never changes: the row
values travel as JSON text (``before``/``after``: ``{target column: canonical string or null}``)
together with the layout valid for that row (``columns``), so a file stream with one fixed schema
can carry every table and every DDL.

Writer guarantees (:func:`write_changelog`):

* one call writes one file ``_binlake/changelog/<lsn_first:020d>-<lsn_last:020d>-<uuid>.parquet``,
  visible atomically (see :mod:`binlake.lake`), rows ordered by ``(lsn, row_idx)``;
* all records of one binlog event are in the same file (callers pass whole events);
* writing the same events again (after a crash) gives a different file name with records that
  carry the same ``(lsn, row_idx)``, so readers de-duplicate by that pair.

DDL control records carry ``columns = "[]"``: the layout after the DDL is known from the table map
of the next row event of that table, whose records carry it. A statement touching several selected
tables gives one control record per table with ``row_idx`` 0, 1, ….

In memory the writer takes :class:`EventChanges` (one binlog event's records, columnar) grouped
into :class:`CommittedTransaction` (what a commit adds: gtid, xid, commit time), which is both
cheap to build per row and cheap to turn into Arrow arrays. A transaction too large to hold in
memory keeps its earlier events as :class:`SpilledPart` files (the capture's local scratch, never
the lake): tables of :data:`CHANGELOG_SCHEMA` written before the commit was known, so their
``gtid``/``xid``/``commit_ts`` are placeholders until :func:`stamp_commit` fills them in.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from binlake import arrowcols
from binlake.lake import CHANGELOG_DIR, CHANGELOG_REMOVED_KEY, Lake, changelog_key, parse_changelog_name
from binlake.lifecycle import ChangelogFile

OP_INSERT = "I"
OP_UPDATE = "U"
OP_DELETE = "D"
OP_DDL = "DDL"
DDL_KINDS = ("CREATE", "ALTER", "RENAME", "TRUNCATE", "DROP")
_ROW_OPS = frozenset((OP_INSERT, OP_UPDATE, OP_DELETE))

CHANGELOG_SCHEMA = pa.schema(
    [
        pa.field("lsn", pa.int64(), nullable=False),
        pa.field("row_idx", pa.int32(), nullable=False),
        pa.field("binlog_file", pa.string(), nullable=False),
        pa.field("binlog_pos", pa.int64(), nullable=False),
        pa.field("gtid", pa.string()),
        pa.field("xid", pa.int64()),
        pa.field("commit_ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("op", pa.string(), nullable=False),
        pa.field("source_schema", pa.string(), nullable=False),
        pa.field("source_table", pa.string(), nullable=False),
        pa.field("schema", pa.string(), nullable=False),
        pa.field("table", pa.string(), nullable=False),
        pa.field("before", pa.string()),
        pa.field("after", pa.string()),
        pa.field("columns", pa.string(), nullable=False),
        pa.field("ddl", pa.string()),
        pa.field("ddl_kind", pa.string()),
    ]
)
FIELD_NAMES = tuple(CHANGELOG_SCHEMA.names)


@dataclass(slots=True)
class EventChanges:
    """The records of one binlog event (all share ``lsn``; row ``i`` gets ``row_idx = i``).

    ``before`` / ``after`` hold one JSON object text per row (``None`` where the op has no such
    image). A DDL control record is one row with ``before = after = None`` and ``row_idx`` 0; a
    statement touching several selected tables (``DROP TABLE a, b``) gives one control record per
    table, numbered 0, 1, … through ``first_row_idx`` so ``(lsn, row_idx)`` stays unique.
    """

    lsn: int
    binlog_file: str
    binlog_pos: int
    op: str
    source_schema: str
    source_table: str
    schema: str
    table: str
    columns: str
    before: list[str] | None
    after: list[str] | None
    ddl: str | None = None
    ddl_kind: str | None = None
    first_row_idx: int = 0  # > 0 only for the 2nd, 3rd … control record of one multi-table DDL

    def __post_init__(self) -> None:
        op = self.op  # hot: once per row event
        if op == OP_DDL:
            if self.ddl_kind not in DDL_KINDS:
                raise ValueError(f"ddl_kind must be one of {DDL_KINDS}, got {self.ddl_kind!r}")
        elif op not in _ROW_OPS:
            raise ValueError(f"op must be I, U, D or DDL, got {op!r}")
        before, after = self.before, self.after
        if before is not None and after is not None and len(before) != len(after):
            raise ValueError("before and after must hold the same number of rows")

    @property
    def row_count(self) -> int:
        """Records this event produces (1 for a DDL control record)."""
        if self.op == OP_DDL:
            return 1
        image = self.after if self.after is not None else self.before
        return len(image) if image is not None else 0


RECORD_OVERHEAD = 100
"""Bytes counted per record on top of its images: the Python string and list slots holding it."""


def approx_bytes(changes: EventChanges) -> int:
    """Estimated memory of one event's records: image lengths plus :data:`RECORD_OVERHEAD` each
    (cheap: no pass over the characters; what the capture's byte bounds count)."""
    before, after = changes.before, changes.after  # hot: once per row event, so no row_count call
    size = rows = 0
    if before is not None:
        rows = len(before)
        size = len(before[0]) if rows == 1 else sum(map(len, before))
    if after is not None:
        rows = len(after)
        size += len(after[0]) if rows == 1 else sum(map(len, after))
    if changes.ddl is not None:
        size += len(changes.ddl)
    if changes.op == OP_DDL:
        rows = 1
    return size + RECORD_OVERHEAD * rows


@dataclass(frozen=True, slots=True)
class SpilledPart:
    """Records of consecutive whole events of one transaction, held in a local file (not in memory).

    ``path``: the file (a table of :data:`CHANGELOG_SCHEMA` with placeholder commit values, see
    :mod:`binlake.capture.spill`); ``rows``: its record count; ``first_lsn``/``last_lsn``: the lsn
    of its first and last event. The parts of a transaction come before its in-memory events.
    """

    path: str
    rows: int
    first_lsn: int
    last_lsn: int


@dataclass(frozen=True, slots=True)
class CommittedTransaction:
    """The events of one committed source transaction, with what every record of it carries.

    ``spilled``: its earlier events when it was too large for memory (in order, all before
    ``events``); empty for most transactions.
    """

    gtid: str | None
    xid: int | None
    commit_ts_us: int  # microseconds since the epoch (UTC) of the commit event's header timestamp
    events: tuple[EventChanges, ...] = field(default=())
    spilled: tuple[SpilledPart, ...] = field(default=())

    @property
    def row_count(self) -> int:
        """All its records, spilled ones included."""
        return sum(event.row_count for event in self.events) + sum(part.rows for part in self.spilled)

    def in_memory(self) -> CommittedTransaction:
        """The same transaction without its spilled parts (its in-memory events only)."""
        return CommittedTransaction(self.gtid, self.xid, self.commit_ts_us, self.events)


_EVENT_FIELDS = ("lsn", "binlog_file", "binlog_pos", "op", "source_schema", "source_table", "schema", "table",
                 "columns", "ddl", "ddl_kind")


def to_arrow(transactions: Iterable[CommittedTransaction]) -> pa.Table:
    """The records of ``transactions`` (in the given order) as a table of :data:`CHANGELOG_SCHEMA`.

    Values shared by all rows of an event (or a transaction) are built once per event and
    expanded to the rows by an Arrow ``take``, so the per-row Python work is only the JSON images.
    Transactions with spilled parts are refused (``ValueError``): their records are not all here
    (write each part after :func:`stamp_commit`, then ``txn.in_memory()``).
    """
    events: list[EventChanges] = []
    txn_of_event: list[CommittedTransaction] = []
    for txn in transactions:
        if txn.spilled:
            raise ValueError(f"transaction {txn.gtid} has spilled parts; to_arrow takes in-memory events only")
        events.extend(txn.events)
        txn_of_event.extend([txn] * len(txn.events))
    counts = [event.row_count for event in events]
    row_event = arrowcols.integers([i for i, n in enumerate(counts) for _ in range(n)], pa.int32())
    columns: dict[str, pa.Array] = {}
    for name in _EVENT_FIELDS:
        columns[name] = _column([getattr(e, name) for e in events], CHANGELOG_SCHEMA.field(name).type)
    columns["gtid"] = arrowcols.strings([t.gtid for t in txn_of_event])
    columns["xid"] = arrowcols.integers([t.xid for t in txn_of_event], pa.int64())
    columns["commit_ts"] = arrowcols.integers([t.commit_ts_us for t in txn_of_event], pa.timestamp("us", tz="UTC"))
    expanded = {name: array.take(row_event) for name, array in columns.items()}
    expanded["row_idx"] = arrowcols.integers(
        [i for e in events for i in range(e.first_row_idx, e.first_row_idx + e.row_count)], pa.int32())
    for name in ("before", "after"):
        images: list[str | None] = []
        for event, n in zip(events, counts, strict=True):
            image = getattr(event, name)
            images.extend(image if image is not None else [None] * n)
        expanded[name] = arrowcols.strings(images)
    return pa.Table.from_arrays([expanded[f.name] for f in CHANGELOG_SCHEMA], schema=CHANGELOG_SCHEMA)


def _column(values: list[Any], arrow_type: pa.DataType) -> pa.Array:
    """``pa.array(values, type=arrow_type)`` without pyarrow's pandas import (:mod:`binlake.arrowcols`)."""
    return arrowcols.strings(values) if arrow_type == pa.string() else arrowcols.integers(values, arrow_type)


_COMMIT_FIELDS = ("gtid", "xid", "commit_ts")


def stamp_commit(table: pa.Table, txn: CommittedTransaction) -> pa.Table:
    """``table`` (records of ``txn`` written before its commit) with ``txn``'s gtid, xid and commit
    time in every record; all other columns unchanged."""
    if table.schema != CHANGELOG_SCHEMA:
        raise ValueError("table does not have the change-log schema")
    values = {"gtid": txn.gtid, "xid": txn.xid, "commit_ts": txn.commit_ts_us}
    for name in _COMMIT_FIELDS:
        index = CHANGELOG_SCHEMA.get_field_index(name)
        spec = CHANGELOG_SCHEMA.field(name)
        table = table.set_column(index, spec, pa.repeat(pa.scalar(values[name], spec.type), table.num_rows))
    return table


ROW_GROUP_ROWS = 131_072
ROW_GROUP_BYTES = 8 * 1024 * 1024


def parquet_bytes(table: pa.Table) -> bytes:
    """``table`` as one Parquet file (snappy; row groups of 128K rows, fewer when the rows are large,
    so that the writer's buffers stay near :data:`ROW_GROUP_BYTES` whatever the row size)."""
    per_group = ROW_GROUP_ROWS
    if table.nbytes > ROW_GROUP_BYTES and table.num_rows:
        per_group = max(1, min(ROW_GROUP_ROWS, table.num_rows * ROW_GROUP_BYTES // table.nbytes))
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy", row_group_size=per_group)
    return sink.getvalue()


def write_changelog(lake: Lake, table: pa.Table) -> str:
    """Write ``table`` (non-empty, ordered by ``(lsn, row_idx)``) as one change-log file; its key."""
    if table.num_rows == 0:
        raise ValueError("refusing to write an empty change-log file")
    if table.schema != CHANGELOG_SCHEMA:
        raise ValueError("table does not have the change-log schema")
    lsns = table.column("lsn")
    key = changelog_key(lsns[0].as_py(), lsns[-1].as_py())
    lake.put_bytes(key, parquet_bytes(table))
    return key


def list_changelog(lake: Lake) -> list[str]:
    """Keys of all change-log files, ordered by their first lsn."""
    keys = []
    for key in lake.list(CHANGELOG_DIR):
        try:
            keys.append((parse_changelog_name(key), key))
        except ValueError:
            continue
    return [key for _, key in sorted(keys)]


def changelog_files(lake: Lake) -> list[ChangelogFile]:
    """Every change-log file with its lsn range and write time, in lsn order (what the lifecycle
    plans with, :mod:`binlake.lifecycle`)."""
    files = []
    for info in lake.list_info(CHANGELOG_DIR):
        try:
            first, last = parse_changelog_name(info.key)
        except ValueError:
            continue
        files.append(ChangelogFile(first, last, info.key, info.modified))
    return sorted(files)


def remove_changelog(lake: Lake, files: Iterable[ChangelogFile]) -> int:
    """Delete ``files`` one by one in the given order (a crash leaves a prefix deleted); how many."""
    count = 0
    for file in files:
        lake.delete(file.key)
        count += 1
    return count


def read_removed(lake: Lake) -> dict[str, Any] | None:
    """The lifecycle's record ``_binlake/changelog-removed.json`` (``None``: nothing was ever removed):
    ``removed_through`` (records up to this lsn may be gone), ``floor``, ``pinned_by``, ``updated_at``,
    ``files_removed`` (in all)."""
    try:
        data = json.loads(lake.get_bytes(CHANGELOG_REMOVED_KEY))
    except FileNotFoundError:
        return None
    return data if isinstance(data, dict) else None


def write_removed(lake: Lake, record: dict[str, Any]) -> None:
    """Replace that record, durably (the cleanup writes it before its first delete)."""
    lake.put_bytes(CHANGELOG_REMOVED_KEY, json.dumps(record, indent=1).encode())


def read_changelog(lake: Lake, keys: Sequence[str] | None = None, dedupe: bool = True) -> pa.Table:
    """All records of the change log (or of ``keys``), sorted by ``(lsn, row_idx)``.

    With ``dedupe`` (the default) a record written twice (same ``lsn`` and ``row_idx``, e.g.
    after a crash between writing a file and saving the checkpoint) appears once.
    """
    keys = list_changelog(lake) if keys is None else keys
    tables = [pq.read_table(io.BytesIO(lake.get_bytes(key)), schema=CHANGELOG_SCHEMA) for key in keys]
    if not tables:
        return CHANGELOG_SCHEMA.empty_table()
    table = pa.concat_tables(tables).sort_by([("lsn", "ascending"), ("row_idx", "ascending")])
    if not dedupe or table.num_rows == 0:
        return table
    lsn = table.column("lsn").to_pylist()
    idx = table.column("row_idx").to_pylist()
    keep = [i for i in range(len(lsn)) if i == 0 or (lsn[i], idx[i]) != (lsn[i - 1], idx[i - 1])]
    return table.take(pa.array(keep, type=pa.int64())) if len(keep) != len(lsn) else table


def records(table: pa.Table) -> list[dict[str, Any]]:
    """Rows of a change-log table as dicts, with ``before``/``after``/``columns`` parsed from JSON."""
    rows: list[dict[str, Any]] = table.to_pylist()
    for row in rows:
        for name in ("before", "after", "columns"):
            if row[name] is not None:
                row[name] = json.loads(row[name])
    return rows
