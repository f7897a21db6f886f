"""The Arrow chunk reader (ConnectorX in Spark tasks) against the JDBC reader, and byte-bounded chunks.

The JDBC reader is the oracle here: for the every-type table of ``test_full_load`` and every table
of the default peer SQL corpora, the full load with ``full_load.reader: arrow`` must give a lake
table equal, value by value and type by type, to the one ``full_load.reader: jdbc`` gives
(``test_full_load.test_every_type_round_trips_value_by_value`` checks the default reader against
the source itself). Then a table of 64 KiB BLOB rows with a small ``full_load.chunk_bytes``: chunks
of at most that many bytes, the lake equal to the source value by value.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import include_schema_rules, peer_sql_dir
from test_full_load import TYPES_DDL, TYPES_ROWS, lake_rows, state_of
from test_peer_sql_pipeline import DEFAULT_FILES

from binlake.devdb import LocalMariaDB
from binlake.lake import table_key
from binlake.snapshot.job import run_full_load

pytestmark = pytest.mark.spark

METADATA = ("_binlake_lsn", "_binlake_commit_ts")
READERS = ("arrow", "direct")  # each compared with the jdbc reader's lake


def lake_table(spark: Any, root: Path, schema: str, table: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(column types, sorted rows as text) of a lake table, binlake's metadata columns left out."""
    frame = spark.read.format("delta").load(f"{root}/{table_key(schema, table)}").drop(*METADATA)
    rows = sorted(repr(sorted(r.asDict().items())) for r in frame.collect())
    return frame.dtypes, rows


def load_both(spark: Any, make_config: Any, tmp_path: Path, schema: str, tables: list[str],
              **full_load: Any) -> None:
    """Load ``schema`` with each reader into its own lake and compare every table."""
    lakes = {reader: tmp_path / f"lake-{reader}" for reader in ("jdbc", *READERS)}
    for reader, lake in lakes.items():
        config = make_config(lake, include_schema_rules(schema), full_load={"reader": reader, **full_load})
        reports = run_full_load(config, spark)
        assert {r.status for r in reports} == {"complete"}
    for table, reader in ((t, r) for t in tables for r in READERS):
        jdbc, other = (lake_table(spark, lakes[r], schema, table) for r in ("jdbc", reader))
        assert other[0] == jdbc[0], f"{table}, {reader}: column types differ"
        mismatched = [(a, j) for a, j in zip(other[1], jdbc[1], strict=False) if a != j]
        assert len(other[1]) == len(jdbc[1]) and not mismatched, f"{table}, {reader}: {mismatched[:3]}"


def test_every_type_reads_the_same_with_arrow_as_with_jdbc(
    spark: Any, mariadb: LocalMariaDB, source_db: str, tmp_path: Path, make_config: Any
) -> None:
    mariadb.execute(TYPES_DDL, source_db)
    with mariadb.connect(source_db) as conn, conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        for row in TYPES_ROWS:
            cur.execute(f"INSERT INTO types VALUES {row}")
    load_both(spark, make_config, tmp_path, source_db, ["types"], chunk_rows=2)


ARROW_DEFAULT_FILES = ("debezium__json_test.sql",)
"""Of the pipeline's default peer files, those the default suite reads both ways (the rest: slow)."""


@pytest.mark.parametrize("file_name", [
    pytest.param(name, marks=() if name in ARROW_DEFAULT_FILES else pytest.mark.slow)
    for name in (*DEFAULT_FILES, "debezium__binary_column_test.sql", "debezium__geometry_test_5.sql")])
def test_peer_corpus_reads_the_same_with_arrow_as_with_jdbc(
    file_name: str, spark: Any, mariadb: LocalMariaDB, tmp_path: Path, make_config: Any
) -> None:
    folder = peer_sql_dir()
    database = "arrow_" + re.sub(r"[^a-z0-9]+", "_", file_name.lower().removesuffix(".sql"))[:40]
    mariadb.execute(f"DROP DATABASE IF EXISTS `{database}`")
    mariadb.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
    try:
        mariadb.load_sql_file(folder / file_name, database)
        tables = [str(name) for (name,) in mariadb.execute(
            f"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{database}' "
            "AND TABLE_TYPE = 'BASE TABLE'")]
        assert tables
        load_both(spark, make_config, tmp_path, database, tables)
    finally:
        mariadb.execute(f"DROP DATABASE IF EXISTS `{database}`")


BLOB_ROWS = 48
BLOB_BYTES = 64 * 1024
CHUNK_BYTES = 256 * 1024


@pytest.mark.parametrize("reader", ["direct", "arrow", "jdbc"])
def test_blob_rows_load_in_byte_bounded_chunks(
    reader: str, spark: Any, mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any
) -> None:
    mariadb.execute("CREATE TABLE blobs (id INT PRIMARY KEY, data LONGBLOB, note VARCHAR(20))", source_db)
    with mariadb.connect(source_db) as conn, conn.cursor() as cur:
        for i in range(1, BLOB_ROWS + 1):  # distinct, incompressible-ish bytes per row
            data = bytes((i * j * 7 + j) % 256 for j in range(BLOB_BYTES))
            cur.execute("INSERT INTO blobs VALUES (%s, %s, %s)", (i, data, f"n{i}"))
        cur.execute("SELECT id, data, note FROM blobs")
        source = {row[0]: (bytes(row[1]), row[2]) for row in cur.fetchall()}
    config = make_config(lake_dir, include_schema_rules(source_db),
                         full_load={"reader": reader, "chunk_bytes": CHUNK_BYTES, "arrow_batch_bytes": CHUNK_BYTES})
    [report] = run_full_load(config, spark)

    lake = {r["id"]: (bytes(r["data"]), r["note"]) for r in lake_rows(spark, lake_dir, source_db, "blobs")}
    assert lake == source
    state = state_of(config, source_db, "blobs")
    per_chunk = CHUNK_BYTES // BLOB_BYTES  # the row estimate is a little above 64 KiB: at most this many rows
    assert all(chunk.rows <= per_chunk for chunk in state.chunks), [c.rows for c in state.chunks]
    # even split of [1, 48] at (256 KiB // estimated row bytes) = 3 rows per chunk
    assert report.chunks == len(state.chunks) == math.ceil(BLOB_ROWS / (per_chunk - 1))
