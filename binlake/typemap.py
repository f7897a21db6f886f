"""The one MySQL/MariaDB → Spark type mapping, and the canonical text form of every value.

Every value binlake moves is, on its way, a *canonical string* (or None for SQL NULL):

* the full load selects :func:`source_select_sql` from the source — the canonical string, or a
  JDBC-native value that casts exactly to the lake value;
* the capture turns what pymysqlreplication decoded from the binlog into the canonical string
  with :func:`encode_binlog_value`;
* both are turned into the lake value by the Spark SQL expression :func:`spark_parse_sql`
  (Spark with ``spark.sql.ansi.enabled=false`` and session time zone UTC).

Canonical strings, by MySQL type (Spark type in brackets, see :func:`spark_type`):

* integers [tinyint … decimal(20,0)]: decimal digits, ``-12``;
* DECIMAL(p,s) [decimal(p,s); string when p > 38]: exactly s fraction digits, ``-123.4500``;
* FLOAT [float]: the shortest text that reads back as the same float32, laid out like Python's
  ``repr`` (``42.42``, ``3.4028235e+38``); DOUBLE [double]: Python's ``repr``;
* BIT(n) [boolean for n = 1, bigint, decimal(20,0) for n = 64]: the unsigned integer, ``5``;
* YEAR [smallint]: ``2018``; ``0`` for YEAR 0000;
* DATE [date]: ``YYYY-MM-DD``; zero, partly-zero, year-0 and invalid dates are NULL;
* DATETIME(n) [timestamp_ntz]: ``YYYY-MM-DD HH:MM:SS[.f]`` with exactly n fraction digits (MySQL's
  own text); zero/invalid → NULL; TIMESTAMP(n) [timestamp]: the same text in UTC; zero → NULL;
* TIME(n) [string]: MySQL's text ``[-]HH[H]:MM:SS[.f]``, at least 2 hour digits, n fraction digits;
* CHAR/VARCHAR/TEXT [string]: the text (CHAR without trailing spaces, as MySQL returns it);
* BINARY(n)/VARBINARY/BLOB [binary]: upper-case hex, BINARY(n) right-padded with 00 to n bytes;
* ENUM [string]: the label, ``''`` for the invalid value 0; SET [string]: labels joined by ``,``
  in definition order, ``''`` for the empty set;
* JSON [string]: JSON text (MariaDB: the stored text);
* GEOMETRY & co [binary]: hex of MySQL's value, 4-byte little-endian SRID + WKB;
* UUID / INET4 / INET6 (MariaDB) [string]: MariaDB's text (``::ffff:1.2.3.4``).

pymysqlreplication 1.0.17 decoding quirks, checked against MariaDB 10.11, and what this module does:

* TIMESTAMP comes back as a naive UTC datetime; the zero TIMESTAMP as 1970-01-01 00:00:00 (an instant
  MySQL cannot store) → NULL.
* Zero, partly-zero and (with ALLOW_INVALID_DATES) invalid DATE/DATETIME come back as None → NULL;
  the full load maps the same values to NULL in SQL.
* YEAR 0000 comes back as 1900 (a YEAR cannot hold 1900) → ``0``.
* TIME comes back as a timedelta; **negative TIME with a fraction is decoded wrongly** (the library
  adds the two's-complement fraction to an integer part that MySQL stored rounded down, e.g.
  ``-00:00:01.56`` → -1.44 s). The error is a bijection, undone here: a negative value with magnitude
  ``L`` and a non-zero fraction is really ``-(floor(L) + 1 - frac(L))``. This relies on the library's
  behaviour; if the library is ever fixed, this correction must go.
* BIT comes back as a ``'0101'`` string → unsigned integer.
* SET comes back as an unordered Python set, and the **empty SET as None** — the same as NULL. The
  row's ``none_sources`` tells them apart (``"empty set"``): pass it as ``none_source`` to
  :func:`encode_binlog_value`.
* BINARY(n) (and MariaDB UUID/INET4/INET6, which the binlog shows as BINARY(16)/BINARY(4)) arrive
  with trailing 0x00 bytes stripped, and a value that is all zeros arrives as ``''`` → re-padded.
* CHAR arrives without trailing spaces, as MySQL returns it: nothing to do.
* ENUM and SET labels are decoded from the table map as UTF-8 whatever the column's character
  set; a label that is not valid UTF-8 becomes ``''``. Text of a column whose character set has no
  Python codec of the same name comes back as bytes (ucs2, utf16le), utf16 is decoded as
  little-endian (wrong), utf32 raises, latin1 is decoded as cp1252, which rejects 5 bytes MySQL
  accepts. :func:`prepare_binlog_column` fixes all of these on the library's Column objects, *before*
  rows are decoded (it sets an exact Python codec, and takes ENUM/SET labels from the declared
  type when given).
* The table map does not distinguish UUID/INET6 from BINARY(16) nor INET4 from BINARY(4), and the
  geometry subtype travels in a separate list (``optional_metadata.geometry_type_list``):
  :func:`column_type_from_binlog` takes the declared (information_schema) type as ``declared`` and
  :func:`table_map_column_types` reads the geometry subtypes; without them the binlog alone yields
  ``binary(16)`` / ``geometry``.
* MySQL JSON comes back parsed (dict with bytes keys, strings as bytes); it is re-serialised the way
  MySQL prints JSON (``{"a": 1, "b": [1, 2]}``). Not verified against a MySQL server here; known
  differences: a top-level JSON ``null`` literal comes back as None (= SQL NULL, irrecoverable), and
  doubles print as Python does (``1e+300`` where MySQL prints ``1e300``). MariaDB JSON is LONGTEXT
  and arrives as the stored text, exactly.

* Collations the library does not know — MariaDB's UCA-14 ones (``utf8mb4_uca1400_ai_ci``, the
  default of MariaDB 11) — are decoded as utf8 whatever the character set;
  :func:`table_map_column_types` resolves them from the table map's collation ids.

Full-load notes: MariaDB's text protocol (which JDBC uses) prints FLOAT with 6 significant digits,
so FLOAT is selected as ``CAST(c AS DOUBLE)`` (exact); TINYINT is selected as a BIGINT because JDBC
drivers read TINYINT(1) as a boolean; YEAR as a number because they read it as a date.

Capture usage (pymysqlreplication, ``only_events`` including ``TableMapEvent``)::

    types = table_map_column_types(table_map_event, declared)   # declared: information_schema types
    ...
    for row in rows_event.rows:                                  # WriteRowsEvent
        after = {c.name: encode_binlog_value(t, row["values"][c.name], row["none_sources"].get(c.name))
                 for c, t in zip(rows_event.columns, types)}

(UpdateRowsEvent: ``before_values``/``before_none_sources`` and ``after_values``/``after_none_sources``.)

Limits (raise :class:`UnsupportedTypeError`): MySQL's pre-5.6 TIME format and MariaDB's pre-10.1
temporal formats with fractional seconds (rebuild the table with ``ALTER TABLE … FORCE``), the
pre-5.0 DECIMAL type, character sets without an exact Python codec, and types binlake does not know
(e.g. VECTOR). TIMESTAMP values beyond 2038-01-19 (MariaDB 11.5+) are not supported by the library.
"""

