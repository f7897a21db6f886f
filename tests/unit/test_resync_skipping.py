"""The data-skipping predicate of a resync chunk (binlake.resync.ranges.lake_skipping_sql, pure): implied
by the chunk's range, in literals of the key's lake type, only where that is exact."""

from __future__ import annotations

from binlake.chunks import ChunkRange
from binlake.resync.ranges import ResyncKey, lake_skipping_sql


def test_integer_leading_columns_get_bounds_in_their_lake_type() -> None:
    assert lake_skipping_sql(ChunkRange((20,), (30,)), (ResyncKey("id", "bigint"),), "t") == \
        "t.`id` >= 20L AND t.`id` <= 30L"
    assert lake_skipping_sql(ChunkRange((7,), None), (ResyncKey("id", "int"),)) == "`id` >= 7"
    composite = (ResyncKey("a", "int unsigned"), ResyncKey("b", "varchar", "utf8mb4_bin"))
    assert lake_skipping_sql(ChunkRange(None, (30, "x")), composite, "t") == "t.`a` <= 30L"  # unsigned int: bigint


def test_other_keys_and_the_whole_table_are_not_pruned() -> None:
    assert lake_skipping_sql(ChunkRange(("a",), None), (ResyncKey("s", "varchar", "utf8mb4_bin"),)) == "TRUE"
    assert lake_skipping_sql(ChunkRange((1,), None), (ResyncKey("u", "bigint unsigned"),)) == "TRUE"  # a decimal
    assert lake_skipping_sql(ChunkRange(), (ResyncKey("id", "int"),)) == "TRUE"
