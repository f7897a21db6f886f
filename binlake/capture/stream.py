"""The binlog stream (pymysqlreplication's ``BinLogStreamReader``) and the event dispatch table.

How the library is used, and why (see also shared/NOTES.md):

* ``blocking=True`` with heartbeats: an idle source sends a heartbeat every period, which keeps
  the link alive, bounds flush latency and lets a dead link show up as a read timeout
  (``source.read_timeout_s``).
* Starting point: a file/position is passed with ``resume_stream=True`` and ``is_mariadb=False``
  (the library ignores file/pos in MariaDB mode; MariaDB serves a classic dump fine, and still
  sends its GTID events). A GTID start uses ``auto_position`` (``is_mariadb=True`` on MariaDB).
* ``freeze_schema=True``: a table map is parsed once per table id. That is sound because the
  capture clears the library's table-map cache (and its own layouts) on every DDL statement and
  at the start of every binlog file, and because MariaDB 10.11 assigns a new table id after every
  ALTER/RENAME/TRUNCATE/OPTIMIZE/FLUSH TABLES (checked for each).
* ``only_schemas`` is a container that asks the DMS rules, so row events of other schemas are
  dropped by the library before any row is decoded.
* :class:`~binlake.capture.fastreader.FastStreamReader` handles GTID, XID, known table maps and
  row events of selected tables without the library's per-event objects (see that module).
* ``only_events`` (:data:`EVENTS`) only chooses which of the library's *decoded* classes are
  built. Event types the library does not decode never reach that filter: the fast reader inflates
  MariaDB's compressed events, skips the dataless types listed in
  :mod:`binlake.capture.eventtypes`, and stops the capture on any other
  (:class:`~binlake.capture.eventtypes.UnsupportedEventError`) — nothing is dropped as
  ``NotImplementedEvent``.
* The library reconnects by itself after some errors, restarting from its own notion of the
  position (possibly inside a transaction). The capture wants to resume only at transaction
  boundaries, so :class:`_ConnectionFactory` turns such a silent reconnect into
  :class:`StreamLost`, and the runner reconnects from its own position instead.
* ``enable_logging=False``: the library would otherwise log its constructor arguments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pymysql
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import (
    FormatDescriptionEvent,
    GtidEvent,
    HeartbeatLogEvent,
    MariadbGtidEvent,
    QueryEvent,
    RotateEvent,
    XAPrepareEvent,
    XidEvent,
)
from pymysqlreplication.row_event import (
    DeleteRowsEvent,
    PartialUpdateRowsEvent,
    TableMapEvent,
    UpdateRowsEvent,
    WriteRowsEvent,
)

from binlake.capture.fastreader import FastBoundary, FastGtid, FastStreamReader, FastXid
from binlake.capture.records import CaptureDataError, Layouts, RawRowsEvent
from binlake.capture.transactions import TransactionAssembler
from binlake.config import SourceConfig
from binlake.gtidset import GtidSet
from binlake.positions import BinlogPosition
from binlake.rules import TableMapping
from binlake.source import SourceError, connection_kwargs

log = logging.getLogger(__name__)

EVENTS = [
    FormatDescriptionEvent, RotateEvent, GtidEvent, MariadbGtidEvent, QueryEvent, XidEvent, XAPrepareEvent,
    TableMapEvent, WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent, PartialUpdateRowsEvent, HeartbeatLogEvent,
]


class StreamLost(ConnectionError):
    """The binlog connection broke (the library tried to reconnect on its own)."""


@dataclass(frozen=True)
class StartPoint:
    """Where a stream starts: after ``position`` (file/pos), or after GTID set ``gtid``; ``epoch``:
    the binlog history the records belong to (:mod:`binlake.positions`; a position carries its own)."""

    position: BinlogPosition | None = None
    gtid: str | None = None
    epoch: int = 0

    def __post_init__(self) -> None:
        if (self.position is None) == (self.gtid is None):
            raise ValueError("a start point is either a position or a GTID set")
        if self.position is not None and self.position.epoch != self.epoch:
            object.__setattr__(self, "epoch", self.position.epoch)

    def __str__(self) -> str:
        if self.position is not None:
            return str(self.position)
        return f"after GTID set {self.gtid}" + (f" (epoch {self.epoch})" if self.epoch else "")


class SchemaFilter:
    """``schema in SchemaFilter(mapping)``: could the rules select a table of this schema? (cached)"""

    def __init__(self, mapping: TableMapping) -> None:
        self.mapping = mapping
        self._cache: dict[str, bool] = {}

    def __contains__(self, schema: object) -> bool:
        key = str(schema)
        if key not in self._cache:
            self._cache[key] = self.mapping.schema_may_match(key)
        return self._cache[key]


class _ConnectionFactory:
    """pymysql.connect for the library; a second stream connection means a silent reconnect."""

    def __init__(self) -> None:
        self.stream_connections = 0

    def __call__(self, **kwargs: Any) -> Any:
        if kwargs.get("db") != "information_schema":
            self.stream_connections += 1
            if self.stream_connections > 1:
                raise StreamLost("the binlog connection was lost")
        return pymysql.connect(**kwargs)


def open_stream(
    source: SourceConfig,
    start: StartPoint,
    layouts: Layouts,
    heartbeat_seconds: float,
    mariadb: bool,
) -> BinLogStreamReader:
    """A blocking stream from ``start`` (see module docstring for the settings and why)."""
    settings = connection_kwargs(source)
    settings.pop("autocommit", None)
    kwargs: dict[str, Any] = {}
    if start.position is not None:
        kwargs.update(resume_stream=True, log_file=start.position.file, log_pos=start.position.pos)
    else:
        if not mariadb and start.gtid and GtidSet.parse(start.gtid).is_tagged:  # pymysqlreplication 1.0: no tags
            raise SourceError(f"cannot stream after the GTID set {start.gtid}: it holds MySQL 8.4 tagged GTIDs "
                              "(uuid:tag:n), which the binlog reader cannot send to the server yet")
        kwargs.update(auto_position=start.gtid, is_mariadb=mariadb)
    return FastStreamReader(
        route=layouts.route,
        connection_settings=settings,
        server_id=source.server_id,
        blocking=True,
        only_events=EVENTS,
        only_schemas=SchemaFilter(layouts.mapping),
        freeze_schema=True,
        slave_heartbeat=heartbeat_seconds,
        report_slave="binlake",
        enable_logging=False,
        pymysql_wrapper=_ConnectionFactory(),
        **kwargs,
    )


class EventDispatcher:
    """Event class → handler (a table, not an isinstance chain); feeds the assembler."""

    def __init__(self, assembler: TransactionAssembler, layouts: Layouts,
                 on_heartbeat: Callable[[], None] = lambda: None) -> None:
        self.assembler = assembler
        self.layouts = layouts
        self.on_heartbeat = on_heartbeat
        self.table: dict[type, Callable[[Any], None]] = {
            FormatDescriptionEvent: self._format_description,
            RotateEvent: self._rotate,
            GtidEvent: self._mysql_gtid,
            MariadbGtidEvent: self._mariadb_gtid,
            QueryEvent: self._query,
            XidEvent: self._xid,
            XAPrepareEvent: self._xa_prepare,
            TableMapEvent: layouts.on_table_map,
            WriteRowsEvent: assembler.on_rows,
            UpdateRowsEvent: assembler.on_rows,
            DeleteRowsEvent: assembler.on_rows,
            PartialUpdateRowsEvent: self._partial_update,
            HeartbeatLogEvent: self._heartbeat,
            FastGtid: self._fast_gtid,
            FastXid: self._fast_xid,
            FastBoundary: self._boundary,
            RawRowsEvent: assembler.on_rows,
        }

    def dispatch(self, event: Any) -> None:
        """Handle one event (events of other classes are ignored)."""
        handler = self.table.get(type(event))
        if handler is not None:
            if event.timestamp:
                self.assembler.last_event_ts = event.timestamp
            handler(event)

    def _format_description(self, event: Any) -> None:
        self.assembler.on_format_description()

    def _rotate(self, event: Any) -> None:
        self.assembler.on_rotate(event.next_binlog, event.position)

    def _mysql_gtid(self, event: Any) -> None:
        self.assembler.on_gtid(event.gtid, None)

    def _mariadb_gtid(self, event: Any) -> None:
        self.assembler.on_gtid(event.gtid, event.flags)

    def _query(self, event: Any) -> None:
        schema = event.schema.decode("utf-8", "replace") if isinstance(event.schema, bytes) else str(event.schema)
        self.assembler.on_query(event.query, schema, event.packet.log_pos, event.timestamp)

    def _fast_gtid(self, event: FastGtid) -> None:
        self.assembler.on_gtid(event.gtid, event.flags)

    def _fast_xid(self, event: FastXid) -> None:
        self.assembler.on_xid(event.xid, event.log_pos, event.timestamp)

    def _boundary(self, event: FastBoundary) -> None:
        self.assembler.on_boundary(event.log_pos)

    def _xid(self, event: Any) -> None:
        self.assembler.on_xid(event.xid, event.packet.log_pos, event.timestamp)

    def _xa_prepare(self, event: Any) -> None:
        self.assembler.on_query("XA PREPARE", "", event.packet.log_pos, event.timestamp)

    def _partial_update(self, event: Any) -> None:
        if self.layouts.layout_for(event) is not None:
            raise CaptureDataError(
                f"{self.assembler.file}:{event.packet.log_pos}: partial JSON update on "
                f"{event.schema}.{event.table} (binlog_row_value_options=PARTIAL_JSON); binlake needs full "
                "row images: SET GLOBAL binlog_row_value_options=''"
            )

    def _heartbeat(self, event: Any) -> None:
        self.on_heartbeat()
