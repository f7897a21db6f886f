"""Tables the merge refuses up front (binlake.merge.batch)."""

from __future__ import annotations

import json

from binlake.merge.batch import unsupported_columns
from binlake.merge.summary import LayoutGroup, TableChanges, TableName


def changes(*names: str) -> TableChanges:
    columns = json.dumps([{"name": n, "type": "int", "pk": i == 0} for i, n in enumerate(names)])
    return TableChanges(TableName("s", "t", "s", "t"), (), (LayoutGroup(columns, 1, 2, 2),))


def test_back_quote_in_a_column_name_is_unsupported() -> None:
    assert unsupported_columns(changes("id", "we`ird", "ok \"[$]'")) == ["we`ird"]
    assert unsupported_columns(changes("id", "special\"[$]'_id")) == []
