"""The Arrow chunk reader: each chunk read by ConnectorX inside a Spark task, handed to Spark as Arrow.

The JDBC reader (:mod:`binlake.snapshot.reading`) spends most of a full load's CPU in Connector/J
decoding rows into Java objects, and buffers each chunk's whole result. This reader sends the *same*
statement shape to the source, in the same consistent-snapshot transaction, but decodes the rows
with ConnectorX (Rust) into Arrow record batches of bounded size inside a Python task
(``mapInArrow``), so Spark receives columns instead of rows:

* the connection runs the session-init statements of the snapshot method first (ConnectorX's
  ``pre_execution_query`` runs on the very connection that then reads the chunk — checked in
  ConnectorX 0.4's MySQL source: ``partition()`` runs them on the partition's own connection), then
  :func:`arrow_chunk_query`: the chunk's rows LEFT JOINed to the snapshot's position, as in
  :func:`binlake.snapshot.reading.chunk_query`;
* every column is selected as one of three exact wire forms (:func:`arrow_select_sql`): a signed
  64-bit integer (integer types but BIGINT UNSIGNED, YEAR, BIT(n < 64)), a DOUBLE (DOUBLE, and FLOAT
  as its exact double), raw bytes (BINARY/VARBINARY/BLOB: no hex on the wire), or the canonical
  string of :mod:`binlake.typemap` (everything else, DECIMAL and BIGINT UNSIGNED included: ConnectorX
  would decode DECIMAL through a 28-digit decimal and JSON through a JSON parser);
* :func:`conform_batch` checks each batch column against that form and casts it to the declared
  Arrow type (text arrives as ``binary`` for binary collations: cast to UTF-8, validated) — a
  column that arrives in any other type stops the load, naming it;
* Spark then applies the same lake expressions as the JDBC path
  (:func:`binlake.typemap.spark_parse_sql`), except that raw bytes are already the lake value.

Batches hold at most ``batch_rows`` rows (:func:`batch_rows_for`, from the chunk's estimated row
size and ``full_load.arrow_batch_bytes``), so a task's memory is bounded whatever the chunk size.

ConnectorX takes a ``mysql://`` URL holding the password: it lives only inside the task closure
(as the JDBC properties do in the JDBC plan) and never in a message — :func:`read_batches` replaces
any error text containing it.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote

from binlake.chunks import quote_identifier
from binlake.config import ChunkReader, PipelineConfig, TlsMode
from binlake.positions import BinlogPosition
from binlake.snapshot.discovery import SourceTable
from binlake.snapshot.reading import (
    HIT,
    READ_TS,
    SNAP_FILE,
    SNAP_LSN,
    SNAPSHOT_POSITION_ROW,
    column_alias,
    filtered,
    session_init_statements,
    watermark_init_statements,
)
from binlake.typemap import INTEGER_TYPES, ColumnType, source_select_sql, spark_parse_sql, spark_type

LONG, DOUBLE, BYTES, TEXT = "long", "double", "bytes", "text"
BINARY_BASES = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})
SUPPORTED_CONNECTORX = ("0.4.",)  # the versions whose MySQL source was read for the claims above


def connectorx_version() -> str | None:
    """The installed ConnectorX version, or None when it is not installed."""
    try:
        return importlib.metadata.version("connectorx")
    except importlib.metadata.PackageNotFoundError:
        return None


def connectorx_supported() -> bool:
    version = connectorx_version()
    return version is not None and version.startswith(SUPPORTED_CONNECTORX)


def wire_form(ct: ColumnType) -> str:
    """How the Arrow reader receives a column: :data:`LONG`, :data:`DOUBLE`, :data:`BYTES` or :data:`TEXT`."""
    base = ct.base
    if base in INTEGER_TYPES:
        return TEXT if base == "bigint" and ct.unsigned else LONG
    if base == "year" or (base == "bit" and (ct.precision or 1) < 64):
        return LONG
    if base in ("double", "float"):
        return DOUBLE
    if base in BINARY_BASES:
        return BYTES
    return TEXT


def arrow_select_sql(ct: ColumnType, quoted_column: str) -> str:
    """The select expression of a column for the Arrow reader (its :func:`wire_form`)."""
    form = wire_form(ct)
    if form == BYTES:
        return quoted_column
    if form == LONG:
        return f"CAST({quoted_column} AS SIGNED)"
    if form == DOUBLE:
        return f"CAST({quoted_column} AS DOUBLE)"
    if ct.base == "bit":  # BIT(64): its number as text (CAST(bit AS CHAR) would give the raw bytes)
        return f"CAST(CAST({quoted_column} AS UNSIGNED) AS CHAR)"
    if ct.base in ("decimal", "json") or (ct.base == "bigint" and ct.unsigned):
        return f"CAST({quoted_column} AS CHAR)"
    return source_select_sql(ct, quoted_column)


def arrow_chunk_query(table: SourceTable, predicate: str) -> str:
    """The chunk statement of the Arrow reader (see the module docstring).

    ``_binlake_hit`` is ``NULLIF(1, 0)`` rather than ``1``: MariaDB describes a literal as NOT NULL
    even on the outer side of the LEFT JOIN, and ConnectorX trusts that description (an empty chunk's
    NULL then fails to decode).
    """
    exprs = [f"NULLIF(1, 0) AS {HIT}"]
    for index, column in enumerate(table.columns):
        exprs.append(f"{arrow_select_sql(column.type, quote_identifier(column.name))} AS {column_alias(index)}")
    source = f"{quote_identifier(table.schema)}.{quote_identifier(table.name)}"
    inner = f"SELECT {', '.join(exprs)} FROM {source} WHERE {filtered(table, predicate)}"
    return f"SELECT _s.*, _b.* FROM ({SNAPSHOT_POSITION_ROW}) AS _s LEFT JOIN ({inner}) AS _b ON TRUE"


_SPARK_RAW = {LONG: "bigint", DOUBLE: "double", BYTES: "binary", TEXT: "string"}


def raw_schema_ddl(table: SourceTable) -> str:
    """The Spark DDL schema of the rows the Arrow reader yields (position columns, hit, c0 …)."""
    fields = [f"{SNAP_FILE} string", f"{SNAP_LSN} bigint", f"{READ_TS} bigint", f"{HIT} bigint"]
    fields += [f"{column_alias(i)} {_SPARK_RAW[wire_form(c.type)]}" for i, c in enumerate(table.columns)]
    return ", ".join(fields)


def arrow_lake_expressions(table: SourceTable) -> list[tuple[str, str]]:
    """``[(Spark SQL expression, target column name), …]`` for the Arrow reader's rows: the JDBC
    path's expressions, except that raw bytes are already the lake value."""
    from binlake.snapshot.reading import COMMIT_TS_COLUMN, LSN_COLUMN, added_expressions

    exprs: list[tuple[str, str]] = []
    for index, column in enumerate(table.columns):
        alias = f"`{column_alias(index)}`"
        if wire_form(column.type) == BYTES:
            exprs.append((alias, column.target_name))
        else:
            exprs.append((spark_parse_sql(column.type, alias), column.target_name))
    exprs.extend(added_expressions(table))  # add-column rules (binlake.addcolumn), as the JDBC path
    exprs.append((f"CAST(`{SNAP_LSN}` AS BIGINT)", LSN_COLUMN))
    exprs.append((f"TIMESTAMP_MICROS(`{READ_TS}`)", COMMIT_TS_COLUMN))
    assert all(spark_type(c.type) for c in table.columns)
    return exprs


