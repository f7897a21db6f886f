"""DMS selection-rule source filters: which rows of a selected table are replicated (pure).

A selection rule may carry ``filters``, exactly as in the DMS documentation ("Using source
filters")::

    "filters": [{"filter-type": "source", "column-name": "empid",
                 "filter-conditions": [{"filter-operator": "lte", "value": "10"},
                                       {"filter-operator": "between", "start-value": "50", "end-value": "75"}]},
                {"filter-type": "source", "column-name": "dept",
                 "filter-conditions": [{"filter-operator": "eq", "value": "tech"}]}]

Semantics (DMS's):

* the conditions of one filter (one column) are combined with OR, the filters with AND;
* operators ``eq``, ``noteq``, ``lte`` (alias ``ste``), ``gte``, ``between`` / ``notbetween``
  (``start-value``, ``end-value``; ``between`` includes both ends, ``notbetween`` is
  ``< start OR > end``), ``null``, ``notnull``; a filter holding a negative operator (``noteq``,
  ``notbetween``, ``notnull``) holds only that one condition (a DMS rule);
* SQL three-valued logic: a comparison with a NULL value is unknown, and a row is replicated only
  when the whole filter is true (so ``noteq`` never keeps a NULL; ``null`` does).

Values are typed by the column's type, once, when a filter is bound to a table
(:meth:`RowFilter.bind`): numbers compare numerically (integer, DECIMAL(p<=38) and YEAR
columns; the value may have a fraction), DATE columns take ``YYYY-MM-DD``, DATETIME and
TIMESTAMP columns ``YYYY-MM-DD[ HH:MM:SS[.ffffff]]`` (TIMESTAMP values are UTC), and text
columns compare **by code point** — the binary comparison DMS documents ("comparison
functions follow the SQLite conventions": SQLite's default BINARY collation), not the column's
collation: with a case-insensitive collation ``eq 'abc'`` does not keep ``'ABC'``, and trailing
spaces count. Zero and invalid dates are NULL, as in the lake. Other column types (FLOAT,
DOUBLE, BIT, binary, ENUM, SET, JSON, spatial, TIME, DECIMAL above 38 digits) are refused by
name.

One predicate, three renderings (:func:`render` over a :class:`Dialect`): MariaDB SQL for every
source read (full load, resync and validation chunks: :data:`MARIADB`), Spark columns for the
merge (:mod:`binlake.merge.filtering`), and Python values (:data:`PYTHON`), so the stream and the
source reads evaluate the same conditions with the same types.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol, TypeVar

from binlake import typemap
from binlake.chunks import quote_identifier

E = TypeVar("E")
Value = int | Decimal | str | datetime.date | datetime.datetime

_ONE_VALUE = {"eq", "noteq", "lte", "gte"}
_TWO_VALUES = {"between", "notbetween"}
_NO_VALUE = {"null", "notnull"}
_NEGATIVE = {"noteq", "notbetween", "notnull"}
_ALIASES = {"ste": "lte"}
OPERATORS = frozenset((*_ONE_VALUE, *_TWO_VALUES, *_NO_VALUE, *_ALIASES))

NUMBER, TEXT, DATE, DATETIME, TIMESTAMP = "number", "text", "date", "datetime", "timestamp"
_NUMBER_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2}(\.\d{1,6})?)?")


class FilterError(ValueError):
    """A source filter binlake cannot apply exactly; the message names the rule and the part."""


@dataclass(frozen=True)
class Condition:
    """One filter condition: ``operator`` (``ste`` already read as ``lte``) and its 0..2 raw values."""

    operator: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class ColumnFilter:
    """One filter: its conditions on one source column, combined with OR."""

    column: str
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class BoundCondition:
    operator: str
    values: tuple[Value, ...]


@dataclass(frozen=True)
class BoundColumn:
    """A filter bound to a table: the column as the reader names it, its kind and typed conditions."""

    name: str
    kind: str
    conditions: tuple[BoundCondition, ...]


@dataclass(frozen=True)
class BoundFilter:
    """A :class:`RowFilter` typed for one table (see :meth:`RowFilter.bind`)."""

    rule: str
    columns: tuple[BoundColumn, ...]


ColumnLookup = Callable[[str], tuple[str, typemap.ColumnType] | None]
"""``source column → (name in the reader's rows, type)``, ``None`` when the table has no such column."""


@dataclass(frozen=True)
class RowFilter:
    """The ``filters`` of one selection rule (``rule``: how messages name that rule)."""

    rule: str
    filters: tuple[ColumnFilter, ...]

    @classmethod
    def parse(cls, raw: Any, rule: str) -> RowFilter:
        """Read a selection rule's ``filters`` list; :class:`FilterError` naming the bad part."""
        if not isinstance(raw, list) or not raw:
            raise FilterError(f"{rule}: 'filters' must be a non-empty list of filter objects")
        return cls(rule, tuple(_parse_filter(item, f"{rule}: filters[{i}]") for i, item in enumerate(raw)))

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.column for f in self.filters)

    def bind(self, lookup: ColumnLookup, table: str) -> BoundFilter:
        """Type every value for its column of ``table``; :class:`FilterError` for a column the table
        lacks (or a rule removes), a type filters do not support, or a value the type cannot hold."""
        bound: list[BoundColumn] = []
        for f in self.filters:
            where = f"{self.rule}: filter on column {f.column!r} of {table}"
            found = lookup(f.column)
            if found is None:
                raise FilterError(f"{where}: the table has no such column (or a transformation rule removes "
                                  "it); filter on a column that is replicated")
            name, ctype = found
            kind = column_kind(ctype, where)
            conditions = tuple(BoundCondition(c.operator, tuple(typed_value(kind, v, where) for v in c.values))
                               for c in f.conditions)
            bound.append(BoundColumn(name, kind, conditions))
        return BoundFilter(self.rule, tuple(bound))


