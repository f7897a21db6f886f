"""The value a column added by ``ALTER TABLE … ADD`` gives every existing row (pure).

:func:`existing_row_value` is what MariaDB/MySQL store in every existing row when the column is
added: the constant default, NULL, or the type's implicit default (``NOT NULL`` without ``DEFAULT``:
``0``, ``''``, the first ENUM label, the zero date…), as the canonical string of
:mod:`binlake.typemap` — the same text the capture writes for a row read from the binlog, so the lake
value is made by the same :func:`~binlake.typemap.spark_parse_sql`. Anything whose stored value the
lake cannot know for certain raises :class:`Underivable` with the reason: an expression default
(``CURRENT_TIMESTAMP``, ``NOW()``, ``UUID()``, ``(1+1)``), a generated or ``AUTO_INCREMENT`` column,
TIMESTAMP constants (read in the DDL session's time zone), a literal that needs rounding, truncation
or a character-set conversion (non-ASCII text, backslash escapes whose meaning depends on
``sql_mode``), and types without a constant form here (JSON, UUID, INET, geometry).
"""

from __future__ import annotations

import datetime
import decimal
import re

from binlake import typemap
from binlake.merge.ddlcolumns import ColumnDef, Literal
from binlake.typemap import ColumnType

_TEXT_BYTES = {"tinytext": 255, "text": 65535, "mediumtext": 16777215, "longtext": 4294967295,
               "tinyblob": 255, "blob": 65535, "mediumblob": 16777215, "longblob": 4294967295}
