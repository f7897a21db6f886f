"""DMS ``add-column`` transformation rules: lake columns that the source table does not have (pure).

As in DMS ("Using transformation rule expressions to define column content"), the rule names the
new column in ``value``, its content in ``expression`` and its type in ``data-type``::

    {"rule-type": "transformation", "rule-id": "5", "rule-name": "loaded",
     "rule-target": "column", "rule-action": "add-column",
     "object-locator": {"schema-name": "shop", "table-name": "%"},
     "value": "commit_ts", "expression": "$AR_H_COMMIT_TIMESTAMP",
     "data-type": {"type": "datetime", "precision": 6}}

Expressions binlake evaluates, with the values DMS defines for the full load and for changes:

=========================  ==============================  ===========================================
expression                 full load (and resync chunks)   change (merge)
=========================  ==============================  ===========================================
constant: ``'text'``,      the constant                    the constant
``42``, ``1.5``, ``NULL``
``$AR_H_COMMIT_TIMESTAMP`` the time the chunk was read     the commit time of the source transaction
                           (DMS: "current timestamp")      of the row's latest change
``$AR_H_OPERATION``        ``INSERT``                      ``INSERT`` or ``UPDATE``: the source
                                                           operation of the row's latest change
=========================  ==============================  ===========================================

Refused by name, because binlake's change records do not carry what they need or the lake could
not hold it exactly: ``$AR_H_TIMESTAMP`` (the operation time, not the commit time — use
``$AR_H_COMMIT_TIMESTAMP``), ``$AR_H_STREAM_POSITION``, ``$AR_H_CHANGE_SEQ``, ``$AR_H_USER``,
``$AR_H_TRANSACTION_ID`` and any other header, column references (``$name``), SQLite functions
and operators (``||``, ``operation_indicator(…)``: rows are deleted, never flagged), and
``before-image-def``. Data types: ``string``/``wstring`` (any length), ``int1``/``int2``/
``int4``/``int8``, ``uint1``/``uint2``/``uint4``/``uint8``, ``numeric`` (precision ≤ 38),
``real4``, ``real8``, ``boolean``, ``date``, ``datetime``.

Values are rendered as Spark SQL from the typed constant only (text as hex bytes), never from
the rule's text.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

CONSTANT, COMMIT_TIMESTAMP, OPERATION = "constant", "$AR_H_COMMIT_TIMESTAMP", "$AR_H_OPERATION"
FULL_LOAD_OPERATION = "INSERT"
STREAM_OPERATIONS = {"I": "INSERT", "U": "UPDATE", "D": "DELETE"}
_HEADERS_REFUSED = {
    "$AR_H_TIMESTAMP": "it is the time of the operation, which binlake's change records do not carry; "
                       "$AR_H_COMMIT_TIMESTAMP (the commit time) is supported",
    "$AR_H_STREAM_POSITION": "binlake does not write the binlog position into lake rows",
    "$AR_H_CHANGE_SEQ": "binlake does not write a change sequence into lake rows",
    "$AR_H_USER": "the binlog does not carry the user",
    "$AR_H_TRANSACTION_ID": "binlake does not write transaction ids into lake rows",
}
_INTEGERS = {"int1": ("tinyint", 8, True), "int2": ("smallint", 16, True), "int4": ("int", 32, True),
             "int8": ("bigint", 64, True), "uint1": ("smallint", 8, False), "uint2": ("int", 16, False),
             "uint4": ("bigint", 32, False), "uint8": ("decimal(20,0)", 64, False)}  # DMS type: lake type, bits, signed
Bounds = tuple[int, int] | None
_SIMPLE = {"string": "string", "wstring": "string", "real4": "float", "real8": "double", "boolean": "boolean",
           "date": "date", "datetime": "timestamp"}
_STRING = re.compile(r"'((?:[^']|'')*)'", re.DOTALL)
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")

Constant = str | int | Decimal | bool | datetime.date | datetime.datetime | None


class AddColumnError(ValueError):
    """An add-column rule binlake cannot apply exactly; the message names the rule and the part."""


@dataclass(frozen=True)
class AddedColumn:
    """One column an add-column rule gives a lake table.

    ``kind``: :data:`CONSTANT`, :data:`COMMIT_TIMESTAMP` or :data:`OPERATION`; ``value``: the typed
    constant (``None`` for NULL and for the other kinds); ``spark_type``: the lake column's type.
    """

    rule_id: int
    name: str
    kind: str
    spark_type: str
    value: Constant = None

    def constant_sql(self) -> str:
        """The constant as a Spark SQL expression of type :attr:`spark_type`."""
        return _literal_sql(self.value, self.spark_type)

    def full_load_sql(self, read_ts_micros: str) -> str:
        """The Spark SQL value of a full-load (or resync) row; ``read_ts_micros``: the expression of
        the chunk's read time in microseconds since the epoch."""
        if self.kind == COMMIT_TIMESTAMP:
            return f"TIMESTAMP_MICROS({read_ts_micros})"
        if self.kind == OPERATION:
            return _literal_sql(FULL_LOAD_OPERATION, "string")
        return self.constant_sql()


