"""MariaDB compressed events (binlake.capture.compressed) and the event-type catalogue (binlake.capture.eventtypes).

Events are built by hand from the layouts in MariaDB's sql/log_event.cc: an uncompressed event, and
the same event compressed the way ``binlog_buf_compress`` and ``Rows_log_event::write_compressed`` /
``Query_log_event::write`` do it. Inflating the compressed one must give the uncompressed one byte
for byte, and pymysqlreplication must decode both to the same rows and statements.
"""

from __future__ import annotations

import zlib
from typing import Any

import pytest
from pymysql.protocol import MysqlPacket
from pymysqlreplication.event import FormatDescriptionEvent, QueryEvent, RotateEvent
from pymysqlreplication.packet import BinLogPacketWrapper
from pymysqlreplication.row_event import DeleteRowsEvent, TableMapEvent, UpdateRowsEvent, WriteRowsEvent

from binlake.capture import compressed, eventtypes, stream
from binlake.capture.fastreader import (
    _SKIPPED,
    LIBRARY_VERSION,
    FastBoundary,
    FastStreamReader,
    check_library_version,
)
from binlake.capture.records import FAST, LIBRARY, SKIP, CaptureDataError, RawRowsEvent

TABLE_ID = 0x1234
POST_HEADERS = [0] * 171
for _code, _length in {2: 13, 19: 8, 23: 8, 24: 8, 25: 8, 30: 10, 31: 10, 32: 10, 165: 13,
                       166: 8, 167: 8, 168: 8, 169: 10, 170: 10, 171: 10}.items():
    POST_HEADERS[_code - 1] = _length


# --- building events as MariaDB writes them ------------------------------------------------------

def packet(event_type: int, body: bytes, checksum: bool, log_pos: int = 1000) -> bytes:
    """OK byte + 19-byte header + body (+ CRC32 of header and body)."""
    size = 19 + len(body) + (4 if checksum else 0)
    header = (1_700_000_000).to_bytes(4, "little") + bytes([event_type]) + (7).to_bytes(4, "little") + \
        size.to_bytes(4, "little") + log_pos.to_bytes(4, "little") + (0).to_bytes(2, "little")
    event = header + body
    return b"\x00" + event + (zlib.crc32(event).to_bytes(4, "little") if checksum else b"")


def mariadb_compress(data: bytes) -> bytes:
    """binlog_buf_compress: ``0x80 | lenlen``, the length big-endian in lenlen bytes, zlib data."""
    lenlen = 1 if len(data) < 1 << 8 else 2 if len(data) < 1 << 16 else 3 if len(data) < 1 << 24 else 4
    return bytes([0x80 | lenlen]) + len(data).to_bytes(lenlen, "big") + zlib.compress(data)


def query_parts(query: bytes, schema: bytes = b"shop") -> tuple[bytes, bytes]:
    status = bytes([0x00]) + (0).to_bytes(4, "little")  # Q_FLAGS2_CODE
    head = (42).to_bytes(4, "little") + (0).to_bytes(4, "little") + bytes([len(schema)]) + \
        (0).to_bytes(2, "little") + len(status).to_bytes(2, "little") + status + schema + b"\x00"
    return head, query


def table_map(checksum: bool) -> bytes:
    """TABLE_MAP of shop.t (id INT, name VARCHAR(255) utf8mb4) with column names (binlog_row_metadata=FULL)."""
    names = b"".join(bytes([len(n)]) + n for n in (b"id", b"name"))
    optional = bytes([1, 1, 0x00]) + bytes([2, 1, 45]) + bytes([4, len(names)]) + names  # signedness, charset, names
    body = TABLE_ID.to_bytes(6, "little") + (1).to_bytes(2, "little") + b"\x04shop\x00" + b"\x01t\x00" + \
        b"\x02" + bytes([3, 15]) + b"\x02" + (1020).to_bytes(2, "little") + b"\x02" + optional
    return packet(19, body, checksum)


def row_image(row_id: int, name: bytes) -> bytes:
    return b"\x00" + row_id.to_bytes(4, "little", signed=True) + len(name).to_bytes(2, "little") + name


