"""Lake rows in pyarrow: the Arrow reader's wire columns turned into a Delta table's exact column types (pure).

The direct write path (:mod:`binlake.snapshot.direct`) writes Parquet without Spark, so the
conversions Spark applies on the other paths (:func:`binlake.typemap.spark_parse_sql` over the
wire forms of :mod:`binlake.snapshot.arrowread`) are done here with pyarrow casts, which refuse
(never round, never NULL) a value they cannot convert exactly:

=======================  ===========  ======================================================
lake type (Delta name)   wire form    conversion
=======================  ===========  ======================================================
byte/short/integer/long  long         checked integer cast (every source value fits)
boolean (BIT(1))         long         0 → false, else true (Spark's ``CAST(bigint AS BOOLEAN)``)
float / double           double       FLOAT: the exact double of a float32, narrowed back
decimal(p,s)             text         the canonical text (exactly s fraction digits) parsed
date                     text         ``YYYY-MM-DD``, proleptic Gregorian (as Spark 3+)
timestamp_ntz            text         ``YYYY-MM-DD HH:MM:SS[.f]`` → microseconds, no zone
timestamp                text         the same text in UTC → microseconds, zone UTC
binary                   bytes        as received; geometry (hex text) unhexed
string                   text         as received (UTF-8, validated by ``conform_batch``)
=======================  ===========  ======================================================

``_binlake_lsn`` is the snapshot's lsn and ``_binlake_commit_ts`` its read time (microseconds,
UTC) — the same values the Spark paths compute. :class:`LakePlan` also names each column's Parquet
field (the physical name and field id under column mapping) and which columns carry Delta
statistics; :class:`FileStats` accumulates them as Delta's ``stats`` JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from binlake.snapshot.arrowread import BYTES, DOUBLE, LONG, TEXT

LSN_SOURCE = "lsn"  # LakeColumn.source of _binlake_lsn
READ_TS_SOURCE = "read_ts"  # … of _binlake_commit_ts

_INTEGERS = {"byte": pa.int8(), "short": pa.int16(), "integer": pa.int32(), "long": pa.int64()}
_SIMPLE = {
    **_INTEGERS, "boolean": pa.bool_(), "float": pa.float32(), "double": pa.float64(), "date": pa.date32(),
    "timestamp_ntz": pa.timestamp("us"), "timestamp": pa.timestamp("us", tz="UTC"), "binary": pa.binary(),
    "string": pa.string(),
}
_SPARK_TO_DELTA = {"tinyint": "byte", "smallint": "short", "int": "integer", "bigint": "long"}
_DECIMAL = re.compile(r"^decimal\((\d+),\s*(\d+)\)$")
# the wire forms each lake type may be converted from
_FORMS = {**dict.fromkeys(_INTEGERS, LONG), "boolean": LONG, "float": DOUBLE, "double": DOUBLE, "date": TEXT,
          "timestamp_ntz": TEXT, "timestamp": TEXT, "string": TEXT}
STATS_MIN_MAX = frozenset({*_INTEGERS, "date", "string"})  # min/max written exactly; other types: nullCount only
STATS_STRING_PREFIX = 32  # Delta Spark's delta.dataSkippingStringPrefixLength: longer string bounds are left out


def delta_type_name(spark_ddl: str) -> str:
    """The Delta schema type name of a Spark DDL type: ``bigint`` → ``long``, ``decimal(20,0)`` as is."""
    return _SPARK_TO_DELTA.get(spark_ddl, spark_ddl.replace(" ", ""))


def arrow_type(delta_type: str) -> pa.DataType:
    """The Arrow type the direct path writes for a Delta column type; ValueError for any other type."""
    if delta_type in _SIMPLE:
        return _SIMPLE[delta_type]
    match = _DECIMAL.match(delta_type)
    if match:
        return pa.decimal128(int(match.group(1)), int(match.group(2)))
    raise ValueError(f"the direct write path has no Arrow type for the Delta type {delta_type!r}")


def convertible(form: str, delta_type: str) -> bool:
    """Can a wire column of ``form`` be converted exactly to ``delta_type`` here?"""
    if delta_type == "binary":
        return form in (BYTES, TEXT)
    if _DECIMAL.match(delta_type):
        return form == TEXT
    return _FORMS.get(delta_type) == form


def to_lake_array(array: pa.Array, form: str, delta_type: str) -> pa.Array:
    """``array`` (a conformed wire column of ``form``) as the lake column of ``delta_type``."""
    target = arrow_type(delta_type)
    if delta_type == "binary" and form == TEXT:  # geometry: upper-case hex of SRID + WKB
        return pa.array([None if v is None else bytes.fromhex(v) for v in array.to_pylist()], pa.binary())
    if delta_type == "timestamp":
        return pc.cast(pc.cast(array, pa.timestamp("us")), target)  # UTC text: the instant is the naive value
    if array.type == target:
        return array
    return pc.cast(array, target)


@dataclass(frozen=True)
class LakeColumn:
    """One column of the Delta table the direct path writes.

    ``source`` is the wire column's index in a conformed batch (an ``int``), or :data:`LSN_SOURCE`
    / :data:`READ_TS_SOURCE` for the metadata columns; ``physical`` is the Parquet field name
    (the logical name, or its ``delta.columnMapping.physicalName``), ``field_id`` the column
    mapping id (None without column mapping)."""

    name: str
    physical: str
    field_id: int | None
    delta_type: str
    source: int | str
    form: str | None
    stats: bool


@dataclass(frozen=True)
class LakePlan:
    """How the rows of one table's chunks become Parquet files of its Delta table."""

    columns: tuple[LakeColumn, ...]
    tight_bounds: bool  # the table has deletion vectors: Delta's stats then say their bounds are tight

    def schema(self) -> pa.Schema:
        """The Parquet schema: physical names, Arrow types, field ids (column mapping), all nullable."""
        fields = []
        for column in self.columns:
            meta = None if column.field_id is None else {b"PARQUET:field_id": str(column.field_id).encode()}
            fields.append(pa.field(column.physical, arrow_type(column.delta_type), True, meta))
        return pa.schema(fields)

    def lake_batch(self, batch: pa.RecordBatch, hit: int, lsn: int, read_ts: int) -> pa.RecordBatch:
        """The lake rows of ``batch`` (a conformed batch: position columns, hit, wire columns): rows
        whose hit column (index ``hit``) is NULL — the empty chunk's position-only row — are dropped."""
        hits = batch.column(hit)
        if hits.null_count:
            batch = batch.filter(pc.is_valid(hits))
        rows = batch.num_rows
        arrays: list[pa.Array] = []
        for column in self.columns:
            if column.source == LSN_SOURCE:
                arrays.append(pa.repeat(pa.scalar(lsn, pa.int64()), rows))
            elif column.source == READ_TS_SOURCE:
                arrays.append(pa.repeat(pa.scalar(read_ts, pa.timestamp("us", tz="UTC")), rows))
            else:
                assert isinstance(column.source, int) and column.form is not None
                arrays.append(to_lake_array(batch.column(column.source), column.form, column.delta_type))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema())


