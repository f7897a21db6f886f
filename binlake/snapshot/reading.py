"""What one chunk read sends to the source and how Spark turns its rows into lake rows (pure).

Each chunk is read by one Spark task on its own JDBC connection. The connection first runs
:data:`SESSION_INIT`: UTC session time zone, REPEATABLE READ, ``START TRANSACTION WITH CONSISTENT
SNAPSHOT, READ ONLY``, and — inside that transaction — it stores the transaction's binlog
position (``BINLOG_SNAPSHOT_FILE`` / ``BINLOG_SNAPSHOT_POSITION`` from
``information_schema.SESSION_STATUS``, MariaDB) as an lsn in the epoch of the server's binlog
history (:mod:`binlake.positions`), and the time, in user variables. Then
it runs the one statement of :func:`chunk_query`, in the same transaction::

    SELECT _s.*, _b.* FROM
      (SELECT @binlake_snap_file, @binlake_snap_lsn, @binlake_read_ts) AS _s     -- one row
      LEFT JOIN (SELECT 1 AS _binlake_hit, <expr> AS c0, … FROM `db`.`t`
                 WHERE <chunk predicate> [AND <source filter>]) AS _b
      ON TRUE

So the rows and the position come from one consistent snapshot: the position is exactly the
binlog position that snapshot is consistent with. The LEFT JOIN returns one row even for an empty
chunk (``_binlake_hit`` NULL), so every chunk reports its position. MariaDB evaluates ``_s`` once
(a one-row constant table) and merges ``_b`` into the join, so the chunk predicate is an index
range on the primary key. (The position is read in the session-init statement rather than in
the chunk statement because MariaDB materialises ``information_schema`` reads as on-disk temporary
tables that live as long as the statement; another server starting with the same ``tmpdir``
deletes such files — seen with several test servers sharing ``/tmp``.)

Column names never reach Spark's SQL text: source columns are selected as ``c0, c1, …`` and
renamed to their target names with the DataFrame API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from binlake.chunks import quote_identifier
from binlake.config import PipelineConfig
from binlake.positions import BinlogPosition, epoch_base
from binlake.snapshot.discovery import SourceTable
from binlake.tls import jdbc_settings
from binlake.typemap import source_select_sql, spark_parse_sql

HIT = "_binlake_hit"
SNAP_FILE = "_binlake_snap_file"
SNAP_LSN = "_binlake_snap_lsn"
READ_TS = "_binlake_read_ts"
LSN_COLUMN = "_binlake_lsn"
COMMIT_TS_COLUMN = "_binlake_commit_ts"

_STATUS = "(SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = '{}')"


def session_init_statements(epoch: int = 0) -> list[str]:
    """The session-init statements, in order; the lsn they compute is :func:`binlake.positions.make_lsn`
    of the snapshot's file and position in binlog history ``epoch`` (``epoch << 52 | file << 32 | pos``)."""
    return [
        "SET time_zone = '+00:00'",
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
        f"SELECT {_STATUS.format('BINLOG_SNAPSHOT_FILE')}, "
        f"CAST({_STATUS.format('BINLOG_SNAPSHOT_POSITION')} AS UNSIGNED), "
        "CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED) "
        "INTO @binlake_snap_file, @binlake_snap_pos, @binlake_read_ts",
        f"SET @binlake_snap_lsn = CAST({epoch_base(epoch)} "
        "| (CAST(SUBSTRING_INDEX(@binlake_snap_file, '.', -1) AS UNSIGNED) << 32) | @binlake_snap_pos AS SIGNED)",
    ]


def session_init(epoch: int = 0) -> str:
    """The session-init statements as one multi-statement text (Connector/J's ``sessionInitStatement``)."""
    return "; ".join(session_init_statements(epoch))


def watermark_init_statements(low: BinlogPosition) -> list[str]:
    """The session-init statements of the watermark method (:mod:`binlake.snapshot.watermark`): the
    same snapshot transaction, labelled with ``low`` — the binlog end read *before* it started —
    instead of the server's own snapshot position (which MySQL does not expose)."""
    file = low.file.replace("\\", "").replace("'", "")
    return [
        "SET time_zone = '+00:00'",
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
        f"SET @binlake_snap_file = '{file}', @binlake_snap_lsn = {low.lsn}, "
        "@binlake_read_ts = CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)",
    ]


def watermark_session_init(low: BinlogPosition) -> str:
    """:func:`watermark_init_statements` as one multi-statement text."""
    return "; ".join(watermark_init_statements(low))


