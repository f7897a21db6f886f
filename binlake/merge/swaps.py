"""Online schema change swaps applied in the lake: which lake table hands its rows to which, and in
what order a batch applies its tables (pure).

gh-ost's ``RENAME TABLE t TO _t_del, _t_gho TO t`` (pt-osc: ``t TO _t_old, _t_new TO t``) moves the
ghost table's content to the name ``t``. When the ghost table is replicated in the lake too (its
whole life — CREATE, ALTER, the ``INSERT … SELECT`` copy, the changes applied to it — is in the
change log), lake ``_t_gho`` at the RENAME's lsn ``R`` *is* the source's new ``t`` at ``R``, so the
merge applies the statement as a **swap**: lake ``t`` becomes lake ``_t_gho`` as of ``R`` (rows,
schema, per-row lsns) in one Delta commit of ``t`` (:mod:`binlake.merge.swapstep`), and no resync
is needed. Readers of ``t`` see the old table up to that commit and the new one from it on — never a
half-old table.

A :class:`Handover` is one such move, lake table ``origin`` → lake table ``target`` at lsn ``R``
(:func:`handovers`). Its two sides run in two tables' applies, which the batch runs concurrently
(:mod:`binlake.merge.parallel`), so the batch orders them (:func:`swap_plan`): every table whose
rows a swap reads is applied *before* the table that reads them (phases). The origin's step at
``R`` records the Delta version that holds its content at ``R`` (before its own wipe at ``R``); the
target's step at ``R`` reads that version. A swap is only planned when the batch holds both sides,
neither side keeps history (SCD2), both have the same column rules, row filter and ``add-column``
columns (so the origin's lake rows are what the target's lake rows must be), and the dependency is
not part of a cycle (``RENAME TABLE a TO tmp, b TO a, tmp TO b``, or ``a TO b`` then ``b TO a`` in one
batch): the origin's phase must end before the target's begins. Every other rename onto a lake
table keeps the resync path (:mod:`binlake.merge.renames`).

The plan is a function of the batch's records and the mapping only, so every attempt of a batch
plans the same swaps and phases.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from binlake.merge.renames import LakeName, SourceName, contents_after, lake_target, rename_pairs
from binlake.merge.summary import DdlRecord, TableChanges
from binlake.rules import TableMapping, TableTarget

SWAP_REASON = "online schema change swap"
"""Named in the reason of an automatic resync asked because a swap could not be applied in the lake."""


@dataclass(frozen=True)
class Handover:
    """At lsn ``lsn`` the content of lake table ``origin`` (source name ``origin_source``) became
    the content of lake table ``target`` (source name ``target_source``)."""

    origin: LakeName
    target: LakeName
    lsn: int
    origin_source: SourceName
    target_source: SourceName


def handovers(record: DdlRecord, default_schema: str,
              target: Callable[[SourceName], LakeName | None]) -> tuple[Handover, ...]:
    """The moves between two different selected lake tables that rename ``record`` makes; ``()``
    for a statement that renames nothing, or whose moves form a cycle among lake tables."""
    if record.kind.upper() not in ("RENAME", "ALTER"):
        return ()
    moves = []
    for name, content in contents_after(rename_pairs(record.ddl, default_schema)).items():
        if content is None or content == name:
            continue
        origin, new = target(content), target(name)
        if origin is not None and new is not None and origin != new:
            moves.append(Handover(origin, new, record.lsn, content, name))
    edges = {(m.origin, m.target) for m in moves}
    return () if _cyclic(edges) else tuple(moves)


def _cyclic(edges: set[tuple[LakeName, LakeName]]) -> bool:
    """Does the directed graph of ``edges`` hold a cycle?"""
    nodes = {n for edge in edges for n in edge}
    return len(_levels(nodes, edges)) < len(nodes)


def _levels(nodes: set[LakeName], edges: set[tuple[LakeName, LakeName]]) -> dict[LakeName, int]:
    """Kahn's algorithm: each node not on or behind a cycle → its level (0: depends on nothing)."""
    incoming = {n: {a for a, b in edges if b == n and a in nodes} for n in nodes}
    level: dict[LakeName, int] = {}
    current = sorted(n for n, deps in incoming.items() if not deps)
    depth = 0
    while current:
        for n in current:
            level[n] = depth
        depth += 1
        current = sorted(n for n, deps in incoming.items() if n not in level and deps and deps <= set(level))
    return level


def same_treatment(a: TableTarget, b: TableTarget) -> bool:
    """Do the rules turn both source tables' rows into lake rows the same way (column rules, row
    filter, ``add-column`` columns)?"""
    return ([r.rule_id for r in a.column_rules] == [r.rule_id for r in b.column_rules]
            and a.row_filter == b.row_filter and a.added_columns == b.added_columns)


@dataclass(frozen=True)
class SwapPlan:
    """The batch's swaps and the phases its tables are applied in (each phase after the previous one
    is done; within a phase, concurrently)."""

    swaps: frozenset[Handover]
    phases: tuple[tuple[TableChanges, ...], ...]


def swap_plan(summaries: Sequence[TableChanges], mapping: TableMapping,
              history_tables: frozenset[str] = frozenset()) -> SwapPlan:
    """The swaps of a batch (module docstring) and its phases: phase 0 holds every table no swap
    reads from another table of the batch; a table is in a later phase than each origin it swaps
    from. Tables keep their input order within a phase. ``history_tables``: lake tables (qualified)
    that keep SCD2 history."""
    target = lake_target(mapping)
    tables = {(s.name.schema, s.name.table) for s in summaries}
    candidates = set()
    for changes in summaries:
        me = (changes.name.schema, changes.name.table)
        for record in changes.ddls:
            for move in handovers(record, changes.name.source_schema, target):
                if move.target == me and move.origin in tables and _swappable(move, mapping, history_tables):
                    candidates.add(move)
    edges = {(m.origin, m.target) for m in candidates}
    level = _levels(tables, edges)
    last = max(level.values(), default=0) + 1  # tables on or behind a cycle: after every other one
    swaps = frozenset(m for m in candidates if level.get(m.origin, last) < level.get(m.target, last))
    used = {(m.origin, m.target) for m in swaps}
    level = _levels(tables, used)  # phases from the swaps kept only
    phases: dict[int, list[TableChanges]] = {}
    for changes in summaries:
        phases.setdefault(level[(changes.name.schema, changes.name.table)], []).append(changes)
    return SwapPlan(swaps, tuple(tuple(phases[i]) for i in sorted(phases)))


def _swappable(move: Handover, mapping: TableMapping, history_tables: frozenset[str]) -> bool:
    origin = mapping.target_for(*move.origin_source)
    target = mapping.target_for(*move.target_source)
    if origin is None or target is None:
        return False
    return (not {".".join(move.origin), ".".join(move.target)} & history_tables) and same_treatment(origin, target)


def swap_into(swaps: frozenset[Handover], table: LakeName, lsn: int) -> Handover | None:
    """The swap that makes lake table ``table`` another one at ``lsn``, if planned."""
    return next((m for m in swaps if m.target == table and m.lsn == lsn), None)


def hands_over(swaps: frozenset[Handover], table: LakeName, lsn: int | None = None) -> bool:
    """Does a planned swap read lake table ``table``'s content (at ``lsn``, or at any lsn)?"""
    return any(m.origin == table and (lsn is None or m.lsn == lsn) for m in swaps)
