"""MariaDB compressed binlog events → the equivalent uncompressed events (pure, bytes in, bytes out).

With ``log_bin_compress=ON`` MariaDB (10.2.3+) writes a query or rows event whose payload is at
least ``log_bin_compress_min_len`` bytes as a *compressed* event type instead; pymysqlreplication
1.0.17 does not know these types. This module is the one place that knows their layout, taken from
MariaDB's ``query_event_uncompress``, ``row_log_event_uncompress``, ``binlog_get_uncompress_len``
and ``binlog_buf_uncompress`` (sql/log_event.cc):

=================================  ====  ==========================  ====
compressed type                    code  becomes                     code
=================================  ====  ==========================  ====
QUERY_COMPRESSED_EVENT             165   QUERY_EVENT                 2
WRITE_ROWS_COMPRESSED_EVENT_V1     166   WRITE_ROWS_EVENT_V1         23
UPDATE_ROWS_COMPRESSED_EVENT_V1    167   UPDATE_ROWS_EVENT_V1        24
DELETE_ROWS_COMPRESSED_EVENT_V1    168   DELETE_ROWS_EVENT_V1        25
WRITE_ROWS_COMPRESSED_EVENT        169   WRITE_ROWS_EVENT (v2)       30
UPDATE_ROWS_COMPRESSED_EVENT       170   UPDATE_ROWS_EVENT (v2)      31
DELETE_ROWS_COMPRESSED_EVENT       171   DELETE_ROWS_EVENT (v2)      32
=================================  ====  ==========================  ====

What is compressed — everything before it is kept byte for byte:

* query: the statement text, after the 13-byte post-header, the status variables, the default
  database and its NUL terminator;
* rows: the row images, after the post-header (8 bytes in the V1 forms; 10 plus the extra data in
  the V2 forms, whose 2-byte length counts itself), the column count (length-encoded) and the
  columns-present bitmap(s) — two for updates, one otherwise.

The compressed part is one header byte ``1AAA0LLL`` (bit 7 set, ``AAA`` the algorithm — only 0,
zlib, exists — and ``LLL`` 1..4 the size of the next field), the uncompressed length in that many
bytes, big-endian, then a zlib stream of exactly that length once inflated.

:func:`decompress_packet` rewrites a whole packet as received on the dump connection (OK byte +
19-byte header + body [+ CRC32]): new type code, new event length, the inflated body, and a new
CRC32 when the stream carries checksums. Timestamp, server id, flags and ``log_pos`` (the end of
the event *in the binlog file*) are kept, so positions stay those of the real binlog.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from binlake.capture.records import CaptureDataError

QUERY_COMPRESSED_EVENT = 165
WRITE_ROWS_COMPRESSED_EVENT_V1 = 166
UPDATE_ROWS_COMPRESSED_EVENT_V1 = 167
DELETE_ROWS_COMPRESSED_EVENT_V1 = 168
WRITE_ROWS_COMPRESSED_EVENT = 169
UPDATE_ROWS_COMPRESSED_EVENT = 170
DELETE_ROWS_COMPRESSED_EVENT = 171

QUERY_EVENT = 2
QUERY_POST_HEADER = 13  # thread id 4, exec time 4, db length 1, error code 2, status vars length 2
ROWS_POST_HEADER_V1 = 8  # table id 6, flags 2
ROWS_POST_HEADER_V2 = 10  # + extra-data length 2 (counting itself)

# compressed rows type → (uncompressed type, post-header length, number of bitmaps)
ROWS_TYPES: dict[int, tuple[int, int, int]] = {
    WRITE_ROWS_COMPRESSED_EVENT_V1: (23, ROWS_POST_HEADER_V1, 1),
    UPDATE_ROWS_COMPRESSED_EVENT_V1: (24, ROWS_POST_HEADER_V1, 2),
    DELETE_ROWS_COMPRESSED_EVENT_V1: (25, ROWS_POST_HEADER_V1, 1),
    WRITE_ROWS_COMPRESSED_EVENT: (30, ROWS_POST_HEADER_V2, 1),
    UPDATE_ROWS_COMPRESSED_EVENT: (31, ROWS_POST_HEADER_V2, 2),
    DELETE_ROWS_COMPRESSED_EVENT: (32, ROWS_POST_HEADER_V2, 1),
}
COMPRESSED_TYPES = frozenset({QUERY_COMPRESSED_EVENT, *ROWS_TYPES})

_OK = 1  # the OK byte in front of every event on the dump connection
_HEADER = 19  # timestamp 4, type 1, server id 4, event length 4, log_pos 4, flags 2
_BODY = _OK + _HEADER
_CHECKSUM = 4


def decompress_packet(data: bytes, post_header_lengths: Sequence[int] | None, checksum: bool,
                      where: str = "") -> bytes:
    """The packet ``data`` (a compressed event) as the equivalent uncompressed event's packet.

    ``post_header_lengths``: the format description's table (index = type code - 1), checked
    against the layout above; ``checksum``: the stream carries a CRC32 after every event (kept
    out of the compressed part, recomputed for the new bytes). ``where`` (``file:pos``) prefixes
    errors. Raises :class:`CaptureDataError` for a malformed event or an unknown algorithm —
    never returns bytes that are not exactly the original event.
    """
    event_type = data[_OK + 4]
    end = len(data) - (_CHECKSUM if checksum else 0)
    if event_type == QUERY_COMPRESSED_EVENT:
        _expect_post_header(post_header_lengths, event_type, QUERY_POST_HEADER, where)
        ph = _BODY
        _need(data, ph + QUERY_POST_HEADER, end, where)
        db_len, status_len = data[ph + 8], int.from_bytes(data[ph + 11:ph + 13], "little")
        start, new_type = ph + QUERY_POST_HEADER + status_len + db_len + 1, QUERY_EVENT
    elif event_type in ROWS_TYPES:
        new_type, post_header, bitmaps = ROWS_TYPES[event_type]
        _expect_post_header(post_header_lengths, event_type, post_header, where)
        start = _BODY + ROWS_POST_HEADER_V1
        if post_header == ROWS_POST_HEADER_V2:
            _need(data, start + 2, end, where)
            start += int.from_bytes(data[start:start + 2], "little")
        _need(data, start + 1, end, where)
        width, start = _lenenc(data, start)
        start += bitmaps * ((width + 7) // 8)
    else:
        raise ValueError(f"event type {event_type} is not a MariaDB compressed event")
    _need(data, start + 1, end, where)
    body = inflate(data[start:end], where)
    event = bytearray(data[_OK:start])
    event[4] = new_type
    size = len(event) + len(body) + (_CHECKSUM if checksum else 0)
    event[9:13] = size.to_bytes(4, "little")
    event += body
    if checksum:
        event += zlib.crc32(event).to_bytes(4, "little")
    return data[:_OK] + bytes(event)


def inflate(compressed: bytes, where: str = "") -> bytes:
    """The bytes of one MariaDB compressed block (header byte, big-endian length, zlib data)."""
    head = compressed[0]
    size_len = head & 0x07
    if head & 0xE0 != 0x80 or not 1 <= size_len <= 4:
        raise CaptureDataError(f"{where}: malformed compressed binlog event (header byte 0x{head:02x})")
    if (head >> 4) & 0x07 != 0:
        raise CaptureDataError(f"{where}: compressed binlog event uses algorithm {(head >> 4) & 0x07}; "
                               "MariaDB defines only zlib (0)")
    expected = int.from_bytes(compressed[1:1 + size_len], "big")
    try:
        body = zlib.decompress(compressed[1 + size_len:], bufsize=max(expected, 1))
    except zlib.error as exc:
        raise CaptureDataError(f"{where}: compressed binlog event does not inflate: {exc}") from None
    if len(body) != expected:
        raise CaptureDataError(f"{where}: compressed binlog event inflates to {len(body)} bytes, "
                               f"its header says {expected}")
    return body


def _expect_post_header(declared: Sequence[int] | None, event_type: int, expected: int, where: str) -> None:
    actual = declared[event_type - 1] if declared and len(declared) >= event_type else None
    if actual != expected:
        raise CaptureDataError(f"{where}: the format description gives compressed event type {event_type} a "
                               f"post-header of {actual} bytes; binlake knows only {expected}")


def _need(data: bytes, offset: int, end: int, where: str) -> None:
    if offset > end:
        raise CaptureDataError(f"{where}: compressed binlog event truncated ({end - _OK} bytes)")


def _lenenc(data: bytes, off: int) -> tuple[int, int]:
    first = data[off]
    if first < 251:
        return first, off + 1
    size = {252: 2, 253: 3, 254: 8}.get(first)
    if size is None:
        raise CaptureDataError(f"malformed column count byte 0x{first:02x} in a compressed rows event")
    return int.from_bytes(data[off + 1:off + 1 + size], "little"), off + 1 + size
