"""What a DDL statement does to the values a lake table stores, and whether the lake can do the same
in place (pure).

:func:`ddl_impact` reads an ``ALTER TABLE`` statement clause by clause and returns a
:class:`DdlImpact`:

* ``adds`` — columns added, each with the value every existing row gets (the constant default, NULL,
  or the type's implicit default; :func:`binlake.merge.ddldefaults.existing_row_value`), applied by
  the merge to the rows older than the statement;
* ``checks`` — conditions on the lake's values *before* the statement under which a ``MODIFY``/
  ``CHANGE`` keeps every stored value (no NULL where the column becomes ``NOT NULL``, integers in
  the new type's range, ASCII text no longer than the new length, ENUM values among the new labels,
  …). The lake holds exactly the source's rows as of the statement when the merge reaches it, so a
  check that holds proves the conversion changed no value;
* ``resync`` — why the lake cannot derive the statement's effect (empty: it can):

==========================================================  ======================================
clause                                                      lake
==========================================================  ======================================
``ADD [COLUMN] c … [DEFAULT const]``, several, FIRST/AFTER  in place, existing rows get the value
``ADD`` with an expression default (``CURRENT_TIMESTAMP``,   resync
``NOW()``, ``UUID()``, ``(…)``), generated (STORED/VIRTUAL),
``AUTO_INCREMENT``, a TIMESTAMP, a literal needing rounding,
truncation or charset conversion
``MODIFY``/``CHANGE`` widening an integer or DECIMAL, FLOAT  in place if the checks hold, else resync
→ DOUBLE, text to longer text, ENUM with added labels, a
rename with the same type
``MODIFY``/``CHANGE`` to any other type, or generated        resync
``DROP``/``TRUNCATE``/``EXCHANGE``/``REORGANIZE``/``COALESCE``  resync (rows removed or moved without
``PARTITION``, ``CONVERT [PARTITION|TABLE]``,                 row events, or values converted)
``DISCARD``/``IMPORT`` tablespace, ``CONVERT TO CHARACTER
SET``, ``ADD SYSTEM VERSIONING``
``DROP``/``RENAME`` column, ``ALTER COLUMN … DEFAULT``,       in place (renames and drops:
indexes, constraints, ``ADD``/``REBUILD``/``ANALYZE``         :mod:`binlake.merge.ddlstep`)
partition, ``PARTITION BY``, table options
==========================================================  ======================================

Other statement kinds (CREATE, RENAME, TRUNCATE, DROP) have no impact here: the DDL step applies
them as before. Column names go through the transformation rules (``column_name``: source name →
lake name, ``None`` for a column the rules leave out — changes to it do not matter to the lake).
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from binlake import typemap
from binlake.merge.ddl import Token, _alter_body, _skip_if_exists, _skip_words, split_clauses, tokenize
from binlake.merge.ddlcolumns import ColumnDef, parse_column
from binlake.merge.ddldefaults import Underivable, existing_row_value
from binlake.merge.layout import normalize_spark_type
from binlake.merge.sql import quote, sql_string
from binlake.typemap import ColumnType

ColumnName = Callable[[str], str | None]

_ADD_NOT_COLUMN = frozenset({"INDEX", "KEY", "PRIMARY", "UNIQUE", "FULLTEXT", "SPATIAL", "CONSTRAINT", "FOREIGN",
                             "CHECK", "PARTITION", "PERIOD"})
_PARTITION_LOSES = {"DROP": "deletes the partition's rows", "TRUNCATE": "deletes the partition's rows",
                    "EXCHANGE": "swaps the partition's rows with another table's",
                    "REORGANIZE": "moves rows between partitions", "COALESCE": "moves rows between partitions",
                    "DISCARD": "discards the rows' tablespace", "IMPORT": "imports rows from a tablespace file"}
_INT_TYPES = frozenset({"tinyint", "smallint", "int", "bigint"})
_TEXT_BYTES = {"tinytext": 255, "text": 65535, "mediumtext": 16777215, "longtext": 4294967295,
               "tinyblob": 255, "blob": 65535, "mediumblob": 16777215, "longblob": 4294967295}


@dataclass(frozen=True)
class AddColumn:
    """A column the statement adds (lake name); ``value``: canonical text every existing row holds
    (None: NULL, or unknown when the statement needs a resync)."""

    name: str
    column_type: ColumnType
    value: str | None

    @property
    def spark_type(self) -> str:
        return normalize_spark_type(typemap.spark_type(self.column_type))

    def value_sql(self) -> str:
        """Spark SQL of the lake value (the same expression that decodes a change-log row)."""
        return typemap.spark_parse_sql(self.column_type, "NULL" if self.value is None else sql_string(self.value))


@dataclass(frozen=True)
class LakeCheck:
    """A condition on a lake column's values before the statement; ``violation_sql`` is a Spark SQL
    predicate that is true for a row breaking it (``rule`` says it in words)."""

    column: str
    rule: str
    violation_sql: str


@dataclass(frozen=True)
class DdlImpact:
    """See the module docstring. ``statement_changes`` lists the clauses that matter, for the log."""

    adds: tuple[AddColumn, ...] = ()
    checks: tuple[LakeCheck, ...] = ()
    resync: tuple[str, ...] = ()

    @property
    def in_place(self) -> bool:
        return not self.resync


@dataclass
class _Collector:
    lake: Mapping[str, str]
    column_name: ColumnName
    has_backslash: bool
    adds: list[AddColumn]
    checks: list[LakeCheck]
    resync: list[str]

    def lake_type(self, name: str) -> tuple[str, str] | None:
        for have, kind in self.lake.items():
            if have.lower() == name.lower():
                return have, normalize_spark_type(kind)
        return None


def ddl_impact(kind: str, sql: str, lake_columns: Mapping[str, str],
               column_name: ColumnName = lambda c: c) -> DdlImpact:
    """The impact of one DDL record (``kind`` as the change log records it) on a lake table whose
    source columns are ``lake_columns`` (lake name → Spark type, as before the statement)."""
    if kind.upper() != "ALTER":
        return DdlImpact()
    body = _alter_body(tokenize(sql))
    if body is None:
        return DdlImpact()
    out = _Collector(lake_columns, column_name, "\\" in sql, [], [], [])
    for clause in split_clauses(body):
        _clause(out, clause)
    return DdlImpact(tuple(out.adds), tuple(out.checks), tuple(dict.fromkeys(out.resync)))


def _clause(out: _Collector, clause: list[Token]) -> None:
    head = clause[0]
    second = clause[1] if len(clause) > 1 else None
    if head.kind != "word":
        return
    verb = head.text.upper()
    if verb in _PARTITION_LOSES and second is not None and second.is_word("PARTITION", "TABLESPACE"):
        out.resync.append(f"{verb} {second.text.upper()} {_PARTITION_LOSES[verb]} without row events")
    elif verb == "CONVERT":
        what = "converts every text column's character set" if second is not None and second.is_word("TO") \
            else "moves rows between a partition and a table without row events"
        out.resync.append(f"CONVERT {what}")
    elif verb == "ADD":
        _add(out, clause)
    elif verb == "MODIFY":
        i = _skip_if_exists(clause, _skip_words(clause, 1, "COLUMN"))
        column = _parsed(out, clause[i:], "MODIFY")
        if column is not None:
            _modify(out, column, column.name)
    elif verb == "CHANGE":
        i = _skip_if_exists(clause, _skip_words(clause, 1, "COLUMN"))
        if i < len(clause):
            column = _parsed(out, clause[i + 1:], "CHANGE")
            if column is not None:
                _modify(out, column, clause[i].text)


def _parsed(out: _Collector, tokens: list[Token], verb: str) -> ColumnDef | None:
    try:
        return parse_column(tokens)
    except ValueError as exc:
        out.resync.append(f"{verb}: column definition not understood ({exc})")
        return None


def _add(out: _Collector, clause: list[Token]) -> None:
    if len(clause) > 1 and clause[1].is_word(*_ADD_NOT_COLUMN):
        return
    if len(clause) > 2 and clause[1].is_word("SYSTEM") and clause[2].is_word("VERSIONING"):
        out.resync.append("ADD SYSTEM VERSIONING adds row_start/row_end values the server sets")
        return
    i = _skip_words(clause, 1, "COLUMN")
    if_not_exists = i + 2 < len(clause) and clause[i].is_word("IF") and clause[i + 1].is_word("NOT")
    if if_not_exists:
        i += 3
    if i < len(clause) and clause[i].kind == "punct" and clause[i].text == "(":
        definitions = split_clauses(clause[i + 1:-1])
    else:
        definitions = [clause[i:]]
    for tokens in definitions:
        column = _parsed(out, tokens, "ADD")
        if column is not None:
            _add_column(out, column, if_not_exists)


def _add_column(out: _Collector, column: ColumnDef, if_not_exists: bool) -> None:
    name = out.column_name(column.name)
    if name is None:
        return
    try:
        ct = column.column_type()
    except ValueError as exc:
        out.resync.append(f"ADD COLUMN {column.name}: type not understood ({exc})")
        return
    if if_not_exists and out.lake_type(name) is not None:
        out.resync.append(f"ADD COLUMN IF NOT EXISTS {column.name}: the lake cannot tell whether the source "
                          "already had the column")
        return
    try:
        value = existing_row_value(column, out.has_backslash)
    except Underivable as exc:
        out.resync.append(f"ADD COLUMN {exc}")
        value = None
    out.adds.append(AddColumn(name, ct, value))


def _modify(out: _Collector, column: ColumnDef, old_source_name: str) -> None:
    name = out.column_name(old_source_name)
    found = out.lake_type(name) if name is not None else None
    if found is None:
        return  # not in the lake: no stored value to convert
    lake_name, old = found
    verb = f"MODIFY {old_source_name}"
    if column.generated:
        out.resync.append(f"{verb}: becomes a generated column (the server computes its values)")
        return
    try:
        ct = column.column_type()
    except ValueError as exc:
        out.resync.append(f"{verb}: type not understood ({exc})")
        return
    c = quote(lake_name)
    if column.not_null or column.auto_increment:
        out.checks.append(LakeCheck(lake_name, "no NULL (NOT NULL turns NULL into the type's implicit default)",
                                    f"{c} IS NULL"))
    if column.auto_increment:
        out.checks.append(LakeCheck(lake_name, "no 0 (AUTO_INCREMENT renumbers 0)", f"{c} = 0"))
    problem = _conversion_checks(out, lake_name, old, column, ct)
    if problem is not None:
        out.resync.append(f"{verb}: {problem}")


def _lake_int_range(spark: str) -> tuple[decimal.Decimal, decimal.Decimal]:
    """The values a lake integer or DECIMAL type can hold (bounds inclusive; DECIMAL: its integer part)."""
    bits = {"tinyint": 8, "smallint": 16, "int": 32, "bigint": 64}.get(spark)
    if bits is not None:
        return -decimal.Decimal(2) ** (bits - 1), decimal.Decimal(2) ** (bits - 1) - 1
    precision, scale = (int(n) for n in spark[len("decimal("):-1].split(","))
    high = decimal.Decimal(10) ** (precision - scale)
    return -high, high


def _number(text: str) -> str:
    return f"CAST({sql_string(text)} AS DECIMAL(38,0))"


def _conversion_checks(out: _Collector, name: str, old: str, column: ColumnDef, ct: ColumnType) -> str | None:
    """Add the checks under which converting lake type ``old`` to ``ct`` keeps every value; or say why
    binlake does not prove it."""
    c = quote(name)
    new = normalize_spark_type(typemap.spark_type(ct))
    base = ct.base
    old_int = old in _INT_TYPES or (old.startswith("decimal(") and old.endswith(",0)"))
    converts = f"converts {old} values to {ct.spec}"
    if base in typemap.INTEGER_TYPES:
        if not old_int:
            return converts
        bits = {"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "bigint": 64}[base]
        low, high = (0, 2 ** bits - 1) if ct.unsigned else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        old_low, old_high = _lake_int_range(old)
        if low <= old_low and old_high <= high:
            return None  # a widening: every value the lake type holds fits
        out.checks.append(LakeCheck(name, f"values in [{low}, {high}]",
                                    f"({c} < {_number(str(low))} OR {c} > {_number(str(high))})"))
        return None
    if base == "decimal" and new.startswith("decimal("):
        assert ct.precision is not None and ct.scale is not None
        old_scale = int(old[:-1].split(",")[1]) if old.startswith("decimal(") else 0
        if not (old_int or old.startswith("decimal(")) or old_scale > ct.scale:
            return converts
        bound = decimal.Decimal(10) ** (ct.precision - ct.scale)
        old_low, old_high = _lake_int_range(old)
        if -bound < old_low and old_high < bound:
            return None  # a widening: every value the lake type holds fits
        out.checks.append(LakeCheck(name, f"|values| < {bound}", f"abs({c}) >= {_number(str(bound))}"))
        return None
    if base in ("float", "double"):
        if column.type_args or not (old == new or (old, new) == ("float", "double")):
            return converts
        return None
    if base in typemap.CHAR_TYPES:
        if old != "string" or column.charset == "binary":
            return converts
        limit = column.length if column.length is not None else _TEXT_BYTES[base] // 4
        out.checks.append(LakeCheck(name, f"ASCII text of at most {limit} characters",
                                    f"(octet_length({c}) <> char_length({c}) OR char_length({c}) > {limit})"))
        if base == "char":
            out.checks.append(LakeCheck(name, "no trailing space (CHAR drops it)", f"{c} LIKE '% '"))
        return None
    if base == "enum":
        if old != "string":
            return converts
        labels = ", ".join(sql_string(v) for v in ct.values)
        out.checks.append(LakeCheck(name, "values among the new labels", f"{c} NOT IN ({labels})"))
        return None
    if base in ("varbinary", "tinyblob", "blob", "mediumblob", "longblob"):
        if old != "binary":
            return converts
        limit = column.length if column.length is not None else _TEXT_BYTES[base]
        out.checks.append(LakeCheck(name, f"at most {limit} bytes", f"octet_length({c}) > {limit}"))
        return None
    if base == "date" and old == "date":
        return None
    return f"{converts} (binlake does not prove this conversion exact)"