@dataclass(frozen=True)
class ArrowSource:
    """Where the Arrow reader connects. ``url`` holds the password: never log it; :attr:`safe` may be."""

    url: str
    safe: str
    init: tuple[str, ...]
    batch_bytes: int

    def with_init(self, init: Sequence[str]) -> ArrowSource:
        return ArrowSource(self.url, self.safe, tuple(init), self.batch_bytes)


def arrow_source(config: PipelineConfig, epoch: int = 0) -> ArrowSource:
    """The ConnectorX URL of ``config.source`` (no TLS: see :func:`arrow_reader_usable`) and the
    session-init statements of the mariadb snapshot method in binlake history ``epoch``."""
    source = config.source
    user, password = quote(source.user, safe=""), quote(source.password(), safe="")
    host = f"{source.host}:{source.port}"
    return ArrowSource(url=f"mysql://{user}:{password}@{host}/", safe=f"mysql://{user}@{host}/",
                       init=tuple(session_init_statements(epoch)), batch_bytes=config.full_load.arrow_batch_bytes)


def with_watermark_init(source: ArrowSource, low: BinlogPosition) -> ArrowSource:
    """``source`` whose reads are labelled with the low watermark ``low`` (the watermark method)."""
    return source.with_init(watermark_init_statements(low))


