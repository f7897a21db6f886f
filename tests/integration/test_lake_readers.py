"""The lake read as its users read it: after a full load and CDC (inserts, updates, deletes, a column
rename and a column drop), every lake table read with Spark SQL, delta-rs (``to_pyarrow_table`` and
``QueryBuilder``) and polars (``read_delta``) equals the source, value for value — in the default
``broad`` mode with every reader; in ``modern`` with the readers that read deletion vectors and
column mapping (the others refuse the table, naming the feature). And the one-commit rewrite a
broad table renames columns with keeps what the merge relies on (binlake.merge.reshape)."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from capture_support import CaptureThread, checkpoint_reached, master_position, wait_for
from conftest import include_schema_rules
from deltalake import DeltaTable, QueryBuilder
from merge_helpers import T0, Source, commit_time, load_table, merge_config, rows, run_merge
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.lake import Lake, table_key
from binlake.merge.job import run as run_merge_job
from binlake.merge.reshape import rewrite_table
from binlake.merge.target import TargetTable
from binlake.merge.txn import idempotent
from binlake.snapshot.delta import create_table
from binlake.snapshot.job import run_full_load
from binlake.tablefeatures import DEFAULT, ColumnChange

pytestmark = [pytest.mark.spark]

NO_COLUMN_MAPPING = r"(?i)column.?mapping"  # a table-features protocol names columnMapping, reader version 2 does not
RENAMED = [("id", "bigint", True), ("title", "varchar", False), ("qty", "int", False)]

KINDS = """CREATE TABLE kinds (id INT PRIMARY KEY, amount DECIMAL(20,4), huge DECIMAL(50,5), ratio DOUBLE,
    ts TIMESTAMP(6) NULL, dt DATETIME(6), d DATE, b VARBINARY(16), doc JSON, name VARCHAR(40), u BIGINT UNSIGNED)"""
NOTES = "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT, extra INT)"
KINDS_INSERT = "INSERT INTO kinds VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"

# What a delta-rs/polars user gets: the exact Arrow/polars type of every column
ARROW_TYPES = {"id": pa.int32(), "amount": pa.decimal128(20, 4), "huge": pa.string(), "ratio": pa.float64(),
               "ts": pa.timestamp("us", tz="UTC"), "dt": pa.timestamp("us"), "d": pa.date32(), "b": pa.binary(),
               "doc": pa.string(), "title": pa.string(), "u": pa.decimal128(20, 0)}
POLARS_TYPES = {"id": pl.Int32, "amount": pl.Decimal(20, 4), "huge": pl.String, "ratio": pl.Float64,
                "ts": pl.Datetime("us", "UTC"), "dt": pl.Datetime("us"), "d": pl.Date, "b": pl.Binary,
                "doc": pl.String, "title": pl.String, "u": pl.Decimal(20, 0)}


def kinds_row(i: int, name: str) -> tuple[Any, ...]:
    return (i, Decimal(f"{i}.{i:04d}") * (-1) ** i, Decimal(f"{'9' * 44}.{i:05d}"), i / 7,
            datetime.datetime(2026, 3, 29, 1, 30, i, 123456), datetime.datetime(1000, 1, 1, 0, 0, i, 500000),
            datetime.date(1000 + i, 12, 31), bytes([0, 255, i]), f'{{"k": [{i}, "é"], "n": null}}', name,
            18446744073709551615 - i)


def workload_before_snapshot(db: LocalMariaDB, schema: str) -> None:
    with db.connect(schema) as conn, conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        cur.execute("UPDATE kinds SET name = 'changed before the snapshot' WHERE id = 1")


def workload_after_snapshot(db: LocalMariaDB, schema: str) -> None:
    """Inserts, updates, deletes; a column rename and a drop, with changes on both sides of each."""
    with db.connect(schema) as conn, conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        cur.executemany(KINDS_INSERT, [kinds_row(i, f"new {i}") for i in (7, 8)])
        cur.execute("UPDATE kinds SET amount = -0.0001, huge = -1.5, ratio = 1e300, ts = '2038-01-19 03:14:07.999999',"
                    " dt = '9999-12-31 23:59:59.999999', d = '2000-02-29', b = x'', doc = '[]', name = 'ü',"
                    " u = 0 WHERE id = 2")
        cur.execute("DELETE FROM kinds WHERE id = 3")
        cur.execute("ALTER TABLE kinds RENAME COLUMN name TO title")
        cur.execute("UPDATE kinds SET title = CONCAT(title, ' renamed') WHERE id IN (4, 7)")
        cur.executemany(KINDS_INSERT, [kinds_row(9, "after the rename")])
        cur.execute("DELETE FROM kinds WHERE id = 5")
        cur.execute("UPDATE notes SET body = 'before the drop', extra = 99 WHERE id = 1")
        cur.execute("ALTER TABLE notes DROP COLUMN extra")
        cur.execute("INSERT INTO notes VALUES (4, 'after the drop')")
        cur.execute("DELETE FROM notes WHERE id = 2")


def replicate(db: LocalMariaDB, schema: str, config: PipelineConfig, spark: Any) -> None:
    db.execute(KINDS, schema)
    db.execute(NOTES, schema)
    with db.connect(schema) as conn, conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        cur.executemany(KINDS_INSERT, [kinds_row(i, f"row {i}") for i in range(1, 7)])
        cur.execute("INSERT INTO kinds (id) VALUES (0)")  # every other column NULL
        cur.executemany("INSERT INTO notes VALUES (%s, %s, %s)", [(i, f"note {i}", i) for i in range(1, 4)])
    capture = CaptureThread(config).start()
    try:
        wait_for(lambda: capture.error is not None or checkpoint_reached(config, master_position(db))(), 30,
                 "the capture to start")
        workload_before_snapshot(db, schema)
        run_full_load(config, spark)
        workload_after_snapshot(db, schema)
        end = master_position(db)
        wait_for(lambda: capture.error is not None or checkpoint_reached(config, end)(), 60, "the capture")
    finally:
        capture.stop()
    run_merge_job(spark, config, available_now=True)


def canonical(value: Any) -> Any:
    """One comparable form of a value whichever reader returned it (a TIMESTAMP as UTC wall clock)."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        return value.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def ordered(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted((tuple(canonical(v) for v in row) for row in rows),
                  key=lambda r: (int(r[0]), tuple("" if v is None else str(v) for v in r[1:])))


