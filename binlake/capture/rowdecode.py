"""Fast decoding of row-event images straight into change-log JSON, one compiled decoder per table map.

pymysqlreplication decodes every column through a chain of generic method calls (about 2 µs per
column); for each table layout (one table map) this module instead generates one straight-line
Python function that reads a whole row image from the event's bytes and returns the ``before`` /
``after`` JSON text ``{target column: canonical string or null}``.

Guarantees:

* The canonical strings are those of :func:`binlake.typemap.encode_binlog_value`: each column's
  value is first decoded to the Python value pymysqlreplication documents for its type and then
  encoded by typemap. Shortcuts (integers written as ``str(int)``, text passed through, DATETIME
  formatted directly) are used only for a column whose typemap encoding was checked to agree with
  the shortcut on probe values when the decoder was built.
* Columns must have been prepared by :func:`binlake.typemap.table_map_column_types` (exact text
  codecs); their :class:`~binlake.typemap.ColumnType` list is passed in.
* Where pymysqlreplication 1.0.17 decodes a value wrongly and typemap relies on the wrong form,
  this decoder produces the library's form (negative TIME with a fraction: the correct value is
  decoded, then turned into the library's form with the involution
  :func:`binlake.typemap.fix_negative_time`, which typemap applies again). Elsewhere it gives values
  typemap encodes the same way: an empty SET is ``set()`` (library: ``None`` + none_source), YEAR 0
  is ``0`` (library: 1900), the zero TIMESTAMP is ``None`` (library: 1970-01-01).
* Types it does not read itself (MySQL binary JSON and the pre-5.6 temporal/decimal formats) make
  the whole table use the library's decoding (:attr:`TableLayout.fast` is ``False``).
* Removed columns (transformation rules) are read past but never encoded.
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
import struct
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from pymysqlreplication.constants import FIELD_TYPE

from binlake import typemap
from binlake.rules import TableTarget

_esc: Callable[[str], str] = json.encoder.encode_basestring
_EPOCH = dt.datetime(1970, 1, 1)
_DIG2BYTES = (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)


class UnsupportedLayoutError(ValueError):
    """The table map lacks what binlake needs (column names: binlog_row_metadata=FULL)."""


# ---------------------------------------------------------------- value readers (library types)


def read_decimal(buf: bytes, off: int, precision: int, scale: int) -> tuple[Decimal, int]:
    """MySQL NEWDECIMAL binary → ``Decimal`` (exact)."""
    integral = precision - scale
    int_full, int_rest = divmod(integral, 9)
    frac_full, frac_rest = divmod(scale, 9)
    size = _DIG2BYTES[int_rest] + int_full * 4 + frac_full * 4 + _DIG2BYTES[frac_rest]
    raw = bytearray(buf[off:off + size])
    negative = not raw[0] & 0x80
    raw[0] ^= 0x80
    if negative:
        raw = bytearray(b ^ 0xFF for b in raw)
    pos = 0
    parts = []
    n = _DIG2BYTES[int_rest]
    if n:
        parts.append(str(int.from_bytes(raw[pos:pos + n], "big")))
        pos += n
    for _ in range(int_full):
        parts.append(f"{int.from_bytes(raw[pos:pos + 4], 'big'):09d}")
        pos += 4
    parts.append(".")
    for _ in range(frac_full):
        parts.append(f"{int.from_bytes(raw[pos:pos + 4], 'big'):09d}")
        pos += 4
    n = _DIG2BYTES[frac_rest]
    if n:
        parts.append(f"{int.from_bytes(raw[pos:pos + n], 'big'):0{frac_rest}d}")
    text = "".join(parts)
    return Decimal(("-" if negative else "") + (text if text != "." else "0")), off + size


def _frac_bytes(fsp: int) -> int:
    return (fsp + 1) // 2


def _read_frac(buf: bytes, off: int, fsp: int) -> int:
    """Microseconds of a DATETIME2/TIMESTAMP2 fraction (big-endian, fsp-dependent size)."""
    n = _frac_bytes(fsp)
    if not n:
        return 0
    value = int.from_bytes(buf[off:off + n], "big")
    return int(value * 10 ** (6 - 2 * n))


def read_datetime2(buf: bytes, off: int, fsp: int) -> tuple[dt.datetime | None, int]:
    """DATETIME(fsp) → naive datetime; zero / invalid dates → ``None``."""
    packed = int.from_bytes(buf[off:off + 5], "big")
    micro = _read_frac(buf, off + 5, fsp)
    end = off + 5 + _frac_bytes(fsp)
    ym = (packed >> 22) & 0x1FFFF
    try:
        value = dt.datetime(ym // 13, ym % 13, (packed >> 17) & 0x1F, (packed >> 12) & 0x1F,
                            (packed >> 6) & 0x3F, packed & 0x3F, micro)
    except ValueError:
        return None, end
    return value, end


def read_timestamp2(buf: bytes, off: int, fsp: int) -> tuple[dt.datetime | None, int]:
    """TIMESTAMP(fsp) → naive UTC datetime; the zero timestamp → ``None``."""
    seconds = int.from_bytes(buf[off:off + 4], "big")
    micro = _read_frac(buf, off + 4, fsp)
    end = off + 4 + _frac_bytes(fsp)
    if seconds == 0 and micro == 0:
        return None, end
    return _EPOCH + dt.timedelta(seconds=seconds, microseconds=micro), end


def read_time2(buf: bytes, off: int, fsp: int) -> tuple[dt.timedelta, int]:
    """TIME(fsp) → the true timedelta (MySQL's my_time_packed_from_binary)."""
    intpart = int.from_bytes(buf[off:off + 3], "big") - 0x800000
    n = _frac_bytes(fsp)
    frac = int.from_bytes(buf[off + 3:off + 3 + n], "big") if n else 0
    if n and intpart < 0 and frac:
        intpart += 1
        frac -= 1 << (8 * n)
    packed = (intpart << 24) + frac * 10 ** (6 - 2 * n) if n else intpart << 24
    sign = -1 if packed < 0 else 1
    packed = abs(packed)
    hms, micro = packed >> 24, packed % (1 << 24)
    value = dt.timedelta(hours=(hms >> 12) % 1024, minutes=(hms >> 6) % 64, seconds=hms % 64,
                         microseconds=micro)
    return sign * value, off + 3 + n


def read_time2_library_form(buf: bytes, off: int, fsp: int) -> tuple[dt.timedelta, int]:
    """TIME(fsp) as pymysqlreplication 1.0.17 returns it (what typemap expects)."""
    value, end = read_time2(buf, off, fsp)
    return typemap.fix_negative_time(value), end


def read_date(buf: bytes, off: int) -> tuple[dt.date | None, int]:
    """DATE → date; zero or partly-zero dates → ``None``."""
    packed = int.from_bytes(buf[off:off + 3], "little")
    try:
        return dt.date(packed >> 9, (packed >> 5) & 0x0F, packed & 0x1F), off + 3
    except ValueError:
        return None, off + 3


# ---------------------------------------------------------------- code generation


class _Gen:
    """Collects the source lines and constants of one generated image decoder."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.env: dict[str, Any] = {"int_from": int.from_bytes, "esc": _esc}

    def const(self, name: str, value: Any) -> str:
        self.env[name] = value
        return name

    def emit(self, line: str, indent: int) -> None:
        """Add a line; ``indent`` 0 = the ``def``, 1 = function body, 2 = inside an if/else."""
        self.lines.append("    " * indent + line)


_STRUCTS = {
    (FIELD_TYPE.SHORT, False): "<h", (FIELD_TYPE.SHORT, True): "<H",
    (FIELD_TYPE.LONG, False): "<i", (FIELD_TYPE.LONG, True): "<I",
    (FIELD_TYPE.LONGLONG, False): "<q", (FIELD_TYPE.LONGLONG, True): "<Q",
    (FIELD_TYPE.FLOAT, False): "<f", (FIELD_TYPE.FLOAT, True): "<f",
    (FIELD_TYPE.DOUBLE, False): "<d", (FIELD_TYPE.DOUBLE, True): "<d",
}
_TEXT_BASES = frozenset((*typemap.CHAR_TYPES, "json"))
_INTEGER_TYPES = {FIELD_TYPE.TINY, FIELD_TYPE.SHORT, FIELD_TYPE.INT24, FIELD_TYPE.LONG, FIELD_TYPE.LONGLONG}
_FAST_TYPES = _INTEGER_TYPES | {
    FIELD_TYPE.FLOAT, FIELD_TYPE.DOUBLE, FIELD_TYPE.VARCHAR, FIELD_TYPE.STRING, FIELD_TYPE.BLOB,
    FIELD_TYPE.NEWDECIMAL, FIELD_TYPE.DATETIME2, FIELD_TYPE.TIMESTAMP2, FIELD_TYPE.TIME2, FIELD_TYPE.DATE,
    FIELD_TYPE.YEAR, FIELD_TYPE.ENUM, FIELD_TYPE.SET, FIELD_TYPE.BIT, FIELD_TYPE.GEOMETRY,
}


def _read_length_prefixed(g: _Gen, i: int, size: int) -> None:
    if size == 1:
        g.emit("n = buf[off]; off += 1", 2)
    else:
        g.emit(f"n = int_from(buf[off:off + {size}], 'little'); off += {size}", 2)
    g.emit(f"v{i} = buf[off:off + n]; off += n", 2)


def _emit_reader(g: _Gen, i: int, column: Any, ctype: typemap.ColumnType) -> None:
    """Lines that set ``v{i}`` (the library-typed value) and advance ``off``."""
    is_text = ctype.base in _TEXT_BASES
    ftype = column.type
    unsigned = bool(getattr(column, "unsigned", False))
    if ftype == FIELD_TYPE.TINY:
        g.emit(f"v{i} = buf[off]; off += 1" if unsigned else f"v{i} = (buf[off] ^ 128) - 128; off += 1", 2)
    elif ftype == FIELD_TYPE.INT24:
        g.emit(f"v{i} = int_from(buf[off:off + 3], 'little', signed={not unsigned}); off += 3", 2)
    elif (ftype, unsigned) in _STRUCTS:
        fmt = _STRUCTS[(ftype, unsigned)]
        unpack = g.const(f"u{i}", struct.Struct(fmt).unpack_from)
        g.emit(f"v{i} = {unpack}(buf, off)[0]; off += {struct.calcsize(fmt)}", 2)
    elif ftype in (FIELD_TYPE.VARCHAR, FIELD_TYPE.STRING, FIELD_TYPE.BLOB, FIELD_TYPE.GEOMETRY):
        if ftype in (FIELD_TYPE.VARCHAR, FIELD_TYPE.STRING):
            size = 2 if column.max_length > 255 else 1
        else:
            size = column.length_size
        _read_length_prefixed(g, i, size)
        if is_text:
            codec = str(column.character_set_name)  # set to an exact codec by typemap.prepare_binlog_column
            codecs.lookup(codec)
            g.emit(f"v{i} = v{i}.decode({g.const(f'codec{i}', codec)})", 2)
    elif ftype == FIELD_TYPE.NEWDECIMAL:
        g.const("read_decimal", read_decimal)
        g.emit(f"v{i}, off = read_decimal(buf, off, {int(column.precision)}, {int(column.decimals)})", 2)
    elif ftype in (FIELD_TYPE.DATETIME2, FIELD_TYPE.TIMESTAMP2, FIELD_TYPE.TIME2):
        reader = {FIELD_TYPE.DATETIME2: read_datetime2, FIELD_TYPE.TIMESTAMP2: read_timestamp2,
                  FIELD_TYPE.TIME2: read_time2_library_form}[ftype]
        g.const(reader.__name__, reader)
        g.emit(f"v{i}, off = {reader.__name__}(buf, off, {int(column.fsp)})", 2)
    elif ftype == FIELD_TYPE.DATE:
        g.const("read_date", read_date)
        g.emit(f"v{i}, off = read_date(buf, off)", 2)
    elif ftype == FIELD_TYPE.YEAR:
        g.emit(f"v{i} = buf[off]; off += 1", 2)
        g.emit(f"v{i} = v{i} + 1900 if v{i} else 0", 2)
    elif ftype == FIELD_TYPE.ENUM:
        labels = g.const(f"labels{i}", tuple(column.enum_values or [""]))  # library: [""] + labels
        g.emit(f"x = int_from(buf[off:off + {int(column.size)}], 'little'); off += {int(column.size)}", 2)
        g.emit(f"v{i} = {labels}[x] if x < len({labels}) else ''", 2)
    elif ftype == FIELD_TYPE.SET:
        labels = g.const(f"labels{i}", tuple(column.set_values or ()))
        g.emit(f"x = int_from(buf[off:off + {int(column.size)}], 'little'); off += {int(column.size)}", 2)
        g.emit(f"v{i} = {{lab for k, lab in enumerate({labels}) if x >> k & 1}}", 2)
    elif ftype == FIELD_TYPE.BIT:
        g.emit(f"v{i} = format(int_from(buf[off:off + {int(column.bytes)}], 'big'), '0{int(column.bits)}b')", 2)
        g.emit(f"off += {int(column.bytes)}", 2)
    else:  # pragma: no cover - guarded by _FAST_TYPES
        raise AssertionError(f"no reader for field type {ftype}")


# ---------------------------------------------------------------- shortcut probes

_INT_PROBES = (0, 1, -1, 127, -128, 255, 32767, -32768, 8388607, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63), 2**64 - 1)
_TEXT_PROBES = ("", "a", " x ", "ä€😀", "'\"\\", "0", "NULL")
_DATETIME_PROBES = (dt.datetime(2024, 1, 2, 3, 4, 5), dt.datetime(999, 12, 31, 23, 59, 59),
                    dt.datetime(1000, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59))


def _datetime_text(value: dt.datetime) -> str:
    return (f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
            f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}")


def _agrees(encode: Callable[[Any], str | None], probes: Sequence[Any], shortcut: Callable[[Any], str]) -> bool:
    try:
        return all(encode(p) == shortcut(p) for p in probes)
    except Exception:
        return False


def _shortcut(column: Any, ctype: typemap.ColumnType, encode: Callable[[Any], str | None]) -> str | None:
    """Name of a shortcut equal to typemap's encoding for this column, or ``None``."""
    if column.type in _INTEGER_TYPES and _agrees(encode, _INT_PROBES, str):
        return "int"
    if ctype.base in _TEXT_BASES and _agrees(encode, _TEXT_PROBES, lambda s: s):
        return "text"
    if (column.type == FIELD_TYPE.DATETIME2 and not column.fsp
            and _agrees(encode, _DATETIME_PROBES, _datetime_text)):
        return "datetime"
    return None


def _emit_encoder(g: _Gen, i: int, shortcut: str | None, encode: Callable[[Any], str | None]) -> None:
    """Lines that turn ``v{i}`` into its JSON text ``j{i}``."""
    if shortcut == "int":
        g.emit(f"j{i} = '\"%d\"' % v{i}", 2)
    elif shortcut == "text":
        g.emit(f"j{i} = esc(v{i})", 2)
    elif shortcut == "datetime":
        g.const("dtext", _datetime_text)
        g.emit(f"j{i} = 'null' if v{i} is None else '\"' + dtext(v{i}) + '\"'", 2)
    else:
        g.const(f"e{i}", encode)
        g.emit(f"x = e{i}(v{i})", 2)
        g.emit(f"j{i} = 'null' if x is None else esc(x)", 2)


# ---------------------------------------------------------------- table layout


def _column_source_name(column: Any, index: int) -> str:
    name = getattr(column, "name", None)
    if not name:
        raise UnsupportedLayoutError(
            f"the table map has no name for column {index}: the source must run with "
            "binlog_row_metadata=FULL (set it before the rows are written)"
        )
    return str(name)


class TableLayout:
    """Everything needed to turn row images of one table map into change-log records.

    Built once per table map from its (prepared) library ``columns`` and their ``ctypes``.
    ``decode_image(buf, off)`` returns ``(json_text, new_off)`` for one full row image starting
    at ``off`` (only when :attr:`fast`); :meth:`encode_values` does the same for a row already
    decoded by the library. ``columns_json`` is the change-log ``columns`` value of every record.
    """

    def __init__(
        self,
        source_schema: str,
        source_table: str,
        columns: Sequence[Any],
        ctypes: Sequence[typemap.ColumnType],
        target: TableTarget,
    ) -> None:
        if len(columns) != len(ctypes):
            raise ValueError(f"{len(ctypes)} column types for {len(columns)} columns")
        self.source_schema = source_schema
        self.source_table = source_table
        self.schema = target.schema
        self.table = target.table
        self.ncols = len(columns)
        self.source_names = [_column_source_name(c, i) for i, c in enumerate(columns)]
        self.target_names = [target.column_name(name) for name in self.source_names]
        self.ctypes = list(ctypes)
        self.encoders = [self._encoder(ct) for ct in self.ctypes]
        pk = {i for i, c in enumerate(columns) if getattr(c, "is_primary", False)}
        self.columns_json = json.dumps(
            [{"name": name, "type": ct.spec, "pk": i in pk}
             for i, (name, ct) in enumerate(zip(self.target_names, self.ctypes, strict=True)) if name is not None],
            separators=(",", ":"), ensure_ascii=False,
        )
        kept = [name for name in self.target_names if name is not None]
        self.template = "{" + ",".join(_esc(name).replace("%", "%%") + ":%s" for name in kept) + "}"
        self.all_present = (1 << self.ncols) - 1
        self.fast = all(c.type in _FAST_TYPES for c in columns)
        self.decode_image: Callable[[bytes, int], tuple[str, int]] = (
            self._compile(columns) if self.fast else self._no_fast
        )

    @staticmethod
    def _encoder(ctype: typemap.ColumnType) -> Callable[[Any], str | None]:
        def encode(value: Any) -> str | None:
            return typemap.encode_binlog_value(ctype, value)

        return encode

    def _no_fast(self, buf: bytes, off: int) -> tuple[str, int]:
        raise AssertionError("this table uses the library decoder")

    def _compile(self, columns: Sequence[Any]) -> Callable[[bytes, int], tuple[str, int]]:
        g = _Gen()
        nb = (self.ncols + 7) // 8
        g.emit("def decode_image(buf, off):", 0)
        g.emit("nulls = buf[off]" if nb == 1 else f"nulls = int_from(buf[off:off + {nb}], 'little')", 1)
        g.emit(f"off += {nb}", 1)
        outputs = []
        for i, column in enumerate(columns):
            keep = self.target_names[i] is not None
            g.emit(f"if nulls & {1 << i}:", 1)
            g.emit(f"j{i} = 'null'" if keep else "pass", 2)
            g.emit("else:", 1)
            _emit_reader(g, i, column, self.ctypes[i])
            if keep:
                _emit_encoder(g, i, _shortcut(column, self.ctypes[i], self.encoders[i]), self.encoders[i])
                outputs.append(f"j{i}")
        g.const("TEMPLATE", self.template)
        g.emit(f"return TEMPLATE % ({''.join(o + ', ' for o in outputs)}), off", 1)
        namespace = dict(g.env)
        source = "\n".join(g.lines) + "\n"
        exec(compile(source, f"<binlake decoder {self.source_schema}.{self.source_table}>", "exec"), namespace)
        decoder: Callable[[bytes, int], tuple[str, int]] = namespace["decode_image"]
        return decoder

    def encode_values(self, values: dict[str, Any], none_sources: dict[str, str] | None = None) -> str:
        """JSON text of a row decoded by pymysqlreplication (``{source column: value}``)."""
        parts = []
        for name, target, ctype in zip(self.source_names, self.target_names, self.ctypes, strict=True):
            if target is None:
                continue
            source = none_sources.get(name) if none_sources else None
            text = typemap.encode_binlog_value(ctype, values.get(name), source)
            parts.append("null" if text is None else _esc(text))
        return self.template % tuple(parts)
