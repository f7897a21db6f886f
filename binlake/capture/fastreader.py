"""A ``BinLogStreamReader`` whose hot events bypass the library's generic event objects.

For a stream of small transactions most of pymysqlreplication's time goes into building a
``BinLogPacketWrapper`` and an event object (about 17 keyword arguments, a DBMS lookup, …) for
every packet. :class:`FastStreamReader` looks at the 19-byte event header first and handles the
four event types that make up a transaction itself:

* MariaDB GTID → :class:`FastGtid`; XID → :class:`FastXid` (fixed layouts, a few bytes);
* TABLE_MAP of a table id already known → skipped (this *is* ``freeze_schema``: the capture clears
  the table-map cache on every DDL and at every new binlog file);
* Write/Update/DeleteRows (v1/v2) of a table routed ``FAST`` by
  :meth:`binlake.capture.records.Layouts.route` → :class:`~binlake.capture.records.RawRowsEvent`
  holding the undecoded row images; ``SKIP`` → dropped before any row is read.

The event types the library decodes for the capture (rotate, format description, queries, new
table maps, heartbeats, rows the compiled decoder does not handle, events with unexpected
post-header lengths) go through the library's own per-packet code, reproduced in
:meth:`FastStreamReader._library_event` from mysql-replication 1.0.17 (pinned in pyproject.toml
and checked when a reader is built: it relies on that version's private names).

Every other type is settled here, before the library could drop it as ``NotImplementedEvent``
(:mod:`binlake.capture.eventtypes` says which and why): MariaDB's compressed query/rows events are
inflated by :mod:`binlake.capture.compressed` into the equivalent uncompressed packet, which then
takes the same paths as above (fast rows, library query); types that carry no data are skipped;
anything else raises :class:`~binlake.capture.eventtypes.UnsupportedEventError`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

from pymysql.protocol import MysqlPacket
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.constants import BINLOG
from pymysqlreplication.packet import BinLogPacketWrapper

from binlake.capture import eventtypes
from binlake.capture.compressed import COMPRESSED_TYPES, decompress_packet
from binlake.capture.compressed import ROWS_TYPES as COMPRESSED_ROWS_TYPES
from binlake.capture.packets import PacketReader
from binlake.capture.records import FAST, SKIP, RawRowsEvent
from binlake.changelog import OP_DELETE, OP_INSERT, OP_UPDATE

log = logging.getLogger(__name__)

LIBRARY_VERSION = "1.0.17"  # the mysql-replication release whose private names this module uses

_ROWS_OPS = {
    BINLOG.WRITE_ROWS_EVENT_V2: (OP_INSERT, 10), BINLOG.UPDATE_ROWS_EVENT_V2: (OP_UPDATE, 10),
    BINLOG.DELETE_ROWS_EVENT_V2: (OP_DELETE, 10), BINLOG.WRITE_ROWS_EVENT_V1: (OP_INSERT, 8),
    BINLOG.UPDATE_ROWS_EVENT_V1: (OP_UPDATE, 8), BINLOG.DELETE_ROWS_EVENT_V1: (OP_DELETE, 8),
}
_HEADER = 20  # the OK byte of the packet + the 19-byte event header
_PRIVATE = "_BinLogStreamReader__"
_LIBRARY_TYPES = eventtypes.DECODED_TYPES - COMPRESSED_TYPES  # decoded by the library (or the fast paths)


def check_library_version(installed: str | None = None) -> None:
    """Refuse a mysql-replication release other than :data:`LIBRARY_VERSION` (its internals differ)."""
    installed = installed or version("mysql-replication")
    if installed != LIBRARY_VERSION:
        raise RuntimeError(f"binlake's binlog reader needs mysql-replication {LIBRARY_VERSION}, found {installed}: "
                           f"pip install mysql-replication=={LIBRARY_VERSION}")


@dataclass(slots=True)
class FastGtid:
    """A MariaDB GTID event: ``gtid`` is ``domain-server-seq``; ``flags`` as in the event."""

    gtid: str
    flags: int
    timestamp: int
    log_pos: int


@dataclass(slots=True)
class FastBoundary:
    """A dataless event between transactions (:data:`~binlake.capture.eventtypes.BETWEEN_TRANSACTIONS`)."""

    event_type: int
    timestamp: int
    log_pos: int


@dataclass(slots=True)
class FastXid:
    """An XID (commit) event."""

    xid: int
    timestamp: int
    log_pos: int


def _lenenc(data: bytes, off: int) -> tuple[int, int]:
    first = data[off]
    if first < 251:
        return first, off + 1
    size = {252: 2, 253: 3, 254: 8}[first]
    return int.from_bytes(data[off + 1:off + 1 + size], "little"), off + 1 + size


class FastStreamReader(BinLogStreamReader):  # type: ignore[misc]
    """``BinLogStreamReader`` + the fast paths above; ``route(table) → SKIP/FAST/LIBRARY``."""

    table_map: dict[int, Any]
    mysql_version: Any
    # mysql-replication 1.0.17's private state, read directly on the hot path
    _BinLogStreamReader__connected_stream: bool
    _BinLogStreamReader__connected_ctl: bool
    _BinLogStreamReader__post_header_lengths: Any
    _BinLogStreamReader__use_checksum: bool
    log_pos: int | None
    log_file: str | None

    def __init__(self, *args: Any, route: Callable[[Any], int], **kwargs: Any) -> None:
        check_library_version()
        super().__init__(*args, **kwargs)
        self.route = route
        self._warned_types: set[int] = set()
        self._reader: PacketReader | None = None

    def _private(self, name: str) -> Any:
        return getattr(self, _PRIVATE + name)

    def fetchone(self) -> Any:
        """The next event: a fast event, a library event, or ``None`` when the server ended the stream."""
        while True:
            if not self._BinLogStreamReader__connected_stream:
                self._BinLogStreamReader__connect_to_stream()
            if not self._BinLogStreamReader__connected_ctl:
                self._BinLogStreamReader__connect_to_ctl()
            reader = self._reader
            if reader is None or reader.connection is not self._stream_connection:
                reader = self._reader = PacketReader(self._stream_connection)
            data = reader.read()
            if not data:
                continue
            if data[0] == 0xFE and len(data) < 9:  # EOF packet: the server ended the stream
                self.close()
                return None
            if data[0] != 0 or len(data) < 7:  # not an OK packet (pymysql's is_ok_packet)
                continue
            event = self._fast_event(data)
            if event is None:
                event = self._library_event(MysqlPacket(data, self._stream_connection.encoding))
            if event is not _SKIPPED:
                return event

    def idle(self) -> bool:
        """Has the reader consumed everything the server sent so far (the next read would wait)?"""
        return self._reader is not None and self._reader.idle()

    def _fast_event(self, data: bytes) -> Any:
        """A fast event, ``_SKIPPED``, or ``None`` (= let the library handle the packet ``data``)."""
        if len(data) < _HEADER:
            return None
        event_type = data[5]
        log_pos = int.from_bytes(data[14:18], "little")
        if event_type == BINLOG.TABLE_MAP_EVENT:
            if int.from_bytes(data[20:26], "little") in self.table_map:
                self.log_pos = log_pos
                return _SKIPPED
            return None
        if event_type == BINLOG.MARIADB_GTID_EVENT:
            self.log_pos = log_pos
            seq, domain = int.from_bytes(data[20:28], "little"), int.from_bytes(data[28:32], "little")
            server_id = int.from_bytes(data[6:10], "little")
            return FastGtid(f"{domain}-{server_id}-{seq}", data[32], int.from_bytes(data[1:5], "little"), log_pos)
        if event_type == BINLOG.XID_EVENT:
            self.log_pos = log_pos
            return FastXid(int.from_bytes(data[20:28], "little"), int.from_bytes(data[1:5], "little"), log_pos)
        if event_type in _ROWS_OPS:
            return self._rows_event(data, event_type, log_pos)
        if event_type in _LIBRARY_TYPES:
            return None
        return self._other_event(data, event_type, log_pos)

    def _other_event(self, data: bytes, event_type: int, log_pos: int) -> Any:
        """A type the library would drop: inflate a compressed event, skip a dataless one, or stop."""
        size = int.from_bytes(data[10:14], "little")
        start = log_pos - size if log_pos >= size else 0
        if event_type in COMPRESSED_TYPES:
            if event_type in COMPRESSED_ROWS_TYPES:
                table = self.table_map.get(int.from_bytes(data[20:26], "little"))
                if table is None or self.route(table) == SKIP:  # not selected: not worth inflating
                    self.log_pos = log_pos
                    return _SKIPPED
            inflated = decompress_packet(
                data, self._BinLogStreamReader__post_header_lengths, self._BinLogStreamReader__use_checksum,
                f"{self.log_file}:{start}")
            event = self._fast_event(inflated)
            return event if event is not None else self._library_event(MysqlPacket(inflated, None))
        flags = int.from_bytes(data[18:20], "little")
        unknown_ignorable = event_type not in eventtypes.CATALOGUE and flags & eventtypes.LOG_EVENT_IGNORABLE_F
        if event_type not in eventtypes.IGNORED_TYPES and not unknown_ignorable:
            raise eventtypes.unsupported_event(event_type, self.log_file, start, log_pos)
        if unknown_ignorable and event_type not in self._warned_types:
            self._warned_types.add(event_type)
            log.warning("%s:%d: skipping binlog event type %d, unknown to binlake but flagged ignorable by the "
                        "server (LOG_EVENT_IGNORABLE_F); logged for the first such event only",
                        self.log_file, start, event_type)
        self.log_pos = log_pos
        if event_type in eventtypes.BETWEEN_TRANSACTIONS and log_pos:
            return FastBoundary(event_type, int.from_bytes(data[1:5], "little"), log_pos)
        return _SKIPPED

    def _rows_event(self, data: bytes, event_type: int, log_pos: int) -> Any:
        op, post_header = _ROWS_OPS[event_type]
        declared = self._BinLogStreamReader__post_header_lengths
        if not declared or len(declared) < event_type or declared[event_type - 1] != post_header:
            return None
        table = self.table_map.get(int.from_bytes(data[20:26], "little"))
        if table is None:  # its table map was filtered out (schema not selected)
            self.log_pos = log_pos
            return _SKIPPED
        route = self.route(table)
        if route == SKIP:
            self.log_pos = log_pos
            return _SKIPPED
        if route != FAST:
            return None
        off = _HEADER + post_header
        if post_header == 10:
            off += int.from_bytes(data[28:30], "little") - 2  # extra data follows the post-header
        ncols, off = _lenenc(data, off)
        width = (ncols + 7) // 8
        count = 2 if op == OP_UPDATE else 1
        bitmaps = tuple(data[off + i * width:off + (i + 1) * width] for i in range(count))
        off += count * width
        end = len(data) - (4 if self._BinLogStreamReader__use_checksum else 0)
        self.log_pos = log_pos
        return RawRowsEvent(op, table.table_id, table.schema, table.table, log_pos,
                            int.from_bytes(data[1:5], "little"), ncols, bitmaps, data[off:end], self.table_map)

    def _library_event(self, packet: Any) -> Any:
        """pymysqlreplication 1.0.17's own handling of one packet (BinLogStreamReader.fetchone)."""
        p = self._private
        wrapper = BinLogPacketWrapper(
            packet, self.table_map, self._ctl_connection, self.mysql_version, p("use_checksum"),
            p("allowed_events_in_packet"), p("only_tables"), p("ignored_tables"), p("only_schemas"),
            p("ignored_schemas"), p("freeze_schema"), p("ignore_decode_errors"), p("verify_checksum"),
            p("optional_meta_data"), p("enable_logging"), p("use_column_name_cache"), p("post_header_lengths"),
        )
        event = wrapper.event
        if wrapper.event_type == BINLOG.ROTATE_EVENT:
            self.log_pos = event.position
            self.log_file = event.next_binlog
            if wrapper.timestamp != 0:
                self.table_map = {}
        elif wrapper.log_pos:
            self.log_pos = wrapper.log_pos
        if wrapper.event_type == BINLOG.FORMAT_DESCRIPTION_EVENT and event is not None:
            self.mysql_version = event.mysql_version
            setattr(self, _PRIVATE + "post_header_lengths", event.post_header_len)
        if wrapper.event_type == BINLOG.TABLE_MAP_EVENT and event is not None:
            self.table_map[event.table_id] = event.get_table()
        if event is None or event.__class__ not in p("allowed_events"):
            return _SKIPPED
        return event


_SKIPPED: Any = object()