from __future__ import annotations

import codecs
import datetime
import decimal
import json
import math
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EMPTY_SET_SOURCE",
    "ColumnType",
    "UnsupportedTypeError",
    "column_type_from_binlog",
    "column_type_from_information_schema",
    "encode_binlog_value",
    "prepare_binlog_column",
    "source_select_sql",
    "spark_parse_sql",
    "spark_type",
    "table_map_column_types",
]


class UnsupportedTypeError(ValueError):
    """A column type (or character set, or storage format) binlake cannot replicate exactly."""


# --------------------------------------------------------------------------------------------------
# Type families
# --------------------------------------------------------------------------------------------------

INTEGER_TYPES = ("tinyint", "smallint", "mediumint", "int", "bigint")
TEMPORAL_FSP_TYPES = ("time", "datetime", "timestamp")
CHAR_TYPES = ("char", "varchar", "tinytext", "text", "mediumtext", "longtext")
BINARY_TYPES = ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob")
GEOMETRY_TYPES = (
    "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
    "geometrycollection",
)
MARIADB_TEXT_TYPES = ("uuid", "inet4", "inet6")
ALL_TYPES = frozenset(
    (*INTEGER_TYPES, "decimal", "float", "double", "bit", "year", "date", *TEMPORAL_FSP_TYPES,
     *CHAR_TYPES, *BINARY_TYPES, "enum", "set", "json", *GEOMETRY_TYPES, *MARIADB_TEXT_TYPES)
)

_SPARK_INT = {
    ("tinyint", False): "tinyint", ("tinyint", True): "smallint",
    ("smallint", False): "smallint", ("smallint", True): "int",
    ("mediumint", False): "int", ("mediumint", True): "int",
    ("int", False): "int", ("int", True): "bigint",
    ("bigint", False): "bigint", ("bigint", True): "decimal(20,0)",
}
SPARK_MAX_DECIMAL_PRECISION = 38
EMPTY_SET_SOURCE = "empty set"
"""pymysqlreplication's ``none_sources`` value for an empty SET decoded as None."""


# --------------------------------------------------------------------------------------------------
# ColumnType
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ColumnType:
    """A column's MySQL type, reduced to what decides its Spark type and canonical value.

    ``base`` is the lower-case MySQL type name (see ``ALL_TYPES``); ``unsigned`` applies to the
    integer types only; ``precision`` is the DECIMAL precision, the BIT width or the BINARY(n)
    length in bytes; ``scale`` is the DECIMAL scale or the fractional-second digits of TIME,
    DATETIME and TIMESTAMP (0..6); ``values`` are the ENUM/SET labels in definition order.

    >>> ColumnType.parse("decimal(10,2)").spec
    'decimal(10,2)'
    """

    base: str
    unsigned: bool = False
    precision: int | None = None
    scale: int | None = None
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.base not in ALL_TYPES:
            raise UnsupportedTypeError(f"unknown column type {self.base!r}")
        if self.unsigned and self.base not in INTEGER_TYPES:
            raise ValueError(f"unsigned applies to integer types only, not {self.base!r}")
        if self.base in TEMPORAL_FSP_TYPES:
            scale = 0 if self.scale is None else self.scale
            if not 0 <= scale <= 6:
                raise ValueError(f"{self.base} fractional seconds must be 0..6, got {scale}")
            object.__setattr__(self, "scale", scale)
        elif self.base == "decimal":
            self._check_decimal()
        elif self.base in ("bit", "binary"):
            limit = 64 if self.base == "bit" else 255
            if self.precision is None or not 1 <= self.precision <= limit:
                raise ValueError(f"{self.base} needs a length 1..{limit}, got {self.precision}")
        if self.values and self.base not in ("enum", "set"):
            raise ValueError(f"labels apply to enum and set only, not {self.base!r}")
        object.__setattr__(self, "values", tuple(self.values))

    def _check_decimal(self) -> None:
        if self.precision is None or self.scale is None:
            raise ValueError("decimal needs precision and scale")
        if not (1 <= self.precision <= 65 and 0 <= self.scale <= min(self.precision, 38)):
            raise ValueError(f"invalid decimal({self.precision},{self.scale})")

    @property
    def spec(self) -> str:
        """Canonical text: ``bigint unsigned``, ``decimal(10,2)``, ``datetime(3)``, ``enum('a','b')``.

        ``ColumnType.parse(ct.spec) == ct`` always holds.
        """
        if self.base in INTEGER_TYPES:
            return f"{self.base} unsigned" if self.unsigned else self.base
        if self.base == "decimal":
            return f"decimal({self.precision},{self.scale})"
        if self.base in ("bit", "binary"):
            return f"{self.base}({self.precision})"
        if self.base in TEMPORAL_FSP_TYPES:
            return f"{self.base}({self.scale})" if self.scale else self.base
        if self.base in ("enum", "set"):
            return f"{self.base}({','.join(_quote_label(v) for v in self.values)})"
        return self.base

    @classmethod
    def parse(cls, spec: str) -> ColumnType:
        """Inverse of :attr:`spec`. Raises ValueError on text that is not a spec."""
        match = _SPEC_RE.match(spec.strip())
        if not match:
            raise ValueError(f"not a column type spec: {spec!r}")
        base, args, unsigned = match.group(1).lower(), match.group(2), bool(match.group(3))
        if base in ("enum", "set"):
            return cls(base, values=tuple(_parse_labels(args or "")))
        numbers = [int(n) for n in args.split(",")] if args else []
        if base == "decimal" and len(numbers) == 2:
            return cls(base, precision=numbers[0], scale=numbers[1])
        if base in ("bit", "binary") and len(numbers) == 1:
            return cls(base, precision=numbers[0])
        if base in TEMPORAL_FSP_TYPES and len(numbers) <= 1:
            return cls(base, scale=numbers[0] if numbers else 0)
        if numbers:
            raise ValueError(f"unexpected arguments in column type spec: {spec!r}")
        return cls(base, unsigned=unsigned)


