"""One source filter, three evaluations that must agree row by row: MariaDB running the predicate
the full load, resync and validation send (binlake.rowfilter.mariadb_sql), Spark running the merge's
columns over the same rows in lake types (binlake.merge.filtering), and the Python reference —
over numbers, decimals, dates with zero and invalid dates, DATETIME, TIMESTAMP, and text under a
case-insensitive, pad-space collation, with NULLs everywhere."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DateType,
    DecimalType,
    IntegerType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from binlake.devdb import LocalMariaDB
from binlake.merge.filtering import SPARK
from binlake.rowfilter import RowFilter, keeps, mariadb_sql, render
from binlake.typemap import ColumnType

pytestmark = [pytest.mark.spark]

TYPES = {"n": "int", "amount": "decimal(10,2)", "d": "date", "dt": "datetime(3)", "ts": "timestamp(3)",
         "name": "varchar"}
ROWS = [
    "(1, 5, 9.99, '2024-01-01', '2024-01-01 00:00:00.000', '2024-01-01 00:00:00.000', 'abc')",
    "(2, 10, 10.00, '2023-12-31', '2024-01-01 00:00:00.001', '2023-12-31 23:59:59.999', 'ABC')",
    "(3, NULL, NULL, '0000-00-00', '0000-00-00 00:00:00', NULL, NULL)",
    "(4, -3, -0.01, '2024-02-30', '2024-06-30 12:00:00.500', '2038-01-19 03:14:07.000', 'abc ')",
    "(5, 50, 50.50, '2024-06-15', NULL, '2024-06-15 12:00:00.000', 'é')",
    "(6, 51, 1000.00, NULL, '1999-12-31 23:59:59.999', '1970-01-01 00:00:01.000', 'abd')",
]
FILTERS = [
    [("n", [("between", "5", "50")])],
    [("n", [("noteq", "10")])],
    [("n", [("null",)]), ("amount", [("notnull",)])],
    [("amount", [("lte", "10"), ("gte", "1000")])],
    [("amount", [("notbetween", "0", "50.5")])],
    [("d", [("gte", "2024-01-01")])],
    [("d", [("null",)])],
    [("dt", [("lte", "2024-01-01")]), ("n", [("gte", "0")])],
    [("dt", [("between", "2024-01-01 00:00:00.001", "2024-12-31 00:00:00")])],
    [("ts", [("gte", "2024-01-01 00:00:00")])],
    [("ts", [("eq", "2024-01-01")])],
    [("name", [("eq", "abc")])],
    [("name", [("between", "abc", "abd"), ("eq", "é")])],
    [("name", [("noteq", "abc")])],
    [("name", [("gte", "b")])],
]


def row_filter(spec: list[tuple[str, list[tuple[str, ...]]]]) -> RowFilter:
    filters = []
    for column, conditions in spec:
        parsed = []
        for operator, *values in conditions:
            condition: dict[str, Any] = {"filter-operator": operator}
            if len(values) == 1:
                condition["value"] = values[0]
            elif values:
                condition["start-value"], condition["end-value"] = values
            parsed.append(condition)
        filters.append({"filter-type": "source", "column-name": column, "filter-conditions": parsed})
    return RowFilter.parse(filters, "rule 'test'")


def lake_value(column: str, value: Any) -> Any:
    """The lake value of a pymysql value: zero and invalid dates are NULL, as the full load writes them."""
    if column in ("d", "dt", "ts") and not isinstance(value, datetime.date):
        return None
    return value


def test_mariadb_spark_and_python_keep_the_same_rows(mariadb: LocalMariaDB, source_db: str, spark: Any) -> None:
    names = ["id", *TYPES]
    with mariadb.connect(source_db) as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = 'ALLOW_INVALID_DATES', time_zone = '+00:00'")
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY, n INT, amount DECIMAL(10,2), d DATE, dt DATETIME(3), "
                    "ts TIMESTAMP(3) NULL, name VARCHAR(10)) DEFAULT CHARSET utf8mb4 COLLATE utf8mb4_general_ci")
        cur.execute("INSERT INTO t VALUES " + ", ".join(ROWS))
        conn.commit()
        cur.execute("SELECT " + ", ".join(names) + " FROM t ORDER BY id")
        raw = list(cur.fetchall())
        rows = [{n: lake_value(n, v) for n, v in zip(names, r, strict=True)} for r in raw]
        selected: dict[str, list[int]] = {}
        types = {n: ColumnType.parse(t) for n, t in TYPES.items()}
        for spec in FILTERS:
            where = mariadb_sql(row_filter(spec).bind(lambda c: (c, types[c]), "t"))
            cur.execute(f"SELECT id FROM t WHERE {where} ORDER BY id")  # as the source reads: UTC session
            selected[where] = [int(r[0]) for r in cur.fetchall()]
    schema = StructType([StructField("id", IntegerType()), StructField("n", IntegerType()),
                         StructField("amount", DecimalType(10, 2)), StructField("d", DateType()),
                         StructField("dt", TimestampNTZType()), StructField("ts", TimestampType()),
                         StructField("name", StringType())])
    utc = [{**r, "ts": None if r["ts"] is None else r["ts"].replace(tzinfo=datetime.UTC)} for r in rows]
    frame = spark.createDataFrame([tuple(r[n] for n in names) for r in utc], schema).cache()

    found: dict[int, list[int]] = {}
    for spec in FILTERS:
        bound = row_filter(spec).bind(lambda c: (c, types[c]), "t")
        where = mariadb_sql(bound)
        in_mariadb = selected[where]
        in_spark = sorted(int(r[0]) for r in frame.where(F.coalesce(render(bound, SPARK), F.lit(False)))
                          .select("id").collect())
        in_python = [r["id"] for r in rows if keeps(bound, r)]
        assert in_mariadb == in_spark == in_python, (spec, where, in_mariadb, in_spark, in_python)
        found[FILTERS.index(spec)] = in_mariadb
    # a few written out: NULL never passes noteq; zero and invalid dates are NULL; text is not collated
    assert (found[1], found[5], found[6], found[11], found[12]) == (
        [1, 4, 5, 6], [1, 5], [3, 4, 6], [1], [1, 4, 5, 6])
