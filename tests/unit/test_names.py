"""Lake names: the encoding of schema/table names into path segments, and the collision check."""

from __future__ import annotations

import string

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from binlake import lake
from binlake.merge.handoff import joined_key
from binlake.merge.summary import TableName
from binlake.names import (
    HIDDEN_PREFIX,
    MAX_SEGMENT,
    LakeNameError,
    TargetClaims,
    TargetCollisionError,
    check_distinct_targets,
    decode_name,
    encode_name,
    is_plain,
    legacy_folder_name,
)

# What a MySQL identifier may hold: any BMP character but U+0000 (quoted identifiers), up to 64.
# Names produced by transformation rules (prefixes, suffixes) may be longer or leave the BMP.
identifier = st.text(st.characters(min_codepoint=1, max_codepoint=0xFFFF, codec="utf-8"), min_size=1, max_size=64)
any_name = st.text(st.characters(min_codepoint=1, codec="utf-8"), min_size=1, max_size=40)
SEGMENT_CHARACTERS = set(string.ascii_lowercase + string.digits + "_~-")


@pytest.mark.parametrize(
    ("name", "segment"),
    [
        ("orders", "orders"),
        ("order_items_2024", "order_items_2024"),
        ("_private", "_private"),
        ("_tmpx", "_tmpx"),
        ("Orders", "~orders"),
        ("OrderItems", "~order~items"),
        ("a:b", "a-3ab"),
        ("a/b", "a-2fb"),
        ("a_b", "a_b"),
        ("A_B", "~a_~b"),
        ("a b", "a-20b"),
        ("trailing ", "trailing-20"),
        (".", "-2e"),
        ("..", "-2e-2e"),
        ("a.b", "a-2eb"),
        ("%", "-25"),
        ("`", "-60"),
        ("a-b", "a-2db"),
        ("~", "-7e"),
        ("$x", "-24x"),
        ("café", "caf-c3-a9"),
        ("表", "-e8-a1-a8"),
        ("_tmp-x", "-5ftmp-2dx"),        # would start with the temporary-object prefix
        ("_tmp:x", "-5ftmp-3ax"),
    ],
)
def test_encoding_examples(name: str, segment: str) -> None:
    assert encode_name(name) == segment
    assert decode_name(segment) == name


def test_hidden_prefix_is_the_lakes_temporary_prefix() -> None:
    assert HIDDEN_PREFIX == lake.TMP_PREFIX


@settings(max_examples=600, deadline=None)  # no timing assertion: CI machines are loaded
@given(identifier)
@example("Foo")
@example("a:b")
def test_round_trip_and_safe_segment(name: str) -> None:
    try:
        segment = encode_name(name)
    except LakeNameError as exc:  # only when it does not fit a file name (never for an ASCII identifier)
        assert "encodes to a" in str(exc) and not name.isascii()
        return
    assert decode_name(segment) == name
    assert set(segment) <= SEGMENT_CHARACTERS        # RFC 3986 unreserved: nothing quotes or globs it
    assert segment not in (".", "..") and not segment.startswith((".", HIDDEN_PREFIX))
    assert "/" not in segment and ":" not in segment and "`" not in segment
    assert segment == segment.lower()                # so a case-insensitive store keeps names apart


@settings(max_examples=600, deadline=None)  # no timing assertion: CI machines are loaded
@given(any_name, any_name)
@example("a:b", "a_b")
@example("a/b", "a_b")
@example("Foo", "foo")
@example("a b", "a-20b")
@example("_tmp-x", "-5ftmp-2dx")
def test_distinct_names_give_distinct_segments_even_ignoring_case(first: str, second: str) -> None:
    if first == second:
        return
    try:
        a, b = encode_name(first), encode_name(second)
    except LakeNameError:
        return  # too long: refused, never written
    assert a.casefold() != b.casefold()


# Names made of the characters the encoding writes or escapes, so that near-collisions are likely.
tricky = st.text(alphabet="aAdD2f_-~:/ .é5", min_size=1, max_size=6)


@settings(max_examples=1500, deadline=None)  # no timing assertion: CI machines are loaded
@given(tricky, tricky)
def test_tricky_names_never_share_a_segment(first: str, second: str) -> None:
    if first != second:
        assert encode_name(first).casefold() != encode_name(second).casefold()
    assert decode_name(encode_name(first)) == first


@given(st.text(alphabet=sorted(SEGMENT_CHARACTERS), min_size=1, max_size=12))
def test_decode_accepts_only_what_encode_writes(segment: str) -> None:
    try:
        name = decode_name(segment)
    except LakeNameError:
        return
    assert encode_name(name) == segment


@pytest.mark.parametrize("segment", ["", "A", "a.b", "-2", "-2D", "-61", "~", "~1", "-ff", "-c3", "a/b", "_tmp-2dx"])
def test_decode_refuses_non_canonical_segments(segment: str) -> None:
    with pytest.raises(LakeNameError):
        decode_name(segment)


def test_plain_names_keep_their_folder_names() -> None:
    """Lakes written before binlake-name-1 keep working for a-z 0-9 _ names: same paths."""
    for name in ("orders", "a_b", "t2024", "_x"):
        assert is_plain(name)
        assert encode_name(name) == legacy_folder_name(name) == name
    assert lake.table_key("shop", "orders") == "shop/orders"
    assert lake.snapshot_state_key("shop", "orders") == "_binlake/snapshots/shop/orders.json"
    assert lake.tombstones_key("shop", "orders") == "_binlake/tombstones/shop/orders"
    assert joined_key(TableName("shop", "orders", "shop", "orders")) == "_binlake/merge/tables/shop/orders.json"


def test_every_state_path_uses_the_encoding() -> None:
    assert lake.table_key("My Shop", "a:b") == "~my-20~shop/a-3ab"
    assert lake.snapshot_state_key("s", "a/b") == "_binlake/snapshots/s/a-2fb.json"
    assert lake.tombstones_key("s", "a/b") == "_binlake/tombstones/s/a-2fb"
    assert joined_key(TableName("src", "x", "s", "A_B")) == "_binlake/merge/tables/s/~a_~b.json"


def test_too_long_names_are_refused_naming_the_fix() -> None:
    assert encode_name("a" * MAX_SEGMENT) == "a" * MAX_SEGMENT
    assert len(encode_name("%" * 64)) == 192           # every 64-character ASCII identifier fits
    with pytest.raises(LakeNameError, match="rename"):
        encode_name("д" * 34)
    with pytest.raises(LakeNameError, match="non-empty"):
        encode_name("")


def test_collisions_are_refused_naming_both_sources() -> None:
    pairs = [(("shop", "Orders"), ("shop", "orders")), (("shop", "orders"), ("shop", "orders")),
             (("shop", "items"), ("shop", "items"))]
    with pytest.raises(TargetCollisionError, match=r"`shop`\.`Orders` and `shop`\.`orders` both map "
                                                  r"to lake table `shop`\.`orders`"):
        check_distinct_targets(pairs)
    check_distinct_targets([(("s", "a:b"), ("s", "a:b")), (("s", "a_b"), ("s", "a_b")),
                            (("s", "A_B"), ("s", "A_B"))])


def test_claims_accept_the_same_source_again() -> None:
    claims = TargetClaims()
    claims.claim(("s", "a"), ("t", "x"))
    claims.claim(("s", "a"), ("t", "x"))
    with pytest.raises(TargetCollisionError, match=r"`s`\.`a` and `s`\.`b`"):
        claims.claim(("s", "b"), ("t", "x"))
