"""Column definitions in DDL text (pure).

:func:`parse_column` reads one ``col_name column_definition [FIRST | AFTER c]`` of an ``ALTER TABLE …
ADD/MODIFY/CHANGE`` clause (tokens of :func:`binlake.merge.ddl.tokenize`): the type, ``NULL``/``NOT
NULL``, the ``DEFAULT`` (a constant :class:`Literal`, or the text of an expression), ``AUTO_INCREMENT``,
generated (``AS (…)`` / ``GENERATED ALWAYS AS``), the character set, the position. What a new column
holds in existing rows is :mod:`binlake.merge.ddldefaults`.
"""

from __future__ import annotations

from dataclasses import dataclass

from binlake import typemap
from binlake.merge.ddl import Token
from binlake.typemap import ColumnType

_TYPE_PREFIXES = {("double", "precision"): "double", ("long", "varchar"): "mediumtext",
                  ("long", "varbinary"): "mediumblob", ("character", "varying"): "varchar",
                  ("char", "varying"): "varchar", ("national", "char"): "char", ("national", "varchar"): "varchar",
                  ("national", "character"): "char"}
_TYPE_ALIASES = {"nchar": "char", "nvarchar": "varchar", "character": "char", "long": "mediumtext",
                 "bool": "tinyint", "boolean": "tinyint", "serial": "bigint"}
_CONSTRAINT_WORDS = frozenset({"PRIMARY", "UNIQUE", "KEY", "CHECK", "REFERENCES", "CONSTRAINT"})


@dataclass(frozen=True)
class Literal:
    """A constant in DDL: ``kind`` string, number (decimal text), hex (hex digits), bit (0/1 digits),
    bool (``1``/``0``) or null."""

    kind: str
    text: str


@dataclass(frozen=True)
class ColumnDef:
    """One column definition as written (names unquoted)."""

    name: str
    type_name: str  # lower-case MySQL type name, aliases resolved (``bool`` → ``tinyint``)
    type_args: tuple[str, ...] = ()  # inside the type's parentheses: numbers, or ENUM/SET labels
    unsigned: bool = False
    charset: str | None = None
    not_null: bool = False
    explicit_null: bool = False
    default: Literal | None = None
    default_expression: str | None = None
    auto_increment: bool = False
    generated: bool = False
    position: str | None = None  # "FIRST" or "AFTER <col>"

    def column_type(self) -> ColumnType:
        """The :class:`~binlake.typemap.ColumnType` (raises ``ValueError``/``UnsupportedTypeError``)."""
        if self.type_name in ("enum", "set"):
            args = ",".join(typemap._quote_label(a) for a in self.type_args)
        else:
            args = ",".join(self.type_args)
        text = f"{self.type_name}({args})" if self.type_args else self.type_name
        charset = None if self.charset in (None, "binary") else self.charset
        return typemap.column_type_from_information_schema(
            self.type_name, f"{text}{' unsigned' if self.unsigned else ''}", charset)

    @property
    def length(self) -> int | None:
        """The declared length of CHAR/VARCHAR/BINARY/VARBINARY (characters or bytes)."""
        if self.type_name in ("char", "varchar", "binary", "varbinary"):
            return int(self.type_args[0]) if self.type_args else 1
        return None


def _paren_end(tokens: list[Token], i: int) -> int:
    """Index after the ``)`` matching the ``(`` at ``i``."""
    depth = 0
    while i < len(tokens):
        t = tokens[i]
        if t.kind == "punct" and t.text == "(":
            depth += 1
        elif t.kind == "punct" and t.text == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def _is_punct(tokens: list[Token], i: int, text: str) -> bool:
    return i < len(tokens) and tokens[i].kind == "punct" and tokens[i].text == text


def _type(tokens: list[Token], i: int) -> tuple[str, tuple[str, ...], int]:
    if i >= len(tokens) or tokens[i].kind != "word":
        raise ValueError("a column definition needs a type")
    name = tokens[i].text.lower()
    if i + 1 < len(tokens) and (name, tokens[i + 1].text.lower()) in _TYPE_PREFIXES and tokens[i + 1].kind == "word":
        name, i = _TYPE_PREFIXES[(name, tokens[i + 1].text.lower())], i + 1
    name = _TYPE_ALIASES.get(name, name)
    i += 1
    args: list[str] = []
    if _is_punct(tokens, i, "("):
        end = _paren_end(tokens, i)
        current = ""
        for t in tokens[i + 1:end - 1]:
            if t.kind == "punct" and t.text == ",":
                args.append(current)
                current = ""
            else:
                current += t.text
        args.append(current)
        i = end
    return name, tuple(args), i