def source_rows(db: LocalMariaDB, schema: str, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with db.connect(schema) as conn, conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        cur.execute(f"SELECT * FROM {table}")
        return [d[0] for d in cur.description], ordered(list(cur.fetchall()))


def spark_rows(spark: Any, path: str, columns: list[str]) -> list[tuple[Any, ...]]:
    """Spark SQL; TIMESTAMP as text in the session's UTC (Python's datetime would use the local zone)."""
    frame = spark.sql(f"SELECT * FROM delta.`{path}`")
    select = [F.date_format(f.name, "yyyy-MM-dd HH:mm:ss.SSSSSS").alias(f.name) if isinstance(f.dataType, TimestampType)
              else F.col(f.name) for f in frame.schema.fields if f.name in columns]
    return ordered([tuple(r) for r in frame.select(*select).collect()])


def arrow_rows(table: pa.Table, columns: list[str]) -> list[tuple[Any, ...]]:
    assert table.column_names[:len(columns)] == columns
    return ordered([tuple(r[c] for c in columns) for r in table.select(columns).to_pylist()])


def delta_rs_rows(path: str, columns: list[str]) -> list[tuple[Any, ...]]:
    return arrow_rows(DeltaTable(path).to_pyarrow_table(), columns)


def query_builder_rows(path: str, columns: list[str]) -> list[tuple[Any, ...]]:
    batches = QueryBuilder().register("t", DeltaTable(path)).execute("SELECT * FROM t").read_all()
    return arrow_rows(pa.table(batches), columns)


def polars_rows(path: str, columns: list[str]) -> list[tuple[Any, ...]]:
    frame = pl.read_delta(path)
    assert frame.columns[:len(columns)] == columns
    return ordered(frame.select(columns).rows())


@pytest.fixture
def replicated(spark: Any, mariadb: LocalMariaDB, source_db: str, lake_dir: Path,
               make_config: Callable[..., PipelineConfig], request: pytest.FixtureRequest) -> dict[str, str]:
    config = make_config(lake_dir, include_schema_rules(source_db), capture={"flush_seconds": 0.3, "start": "end"},
                         lake={"reader_compatibility": request.param})
    replicate(mariadb, source_db, config, spark)
    lake = Lake(str(lake_dir))
    return {t: lake.uri(table_key(source_db, t)) for t in ("kinds", "notes")}


@pytest.mark.parametrize("replicated", ["broad"], indirect=True)
def test_broad_tables_read_exactly_with_spark_delta_rs_and_polars(
    spark: Any, mariadb: LocalMariaDB, source_db: str, replicated: dict[str, str]
) -> None:
    for table, path in replicated.items():
        columns, expected = source_rows(mariadb, source_db, table)
        assert len(expected) == {"kinds": 8, "notes": 3}[table]
        assert spark_rows(spark, path, columns) == expected, f"{table}: Spark SQL"
        assert delta_rs_rows(path, columns) == expected, f"{table}: delta-rs to_pyarrow_table"
        assert query_builder_rows(path, columns) == expected, f"{table}: delta-rs QueryBuilder"
        assert polars_rows(path, columns) == expected, f"{table}: polars read_delta"
        protocol = DeltaTable(path).protocol()
        assert set(protocol.reader_features or ()) <= {"timestampNtz"}, protocol
        assert "columnMapping" not in (protocol.writer_features or ()), protocol
        assert "deletionVectors" not in (protocol.writer_features or ()), protocol
    schema = DeltaTable(replicated["kinds"]).to_pyarrow_table().schema
    assert {n: schema.field(n).type for n in ARROW_TYPES} == ARROW_TYPES
    frame = pl.read_delta(replicated["kinds"])
    assert {n: frame.schema[n] for n in POLARS_TYPES} == POLARS_TYPES


@pytest.mark.slow  # a second full load + merge: ~40 s more on a quiet machine
@pytest.mark.parametrize("replicated", ["modern"], indirect=True)
def test_modern_tables_read_exactly_where_the_reader_knows_their_features(
    spark: Any, mariadb: LocalMariaDB, source_db: str, replicated: dict[str, str]
) -> None:
    for table, path in replicated.items():
        columns, expected = source_rows(mariadb, source_db, table)
        assert spark_rows(spark, path, columns) == expected, f"{table}: Spark SQL"
        assert query_builder_rows(path, columns) == expected, f"{table}: delta-rs QueryBuilder"
        with pytest.raises(Exception, match=r"columnMapping|deletionVectors"):
            DeltaTable(path).to_pyarrow_table()
        with pytest.raises(Exception, match=NO_COLUMN_MAPPING):
            pl.read_delta(path)
        assert {"columnMapping", "deletionVectors"} <= set(DeltaTable(path).protocol().reader_features or ())


def test_the_one_commit_rewrite_keeps_rows_properties_and_transaction_ids(spark: Any, lake_dir: Path) -> None:
    path = str(lake_dir / "t")
    spark.sql(f"CREATE TABLE delta.`{path}` (id BIGINT, k STRING, v DECIMAL(20,2), gone INT, _binlake_lsn BIGINT) "
              "USING delta TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true', "
              "'delta.dataSkippingStatsColumns' = '`id`,`k`,`_binlake_lsn`', 'binlake.merge.schemaLsn' = '7')")
    with idempotent(spark, "app", 1):
        spark.sql(f"INSERT INTO delta.`{path}` VALUES (1, 'a', 1.50, 10, 100), (2, NULL, NULL, NULL, 101)")
    table = TargetTable.load(spark, path)
    version = DeltaTable(path).version()
    rewrite_table(spark, path, ["id", "k", "v", "gone", "_binlake_lsn"], table.properties,
                  renames=[("k", "key")], drops=["gone"], retypes={"v": "decimal(22,2)"})
    assert DeltaTable(path).version() == version + 1  # one commit
    after = TargetTable.load(spark, path)
    assert after.columns == {"id": "bigint", "key": "string", "v": "decimal(22,2)"}
    assert after.properties["delta.dataSkippingStatsColumns"] == "`id`,`key`,`_binlake_lsn`"
    assert after.properties["binlake.merge.schemaLsn"] == "7"
    assert after.properties["delta.enableChangeDataFeed"] == "true"
    assert "delta.columnMapping.mode" not in after.properties
    assert sorted(DeltaTable(path).to_pyarrow_table().to_pylist(), key=lambda r: r["id"]) == [
        {"id": 1, "key": "a", "v": Decimal("1.50"), "_binlake_lsn": 100},
        {"id": 2, "key": None, "v": None, "_binlake_lsn": 101}]
    with idempotent(spark, "app", 1):  # a replay of the commit before the rewrite: Delta still skips it
        spark.sql(f"INSERT INTO delta.`{path}` VALUES (3, 'c', 3.00, 102)")
    assert spark.read.format("delta").load(path).count() == 2
    old = spark.read.format("delta").option("versionAsOf", version).load(path)
    assert old.columns == ["id", "k", "v", "gone", "_binlake_lsn"]  # time travel reads the old columns


def test_an_scd2_table_renames_a_column_in_one_rewrite_keeping_every_version(spark: Any, lake_dir: Path) -> None:
    lake = Lake(str(lake_dir))
    src = Source(lake)
    path = load_table(spark, lake, "hist", [(1, "a", 1), (2, "b", 2)], 100)
    src.write(src.upd(110, "hist", ({"id": 1, "name": "a", "qty": 1}, {"id": 1, "name": "a2", "qty": 1})),
              src.ddl(120, "hist", "ALTER", "ALTER TABLE hist RENAME COLUMN name TO title"),
              src.upd(130, "hist", ({"id": 1, "title": "a2", "qty": 1}, {"id": 1, "title": "a3", "qty": 1}),
                      layout=RENAMED),
              src.dele(140, "hist", {"id": 2, "title": "b", "qty": 2}, layout=RENAMED))
    run_merge(spark, merge_config(lake_dir, scd2_tables=["shop.hist"]))
    t0, ts = T0.replace(tzinfo=None), (lambda pos: commit_time(pos).replace(tzinfo=None))
    assert rows(spark, path, "id", "title", "_binlake_valid_from", "_binlake_valid_to", "_binlake_is_current",
                order=("id", "_binlake_lsn")) == [
        (1, "a", t0, ts(110), False), (1, "a2", ts(110), ts(130), False), (1, "a3", ts(130), None, True),
        (2, "b", t0, ts(140), False)]
    history = [r["operation"] for r in spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect()]
    assert "REPLACE TABLE AS SELECT" in history and "RENAME COLUMN" not in history
    assert "columnMapping" not in (DeltaTable(path).protocol().writer_features or ())
    assert polars_rows(path, ["id", "title"]) == ordered([(1, "a"), (1, "a2"), (1, "a3"), (2, "b")])


@pytest.mark.slow  # the default (rewrite) is tested above; this is the opt-in alternative
def test_on_column_rename_column_mapping_turns_it_on_with_a_warning_naming_the_readers(
    spark: Any, lake_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lake = Lake(str(lake_dir))
    src = Source(lake)
    path = load_table(spark, lake, "cm", [(1, "a", 1), (2, "b", 2)], 100)
    src.write(src.ddl(110, "cm", "ALTER", "ALTER TABLE cm RENAME COLUMN name TO title"),
              src.upd(120, "cm", ({"id": 1, "title": "a", "qty": 1}, {"id": 1, "title": "a1", "qty": 1}),
                      layout=RENAMED))
    config = merge_config(lake_dir)
    config = config.model_copy(update={"lake": config.lake.model_copy(
        update={"on_column_rename": ColumnChange.COLUMN_MAPPING})})
    with caplog.at_level(logging.WARNING):
        run_merge(spark, config)
    assert rows(spark, path, "id", "title", "qty") == [(1, "a1", 1), (2, "b", 2)]
    assert TargetTable.load(spark, path).properties["delta.columnMapping.mode"] == "name"
    warnings = [r.getMessage() for r in caplog.records if "turning on Delta column mapping" in r.getMessage()]
    assert len(warnings) == 1 and "polars" in warnings[0] and "to_pyarrow_table" in warnings[0], warnings
    assert query_builder_rows(path, ["id", "title", "qty"]) == ordered([(1, "a1", 1), (2, "b", 2)])
    with pytest.raises(Exception, match=NO_COLUMN_MAPPING):
        pl.read_delta(path)
    with pytest.raises(Exception, match=NO_COLUMN_MAPPING):  # refused, not read as NULLs (reader protocol 3)
        DeltaTable(path).to_pyarrow_table()
    assert "columnMapping" in (DeltaTable(path).protocol().reader_features or ())


def test_a_broad_table_with_a_name_delta_needs_column_mapping_for_is_refused_by_readers_without_it(
    spark: Any, lake_dir: Path
) -> None:
    """delta-rs 1.6's pyarrow path reads a reader-protocol-2 column-mapping table as all NULLs,
    silently: binlake's column-mapping tables carry reader protocol 3, so it refuses them instead."""
    path = str(lake_dir / "spaced")
    schema = StructType([StructField("id", LongType()), StructField("first name", StringType()),
                         StructField("_binlake_lsn", LongType())])
    create_table(spark, path, schema, DEFAULT, ["id", "_binlake_lsn"])
    spark.createDataFrame([(1, "Ada", 5)], schema).write.format("delta").mode("append").save(path)
    assert {"columnMapping", "timestampNtz"} == set(DeltaTable(path).protocol().reader_features or ())
    with pytest.raises(Exception, match=NO_COLUMN_MAPPING):
        DeltaTable(path).to_pyarrow_table()
    with pytest.raises(Exception, match=NO_COLUMN_MAPPING):
        pl.read_delta(path)
    assert query_builder_rows(path, ["id", "first name"]) == [("1", "Ada")]