_SPEC_RE = re.compile(r"^([a-z0-9]+)\s*(?:\((.*)\))?\s*(unsigned)?$", re.IGNORECASE | re.DOTALL)
_LABEL_ESCAPES = {"0": "\0", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a", "b": "\b"}


def _quote_label(label: str) -> str:
    """A label as MySQL prints it in COLUMN_TYPE: single quotes, ``'`` → ``''``, ``\\`` → ``\\\\``."""
    return "'" + label.replace("\\", "\\\\").replace("'", "''") + "'"


def _parse_labels(text: str) -> list[str]:
    """Labels of ``'a','b''c'`` (COLUMN_TYPE / spec quoting) in order."""
    labels: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] != "'":
            raise ValueError(f"bad enum/set label list: {text!r}")
        i += 1
        chars: list[str] = []
        while True:
            if i >= n:
                raise ValueError(f"unterminated label in {text!r}")
            ch = text[i]
            if ch == "'" and i + 1 < n and text[i + 1] == "'":
                chars.append("'")
                i += 2
            elif ch == "'":
                i += 1
                break
            elif ch == "\\" and i + 1 < n:
                chars.append(_LABEL_ESCAPES.get(text[i + 1], text[i + 1]))
                i += 2
            else:
                chars.append(ch)
                i += 1
        labels.append("".join(chars))
        while i < n and text[i] in ", ":
            i += 1
    return labels


# --------------------------------------------------------------------------------------------------
# Character sets: which MySQL character sets the binlog path decodes exactly, and with what codec
# --------------------------------------------------------------------------------------------------

MYSQL_LATIN1_CODEC = "binlake-mysql-latin1"
"""MySQL's latin1: cp1252, except that 0x81 0x8D 0x8F 0x90 0x9D map to U+0081… (cp1252 rejects them)."""

_PYTHON_CODECS = {
    "utf8mb4": "utf-8", "utf8mb3": "utf-8", "utf8": "utf-8", "ascii": "ascii",
    "latin1": MYSQL_LATIN1_CODEC, "latin2": "iso8859-2", "latin5": "iso8859-9", "latin7": "iso8859-13",
    "cp1250": "cp1250", "cp1251": "cp1251", "cp1256": "cp1256", "cp1257": "cp1257",
    "cp850": "cp850", "cp852": "cp852", "cp866": "cp866", "greek": "iso8859-7", "hebrew": "iso8859-8",
    "koi8r": "koi8-r", "koi8u": "koi8-u",
    "ucs2": "utf-16-be", "utf16": "utf-16-be", "utf16le": "utf-16-le", "utf32": "utf-32-be",
}


def _mysql_latin1_search(name: str) -> codecs.CodecInfo | None:
    if name.replace("_", "-") != MYSQL_LATIN1_CODEC:
        return None
    from encodings import cp1252

    table = "".join(chr(i) if c == "\ufffe" else c for i, c in enumerate(cp1252.decoding_table))
    encoding_table = codecs.charmap_build(table)

    def encode(text: str, errors: str = "strict") -> tuple[bytes, int]:
        return codecs.charmap_encode(text, errors, encoding_table)

    def decode(data: Any, errors: str = "strict") -> tuple[str, int]:
        return codecs.charmap_decode(bytes(data), errors, table)

    return codecs.CodecInfo(encode, decode, name=MYSQL_LATIN1_CODEC)


_codec_registered = False


def python_codec(charset: str) -> str:
    """The Python codec that decodes MySQL character set ``charset`` exactly.

    Raises UnsupportedTypeError for character sets without one (their text would not survive the
    binlog path byte for byte).
    """
    global _codec_registered
    codec = _PYTHON_CODECS.get(charset.lower())
    if codec is None:
        raise UnsupportedTypeError(
            f"character set {charset!r} has no exact decoder in binlake; convert the column to utf8mb4 "
            "(ALTER TABLE … CONVERT TO CHARACTER SET utf8mb4) or exclude the table"
        )
    if codec == MYSQL_LATIN1_CODEC and not _codec_registered:
        codecs.register(_mysql_latin1_search)
        _codec_registered = True
    return codec


def _charset_of_collation(collation: str) -> str:
    """``utf8mb4_general_ci`` → ``utf8mb4``; ``binary`` → ``binary``."""
    return collation.split("_", 1)[0].lower()


# --------------------------------------------------------------------------------------------------
# Constructors
# --------------------------------------------------------------------------------------------------

_IS_ALIASES = {"numeric": "decimal", "real": "double", "integer": "int", "bool": "tinyint",
               "boolean": "tinyint", "geomcollection": "geometrycollection", "dec": "decimal",
               "fixed": "decimal", "int1": "tinyint", "int2": "smallint", "int3": "mediumint",
               "int4": "int", "int8": "bigint", "middleint": "mediumint", "float4": "float",
               "float8": "double", "double precision": "double"}
_COLUMN_TYPE_RE = re.compile(r"^\s*([a-z0-9 ]+?)\s*(?:\((.*)\))?((?:\s+(?:unsigned|signed|zerofill))*)\s*$",
                             re.IGNORECASE | re.DOTALL)


