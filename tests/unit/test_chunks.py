"""Chunk splitting: ranges tile the key space (no gap, no overlap), predicates quote and escape."""

from __future__ import annotations

import datetime as dt
import doctest
import itertools
import random
from decimal import Decimal

import pytest

from binlake import chunks
from binlake.chunks import (
    WHOLE,
    ChunkRange,
    boundaries_from_sample,
    chunk_count,
    even_integer_boundaries,
    plan_integer_chunks,
    quote_identifier,
    ranges_from_boundaries,
    render_literal,
    render_predicate,
)


def assert_tiles(ranges: list[ChunkRange], keys: list[tuple[int, ...]]) -> None:
    """Each key falls in exactly one range, and consecutive ranges share their bound."""
    assert ranges[0].start is None and ranges[-1].end is None
    for left, right in itertools.pairwise(ranges):
        assert left.end == right.start
    for key in keys:
        assert sum(r.contains(key) for r in ranges) == 1, key


def test_module_examples_run() -> None:
    assert doctest.testmod(chunks).failed == 0


@pytest.mark.parametrize(
    ("start", "end", "error"),
    [
        ((5,), (5,), ValueError),
        ((6,), (5,), ValueError),
        ((1, 2), (3,), ValueError),
        ((), None, TypeError),
        ([1], None, TypeError),
        ((True,), None, TypeError),
        ((None,), None, TypeError),
        (None, (object(),), TypeError),
    ],
)
def test_range_constructor_rejects_bad_bounds(start: object, end: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        ChunkRange(start, end)  # type: ignore[arg-type]


def test_range_accepts_unordered_strings_because_the_collation_decides() -> None:
    assert ChunkRange(("b",), ("A",)).end == ("A",)


def test_chunk_count() -> None:
    assert chunk_count(0, 10) == 1
    assert chunk_count(10, 10) == 1
    assert chunk_count(11, 10) == 2
    with pytest.raises(ValueError):
        chunk_count(5, 0)


@pytest.mark.parametrize(("low", "high", "n"), [(1, 1000, 3), (1, 7, 7), (1, 7, 20), (-50, 49, 9), (0, 0, 4)])
def test_even_integer_boundaries_tile_the_span(low: int, high: int, n: int) -> None:
    bounds = even_integer_boundaries(low, high, n)
    assert bounds == sorted(set(bounds))
    assert all(low < b <= high for b in bounds)
    ranges = ranges_from_boundaries([(b,) for b in bounds])
    assert_tiles(ranges, [(k,) for k in range(low - 3, high + 3)])
    assert len(ranges) <= max(1, min(n, high - low + 1))


@pytest.mark.parametrize("rows", [1, 99, 100, 101, 999, 1000, 1001, 12345])
def test_integer_plan_sizes_not_multiples_of_chunk_rows(rows: int) -> None:
    keys = list(range(1, rows + 1))
    ranges = plan_integer_chunks(1, rows, rows, chunk_rows=100)
    assert ranges is not None
    assert len(ranges) == chunk_count(rows, 100)
    assert_tiles(ranges, [(k,) for k in [-5, 0, *keys, rows + 1, 10**12]])
    sizes = [sum(r.contains((k,)) for k in keys) for r in ranges]
    assert sum(sizes) == rows
    assert max(sizes) <= 100


def test_integer_plan_with_gaps_bounds_chunk_size_by_spread() -> None:
    keys = [k for k in range(1, 3001) if k % 3 != 0]  # 2000 rows over 3000 values: spread 1.5
    ranges = plan_integer_chunks(min(keys), max(keys), len(keys), chunk_rows=100)
    assert ranges is not None
    sizes = [sum(r.contains((k,)) for k in keys) for r in ranges]
    assert sum(sizes) == len(keys) and max(sizes) <= 2 * 100


def test_integer_plan_refuses_sparse_keys() -> None:
    assert plan_integer_chunks(1, 10**12, 1000, chunk_rows=100) is None


def test_integer_plan_small_or_empty_table_is_one_whole_chunk() -> None:
    assert plan_integer_chunks(None, None, 0, 100) == [WHOLE]
    assert plan_integer_chunks(1, 10**15, 50, 100) == [WHOLE]


def test_sampled_boundaries_handle_skew() -> None:
    rng = random.Random(7)
    dense = list(range(1, 9001))
    sparse = [10**9 + i * 10**6 for i in range(1000)]
    keys = sorted(dense + sparse)
    sample = sorted(rng.sample(keys, 2000))
    bounds = boundaries_from_sample([(k,) for k in sample], chunk_count(len(keys), 1000))
    ranges = ranges_from_boundaries(bounds)
    assert_tiles(ranges, [(k,) for k in keys])
    sizes = [sum(r.contains((k,)) for k in keys) for r in ranges]
    assert sum(sizes) == len(keys)
    assert max(sizes) < 1500  # quantiles of a 20% sample: within 50% of the target


def test_sampled_boundaries_are_strictly_increasing_and_never_repeat() -> None:
    sample = [(i,) for i in range(5)]
    assert boundaries_from_sample(sample, 20) == [(1,), (2,), (3,), (4,)]
    assert boundaries_from_sample([], 5) == []
    assert boundaries_from_sample(sample, 1) == []


def test_composite_ranges_tile() -> None:
    keys = [(a, b) for a in range(10) for b in range(7)]
    bounds = boundaries_from_sample(keys, 6)
    ranges = ranges_from_boundaries(bounds)
    assert len(ranges) == 6
    assert_tiles(ranges, [*keys, (-1, 0), (10, 0), (3, 100)])


def test_range_json_round_trip_keeps_types() -> None:
    key = (5, "é'x", b"\x00\xff", Decimal("-1.50"), 2.5, dt.datetime(2020, 1, 2, 3, 4, 5, 6),
           dt.date(1000, 1, 1), dt.time(1, 2, 3), dt.timedelta(hours=-838))
    for r in (ChunkRange(key, None), ChunkRange(None, key), WHOLE):
        back = ChunkRange.from_dict(r.to_dict())
        assert back == r
        assert [type(v) for v in (back.start or back.end or ())] == [type(v) for v in (r.start or r.end or ())]
    with pytest.raises(ValueError):
        ChunkRange.from_dict({"start": None})


def test_quote_identifier() -> None:
    assert quote_identifier("order") == "`order`"
    assert quote_identifier("a`b") == "`a``b`"
    assert quote_identifier("naïve col") == "`naïve col`"
    with pytest.raises(ValueError):
        quote_identifier("")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (42, "42"),
        (-7, "-7"),
        (Decimal("1.500"), "1.500"),
        (Decimal("1E+3"), "1000"),
        ("abc", "'abc'"),
        ("it's", "_utf8mb4 X'69742773'"),
        ("a\\b", "_utf8mb4 X'615C62'"),
        ("😀", "_utf8mb4 X'F09F9880'"),
        (b"\x00'", "X'0027'"),
        (dt.datetime(2020, 1, 2, 3, 4, 5), "'2020-01-02 03:04:05.000000'"),
        (dt.date(2020, 1, 2), "'2020-01-02'"),
        (dt.timedelta(hours=-1, seconds=-1), "'-01:00:01.000000'"),
    ],
)
def test_render_literal(value: chunks.KeyValue, expected: str) -> None:
    assert render_literal(value) == expected