_INT_BITS = {"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "bigint": 64}
_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?$")
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_DATETIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?: (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?)?$")
_TIME = re.compile(r"^(-?)(\d{2,3}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$")


class Underivable(ValueError):
    """The lake cannot know the value the source stored; the message says why."""


def existing_row_value(column: ColumnDef, has_backslash: bool = False) -> str | None:
    """The canonical string every existing row holds once ``column`` is added (None = NULL).

    ``has_backslash``: the statement text holds a backslash (a string literal's meaning then depends
    on the session's ``NO_BACKSLASH_ESCAPES``). Raises :class:`Underivable`.
    """
    if column.generated:
        raise Underivable(f"{column.name} is a generated column: the server computes its values")
    if column.auto_increment:
        raise Underivable(f"{column.name} is an AUTO_INCREMENT column: the server numbers the existing rows")
    if column.default_expression is not None:
        raise Underivable(f"{column.name} DEFAULT {column.default_expression} is evaluated by the server")
    try:
        ct = column.column_type()
    except ValueError as exc:
        raise Underivable(f"{column.name}: {exc}") from None
    if ct.base == "timestamp" and not (column.explicit_null and column.default in (None, Literal("null", ""))):
        raise Underivable(f"{column.name} is a TIMESTAMP: its default depends on the session time zone and "
                          "explicit_defaults_for_timestamp")
    literal = column.default
    if literal is None or literal.kind == "null":
        if literal is not None and column.not_null:
            raise Underivable(f"{column.name}: NOT NULL DEFAULT NULL")
        return _implicit(column, ct) if column.not_null else None
    if literal.kind == "string" and (has_backslash or not _plain_ascii(literal.text)):
        raise Underivable(f"{column.name} DEFAULT {literal.text!r}: text outside plain ASCII (or a backslash "
                          "escape) may be converted by the server")
    value = _convert(column, ct, literal)
    return typemap.encode_binlog_value(ct, value)


def _plain_ascii(text: str) -> bool:
    return all(" " <= ch <= "~" for ch in text)


def _implicit(column: ColumnDef, ct: ColumnType) -> str | None:
    """MySQL's implicit default of a NOT NULL column without DEFAULT."""
    base = ct.base
    zero: dict[str, object] = {"decimal": decimal.Decimal(0), "float": 0.0, "double": 0.0, "bit": 0, "year": 0,
                               "time": datetime.timedelta(0), "set": "", "enum": ct.values[0] if ct.values else ""}
    if base in typemap.INTEGER_TYPES:
        return "0"
    if base in ("date", "datetime"):
        return None  # the zero date, NULL in the lake (docs: canonical mapping)
    if base in typemap.CHAR_TYPES:
        return ""
    if base in typemap.BINARY_TYPES:
        return typemap.encode_binlog_value(ct, b"")
    if base in zero:
        return typemap.encode_binlog_value(ct, zero[base])
    raise Underivable(f"{column.name}: no known implicit default for {ct.spec}")


def _convert(column: ColumnDef, ct: ColumnType, literal: Literal) -> object:
    """The Python value (as pymysqlreplication would decode it) of ``literal`` stored in ``ct``."""
    base = ct.base
    converter = _CONVERTERS.get(base) or (_to_text if base in typemap.CHAR_TYPES else
                                          _to_bytes if base in typemap.BINARY_TYPES else None)
    if converter is None:
        raise Underivable(f"{column.name}: binlake does not derive {ct.spec} defaults")
    try:
        return converter(column, ct, literal)
    except (ValueError, IndexError, decimal.InvalidOperation) as exc:
        if isinstance(exc, Underivable):
            raise
        raise Underivable(f"{column.name} DEFAULT {literal.text!r} as {ct.spec}: {exc}") from None


def _integer(literal: Literal) -> int:
    if literal.kind in ("number", "bool") or (literal.kind == "string" and _NUMBER.match(literal.text)):
        number = decimal.Decimal(literal.text)
        if number != number.to_integral_value():
            raise Underivable(f"{literal.text} is not an integer (the server would round it)")
        return int(number)
    if literal.kind == "hex":
        return int(literal.text, 16)
    if literal.kind == "bit":
        return int(literal.text or "0", 2)
    raise Underivable(f"{literal.text!r} is not a number")


def _to_int(column: ColumnDef, ct: ColumnType, literal: Literal) -> int:
    value = _integer(literal)
    bits = _INT_BITS[ct.base]
    low, high = (0, 2 ** bits - 1) if ct.unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if not low <= value <= high:
        raise Underivable(f"{value} is out of range for {ct.spec}")
    return value


def _to_decimal(column: ColumnDef, ct: ColumnType, literal: Literal) -> decimal.Decimal:
    if literal.kind == "bool" or (literal.kind in ("number", "string") and _NUMBER.match(literal.text)):
        number = decimal.Decimal(literal.text)
    else:
        raise Underivable(f"{literal.text!r} is not a decimal number")
    assert ct.precision is not None and ct.scale is not None
    if -number.as_tuple().exponent > ct.scale:  # type: ignore[operator]
        raise Underivable(f"{literal.text} has more than {ct.scale} decimals (the server would round it)")
    if abs(number) >= decimal.Decimal(10) ** (ct.precision - ct.scale):
        raise Underivable(f"{literal.text} is out of range for {ct.spec}")
    return number


def _to_float(column: ColumnDef, ct: ColumnType, literal: Literal) -> float:
    if column.type_args:
        raise Underivable(f"{ct.base}({','.join(column.type_args)}) rounds its values")
    if literal.kind == "bool" or (literal.kind in ("number", "string") and _NUMBER.match(literal.text)):
        return float(literal.text)
    raise Underivable(f"{literal.text!r} is not a number")


def _to_bit(column: ColumnDef, ct: ColumnType, literal: Literal) -> int:
    value = _integer(literal)
    assert ct.precision is not None
    if not 0 <= value < 2 ** ct.precision:
        raise Underivable(f"{value} does not fit in {ct.spec}")
    return value


def _to_year(column: ColumnDef, ct: ColumnType, literal: Literal) -> int:
    value = _integer(literal)
    if value != 0 and not 1901 <= value <= 2155:
        raise Underivable(f"{value} is not a four-digit YEAR")
    return value


def _to_date(column: ColumnDef, ct: ColumnType, literal: Literal) -> datetime.date | None:
    match = _DATE.match(literal.text) if literal.kind == "string" else None
    if match is None:
        raise Underivable(f"{literal.text!r} is not a YYYY-MM-DD date")
    if literal.text == "0000-00-00":
        return None
    return datetime.date(*(int(g) for g in match.groups()))


def _to_datetime(column: ColumnDef, ct: ColumnType, literal: Literal) -> datetime.datetime | None:
    match = _DATETIME.match(literal.text) if literal.kind == "string" else None
    if match is None:
        raise Underivable(f"{literal.text!r} is not a YYYY-MM-DD[ HH:MM:SS[.f]] datetime")
    y, mo, d, h, mi, s, frac = match.groups()
    if frac and len(frac) > (ct.scale or 0):
        raise Underivable(f"{literal.text!r} has more fractional digits than {ct.spec} (the server rounds)")
    if (y, mo, d) == ("0000", "00", "00"):
        return None
    micro = int((frac or "").ljust(6, "0"))
    return datetime.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), micro)


