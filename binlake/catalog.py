"""``_binlake/tables.json``: which lake path holds which source table, for people and other tools;
and the refusal of tables an older binlake wrote under another layout.

The catalog (one JSON document, written atomically, only by this module)::

    {"version": 1, "encoding": "binlake-name-1", "updated_at": "2026-12-01T09:00:00+00:00",
     "tables": [
       {"source": {"schema": "shop", "table": "a:b"}, "target": {"schema": "shop", "table": "a:b"},
        "path": "shop/a-3ab", "state": "_binlake/snapshots/shop/a-3ab.json"}]}

``path`` (the Delta table) and ``state`` (its full-load state) are relative to the lake root; they
follow :mod:`binlake.names`, so a reader may also rebuild them from the names. Entries are sorted by
source name. The full load rewrites the catalog at its start with every table it selects (entries of
earlier loads are kept unless a selected table now takes their lake table), and the merge adds a
table created at the source while replication runs when it records its birth
(:mod:`binlake.merge.birth`); ``binlake tables`` reads the live state next to it.

Legacy layout: before ``binlake-name-1``, state files used the raw names
(``_binlake/snapshots/<schema>/<table>.json``) and table folders replaced only ``` ` ``, ``:`` and ``/``
by ``_``. For a name made of ``a-z 0-9 _`` nothing changed. For any other name (upper case, ``$``,
``-``, space, …) the paths moved: :func:`check_no_legacy_layout` finds a full-load state such a
binlake wrote for the table and refuses — the full load and the merge would otherwise start over
in a new folder while readers keep reading the old one — with the moves that migrate it.
"""

from __future__ import annotations

import datetime
import json
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from binlake.lake import (
    CATALOG_KEY,
    MERGE_DIR,
    SNAPSHOTS_DIR,
    TOMBSTONES_DIR,
    Lake,
    snapshot_state_key,
    table_key,
    tombstones_key,
)
from binlake.names import ENCODING, TargetClaims, collision, legacy_folder_name

log = logging.getLogger(__name__)

CATALOG_VERSION = 1


@dataclass(frozen=True, order=True)
class CatalogEntry:
    """One source table and the lake table it is replicated to."""

    source_schema: str
    source_table: str
    schema: str
    table: str

    @property
    def path(self) -> str:
        """The Delta table's key (relative to the lake root)."""
        return table_key(self.schema, self.table)

    @property
    def state_key(self) -> str:
        return snapshot_state_key(self.source_schema, self.source_table)

    def to_dict(self) -> dict[str, Any]:
        return {"source": {"schema": self.source_schema, "table": self.source_table},
                "target": {"schema": self.schema, "table": self.table},
                "path": self.path, "state": self.state_key}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CatalogEntry:
        try:
            return cls(str(data["source"]["schema"]), str(data["source"]["table"]),
                       str(data["target"]["schema"]), str(data["target"]["table"]))
        except (KeyError, TypeError):
            raise ValueError(f"{CATALOG_KEY}: entry {data!r} lacks source/target schema and table") from None


def read_catalog(lake: Lake) -> list[CatalogEntry]:
    """The catalog's entries (``[]`` when there is none yet)."""
    try:
        data = json.loads(lake.get_bytes(CATALOG_KEY))
    except FileNotFoundError:
        return []
    return sorted(CatalogEntry.from_dict(entry) for entry in data.get("tables", []))


def write_catalog(lake: Lake, entries: Iterable[CatalogEntry], now: datetime.datetime) -> list[CatalogEntry]:
    """Record ``entries`` (the tables being loaded, or a table born in the stream) in the catalog,
    keeping earlier entries whose source and lake table both differ from every new one; returns what
    was written. Writers of one process take turns (the merge records births from parallel tables)."""
    with _WRITING:
        return _write_catalog(lake, entries, now)


_WRITING = threading.Lock()


def _write_catalog(lake: Lake, entries: Iterable[CatalogEntry], now: datetime.datetime) -> list[CatalogEntry]:
    new = sorted(set(entries))
    sources = {(e.source_schema, e.source_table) for e in new}
    targets = {(e.schema, e.table) for e in new}
    kept = []
    for old in read_catalog(lake):
        if (old.source_schema, old.source_table) in sources:
            continue
        if (old.schema, old.table) in targets:
            log.warning("catalog: lake table %s.%s now holds another source table than %s.%s (earlier entry "
                        "replaced)", old.schema, old.table, old.source_schema, old.source_table)
            continue
        kept.append(old)
    result = sorted(kept + new)
    claims = TargetClaims()  # the catalog itself never holds two sources for one lake table
    for entry in result:
        claims.claim((entry.source_schema, entry.source_table), (entry.schema, entry.table))
    document = {"version": CATALOG_VERSION, "encoding": ENCODING, "updated_at": now.isoformat(),
                "tables": [entry.to_dict() for entry in result]}
    lake.put_bytes(CATALOG_KEY, (json.dumps(document, indent=1, ensure_ascii=False) + "\n").encode())
    return result


# ---------------------------------------------------------------------- layout before binlake-name-1


class LegacyLayoutError(RuntimeError):
    """Tables that an older binlake wrote under paths that have since changed; the message says how to
    migrate them."""


def _legacy_key(*parts: str) -> str | None:
    """A key built the old way from raw names, or ``None`` when such a key could never be written."""
    segments = "/".join(parts).split("/")
    if any(s in ("", ".", "..") for s in segments):
        return None
    return "/".join(parts)


def current_paths(entry: CatalogEntry) -> dict[str, str]:
    """Today's keys of ``entry`` by kind: ``table``, ``state``, ``tombstones``, ``joined`` (the merge's
    hand-off record)."""
    return {"table": entry.path, "state": entry.state_key, "tombstones": tombstones_key(entry.schema, entry.table),
            "joined": f"{MERGE_DIR}/tables/{entry.path}.json"}