def rows_head(event_type: int) -> bytes:
    head = TABLE_ID.to_bytes(6, "little") + (1).to_bytes(2, "little")
    if 30 <= event_type <= 32 or event_type >= 169:
        head += (2 + 4).to_bytes(2, "little") + b"\x00\x03\x00\x55"  # V2: extra data (NDB info) after its length
    return head + b"\x02" + b"\x03" * (2 if event_type in (24, 31, 167, 170) else 1)


ROWS_FORMS = [(166, 23), (167, 24), (168, 25), (169, 30), (170, 31), (171, 32)]


def rows_payload(plain_type: int) -> bytes:
    if plain_type in (24, 31):
        return b"".join(row_image(i, f"before {i}".encode()) + row_image(i, f"after é {i} ".encode() * 30)
                        for i in range(1, 40))
    return b"".join(row_image(i, f"name ü {i} ".encode() * 20) for i in range(-5, 60))


# --- decoding with the library, as the capture's library path does ----------------------------

class _Ctl:
    charset = "utf8mb4"

    def _get_dbms(self) -> str:
        return "mariadb"


def library_decode(data: bytes, tables: dict[int, Any], checksum: bool) -> Any:
    wrapper = BinLogPacketWrapper(
        MysqlPacket(data, None), tables, _Ctl(), (10, 11, 19), checksum,
        frozenset({QueryEvent, TableMapEvent, WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent}),
        None, None, None, None, True, False, False, True, False, False, POST_HEADERS)
    if wrapper.event_type == 19:
        tables[wrapper.event.table_id] = wrapper.event.get_table()
    return wrapper.event


def decoded_rows(data: bytes, checksum: bool) -> list[Any]:
    tables: dict[int, Any] = {}
    library_decode(table_map(True), tables, True)  # 1.0.17 reads optional metadata up to a 4-byte tail
    return list(library_decode(data, tables, checksum).rows)


# --- tests ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("checksum", [True, False])
@pytest.mark.parametrize(("compressed_type", "plain_type"), ROWS_FORMS)
def test_every_compressed_rows_form_inflates_to_the_uncompressed_event(compressed_type: int, plain_type: int,
                                                                        checksum: bool) -> None:
    head, rows = rows_head(plain_type), rows_payload(plain_type)
    plain = packet(plain_type, head + rows, checksum)
    packed = packet(compressed_type, head + mariadb_compress(rows), checksum)
    assert len(packed) < len(plain)

    inflated = compressed.decompress_packet(packed, POST_HEADERS, checksum, "binlog.000001:4")

    assert inflated == plain  # type code, length, body and CRC32 rewritten; timestamp, server id, log_pos kept
    assert decoded_rows(inflated, checksum) == decoded_rows(plain, checksum)
    first = decoded_rows(inflated, checksum)[0]
    assert (first["before_values"] if plain_type in (24, 31) else first["values"])["id"] in (1, -5)


@pytest.mark.parametrize("checksum", [True, False])
def test_a_compressed_query_inflates_to_the_same_statement(checksum: bool) -> None:
    head, query = query_parts(("ALTER TABLE t ADD COLUMN c TEXT COMMENT '" + "é" * 400 + "'").encode())
    plain = packet(2, head + query, checksum)
    inflated = compressed.decompress_packet(packet(165, head + mariadb_compress(query), checksum),
                                            POST_HEADERS, checksum)
    assert inflated == plain
    event = library_decode(inflated, {}, checksum)
    assert isinstance(event, QueryEvent)
    assert event.query == query.decode() and event.schema == b"shop"


def test_each_size_of_the_length_field_is_read_big_endian() -> None:
    for size in (1, 255, 256, 70_000, 16_777_216):
        data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        assert compressed.inflate(mariadb_compress(data)) == data
    four_bytes = bytes([0x84]) + (3).to_bytes(4, "big") + zlib.compress(b"abc")
    assert compressed.inflate(four_bytes) == b"abc"


