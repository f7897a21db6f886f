"""Arrow arrays from Python lists without importing pandas.

``pyarrow.array`` probes whether its argument is a pandas object, and the probe imports pandas
(pyarrow 26: ``_is_array_like`` → ``pandas_api._have_pandas_internal()``): about 0.25 CPU-seconds
and 40 MiB in a process that never uses pandas — the capture, whose first change-log file would
pay it. The builders here give the same arrays (same type, values, validity; checked by
``tests/unit/test_arrowcols.py`` against ``pyarrow.array``) from buffers and pyarrow's
``StringBuilder`` instead.
"""

from __future__ import annotations

import array
from collections.abc import Sequence
from typing import cast

import pyarrow as pa
from pyarrow.lib import StringBuilder


def strings(values: Sequence[str | None]) -> pa.Array:
    """``pa.array(values, type=pa.string())``."""
    builder = StringBuilder()
    builder.append_values(values)
    result: pa.Array = builder.finish()
    return result


def integers(values: Sequence[int | None], arrow_type: pa.DataType) -> pa.Array:
    """``pa.array(values, type=arrow_type)`` for a 32- or 64-bit integer or timestamp type."""
    code = "i" if arrow_type.bit_width == 32 else "q"
    if array.array(code).itemsize * 8 != arrow_type.bit_width:
        raise ValueError(f"no {arrow_type.bit_width}-bit array code on this platform")
    if any(value is None for value in values):
        validity = sum(1 << i for i, value in enumerate(values) if value is not None)
        bitmap = pa.py_buffer(validity.to_bytes((len(values) + 7) // 8 or 1, "little"))
        data = array.array(code, [0 if value is None else value for value in values])
        nulls = sum(value is None for value in values)
        return pa.Array.from_buffers(arrow_type, len(values), [bitmap, pa.py_buffer(data)], null_count=nulls)
    data = array.array(code, cast(Sequence[int], values))
    return pa.Array.from_buffers(arrow_type, len(values), [None, pa.py_buffer(data)])
