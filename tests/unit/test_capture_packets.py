"""PacketReader against pymysql's own ``Connection._read_packet`` on the same bytes (no server)."""

from __future__ import annotations

import socket
import struct
import threading
from typing import Any

import pymysql
import pytest
from pymysql import err

from binlake.capture.packets import MAX_PACKET_LEN, PacketReader


def frame(payloads: list[bytes], first_seq: int = 1) -> bytes:
    """The wire form of ``payloads`` (long ones split at 0xFFFFFF, as a server sends them)."""
    out, seq = [], first_seq
    for payload in payloads:
        while True:
            part, payload = payload[:MAX_PACKET_LEN], payload[MAX_PACKET_LEN:]
            out.append(struct.pack("<I", len(part))[:3] + bytes([seq % 256]) + part)
            seq += 1
            if len(part) < MAX_PACKET_LEN:
                break
    return b"".join(out)


def connection(wire: bytes, close: bool = True) -> tuple[Any, socket.socket]:
    """A pymysql connection (never connected to a server) whose socket receives ``wire``."""
    ours, theirs = socket.socketpair()
    conn = pymysql.connections.Connection(defer_connect=True)
    conn._sock, conn._rfile = ours, ours.makefile("rb")
    conn._next_seq_id, conn._read_timeout, conn._current_timeout = 1, 5, None
    conn.encoding = "utf8"

    def send() -> None:
        theirs.sendall(wire)
        if close:
            theirs.close()

    threading.Thread(target=send, daemon=True).start()
    return conn, theirs


PAYLOADS = [b"\x00" + bytes(range(200)) * k for k in (0, 1, 7, 2000)] + [b"\x00" * (MAX_PACKET_LEN - 1),
                                                                         b"\x00" + b"x" * (MAX_PACKET_LEN + 10),
                                                                         b"\x00" + b"y" * MAX_PACKET_LEN, b"\x00ok"]


def test_payloads_equal_pymysql_ones() -> None:
    wire = frame(PAYLOADS)
    library, _ = connection(wire)
    ours, _ = connection(wire)
    reader = PacketReader(ours)
    for payload in PAYLOADS:
        expected = library._read_packet().get_all_data()
        assert expected == payload
        assert reader.read() == expected
    assert ours._next_seq_id == library._next_seq_id


def test_bytes_already_buffered_by_pymysql_come_first() -> None:
    conn, _ = connection(frame([b"\x00first", b"\x00second"]))
    assert conn._rfile.peek(1)  # pymysql's buffered file holds the bytes now
    reader = PacketReader(conn)
    assert [reader.read(), reader.read()] == [b"\x00first", b"\x00second"]


def test_error_packet_raises_like_pymysql() -> None:
    error = b"\xff" + struct.pack("<H", 1236) + b"#HY000" + b"Could not find first log file name"
    wire = frame([error])
    library, _ = connection(wire)
    with pytest.raises(err.OperationalError) as expected:
        library._read_packet()
    with pytest.raises(err.OperationalError) as got:
        PacketReader(connection(wire)[0]).read()
    assert got.value.args == expected.value.args


@pytest.mark.parametrize(("first_seq", "error"), [(5, err.InternalError), (0, err.OperationalError)])
def test_wrong_sequence_number_closes_and_raises(first_seq: int, error: type[Exception]) -> None:
    conn, _ = connection(frame([b"\x00x"], first_seq=first_seq))
    with pytest.raises(error):
        PacketReader(conn).read()
    assert conn._sock is None  # force-closed


def test_end_of_stream_inside_a_packet_is_a_lost_connection() -> None:
    conn, _ = connection(frame([b"\x00" + b"z" * 1000])[:500])
    with pytest.raises(err.OperationalError) as raised:
        PacketReader(conn).read()
    assert raised.value.args[0] == 2013 and conn._sock is None


def test_read_timeout_is_a_lost_connection() -> None:
    conn, _ = connection(b"", close=False)
    conn._read_timeout = 0.05
    with pytest.raises(err.OperationalError) as raised:
        PacketReader(conn).read()
    assert raised.value.args[0] == 2013


def test_idle_once_everything_sent_is_read() -> None:
    conn, theirs = connection(frame([b"\x00a", b"\x00b"]), close=False)
    reader = PacketReader(conn)
    assert reader.read() == b"\x00a"
    assert not reader.idle()  # the second packet is buffered
    assert reader.read() == b"\x00b"
    assert reader.idle()
    theirs.sendall(frame([b"\x00c"], first_seq=3))
    threading.Event().wait(0.05)
    assert not reader.idle()
    assert reader.read() == b"\x00c"
