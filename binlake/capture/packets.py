"""Reading binlog-stream packets from a pymysql connection without pymysql's per-packet objects.

For a backlog of small transactions the capture reads four packets per transaction (GTID, table
map, rows, XID); pymysql's ``Connection._read_packet`` spends more time per packet than the
capture's own decoding of it (two buffered reads, a ``struct`` unpack, a join, a ``MysqlPacket``).
:class:`PacketReader` reads the same byte stream in large chunks and cuts payloads from its own
buffer, with pymysql's rules:

* the 3-byte length + 1-byte sequence number header; payloads of ``0xFFFFFF`` bytes continue in the
  next packet (joined, as pymysql does);
* a sequence number other than the expected one force-closes the connection and raises
  ``OperationalError(CR_SERVER_LOST)`` when it is 0 (MariaDB's shutdown error), else
  ``InternalError``; the connection's ``_next_seq_id`` is kept up to date;
* a socket error, a timeout (``source.read_timeout_s``) or an end of stream force-closes the
  connection and raises ``OperationalError(CR_SERVER_LOST)``; any other exception (a stop signal
  raised inside the read) force-closes it and propagates;
* an error packet (first byte ``0xFF``) is raised as pymysql raises it (``raise_for_error``).

:meth:`PacketReader.idle` answers "would the next read wait for the server?" (nothing buffered
here, in the TLS layer or on the socket): the capture flushes when it has caught up.

Contact with pymysql's private connection state (``_rfile``, ``_sock``, ``_next_seq_id``,
``_read_timeout``, ``_current_timeout``, ``_force_close``) is confined to this module (pymysql
>= 1.1, checked by ``tests/unit/test_capture_packets.py`` against ``Connection._read_packet``).
The reader must own every read of the connection after it is created: it drains the
connection's buffered file first (``read1``), and never leaves bytes there.
"""

from __future__ import annotations

import errno
import select
from typing import Any

from pymysql import err
from pymysql.constants import CR
from pymysql.protocol import MysqlPacket

MAX_PACKET_LEN = 0xFFFFFF
CHUNK = 256 * 1024


class PacketReader:
    """The payloads of one pymysql connection's packets, in order (see module doc)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self._buf = b""
        self._pos = 0
        if connection._current_timeout != connection._read_timeout:
            connection._sock.settimeout(connection._read_timeout)
            connection._current_timeout = connection._read_timeout
        self._read1 = connection._rfile.read1
        self._sock = connection._sock

    def read(self) -> bytes:
        """The next payload (bytes); raises as pymysql does for errors and a lost connection."""
        buf, pos = self._buf, self._pos
        if len(buf) - pos >= 4:
            length = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
            end = pos + 4 + length
            if end <= len(buf) and length < MAX_PACKET_LEN:
                self._check_seq(buf[pos + 3])
                self._pos = end
                data = buf[pos + 4:end]
                if data and data[0] == 0xFF:
                    self._raise_error(data)
                return data
        return self._read_slow()

    def _read_slow(self) -> bytes:
        parts = []
        while True:
            self._fill(4)
            buf, pos = self._buf, self._pos
            length = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
            self._check_seq(buf[pos + 3])
            self._pos = pos + 4
            self._fill(length)
            parts.append(self._buf[self._pos:self._pos + length])
            self._pos += length
            if length < MAX_PACKET_LEN:
                break
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        if data and data[0] == 0xFF:
            self._raise_error(data)
        return data

    def idle(self) -> bool:
        """Nothing left to read without waiting for the server (here, in TLS, on the socket)."""
        if self._pos < len(self._buf):
            return False
        sock = self._sock
        pending = getattr(sock, "pending", None)
        if pending is not None and pending():
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):  # a closed socket: the next read says so
            return False
        return not readable

    def _fill(self, need: int) -> None:
        """At least ``need`` unread bytes in the buffer."""
        have = len(self._buf) - self._pos
        if have >= need:
            return
        parts = [self._buf[self._pos:]]
        while have < need:
            chunk = self._recv(max(CHUNK, need - have))
            parts.append(chunk)
            have += len(chunk)
        self._buf, self._pos = b"".join(parts), 0

    def _recv(self, size: int) -> bytes:
        connection = self.connection
        while True:
            try:
                chunk: bytes = self._read1(size)
                break
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                connection._force_close()
                raise err.OperationalError(CR.CR_SERVER_LOST,
                                           f"Lost connection to MySQL server during query ({exc})") from None
            except BaseException:
                connection._force_close()
                raise
        if not chunk:
            connection._force_close()
            raise err.OperationalError(CR.CR_SERVER_LOST, "Lost connection to MySQL server during query")
        return chunk

    def _check_seq(self, number: int) -> None:
        connection = self.connection
        expected = connection._next_seq_id
        if number != expected:
            connection._force_close()
            if number == 0:
                raise err.OperationalError(CR.CR_SERVER_LOST, "Lost connection to MySQL server during query")
            raise err.InternalError(f"Packet sequence number wrong - got {number} expected {expected}")
        connection._next_seq_id = (expected + 1) % 256

    def _raise_error(self, data: bytes) -> None:
        MysqlPacket(data, self.connection.encoding).raise_for_error()
