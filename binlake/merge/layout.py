"""Row layouts from the change log and how a Delta table's columns must change to match one (pure).

Every change-log record carries ``columns``: the JSON list ``[{"name", "type", "pk"}]`` of the
table's layout valid for that row (target names, typemap specs). :class:`Layout` is that list;
:func:`plan_evolution` compares it with the columns a lake table has now and says which renames,
drops, additions and type changes make the table match — applied by :mod:`binlake.merge.schema`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from binlake import typemap

LSN_COLUMN = "_binlake_lsn"
COMMIT_TS_COLUMN = "_binlake_commit_ts"
VALID_FROM_COLUMN = "_binlake_valid_from"
VALID_TO_COLUMN = "_binlake_valid_to"
IS_CURRENT_COLUMN = "_binlake_is_current"
METADATA_COLUMNS = (LSN_COLUMN, COMMIT_TS_COLUMN)
SCD2_COLUMNS = (VALID_FROM_COLUMN, VALID_TO_COLUMN, IS_CURRENT_COLUMN)


def is_metadata_column(name: str) -> bool:
    """Columns binlake adds to lake tables (never part of a source layout)."""
    return name.startswith("_binlake_")


@dataclass(frozen=True)
class LayoutColumn:
    """One source column: target name, typemap spec, whether it is part of the primary key."""

    name: str
    type_spec: str
    pk: bool = False

    @property
    def column_type(self) -> typemap.ColumnType:
        return _column_type(self.type_spec)

    @property
    def spark_type(self) -> str:
        return normalize_spark_type(typemap.spark_type(self.column_type))


@lru_cache(maxsize=4096)
def _column_type(spec: str) -> typemap.ColumnType:
    return typemap.ColumnType.parse(spec)


@dataclass(frozen=True)
class Layout:
    """The ordered columns of a table at one point of the binlog."""

    columns: tuple[LayoutColumn, ...]

    @classmethod
    def parse(cls, text: str) -> Layout:
        """Parse the ``columns`` JSON of a change-log record; ``ValueError`` naming what is wrong."""
        return _parse_layout(text)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The primary key; a table without one is keyed by all its columns (documented policy)."""
        pk = tuple(column.name for column in self.columns if column.pk)
        return pk or self.names

    @property
    def has_primary_key(self) -> bool:
        return any(column.pk for column in self.columns)

    def column(self, name: str) -> LayoutColumn | None:
        for column in self.columns:
            if column.name == name:
                return column
        return None


@lru_cache(maxsize=1024)
def _parse_layout(text: str) -> Layout:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"columns is not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise ValueError("columns must be a JSON list")
    columns = []
    for index, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not isinstance(item.get("type"), str):
            raise ValueError(f"columns[{index}] must be an object with string 'name' and 'type'")
        columns.append(LayoutColumn(item["name"], item["type"], bool(item.get("pk", False))))
    return Layout(tuple(columns))


_ALIASES = {"integer": "int", "long": "bigint", "short": "smallint", "byte": "tinyint", "bool": "boolean",
            "real": "float", "timestamp_ltz": "timestamp"}
_DECIMAL = re.compile(r"^(?:decimal|dec|numeric)(?:\((\d+)(?:,(\d+))?\))?$")


def normalize_spark_type(text: str) -> str:
    """One spelling per Spark type, as ``DataType.simpleString()`` writes it: ``long`` → ``bigint``."""
    flat = re.sub(r"\s+", "", text.lower())
    match = _DECIMAL.match(flat)
    if match:
        return f"decimal({match.group(1) or 10},{match.group(2) or 0})"
    base = flat.split("(", 1)[0]
    if base in ("char", "varchar"):
        return "string"
    return _ALIASES.get(flat, flat)


@dataclass(frozen=True)
class Evolution:
    """Steps that make a table's source columns equal a layout, in the order they must run."""

    renames: tuple[tuple[str, str], ...] = ()
    drops: tuple[str, ...] = ()
    adds: tuple[tuple[str, str], ...] = ()  # (name, spark type)
    retypes: tuple[tuple[str, str, str], ...] = ()  # (name, old spark type, new spark type)

    @property
    def empty(self) -> bool:
        return not (self.renames or self.drops or self.adds or self.retypes)


def plan_renames(table_columns: Sequence[str], renames: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The renames still to do: ``old`` present and ``new`` absent (so a replay does nothing)."""
    present = {name.lower(): name for name in table_columns}
    done: list[tuple[str, str]] = []
    for old, new in renames:
        if old.lower() in present and new.lower() not in present:
            done.append((present.pop(old.lower()), new))
            present[new.lower()] = new
    return tuple(done)


def plan_evolution(table: Mapping[str, str], layout: Layout) -> Evolution:
    """Drops, additions and type changes that turn ``table`` ({name: spark type}, source columns
    only) into ``layout``. Names compare case-insensitively, as Spark and MySQL do."""
    wanted = {column.name.lower(): column for column in layout.columns}
    have = {name.lower(): (name, normalize_spark_type(kind)) for name, kind in table.items()}
    drops = tuple(name for key, (name, _) in have.items() if key not in wanted)
    adds = tuple((c.name, c.spark_type) for key, c in wanted.items() if key not in have)
    retypes = tuple(
        (have[key][0], have[key][1], c.spark_type)
        for key, c in wanted.items()
        if key in have and have[key][1] != c.spark_type
    )
    return Evolution((), drops, adds, retypes)


def layouts_union(layouts: Sequence[Layout]) -> tuple[list[LayoutColumn], set[str]]:
    """Columns of all ``layouts`` (the later layout's type wins) and the names missing from some."""
    merged: dict[str, LayoutColumn] = {}
    for layout in layouts:
        for column in layout.columns:
            merged[column.name] = column
    optional = {name for name in merged if any(layout.column(name) is None for layout in layouts)}
    return list(merged.values()), optional

