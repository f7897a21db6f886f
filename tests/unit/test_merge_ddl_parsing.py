"""Column renames and drops read from ALTER TABLE text (binlake.merge.ddl)."""

from __future__ import annotations

import pytest

from binlake.merge.ddl import AlterEffect, parse_alter, split_clauses, tokenize


@pytest.mark.parametrize(
    ("sql", "renames", "drops"),
    [
        ("ALTER TABLE t RENAME COLUMN a TO b", [("a", "b")], []),
        ("alter table `s`.`t` rename column `a b` to `c``d`", [("a b", "c`d")], []),
        ("ALTER TABLE t CHANGE a b INT NOT NULL", [("a", "b")], []),
        ("ALTER TABLE t CHANGE COLUMN IF EXISTS a b VARCHAR(10) DEFAULT 'x,y'", [("a", "b")], []),
        ("ALTER TABLE t CHANGE a a BIGINT", [], []),
        ("ALTER TABLE t MODIFY a BIGINT, ADD COLUMN z INT", [], []),
        ("ALTER TABLE t DROP COLUMN c", [], ["c"]),
        ("ALTER TABLE t DROP c, DROP COLUMN IF EXISTS `d`", [], ["c", "d"]),
        ("ALTER TABLE t DROP INDEX i, DROP PRIMARY KEY, DROP FOREIGN KEY f, DROP CONSTRAINT c", [], []),
        ("ALTER TABLE t ADD x INT COMMENT 'RENAME COLUMN a TO b, DROP c', DROP y", [], ["y"]),
        ("ALTER TABLE t ADD KEY k (a, b), RENAME COLUMN a TO a2", [("a", "a2")], []),
        ("ALTER TABLE t /* DROP COLUMN q */ DROP COLUMN r -- DROP COLUMN s\n", [], ["r"]),
        ("ALTER ONLINE IGNORE TABLE IF EXISTS db.t WAIT 5 RENAME COLUMN a TO b", [("a", "b")], []),
        ("ALTER TABLE t RENAME INDEX i TO j", [], []),
        ("/*!40000 ALTER TABLE t DROP COLUMN c */", [], ["c"]),
        ("CREATE TABLE t (a INT)", [], []),
        ("TRUNCATE TABLE t", [], []),
    ],
)
def test_parse_alter(sql: str, renames: list[tuple[str, str]], drops: list[str]) -> None:
    effect = parse_alter(sql)
    assert list(effect.renames) == renames
    assert list(effect.drops) == drops


def test_table_rename_is_not_a_column_rename() -> None:
    assert parse_alter("ALTER TABLE t RENAME TO t2") == AlterEffect(new_table="t2")
    assert parse_alter("ALTER TABLE t RENAME AS other.t3") == AlterEffect(new_table="t3")
    assert parse_alter("ALTER TABLE t RENAME COLUMN a TO b, RENAME TO t2") == AlterEffect((("a", "b"),), (), "t2")


def test_rename_chain_keeps_statement_order() -> None:
    sql = "ALTER TABLE t RENAME COLUMN a TO tmp, RENAME COLUMN b TO a, RENAME COLUMN tmp TO b"
    assert parse_alter(sql).renames == (("a", "tmp"), ("b", "a"), ("tmp", "b"))


def test_tokenizer_strings_and_escapes() -> None:
    tokens = tokenize("x 'it''s' \"a\\\"b\" `q``q` -- c\n y")
    assert [(t.kind, t.text) for t in tokens] == [
        ("word", "x"), ("string", "it's"), ("string", 'a"b'), ("ident", "q`q"), ("word", "y")]


def test_split_clauses_ignores_commas_in_parentheses() -> None:
    clauses = split_clauses(tokenize("ADD x DECIMAL(10,2), ADD KEY (a, b), DROP c"))
    assert [" ".join(t.text for t in c) for c in clauses] == ["ADD x DECIMAL ( 10 , 2 )", "ADD KEY ( a , b )", "DROP c"]