def parse_add_column(rule: Mapping[str, Any], rule_id: int, where: str) -> AddedColumn:
    """The column of one ``add-column`` rule (locators are the caller's); :class:`AddColumnError`."""
    if rule.get("rule-target") != "column":
        raise AddColumnError(f"{where}: add-column needs rule-target 'column'")
    if "before-image-def" in rule:
        raise AddColumnError(f"{where}: add-column 'before-image-def' (before-image columns) is not supported")
    name = rule.get("value")
    if not isinstance(name, str) or not name:
        raise AddColumnError(f"{where}: add-column needs the new column's name in 'value'")
    if name.lower().startswith("_binlake_"):
        raise AddColumnError(f"{where}: column names starting with _binlake_ are binlake's own")
    spark_type, bounds = _spark_type(rule.get("data-type"), where)
    expression = rule.get("expression")
    if not isinstance(expression, str | int | float) or isinstance(expression, bool):
        raise AddColumnError(f"{where}: add-column needs an 'expression' (a constant, $AR_H_COMMIT_TIMESTAMP or "
                             "$AR_H_OPERATION)")
    text = str(expression).strip()
    header = text.upper()
    if header == COMMIT_TIMESTAMP:
        if spark_type != "timestamp":
            raise AddColumnError(f"{where}: {COMMIT_TIMESTAMP} needs data-type 'datetime'")
        return AddedColumn(rule_id, name, COMMIT_TIMESTAMP, spark_type)
    if header == OPERATION:
        if spark_type != "string":
            raise AddColumnError(f"{where}: {OPERATION} needs data-type 'string'")
        return AddedColumn(rule_id, name, OPERATION, spark_type)
    if header in _HEADERS_REFUSED:
        raise AddColumnError(f"{where}: expression {header} is not supported: {_HEADERS_REFUSED[header]}")
    if text.startswith("$"):
        raise AddColumnError(f"{where}: expression {text!r} is not supported: binlake evaluates constants, "
                             f"{COMMIT_TIMESTAMP} and {OPERATION} only (no other headers or column values)")
    return AddedColumn(rule_id, name, CONSTANT, spark_type, _constant(text, spark_type, bounds, where))


def _spark_type(raw: Any, where: str) -> tuple[str, Bounds]:
    """The lake type of a DMS ``data-type``, and the integer range of the integer types."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("type"), str):
        raise AddColumnError(f"{where}: add-column needs 'data-type': {{\"type\": …}}")
    kind = str(raw["type"]).lower()
    if kind in _INTEGERS:
        spark_type, bits, signed = _INTEGERS[kind]
        return spark_type, (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if kind in _SIMPLE:
        return _SIMPLE[kind], None
    if kind == "numeric":
        precision, scale = raw.get("precision"), raw.get("scale", 0)
        if not isinstance(precision, int) or not isinstance(scale, int) or not 0 <= scale <= precision <= 38:
            raise AddColumnError(f"{where}: data-type numeric needs integer precision 1..38 and scale 0..precision")
        return f"decimal({precision},{scale})", None
    raise AddColumnError(f"{where}: data-type {kind!r} is not supported for add-column (supported: "
                         f"{', '.join(sorted([*_INTEGERS, *_SIMPLE, 'numeric']))})")


def _constant(text: str, spark_type: str, bounds: Bounds, where: str) -> Constant:
    """The SQLite constant ``text`` typed for ``spark_type``; :class:`AddColumnError` otherwise."""
    if text.upper() == "NULL":
        return None
    string = _STRING.fullmatch(text)
    number = _NUMBER.fullmatch(text)
    if string is None and number is None:
        raise AddColumnError(f"{where}: expression {text!r} is not supported: binlake evaluates constants "
                             f"('text', numbers, NULL), {COMMIT_TIMESTAMP} and {OPERATION} only (no SQLite "
                             "functions or operators)")
    raw = string.group(1).replace("''", "'") if string is not None else text
    try:
        return _typed(raw, spark_type, bounds)
    except (ValueError, ArithmeticError) as exc:
        raise AddColumnError(f"{where}: constant {text} does not fit data-type {spark_type}: {exc}") from None


def _typed(raw: str, spark_type: str, bounds: Bounds) -> Constant:
    if spark_type == "string":
        return raw
    if spark_type == "boolean":
        lowered = raw.strip().lower()
        if lowered not in ("0", "1", "true", "false"):
            raise ValueError("a boolean is 0, 1, true or false")
        return lowered in ("1", "true")
    if spark_type == "date":
        return datetime.date.fromisoformat(raw.strip())
    if spark_type == "timestamp":
        return datetime.datetime.fromisoformat(raw.strip())
    if not _NUMBER.fullmatch(raw.strip()):
        raise ValueError("not a number")
    number = Decimal(raw.strip())
    if bounds is not None:
        if number != number.to_integral_value():
            raise ValueError("not an integer")
        if not bounds[0] <= number <= bounds[1]:
            raise ValueError(f"outside {bounds[0]}..{bounds[1]}")
        return int(number)
    if spark_type.startswith("decimal("):
        precision, scale = (int(p) for p in spark_type[8:-1].split(","))
        quantized = number.quantize(Decimal(1).scaleb(-scale))
        if quantized != number or len(quantized.as_tuple().digits) > precision:
            raise ValueError(f"not exactly a decimal({precision},{scale})")
        return quantized
    return number  # float / double: the decimal text, cast by Spark


def _literal_sql(value: Constant, spark_type: str) -> str:
    """A Spark SQL expression of type ``spark_type`` holding ``value`` (built from the typed value)."""
    if value is None:
        return f"CAST(NULL AS {spark_type.upper()})"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return f"CAST(UNHEX('{value.encode('utf-8').hex().upper()}') AS STRING)"
    if isinstance(value, datetime.datetime):
        return f"CAST('{value.strftime('%Y-%m-%d %H:%M:%S.%f')}Z' AS TIMESTAMP)"  # UTC, as TIMESTAMP columns
    if isinstance(value, datetime.date):
        return f"DATE'{value.isoformat()}'"
    return f"CAST({format(Decimal(value), 'f')} AS {spark_type.upper()})"