def column_type_from_information_schema(
    data_type: str, column_type: str, character_set: str | None
) -> ColumnType:
    """The ColumnType of a column described by ``information_schema.COLUMNS``.

    ``data_type`` / ``column_type`` / ``character_set`` are ``DATA_TYPE``, ``COLUMN_TYPE`` and
    ``CHARACTER_SET_NAME``, e.g. ``("int", "int(10) unsigned zerofill", None)`` →
    ``ColumnType("int", unsigned=True)``. Raises UnsupportedTypeError for types or character sets
    binlake cannot replicate exactly.
    """
    base = _IS_ALIASES.get(data_type.strip().lower(), data_type.strip().lower())
    match = _COLUMN_TYPE_RE.match(column_type)
    args = match.group(2) if match else None
    flags = (match.group(3) or "").lower() if match else ""
    if base not in ALL_TYPES:
        raise UnsupportedTypeError(
            f"column type {column_type!r} is not supported by binlake; exclude the column with a "
            "remove-column transformation rule or the table with a selection rule"
        )
    if character_set and base in (*CHAR_TYPES, "enum", "set", "json") and character_set != "binary":
        python_codec(character_set)
    numbers = _int_args(args) if base not in ("enum", "set") else []
    if base in INTEGER_TYPES:
        return ColumnType(base, unsigned="unsigned" in flags)
    if base == "decimal":
        precision = numbers[0] if numbers else 10
        return ColumnType(base, precision=precision, scale=numbers[1] if len(numbers) > 1 else 0)
    if base == "bit":
        return ColumnType(base, precision=numbers[0] if numbers else 1)
    if base == "binary":
        return ColumnType(base, precision=numbers[0] if numbers else 1)
    if base in TEMPORAL_FSP_TYPES:
        return ColumnType(base, scale=numbers[0] if numbers else 0)
    if base in ("enum", "set"):
        return ColumnType(base, values=tuple(_parse_labels(args or "")))
    return ColumnType(base)


def _int_args(args: str | None) -> list[int]:
    if not args:
        return []
    return [int(a) for a in args.split(",") if a.strip()]


# pymysqlreplication FIELD_TYPE codes (constants/FIELD_TYPE.py); copied so this module stays stdlib-only.
_FT_DECIMAL, _FT_TINY, _FT_SHORT, _FT_LONG, _FT_FLOAT, _FT_DOUBLE = 0, 1, 2, 3, 4, 5
_FT_TIMESTAMP, _FT_LONGLONG, _FT_INT24, _FT_DATE, _FT_TIME, _FT_DATETIME, _FT_YEAR = 7, 8, 9, 10, 11, 12, 13
_FT_NEWDATE, _FT_VARCHAR, _FT_BIT, _FT_TIMESTAMP2, _FT_DATETIME2, _FT_TIME2 = 14, 15, 16, 17, 18, 19
_FT_JSON, _FT_NEWDECIMAL, _FT_ENUM, _FT_SET = 245, 246, 247, 248
_FT_BLOB, _FT_VAR_STRING, _FT_STRING, _FT_GEOMETRY = 252, 253, 254, 255

_BINLOG_SIMPLE = {
    _FT_TINY: "tinyint", _FT_SHORT: "smallint", _FT_INT24: "mediumint", _FT_LONG: "int",
    _FT_LONGLONG: "bigint", _FT_FLOAT: "float", _FT_DOUBLE: "double", _FT_YEAR: "year",
    _FT_DATE: "date", _FT_NEWDATE: "date", _FT_JSON: "json",
}
_BLOB_BY_LENGTH_SIZE = {1: ("tinytext", "tinyblob"), 2: ("text", "blob"), 3: ("mediumtext", "mediumblob"),
                        4: ("longtext", "longblob")}
_GEOMETRY_BY_CODE = dict(enumerate(GEOMETRY_TYPES))
_OLD_TEMPORAL = {_FT_TIME: "time", _FT_DATETIME: "datetime", _FT_TIMESTAMP: "timestamp"}


def column_type_from_binlog(column: object, declared: ColumnType | None = None) -> ColumnType:
    """The ColumnType of a pymysqlreplication ``Column`` from a table-map event (duck typed).

    Needs ``binlog_row_metadata=FULL`` (signedness, character sets, ENUM/SET labels). ``declared``,
    the type information_schema gives for the same column, supplies what the binlog cannot express:
    UUID/INET6/INET4 (the binlog shows BINARY(16)/BINARY(4)), the geometry subtype when the column
    carries no ``geometry_type`` attribute (see :func:`table_map_column_types`), and the ENUM/SET
    labels of columns whose character set is not UTF-8. It must agree with the binlog layout, else
    ValueError. Without ``declared`` the result equals
    :func:`column_type_from_information_schema` for every type except those three cases.
    """
    from_binlog = _binlog_type(column)
    if declared is None:
        if from_binlog.base in ("enum", "set") and not _labels_trustworthy(column, from_binlog.values):
            raise UnsupportedTypeError(
                f"{from_binlog.base} column {_name(column)!r}: labels in character set "
                f"{_column_charset(column)!r} are not readable from the binlog; pass declared="
            )
        return from_binlog
    if _compatible(from_binlog, declared):
        _check_old_temporal(column, declared)
        return declared
    raise ValueError(
        f"column {_name(column)!r}: binlog layout {from_binlog.spec!r} does not match declared "
        f"type {declared.spec!r} (stale schema?)"
    )


def _binlog_type(column: object) -> ColumnType:
    code = int(getattr(column, "type"))  # noqa: B009 - duck typed
    if code in _BINLOG_SIMPLE:
        base = _BINLOG_SIMPLE[code]
        return ColumnType(base, unsigned=bool(getattr(column, "unsigned", False)) and base in INTEGER_TYPES)
    if code == _FT_NEWDECIMAL:
        return ColumnType("decimal", precision=int(getattr(column, "precision")),  # noqa: B009
                          scale=int(getattr(column, "decimals")))  # noqa: B009
    if code == _FT_BIT:
        return ColumnType("bit", precision=int(getattr(column, "bits")))  # noqa: B009
    if code in (_FT_TIME2, _FT_DATETIME2, _FT_TIMESTAMP2):
        base = {_FT_TIME2: "time", _FT_DATETIME2: "datetime", _FT_TIMESTAMP2: "timestamp"}[code]
        return ColumnType(base, scale=int(getattr(column, "fsp", 0)))
    if code in _OLD_TEMPORAL:
        if code == _FT_TIME:
            raise UnsupportedTypeError(
                f"TIME column {_name(column)!r} uses the pre-MySQL-5.6 storage format, which the binlog "
                "reader decodes wrongly for negative values; rebuild the table (ALTER TABLE … FORCE)"
            )
        return ColumnType(_OLD_TEMPORAL[code])
    if code in (_FT_STRING, _FT_VARCHAR, _FT_VAR_STRING):
        return _binlog_string_type(column, code)
    if code == _FT_BLOB:
        text, blob = _BLOB_BY_LENGTH_SIZE[int(getattr(column, "length_size"))]  # noqa: B009
        return ColumnType(blob if _is_binary_charset(column) else text)
    if code in (_FT_ENUM, _FT_SET):
        return _binlog_label_type(column, code)
    if code == _FT_GEOMETRY:
        subtype = getattr(column, "geometry_type", None)
        return ColumnType(_GEOMETRY_BY_CODE.get(int(subtype), "geometry") if subtype is not None else "geometry")
    if code == _FT_DECIMAL:
        raise UnsupportedTypeError(
            f"column {_name(column)!r} uses the pre-MySQL-5.0 DECIMAL format; rebuild the table "
            "(ALTER TABLE … FORCE)"
        )
    raise UnsupportedTypeError(f"column {_name(column)!r} has binlog type code {code}, unknown to binlake")