class FileStats:
    """Delta's per-file statistics (``numRecords``, ``minValues``, ``maxValues``, ``nullCount``) of the
    plan's statistics columns, accumulated batch by batch; keys are physical names, as Delta wants."""

    def __init__(self, plan: LakePlan) -> None:
        self.plan = plan
        self.rows = 0
        self.nulls: dict[str, int] = {}
        self.low: dict[str, Any] = {}
        self.high: dict[str, Any] = {}

    def add(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        for index, column in enumerate(self.plan.columns):
            if not column.stats:
                continue
            array = batch.column(index)
            key = column.physical
            self.nulls[key] = self.nulls.get(key, 0) + array.null_count
            if column.delta_type not in STATS_MIN_MAX or array.null_count == len(array):
                continue
            bounds = pc.min_max(array)
            low, high = bounds["min"].as_py(), bounds["max"].as_py()
            self.low[key] = low if key not in self.low else min(self.low[key], low)
            self.high[key] = high if key not in self.high else max(self.high[key], high)

    def to_json(self) -> str:
        def value(v: Any) -> Any:
            return v.isoformat() if hasattr(v, "isoformat") else v

        # long strings: no bounds rather than Spark's truncated ones (missing bounds only skip less)
        bounded = [k for k in self.low if not any(isinstance(v, str) and len(v) > STATS_STRING_PREFIX
                                                   for v in (self.low[k], self.high[k]))]
        stats: dict[str, Any] = {
            "numRecords": self.rows,
            "minValues": {k: value(self.low[k]) for k in bounded},
            "maxValues": {k: value(self.high[k]) for k in bounded},
            "nullCount": dict(self.nulls),
        }
        if self.plan.tight_bounds:
            stats["tightBounds"] = True
        return json.dumps(stats, separators=(",", ":"))


def stats_column_names(configuration: dict[str, str], names: Sequence[str]) -> set[str]:
    """The logical column names Delta collects statistics on: ``delta.dataSkippingStatsColumns`` when
    set, else the first ``delta.dataSkippingNumIndexedCols`` (32) columns (-1: all)."""
    listed = configuration.get("delta.dataSkippingStatsColumns")
    if listed:
        return set(_split_names(listed))
    count = int(configuration.get("delta.dataSkippingNumIndexedCols", "32"))
    return set(names if count < 0 else names[:count])


def _split_names(listed: str) -> list[str]:
    """``a, `b,c`, `d``e``` → ``["a", "b,c", "d`e"]`` (the comma-separated, optionally back-quoted list)."""
    names: list[str] = []
    current: list[str] = []
    quoted = False
    i = 0
    while i < len(listed):
        char = listed[i]
        if quoted and char == "`" and listed[i + 1:i + 2] == "`":
            current.append("`")
            i += 1
        elif char == "`":
            quoted = not quoted
        elif char == "," and not quoted:
            names.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        i += 1
    names.append("".join(current).strip())
    return [name for name in names if name]
