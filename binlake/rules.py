"""AWS DMS table-mapping rules: which source tables are replicated, and under which names.

binlake reads the same JSON that a DMS task's ``TableMappings`` holds, so a mapping can move over
unchanged::

    {"rules": [
      {"rule-type": "selection", "rule-id": "1", "rule-name": "shop",
       "object-locator": {"schema-name": "shop", "table-name": "%"}, "rule-action": "include"},
      {"rule-type": "transformation", "rule-id": "2", "rule-name": "lower",
       "rule-target": "table", "object-locator": {"schema-name": "shop", "table-name": "%"},
       "rule-action": "convert-lowercase"}
    ]}

Semantics (as in DMS):

* Wildcards, in the schema, table and column locators of ``include``/``exclude`` selection rules
  and of transformation rules, exactly as the DMS documentation ("Wildcards in table mapping")
  defines them: ``%`` zero or more characters, ``_`` a single character, ``[_]`` a literal
  underscore, ``[ab]`` a set of characters (``a`` or ``b``), ``[a-d]`` a range (``a``, ``b``, ``c``
  or ``d``). Every other character stands for itself. So a locator ``my_table`` also matches
  ``myXtable`` (as in DMS); write ``my[_]table`` for the underscore alone. A set cannot be empty
  or unclosed, and ``[^…]``/``[!…]`` (negation, not in the DMS documentation) are refused. There
  is no escape character (DMS offers ``escapeCharacter`` for Oracle endpoints only): ``[_]``,
  ``[%]``, ``[[]`` stand for the character itself. An
  ``explicit`` rule names one table: its names are compared literally and ``%`` is refused.
  Names are compared case-sensitively, as DMS does (and MySQL on Linux).
* Selection: a table is selected when at least one ``include``/``explicit`` rule matches it and no
  ``exclude`` rule does.
* Transformation: rules whose locator matches the *source* names apply in ascending ``rule-id``
  order, each to the result of the previous one. Targets ``schema``, ``table`` and ``column``;
  actions ``rename`` (``value``), ``remove-column``, ``add-prefix``/``remove-prefix``/
  ``replace-prefix`` (``value``, ``old-value``), ``add-suffix``/``remove-suffix``/
  ``replace-suffix``, ``convert-lowercase``, ``convert-uppercase``.
* Source filters: an ``include`` rule's ``filters`` (:mod:`binlake.rowfilter`: ``eq``, ``noteq``,
  ``lte``/``ste``, ``gte``, ``between``, ``notbetween``, ``null``, ``notnull``; OR within a filter,
  AND between filters) become the :attr:`TableTarget.row_filter` of every table the rule selects.
  A table selected by a filtered rule and by another include rule is refused (which rows would it
  hold?), as are filters on ``exclude``/``explicit`` rules (DMS applies them to ``include`` only).
* ``add-column`` (:mod:`binlake.addcolumn`: constants, ``$AR_H_COMMIT_TIMESTAMP``,
  ``$AR_H_OPERATION``) adds :attr:`TableTarget.added_columns` to every table its locator matches,
  in ``rule-id`` order; other expressions are refused by name.
* Online schema change helper tables (:mod:`binlake.osc`): a table that gh-ost or
  pt-online-schema-change names as the helper of a table the rules select (``_t_gho``, ``_t_del``,
  ``_t_new``, ``_t_old`` of ``t``) is selected with it, unless an ``exclude`` rule matches the
  helper's own name — whatever the rules say of that name otherwise. It gets the table's treatment,
  not its own: the target schema of ``t``, the target table ``prefix + target of t + suffix``
  (``_t_gho`` → ``_<target of t>_gho``), and the column rules, row filter and ``add-column`` columns
  of ``t`` (:attr:`TableTarget.helper`). So its lake rows are what lake ``t``'s rows must be, and the
  merge applies the tool's ``RENAME`` swap in the lake (:mod:`binlake.merge.swaps`). gh-ost's
  changelog ``_t_ghc`` (its heartbeat and state rows, no row of ``t``) is not selected. A helper of
  a helper is not (the table must be selected by the rules under its own name).
* ``table-settings`` rules (DMS load tuning) are accepted and ignored. Anything else —
  ``change-data-type``, other rule actions and rule types — is refused with a :class:`RuleError`
  naming the rule and the part, because silently ignoring it would replicate something the user
  did not ask for.

This module is pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from binlake.addcolumn import AddColumnError, AddedColumn, parse_add_column
from binlake.osc import Helper, readings
from binlake.rowfilter import FilterError, RowFilter
from binlake.wildcards import LocatorError, check_locator, matches


class RuleError(ValueError):
    """A table mapping that cannot be used; the message names the rule and what is wrong."""


_SELECTION_ACTIONS = {"include", "exclude", "explicit"}
_TARGETS = {"schema", "table", "column"}


def _rename_action(action: str, rule: Mapping[str, Any], where: str) -> Callable[[str], str | None]:
    value = rule.get("value")
    old = rule.get("old-value")

    def need(name: str, v: Any) -> str:
        if not isinstance(v, str):
            raise RuleError(f"{where}: rule-action {action!r} needs a string {name!r}")
        return v

    if action == "rename":
        new = need("value", value)
        return lambda _name: new
    if action == "convert-lowercase":
        return str.lower
    if action == "convert-uppercase":
        return str.upper
    if action == "add-prefix":
        prefix = need("value", value)
        return lambda name: prefix + name
    if action == "add-suffix":
        suffix = need("value", value)
        return lambda name: name + suffix
    if action == "remove-prefix":
        prefix = need("value", value)
        return lambda name: name[len(prefix):] if name.startswith(prefix) else name
    if action == "remove-suffix":
        suffix = need("value", value)
        return lambda name: name[: -len(suffix)] if suffix and name.endswith(suffix) else name
    if action == "replace-prefix":
        old_prefix, new_prefix = need("old-value", old), need("value", value)
        return lambda name: new_prefix + name[len(old_prefix):] if name.startswith(old_prefix) else name
    if action == "replace-suffix":
        old_suffix, new_suffix = need("old-value", old), need("value", value)
        return (
            lambda name: name[: -len(old_suffix)] + new_suffix
            if old_suffix and name.endswith(old_suffix)
            else name
        )
    if action == "remove-column":
        return lambda _name: None
    raise RuleError(f"{where}: rule-action {action!r} is not supported")


@dataclass(frozen=True)
class SelectionRule:
    rule_id: int
    schema: str
    table: str
    action: str
    row_filter: RowFilter | None = None

    def matches_schema(self, schema: str) -> bool:
        return self.schema == schema if self.action == "explicit" else matches(self.schema, schema)

    def matches(self, schema: str, table: str) -> bool:
        if self.action == "explicit":
            return (self.schema, self.table) == (schema, table)
        return matches(self.schema, schema) and matches(self.table, table)


@dataclass(frozen=True)
class TransformationRule:
    rule_id: int
    target: str
    schema: str
    table: str
    column: str
    action: str
    apply: Callable[[str], str | None] = field(compare=False, repr=False)

    def matches(self, schema: str, table: str = "", column: str = "") -> bool:
        if not matches(self.schema, schema):
            return False
        if self.target == "schema":
            return True
        if not matches(self.table, table):
            return False
        return self.target == "table" or matches(self.column, column)


@dataclass(frozen=True)
class TableTarget:
    """Where one selected source table goes, and how its columns are named there."""

    source_schema: str
    source_table: str
    schema: str
    table: str
    column_rules: tuple[TransformationRule, ...] = field(default=(), repr=False)
    row_filter: RowFilter | None = None
    """The rows replicated (``None``: all); source column names (see :mod:`binlake.rowfilter`)."""
    added_columns: tuple[AddedColumn, ...] = ()
    """Lake columns of ``add-column`` rules, after the source columns (see :mod:`binlake.addcolumn`)."""
    helper: Helper | None = None
    """Set for an online schema change helper table selected with its table (``helper.base``): the
    rules above are that table's (module docstring)."""

    @property
    def rules_table(self) -> str:
        """The source table name the rules were evaluated for: the helper's table, or this one."""
        return self.helper.base if self.helper is not None else self.source_table

    def column_name(self, source_column: str) -> str | None:
        """The target name of a source column, or ``None`` when a rule removes it."""
        name: str | None = source_column
        for rule in self.column_rules:
            if rule.matches(self.source_schema, self.rules_table, source_column):
                assert name is not None
                name = rule.apply(name)
                if name is None:
                    return None
        return name

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"