def _binlog_string_type(column: object, code: int) -> ColumnType:
    fixed = code == _FT_STRING
    if _is_binary_charset(column):
        if fixed:
            return ColumnType("binary", precision=int(getattr(column, "max_length")))  # noqa: B009
        return ColumnType("varbinary")
    charset = _column_charset(column)
    if charset != UNKNOWN_CHARSET:
        python_codec(charset)
    return ColumnType("char" if fixed else "varchar")


def _binlog_label_type(column: object, code: int) -> ColumnType:
    if code == _FT_ENUM:
        labels = list(getattr(column, "enum_values", None) or [""])[1:]
        return ColumnType("enum", values=tuple(labels))
    return ColumnType("set", values=tuple(getattr(column, "set_values", None) or ()))


def _labels_trustworthy(column: object, labels: Iterable[str]) -> bool:
    """Whether the library's UTF-8 decoding of the labels gives the column's real labels."""
    charset = _column_charset(column)
    if charset in ("utf8mb4", "utf8mb3", "utf8", "ascii"):
        return True  # the library decodes labels as UTF-8
    return all(label and label.isascii() and "\0" not in label for label in labels) and charset not in (
        "ucs2", "utf16", "utf16le", "utf32")


def _compatible(binlog: ColumnType, declared: ColumnType) -> bool:
    if binlog == declared:
        return True
    if declared.base in MARIADB_TEXT_TYPES:
        size = 4 if declared.base == "inet4" else 16
        return binlog == ColumnType("binary", precision=size)
    if declared.base in GEOMETRY_TYPES:
        return binlog.base == "geometry" or binlog.base == declared.base
    if declared.base in ("enum", "set"):
        return binlog.base == declared.base and len(binlog.values) == len(declared.values)
    # the old (pre-5.6) format carries no fsp: checked by _check_old_temporal
    return declared.base in ("datetime", "timestamp") and binlog.base == declared.base


def _check_old_temporal(column: object, declared: ColumnType) -> None:
    code = int(getattr(column, "type"))  # noqa: B009
    if code in _OLD_TEMPORAL and declared.scale:
        raise UnsupportedTypeError(
            f"column {_name(column)!r} ({declared.spec}) uses MariaDB's pre-10.1 temporal format with "
            "fractional seconds, which the binlog reader cannot decode; rebuild the table (ALTER TABLE … FORCE)"
        )
    if code in (_FT_TIME2, _FT_DATETIME2, _FT_TIMESTAMP2) and int(getattr(column, "fsp", 0)) != declared.scale:
        raise ValueError(f"column {_name(column)!r}: binlog fsp differs from declared {declared.spec}")


def _is_binary_charset(column: object) -> bool:
    return _column_charset(column) == "binary"


def _column_charset(column: object) -> str:
    """The MySQL character set of a binlog column (``binary`` for binary strings).

    Order: what :func:`prepare_binlog_column` / :func:`table_map_column_types` recorded, else the
    collation the library resolved, else ``UNKNOWN_CHARSET``: the library does not know MariaDB's
    UCA-14 collations (``utf8mb4_uca1400_ai_ci``…) and decodes them as utf8, whatever the charset;
    :func:`table_map_column_types` resolves them from the table map's collation ids.
    """
    recorded = getattr(column, "binlake_charset", None)
    if recorded:
        return str(recorded)
    collation = getattr(column, "collation_name", None)
    if collation:
        return _charset_of_collation(str(collation))
    return UNKNOWN_CHARSET


UNKNOWN_CHARSET = "(unknown)"


_UCA1400_CHARSETS = {8: "utf8mb3", 9: "utf8mb4", 10: "ucs2", 11: "utf16", 12: "utf32"}


def charset_of_collation_id(collation_id: int) -> str | None:
    """Character set of a MariaDB UCA-14 collation id (2048..4095: charset in bits 8..11), else None.

    pymysqlreplication 1.0.17 knows every collation id below 2048 but none of these (MariaDB 10.10+,
    the default collation of MariaDB 11.x), which it silently decodes as utf8.
    """
    if collation_id >= 2048:
        return _UCA1400_CHARSETS.get(collation_id >> 8)
    return None


def _name(column: object) -> str:
    return str(getattr(column, "name", "?"))


def prepare_binlog_column(column: Any, declared: ColumnType | None = None) -> None:
    """Fix a pymysqlreplication ``Column`` in place so its rows decode exactly (see module notes).

    Call it on every column of a table-map event before reading the rows of the events that use
    that table map (rows are decoded lazily, on first access to ``event.rows``). Idempotent.

    * text columns: sets ``character_set_name`` to the exact Python codec of the column's character
      set (the library uses it as the codec name), or raises UnsupportedTypeError;
    * ENUM/SET: replaces the labels by ``declared.values`` when given (the library decodes labels
      as UTF-8, losing non-UTF-8 labels); without it, raises UnsupportedTypeError when the labels
      cannot be trusted (non-ASCII labels in a character set other than UTF-8).
    """
    code = int(column.type)
    charset = _column_charset(column)
    is_text = code in (_FT_STRING, _FT_VARCHAR, _FT_VAR_STRING, _FT_BLOB) and charset != "binary"
    if charset == UNKNOWN_CHARSET and (is_text or (code in (_FT_ENUM, _FT_SET) and declared is None)):
        raise UnsupportedTypeError(
            f"column {_name(column)!r}: collation unknown to pymysqlreplication (MariaDB UCA-14?); "
            "use table_map_column_types(event), which resolves it from the table map"
        )
    if charset != UNKNOWN_CHARSET:
        column.binlake_charset = charset
    if is_text:
        column.character_set_name = python_codec(charset)
    if code not in (_FT_ENUM, _FT_SET):
        return
    attr = "enum_values" if code == _FT_ENUM else "set_values"
    current = list(getattr(column, attr, None) or [])
    labels = current[1:] if code == _FT_ENUM else current
    if declared is not None:
        if declared.base not in ("enum", "set") or len(declared.values) != len(labels):
            raise ValueError(f"column {_name(column)!r}: declared {declared.spec} does not match the binlog")
        labels = list(declared.values)
    elif not _labels_trustworthy(column, labels):
        raise UnsupportedTypeError(
            f"column {_name(column)!r}: {attr} in character set {_column_charset(column)!r} are not "
            "readable from the binlog; pass the declared type"
        )
    setattr(column, attr, ["", *labels] if code == _FT_ENUM else labels)