@pytest.mark.parametrize(("block", "message"), [
    (bytes([0x01, 3]) + zlib.compress(b"abc"), "header byte 0x01"),
    (bytes([0x80, 3]) + zlib.compress(b"abc"), "header byte 0x80"),
    (bytes([0x91, 3]) + zlib.compress(b"abc"), "algorithm 1"),
    (bytes([0x81, 4]) + zlib.compress(b"abc"), "inflates to 3 bytes, its header says 4"),
    (bytes([0x81, 3]) + b"not zlib", "does not inflate"),
])
def test_a_malformed_block_stops_with_its_position(block: bytes, message: str) -> None:
    with pytest.raises(CaptureDataError, match=message) as error:
        compressed.inflate(block, "binlog.000003:1234")
    assert str(error.value).startswith("binlog.000003:1234: ")


def test_an_unexpected_post_header_length_is_refused() -> None:
    odd = list(POST_HEADERS)
    odd[166 - 1] = 10
    packed = packet(166, rows_head(23) + mariadb_compress(rows_payload(23)), True)
    with pytest.raises(CaptureDataError, match="post-header of 10 bytes; binlake knows only 8"):
        compressed.decompress_packet(packed, odd, True, "binlog.000001:4")
    with pytest.raises(CaptureDataError, match="truncated"):
        compressed.decompress_packet(packet(169, b"\x00" * 9, False), POST_HEADERS, False, "binlog.000001:4")


def test_every_code_is_in_one_group_and_the_library_decodes_what_the_capture_asks_it_to() -> None:
    library_classes = BinLogPacketWrapper._BinLogPacketWrapper__event_map
    always_built = {FormatDescriptionEvent, RotateEvent, TableMapEvent}  # the library builds these always
    for code in eventtypes.DECODED_TYPES - compressed.COMPRESSED_TYPES:
        assert library_classes[code] in set(stream.EVENTS) | always_built, eventtypes.CATALOGUE[code].name
    assert compressed.COMPRESSED_TYPES <= eventtypes.DECODED_TYPES
    for kind in eventtypes.CATALOGUE.values():
        assert kind.action in (eventtypes.DECODE, eventtypes.IGNORE, eventtypes.STOP)
        assert kind.action == eventtypes.DECODE or kind.why, f"{kind.name} needs a reason"
    assert {26, 40, 0, 17, 18}.isdisjoint(eventtypes.IGNORED_TYPES)  # incident, payload, unknown, LOAD DATA


def test_the_stop_message_names_type_position_and_fix() -> None:
    payload = str(eventtypes.unsupported_event(40, "binlog.000007", 1200, 1500))
    assert payload.startswith("binlog.000007:1200: binlog event type 40 (TRANSACTION_PAYLOAD_EVENT, ends at 1500)")
    assert "SET GLOBAL binlog_transaction_compression=OFF" in payload and "SET SESSION" in payload
    unknown = str(eventtypes.unsupported_event(200, "binlog.000001", 4, 90))
    assert "event type 200 (unknown event type 200" in unknown and "may hold row changes" in unknown
    assert "LOST_EVENTS" in str(eventtypes.unsupported_event(26, "binlog.000001", 4, 90))


def test_the_reader_refuses_another_library_version() -> None:
    check_library_version(LIBRARY_VERSION)
    with pytest.raises(RuntimeError, match=r"needs mysql-replication 1\.0\.17, found 1\.0\.18"):
        check_library_version("1.0.18")


# --- the reader's edge: what happens to each kind of packet, no server needed ------------------

def reader(route: int) -> FastStreamReader:
    """A FastStreamReader that never connects: packets are handed to ``_fast_event`` directly."""
    stream_reader = FastStreamReader(connection_settings={"host": "127.0.0.1"}, server_id=1, route=lambda t: route,
                                     only_events=stream.EVENTS, freeze_schema=True, enable_logging=False)
    stream_reader._BinLogStreamReader__post_header_lengths = POST_HEADERS
    stream_reader._BinLogStreamReader__use_checksum = True
    stream_reader._ctl_connection = _Ctl()
    stream_reader.mysql_version = (10, 11, 19)
    stream_reader.log_file = "binlog.000009"
    library_decode(table_map(True), stream_reader.table_map, True)
    return stream_reader