def _parse_filter(item: Any, where: str) -> ColumnFilter:
    if not isinstance(item, Mapping):
        raise FilterError(f"{where}: expected an object")
    if item.get("filter-type", "source") != "source":
        raise FilterError(f"{where}: filter-type {item.get('filter-type')!r} is not supported (only 'source')")
    column = item.get("column-name")
    if not isinstance(column, str) or not column:
        raise FilterError(f"{where}: column-name is missing")
    raw = item.get("filter-conditions")
    if not isinstance(raw, list) or not raw:
        raise FilterError(f"{where}: filter-conditions must be a non-empty list")
    conditions = tuple(_parse_condition(c, f"{where}.filter-conditions[{i}]") for i, c in enumerate(raw))
    if len(conditions) > 1 and any(c.operator in _NEGATIVE for c in conditions):
        raise FilterError(f"{where}: a filter with a negative operator ({', '.join(sorted(_NEGATIVE))}) holds only "
                          "that one condition (as in DMS); put the other conditions in another filter")
    return ColumnFilter(column, conditions)


def _parse_condition(item: Any, where: str) -> Condition:
    if not isinstance(item, Mapping):
        raise FilterError(f"{where}: expected an object")
    raw = item.get("filter-operator")
    if not isinstance(raw, str) or raw not in OPERATORS:
        raise FilterError(f"{where}: filter-operator {raw!r} is not supported; use one of {sorted(OPERATORS)}")
    operator = _ALIASES.get(raw, raw)
    keys = ("value",) if operator in _ONE_VALUE else ("start-value", "end-value") if operator in _TWO_VALUES else ()
    values = []
    for key in keys:
        value = item.get(key)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise FilterError(f"{where}: {operator} needs {key!r}")
        values.append(str(value))
    return Condition(operator, tuple(values))