def test_render_literal_rejects_bad_values() -> None:
    for bad in (True, float("nan"), Decimal("NaN"), None, [1]):
        with pytest.raises((TypeError, ValueError)):
            render_literal(bad)  # type: ignore[arg-type]


def test_render_single_column_predicates() -> None:
    assert render_predicate(WHOLE, ["id"]) == "1=1"
    assert render_predicate(ChunkRange((5,), None), ["order"]) == "`order` >= 5"
    assert render_predicate(ChunkRange(None, (9,)), ["id"], qualifier="t") == "`t`.`id` < 9"
    assert render_predicate(ChunkRange((5,), (9,)), ["id"]) == "`id` >= 5 AND `id` < 9"
    assert render_predicate(WHOLE, []) == "1=1"
    with pytest.raises(ValueError):
        render_predicate(ChunkRange((1,), None), [])


def test_render_composite_predicates_both_styles() -> None:
    r = ChunkRange((1, "x"), (2, "y"))
    assert render_predicate(r, ["a", "b"]) == (
        "(`a` > 1 OR (`a` = 1 AND `b` >= 'x')) AND (`a` < 2 OR (`a` = 2 AND `b` < 'y'))"
    )
    assert render_predicate(r, ["a", "b"], style="row") == "(`a`, `b`) >= (1, 'x') AND (`a`, `b`) < (2, 'y')"
    with pytest.raises(ValueError):
        render_predicate(r, ["a"])