def read(stream_reader: FastStreamReader, data: bytes) -> Any:
    event = stream_reader._fast_event(data)
    return event if event is not None else stream_reader._library_event(MysqlPacket(data, None))


@pytest.mark.parametrize(("compressed_type", "plain_type"), ROWS_FORMS)
def test_the_fast_path_gives_the_same_raw_rows_for_a_compressed_event(compressed_type: int, plain_type: int) -> None:
    head, rows = rows_head(plain_type), rows_payload(plain_type)
    fast = reader(FAST)
    from_compressed = read(fast, packet(compressed_type, head + mariadb_compress(rows), True, log_pos=5000))
    assert isinstance(from_compressed, RawRowsEvent)
    assert from_compressed == read(fast, packet(plain_type, head + rows, True, log_pos=5000))
    assert fast.log_pos == 5000


def test_the_library_path_gives_the_same_rows_and_query_for_compressed_events() -> None:
    slow = reader(LIBRARY)
    head, rows = rows_head(24), rows_payload(24)
    update = read(slow, packet(167, head + mariadb_compress(rows), True))
    assert isinstance(update, UpdateRowsEvent)
    assert update.rows == read(slow, packet(24, head + rows, True)).rows
    head, query = query_parts(b"TRUNCATE TABLE t /* " + b"padding " * 50 + b"*/")
    truncate = read(slow, packet(165, head + mariadb_compress(query), True))
    assert isinstance(truncate, QueryEvent) and truncate.query == query.decode()


@pytest.mark.parametrize("code", sorted(eventtypes.IGNORED_TYPES))
def test_dataless_events_are_skipped_and_move_the_position(code: int) -> None:
    fast = reader(FAST)
    event = read(fast, packet(code, b"\x00" * 12, True, log_pos=777))
    assert fast.log_pos == 777
    if code in eventtypes.BETWEEN_TRANSACTIONS:  # the assembler may move its position past these
        assert event == FastBoundary(code, 1_700_000_000, 777)
        assert read(fast, packet(code, b"\x00" * 12, True, log_pos=0)) is _SKIPPED  # an artificial one
    else:
        assert event is _SKIPPED


@pytest.mark.parametrize("code", [0, 1, 6, 17, 18, 20, 26, 40, 42, 172, 255])
def test_events_that_may_hold_data_stop_the_reader_with_their_position(code: int) -> None:
    with pytest.raises(eventtypes.UnsupportedEventError, match=rf"^binlog.000009:1200: binlog event type {code} "):
        read(reader(FAST), packet(code, b"\x00" * (300 - 23), True, log_pos=1500))


def test_an_unknown_event_flagged_ignorable_is_skipped_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    fast = reader(FAST)
    flagged = bytearray(packet(250, b"\x00" * 10, True, log_pos=900))
    flagged[18] = eventtypes.LOG_EVENT_IGNORABLE_F  # the low byte of the 2-byte flags
    assert read(fast, bytes(flagged)) is _SKIPPED
    assert read(fast, bytes(flagged)) is _SKIPPED
    assert [r.getMessage() for r in caplog.records if "type 250" in r.getMessage()] == [
        "binlog.000009:867: skipping binlog event type 250, unknown to binlake but flagged ignorable by the server "
        "(LOG_EVENT_IGNORABLE_F); logged for the first such event only"]


def test_compressed_rows_of_unselected_tables_are_skipped_before_inflating() -> None:
    not_zlib = rows_head(23) + bytes([0x81, 200]) + b"never inflated"
    skipping = reader(SKIP)
    assert read(skipping, packet(166, not_zlib, True, log_pos=640)) is _SKIPPED
    assert skipping.log_pos == 640
    unknown_table = bytearray(packet(166, not_zlib, True))
    unknown_table[20] ^= 0xFF  # a table id whose table map was filtered out
    assert read(reader(FAST), bytes(unknown_table)) is _SKIPPED
    with pytest.raises(CaptureDataError, match="does not inflate"):
        read(reader(FAST), packet(166, not_zlib, True))