def column_kind(ctype: typemap.ColumnType, where: str) -> str:
    """How filter values of a column of type ``ctype`` compare; :class:`FilterError` when they cannot."""
    base = ctype.base
    if base in typemap.INTEGER_TYPES or base == "year":
        return NUMBER
    if base == "decimal" and (ctype.precision or 0) <= typemap.SPARK_MAX_DECIMAL_PRECISION:
        return NUMBER
    if base in typemap.CHAR_TYPES:
        return TEXT
    if base in (DATE, DATETIME, TIMESTAMP):
        return base
    raise FilterError(f"{where}: columns of type {ctype.spec} cannot be filtered exactly (supported: integer, "
                      "DECIMAL up to 38 digits, YEAR, CHAR/VARCHAR/TEXT, DATE, DATETIME, TIMESTAMP)")


def typed_value(kind: str, text: str, where: str) -> Value:
    """The value ``text`` of a condition on a column of ``kind`` (see :func:`column_kind`)."""
    if kind == TEXT:
        return text
    if kind == NUMBER:
        if not _NUMBER_TEXT.fullmatch(text.strip()):
            raise FilterError(f"{where}: {text!r} is not a number")
        try:
            number = Decimal(text.strip())
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid numbers
            raise FilterError(f"{where}: {text!r} is not a number") from None
        digits = len(number.as_tuple().digits)
        if digits > typemap.SPARK_MAX_DECIMAL_PRECISION:
            raise FilterError(f"{where}: {text!r} has more than {typemap.SPARK_MAX_DECIMAL_PRECISION} digits")
        return int(number) if number == number.to_integral_value() else number
    pattern = _DATE_TEXT if kind == DATE else _DATETIME_TEXT
    if not pattern.fullmatch(text.strip()):
        shape = "YYYY-MM-DD" if kind == DATE else "YYYY-MM-DD[ HH:MM:SS[.ffffff]]"
        raise FilterError(f"{where}: {text!r} is not a {kind} value ({shape})")
    try:
        if kind == DATE:
            return datetime.date.fromisoformat(text.strip())
        return datetime.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise FilterError(f"{where}: {text!r} is not a valid {kind}: {exc}") from None


# --------------------------------------------------------------------------------------------------
# Rendering: one predicate, several back ends
# --------------------------------------------------------------------------------------------------

class Dialect(Protocol[E]):
    """Builds predicate expressions of type ``E`` with SQL's three-valued logic."""

    def column(self, column: BoundColumn) -> E: ...
    def literal(self, value: Value, column: BoundColumn) -> E: ...
    def compare(self, operator: str, left: E, right: E) -> E: ...  # = <> < <= > >=
    def is_null(self, value: E, negate: bool) -> E: ...
    def any_of(self, parts: Sequence[E]) -> E: ...
    def all_of(self, parts: Sequence[E]) -> E: ...


_COMPARISONS = {"eq": "=", "noteq": "<>", "lte": "<=", "gte": ">="}


def render(bound: BoundFilter, dialect: Dialect[E]) -> E:
    """The filter as one ``dialect`` expression: per column the OR of its conditions, then the AND."""
    columns = []
    for column in bound.columns:
        ref = dialect.column(column)
        parts = []
        for c in column.conditions:
            lit = [dialect.literal(v, column) for v in c.values]
            if c.operator in _COMPARISONS:
                parts.append(dialect.compare(_COMPARISONS[c.operator], ref, lit[0]))
            elif c.operator == "between":
                parts.append(dialect.all_of([dialect.compare(">=", ref, lit[0]), dialect.compare("<=", ref, lit[1])]))
            elif c.operator == "notbetween":
                parts.append(dialect.any_of([dialect.compare("<", ref, lit[0]), dialect.compare(">", ref, lit[1])]))
            else:
                parts.append(dialect.is_null(ref, negate=c.operator == "notnull"))
        columns.append(dialect.any_of(parts))
    return dialect.all_of(columns)


