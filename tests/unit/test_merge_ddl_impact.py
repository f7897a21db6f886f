"""Which DDL the lake applies in place, with which values and checks, and which needs a resync (pure)."""

from __future__ import annotations

import pytest

from binlake.merge.ddl import tokenize
from binlake.merge.ddlcolumns import parse_column
from binlake.merge.ddldefaults import Underivable, existing_row_value
from binlake.merge.ddlimpact import ddl_impact

LAKE = {"id": "bigint", "name": "string", "qty": "int", "price": "decimal(6,2)", "raw": "binary",
        "st": "string", "ratio": "float", "d": "date", "ts": "timestamp"}


def value(definition: str, backslash: bool = False) -> str | None:
    return existing_row_value(parse_column(tokenize(definition)), backslash)


@pytest.mark.parametrize(("definition", "expected"), [
    # the values MariaDB shows for rows that existed before ADD COLUMN (canonical text of binlake.typemap)
    ("status VARCHAR(10) NOT NULL DEFAULT 'new'", "new"),
    ("n INT NOT NULL DEFAULT 0", "0"),
    ("n INT DEFAULT '42'", "42"),
    ("n BIGINT UNSIGNED DEFAULT 18446744073709551615", "18446744073709551615"),
    ("n SMALLINT DEFAULT -5 COMMENT 'x'", "-5"),
    ("p DECIMAL(5,2) DEFAULT 1.5", "1.50"),
    ("p DECIMAL(5,2) NOT NULL DEFAULT '1.50' AFTER id", "1.50"),
    ("p NUMERIC(10) DEFAULT 7", "7"),
    ("d DATE DEFAULT '2024-01-01' FIRST", "2024-01-01"),
    ("d DATE NOT NULL DEFAULT '0000-00-00'", None),  # the zero date is NULL in the lake
    ("t DATETIME(3) DEFAULT '2024-01-01 10:00:00.5'", "2024-01-01 10:00:00.500"),
    ("t DATETIME DEFAULT '2024-01-01'", "2024-01-01 00:00:00"),
    ("t TIME DEFAULT '-01:02:03'", "-01:02:03"),
    ("t TIME(2) DEFAULT '-00:00:01.50'", "-00:00:01.50"),
    ("y YEAR DEFAULT 2024", "2024"),
    ("b BIT(1) DEFAULT b'1'", "1"),
    ("b BIT(8) NOT NULL DEFAULT 0x0F", "15"),
    ("f BOOLEAN NOT NULL DEFAULT TRUE", "1"),
    ("e ENUM('new','open','done') NOT NULL DEFAULT 'open'", "open"),
    ("e ENUM('new','open') DEFAULT 'OPEN'", "open"),  # matched as the collation does, stored as defined
    ("e ENUM('new','open') NOT NULL", "new"),  # NOT NULL without DEFAULT: the first label
    ("s SET('a','b','c') DEFAULT 'c,a'", "a,c"),
    ("c CHAR(5) DEFAULT 'ab  '", "ab"),  # CHAR reads back without trailing spaces
    ("v VARCHAR(5) DEFAULT 'ab  '", "ab  "),
    ("v VARCHAR(5) NOT NULL", ""),
    ("v VARCHAR(5) CHARACTER SET latin1 DEFAULT _latin1'x'", "x"),
    ("n INT NOT NULL", "0"),
    ("n INT", None),
    ("n INT NULL DEFAULT NULL", None),
    ("bin BINARY(3) DEFAULT 'a'", "610000"),
    ("bin VARBINARY(4) DEFAULT X'00FF'", "00FF"),
    ("f DOUBLE DEFAULT 1.25", "1.25"),
    ("t TIMESTAMP NULL", None),
])
def test_existing_rows_get_the_value_the_source_gives_them(definition: str, expected: str | None) -> None:
    assert value(definition) == expected