def _to_time(column: ColumnDef, ct: ColumnType, literal: Literal) -> datetime.timedelta:
    match = _TIME.match(literal.text) if literal.kind == "string" else None
    if match is None:
        raise Underivable(f"{literal.text!r} is not a [-]HH:MM:SS[.f] time")
    sign, h, mi, s, frac = match.groups()
    if frac and len(frac) > (ct.scale or 0):
        raise Underivable(f"{literal.text!r} has more fractional digits than {ct.spec} (the server rounds)")
    if int(mi) > 59 or int(s) > 59:
        raise Underivable(f"{literal.text!r} is not a valid time")
    value = datetime.timedelta(hours=int(h), minutes=int(mi), seconds=int(s),
                               microseconds=int((frac or "").ljust(6, "0")))
    if value > datetime.timedelta(hours=838, minutes=59, seconds=59):
        raise Underivable(f"{literal.text!r} is out of the TIME range")
    # the encoder undoes the library's decoding of negative fractions (an involution): give it what it decodes
    return typemap.fix_negative_time(-value) if sign else value


def _to_text(column: ColumnDef, ct: ColumnType, literal: Literal) -> str:
    if literal.kind == "number" and "." not in literal.text:
        text = str(int(literal.text))
    elif literal.kind == "string":
        text = literal.text
    else:
        raise Underivable(f"{literal.text!r} as text: the server's formatting is not derived")
    limit = column.length if column.length is not None else _TEXT_BYTES.get(ct.base)
    if limit is not None and len(text) > limit:
        raise Underivable(f"{literal.text!r} is longer than {column.type_name}")
    return text.rstrip(" ") if ct.base == "char" else text


def _to_bytes(column: ColumnDef, ct: ColumnType, literal: Literal) -> bytes:
    if literal.kind == "string":
        data = literal.text.encode("ascii")
    elif literal.kind == "hex":
        data = bytes.fromhex(literal.text)
    else:
        raise Underivable(f"{literal.text!r} as bytes: not derived")
    limit = column.length if column.length is not None else _TEXT_BYTES.get(ct.base)
    if limit is not None and len(data) > limit:
        raise Underivable(f"{literal.text!r} is longer than {column.type_name}")
    return data.rstrip(b"\0") if ct.base == "binary" else data


def _label(ct: ColumnType, text: str) -> str:
    if text in ct.values:
        return text
    found = [v for v in ct.values if v.lower() == text.lower()]
    if len(found) != 1:
        raise Underivable(f"{text!r} is not one of the labels {list(ct.values)}")
    return found[0]


def _to_enum(column: ColumnDef, ct: ColumnType, literal: Literal) -> str:
    if literal.kind == "number":
        index = _integer(literal)
        if not 1 <= index <= len(ct.values):
            raise Underivable(f"{index} is not an index of {ct.spec}")
        return ct.values[index - 1]
    if literal.kind != "string":
        raise Underivable(f"{literal.text!r} is not an ENUM label")
    return _label(ct, literal.text.rstrip(" "))


def _to_set(column: ColumnDef, ct: ColumnType, literal: Literal) -> str:
    if literal.kind != "string":
        raise Underivable(f"{literal.text!r} is not a SET value")
    members = {_label(ct, m) for m in literal.text.split(",")} if literal.text else set()
    return ",".join(v for v in ct.values if v in members)


_CONVERTERS = {**dict.fromkeys(typemap.INTEGER_TYPES, _to_int), "decimal": _to_decimal, "float": _to_float,
               "double": _to_float, "bit": _to_bit, "year": _to_year, "date": _to_date, "datetime": _to_datetime,
               "time": _to_time, "enum": _to_enum, "set": _to_set}
