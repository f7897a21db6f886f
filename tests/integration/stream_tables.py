"""Helpers for tests of tables that come and go while replication runs (new tables, online schema
change swaps): wait for the capture, read a table from the source and from the lake."""

from __future__ import annotations

from typing import Any

from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.lake import Lake, table_key
from binlake.rules import TableMapping, TableTarget


def source_rows(mariadb: LocalMariaDB, db: str, table: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in mariadb.execute(f"SELECT * FROM `{table}` ORDER BY 1", db)]


def lake_rows(spark: Any, config: PipelineConfig, db: str, table: str) -> list[tuple[Any, ...]]:
    frame = spark.read.format("delta").load(Lake.from_config(config).uri(table_key(db, table)))
    names = [f"`{c}`" for c in frame.columns if not c.startswith("_binlake_")]
    return [tuple(r) for r in frame.select(*names).orderBy(names[0]).collect()]


def lake_columns(spark: Any, config: PipelineConfig, db: str, table: str) -> list[str]:
    frame = spark.read.format("delta").load(Lake.from_config(config).uri(table_key(db, table)))
    return [c for c in frame.columns if not c.startswith("_binlake_")]


def selected(config: PipelineConfig, mariadb: LocalMariaDB, db: str) -> list[TableTarget]:
    """The targets of the tables of ``db`` the mapping selects now."""
    mapping = TableMapping.parse(config.table_mappings)
    names = [str(r[0]) for r in mariadb.execute(f"SHOW TABLES FROM `{db}`")]
    return [t for n in names if (t := mapping.target_for(db, n)) is not None]