def table_map_column_types(event: Any, declared: Sequence[ColumnType] | None = None) -> list[ColumnType]:
    """ColumnTypes of all columns of a pymysqlreplication ``TableMapEvent`` (duck typed).

    Reads the geometry subtypes from the event's optional metadata, prepares every column with
    :func:`prepare_binlog_column` and returns :func:`column_type_from_binlog` for each. ``declared``
    (information_schema types in column order) is optional; see :func:`column_type_from_binlog`.
    """
    columns = list(event.columns)
    if declared is not None and len(declared) != len(columns):
        raise ValueError(f"{len(declared)} declared types for {len(columns)} binlog columns")
    metadata = getattr(event, "optional_metadata", None)
    geometry_codes = iter(getattr(metadata, "geometry_type_list", None) or [])
    _record_uca1400_charsets(columns, metadata)
    result = []
    for index, column in enumerate(columns):
        if int(column.type) == _FT_GEOMETRY:
            column.geometry_type = next(geometry_codes, None)
        hint = declared[index] if declared is not None else None
        prepare_binlog_column(column, hint)
        result.append(column_type_from_binlog(column, hint))
    return result


def _record_uca1400_charsets(columns: list[Any], metadata: Any) -> None:
    """Set ``binlake_charset`` on columns whose collation id the library did not know."""
    text_codes = (_FT_STRING, _FT_VAR_STRING, _FT_VARCHAR, _FT_BLOB)
    ids = list(getattr(metadata, "charset_collation_list", None) or [])
    text = [c for c in columns if int(c.type) in text_codes]
    with_geometry = [c for c in columns if int(c.type) in (*text_codes, _FT_GEOMETRY)]
    pairs = list(zip(with_geometry if len(ids) == len(with_geometry) else text, ids, strict=False))
    labelled = [c for c in columns if int(c.type) in (_FT_ENUM, _FT_SET)]
    pairs += zip(labelled, getattr(metadata, "enum_and_set_collation_list", None) or [], strict=False)
    for column, collation_id in pairs:
        charset = charset_of_collation_id(int(collation_id))
        if charset and not getattr(column, "collation_name", None):
            column.binlake_charset = charset


# --------------------------------------------------------------------------------------------------
# Spark side
# --------------------------------------------------------------------------------------------------

def spark_type(ct: ColumnType) -> str:
    """The Spark SQL DDL type of the lake column, e.g. ``decimal(20,0)``, ``timestamp_ntz``."""
    base = ct.base
    if base in INTEGER_TYPES:
        return _SPARK_INT[(base, ct.unsigned)]
    if base == "decimal":
        assert ct.precision is not None
        if ct.precision > SPARK_MAX_DECIMAL_PRECISION:
            return "string"
        return f"decimal({ct.precision},{ct.scale})"
    if base in ("float", "double", "date"):
        return base
    if base == "bit":
        assert ct.precision is not None
        return "boolean" if ct.precision == 1 else "bigint" if ct.precision < 64 else "decimal(20,0)"
    if base == "year":
        return "smallint"
    if base == "datetime":
        return "timestamp_ntz"
    if base == "timestamp":
        return "timestamp"
    if base in BINARY_TYPES or base in GEOMETRY_TYPES:
        return "binary"
    return "string"


def spark_parse_sql(ct: ColumnType, expr: str) -> str:
    """A Spark SQL expression turning ``expr`` into the lake value of type :func:`spark_type`.

    ``expr`` is either a canonical string or the JDBC value of :func:`source_select_sql`; NULL stays
    NULL. TIMESTAMP text is read as UTC whatever the session time zone.
    """
    target = spark_type(ct)
    if ct.base == "timestamp":
        return f"CAST(CONCAT(CAST({expr} AS STRING), 'Z') AS TIMESTAMP)"
    if target == "binary":
        return f"UNHEX(CAST({expr} AS STRING))"
    return f"CAST({expr} AS {target.upper()})"


# --------------------------------------------------------------------------------------------------
# Full-load side: the MySQL select expression
# --------------------------------------------------------------------------------------------------

def source_select_sql(ct: ColumnType, quoted_column: str) -> str:
    """The MySQL select expression for the full load of a column (``quoted_column`` is backticked).

    It yields the canonical string, or a JDBC value that :func:`spark_parse_sql` casts to exactly
    the same lake value (signed integers, DECIMAL(p<=38), DOUBLE, text, JSON). The session must
    run with ``time_zone='+00:00'`` (TIMESTAMP text is rendered in the session zone).
    """
    c = quoted_column
    base = ct.base
    if base == "tinyint":  # JDBC drivers map TINYINT(1) to boolean; a BIGINT keeps the number
        return f"CAST({c} AS {'UNSIGNED' if ct.unsigned else 'SIGNED'})"
    if base in INTEGER_TYPES or base in ("double", "json") or base in CHAR_TYPES:
        return c
    if base == "decimal":
        assert ct.precision is not None
        return c if ct.precision <= SPARK_MAX_DECIMAL_PRECISION else f"CAST({c} AS CHAR)"
    if base == "float":  # the text protocol prints FLOAT with 6 digits; the DOUBLE of it is exact
        return f"CAST({c} AS DOUBLE)"
    if base in ("bit", "year"):
        return f"CAST({c} AS UNSIGNED)"
    if base in ("date", "datetime"):
        return _valid_date_case(c, f"DATE_FORMAT({c}, '%Y-%m-%d')" if base == "date" else f"CAST({c} AS CHAR)")
    if base == "timestamp":
        return f"CASE WHEN UNIX_TIMESTAMP({c}) = 0 THEN NULL ELSE CAST({c} AS CHAR) END"
    if base in ("time", "enum", "set", *MARIADB_TEXT_TYPES):  # ENUM/SET may be CHARACTER SET binary
        return f"CAST({c} AS CHAR)"
    if base in BINARY_TYPES or base in GEOMETRY_TYPES:
        return f"HEX({c})"
    raise UnsupportedTypeError(f"no select expression for {ct.spec}")  # pragma: no cover - exhaustive