class MariaDBDialect:
    """MariaDB SQL text over the source table's own columns (``time_zone = '+00:00'`` sessions).

    Values are literals built from the typed values only — numbers in plain decimal notation, dates
    as ``DATE'…'``/``TIMESTAMP'…'``, text as a hex literal of its UTF-8 bytes compared with the
    column's UTF-8 bytes (code-point order, no collation, no pad) — so no value text ever reaches
    the statement. Zero and invalid dates read as NULL, as the full load writes them.
    """

    def column(self, column: BoundColumn) -> str:
        c = quote_identifier(column.name)
        if column.kind == TEXT:
            return f"CAST(CONVERT({c} USING utf8mb4) AS BINARY)"
        if column.kind in (DATE, DATETIME):
            return (f"(CASE WHEN YEAR({c}) = 0 OR MONTH({c}) = 0 OR DAYOFMONTH({c}) = 0 "
                    f"OR DAYOFMONTH({c}) > DAYOFMONTH(LAST_DAY({c})) THEN NULL ELSE {c} END)")
        if column.kind == TIMESTAMP:
            return f"(CASE WHEN UNIX_TIMESTAMP({c}) = 0 THEN NULL ELSE {c} END)"
        return c

    def literal(self, value: Value, column: BoundColumn) -> str:
        if isinstance(value, str):
            return f"X'{value.encode('utf-8').hex().upper()}'"
        if isinstance(value, datetime.datetime):
            return f"TIMESTAMP'{value.strftime('%Y-%m-%d %H:%M:%S.%f')}'"
        if isinstance(value, datetime.date):
            return f"DATE'{value.isoformat()}'"
        return format(Decimal(value), "f")

    def compare(self, operator: str, left: str, right: str) -> str:
        return f"{left} {operator} {right}"

    def is_null(self, value: str, negate: bool) -> str:
        return f"{value} IS {'NOT ' if negate else ''}NULL"

    def any_of(self, parts: Sequence[str]) -> str:
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def all_of(self, parts: Sequence[str]) -> str:
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


Row = Mapping[str, Value | None]
Truth = bool | None
_PY_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b, "<>": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


class PythonDialect:
    """Evaluation on one row of typed Python values (``{column name: value or None}``): the
    reference semantics of the other renderings, in plain Python."""

    def column(self, column: BoundColumn) -> Callable[[Row], Any]:
        def get(row: Row) -> Any:
            value = row.get(column.name)
            if value is None or column.kind != NUMBER:
                return value
            return Decimal(value) if isinstance(value, int | str | Decimal) else value
        return get

    def literal(self, value: Value, column: BoundColumn) -> Callable[[Row], Any]:
        typed = Decimal(value) if column.kind == NUMBER and isinstance(value, int | Decimal) else value
        return lambda _row: typed

    def compare(self, operator: str, left: Callable[[Row], Any], right: Callable[[Row], Any]) -> Callable[[Row], Truth]:
        def test(row: Row) -> Truth:
            a, b = left(row), right(row)
            return None if a is None or b is None else _PY_COMPARE[operator](a, b)
        return test

    def is_null(self, value: Callable[[Row], Any], negate: bool) -> Callable[[Row], Truth]:
        return lambda row: (value(row) is None) != negate

    def any_of(self, parts: Sequence[Callable[[Row], Truth]]) -> Callable[[Row], Truth]:
        def test(row: Row) -> Truth:
            results = [p(row) for p in parts]
            return True if True in results else None if None in results else False
        return test

    def all_of(self, parts: Sequence[Callable[[Row], Truth]]) -> Callable[[Row], Truth]:
        def test(row: Row) -> Truth:
            results = [p(row) for p in parts]
            return False if False in results else None if None in results else True
        return test


MARIADB = MariaDBDialect()
PYTHON = PythonDialect()


def mariadb_sql(bound: BoundFilter) -> str:
    """The filter as a MariaDB predicate over the source table's columns."""
    return render(bound, MARIADB)


def keeps(bound: BoundFilter, row: Row) -> bool:
    """Is ``row`` (typed values by column name) replicated? Unknown (NULL) counts as no."""
    return render(bound, PYTHON)(row) is True
