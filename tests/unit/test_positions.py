"""Binlog positions and LSNs."""

from __future__ import annotations

import pytest

from binlake.positions import BinlogPosition, file_sequence, make_lsn, split_lsn


def test_lsn_orders_across_file_rotation() -> None:
    last_of_first = make_lsn("binlog.000001", 2**32 - 1)
    first_of_second = make_lsn("binlog.000002", 4)
    assert last_of_first < first_of_second
    assert split_lsn(first_of_second) == (2, 4)


def test_file_sequence_and_bad_names() -> None:
    assert file_sequence("mysql-bin.000123") == 123
    with pytest.raises(ValueError, match="numeric suffix"):
        file_sequence("binlog")
    with pytest.raises(ValueError, match="outside"):
        make_lsn("binlog.000001", 2**32)


def test_position_is_immutable_ordered_and_round_trips() -> None:
    a = BinlogPosition.of("binlog.000002", 100, "0-1-5")
    b = BinlogPosition.of("binlog.000002", 200)
    c = BinlogPosition.of("binlog.000010", 4)
    assert a < b < c
    assert sorted([c, a, b]) == [a, b, c]
    assert a == BinlogPosition.of("binlog.000002", 100, "0-1-9")  # gtid does not take part in equality
    assert BinlogPosition.from_dict(a.to_dict()) == a
    assert BinlogPosition.from_dict(a.to_dict()).gtid == "0-1-5"
    with pytest.raises(AttributeError):
        a.pos = 5  # type: ignore[misc]


def test_from_dict_fails_loudly_on_missing_key() -> None:
    with pytest.raises(ValueError, match=r"missing key\(s\) \['pos'\]"):
        BinlogPosition.from_dict({"file": "binlog.000001"})