def batch_rows_for(batch_bytes: int, row_bytes: int, most: int = 65_536) -> int:
    """Rows per Arrow batch: ``batch_bytes`` worth of rows of ``row_bytes`` each, 1 ..  ``most``."""
    return max(1, min(most, batch_bytes // max(1, row_bytes)))


def conform_batch(batch: Any, forms: Sequence[str], names: Sequence[str], schema: Any) -> Any:
    """``batch`` (a pyarrow RecordBatch: position columns, hit, then one column per form) cast to
    ``schema``; raises TypeError naming the column when a column's type is not its wire form's."""
    import pyarrow as pa

    allowed: dict[str, Callable[[Any], bool]] = {
        LONG: pa.types.is_integer,
        DOUBLE: pa.types.is_floating,
        BYTES: lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t),
        TEXT: lambda t: (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
                         or pa.types.is_large_binary(t)),
    }
    meta_forms = (TEXT, LONG, LONG, LONG)
    columns = []
    for index, (form, field) in enumerate(zip((*meta_forms, *forms), schema, strict=True)):
        column = batch.column(index)
        if not allowed[form](column.type):
            raise TypeError(f"the Arrow reader got column {names[index]!r} as {column.type}, expected {form}: "
                            "set full_load.reader: jdbc and report this")
        columns.append(column if column.type == field.type else column.cast(field.type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def read_batches(source: ArrowSource, query: str, forms: Sequence[str], names: Sequence[str],
                 schema: Any, batch_rows: int) -> Iterator[Any]:
    """The conformed batches of one chunk read (runs inside a Spark task)."""
    import connectorx

    try:
        reader = connectorx.read_sql(source.url, query, return_type="arrow_stream", protocol="binary",
                                     pre_execution_query=list(source.init), batch_size=batch_rows)
        for batch in reader:
            yield conform_batch(batch, forms, names, schema)
    except (TypeError, GeneratorExit, KeyboardInterrupt):
        raise
    except BaseException as exc:  # ConnectorX errors may quote the URL: never let the password out
        text = str(exc).replace(source.url, source.safe)
        password = source.url.split("://", 1)[1].split("@", 1)[0].partition(":")[2]
        if password:
            text = text.replace(password, "***")
        raise RuntimeError(f"Arrow chunk read from {source.safe} failed: {text}") from None


def read_chunk_arrow(spark: Any, source: ArrowSource, table: SourceTable, predicate: str,
                     row_bytes: int) -> tuple[Any, Any]:
    """The lake rows of the source rows matching ``predicate`` read by one Spark task with ConnectorX
    (one consistent snapshot), and the observation of their count, snapshot file, lsn and read time
    — the same contract as :func:`binlake.snapshot.chunkread.read_chunk`."""
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import StructType

    from binlake.snapshot.chunkread import observed_lake_rows

    schema = cast(StructType, StructType.fromDDL(raw_schema_ddl(table)))
    arrow_schema = to_arrow_schema(schema)
    forms = tuple(wire_form(c.type) for c in table.columns)
    names = (SNAP_FILE, SNAP_LSN, READ_TS, HIT, *(c.name for c in table.columns))
    query = arrow_chunk_query(table, predicate)
    rows = batch_rows_for(source.batch_bytes, row_bytes)

    def read(_: Iterator[Any]) -> Iterator[Any]:
        yield from read_batches(source, query, forms, names, arrow_schema, rows)

    raw = spark.range(0, 1, 1, 1).mapInArrow(read, schema)
    return observed_lake_rows(raw, arrow_lake_expressions(table))


def choose_reader(setting: ChunkReader, tls_mode: TlsMode, server_offers_tls: bool, installed: bool,
                  direct_installed: bool = True) -> ChunkReader:
    """The reader for ``full_load.reader`` = ``setting``: the Arrow reader connects without TLS, so it
    is used only where the JDBC reader would not encrypt either (``disabled``, or ``preferred`` against
    a server offering no TLS); ``auto`` is ``direct`` (the Arrow reader writing Parquet itself) there,
    else ``jdbc`` (``arrow`` without deltalake). ``arrow`` or ``direct`` where it cannot apply is
    refused, naming why. ``installed``: connectorx 0.4 is; ``direct_installed``: deltalake 1.x is."""
    plain = tls_mode is TlsMode.DISABLED or (tls_mode is TlsMode.PREFERRED and not server_offers_tls)
    if setting is ChunkReader.JDBC:
        return ChunkReader.JDBC
    why = None if plain else (f"source.tls.mode is {tls_mode.value} and the server offers TLS; the Arrow reader "
                              "does not encrypt")
    if not installed:
        why = f"connectorx {SUPPORTED_CONNECTORX[0]}x is not installed (found {connectorx_version()})"
    if setting is ChunkReader.DIRECT and why is None and not direct_installed:
        why = "deltalake 1.x is not installed"
    if why is None:
        direct = setting is ChunkReader.DIRECT or (setting is ChunkReader.AUTO and direct_installed)
        return ChunkReader.DIRECT if direct else ChunkReader.ARROW
    if setting in (ChunkReader.ARROW, ChunkReader.DIRECT):
        raise ValueError(f"full_load.reader is {setting.value}, but {why}: set full_load.reader: jdbc (or auto)")
    return ChunkReader.JDBC


def server_offers_tls(conn: Any) -> bool:
    """Does the server accept TLS connections (``@@have_ssl`` is YES)?"""
    with conn.cursor() as cur:
        cur.execute("SELECT @@have_ssl")
        row = cur.fetchone()
    return row is not None and str(row[0]).upper() == "YES"