def test_expanded_predicate_means_lexicographic_order() -> None:
    """Evaluate the expanded predicate in Python and compare with tuple ordering on a 3-column key."""
    r = ChunkRange((1, 2, 3), (2, 0, 1))
    sql = render_predicate(r, ["a", "b", "c"])
    expr = sql.replace("`", "").replace(" = ", " == ").replace("OR", "or").replace("AND", "and")
    for key in [(a, b, c) for a in range(4) for b in range(4) for c in range(4)]:
        env = dict(zip("abc", key, strict=True))
        assert eval(expr, {}, env) == r.contains(key), key


# ---------------------------------------------------------------------------------------------
# byte-bounded chunk sizes


def test_rows_per_chunk_is_bounded_by_rows_and_by_bytes() -> None:
    from binlake.chunks import rows_per_chunk

    assert rows_per_chunk(250_000, 64 << 20, 70) == 250_000  # narrow rows: the row bound
    assert rows_per_chunk(250_000, 1 << 20, 65_600) == 15  # 64 KiB BLOB rows: 15 x 65,600 <= 1 MiB
    assert rows_per_chunk(250_000, 1 << 20, 10 << 20) == 1  # a row above the bound still loads, alone
    assert rows_per_chunk(10, 1 << 20, 0) == 10
    with pytest.raises(ValueError):
        rows_per_chunk(10, 0, 1)


def test_blob_table_plan_keeps_every_chunk_under_the_byte_bound() -> None:
    from binlake.chunks import plan_integer_chunks, rows_per_chunk

    per_chunk = rows_per_chunk(250_000, 256 * 1024, 65_541)
    ranges = plan_integer_chunks(1, 48, rows=48, chunk_rows=per_chunk)
    assert ranges is not None and per_chunk == 3 and len(ranges) == 16
    sizes = [sum(1 for key in range(1, 49) if r.contains((key,))) for r in ranges]
    assert sizes == [3] * 16 and max(sizes) * 65_541 <= 256 * 1024


def test_row_bytes_sample_counts_every_column() -> None:
    from binlake.rules import TableTarget
    from binlake.snapshot.discovery import SourceColumn, SourceTable
    from binlake.snapshot.planning import row_bytes_sql
    from binlake.typemap import ColumnType

    columns = (SourceColumn("id", "id", ColumnType("int"), False), SourceColumn("b`x", "b", ColumnType("blob"), True))
    table = SourceTable(TableTarget("s", "t", "s", "t"), columns, ("id",), (ColumnType("int"),), "InnoDB", 0, 0)
    assert row_bytes_sql(table) == ("SELECT AVG(IFNULL(LENGTH(`id`), 0) + IFNULL(LENGTH(`b``x`), 0)) + 2 FROM "
                                    "(SELECT * FROM `s`.`t` LIMIT 1000) AS _binlake_sample")