def legacy_paths(entry: CatalogEntry) -> dict[str, str]:
    """The keys an older binlake used for ``entry``, by kind (``table``, ``state``, ``tombstones``,
    ``joined``), only where they differ from today's."""
    old = {
        "table": f"{legacy_folder_name(entry.schema)}/{legacy_folder_name(entry.table)}",
        "state": _legacy_key(SNAPSHOTS_DIR, entry.source_schema, entry.source_table + ".json"),
        "tombstones": _legacy_key(TOMBSTONES_DIR, entry.schema, entry.table),
        "joined": _legacy_key(f"{MERGE_DIR}/tables", entry.schema, entry.table + ".json"),
    }
    new = current_paths(entry)
    return {kind: key for kind, key in old.items() if key is not None and key != new[kind]}


def _state_of(lake: Lake, key: str, entry: CatalogEntry) -> dict[str, Any] | None:
    """The full-load state at ``key`` when it is one and names ``entry``'s source table."""
    try:
        data = json.loads(lake.get_bytes(key))
    except (FileNotFoundError, ValueError):
        return None
    if isinstance(data, dict) and data.get("source") == {"schema": entry.source_schema, "table": entry.source_table}:
        return data
    return None


def find_legacy_state(lake: Lake, entry: CatalogEntry) -> str | None:
    """The key of a full-load state an older binlake wrote for this source table, if there is one:
    at the old key (source names not plain), or at today's key but naming the old table folder
    (source names plain, target names not — e.g. a rename rule to ``Orders``).

    A state counts only when it names this very source table (an old key can be the new key of
    another table: ``~x`` is the old key of a table named ``~x`` and the new one of ``X``).
    """
    old = legacy_paths(entry)
    if "state" in old and _state_of(lake, old["state"], entry) is not None:
        return old["state"]
    if "table" in old and "state" not in old:
        state = _state_of(lake, entry.state_key, entry)
        path = str(((state or {}).get("target") or {}).get("path", ""))
        if path.endswith("/" + old["table"]) and not lake.list(f"{entry.path}/_delta_log"):
            return entry.state_key  # (once the folder is moved, its Delta log is at today's path)
    return None


def check_no_legacy_layout(lake: Lake, entries: Sequence[CatalogEntry]) -> None:
    """Refuse (:class:`LegacyLayoutError`) when a table of ``entries`` was loaded by a binlake with the
    old layout; the message lists, per table, the moves that migrate it (or how to reload it)."""
    found = [(entry, key) for entry in entries if (key := find_legacy_state(lake, entry)) is not None]
    if not found:
        return
    old_folders = [legacy_paths(e).get("table", e.path) for e in entries]
    shared = {f for f in old_folders if old_folders.count(f) > 1} | {e.path for e in entries}
    lines = []
    for entry, key in found:
        old, new = legacy_paths(entry), current_paths(entry)
        if old.get("table") in shared:
            lines.append(f"  {entry.source_schema}.{entry.source_table} (full-load state at {key}): its old folder "
                         f"{old['table']} also held another table's rows: reload it (below)")
        else:
            lines.append(f"  {entry.source_schema}.{entry.source_table} (full-load state at {key}): move "
                         + "; ".join(f"{path} → {new[kind]}" for kind, path in old.items()))
    raise LegacyLayoutError(
        f"{len(found)} table(s) were loaded by an older binlake that named lake paths differently (names "
        "with characters other than a-z 0-9 _ now have their own, reversible paths, see README 'Lake layout'). "
        "With binlake stopped, move each path that exists (relative to the lake root), then start again:\n"
        + "\n".join(lines)
        + "\nor reload such a table instead: delete its old full-load state (and its old table folder when no "
        "other table uses it) and run the full load.")


class TableGuard:
    """The merge's check of the tables each batch holds, before any is written: two source tables
    whose records for one lake table interleave (they exist side by side) are refused
    (:class:`~binlake.names.TargetCollisionError`, naming both), and so is a table an older binlake
    wrote under another layout (:class:`LegacyLayoutError`).

    One source table *replacing* another (``RENAME TABLE Foo TO foo`` under a lower-case rule, DROP
    then CREATE) is not a collision: every record of the new one follows every record of the old one,
    and the old one must never come back (if it does, both are named and the merge stops). The
    capture makes the same decision with the source at hand (:class:`binlake.capture.records.Layouts`).
    """

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self._owners: dict[tuple[str, str], tuple[tuple[str, str], int]] = {}  # target → (source, max lsn)
        self._retired: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self._checked: set[CatalogEntry] = set()

    def check(self, seen: Iterable[tuple[CatalogEntry, int, int]]) -> None:
        """``seen``: each table of a batch with the lowest and highest lsn of its records."""
        batch = sorted(seen, key=lambda item: (item[1], item[0]))
        for entry, low, high in batch:
            source, target = (entry.source_schema, entry.source_table), (entry.schema, entry.table)
            owner = self._owners.get(target)
            if owner is None or owner[0] == source:
                self._owners[target] = (source, max(high, owner[1] if owner else high))
                continue
            if source in self._retired.get(target, set()) or low <= owner[1]:
                raise collision(owner[0], source, target)
            log.info("lake table %s.%s: source table %s.%s follows %s.%s (renamed or replaced)",
                     *target, *source, *owner[0])
            self._retired.setdefault(target, set()).add(owner[0])
            self._owners[target] = (source, high)
        new = sorted({entry for entry, _, _ in batch} - self._checked)
        check_no_legacy_layout(self.lake, new)
        self._checked.update(new)