def _rule_id(rule: Mapping[str, Any], index: int) -> int:
    raw = rule.get("rule-id", index + 1)
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise RuleError(f"rules[{index}]: rule-id {raw!r} must be a number") from None


def _locator(rule: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    locator = rule.get("object-locator")
    if not isinstance(locator, Mapping):
        raise RuleError(f"{where}: object-locator is missing")
    value = locator.get(key, default)
    if not isinstance(value, str) or not value:
        raise RuleError(f"{where}: object-locator.{key} is missing")
    try:
        check_locator(value)
    except LocatorError as exc:
        raise RuleError(f"{where}: object-locator.{key}: {exc}") from None
    return value


def _literal(rule: Mapping[str, Any], key: str, where: str) -> str:
    locator = rule.get("object-locator")
    value = locator.get(key) if isinstance(locator, Mapping) else None
    if not isinstance(value, str) or not value:
        raise RuleError(f"{where}: object-locator.{key} is missing")
    return value


def _parse_selection(rule: Mapping[str, Any], rule_id: int, where: str) -> SelectionRule:
    action = rule.get("rule-action")
    if action not in _SELECTION_ACTIONS:
        raise RuleError(f"{where}: selection rule-action must be one of {sorted(_SELECTION_ACTIONS)}, got {action!r}")
    row_filter = None
    if rule.get("filters") not in (None, []):  # DMS: a selection rule may have no filters
        if action != "include":
            raise RuleError(f"{where}: filters apply to rule-action 'include' only (as in DMS), not {action!r}")
        try:
            row_filter = RowFilter.parse(rule["filters"], where)
        except FilterError as exc:
            raise RuleError(str(exc)) from None
    if action == "explicit":  # literal names: no wildcard syntax to check
        schema, table = _literal(rule, "schema-name", where), _literal(rule, "table-name", where)
        if "%" in schema or "%" in table:
            raise RuleError(f"{where}: an explicit selection rule names one table and cannot use % wildcards")
    else:
        schema, table = _locator(rule, "schema-name", where), _locator(rule, "table-name", where)
    return SelectionRule(rule_id, schema, table, action, row_filter)


def _parse_transformation(rule: Mapping[str, Any], rule_id: int, where: str) -> TransformationRule:
    target = rule.get("rule-target")
    if target not in _TARGETS:
        raise RuleError(f"{where}: rule-target must be one of {sorted(_TARGETS)}, got {target!r}")
    action = str(rule.get("rule-action"))
    if action == "remove-column" and target != "column":
        raise RuleError(f"{where}: remove-column needs rule-target 'column'")
    apply = _rename_action(action, rule, where)
    schema = _locator(rule, "schema-name", where)
    table = _locator(rule, "table-name", where, "%") if target != "schema" else "%"
    column = _locator(rule, "column-name", where) if target == "column" else "%"
    return TransformationRule(rule_id, target, schema, table, column, action, apply)


@dataclass(frozen=True)
class AddColumnRule:
    """An ``add-column`` rule: the tables it applies to (wildcard locators) and the column."""

    schema: str
    table: str
    column: AddedColumn

    def matches(self, schema: str, table: str) -> bool:
        return matches(self.schema, schema) and matches(self.table, table)


def _parse_add_column(rule: Mapping[str, Any], rule_id: int, where: str) -> AddColumnRule:
    try:
        column = parse_add_column(rule, rule_id, where)
    except AddColumnError as exc:
        raise RuleError(str(exc)) from None
    return AddColumnRule(_locator(rule, "schema-name", where), _locator(rule, "table-name", where, "%"), column)


@dataclass(frozen=True)
class TableMapping:
    """A parsed DMS table mapping. Build with :meth:`parse`."""

    selections: tuple[SelectionRule, ...]
    transformations: tuple[TransformationRule, ...]
    additions: tuple[AddColumnRule, ...] = ()

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> TableMapping:
        """Parse ``{"rules": [...]}``; raises :class:`RuleError` naming the offending rule."""
        rules = data.get("rules") if isinstance(data, Mapping) else None
        if not isinstance(rules, list):
            raise RuleError("expected an object with a 'rules' list")
        selections: list[SelectionRule] = []
        transformations: list[TransformationRule] = []
        additions: list[AddColumnRule] = []
        for index, rule in enumerate(rules):
            if not isinstance(rule, Mapping):
                raise RuleError(f"rules[{index}]: expected an object")
            rule_id = _rule_id(rule, index)
            where = f"rule {rule.get('rule-name', rule_id)!r} (rules[{index}])"
            kind = rule.get("rule-type")
            if kind == "selection":
                selections.append(_parse_selection(rule, rule_id, where))
            elif kind == "transformation" and rule.get("rule-action") == "add-column":
                additions.append(_parse_add_column(rule, rule_id, where))
            elif kind == "transformation":
                transformations.append(_parse_transformation(rule, rule_id, where))
            elif kind != "table-settings":
                raise RuleError(f"{where}: rule-type {kind!r} is not supported")
        if not any(rule.action != "exclude" for rule in selections):
            raise RuleError("no selection rule includes any table: add a rule with rule-action 'include'")
        transformations.sort(key=lambda rule: rule.rule_id)
        return cls(tuple(sorted(selections, key=lambda r: r.rule_id)), tuple(transformations),
                   tuple(sorted(additions, key=lambda r: r.column.rule_id)))

    def is_selected(self, schema: str, table: str) -> bool:
        """Is ``schema.table`` replicated: selected by the rules, or a helper of such a table (module
        docstring)? The same answer as ``target_for(schema, table) is not None``."""
        return self.target_for(schema, table) is not None

    def _selected_by_rules(self, schema: str, table: str) -> bool:
        hits = [rule for rule in self.selections if rule.matches(schema, table)]
        return bool(hits) and all(rule.action != "exclude" for rule in hits)

    def _excluded(self, schema: str, table: str) -> bool:
        return any(rule.action == "exclude" and rule.matches(schema, table) for rule in self.selections)

    def row_filter(self, schema: str, table: str) -> RowFilter | None:
        """The source filter of a selected table (``None``: every row); :class:`RuleError` when a
        filtered rule and another include rule both select it."""
        hits = [rule for rule in self.selections if rule.action != "exclude" and rule.matches(schema, table)]
        filtered = [rule for rule in hits if rule.row_filter is not None]
        if filtered and len(hits) > 1:
            names = ", ".join(f"rule-id {rule.rule_id}" for rule in hits)
            raise RuleError(f"{schema}.{table} is selected by several include rules ({names}) and at least one has "
                            "filters: which rows to replicate is ambiguous; select a filtered table with one rule")
        return filtered[0].row_filter if filtered else None

    def added_columns(self, schema: str, table: str) -> tuple[AddedColumn, ...]:
        """The ``add-column`` columns of a table, in rule-id order; :class:`RuleError` for two of one name."""
        added = tuple(rule.column for rule in self.additions if rule.matches(schema, table))
        names = [c.name.lower() for c in added]
        if len(set(names)) < len(names):
            raise RuleError(f"{schema}.{table}: several add-column rules add a column named "
                            f"{sorted({n for n in names if names.count(n) > 1})}")
        return added

    def schema_may_match(self, schema: str) -> bool:
        """Cheap pre-filter: could any table of ``schema`` be selected?"""
        return any(r.action != "exclude" and r.matches_schema(schema) for r in self.selections)

    def _renamed(self, target: str, name: str, schema: str, table: str = "") -> str:
        for rule in self.transformations:
            if rule.target == target and rule.matches(schema, table):
                renamed = rule.apply(name)
                assert renamed is not None
                name = renamed
        return name

    def target_for(self, schema: str, table: str) -> TableTarget | None:
        """The target of source table ``schema.table``, or ``None`` when it is not selected. The one
        selection function: the full load, the capture, the merge and validation all ask it."""
        for helper in readings(table):
            base = self._own_target(schema, helper.base)
            if base is not None:
                if not helper.carries_rows or self._excluded(schema, table):
                    return None
                return replace(base, source_table=table, table=helper.name_for(base.table), helper=helper)
        return self._own_target(schema, table)

    def _own_target(self, schema: str, table: str) -> TableTarget | None:
        """The target the rules give ``schema.table`` under its own name (no helper reading)."""
        if not self._selected_by_rules(schema, table):
            return None
        column_rules = tuple(
            rule
            for rule in self.transformations
            if rule.target == "column" and matches(rule.schema, schema) and matches(rule.table, table)
        )
        return TableTarget(
            source_schema=schema,
            source_table=table,
            schema=self._renamed("schema", schema, schema),
            table=self._renamed("table", table, schema, table),
            column_rules=column_rules,
            row_filter=self.row_filter(schema, table),
            added_columns=self.added_columns(schema, table),
        )
