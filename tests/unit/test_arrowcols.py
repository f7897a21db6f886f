"""The pandas-free Arrow builders give what pyarrow.array gives; the change log is built without pandas."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa
import pytest

from binlake import arrowcols

INTEGER_TYPES = [pa.int32(), pa.int64(), pa.timestamp("us", tz="UTC")]


@pytest.mark.parametrize("values", [[], [None], ["a", None, "é", ""], ["x"] * 1000, [None, None, "z"]])
def test_strings_equal_pa_array(values: list[str | None]) -> None:
    ours, theirs = arrowcols.strings(values), pa.array(values, type=pa.string())
    assert ours.type == theirs.type and ours.null_count == theirs.null_count and ours.equals(theirs)


@pytest.mark.parametrize("arrow_type", INTEGER_TYPES)
@pytest.mark.parametrize("values", [[], [0], [None], [1, None, -5, 2**31 - 1], list(range(20)), [None] * 9 + [3]])
def test_integers_equal_pa_array(arrow_type: pa.DataType, values: list[int | None]) -> None:
    ours, theirs = arrowcols.integers(values, arrow_type), pa.array(values, type=arrow_type)
    assert ours.type == theirs.type and ours.null_count == theirs.null_count and ours.equals(theirs)
    assert ours.to_pylist() == theirs.to_pylist()


def test_64_bit_values_and_out_of_range() -> None:
    big = [2**63 - 1, -(2**63), None]
    assert arrowcols.integers(big, pa.int64()).to_pylist() == big
    with pytest.raises(OverflowError):
        arrowcols.integers([2**31], pa.int32())


def test_change_log_file_written_without_importing_pandas(tmp_path: object) -> None:
    code = """
import sys
from binlake.changelog import CommittedTransaction, EventChanges, parquet_bytes, to_arrow
event = EventChanges(lsn=5, binlog_file="binlog.000001", binlog_pos=5, op="U", source_schema="s",
                     source_table="t", schema="s", table="t", columns="[]", before=['{"a":"1"}'], after=['{"a":"2"}'])
table = to_arrow([CommittedTransaction("0-1-1", 7, 1_000_000, (event,)), CommittedTransaction(None, None, 0, (event,))])
assert parquet_bytes(table) and table.num_rows == 2
print("pandas" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.PIPE, text=True).stdout
    assert out.strip() == "False"


def test_to_arrow_equals_the_pa_array_build() -> None:
    from binlake.changelog import CHANGELOG_SCHEMA, CommittedTransaction, EventChanges, to_arrow

    def event(op: str, pos: int, before: list[str] | None, after: list[str] | None, **ddl: object) -> EventChanges:
        return EventChanges(lsn=(3 << 32) | pos, binlog_file="binlog.000003", binlog_pos=pos, op=op,
                            source_schema="s", source_table="T", schema="s", table="t",
                            columns='[["a","int"]]' if op != "DDL" else "[]", before=before, after=after,
                            **ddl)  # type: ignore[arg-type]
    txns = [
        CommittedTransaction("0-1-7", 11, 1_700_000_000_000_000, (
            event("I", 100, None, ['{"a":"1"}', '{"a":"2"}', '{"a":"ü"}']),
            event("U", 200, ['{"a":"1"}'], ['{"a":"9"}']))),
        CommittedTransaction(None, None, 5, (event("DDL", 300, None, None, ddl="DROP TABLE a, b", ddl_kind="DROP"),
                                             event("DDL", 300, None, None, ddl="DROP TABLE a, b", ddl_kind="DROP",
                                                   first_row_idx=1))),
        CommittedTransaction("0-1-8", 12, 6, (event("D", 400, ['{"a":"2"}', '{"a":null}'], None),)),
    ]
    rows = []
    for txn in txns:
        for e in txn.events:
            for i in range(e.row_count):
                rows.append({"lsn": e.lsn, "row_idx": e.first_row_idx + i, "binlog_file": e.binlog_file,
                             "binlog_pos": e.binlog_pos, "gtid": txn.gtid, "xid": txn.xid,
                             "commit_ts": txn.commit_ts_us,
                             "op": e.op, "source_schema": e.source_schema, "source_table": e.source_table,
                             "schema": e.schema, "table": e.table, "before": e.before[i] if e.before else None,
                             "after": e.after[i] if e.after else None, "columns": e.columns, "ddl": e.ddl,
                             "ddl_kind": e.ddl_kind})
    expected = pa.Table.from_arrays([pa.array([r[f.name] for r in rows], type=f.type) for f in CHANGELOG_SCHEMA],
                                    schema=CHANGELOG_SCHEMA)
    assert to_arrow(txns).equals(expected)