@pytest.mark.parametrize(("definition", "why"), [
    ("ts TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP", "CURRENT_TIMESTAMP is evaluated by the server"),
    ("ts DATETIME DEFAULT NOW()", "NOW() is evaluated"),
    ("u CHAR(36) DEFAULT (UUID())", "(UUID()) is evaluated"),
    ("n INT DEFAULT (1 + 1)", "evaluated"),
    ("g INT AS (qty * 2) STORED", "generated"),
    ("g INT GENERATED ALWAYS AS (qty * 2) VIRTUAL", "generated"),
    ("k BIGINT NOT NULL AUTO_INCREMENT", "AUTO_INCREMENT"),
    ("k SERIAL", "AUTO_INCREMENT"),
    ("t TIMESTAMP DEFAULT '2024-01-01 00:00:00'", "time zone"),
    ("p DECIMAL(5,2) DEFAULT 1.555", "round"),
    ("n INT DEFAULT 1.5", "round"),
    ("n TINYINT DEFAULT 300", "out of range"),
    ("v VARCHAR(3) DEFAULT 'abcdef'", "longer"),
    ("v VARCHAR(10) DEFAULT 'é'", "ASCII"),
    ("e ENUM('a','b') DEFAULT 'c'", "labels"),
    ("f FLOAT(7,2) DEFAULT 1.5", "rounds"),
    ("d DATE DEFAULT '2024-1-1'", "YYYY-MM-DD"),
    ("j JSON DEFAULT '{}'", "json"),
])
def test_values_the_lake_cannot_derive_are_refused_with_the_reason(definition: str, why: str) -> None:
    with pytest.raises(Underivable, match=why.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")
                       .replace("+", r"\+")):
        value(definition)


def test_a_backslash_in_the_statement_makes_text_defaults_underivable() -> None:
    with pytest.raises(Underivable, match="backslash"):
        value("v VARCHAR(10) DEFAULT 'a'", backslash=True)
    assert value("n INT DEFAULT 5", backslash=True) == "5"


def test_several_columns_in_one_alter_each_get_their_value() -> None:
    impact = ddl_impact("ALTER", "ALTER TABLE t ADD COLUMN a INT NOT NULL DEFAULT 3 FIRST, "
                        "ADD b VARCHAR(4) DEFAULT 'x,y' AFTER a, ADD (c DATE, e ENUM('p','q') NOT NULL)", LAKE)
    assert impact.in_place and not impact.checks
    assert [(a.name, a.spark_type, a.value) for a in impact.adds] == [
        ("a", "int", "3"), ("b", "string", "x,y"), ("c", "date", None), ("e", "string", "p")]
    assert impact.adds[0].value_sql() == "CAST('3' AS INT)"


def test_rules_give_lake_names_and_leave_out_removed_columns() -> None:
    impact = ddl_impact("ALTER", "ALTER TABLE t ADD Status VARCHAR(3) DEFAULT 'a', ADD secret INT DEFAULT 1",
                        LAKE, lambda c: None if c == "secret" else c.lower())
    assert [(a.name, a.value) for a in impact.adds] == [("status", "a")]


@pytest.mark.parametrize(("sql", "reason"), [
    ("ALTER TABLE t ADD COLUMN ts TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP", "CURRENT_TIMESTAMP"),
    ("ALTER TABLE t DROP PARTITION p2023", "DROP PARTITION deletes the partition's rows"),
    ("ALTER TABLE t DROP PARTITION p1, p2", "DROP PARTITION"),
    ("ALTER TABLE t TRUNCATE PARTITION p1", "TRUNCATE PARTITION"),
    ("ALTER TABLE t EXCHANGE PARTITION p1 WITH TABLE t2", "EXCHANGE PARTITION"),
    ("ALTER TABLE t REORGANIZE PARTITION p1 INTO (PARTITION a VALUES LESS THAN (5), PARTITION b VALUES LESS "
     "THAN (10))", "REORGANIZE PARTITION"),
    ("ALTER TABLE t COALESCE PARTITION 2", "COALESCE PARTITION"),
    ("ALTER TABLE t CONVERT PARTITION p1 TO TABLE t1", "CONVERT"),
    ("ALTER TABLE t CONVERT TO CHARACTER SET latin1", "character set"),
    ("ALTER TABLE t DISCARD TABLESPACE", "DISCARD TABLESPACE"),
    ("ALTER TABLE t ADD SYSTEM VERSIONING", "SYSTEM VERSIONING"),
    ("ALTER TABLE t MODIFY name INT", "converts string values to int"),
    ("ALTER TABLE t MODIFY qty DECIMAL(10,2) AS (id * 2)", "generated"),
    ("ALTER TABLE t MODIFY price DECIMAL(6,1)", "converts decimal(6,2)"),
    ("ALTER TABLE t MODIFY price INT", "converts decimal(6,2) values to int"),
    ("ALTER TABLE t MODIFY qty VARCHAR(20)", "converts int values to varchar"),
    ("ALTER TABLE t MODIFY ratio DOUBLE(10,2)", "converts"),
    ("ALTER TABLE t MODIFY ts DATETIME", "converts timestamp"),
    ("ALTER TABLE t MODIFY raw BINARY(10)", "converts binary"),
    ("ALTER TABLE t MODIFY name VARCHAR(10) CHARACTER SET binary", "converts"),
    ("ALTER TABLE t ADD COLUMN IF NOT EXISTS qty INT DEFAULT 1", "IF NOT EXISTS"),
])
def test_statements_whose_effect_the_lake_cannot_derive_need_a_resync(sql: str, reason: str) -> None:
    impact = ddl_impact("ALTER", sql, LAKE)
    assert not impact.in_place
    assert any(reason in r for r in impact.resync), impact.resync


