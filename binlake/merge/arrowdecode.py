"""Canonical strings of the change log → Arrow arrays of the lake's types, without Spark.

The driver-side merge (:mod:`binlake.merge.smallparts`) decodes a few thousand row images in
Python instead of in a Spark job. Its values must be the ones Spark's
:func:`binlake.typemap.spark_parse_sql` gives for the same text (``CAST(text AS <lake type>)``;
TIMESTAMP text read as UTC; binary as ``UNHEX``), and they are, for every canonical string the
capture writes (:func:`binlake.typemap.encode_binlog_value`):

* integers, DECIMAL(p <= 38), FLOAT, DOUBLE, DATE, DATETIME and TIMESTAMP are Arrow's string casts,
  which parse exactly (decimals digit for digit, floats correctly rounded to the target width, as
  Java's ``Float.parseFloat`` / ``Double.parseDouble`` that Spark's cast uses);
* ``BIT(1)`` is ``0``/``1`` → boolean; binary types are hex → bytes; everything else stays text.

Where Spark would turn an unexpected text into NULL (ANSI off), Arrow refuses it:
:class:`UndecodableValue` is raised, and the caller applies that part with Spark instead — this
module never guesses a value. ``tests/integration/test_merge_small_parts.py`` compares both
decoders on the type corpora.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

_DECIMAL = re.compile(r"^decimal\((\d+),(\d+)\)$")
_SIMPLE: dict[str, pa.DataType] = {
    "tinyint": pa.int8(), "smallint": pa.int16(), "int": pa.int32(), "bigint": pa.int64(),
    "float": pa.float32(), "double": pa.float64(), "boolean": pa.bool_(), "date": pa.date32(),
    "timestamp_ntz": pa.timestamp("us"), "timestamp": pa.timestamp("us", tz="UTC"),
    "string": pa.string(), "binary": pa.binary(),
}
_BOOLEAN_TEXT = {"0": False, "1": True}


class UndecodableValue(ValueError):
    """A text this decoder does not turn into exactly Spark's value (the caller falls back to Spark)."""


def arrow_type(spark_type: str) -> pa.DataType:
    """The Arrow type of a lake column of (normalized) Spark type ``spark_type``; loud on others."""
    simple = _SIMPLE.get(spark_type)
    if simple is not None:
        return simple
    match = _DECIMAL.match(spark_type)
    if match is None:
        raise UndecodableValue(f"no Arrow decoding for lake type {spark_type!r}")
    return pa.decimal128(int(match.group(1)), int(match.group(2)))


def decodable(spark_type: str) -> bool:
    """Does :func:`decode_texts` handle lake type ``spark_type``?"""
    try:
        arrow_type(spark_type)
    except UndecodableValue:
        return False
    return True


def decode_texts(spark_type: str, texts: Sequence[str | None]) -> pa.Array:
    """The lake values of ``texts`` (canonical strings, ``None`` = NULL) as an Arrow array of
    :func:`arrow_type`; :class:`UndecodableValue` for any text Arrow does not parse."""
    target = arrow_type(spark_type)
    if spark_type == "string":
        return pa.array(texts, pa.string())
    if spark_type == "binary":
        return pa.array([None if t is None else _unhex(t) for t in texts], pa.binary())
    if spark_type == "boolean":
        return pa.array([None if t is None else _boolean(t) for t in texts], pa.bool_())
    strings = pa.array(texts, pa.string())
    try:
        if spark_type == "timestamp":  # the text is UTC (spark_parse_sql appends 'Z')
            return pc.cast(pc.cast(strings, pa.timestamp("us")), target)
        return pc.cast(strings, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise UndecodableValue(f"cannot decode {spark_type} text: {exc}") from exc


def _unhex(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        raise UndecodableValue(f"binary text is not hex: {exc}") from exc


def _boolean(text: str) -> bool:
    value = _BOOLEAN_TEXT.get(text)
    if value is None:
        raise UndecodableValue(f"boolean text {text!r} is not 0 or 1")
    return value
