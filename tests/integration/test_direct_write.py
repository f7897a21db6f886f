"""The direct write path (``full_load.reader: direct``) against the JDBC path's lake, file by file.

The JDBC path is the oracle (``test_full_load`` checks it against the source itself). For the
every-type table, the lake written by Spark tasks writing Parquet with pyarrow and committing with
delta-rs (the table created by delta-rs too) must equal the JDBC path's lake: the same Delta
schema, properties and protocol, the same values read by Spark,
by delta-rs and by polars (metadata columns included, as values of their types), and the same
Parquet logical types in the data files. Then: the load killed between a chunk's commit and its
record resumes without re-reading a committed chunk; a ``modern`` table (column mapping, deletion
vectors) with a column name needing mapping; a table with an add-column rule falls back to Spark.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from conftest import include_schema_rules
from test_full_load import TYPES_DDL, TYPES_ROWS, crash_after, insert_ids, lake_rows, state_of

from binlake.devdb import LocalMariaDB
from binlake.lake import table_key
from binlake.snapshot.job import FullLoadError, run_full_load

pytestmark = pytest.mark.spark


def commits(table: Path) -> list[dict[str, Any]]:
    """The commitInfo of every commit of a Delta table, in version order."""
    infos = []
    for entry in sorted((table / "_delta_log").glob("*.json")):
        for line in entry.read_text().splitlines():
            action = json.loads(line)
            if "commitInfo" in action:
                infos.append(action["commitInfo"])
    return infos


def load_types(mariadb: LocalMariaDB, source_db: str) -> None:
    mariadb.execute(TYPES_DDL, source_db)
    with mariadb.connect(source_db) as conn, conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        for row in TYPES_ROWS:
            cur.execute(f"INSERT INTO types VALUES {row}")


def parquet_types(table: Path) -> dict[str, tuple[str, str]]:
    """``{column: (physical type, logical type)}`` of the table's data files (all files agree)."""
    found: dict[str, set[tuple[str, str]]] = {}
    for file in table.glob("*.parquet"):
        schema = pq.ParquetFile(file).schema
        for index in range(len(schema)):
            column = schema.column(index)
            found.setdefault(column.name, set()).add((column.physical_type, str(column.logical_type)))
    assert all(len(kinds) == 1 for kinds in found.values()), found
    return {name: next(iter(kinds)) for name, kinds in found.items()}


