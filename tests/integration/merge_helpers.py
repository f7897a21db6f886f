"""Building blocks for the merge tests: hand-written change-log files (through the capture's own
writer, ``binlake.changelog``), lake tables as the full load leaves them (``binlake.snapshot``'s
table creation and state file), and running the merge with ``availableNow``."""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.types import StructField, StructType, _parse_datatype_string

from binlake import typemap
from binlake.changelog import CommittedTransaction, EventChanges, to_arrow, write_changelog
from binlake.chunks import ChunkRange
from binlake.config import PipelineConfig, parse_config
from binlake.lake import Lake, snapshot_state_key, table_key
from binlake.positions import BinlogPosition
from binlake.snapshot.delta import create_table
from binlake.snapshot.state import COMMITTED, COMPLETE, LOADING, ChunkState, TableState
from binlake.tablefeatures import DEFAULT as DEFAULT_FEATURES
from binlake.tablefeatures import TableFeatures

BINLOG = "binlog.000001"
Column = tuple[str, str, bool]  # (name, typemap spec, pk)
LAYOUT: list[Column] = [("id", "bigint", True), ("name", "varchar", False), ("qty", "int", False)]
T0 = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.UTC)


def r(i: int, name: str, qty: int) -> dict[str, Any]:
    """A row of the ``(id, name, qty)`` test tables, as a change-log image."""
    return {"id": i, "name": name, "qty": qty}


def lsn(pos: int) -> int:
    """The lsn of end position ``pos`` in the test binlog file."""
    return BinlogPosition.of(BINLOG, pos).lsn


def columns_json(layout: Sequence[Column]) -> str:
    return json.dumps([{"name": n, "type": t, "pk": pk} for n, t, pk in layout])


def image(row: dict[str, Any]) -> str:
    return json.dumps({k: None if v is None else str(v) for k, v in row.items()})


class Source:
    """Writes change-log files for tables of schema ``shop`` (same names in source and lake)."""

    def __init__(self, lake: Lake, schema: str = "shop") -> None:
        self.lake = lake
        self.schema = schema
        self.layouts: dict[str, list[Column]] = {}

    def event(self, pos: int, table: str, op: str, before: Sequence[dict[str, Any]] | None = None,
              after: Sequence[dict[str, Any]] | None = None, layout: Sequence[Column] | None = None,
              ddl: str | None = None, ddl_kind: str | None = None) -> EventChanges:
        cols = "[]" if op == "DDL" else columns_json(layout or self.layouts.get(table, LAYOUT))
        return EventChanges(
            lsn=lsn(pos), binlog_file=BINLOG, binlog_pos=pos, op=op, source_schema=self.schema, source_table=table,
            schema=self.schema, table=table, columns=cols,
            before=None if before is None else [image(r) for r in before],
            after=None if after is None else [image(r) for r in after], ddl=ddl, ddl_kind=ddl_kind)

    def ins(self, pos: int, table: str, *rows: dict[str, Any], layout: Sequence[Column] | None = None) -> EventChanges:
        return self.event(pos, table, "I", after=rows, layout=layout)

    def upd(self, pos: int, table: str, *pairs: tuple[dict[str, Any], dict[str, Any]],
            layout: Sequence[Column] | None = None) -> EventChanges:
        return self.event(pos, table, "U", before=[b for b, _ in pairs], after=[a for _, a in pairs], layout=layout)

    def dele(self, pos: int, table: str, *rows: dict[str, Any], layout: Sequence[Column] | None = None) -> EventChanges:
        return self.event(pos, table, "D", before=rows, layout=layout)

    def ddl(self, pos: int, table: str, kind: str, sql: str) -> EventChanges:
        return self.event(pos, table, "DDL", ddl=sql, ddl_kind=kind)

    def write(self, *events: EventChanges) -> str:
        """One change-log file (records in lsn order, as the capture writes them), one transaction per
        event, committed at :func:`commit_time` of its pos."""
        ordered = sorted(events, key=lambda e: e.lsn)
        txns = [CommittedTransaction(None, e.binlog_pos, _micros(commit_time(e.binlog_pos)), (e,)) for e in ordered]
        return write_changelog(self.lake, to_arrow(txns))


def commit_time(pos: int) -> datetime.datetime:
    """Source commit time of the test event at ``pos``: ``pos`` seconds after T0."""
    return T0 + datetime.timedelta(seconds=pos)


def _micros(when: datetime.datetime) -> int:
    return int(when.timestamp() * 1_000_000)


def spark_schema(layout: Sequence[Column]) -> StructType:
    fields = [StructField(n, _parse_datatype_string(typemap.spark_type(typemap.ColumnType.parse(t))), True)
              for n, t, _ in layout]
    return StructType([*fields, StructField("_binlake_lsn", _parse_datatype_string("bigint")),
                       StructField("_binlake_commit_ts", _parse_datatype_string("timestamp"))])


def load_table(spark: SparkSession, lake: Lake, table: str, rows: Iterable[tuple[Any, ...]], snapshot_pos: int,
               layout: Sequence[Column] = LAYOUT, schema: str = "shop", complete: bool = True,
               features: TableFeatures = DEFAULT_FEATURES) -> str:
    """A lake table as a one-chunk full load at ``snapshot_pos`` leaves it (with ``features``), and its state file."""
    path = lake.uri(table_key(schema, table))
    struct = spark_schema(layout)
    create_table(spark, path, struct, features)
    data = [(*row, lsn(snapshot_pos), T0.replace(tzinfo=None)) for row in rows]
    if data:
        spark.createDataFrame(data, struct).write.format("delta").mode("append").save(path)
    write_state(lake, schema, table, snapshot_pos, complete)
    return path


def write_state(lake: Lake, schema: str, table: str, snapshot_pos: int, complete: bool = True,
                load_id: str | None = None) -> None:
    position = BinlogPosition.of(BINLOG, snapshot_pos)
    chunk = ChunkState(0, ChunkRange(), "1=1", COMMITTED, position=position)
    state = TableState(load_id or uuid.uuid4().hex, schema, table, schema, table, lake.uri(table_key(schema, table)),
                       "DROP_AND_CREATE", ("id",), position, T0.isoformat(), (chunk,),
                       status=COMPLETE if complete else LOADING)
    lake.put_bytes(snapshot_state_key(schema, table), state.to_json())


def merge_config(root: Path | str, **merge: Any) -> PipelineConfig:
    data = {"name": "mergetest", "lake": {"root": str(root)}, "spark": {"master": "local[2]"},
            "table_mappings": {"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "all",
                                          "object-locator": {"schema-name": "%", "table-name": "%"},
                                          "rule-action": "include"}]},
            "merge": {"optimize_every_batches": 0, **merge}}
    return parse_config(data, Path("merge-test.yaml"))


def run_merge(spark: SparkSession, config: PipelineConfig, **kwargs: Any) -> None:
    from binlake.merge.job import run

    run(spark, config, available_now=True, **kwargs)


def rows(spark: SparkSession, path: str, *columns: str, order: Sequence[str] = ("id",)) -> list[tuple[Any, ...]]:
    """The table's rows (``columns``, default: the source columns) sorted by ``order``."""
    frame = spark.read.format("delta").load(path)
    names = columns or tuple(c for c in frame.columns if not c.startswith("_binlake_"))
    quoted = ["`" + name.replace("`", "``") + "`" for name in names]
    return [tuple(r) for r in frame.orderBy(*order).select(*quoted).collect()]
