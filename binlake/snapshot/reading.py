"""What one chunk read sends to the source and how Spark turns its rows into lake rows (pure).

Each chunk is read by one Spark task on its own JDBC connection. The connection first runs
:data:`SESSION_INIT` — UTC session time zone, REPEATABLE READ, ``START TRANSACTION WITH CONSISTENT
SNAPSHOT, READ ONLY`` — and then the one statement of :func:`chunk_query`::

    SELECT _s.*, _b.* FROM
      (SELECT <binlog snapshot file>, <snapshot lsn>, <UTC read time>) AS _s      -- one row
      LEFT JOIN (SELECT 1 AS _binlake_hit, <expr> AS c0, … FROM `db`.`t` WHERE <chunk predicate>) AS _b
      ON TRUE

The position comes from ``information_schema.SESSION_STATUS`` (``BINLOG_SNAPSHOT_FILE`` /
``BINLOG_SNAPSHOT_POSITION``, MariaDB) *in the same statement, in the same transaction* as the rows,
so it is exactly the binlog position that snapshot is consistent with. The LEFT JOIN returns one
row even for an empty chunk (``_binlake_hit`` NULL), so every chunk reports its position. MariaDB
evaluates ``_s`` once (a one-row constant table) and merges ``_b`` into the join, so the chunk
predicate is an index range on the primary key.

Column names never reach Spark's SQL text: source columns are selected as ``c0, c1, …`` and
renamed to their target names with the DataFrame API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from binlake.chunks import quote_identifier
from binlake.config import PipelineConfig
from binlake.snapshot.discovery import SourceTable
from binlake.typemap import source_select_sql, spark_parse_sql

HIT = "_binlake_hit"
SNAP_FILE = "_binlake_snap_file"
SNAP_LSN = "_binlake_snap_lsn"
READ_TS = "_binlake_read_ts"
LSN_COLUMN = "_binlake_lsn"
COMMIT_TS_COLUMN = "_binlake_commit_ts"

SESSION_INIT = (
    "SET time_zone = '+00:00'; "
    "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ; "
    "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"
)

_STATUS = "(SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = '{}')"
_POSITION_ROW = (
    f"SELECT _p.f AS {SNAP_FILE}, "
    f"CAST((CAST(SUBSTRING_INDEX(_p.f, '.', -1) AS UNSIGNED) << 32) | _p.p AS SIGNED) AS {SNAP_LSN}, "
    f"_p.ts AS {READ_TS} FROM (SELECT {_STATUS.format('BINLOG_SNAPSHOT_FILE')} AS f, "
    f"CAST({_STATUS.format('BINLOG_SNAPSHOT_POSITION')} AS UNSIGNED) AS p, "
    "DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%d %H:%i:%s.%f') AS ts) AS _p"
)

# Spark types a JDBC CHAR(n) column as char(n) and right-pads it with spaces on read; MySQL returns
# CHAR values without trailing spaces, and that is the canonical value. Set on the job's session.
SPARK_SETTINGS: Mapping[str, str] = {"spark.sql.readSideCharPadding": "false"}

# Connector/J settings: no value conversion surprises (TINYINT(1) as boolean, YEAR as date, zero
# dates as errors), and fewer round trips per connection.
DRIVER_PROPERTIES: Mapping[str, str] = {
    "driver": "com.mysql.cj.jdbc.Driver",
    "allowMultiQueries": "true",
    "tinyInt1isBit": "false",
    "transformedBitIsBoolean": "false",
    "yearIsDateType": "false",
    "zeroDateTimeBehavior": "CONVERT_TO_NULL",
    "characterEncoding": "UTF-8",
    "connectionTimeZone": "UTC",
    "useLocalSessionState": "true",
    "elideSetAutoCommits": "true",
    "cacheServerConfiguration": "true",
    "maintainTimeStats": "false",
    "sslMode": "PREFERRED",
    "allowPublicKeyRetrieval": "true",
}


@dataclass(frozen=True)
class JdbcSource:
    """Where Spark reads from. ``url`` holds no secret and may be logged; ``properties`` may not."""

    url: str
    properties: dict[str, str]


def jdbc_source(config: PipelineConfig, fetch_size: int | None = None) -> JdbcSource:
    """``jdbc:mysql://host:port/`` (backtick quoting in Spark's MySQL dialect) + connection properties.

    The password goes only into ``properties``, never into the URL.
    """
    source = config.source
    properties = dict(DRIVER_PROPERTIES)
    properties.update(
        {
            "user": source.user,
            "password": source.password(),
            "fetchsize": str(fetch_size or config.full_load.jdbc_fetch_size),
            "sessionInitStatement": SESSION_INIT,
            "connectTimeout": str(source.connect_timeout_s * 1000),
            "socketTimeout": str(max(source.read_timeout_s, 3600) * 1000),
        }
    )
    return JdbcSource(url=f"jdbc:mysql://{source.host}:{source.port}/", properties=properties)


def column_alias(index: int) -> str:
    return f"c{index}"


def chunk_query(table: SourceTable, predicate: str) -> str:
    """The parenthesised, aliased chunk statement for Spark's ``dbtable`` option."""
    exprs = [f"1 AS {HIT}"]
    for index, column in enumerate(table.columns):
        exprs.append(f"{source_select_sql(column.type, quote_identifier(column.name))} AS {column_alias(index)}")
    source = f"{quote_identifier(table.schema)}.{quote_identifier(table.name)}"
    inner = f"SELECT {', '.join(exprs)} FROM {source} WHERE {predicate}"
    return f"(SELECT _s.*, _b.* FROM ({_POSITION_ROW}) AS _s LEFT JOIN ({inner}) AS _b ON TRUE) AS _binlake_chunk"


def lake_expressions(table: SourceTable) -> list[tuple[str, str]]:
    """``[(Spark SQL expression, target column name), …]`` of a lake row, metadata columns last."""
    exprs = [
        (spark_parse_sql(column.type, f"`{column_alias(index)}`"), column.target_name)
        for index, column in enumerate(table.columns)
    ]
    exprs.append((f"CAST(`{SNAP_LSN}` AS BIGINT)", LSN_COLUMN))
    exprs.append((f"CAST(CONCAT(`{READ_TS}`, 'Z') AS TIMESTAMP)", COMMIT_TS_COLUMN))
    return exprs
