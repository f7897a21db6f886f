"""Quoting for the Spark SQL that binlake generates (identifiers and Delta path references)."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F


def quote(name: str) -> str:
    """A back-quoted Spark SQL identifier: ``a`b`` → ```a``b```."""
    return "`" + name.replace("`", "``") + "`"


def col(name: str) -> Column:
    """The column ``name`` taken literally (dots and spaces are part of the name)."""
    return F.col(quote(name))


def delta_ref(path: str) -> str:
    """``delta.`<path>``` for SQL statements on the Delta table at ``path``."""
    return f"delta.{quote(path)}"


def sql_string(text: str) -> str:
    """A Spark SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
