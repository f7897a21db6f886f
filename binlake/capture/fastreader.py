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

Everything else (rotate, format description, queries, new table maps, heartbeats, rows the compiled
decoder does not handle, events with unexpected post-header lengths) goes through the library's
own per-packet code, reproduced in :meth:`FastStreamReader._library_event` from
mysql-replication 1.0.17 (pinned in pyproject.toml; it relies on that version's private names).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.constants import BINLOG
from pymysqlreplication.packet import BinLogPacketWrapper

from binlake.capture.records import FAST, SKIP, RawRowsEvent
from binlake.changelog import OP_DELETE, OP_INSERT, OP_UPDATE

_ROWS_OPS = {
    BINLOG.WRITE_ROWS_EVENT_V2: (OP_INSERT, 10), BINLOG.UPDATE_ROWS_EVENT_V2: (OP_UPDATE, 10),
    BINLOG.DELETE_ROWS_EVENT_V2: (OP_DELETE, 10), BINLOG.WRITE_ROWS_EVENT_V1: (OP_INSERT, 8),
    BINLOG.UPDATE_ROWS_EVENT_V1: (OP_UPDATE, 8), BINLOG.DELETE_ROWS_EVENT_V1: (OP_DELETE, 8),
}
_HEADER = 20  # the OK byte of the packet + the 19-byte event header
_PRIVATE = "_BinLogStreamReader__"


@dataclass(slots=True)
class FastGtid:
    """A MariaDB GTID event: ``gtid`` is ``domain-server-seq``; ``flags`` as in the event."""

    gtid: str
    flags: int
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
        super().__init__(*args, **kwargs)
        self.route = route

    def _private(self, name: str) -> Any:
        return getattr(self, _PRIVATE + name)

    def fetchone(self) -> Any:
        """The next event: a fast event, a library event, or ``None`` when the server ended the stream."""
        while True:
            if not self._BinLogStreamReader__connected_stream:
                self._BinLogStreamReader__connect_to_stream()
            if not self._BinLogStreamReader__connected_ctl:
                self._BinLogStreamReader__connect_to_ctl()
            packet = self._stream_connection._read_packet()
            if packet.is_eof_packet():
                self.close()
                return None
            if not packet.is_ok_packet():
                continue
            event = self._fast_event(packet)
            if event is None:
                event = self._library_event(packet)
            if event is not _SKIPPED:
                return event

    def _fast_event(self, packet: Any) -> Any:
        """A fast event, ``_SKIPPED``, or ``None`` (= let the library handle the packet)."""
        data: bytes = packet.get_all_data()
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
        return None

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
