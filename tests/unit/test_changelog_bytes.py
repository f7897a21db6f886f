"""approx_bytes (the capture's byte bound) equals its definition for every record shape."""

from __future__ import annotations

import pytest

from binlake.changelog import RECORD_OVERHEAD, EventChanges, approx_bytes


def event(op: str, before: list[str] | None, after: list[str] | None, ddl: str | None = None) -> EventChanges:
    return EventChanges(lsn=1, binlog_file="binlog.000001", binlog_pos=4, op=op, source_schema="s",
                        source_table="t", schema="s", table="t", columns="[]", before=before, after=after,
                        ddl=ddl, ddl_kind="TRUNCATE" if ddl else None)


@pytest.mark.parametrize("changes", [
    event("I", None, ['{"a":"1"}']),
    event("I", None, ['{"a":"1"}', '{"a":"22"}', '{"a":"é"}']),
    event("U", ['{"a":"1"}'], ['{"a":"12345"}']),
    event("U", ['{"a":"1"}', '{"a":"2"}'], ['{"a":"3"}', '{"a":"44"}']),
    event("D", ['{"a":"1"}', "{}"], None),
    event("I", None, []),
    event("DDL", None, None, "TRUNCATE TABLE t"),
])
def test_images_plus_overhead_per_record(changes: EventChanges) -> None:
    images = sum(map(len, changes.before or [])) + sum(map(len, changes.after or []))
    assert approx_bytes(changes) == images + len(changes.ddl or "") + RECORD_OVERHEAD * changes.row_count