def _valid_date_case(c: str, text: str) -> str:
    """NULL for zero, partly-zero, year-0 and invalid (ALLOW_INVALID_DATES) dates, else ``text``."""
    return (
        f"CASE WHEN YEAR({c}) = 0 OR MONTH({c}) = 0 OR DAYOFMONTH({c}) = 0 "
        f"OR DAYOFMONTH({c}) > DAYOFMONTH(LAST_DAY({c})) THEN NULL ELSE {text} END"
    )


# --------------------------------------------------------------------------------------------------
# Capture side: binlog value → canonical string
# --------------------------------------------------------------------------------------------------

def encode_binlog_value(ct: ColumnType, value: object, none_source: str | None = None) -> str | None:
    """The canonical string of ``value`` as pymysqlreplication 1.0.17 decodes it for column ``ct``.

    ``none_source`` is the row's ``none_sources`` entry for the column; it only matters for SET,
    where the library decodes the empty set as None (``"empty set"``) like NULL.

    >>> encode_binlog_value(ColumnType("year"), 1900)
    '0'
    """
    if value is None:
        if ct.base == "set" and none_source == EMPTY_SET_SOURCE:
            return ""
        return None
    encoder = _ENCODERS.get(ct.base)
    if encoder is None:
        raise UnsupportedTypeError(f"no binlog encoder for {ct.spec}")  # pragma: no cover
    try:
        text: str | None = encoder(ct, value)
        return text
    except (TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, UnsupportedTypeError):
            raise
        raise ValueError(f"cannot encode {value!r} as {ct.spec}: {exc}") from exc


def _enc_int(ct: ColumnType, value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("expected int")
    return str(value)


def _enc_decimal(ct: ColumnType, value: object) -> str:
    number = value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value))
    exponent = decimal.Decimal(1).scaleb(-(ct.scale or 0))
    quantized = number.quantize(exponent, context=decimal.Context(prec=80))
    return format(quantized, "f")


def _enc_float(ct: ColumnType, value: object) -> str:
    return float32_text(float(value))  # type: ignore[arg-type]


def _enc_double(ct: ColumnType, value: object) -> str:
    return repr(float(value))  # type: ignore[arg-type]


def _enc_bit(ct: ColumnType, value: object) -> str:
    if isinstance(value, str):
        return str(int(value, 2)) if value else "0"
    if isinstance(value, bytes):
        return str(int.from_bytes(value, "big"))
    return str(int(value))  # type: ignore[call-overload]


def _enc_year(ct: ColumnType, value: object) -> str:
    year = int(value)  # type: ignore[call-overload]
    return "0" if year in (0, 1900) else str(year)


def _enc_date(ct: ColumnType, value: object) -> str:
    if not isinstance(value, datetime.date):
        raise TypeError("expected date")
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def _enc_datetime(ct: ColumnType, value: object) -> str | None:
    if not isinstance(value, datetime.datetime):
        raise TypeError("expected datetime")
    return _datetime_text(value, ct.scale or 0)


def _enc_timestamp(ct: ColumnType, value: object) -> str | None:
    if not isinstance(value, datetime.datetime):
        raise TypeError("expected datetime")
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    if value == _EPOCH:
        return None  # the zero TIMESTAMP (stored as 0 seconds)
    return _datetime_text(value, ct.scale or 0)


_EPOCH = datetime.datetime(1970, 1, 1)


def _datetime_text(value: datetime.datetime, scale: int) -> str:
    text = (f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
            f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}")
    return text + _fraction(value.microsecond, scale)


def _fraction(microseconds: int, scale: int) -> str:
    return "." + f"{microseconds:06d}"[:scale] if scale else ""


def _enc_time(ct: ColumnType, value: object) -> str:
    if not isinstance(value, datetime.timedelta):
        raise TypeError("expected timedelta")
    return time_text(fix_negative_time(value), ct.scale or 0)


_SECOND = datetime.timedelta(seconds=1)


def fix_negative_time(value: datetime.timedelta) -> datetime.timedelta:
    """Undo pymysqlreplication 1.0.17's decoding of negative TIME2 values with a fraction.

    MySQL stores ``-(X + f)`` (X whole seconds, 0 < f < 1) as integer part ``-(X+1)`` and fraction
    ``1 - f``; the library returns ``-(X + 1 - f)``. Values without a fraction are right.
    """
    if value >= datetime.timedelta(0):
        return value
    magnitude = -value
    whole = magnitude // _SECOND
    fraction = magnitude - whole * _SECOND
    if not fraction:
        return value
    return -(whole * _SECOND + (_SECOND - fraction))


def time_text(value: datetime.timedelta, scale: int) -> str:
    """MySQL's text of a TIME value: ``-838:59:59.000000``, ``00:20:38``, ``-00:00:00.50``."""
    total = value // datetime.timedelta(microseconds=1)
    sign = "-" if total < 0 else ""
    seconds, micros = divmod(abs(total), 1_000_000)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours:02d}:{minutes:02d}:{secs:02d}{_fraction(micros, scale)}"


def _enc_text(ct: ColumnType, value: object) -> str:
    if isinstance(value, str):
        return value
    raise UnsupportedTypeError(
        f"{ct.spec} value arrived undecoded ({type(value).__name__}): the column's character set "
        "was not prepared; call prepare_binlog_column / table_map_column_types first"
    )


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if value == "":
        return b""  # the library turns an empty binary string into ''
    if isinstance(value, str):
        raise TypeError("binary value arrived as text")
    raise TypeError(f"expected bytes, got {type(value).__name__}")


