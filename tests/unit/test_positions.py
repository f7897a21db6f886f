"""Binlog positions and LSNs."""

from __future__ import annotations

import pytest

from binlake.positions import MAX_EPOCH, BinlogPosition, epoch_base, file_sequence, lsn_text, make_lsn, split_lsn


def test_lsn_orders_across_file_rotation() -> None:
    last_of_first = make_lsn("binlog.000001", 2**32 - 1)
    first_of_second = make_lsn("binlog.000002", 4)
    assert last_of_first < first_of_second
    assert split_lsn(first_of_second) == (0, 2, 4)


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


def test_epoch_zero_keeps_the_old_lsn() -> None:
    assert make_lsn("binlog.000003", 1234) == (3 << 32) | 1234
    assert make_lsn("binlog.000003", 1234, epoch=0) == (3 << 32) | 1234
    assert BinlogPosition.of("binlog.000003", 1234).lsn == (3 << 32) | 1234


def test_a_later_epoch_orders_after_every_position_of_an_earlier_one() -> None:
    end_of_old = make_lsn("binlog.999999", 2**32 - 1, epoch=0)  # the old server far ahead in file numbers
    start_of_new = make_lsn("binlog.000001", 4, epoch=1)
    assert end_of_old < start_of_new
    assert split_lsn(start_of_new) == (1, 1, 4)
    assert BinlogPosition.of("binlog.000900", 10) < BinlogPosition.of("binlog.000001", 4, epoch=1)
    top = make_lsn("binlog.000001", 4, epoch=MAX_EPOCH)
    assert 0 < top < 2**63  # still a positive int64 (Spark BIGINT, change-log file names)
    assert len(f"{top:020d}") == 20


def test_epoch_and_file_number_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="epoch 2048 is outside"):
        make_lsn("binlog.000001", 4, epoch=MAX_EPOCH + 1)
    with pytest.raises(ValueError, match="file numbers above 1048575"):
        make_lsn("binlog.1048576", 4)
    with pytest.raises(ValueError, match="outside"):
        epoch_base(-1)


def test_position_epoch_round_trips_and_old_dicts_default_to_epoch_zero() -> None:
    pos = BinlogPosition.of("binlog.000002", 100, "0-2-5", epoch=3)
    assert BinlogPosition.from_dict(pos.to_dict()) == pos
    assert BinlogPosition.from_dict(pos.to_dict()).epoch == 3
    assert BinlogPosition.from_dict({"file": "binlog.000002", "pos": 100, "gtid": None}).epoch == 0
    assert pos.in_epoch(0) == BinlogPosition.of("binlog.000002", 100)
    assert str(pos) == "epoch 3 binlog.000002:100 (gtid 0-2-5)"


def test_lsn_text_shows_the_epoch_when_there_is_one() -> None:
    assert lsn_text(make_lsn("binlog.000002", 2000)) == "000002:2000"
    assert lsn_text(make_lsn("binlog.000002", 2000, epoch=4)) == "e4:000002:2000"
    assert lsn_text(None) == "-"