def test_direct_lake_equals_the_jdbc_lake_for_every_type_and_reader(
    spark: Any, mariadb: LocalMariaDB, source_db: str, tmp_path: Path, make_config: Any
) -> None:
    load_types(mariadb, source_db)
    tables = {}
    for reader in ("jdbc", "direct"):
        chunk_rows = 2 if reader == "direct" else 100  # several delta-rs commits; one Spark write
        config = make_config(tmp_path / reader, include_schema_rules(source_db),
                             full_load={"reader": reader, "chunk_rows": chunk_rows})
        [report] = run_full_load(config, spark)
        assert report.status == "complete" and report.rows == 4
        tables[reader] = tmp_path / reader / table_key(source_db, "types")
    direct, jdbc = tables["direct"], tables["jdbc"]
    written = [c for c in commits(direct) if c.get("operation") == "WRITE"]
    assert written and all(c["engineInfo"].startswith("delta-rs") for c in written)  # the direct path wrote them
    assert all(json.loads(c["userMetadata"])["chunk"] >= 0 for c in written)

    # Spark: same schema, same values; the metadata columns as values of the same types
    frames = {r: spark.read.format("delta").load(str(t)) for r, t in tables.items()}
    assert frames["direct"].dtypes == frames["jdbc"].dtypes
    rows = {r: sorted((row.asDict() for row in f.collect()), key=lambda row: row["id"]) for r, f in frames.items()}
    meta = ("_binlake_lsn", "_binlake_commit_ts")
    strip = {r: [{k: v for k, v in row.items() if k not in meta} for row in rs] for r, rs in rows.items()}
    assert strip["direct"] == strip["jdbc"]
    state = state_of(make_config(tmp_path / "direct", include_schema_rules(source_db)), source_db, "types")
    lsns = {c.position.lsn for c in state.chunks if c.position is not None and c.rows}
    assert {row["_binlake_lsn"] for row in rows["direct"]} <= lsns
    assert all(type(row["_binlake_commit_ts"]) is type(rows["jdbc"][0]["_binlake_commit_ts"]) for row in rows["direct"])

    # the data files: the same physical and logical types (decimals as integers where Spark writes
    # them so), but TIMESTAMP: Spark writes the deprecated INT96, the direct path INT64 microseconds (UTC)
    direct_types, jdbc_types = parquet_types(direct), parquet_types(jdbc)
    assert direct_types.keys() == jdbc_types.keys()
    differ = {c: (direct_types[c], jdbc_types[c]) for c in direct_types if direct_types[c] != jdbc_types[c]}
    assert set(differ) == {"ts", "_binlake_commit_ts"}, differ
    for column in differ:
        assert jdbc_types[column][0] == "INT96" and direct_types[column][0] == "INT64"
        assert "isAdjustedToUTC=true, timeUnit=microseconds" in direct_types[column][1]

    # the table delta-rs created is Spark's: schema, properties, reader features (writer features
    # but the legacy appendOnly/invariants Spark lists after upgrading a legacy protocol)
    from deltalake import DeltaTable

    made = {r: DeltaTable(str(t)) for r, t in tables.items()}
    assert made["direct"].schema().to_json() == made["jdbc"].schema().to_json()
    assert made["direct"].metadata().configuration == made["jdbc"].metadata().configuration
    protocols = {r: t.protocol() for r, t in made.items()}
    assert protocols["direct"].reader_features == protocols["jdbc"].reader_features
    assert set(protocols["direct"].writer_features or []) == set(protocols["jdbc"].writer_features or []) - {
        "appendOnly", "invariants"}
    assert commits(direct)[0]["engineInfo"].startswith("delta-rs")

    # delta-rs and polars read the same values from both tables

    def rs_rows(path: Path) -> list[dict[str, Any]]:
        table = DeltaTable(str(path)).to_pyarrow_table().drop_columns(list(meta)).to_pylist()
        return sorted(table, key=lambda row: row["id"])

    assert rs_rows(direct) == rs_rows(jdbc)
    import polars as pl

    def pl_rows(path: Path) -> list[dict[str, Any]]:
        return pl.read_delta(str(path)).drop(list(meta)).sort("id").to_dicts()

    assert pl_rows(direct) == pl_rows(jdbc)


def test_direct_load_resumes_after_a_crash_without_rereading_committed_chunks(
    spark: Any, mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any
) -> None:
    mariadb.execute("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))", source_db)
    ids = list(range(1, 61))
    insert_ids(mariadb, source_db, "t", ids)
    config = make_config(lake_dir, include_schema_rules(source_db),
                         full_load={"reader": "direct", "chunk_rows": 10, "max_parallel_chunks": 1})
    # killed between a chunk's Delta commit (delta-rs) and its state record
    with pytest.raises(FullLoadError, match="simulated crash"):
        run_full_load(config, spark, after_commit=crash_after(2))
    before = state_of(config, source_db, "t")
    assert sum(c.committed for c in before.chunks) == 1  # the 2nd is in Delta only
    mariadb.execute("UPDATE t SET v = 'changed'", source_db)  # visible only to chunks read from now on
    [report] = run_full_load(config, spark)
    after = state_of(config, source_db, "t")
    assert report.status == "complete" and after.load_id == before.load_id and after.rows == 60
    rows = lake_rows(spark, lake_dir, source_db, "t")
    assert sorted(r["id"] for r in rows) == ids  # nothing doubled, nothing lost
    assert sum(r["v"] == "changed" for r in rows) == 40  # the 2 chunks committed before kept their values
    assert all(c.delta_version is not None for c in after.chunks)
    assert after.size_bytes and after.size_bytes > 0