def with_watermark(jdbc: JdbcSource, low: BinlogPosition) -> JdbcSource:
    """``jdbc`` whose reads are labelled with the low watermark ``low`` (see :func:`watermark_session_init`)."""
    return JdbcSource(jdbc.url, {**jdbc.properties, "sessionInitStatement": watermark_session_init(low)})


SESSION_INIT = session_init(0)
# The snapshot's binlog file, lsn and read time, as a one-row SELECT (after SESSION_INIT); a chunk
# statement LEFT JOINs its rows to it, so even an empty chunk reports the position it is consistent with.
SNAPSHOT_POSITION_ROW = (
    f"SELECT CAST(@binlake_snap_file AS CHAR(255)) AS {SNAP_FILE}, "
    f"CAST(@binlake_snap_lsn AS SIGNED) AS {SNAP_LSN}, CAST(@binlake_read_ts AS SIGNED) AS {READ_TS}"
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
}  # TLS properties come from source.tls (binlake.tls.jdbc_settings)


@dataclass(frozen=True)
class JdbcSource:
    """Where Spark reads from. ``url`` holds no secret and may be logged; ``properties`` may not."""

    url: str
    properties: dict[str, str]


def jdbc_source(config: PipelineConfig, fetch_size: int | None = None, epoch: int = 0) -> JdbcSource:
    """``jdbc:mysql://host:port/`` (backtick quoting in Spark's MySQL dialect) + connection properties.

    The password goes only into ``properties``, never into the URL. ``epoch``: the binlog history
    the snapshot positions are labelled with (:func:`binlake.capture.history.snapshot_history`).
    """
    source = config.source
    properties = dict(DRIVER_PROPERTIES)
    properties.update(
        {
            "user": source.user,
            "password": source.password(),
            "fetchsize": str(fetch_size or config.full_load.jdbc_fetch_size),
            "sessionInitStatement": session_init(epoch),
            "connectTimeout": str(source.connect_timeout_s * 1000),
            "socketTimeout": str(max(source.read_timeout_s, 3600) * 1000),
        }
    )
    properties.update(jdbc_settings(source.tls, source.host))
    return JdbcSource(url=f"jdbc:mysql://{source.host}:{source.port}/", properties=properties)


def column_alias(index: int) -> str:
    return f"c{index}"


def chunk_query(table: SourceTable, predicate: str) -> str:
    """The parenthesised, aliased chunk statement for Spark's ``dbtable`` option."""
    exprs = [f"1 AS {HIT}"]
    for index, column in enumerate(table.columns):
        exprs.append(f"{source_select_sql(column.type, quote_identifier(column.name))} AS {column_alias(index)}")
    source = f"{quote_identifier(table.schema)}.{quote_identifier(table.name)}"
    inner = f"SELECT {', '.join(exprs)} FROM {source} WHERE {filtered(table, predicate)}"
    return with_snapshot_position(inner, "_binlake_chunk")


def filtered(table: SourceTable, predicate: str) -> str:
    """``predicate`` (a chunk's) AND the table's source filter, when it has one: the rows of the
    chunk that the selection rule replicates (:mod:`binlake.rowfilter`)."""
    return predicate if table.filter_sql is None else f"({predicate}) AND {table.filter_sql}"


def with_snapshot_position(inner: str, alias: str) -> str:
    """``inner``'s rows next to the snapshot's position columns, as an aliased ``dbtable``
    statement (one row of NULLs besides the position when ``inner`` has no rows)."""
    return f"(SELECT _s.*, _b.* FROM ({SNAPSHOT_POSITION_ROW}) AS _s LEFT JOIN ({inner}) AS _b ON TRUE) AS {alias}"


def lake_expressions(table: SourceTable, added: bool = True) -> list[tuple[str, str]]:
    """``[(Spark SQL expression, target column name), …]`` of a lake row: the source columns, the
    ``add-column`` columns (unless ``added`` is false), metadata columns last."""
    exprs = [
        (spark_parse_sql(column.type, f"`{column_alias(index)}`"), column.target_name)
        for index, column in enumerate(table.columns)
    ]
    if added:
        exprs.extend(added_expressions(table))
    exprs.append((f"CAST(`{SNAP_LSN}` AS BIGINT)", LSN_COLUMN))
    exprs.append((f"TIMESTAMP_MICROS(`{READ_TS}`)", COMMIT_TS_COLUMN))
    return exprs


def added_expressions(table: SourceTable) -> list[tuple[str, str]]:
    """The full-load values of the table's ``add-column`` columns (:mod:`binlake.addcolumn`: the
    constant, the chunk's read time for ``$AR_H_COMMIT_TIMESTAMP``, ``INSERT`` for ``$AR_H_OPERATION``)."""
    return [(c.full_load_sql(f"`{READ_TS}`"), c.name) for c in table.target.added_columns]
