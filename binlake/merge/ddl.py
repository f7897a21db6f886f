"""What a DDL statement does to a table's columns, read from its text (pure).

The change log carries each DDL as a control record with the statement text and ``ddl_kind``;
the column layout after it arrives with the next row of the table. A layout alone cannot tell a
renamed column from a dropped one plus an added one, so renames (and explicit drops) are read
from the statement text here.

:func:`parse_alter` understands MySQL/MariaDB ``ALTER TABLE`` clauses:

* ``RENAME COLUMN a TO b`` and ``CHANGE [COLUMN] [IF EXISTS] a b <definition>`` (``a != b``)
  → a rename ``(a, b)``;
* ``DROP [COLUMN] [IF EXISTS] a`` → a drop (but not ``DROP INDEX|KEY|PRIMARY KEY|FOREIGN KEY|
  CONSTRAINT|CHECK|PARTITION|...``);
* ``RENAME [TO|AS] t2`` → a table rename.

Everything else (ADD, MODIFY, index and option clauses) is left to the layout diff. Names are
the *source* column names as written (quotes removed). Comments, quoted strings (so a comma or a
keyword inside ``DEFAULT '...'`` or ``COMMENT '...'`` is not a clause), back-quoted identifiers
and MySQL's executable ``/*!NNNNN ... */`` comments are handled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WORD = re.compile(r"[0-9A-Za-z_$\u0080-\uffff]+")
_VERSIONED_COMMENT = re.compile(r"/\*M?!\d*")
_DASH_END = ("", " ", "\t", "\n", "\r")
_NOT_COLUMN_AFTER_DROP = frozenset(
    {"INDEX", "KEY", "PRIMARY", "FOREIGN", "CONSTRAINT", "CHECK", "PARTITION", "SYSTEM", "PERIOD",
     "UNIQUE", "FULLTEXT", "SPATIAL", "DEFAULT"}
)


@dataclass(frozen=True)
class Token:
    """One lexical token: ``kind`` is ``word`` (bare word), ``ident`` (back-quoted), ``string``
    (quoted literal) or ``punct``; ``text`` is the value with quotes and escapes removed."""

    kind: str
    text: str

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.text.upper() in words

    @property
    def is_name(self) -> bool:
        return self.kind in ("word", "ident")


@dataclass(frozen=True)
class AlterEffect:
    """Column renames ``(old, new)`` and drops in statement order, and a table rename (if any)."""

    renames: tuple[tuple[str, str], ...] = ()
    drops: tuple[str, ...] = ()
    new_table: str | None = None


def _skip_comment(sql: str, i: int) -> int:
    if sql.startswith("/*", i):
        end = sql.find("*/", i + 2)
        return len(sql) if end < 0 else end + 2
    end = sql.find("\n", i)
    return len(sql) if end < 0 else end + 1


def _quoted(sql: str, i: int) -> tuple[str, int]:
    quote = sql[i]
    out: list[str] = []
    i += 1
    while i < len(sql):
        ch = sql[i]
        if ch == "\\" and quote != "`" and i + 1 < len(sql):
            out.append(sql[i + 1])
            i += 2
            continue
        if ch == quote:
            if sql.startswith(quote * 2, i):
                out.append(quote)
                i += 2
                continue
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    return "".join(out), i


def tokenize(sql: str) -> list[Token]:
    """Tokens of ``sql``; comments dropped, ``/*!NNNNN ... */`` contents kept as code."""
    sql = _VERSIONED_COMMENT.sub(" ", sql)
    tokens: list[Token] = []
    i = 0
    while i < len(sql):
        ch = sql[i]
        if ch.isspace():
            i += 1
        elif sql.startswith("*/", i):  # end of an executable comment
            i += 2
        elif sql.startswith(("/*", "#"), i) or (sql.startswith("--", i) and sql[i + 2 : i + 3] in _DASH_END):
            i = _skip_comment(sql, i)
        elif ch in "`'\"":
            text, i = _quoted(sql, i)
            tokens.append(Token("ident" if ch == "`" else "string", text))
        elif match := _WORD.match(sql, i):
            tokens.append(Token("word", match.group()))
            i = match.end()
        else:
            tokens.append(Token("punct", ch))
            i += 1
    return tokens


def split_clauses(tokens: list[Token]) -> list[list[Token]]:
    """Split at commas outside parentheses."""
    clauses: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.kind == "punct" and token.text == "(":
            depth += 1
        elif token.kind == "punct" and token.text == ")":
            depth = max(0, depth - 1)
        elif token.kind == "punct" and token.text == "," and depth == 0:
            clauses.append([])
            continue
        clauses[-1].append(token)
    return [clause for clause in clauses if clause]


def _skip_words(tokens: list[Token], i: int, *words: str) -> int:
    while i < len(tokens) and tokens[i].is_word(*words):
        i += 1
    return i


def _skip_if_exists(tokens: list[Token], i: int) -> int:
    if i + 1 < len(tokens) and tokens[i].is_word("IF") and tokens[i + 1].is_word("EXISTS"):
        return i + 2
    return i


def _table_name_end(tokens: list[Token], i: int) -> tuple[str | None, int]:
    """Read ``name`` or ``schema.name`` at ``i``; returns (table name, index after it)."""
    if i >= len(tokens) or not tokens[i].is_name:
        return None, i
    name, i = tokens[i].text, i + 1
    if i + 1 < len(tokens) and tokens[i].kind == "punct" and tokens[i].text == "." and tokens[i + 1].is_name:
        name, i = tokens[i + 1].text, i + 2
    return name, i


def _alter_body(tokens: list[Token]) -> list[Token] | None:
    """Tokens after ``ALTER [ONLINE] [IGNORE] TABLE [IF EXISTS] name [WAIT n|NOWAIT]``."""
    i = 0
    if i >= len(tokens) or not tokens[i].is_word("ALTER"):
        return None
    i = _skip_words(tokens, i + 1, "ONLINE", "OFFLINE", "IGNORE")
    if i >= len(tokens) or not tokens[i].is_word("TABLE"):
        return None
    i = _skip_if_exists(tokens, i + 1)
    _, i = _table_name_end(tokens, i)
    if i < len(tokens) and tokens[i].is_word("NOWAIT"):
        i += 1
    elif i + 1 < len(tokens) and tokens[i].is_word("WAIT"):
        i += 2
    return tokens[i:]


def _clause_effect(clause: list[Token]) -> tuple[str, tuple[str, ...]] | None:
    head = clause[0]
    if head.is_word("RENAME") and len(clause) >= 2:
        if clause[1].is_word("COLUMN") and len(clause) >= 5 and clause[3].is_word("TO"):
            return "rename", (clause[2].text, clause[4].text)
        if clause[1].is_word("INDEX", "KEY", "CONSTRAINT"):
            return None
        i = _skip_words(clause, 1, "TO", "AS")
        name, _ = _table_name_end(clause, i)
        return ("table", (name,)) if name else None
    if head.is_word("CHANGE"):
        i = _skip_if_exists(clause, _skip_words(clause, 1, "COLUMN"))
        if i + 1 < len(clause) and clause[i].is_name and clause[i + 1].is_name and clause[i].text != clause[i + 1].text:
            return "rename", (clause[i].text, clause[i + 1].text)
        return None
    if head.is_word("DROP") and len(clause) >= 2:
        if clause[1].is_word(*_NOT_COLUMN_AFTER_DROP):
            return None
        i = _skip_if_exists(clause, _skip_words(clause, 1, "COLUMN"))
        if i < len(clause) and clause[i].is_name:
            return "drop", (clause[i].text,)
    return None


def parse_alter(sql: str) -> AlterEffect:
    """Column renames/drops and a table rename stated by an ``ALTER TABLE`` statement.

    >>> parse_alter("ALTER TABLE t RENAME COLUMN a TO b, DROP COLUMN c")
    AlterEffect(renames=(('a', 'b'),), drops=('c',), new_table=None)

    A statement that is not ``ALTER TABLE`` gives an empty effect.
    """
    body = _alter_body(tokenize(sql))
    if body is None:
        return AlterEffect()
    renames: list[tuple[str, str]] = []
    drops: list[str] = []
    new_table: str | None = None
    for clause in split_clauses(body):
        effect = _clause_effect(clause)
        if effect is None:
            continue
        kind, names = effect
        if kind == "rename":
            renames.append((names[0], names[1]))
        elif kind == "drop":
            drops.append(names[0])
        else:
            new_table = names[0]
    return AlterEffect(tuple(renames), tuple(drops), new_table)
