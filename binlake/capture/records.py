"""Row events → change-log records (:class:`~binlake.changelog.EventChanges`).

:class:`Layouts` keeps one :class:`~binlake.capture.rowdecode.TableLayout` per table id, built
when the table map is first seen and dropped with :meth:`Layouts.clear` whenever a table map may
have changed meaning (any DDL, a new binlog file, a reconnect). On MariaDB 10.11 a table's id also
changes with every ALTER/RENAME/TRUNCATE/OPTIMIZE/FLUSH TABLES (checked), so cached layouts are
never used for a different table layout.

Selection happens before any row is decoded: :meth:`Layouts.target` answers from the DMS rules
(cached per table name), and row events of unselected tables are dropped untouched.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

from binlake import typemap
from binlake.capture import ddl
from binlake.capture.rowdecode import TableLayout
from binlake.changelog import OP_DELETE, OP_INSERT, OP_UPDATE, EventChanges
from binlake.names import LakeNameError, TargetClaims, TargetCollisionError, encode_name
from binlake.positions import make_lsn
from binlake.rules import TableMapping, TableTarget

log = logging.getLogger(__name__)

SKIP, FAST, LIBRARY = 0, 1, 2

DeclaredTypes = Callable[[str, str], Sequence[typemap.ColumnType] | None]
"""``(schema, table) → information_schema column types`` (or None), asked only when the binlog is ambiguous."""


@dataclass(slots=True)
class RawRowsEvent:
    """A Write/Update/DeleteRows event cut from the packet by the fast reader, rows not decoded.

    ``bitmaps``: the columns-present bitmap(s) (two for updates); ``data``: the row images.
    """

    op: str
    table_id: int
    schema: str
    table: str
    log_pos: int
    timestamp: int
    number_of_columns: int
    bitmaps: tuple[bytes, ...]
    data: bytes
    table_map: dict[int, Any]


class CaptureDataError(RuntimeError):
    """A row event binlake cannot turn into exact records (the message names position and table)."""


@functools.lru_cache(maxsize=64)
def _file_base(binlog_file: str) -> int:
    return make_lsn(binlog_file, 0)


def lsn_of(binlog_file: str, pos: int) -> int:
    """``make_lsn`` with the file part cached (``pos`` comes from a 4-byte event header field)."""
    return _file_base(binlog_file) | pos


def _needs_declared(ctypes: Sequence[typemap.ColumnType]) -> bool:
    """BINARY(16)/BINARY(4) may be MariaDB UUID/INET6/INET4; only information_schema can tell."""
    return any(ct.base == "binary" and ct.precision in (4, 16) for ct in ctypes)


class Layouts:
    """Table selection and per-table-map layouts for the capture."""

    def __init__(self, mapping: TableMapping, declared_types: DeclaredTypes | None = None,
                 exists: Callable[[str, str], bool] | None = None) -> None:
        self.mapping = mapping
        self.declared_types = declared_types
        self.exists = exists
        self._targets: dict[tuple[str, str], TableTarget | None] = {}
        self._layouts: dict[int, TableLayout] = {}
        self._claims = TargetClaims()
        self._known: set[tuple[str, str]] = set()  # selected source tables claimed at start or met since
        self.lower_case_table_names = 0  # the server's setting, read at start (binlake.capture.ddl.resolve)

    def claim(self, targets: Sequence[TableTarget]) -> None:
        """Check the selected tables the source holds now (at start): :class:`CaptureDataError` when
        two share a lake table or a name cannot become a lake path — before anything is written."""
        for target in targets:
            self._claim(target)

    def _claim(self, target: TableTarget) -> None:
        source, lake_table = (target.source_schema, target.source_table), (target.schema, target.table)
        self._known.add(source)
        try:
            for name in (*source, *lake_table):
                encode_name(name)
            self._claims.claim(source, lake_table)
        except LakeNameError as exc:
            raise CaptureDataError(str(exc)) from None
        except TargetCollisionError as exc:
            owner = self._claims.owner(lake_table)
            if owner is None or self._coexist(owner, source):
                raise CaptureDataError(str(exc)) from None
            # one after the other (RENAME TABLE Foo TO foo; DROP + CREATE): one lake table, in order
            log.info("%s.%s and %s.%s map to lake table %s.%s but do not exist together on the source; "
                     "continuing", *owner, *source, *lake_table)
            self._claims.transfer(source, lake_table)

    def _coexist(self, first: tuple[str, str], second: tuple[str, str]) -> bool:
        """Do both tables exist on the source now? ``True`` when that cannot be asked or answered."""
        if self.exists is None:
            return True
        try:
            return self.exists(*first) and self.exists(*second)
        except Exception as exc:  # unknown is never taken for gone
            log.warning("could not ask the source whether %s.%s and %s.%s exist: %s", *first, *second, exc)
            return True

    def target(self, schema: str, table: str) -> TableTarget | None:
        """The rules' target for a source table (``None`` = not selected); cached. A table met for the
        first time (e.g. created while the capture runs) whose lake table another source table holds is
        refused when both exist on the source now; one replacing the other (``RENAME TABLE Foo TO foo``
        under a lower-case rule, DROP then CREATE) continues the lake table."""
        key = (schema, table)
        if key not in self._targets:
            target = self.mapping.target_for(schema, table)
            if target is not None:
                self._claim(target)
            self._targets[key] = target
        return self._targets[key]

    def resolve(self, ref: ddl.TableRef) -> ddl.TableRef:
        """A table named in a statement, spelled as the table maps spell it (``lower_case_table_names``)."""
        return ddl.resolve(ref, self.lower_case_table_names, self._known)

    def selected_in_schema(self, schema: str) -> list[ddl.TableRef]:
        """The selected tables of database ``schema`` the capture knows (claimed at start: every one the
        source held; or met since), in name order — what a ``DROP DATABASE`` drops."""
        return [ddl.TableRef(s, t) for s, t in sorted(self._known)
                if ddl.same_database(s, schema, self.lower_case_table_names) and self.target(s, t) is not None]

    def clear(self) -> None:
        """Forget all layouts (call on DDL, binlog rotation and reconnect)."""
        self._layouts.clear()

    def on_table_map(self, event: Any) -> None:
        """Build the layout of a newly parsed table map (a ``TableMapEvent``) of a selected table."""
        target = self.target(event.schema, event.table)
        if target is None:
            return
        self._layouts[event.table_id] = self._build(event, event.schema, event.table, target)

    def _build(self, table_map: Any, schema: str, table: str, target: TableTarget) -> TableLayout:
        """Column types from the table map, refined by information_schema where the binlog is blind."""
        try:
            ctypes: list[typemap.ColumnType] | None = typemap.table_map_column_types(table_map)
        except typemap.UnsupportedTypeError:
            ctypes = None  # e.g. ENUM labels in a non-UTF-8 character set: the declared type is needed
        if self.declared_types is not None and (ctypes is None or _needs_declared(ctypes)):
            declared = self.declared_types(schema, table)
            if declared is not None and len(declared) == len(table_map.columns):
                try:
                    ctypes = typemap.table_map_column_types(table_map, declared)
                except ValueError as exc:
                    log.warning("%s.%s: information_schema does not match the binlog (%s); using the "
                                "binlog's types", schema, table, exc)
        if ctypes is None:
            ctypes = typemap.table_map_column_types(table_map)  # raises the UnsupportedTypeError
        return TableLayout(schema, table, table_map.columns, ctypes, target)

    def route(self, table: Any) -> int:
        """How the fast reader treats rows of a table map: ``SKIP`` (not selected), ``FAST``
        (compiled decoder ready) or ``LIBRARY`` (let pymysqlreplication build the event)."""
        layout = self._layouts.get(table.table_id)
        if layout is not None:
            return FAST if layout.fast else LIBRARY
        return SKIP if self.target(table.schema, table.table) is None else LIBRARY

    def layout_for(self, event: Any) -> TableLayout | None:
        """The layout for a row event, or ``None`` when its table is not selected."""
        layout = self._layouts.get(event.table_id)
        if layout is not None:
            return layout
        target = self.target(event.schema, event.table)
        if target is None:
            return None
        table_map = event.table_map[event.table_id]  # table map parsed before we (re)started caching
        layout = self._build(table_map, event.schema, event.table, target)
        self._layouts[event.table_id] = layout
        return layout


def _remaining(event: Any) -> bytes:
    """The undecoded row data of a library row event (after its header and column bitmaps)."""
    packet = event.packet
    data: bytes = packet.read(event.event_size - packet.read_bytes)
    return data


def _images(layout: TableLayout, data: bytes, per_row: int) -> list[list[str]]:
    decode = layout.decode_image
    out: list[list[str]] = [[] for _ in range(per_row)]
    off, end = 0, len(data)
    if per_row == 1:
        first = out[0]
        while off < end:
            text, off = decode(data, off)
            first.append(text)
        return out
    before, after = out
    while off < end:
        text, off = decode(data, off)
        before.append(text)
        text, off = decode(data, off)
        after.append(text)
    return out


def _library_images(layout: TableLayout, event: Any, keys: Sequence[str]) -> list[list[str]]:
    out: list[list[str]] = [[] for _ in keys]
    for row in event.rows:
        for image, key in zip(out, keys, strict=True):
            sources = row.get(key.replace("values", "none_sources"))
            image.append(layout.encode_values(row[key], sources))
    return out


def _decode(event: Any, layout: TableLayout, keys: Sequence[str]) -> list[list[str]]:
    """One JSON list per image kind (``keys``): the compiled decoder when it can, else the library."""
    if isinstance(event, RawRowsEvent):
        return _images(layout, event.data, len(keys))
    if layout.fast:
        return _images(layout, _remaining(event), len(keys))
    return _library_images(layout, event, keys)


_OPS: dict[type, tuple[str, tuple[str, ...]]] = {
    WriteRowsEvent: (OP_INSERT, ("values",)),
    DeleteRowsEvent: (OP_DELETE, ("values",)),
    UpdateRowsEvent: (OP_UPDATE, ("before_values", "after_values")),
}
_KEYS = {op: keys for op, keys in _OPS.values()}


def _view(event: Any) -> tuple[str, tuple[str, ...], tuple[bytes, ...], int, int]:
    """``(op, image keys, bitmaps, number_of_columns, log_pos)`` of a raw or library row event."""
    if isinstance(event, RawRowsEvent):
        return event.op, _KEYS[event.op], event.bitmaps, event.number_of_columns, event.log_pos
    op, keys = _OPS[type(event)]
    bitmaps = (event.columns_present_bitmap,) + ((event.columns_present_bitmap2,) if op == OP_UPDATE else ())
    return op, keys, bitmaps, int(event.number_of_columns), int(event.packet.log_pos)


def event_changes(event: Any, layout: TableLayout, binlog_file: str) -> EventChanges:
    """The records of one Write/Update/DeleteRows event (raw or library) of a selected table.

    Raises :class:`CaptureDataError` for a row image that is not FULL (a session with
    ``binlog_row_image`` other than FULL wrote it): binlake never guesses missing columns.
    """
    op, keys, bitmaps, ncols, pos = _view(event)
    full = ncols == layout.ncols
    for bitmap in bitmaps:  # every column present in every image (inline: once per row event)
        full = full and int.from_bytes(bitmap, "little") == layout.all_present
    if not full:
        raise CaptureDataError(
            f"{binlog_file}:{pos}: row event on {layout.source_schema}.{layout.source_table} "
            "does not carry a FULL row image (a session changed binlog_row_image); binlake cannot "
            "capture it exactly. Set binlog_row_image=FULL for every writer, then re-run the full load "
            "of this table and restart the capture after this position"
        )
    images = _decode(event, layout, keys)
    before, after = (images[0], images[1]) if op == OP_UPDATE else (
        (images[0], None) if op == OP_DELETE else (None, images[0]))
    return EventChanges(
        lsn=lsn_of(binlog_file, pos), binlog_file=binlog_file, binlog_pos=pos, op=op,
        source_schema=layout.source_schema, source_table=layout.source_table,
        schema=layout.schema, table=layout.table, columns=layout.columns_json,
        before=before, after=after,
    )