def _enc_binary(ct: ColumnType, value: object) -> str:
    data = _as_bytes(value)
    if ct.base == "binary" and ct.precision is not None:
        data = data.ljust(ct.precision, b"\0")
    return data.hex().upper()


def _enc_enum(ct: ColumnType, value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return "" if value == 0 else ct.values[value - 1]
    return str(value)


def _enc_set(ct: ColumnType, value: object) -> str:
    members: set[str] = set(_set_members(value))
    unknown = members.difference(ct.values)
    if unknown:
        raise ValueError(f"SET members {sorted(unknown)} are not labels of {ct.spec}")
    return ",".join(label for label in ct.values if label in members)


def _set_members(value: object) -> Iterable[str]:
    if isinstance(value, str):
        return value.split(",") if value else ()
    return [str(v) for v in value]  # type: ignore[attr-defined]


def _enc_json(ct: ColumnType, value: object) -> str:
    # Only MySQL has a JSON type in the binlog (MariaDB's is LONGTEXT); the library always parses it,
    # and a top-level bytes/str is a JSON string scalar.
    return mysql_json_text(value)


def _enc_uuid(ct: ColumnType, value: object) -> str:
    if isinstance(value, str) and len(value) == 36:
        return value.lower()
    raw = _as_bytes(value).ljust(16, b"\0").hex()
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


def _enc_inet4(ct: ColumnType, value: object) -> str:
    if isinstance(value, str) and value.count(".") == 3:
        return value
    return ".".join(str(b) for b in _as_bytes(value).ljust(4, b"\0"))


def _enc_inet6(ct: ColumnType, value: object) -> str:
    if isinstance(value, str) and ":" in value:
        return value
    return inet6_text(_as_bytes(value).ljust(16, b"\0"))


def inet6_text(raw: bytes) -> str:
    """MariaDB's (and MySQL's INET6_NTOA) text of a 16-byte IPv6 address.

    The longest run of zero 16-bit words (the first of equal runs, even a single word) becomes
    ``::``; ``::a.b.c.d`` (IPv4-compatible, six zero words) and ``::ffff:a.b.c.d`` (IPv4-mapped)
    print the last 32 bits as IPv4.
    """
    if len(raw) != 16:
        raise ValueError("an IPv6 address has 16 bytes")
    words = struct.unpack(">8H", raw)
    gap_pos, gap_len, run_pos, run_len = -1, 0, -1, 0
    for i, word in enumerate((*words, 1)):
        if word == 0 and i < 8:
            run_pos, run_len = (run_pos, run_len + 1) if run_pos >= 0 else (i, 1)
            continue
        if run_pos >= 0 and run_len > gap_len:
            gap_pos, gap_len = run_pos, run_len
        run_pos, run_len = -1, 0
    ipv4 = ".".join(str(b) for b in raw[12:])
    if gap_pos == 0 and gap_len == 6:
        return "::" + ipv4
    if gap_pos == 0 and gap_len == 5 and words[5] == 0xFFFF:
        return "::ffff:" + ipv4
    parts: list[str] = []
    i = 0
    while i < 8:
        if i == gap_pos:
            parts.append(":" if i == 0 else "")
            i += gap_len
            if i == 8:
                parts.append("")
            continue
        parts.append(f"{words[i]:x}")
        i += 1
    return ":".join(parts)


_ENCODERS: dict[str, Any] = {
    **dict.fromkeys(INTEGER_TYPES, _enc_int),
    "decimal": _enc_decimal, "float": _enc_float, "double": _enc_double, "bit": _enc_bit,
    "year": _enc_year, "date": _enc_date, "datetime": _enc_datetime, "timestamp": _enc_timestamp,
    "time": _enc_time, **dict.fromkeys(CHAR_TYPES, _enc_text), **dict.fromkeys(BINARY_TYPES, _enc_binary),
    **dict.fromkeys(GEOMETRY_TYPES, _enc_binary), "enum": _enc_enum, "set": _enc_set, "json": _enc_json,
    "uuid": _enc_uuid, "inet4": _enc_inet4, "inet6": _enc_inet6,
}


# --------------------------------------------------------------------------------------------------
# Number and JSON text
# --------------------------------------------------------------------------------------------------

def _to_float32(x: float) -> float:
    """``x`` rounded to float32 (±inf beyond the float32 range)."""
    try:
        return float(struct.unpack("<f", struct.pack("<f", x))[0])
    except OverflowError:
        return math.copysign(math.inf, x)


def float32_text(x: float) -> str:
    """The shortest decimal text that reads back (as float32) to the float32 value ``x``.

    Rendered like Python's ``repr`` of a float (``42.42``, ``3.4028235e+38``, ``1e-45``).
    """
    if math.isnan(x) or math.isinf(x) or x == 0:
        return repr(x)
    x = _to_float32(x)
    for digits in range(1, 10):
        for candidate in _decimal_candidates(x, digits):
            if _to_float32(float(candidate)) == x:
                return repr(float(candidate))
    return repr(x)  # pragma: no cover - 9 significant digits always round-trip a float32


def _decimal_candidates(x: float, digits: int) -> list[decimal.Decimal]:
    """The ``digits``-significant-digit decimals nearest to ``x``: the rounded one, then its neighbours."""
    nearest = decimal.Decimal(f"{x:.{digits - 1}e}")
    ulp = decimal.Decimal(1).scaleb(nearest.adjusted() - digits + 1)
    exact = decimal.Decimal(x)
    around = [nearest - ulp, nearest + ulp]
    around.sort(key=lambda d: abs(d - exact))
    return [nearest, *around]


def mysql_json_text(value: object) -> str:
    """JSON text of a document as pymysqlreplication decodes MySQL binary JSON, printed like MySQL.

    MySQL prints ``{"k": v, "k2": [1, 2]}`` (``, `` and ``: `` separators, UTF-8 unescaped);
    object keys arrive as bytes. Opaque values (dates, decimals) are printed as strings.
    """
    return json.dumps(_jsonable(value), ensure_ascii=False, separators=(", ", ": "))


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {_key(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.date | datetime.time | datetime.timedelta):
        return str(value)
    return value


def _key(key: object) -> str:
    return key.decode("utf-8") if isinstance(key, bytes) else str(key)