@pytest.mark.parametrize("sql", [
    "ALTER TABLE t ADD INDEX i (name), ALGORITHM=INPLACE, LOCK=NONE",
    "ALTER TABLE t ADD PRIMARY KEY (id)",
    "ALTER TABLE t ADD CONSTRAINT c CHECK (qty > 0)",
    "ALTER TABLE t ADD PARTITION (PARTITION p9 VALUES LESS THAN (MAXVALUE))",
    "ALTER TABLE t REBUILD PARTITION p1",
    "ALTER TABLE t PARTITION BY HASH (id) PARTITIONS 4",
    "ALTER TABLE t REMOVE PARTITIONING",
    "ALTER TABLE t DROP COLUMN name, RENAME COLUMN qty TO amount",
    "ALTER TABLE t ALTER COLUMN qty SET DEFAULT 5",
    "ALTER TABLE t ENGINE=InnoDB, DEFAULT CHARSET=utf8mb4",
    "ALTER TABLE t MODIFY qty BIGINT",          # widening: every int value fits
    "ALTER TABLE t MODIFY price DECIMAL(12,4)",  # widening
    "ALTER TABLE t MODIFY ratio DOUBLE",        # float32 → double is exact
    "ALTER TABLE t MODIFY d DATE COMMENT 'x'",
    "ALTER TABLE t ADD COLUMN IF NOT EXISTS fresh INT DEFAULT 1",
    "ALTER TABLE t MODIFY missing_in_lake INT",
])
def test_statements_the_lake_applies_in_place_without_checks(sql: str) -> None:
    impact = ddl_impact("ALTER", sql, LAKE)
    assert impact.in_place and not impact.checks, impact


@pytest.mark.parametrize(("sql", "rules"), [
    ("ALTER TABLE t MODIFY qty SMALLINT", ["values in [-32768, 32767]"]),
    ("ALTER TABLE t MODIFY qty INT UNSIGNED", ["values in [0, 4294967295]"]),
    ("ALTER TABLE t MODIFY qty INT NOT NULL", ["no NULL"]),
    ("ALTER TABLE t MODIFY id BIGINT NOT NULL AUTO_INCREMENT", ["no NULL", "no 0"]),
    ("ALTER TABLE t MODIFY price DECIMAL(4,2)", ["|values| < 100"]),
    ("ALTER TABLE t CHANGE name full_name VARCHAR(5)", ["ASCII text of at most 5 characters"]),
    ("ALTER TABLE t MODIFY name CHAR(5)", ["ASCII text of at most 5 characters", "no trailing space"]),
    ("ALTER TABLE t MODIFY st ENUM('a','b')", ["values among the new labels"]),
    ("ALTER TABLE t MODIFY raw VARBINARY(8)", ["at most 8 bytes"]),
])
def test_conversions_that_keep_the_values_the_lake_holds_are_in_place_under_checks(
        sql: str, rules: list[str]) -> None:
    impact = ddl_impact("ALTER", sql, LAKE)
    assert impact.in_place
    assert [c.rule.split(" (")[0] for c in impact.checks] == rules


def test_check_predicates_are_spark_sql_on_the_lake_name() -> None:
    impact = ddl_impact("ALTER", "ALTER TABLE t CHANGE `Name` nm VARCHAR(3) NOT NULL", LAKE, str.lower)
    assert [c.violation_sql for c in impact.checks] == [
        "`name` IS NULL", "(octet_length(`name`) <> char_length(`name`) OR char_length(`name`) > 3)"]


def test_other_statement_kinds_have_no_value_impact() -> None:
    for kind, sql in (("TRUNCATE", "TRUNCATE t"), ("DROP", "DROP TABLE t"), ("CREATE", "CREATE TABLE t (a INT)"),
                      ("RENAME", "RENAME TABLE t TO u"), ("ALTER", "CREATE INDEX i ON t (a)")):
        assert ddl_impact(kind, sql, LAKE) == ddl_impact("ALTER", "ALTER TABLE t ENGINE=InnoDB", LAKE)
