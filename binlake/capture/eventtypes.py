"""Every binlog event type the capture can meet, and what it does with it (pure).

The capture must never drop an event that could carry a change of a selected table. Each type code
is therefore in exactly one of three groups; a code in none of them (a type newer than binlake)
stops the capture like the STOP group:

* ``DECODE`` — read by the capture (the fast reader or pymysqlreplication's own classes), or, for
  MariaDB's compressed events, inflated into the equivalent uncompressed event first
  (:mod:`binlake.capture.compressed`);
* ``IGNORE`` — carries no row data and no transaction boundary the capture needs; the reason for
  each is in :data:`CATALOGUE`;
* ``STOP`` — may carry data binlake cannot decode exactly: the capture stops with
  :class:`UnsupportedEventError` naming the type code, its name, the binlog file:position and the
  fix. The checkpoint stays before the transaction holding the event (the stop discards the open
  transaction), so a restart after the fix reads it again.

These events are not attributed to a table before they are decoded, so a STOP event stops the
capture whatever table it belongs to.

An unknown type whose header has ``LOG_EVENT_IGNORABLE_F`` (0x80) set is the exception: the
server marks such events as safe for any replica to skip (MySQL's replication contract), so the
capture skips it too and logs a warning the first time it meets each such type.
"""

from __future__ import annotations

from dataclasses import dataclass

from binlake.capture.records import CaptureDataError

DECODE, IGNORE, STOP = "decode", "ignore", "stop"
LOG_EVENT_IGNORABLE_F = 0x80

_COMPRESSION_FIX = (
    "SET GLOBAL binlog_transaction_compression=OFF (and in my.cnf); sessions can also set it, so check "
    "that no application runs SET SESSION binlog_transaction_compression=ON. binlake does not decode "
    "compressed MySQL transactions yet"
)
_STATEMENT_FIX = ("the source wrote it in statement format: make sure no session sets binlog_format to "
                  "STATEMENT or MIXED (SET GLOBAL binlog_format=ROW), then reload the affected tables")


@dataclass(frozen=True)
class EventKind:
    """``name`` as the servers call the type; ``action`` one of DECODE/IGNORE/STOP; ``why`` the reason."""

    name: str
    action: str
    why: str = ""


