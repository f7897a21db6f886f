"""What a table rename does to each lake table (pure).

``RENAME TABLE a TO b, c TO d …`` renames its pairs in order, atomically: gh-ost's and
pt-online-schema-change's swap ``RENAME TABLE t TO _t_del, _t_gho TO t`` is one statement, so no
reader of the source ever sees ``t`` missing. ``ALTER TABLE a … RENAME [TO|AS] b`` is one pair.
After the statement every name it touches holds what one name held before it, or nothing
(:func:`contents_after`). For one lake table ``L`` — the target of the source names the table
mapping sends to it — that gives one :class:`RenameEffect` (:func:`rename_effect`):

* ``CONTINUED``: the name mapping to ``L`` afterwards holds what a name mapping to ``L`` held
  before (``RENAME TABLE Foo TO foo`` under a lower-case rule): the lake table simply goes on;
* ``REPLACED``: it holds a table that another lake table, or none, replicated (``_t_gho TO t``):
  the lake table's rows are not the new table's — when the other lake table holds the new table
  exactly, the merge swaps its content in, in one commit (:mod:`binlake.merge.swaps`); else it
  re-synchronises the table from the source (an automatic whole-table resync; until its chunks
  are applied the rows of the old table stay, changed by the stream from the swap on: never
  empty, but half-old);
* ``GONE``: no name maps to ``L`` any more (``t TO t_old`` with ``t_old`` not mapping to ``L``):
  applied as ``DROP TABLE`` under the old name;
* ``UNCHANGED``: the statement does not concern ``L``.

Names in the statement without a schema are resolved with ``default_schema``: the merge passes the
source schema of the table whose change-log record carries the statement (the change log keeps
the statement text, not the session's current database), which is right whenever the record's
table is written unqualified or every name of the statement is in one schema — gh-ost and
pt-online-schema-change qualify every name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from binlake.capture.ddl import classify
from binlake.merge.summary import DdlRecord, TableChanges, TableName
from binlake.rules import TableMapping

SourceName = tuple[str, str]
"""A source table: ``(schema, table)``."""
LakeName = tuple[str, str]
"""A lake table: ``(target schema, target table)``."""

UNCHANGED = "unchanged"
CONTINUED = "continued"
REPLACED = "replaced"
GONE = "gone"


@dataclass(frozen=True)
class RenameEffect:
    """What a rename statement does to one lake table: ``kind`` (see the module docstring);
    ``name``: the source name mapping to the lake table after the statement (``CONTINUED``,
    ``REPLACED``); ``origin``: the source name whose table it holds now (``REPLACED``)."""

    kind: str
    name: SourceName | None = None
    origin: SourceName | None = None


def rename_pairs(sql: str, default_schema: str) -> tuple[tuple[SourceName, SourceName], ...]:
    """The ``(old, new)`` pairs a ``RENAME TABLE`` or ``ALTER TABLE … RENAME TO`` statement renames,
    in statement order; ``()`` for any other statement."""
    statement = classify(sql, default_schema)
    renames = statement.kind == "RENAME" or (statement.kind == "ALTER" and statement.verb == "ALTER"
                                             and len(statement.tables) == 2)  # not EXCHANGE PARTITION
    if not renames:
        return ()
    names = [(t.schema, t.table) for t in statement.tables]
    return tuple((names[i], names[i + 1]) for i in range(0, len(names) - 1, 2))


def contents_after(pairs: Sequence[tuple[SourceName, SourceName]]) -> dict[SourceName, SourceName | None]:
    """For every name the pairs touch: the name whose table it holds after the statement (itself
    when the table came back, ``None`` when it holds nothing).

    >>> contents_after([(("d", "t"), ("d", "t_del")), (("d", "t_gho"), ("d", "t"))])[("d", "t")]
    ('d', 't_gho')
    """
    holds: dict[SourceName, SourceName | None] = {}
    for old, new in pairs:
        content = holds.get(old, old)
        holds[old] = None
        holds[new] = content
    return holds


def rename_effect(pairs: Sequence[tuple[SourceName, SourceName]], lake: LakeName,
                  target: Callable[[SourceName], LakeName | None]) -> RenameEffect:
    """The effect of the statement renaming ``pairs`` on lake table ``lake``; ``target``: the lake
    table a source name maps to (``None``: not selected)."""
    after = contents_after(pairs)
    for name, content in after.items():
        if content is None or content == name or target(name) != lake:
            continue
        return RenameEffect(CONTINUED if target(content) == lake else REPLACED, name, content)
    existed = _existing_before(pairs)
    if any(content is None and name in existed and target(name) == lake for name, content in after.items()):
        return RenameEffect(GONE)
    return RenameEffect(UNCHANGED)


def _existing_before(pairs: Sequence[tuple[SourceName, SourceName]]) -> set[SourceName]:
    """The names that held a table before the statement: each pair's old name, unless an earlier
    pair created it (``RENAME TABLE a TO b, b TO c``: ``b`` did not exist)."""
    created: set[SourceName] = set()
    existing: set[SourceName] = set()
    for old, new in pairs:
        if old not in created:
            existing.add(old)
        created.add(new)
    return existing


def lake_target(mapping: TableMapping) -> Callable[[SourceName], LakeName | None]:
    """``target`` for :func:`rename_effect` from the pipeline's table mapping."""
    def target(name: SourceName) -> LakeName | None:
        found = mapping.target_for(*name)
        return None if found is None else (found.schema, found.table)
    return target


def effect_of(record: DdlRecord, name: TableName, mapping: TableMapping) -> RenameEffect:
    """The effect of a DDL record of table ``name`` on its lake table (``UNCHANGED`` for a record that
    renames nothing)."""
    pairs = rename_pairs(record.ddl, name.source_schema) if record.kind.upper() in ("RENAME", "ALTER") else ()
    if not pairs:
        return RenameEffect(UNCHANGED)
    return rename_effect(pairs, (name.schema, name.table), lake_target(mapping))


def mark_gone(changes: TableChanges, mapping: TableMapping) -> TableChanges:
    """``changes`` with every rename that takes the table away (``GONE``) marked
    (:attr:`DdlRecord.gone`), so the plan applies it as a DROP TABLE (a wipe)."""
    ddls = tuple(replace(d, gone=True) if effect_of(d, changes.name, mapping).kind == GONE else d
                 for d in changes.ddls)
    return changes if ddls == changes.ddls else replace(changes, ddls=ddls)