@pytest.mark.slow  # two more loads (~30 s at load 18); column mapping's physical names on the direct path
def test_direct_modern_table_with_column_mapping_equals_jdbc(
    spark: Any, mariadb: LocalMariaDB, source_db: str, tmp_path: Path, make_config: Any
) -> None:
    mariadb.execute("CREATE TABLE m (id BIGINT PRIMARY KEY, `first name` VARCHAR(20), amount DECIMAL(12,2), "
                    "at DATETIME(3), d DATE)", source_db)
    mariadb.execute("INSERT INTO m VALUES (1, 'a', 1.50, '2024-01-02 03:04:05.678', '1000-01-01'), "
                    "(2, NULL, -0.01, NULL, '9999-12-31'), (3, 'ü', NULL, '1970-01-01 00:00:00', NULL)", source_db)
    values = {}
    for reader in ("jdbc", "direct"):
        config = make_config(tmp_path / reader, include_schema_rules(source_db),
                             full_load={"reader": reader, "chunk_rows": 1}, lake={"reader_compatibility": "modern"})
        [report] = run_full_load(config, spark)
        assert report.status == "complete"
        frame = spark.read.format("delta").load(str(tmp_path / reader / table_key(source_db, "m")))
        values[reader] = (frame.dtypes, sorted(map(str, frame.drop("_binlake_lsn", "_binlake_commit_ts").collect())))
    assert values["direct"] == values["jdbc"]
    assert len(values["direct"][1]) == 3


def test_a_table_with_an_add_column_rule_is_written_by_spark(
    spark: Any, mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mariadb.execute("CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(5))", source_db)
    mariadb.execute("INSERT INTO a VALUES (1, 'x'), (2, 'y')", source_db)
    rules = include_schema_rules(source_db)
    rules["rules"].append({
        "rule-type": "transformation", "rule-id": "9", "rule-name": "origin", "rule-target": "column",
        "object-locator": {"schema-name": source_db, "table-name": "a"}, "rule-action": "add-column",
        "value": "origin", "expression": "'db1'", "data-type": {"type": "string", "length": 10},
    })
    config = make_config(lake_dir, rules, full_load={"reader": "direct"})
    [report] = run_full_load(config, spark)
    assert report.status == "complete"
    assert "not the direct path" in caplog.text
    rows = sorted((r["id"], r["v"], r["origin"]) for r in lake_rows(spark, lake_dir, source_db, "a"))
    assert rows == [(1, "x", "db1"), (2, "y", "db1")]


def test_a_chunk_written_by_a_spark_task_equals_the_one_written_in_the_driver(
    spark: Any, mariadb: LocalMariaDB, source_db: str, tmp_path: Path, make_config: Any
) -> None:
    """A cluster master runs the direct path's chunks as Spark tasks (a local one in the driver's
    threads): the same file content and position either way."""
    from binlake.rules import TableMapping
    from binlake.snapshot import deltars
    from binlake.snapshot.arrowread import arrow_source
    from binlake.snapshot.direct import chunk_task, create_direct_table, lake_plan, run_chunk, write_chunk
    from binlake.snapshot.discovery import discover_tables
    from binlake.source import connect
    from binlake.tablefeatures import TableFeatures

    load_types(mariadb, source_db)
    config = make_config(tmp_path / "lake", include_schema_rules(source_db))
    with connect(config.source) as conn:
        [table] = discover_tables(conn, TableMapping.parse(config.table_mappings))
    path = str(tmp_path / "lake" / "t")
    assert create_direct_table(path, table, TableFeatures.of(config.lake))
    task = chunk_task(arrow_source(config), table, "TRUE", 1000, lake_plan(table, deltars.table_layout(path)), path)
    in_task, in_driver = run_chunk(spark, task), write_chunk(task)
    assert in_task.rows == in_driver.rows == 4
    assert (in_task.snapshot_file, in_task.lsn) == (in_driver.snapshot_file, in_driver.lsn)
    [a], [b] = in_task.files, in_driver.files
    assert a.path != b.path and a.rows == b.rows == 4 and json.loads(a.stats) == json.loads(b.stats)
    read = [pq.read_table(Path(path) / f.path).drop_columns(["_binlake_commit_ts"]) for f in (a, b)]
    assert read[0].equals(read[1])