CATALOGUE: dict[int, EventKind] = {
    0: EventKind("UNKNOWN_EVENT", STOP, "the server wrote an event of no type"),
    1: EventKind("START_EVENT_V3", STOP, "a binlog of MySQL 4 or older"),
    2: EventKind("QUERY_EVENT", DECODE),
    3: EventKind("STOP_EVENT", IGNORE, "the server shut down; the next binlog file follows"),
    4: EventKind("ROTATE_EVENT", DECODE),
    5: EventKind("INTVAR_EVENT", IGNORE, "context (auto-increment / LAST_INSERT_ID) of the statement-format "
                 "QUERY_EVENT that follows; that query is what the capture reads"),
    6: EventKind("LOAD_EVENT", STOP, f"a statement-format LOAD DATA: {_STATEMENT_FIX}"),
    7: EventKind("SLAVE_EVENT", STOP, "never written by a supported server"),
    8: EventKind("CREATE_FILE_EVENT", STOP, f"a statement-format LOAD DATA: {_STATEMENT_FIX}"),
    9: EventKind("APPEND_BLOCK_EVENT", STOP, f"a statement-format LOAD DATA: {_STATEMENT_FIX}"),
    10: EventKind("EXEC_LOAD_EVENT", STOP, f"a statement-format LOAD DATA: {_STATEMENT_FIX}"),
    11: EventKind("DELETE_FILE_EVENT", STOP, f"a statement-format LOAD DATA: {_STATEMENT_FIX}"),
    12: EventKind("NEW_LOAD_EVENT", STOP, f"a statement-format LOAD DATA: {_STATEMENT_FIX}"),
    13: EventKind("RAND_EVENT", IGNORE, "RAND() seeds of the statement-format QUERY_EVENT that follows"),
    14: EventKind("USER_VAR_EVENT", IGNORE, "user variables of the statement-format QUERY_EVENT that follows"),
    15: EventKind("FORMAT_DESCRIPTION_EVENT", DECODE),
    16: EventKind("XID_EVENT", DECODE),
    17: EventKind("BEGIN_LOAD_QUERY_EVENT", STOP, f"a statement-format LOAD DATA: {_STATEMENT_FIX}"),
    18: EventKind("EXECUTE_LOAD_QUERY_EVENT", STOP, f"a statement-format LOAD DATA: {_STATEMENT_FIX}"),
    19: EventKind("TABLE_MAP_EVENT", DECODE),
    20: EventKind("PRE_GA_WRITE_ROWS_EVENT", STOP, "a rows event of MySQL 5.1.5-5.1.17"),
    21: EventKind("PRE_GA_UPDATE_ROWS_EVENT", STOP, "a rows event of MySQL 5.1.5-5.1.17"),
    22: EventKind("PRE_GA_DELETE_ROWS_EVENT", STOP, "a rows event of MySQL 5.1.5-5.1.17"),
    23: EventKind("WRITE_ROWS_EVENT_V1", DECODE),
    24: EventKind("UPDATE_ROWS_EVENT_V1", DECODE),
    25: EventKind("DELETE_ROWS_EVENT_V1", DECODE),
    26: EventKind("INCIDENT_EVENT", STOP, "the source recorded an incident (e.g. LOST_EVENTS: changes may be "
                  "missing from its binlog); check the source's error log, then reload the affected tables"),
    27: EventKind("HEARTBEAT_LOG_EVENT", DECODE),
    28: EventKind("IGNORABLE_LOG_EVENT", IGNORE, "defined as ignorable by every reader"),
    29: EventKind("ROWS_QUERY_LOG_EVENT", IGNORE, "the SQL text of the rows events that follow "
                  "(binlog_rows_query_log_events), informational"),
    30: EventKind("WRITE_ROWS_EVENT", DECODE),
    31: EventKind("UPDATE_ROWS_EVENT", DECODE),
    32: EventKind("DELETE_ROWS_EVENT", DECODE),
    33: EventKind("GTID_LOG_EVENT", DECODE),
    34: EventKind("ANONYMOUS_GTID_LOG_EVENT", IGNORE, "MySQL's start of a transaction without a GTID; its BEGIN, "
                  "rows and XID follow as usual"),
    35: EventKind("PREVIOUS_GTIDS_LOG_EVENT", IGNORE, "the GTID set of earlier files, at the start of a file"),
    36: EventKind("TRANSACTION_CONTEXT_EVENT", IGNORE, "group replication certification data, no rows"),
    37: EventKind("VIEW_CHANGE_EVENT", IGNORE, "a group replication membership change, no rows"),
    38: EventKind("XA_PREPARE_LOG_EVENT", DECODE),
    39: EventKind("PARTIAL_UPDATE_ROWS_EVENT", DECODE),  # refused for selected tables by the dispatcher
    40: EventKind("TRANSACTION_PAYLOAD_EVENT", STOP, f"a zstd-compressed MySQL transaction: {_COMPRESSION_FIX}"),
    41: EventKind("HEARTBEAT_LOG_EVENT_V2", IGNORE, "MySQL's keep-alive for replicas that ask for it "
                  "(binlake does not), no data"),
    42: EventKind("GTID_TAGGED_LOG_EVENT", STOP, "a MySQL 8.3+ tagged GTID, which binlake cannot read yet: "
                  "stop using tagged GTIDs (SET gtid_next with a tag) on the source"),
    160: EventKind("ANNOTATE_ROWS_EVENT", IGNORE, "MariaDB's SQL text of the rows events that follow "
                   "(binlog_annotate_row_events), informational"),
    161: EventKind("BINLOG_CHECKPOINT_EVENT", IGNORE, "MariaDB's crash-recovery marker, no data"),
    162: EventKind("GTID_EVENT", DECODE),
    163: EventKind("GTID_LIST_EVENT", IGNORE, "MariaDB's GTID state at the start of a file, no data"),
    164: EventKind("START_ENCRYPTION_EVENT", IGNORE, "marks an encrypted binlog file; the server decrypts "
                   "events before sending them to a replica"),
    165: EventKind("QUERY_COMPRESSED_EVENT", DECODE),
    166: EventKind("WRITE_ROWS_COMPRESSED_EVENT_V1", DECODE),
    167: EventKind("UPDATE_ROWS_COMPRESSED_EVENT_V1", DECODE),
    168: EventKind("DELETE_ROWS_COMPRESSED_EVENT_V1", DECODE),
    169: EventKind("WRITE_ROWS_COMPRESSED_EVENT", DECODE),
    170: EventKind("UPDATE_ROWS_COMPRESSED_EVENT", DECODE),
    171: EventKind("DELETE_ROWS_COMPRESSED_EVENT", DECODE),
}

IGNORED_TYPES = frozenset(code for code, kind in CATALOGUE.items() if kind.action == IGNORE)
# ignored types that never stand inside a transaction: the capture's position may move past them
# (STOP, PREVIOUS_GTIDS, BINLOG_CHECKPOINT, GTID_LIST, START_ENCRYPTION)
BETWEEN_TRANSACTIONS = frozenset({3, 35, 161, 163, 164})
DECODED_TYPES = frozenset(code for code, kind in CATALOGUE.items() if kind.action == DECODE)


class UnsupportedEventError(CaptureDataError):
    """The binlog holds an event the capture cannot decode exactly (see module docstring)."""


def kind_of(event_type: int) -> EventKind:
    """The catalogue entry of ``event_type``; an unknown code is a STOP of its own."""
    return CATALOGUE.get(event_type) or EventKind(
        f"unknown event type {event_type}", STOP,
        "binlake does not know this event type (a newer server version?): it may hold row changes")


def unsupported_event(event_type: int, file: str | None, start: int, end: int) -> UnsupportedEventError:
    """The error that stops the capture at an event of ``event_type`` spanning ``[start, end)`` in ``file``."""
    kind = kind_of(event_type)
    return UnsupportedEventError(
        f"{file or '?'}:{start}: binlog event type {event_type} ({kind.name}, ends at {end}) cannot be "
        f"captured: {kind.why}. The capture stopped before this transaction (the checkpoint is before it, "
        "nothing after it was written), so a restart reads it again; to get past it, reload the tables it may "
        "have changed (a new full load) and start the capture from that load's snapshot position"
    )
