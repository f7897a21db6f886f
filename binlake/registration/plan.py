"""What the catalog must hold, from what the lake holds (pure: no I/O).

Every lake table binlake ever made — loaded by the full load (``_binlake/tables.json``) or born in
the stream (its full-load state) — is one :class:`LakeTable`: its lake name, its Delta location,
and whether it is *live*. A lake table is live when its Delta table exists and the merge has not
applied a ``DROP TABLE`` (or a ``RENAME`` taking it away) to it since it last received a table
(:func:`is_dropped`). The merge keeps a dropped table's folder and history (``binlake.merge.ddlstep``),
so a drop shows only in its properties.

The catalog then holds, per live lake table, an external Delta table ``<database>.<table>`` at its
location, where database = the lake schema name and table = the lake table name, as the mapping
rules made them (:func:`catalog_name`); a lake table that is not live has no catalog table, and
neither has an online schema change helper (:func:`without_helpers`).
:func:`plan` compares that with what the catalog holds and gives the :class:`Action` list, which is
idempotent: a second run on the same lake plans nothing.

Binlake never touches a catalog table it does not own: a table of that name at a location outside
the lake root is refused (named in the report), never replaced nor dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from binlake.catalog import CatalogEntry
from binlake.config import CatalogKind
from binlake.osc import readings

DROPPED_LSN = "binlake.merge.droppedLsn"  # = binlake.merge.target.DROPPED_LSN (checked by a unit test)
TRUNCATE_LSN = "binlake.merge.truncateLsn"
SCHEMA_LSN = "binlake.merge.schemaLsn"

_HIVE_NAME = re.compile(r"[A-Za-z0-9_]+")
_GLUE_MAX = 255


@dataclass(frozen=True, order=True)
class CatalogName:
    """A table's name in the catalog: ``database.table``, both as the catalog stores them (lower case)."""

    database: str
    table: str

    @property
    def sql(self) -> str:
        """The back-quoted SQL identifier, e.g. ```shop`.`order_items```."""
        return f"{quote(self.database)}.{quote(self.table)}"

    def __str__(self) -> str:
        return f"{self.database}.{self.table}"


def quote(identifier: str) -> str:
    """``identifier`` as a Spark SQL back-quoted identifier (``` ` ``` doubled)."""
    return "`" + identifier.replace("`", "``") + "`"


class CatalogNameError(ValueError):
    """A lake name the catalog cannot hold; the message names it and the fix."""


def catalog_name(kind: CatalogKind, schema: str, table: str) -> CatalogName:
    """The catalog name of lake table ``schema.table``. Hive metastores and Glue store names in lower
    case (and look them up case-insensitively), so both parts are lowered; the Hive metastore
    accepts only ``A-Z a-z 0-9 _`` in database names and Spark's session catalog the same in table
    names; Glue takes up to 255 characters on one line (Athena's SQL wants ``a-z 0-9 _``: other
    names are registered but need double quotes there).

    >>> catalog_name(CatalogKind.HIVE, "Shop", "Order_Items")
    CatalogName(database='shop', table='order_items')
    """
    for part, value in (("schema", schema), ("table", table)):
        if kind == CatalogKind.HIVE and not _HIVE_NAME.fullmatch(value):
            raise CatalogNameError(
                f"lake {part} name {value!r} of {schema}.{table} has characters a Hive metastore refuses (only "
                "A-Z a-z 0-9 _): the table stays readable by path; give it a catalog-safe lake name with a DMS "
                "'rename' transformation rule to register it")
        if kind == CatalogKind.GLUE and (not value or len(value) > _GLUE_MAX or "\n" in value or "\r" in value):
            raise CatalogNameError(
                f"lake {part} name {value!r} of {schema}.{table} is not a Glue name (1-255 characters, one line): "
                "give it another lake name with a DMS 'rename' transformation rule to register it")
    return CatalogName(schema.lower(), table.lower())


def is_dropped(properties: Mapping[str, str]) -> bool:
    """Did the merge's last wipe of the table come from a ``DROP TABLE`` (or a RENAME taking the table
    away), with no table arriving since? The DROP sets ``droppedLsn`` = ``truncateLsn`` =
    ``schemaLsn`` = its lsn; a later CREATE moves ``truncateLsn`` above it, another table renamed
    onto it or a new row layout moves ``schemaLsn``."""
    def lsn(key: str) -> int:
        value = properties.get(key)
        return int(value) if value not in (None, "") else -1

    dropped = lsn(DROPPED_LSN)
    return dropped >= 0 and dropped >= max(lsn(TRUNCATE_LSN), lsn(SCHEMA_LSN))


@dataclass(frozen=True, order=True)
class LakeTable:
    """One lake table: its lake name, its location (as the catalog must store it) and whether it is live."""

    schema: str
    table: str
    location: str
    live: bool


@dataclass(frozen=True)
class Registered:
    """A table the catalog holds: its location and whether it is external (not managed)."""

    location: str
    external: bool = True


