"""Recognising the statements of binlog Query events (pure).

:func:`classify` tells a transaction-control statement (``BEGIN``, ``COMMIT``, …) from a table DDL
and names the tables a DDL touches, so the capture can emit ``op=DDL`` control records for the
selected ones. Only the statement's head is parsed; anything not recognised is ``OTHER`` (GRANT,
CREATE USER, FLUSH, …), which the capture ignores. DML in a Query event (statement-format
binlogging forced by a session) is ``DML`` with its target table when that is evident.

``DROP DATABASE x`` / ``DROP SCHEMA x`` is ``DROP`` with verb ``DATABASE`` and ``database`` set (the
capture turns it into a DROP TABLE record for each selected table of ``x``). Names in statements
are resolved as the server resolves them under ``lower_case_table_names`` by :func:`resolve`.

Limits: ``CREATE/DROP INDEX`` are reported as ``ALTER``; views, triggers and procedures are ``OTHER``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

CONTROL = "CONTROL"
OTHER = "OTHER"
DML = "DML"


@dataclass(frozen=True)
class TableRef:
    """A table named in a statement; ``schema`` falls back to the event's default database."""

    schema: str
    table: str


@dataclass(frozen=True)
class Statement:
    """What a Query event's statement is.

    ``kind``: ``CONTROL`` (``verb`` is BEGIN, COMMIT, ROLLBACK, SAVEPOINT, XA, …), one of
    ``CREATE ALTER RENAME TRUNCATE DROP`` (table DDL), ``DML`` or ``OTHER``. ``ALTER … EXCHANGE
    PARTITION p WITH TABLE t2`` is ``ALTER`` with verb ``EXCHANGE`` and tables (t, t2): both change.
    ``tables``: tables touched; for RENAME the pairs are flattened as (old, new, old, new, …),
    and ``ALTER … RENAME TO new`` gives (old, new).
    """

    kind: str
    verb: str = ""
    tables: tuple[TableRef, ...] = ()
    database: str = ""  # DROP DATABASE: the database dropped


_COMMENT = re.compile(r"/\*(?!M?!)(?:.|\n)*?\*/|^\s*(?:--|#)[^\n]*\n", re.MULTILINE)
_VERSIONED_COMMENT = re.compile(r"/\*M?!\d*\s*((?:.|\n)*?)\*/")
_NAME = r"(?:`(?:[^`]|``)+`|[\w$]+)"
_QUALIFIED = rf"{_NAME}(?:\s*\.\s*{_NAME})?"
_CONTROL_VERBS = ("BEGIN", "COMMIT", "ROLLBACK TO", "ROLLBACK", "SAVEPOINT", "RELEASE", "XA", "START TRANSACTION")

_CREATE = re.compile(
    rf"^CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<t>{_QUALIFIED})",
    re.IGNORECASE,
)
_ALTER = re.compile(
    rf"^ALTER\s+(?:ONLINE\s+)?(?:IGNORE\s+)?TABLE\s+(?:IF\s+EXISTS\s+)?(?P<t>{_QUALIFIED})", re.IGNORECASE
)
_ALTER_EXCHANGE = re.compile(rf"\bEXCHANGE\s+PARTITION\s+{_NAME}\s+WITH\s+TABLE\s+(?P<t>{_QUALIFIED})", re.IGNORECASE)
_ALTER_RENAME = re.compile(rf"\bRENAME\s+(?:TO\s+|AS\s+)?(?P<t>{_QUALIFIED})\s*(?:,|$)", re.IGNORECASE)
_RENAME = re.compile(r"^RENAME\s+TABLES?\s+(?P<rest>.+)$", re.IGNORECASE | re.DOTALL)
_RENAME_PAIR = re.compile(rf"(?P<a>{_QUALIFIED})\s+(?:WAIT\s+\d+\s+|NOWAIT\s+)?TO\s+(?P<b>{_QUALIFIED})",
                          re.IGNORECASE)
_DROP_DATABASE = re.compile(rf"^DROP\s+(?:DATABASE|SCHEMA)\s+(?:IF\s+EXISTS\s+)?(?P<d>{_NAME})\s*$", re.IGNORECASE)
_TRUNCATE = re.compile(rf"^TRUNCATE\s+(?:TABLE\s+)?(?P<t>{_QUALIFIED})", re.IGNORECASE)
_DROP = re.compile(r"^DROP\s+(?:TEMPORARY\s+)?TABLES?\s+(?:IF\s+EXISTS\s+)?(?P<rest>.+)$",
                   re.IGNORECASE | re.DOTALL)
_INDEX = re.compile(rf"^(?:CREATE|DROP)\s+(?:ONLINE\s+)?(?:UNIQUE\s+|FULLTEXT\s+|SPATIAL\s+)?INDEX\s+"
                    rf"(?:IF\s+(?:NOT\s+)?EXISTS\s+)?{_NAME}\s+ON\s+(?P<t>{_QUALIFIED})", re.IGNORECASE)
