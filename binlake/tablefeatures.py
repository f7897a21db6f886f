"""Which Delta table features a lake table gets, and how its columns may change later (pure).

Every Delta table binlake creates takes its properties from here: the lake tables (full load,
tables born in the stream, resync chunks) from :meth:`TableFeatures.new_table_properties`, binlake's
own tables under ``_binlake/`` (tombstones) from :data:`INTERNAL_TABLE_PROPERTIES`.

``lake.reader_compatibility`` chooses between two sets:

``broad`` (default)
    Only what exactness needs: the change data feed (a *writer* feature: no reader has to know it;
    the full load reads it to recover a crashed chunk), ``timestampNtz`` when a column is a
    DATETIME (Delta adds it by itself; delta-rs and polars read it). No deletion vectors, no
    column mapping, no type widening: delta-rs's ``to_pyarrow_table()``/``to_pandas()`` and polars's
    ``read_delta``/``scan_delta`` read the table. MERGEs rewrite whole data files instead of writing
    small deletion vectors.

    Without column mapping Delta cannot rename or drop a column in place, nor change a type
    without type widening (a reader feature delta-rs and polars refuse). ``lake.on_column_rename``
    says what a rename, drop or type change of such a table does:

    * ``rewrite`` (default): the table is rewritten with its new columns in one commit
      (:mod:`binlake.merge.reshape`; cost proportional to the table's size); every reader keeps
      reading it.
    * ``column_mapping``: column mapping is turned on for that table at that moment (cheap), with a
      WARNING naming the readers that stop reading it (:data:`READERS_WITHOUT_COLUMN_MAPPING`).

    A column name Delta refuses without column mapping (one holding any of ``" ,;{}()\\n\\t="``)
    turns column mapping on for its table, at creation or when the column arrives, with the same
    warning: no rewrite can keep such a name.

``modern``
    Deletion vectors and column mapping from the start (fastest MERGEs; renames and drops in place;
    type changes by type widening). Read by Spark and delta-rs's DataFusion reader
    (``QueryBuilder``), not by delta-rs's pyarrow path nor by polars.

A table keeps the features it was created with: changing the setting never downgrades (Delta
cannot remove column mapping) nor upgrades an existing table. What a table has is read from its own
properties (:meth:`TableFeatures.column_change`), so a lake made by an older binlake (every table
with deletion vectors and column mapping) goes on as before: renames and drops in place (in ``broad``
mode a type change of such a table rewrites the column rather than turning type widening on).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from binlake.config import LakeConfig

DELETION_VECTORS = "delta.enableDeletionVectors"
CHANGE_DATA_FEED = "delta.enableChangeDataFeed"
COLUMN_MAPPING = "delta.columnMapping.mode"
TYPE_WIDENING = "delta.enableTypeWidening"
TIMESTAMP_NTZ_FEATURE = "delta.feature.timestampNtz"

COLUMN_MAPPING_PROPERTIES: Mapping[str, str] = {COLUMN_MAPPING: "name", TIMESTAMP_NTZ_FEATURE: "supported"}
"""How column mapping is turned on in ``broad`` mode (at creation or later). Alone, Delta 4.4 gives
such a table the legacy protocol ``(reader 2, writer 7)``, which names no reader feature — and
delta-rs 1.6's ``to_pyarrow_table()``/``to_pandas()`` then read it *without* the mapping and return
NULL for every column whose physical name differs (checked: all of them in a table created so,
the renamed one after a rename), without an error. Marking ``timestampNtz`` supported (a reader
feature delta-rs and polars know; the table need not have such a column) moves the table to the
table-features protocol (reader 3), whose reader features list ``columnMapping``: those readers
then refuse the table, naming it. (``modern`` tables have deletion vectors, a reader feature too.)"""

INVALID_WITHOUT_COLUMN_MAPPING = " ,;{}()\n\t="
READERS_WITHOUT_COLUMN_MAPPING = (
    "delta-rs DeltaTable.to_pyarrow_table()/to_pandas()/to_pyarrow_dataset(), polars read_delta/scan_delta "
    "(Spark and delta-rs QueryBuilder still read it)")

INTERNAL_TABLE_PROPERTIES: Mapping[str, str] = {DELETION_VECTORS: "true", COLUMN_MAPPING: "name"}
"""binlake's own tables (``_binlake/tombstones``) whose column names Delta accepts only with column
mapping (:func:`internal_table_properties`)."""


def internal_table_properties(column_names: Sequence[str]) -> Mapping[str, str]:
    """Properties of one of binlake's own tables (``_binlake/tombstones``) with these columns: none
    — the plain protocol delta-rs also writes, so the driver-side merge
    (:mod:`binlake.merge.smallparts`) appends tombstones without Spark — unless a name needs column
    mapping (:data:`INVALID_WITHOUT_COLUMN_MAPPING`): then :data:`INTERNAL_TABLE_PROPERTIES`."""
    if any(ch in name for name in column_names for ch in INVALID_WITHOUT_COLUMN_MAPPING):
        return INTERNAL_TABLE_PROPERTIES
    return {}


class ReaderCompatibility(enum.StrEnum):
    """``lake.reader_compatibility``: the features new lake tables get (module docstring)."""

    BROAD = "broad"
    MODERN = "modern"


class ColumnChange(enum.StrEnum):
    """``lake.on_column_rename``: how a table without column mapping renames or drops a column."""

    REWRITE = "rewrite"
    COLUMN_MAPPING = "column_mapping"


class Way(enum.StrEnum):
    """How one table applies a rename, drop or type change (:meth:`TableFeatures.column_change`)."""

    ALTER = "alter"  # in place: the table has column mapping
    REWRITE = "rewrite"  # the table rewritten in one commit
    ENABLE_MAPPING = "enable_mapping"  # column mapping turned on first (warning), then in place


def change_data_feed_blockers(names: Sequence[str]) -> list[str]:
    """Column names that rule out Delta's change data feed on a table binlake merges into.

    Delta 4.4's MERGE on a table with the change data feed on builds an internal attribute name
    (``packedCdc.<column>``) without escaping a back-quote in the column name, and fails with
    ``INVALID_ATTRIBUTE_NAME_SYNTAX``. Such tables are replicated exactly with the feed off (a DMS
    rename rule for the column keeps it on).
    """
    return sorted(name for name in names if "`" in name)


def needs_column_mapping(names: Iterable[str]) -> list[str]:
    """The names Delta refuses in a table without column mapping, sorted."""
    return sorted(name for name in names if any(ch in INVALID_WITHOUT_COLUMN_MAPPING for ch in name))


def has_column_mapping(properties: Mapping[str, str]) -> bool:
    """Whether a table with these properties has column mapping (``name`` or ``id``)."""
    return properties.get(COLUMN_MAPPING, "none").lower() in ("name", "id")


def column_mapping_warning(table: str, reason: str) -> str:
    """The WARNING logged when column mapping is turned on for ``table``."""
    return (f"{table}: turning on Delta column mapping ({reason}); from this version on these readers cannot "
            f"read the table: {READERS_WITHOUT_COLUMN_MAPPING}")


@dataclass(frozen=True)
class TableFeatures:
    """The ``lake.reader_compatibility`` / ``lake.on_column_rename`` choice (module docstring)."""

    reader_compatibility: ReaderCompatibility = ReaderCompatibility.BROAD
    on_column_rename: ColumnChange = ColumnChange.REWRITE

    @classmethod
    def of(cls, lake: LakeConfig) -> TableFeatures:
        """The choice of a pipeline's ``lake`` section."""
        return cls(lake.reader_compatibility, lake.on_column_rename)

    def new_table_properties(self, column_names: Sequence[str]) -> dict[str, str]:
        """Properties of a new lake table with these columns (Delta adds ``timestampNtz`` by itself).

        >>> TableFeatures().new_table_properties(["id", "name"])
        {'delta.enableChangeDataFeed': 'true'}
        >>> TableFeatures().new_table_properties(["id", "first name"])["delta.columnMapping.mode"]
        'name'
        """
        properties = {CHANGE_DATA_FEED: "false" if change_data_feed_blockers(column_names) else "true"}
        if self.reader_compatibility is ReaderCompatibility.MODERN:
            properties[DELETION_VECTORS] = "true"
        if self.reader_compatibility is ReaderCompatibility.MODERN:
            properties[COLUMN_MAPPING] = "name"
        elif needs_column_mapping(column_names):
            properties.update(COLUMN_MAPPING_PROPERTIES)
        return properties

    def column_change(self, properties: Mapping[str, str], new_names: Iterable[str] = ()) -> Way:
        """How a table with ``properties`` renames/drops/retypes columns; ``new_names``: the names it
        will have (a name Delta refuses without column mapping forces :attr:`Way.ENABLE_MAPPING`)."""
        if has_column_mapping(properties):
            return Way.ALTER
        if needs_column_mapping(new_names) or self.on_column_rename is ColumnChange.COLUMN_MAPPING:
            return Way.ENABLE_MAPPING
        return Way.REWRITE

    def may_widen_types(self, properties: Mapping[str, str]) -> bool:
        """Whether a type change may use Delta type widening (a reader feature delta-rs and polars
        refuse) on a table with ``properties``: when it has it already, or in ``modern`` mode on a table
        with column mapping (a table created ``broad`` stays readable by them after a switch)."""
        return properties.get(TYPE_WIDENING, "false").lower() == "true" or (
            self.reader_compatibility is ReaderCompatibility.MODERN and has_column_mapping(properties))


DEFAULT = TableFeatures()
"""The defaults of ``lake.reader_compatibility`` / ``lake.on_column_rename`` (``broad``, ``rewrite``)."""