def without_helpers(tables: Iterable[LakeTable]) -> list[LakeTable]:
    """``tables`` with every online schema change helper marked not live (pure): a lake table whose name
    is a helper's name (:func:`binlake.osc.readings`: gh-ost's ``_t_gho``, ``_t_del``, pt-osc's
    ``_t_new``, ``_t_old``, …) of a lake table ``t`` of the same schema — the lake names of the
    helpers the merge replicates with their table. A helper lives only while its tool runs, and is no
    table to find by name: the catalog holds none (one an older binlake registered is dropped)."""
    tables = list(tables)
    names = {(t.schema, t.table) for t in tables}
    return [replace(t, live=False) if any((t.schema, h.base) in names for h in readings(t.table)) else t
            for t in tables]


CREATE = "create"
REPLACE = "replace"  # at another location inside the lake (a table re-created, an older layout)
DROP = "drop"


@dataclass(frozen=True, order=True)
class Action:
    """One change to the catalog: ``kind`` ``create`` / ``replace`` / ``drop`` of ``name``
    (``location``: where it must point; for a drop, where it pointed)."""

    name: CatalogName
    kind: str
    location: str


@dataclass(frozen=True)
class Plan:
    """The actions (databases to create first, then tables in name order) and the lake tables that
    cannot be registered, each with the reason."""

    databases: tuple[tuple[str, str], ...]  # (database, location of its lake schema folder)
    actions: tuple[Action, ...]
    refused: tuple[tuple[str, str], ...]  # (lake schema.table, why)
    registered: tuple[CatalogName, ...]   # every name that will point into the lake afterwards


def _normal(location: str) -> str:
    location = location.rstrip("/")
    for prefix in ("file://", "file:"):
        if location.startswith(prefix):
            return "/" + location[len(prefix):].lstrip("/")
    return location


def same_location(a: str, b: str) -> bool:
    """Locations equal up to a trailing ``/`` and a ``file:`` scheme (Spark stores ``file:/p`` for ``/p``)."""
    return _normal(a) == _normal(b)


def _inside(location: str, lake_root: str) -> bool:
    return (_normal(location) + "/").startswith(_normal(lake_root) + "/")


def plan(kind: CatalogKind, tables: Iterable[LakeTable], current: Mapping[CatalogName, Registered],
         lake_root: str, schema_location: Mapping[str, str]) -> Plan:
    """The actions that make the catalog hold exactly the live lake tables (see the module docstring).

    ``current``: what the catalog holds now under every name :func:`catalog_name` gives ``tables``
    (names absent from it are not registered); ``lake_root``: the lake root as locations are written
    (a registered location under it is binlake's); ``schema_location``: lake schema → its folder.
    Two live lake tables with one catalog name (``Foo`` and ``foo``) are both refused; helpers are
    not live (:func:`without_helpers`).
    """
    refused: list[tuple[str, str]] = []
    live: dict[CatalogName, list[LakeTable]] = {}
    dead: dict[CatalogName, LakeTable] = {}
    for table in sorted(set(without_helpers(tables))):
        try:
            name = catalog_name(kind, table.schema, table.table)
        except CatalogNameError as exc:
            if table.live:
                refused.append((f"{table.schema}.{table.table}", str(exc)))
            continue
        if table.live:
            live.setdefault(name, []).append(table)
        else:
            dead.setdefault(name, table)
    actions: list[Action] = []
    wanted: dict[CatalogName, LakeTable] = {}
    for name, group in live.items():
        if len(group) > 1:
            names = " and ".join(f"{t.schema}.{t.table}" for t in group)
            for t in group:
                refused.append((f"{t.schema}.{t.table}", f"{names} are one catalog table {name} (catalogs ignore "
                                "case): give one of them another lake name with a DMS 'rename' rule"))
            continue
        wanted[name] = group[0]
    registered: list[CatalogName] = []
    databases: set[tuple[str, str]] = set()
    for name, table in sorted(wanted.items()):
        held = current.get(name)
        if held is not None and held.external and same_location(held.location, table.location):
            registered.append(name)  # already right
            continue
        if held is not None and not (held.external and _inside(held.location, lake_root)):
            refused.append((f"{table.schema}.{table.table}", f"catalog table {name} already exists at "
                            f"{held.location} ({'external' if held.external else 'managed'}), not binlake's: "
                            "binlake leaves it alone — drop or rename it to let binlake register the lake table"))
            continue
        actions.append(Action(name, CREATE if held is None else REPLACE, table.location))
        databases.add((name.database, schema_location[table.schema]))
        registered.append(name)
    for name, table in sorted(dead.items()):
        held = current.get(name)
        if name not in live and held is not None and held.external and same_location(held.location, table.location):
            actions.append(Action(name, DROP, held.location))
    return Plan(tuple(sorted(databases)), tuple(actions), tuple(refused), tuple(registered))


def lake_table_names(entries: Iterable[CatalogEntry], states: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Every lake table name (schema, table) of the catalog entries and of the full-load states
    (target names), sorted, each once."""
    return sorted({(e.schema, e.table) for e in entries} | set(states))