_DML = re.compile(
    rf"^(?:INSERT|REPLACE)\s+(?:LOW_PRIORITY\s+|DELAYED\s+|HIGH_PRIORITY\s+|IGNORE\s+)*(?:INTO\s+)?(?P<i>{_QUALIFIED})"
    rf"|^UPDATE\s+(?:LOW_PRIORITY\s+|IGNORE\s+)*(?P<u>{_QUALIFIED})"
    rf"|^DELETE\s+(?:LOW_PRIORITY\s+|QUICK\s+|IGNORE\s+)*FROM\s+(?P<d>{_QUALIFIED})"
    rf"|^LOAD\s+DATA\b.*?\bINTO\s+TABLE\s+(?P<l>{_QUALIFIED})",
    re.IGNORECASE | re.DOTALL,
)


def _unquote(name: str) -> str:
    name = name.strip()
    return name[1:-1].replace("``", "`") if name.startswith("`") else name


def _split_qualified(text: str, default_schema: str) -> TableRef:
    parts = re.findall(_NAME, text)
    if len(parts) == 2:
        return TableRef(_unquote(parts[0]), _unquote(parts[1]))
    return TableRef(default_schema, _unquote(parts[0]))


def normalize(sql: str) -> str:
    """Statement text without comments (``/*! … */`` and MariaDB ``/*M! … */`` bodies kept), trimmed."""
    sql = _VERSIONED_COMMENT.sub(r" \1 ", sql)
    return _COMMENT.sub(" ", sql).strip().rstrip(";").strip()


def classify(sql: str, default_schema: str) -> Statement:
    """Classify one Query-event statement; ``default_schema`` is the event's current database."""
    text = normalize(sql)
    upper = text[:40].upper()
    for verb in _CONTROL_VERBS:
        if upper == verb or upper.startswith(verb + " ") or upper.startswith(verb + "\n"):
            return Statement(CONTROL, verb)

    def ref(text: str) -> TableRef:
        return _split_qualified(text, default_schema)

    if m := _CREATE.match(text):
        return Statement("CREATE", "CREATE", (ref(m["t"]),))
    if m := _ALTER.match(text):
        old = ref(m["t"])
        exchanged = _ALTER_EXCHANGE.search(text[m.end():])
        if exchanged:  # both tables' rows change (verb EXCHANGE: not a rename pair)
            return Statement("ALTER", "EXCHANGE", (old, ref(exchanged["t"])))
        renamed = _ALTER_RENAME.search(text[m.end():])
        if renamed:  # ALTER TABLE t …, RENAME [TO] t2 (RENAME COLUMN/INDEX … TO … never ends in a bare name)
            return Statement("ALTER", "ALTER", (old, ref(renamed["t"])))
        return Statement("ALTER", "ALTER", (old,))
    if m := _RENAME.match(text):
        pairs = _RENAME_PAIR.findall(m["rest"])
        return Statement("RENAME", "RENAME", tuple(ref(name) for pair in pairs for name in pair))
    if m := _TRUNCATE.match(text):
        return Statement("TRUNCATE", "TRUNCATE", (ref(m["t"]),))
    if m := _DROP_DATABASE.match(text):
        return Statement("DROP", "DATABASE", database=_unquote(m["d"]))
    if m := _DROP.match(text):
        rest = re.sub(r"\s+(?:RESTRICT|CASCADE)\s*$", "", m["rest"], flags=re.I)
        names = re.findall(_QUALIFIED, rest)
        return Statement("DROP", "DROP", tuple(ref(n) for n in names))
    if m := _INDEX.match(text):
        return Statement("ALTER", "INDEX", (ref(m["t"]),))
    if m := _DML.match(text):
        target = next(g for g in m.groups() if g)
        return Statement(DML, text.split(None, 1)[0].upper(), (ref(target),))
    return Statement(OTHER, text.split(None, 1)[0].upper() if text else "")


def resolve(ref: TableRef, lower_case_table_names: int, known: Iterable[tuple[str, str]] = ()) -> TableRef:
    """The table a name in a statement denotes, spelled as the binlog's table maps spell it.

    ``lower_case_table_names`` is the server's setting: ``0`` names are case-sensitive (as written);
    ``1`` names are stored and compared in lower case (the table maps carry lower-case names, a
    statement may write ``Orders``); ``2`` names are stored as created and compared in lower case —
    the spelling of the matching ``known`` table (schema, table) is taken when exactly one matches.

    >>> resolve(TableRef("Shop", "Orders"), 1)
    TableRef(schema='shop', table='orders')
    """
    if lower_case_table_names == 1:
        return TableRef(ref.schema.lower(), ref.table.lower())
    if lower_case_table_names == 2:
        wanted = (ref.schema.lower(), ref.table.lower())
        found = {(s, t) for s, t in known if (s.lower(), t.lower()) == wanted}
        if len(found) == 1:
            return TableRef(*found.pop())
    return ref


def same_database(a: str, b: str, lower_case_table_names: int) -> bool:
    """Do database names ``a`` and ``b`` denote the same database under the server's setting?"""
    return a == b if lower_case_table_names == 0 else a.lower() == b.lower()