def _literal(tokens: list[Token], i: int) -> tuple[Literal | None, int]:
    """A constant at ``i`` (or None: an expression); returns it and the index after it."""
    t = tokens[i]
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    if t.kind == "string":
        return Literal("string", t.text), i + 1
    if t.kind == "word" and nxt is not None and nxt.kind == "string":
        word = t.text.lower()
        if word == "x":
            return Literal("hex", nxt.text), i + 2
        if word == "b":
            return Literal("bit", nxt.text), i + 2
        if word == "n" or word.startswith("_"):
            return Literal("string", nxt.text), i + 2
        return None, i
    if t.kind == "word":
        upper = t.text.upper()
        if upper == "NULL":
            return Literal("null", ""), i + 1
        if upper in ("TRUE", "FALSE"):
            return Literal("bool", "1" if upper == "TRUE" else "0"), i + 1
        if upper.startswith("0X") and len(upper) > 2:
            return Literal("hex", t.text[2:]), i + 1
        if upper.startswith("0B") and len(upper) > 2 and set(upper[2:]) <= {"0", "1"}:
            return Literal("bit", t.text[2:]), i + 1
    sign = ""
    if t.kind == "punct" and t.text in "+-":
        sign, i = t.text, i + 1
    text = sign
    if i < len(tokens) and tokens[i].kind == "word" and tokens[i].text.isdigit():
        text += tokens[i].text
        i += 1
        if _is_punct(tokens, i, ".") and i + 1 < len(tokens) and tokens[i + 1].text.isdigit():
            text += "." + tokens[i + 1].text
            i += 2
        return Literal("number", text), i
    return None, i


def _expression_end(tokens: list[Token], i: int) -> int:
    """Index after a default expression: a word, optionally followed by a parenthesised argument list,
    or a parenthesised expression."""
    if _is_punct(tokens, i, "("):
        return _paren_end(tokens, i)
    i += 1
    if _is_punct(tokens, i, "("):
        return _paren_end(tokens, i)
    return i


def parse_column(tokens: list[Token]) -> ColumnDef:
    """The column definition ``tokens`` (starting at the column name). Raises ``ValueError`` for text
    that is not one."""
    if not tokens or not tokens[0].is_name:
        raise ValueError("a column definition starts with the column name")
    name = tokens[0].text
    type_name, args, i = _type(tokens, 1)
    fields: dict[str, object] = {"auto_increment": type_name == "bigint" and tokens[1].text.lower() == "serial"}
    if fields["auto_increment"]:
        fields.update(unsigned=True, not_null=True)
    while i < len(tokens):
        t = tokens[i]
        word = t.text.upper() if t.kind == "word" else ""
        if word in ("UNSIGNED", "SIGNED", "ZEROFILL"):
            fields["unsigned"] = fields.get("unsigned", False) or word in ("UNSIGNED", "ZEROFILL")
            i += 1
        elif word in ("CHARACTER", "CHARSET"):
            i += 2 if word == "CHARACTER" else 1  # CHARACTER SET x | CHARSET x
            if i < len(tokens) and tokens[i].is_name:
                fields["charset"] = tokens[i].text.lower()
                i += 1
        elif word == "COLLATE":
            collation = tokens[i + 1].text.lower() if i + 1 < len(tokens) else ""
            fields.setdefault("charset", collation.split("_", 1)[0] or None)
            i += 2
        elif word == "NOT" and i + 1 < len(tokens) and tokens[i + 1].is_word("NULL"):
            fields["not_null"] = True
            i += 2
        elif word == "NULL":
            fields["explicit_null"] = True
            i += 1
        elif word == "DEFAULT":
            literal, end = _literal(tokens, i + 1) if i + 1 < len(tokens) else (None, i + 1)
            if literal is None:
                end = _expression_end(tokens, i + 1)
                fields["default_expression"] = "".join(tok.text for tok in tokens[i + 1:end])
            else:
                fields["default"] = literal
            i = end
        elif word == "AUTO_INCREMENT":
            fields["auto_increment"] = True
            i += 1
        elif word in ("GENERATED", "AS"):
            fields["generated"] = True
            while i < len(tokens) and not _is_punct(tokens, i, "("):
                i += 1
            i = _paren_end(tokens, i)
        elif word in ("COMMENT", "COLUMN_FORMAT", "STORAGE"):
            i += 2
        elif word == "ON" and i + 1 < len(tokens) and tokens[i + 1].is_word("UPDATE"):
            i = _expression_end(tokens, i + 2)
        elif word == "FIRST":
            fields["position"] = "FIRST"
            i += 1
        elif word == "AFTER" and i + 1 < len(tokens):
            fields["position"] = f"AFTER {tokens[i + 1].text}"
            i += 2
        elif word in _CONSTRAINT_WORDS or (t.kind == "punct" and t.text == "("):
            i = _paren_end(tokens, i) if t.kind == "punct" else i + 1
        else:
            i += 1  # BINARY, INVISIBLE, PERSISTENT, VIRTUAL, STORED, COMPRESSED, '=', …
    return ColumnDef(name, type_name, args, **fields)  # type: ignore[arg-type]
