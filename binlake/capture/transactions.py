"""Assembling binlog events into committed transactions of change-log records.

:class:`TransactionAssembler` is fed the stream's events in order (through the dispatch table of
:mod:`binlake.capture.stream`) and holds:

* the open transaction: records of its row events so far, its GTID;
* ``pending``: committed transactions not yet durable in the change log. The sink is handed a
  :class:`PendingBatch` (:meth:`TransactionAssembler.pending_batch`), and only once it confirms the
  files *and* the checkpoint does :meth:`TransactionAssembler.release` drop those transactions
  (and delete their spill files). A failed write therefore leaves them pending: nothing is ever
  forgotten before it is durable;
* ``position``: the binlog position right after the last transaction whose commit it has seen
  (``pending`` included) — where a reconnect resumes. Only transaction boundaries ever become a
  position, so a resume never starts inside a transaction.

Records get ``gtid``, ``xid`` and ``commit_ts`` only at commit (XID event, ``COMMIT`` query, or the
DDL statement itself). An open transaction is discarded, never written, if the stream breaks or a
new transaction starts without its commit (a server crash can leave such a tail).

Memory is bounded whatever the transaction size: once the open transaction holds
``max_rows_in_memory`` records or ``max_bytes_in_memory`` bytes
(:func:`~binlake.changelog.approx_bytes`: the length of the encoded row images plus a small
overhead per record — counted as the records are produced, no extra pass), its events so far
go to a spill file (:class:`~binlake.capture.spill.SpillFolder`) and leave memory. The committed transaction refers
to its spilled parts (in order, before its in-memory events); discarding an open transaction
deletes its parts.

Statements binlake recognises but cannot capture exactly stop the capture with
:class:`~binlake.capture.records.CaptureDataError` (statement-format DML on a selected table,
row images that are not FULL). Known limits: XA transactions are captured at ``XA PREPARE`` (a
later ``XA ROLLBACK`` is logged as an error, not undone); a ``ROLLBACK`` event (non-transactional
changes inside a rolled-back transaction) discards the transaction's records with a warning.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from binlake.capture import ddl
from binlake.capture.gtids import GtidTracker
from binlake.capture.records import CaptureDataError, Layouts, event_changes, lsn_of
from binlake.capture.rowdecode import TableLayout
from binlake.capture.spill import SpillFolder, remove_part
from binlake.changelog import (
    OP_DDL,
    RECORD_OVERHEAD,
    CommittedTransaction,
    EventChanges,
    SpilledPart,
    approx_bytes,
)
from binlake.positions import BinlogPosition, epoch_base, lsn_text

log = logging.getLogger(__name__)

MARIADB_FL_STANDALONE = 0x01
_STARTS_TRANSACTION = re.compile(r"\bSTART\s+TRANSACTION\s*$", re.IGNORECASE)


class PendingBatch(NamedTuple):
    """What a flush writes: the pending transactions (in commit order), the position right after
    the last of them (later transactions without records included), their records and bytes."""

    transactions: tuple[CommittedTransaction, ...]
    position: BinlogPosition
    rows: int
    bytes: int


@dataclass
class _OpenTransaction:
    gtid: str | None
    explicit: bool = False  # a multi-statement group: ends with XID/COMMIT, not with its first statement
    events: list[EventChanges] = field(default_factory=list)
    rows: int = 0  # records in ``events``
    bytes: int = 0  # approx_bytes of ``events``
    spilled: list[SpilledPart] = field(default_factory=list)

    @property
    def spilled_rows(self) -> int:
        return sum(part.rows for part in self.spilled)

    def drop_spilled(self) -> None:
        for part in self.spilled:
            remove_part(part)
        self.spilled.clear()


class TransactionAssembler:
    """Turns the ordered event stream into :class:`CommittedTransaction` values (see module doc)."""

    def __init__(
        self,
        layouts: Layouts,
        start: BinlogPosition,
        on_schema_change: Callable[[], None] = lambda: None,
        records: Callable[[Any, TableLayout, str], EventChanges] = event_changes,
        spill: SpillFolder | None = None,
        max_rows_in_memory: int = 100_000,
        max_bytes_in_memory: int = 256 * 1024 * 1024,
    ) -> None:
        if max_rows_in_memory < 1 or max_bytes_in_memory < 1:
            raise ValueError("max_rows_in_memory and max_bytes_in_memory must be >= 1")
        self.layouts = layouts
        self.records = records
        self.spill = spill  # None: the open transaction is never spilled (held in memory whole)
        self.max_rows_in_memory = max_rows_in_memory
        self.max_bytes_in_memory = max_bytes_in_memory
        self.spilled_transactions = 0
        self.spill_files = 0
        self.file = start.file
        self.epoch = start.epoch  # every record's lsn carries it (binlake.positions)
        self._epoch_base = epoch_base(start.epoch)
        self.floor_lsn = start.lsn  # every record must order after this (the start, then the last record)
        self.position_key: tuple[str, int] = (start.file, start.pos)  # cheap form of ``position``
        self._position: BinlogPosition | None = start
        self.position_known = True  # False after a GTID start until the first commit is seen
        self.gtids = GtidTracker(start.gtid)
        self.on_schema_change = on_schema_change
        self.open: _OpenTransaction | None = None
        self.pending: list[CommittedTransaction] = []
        self.pending_rows = 0  # records of ``pending``, spilled ones included
        self.pending_bytes = 0  # approx_bytes of ``pending``'s in-memory events
        self.transactions_seen = 0
        self.last_event_ts = 0

    # ------------------------------------------------------------------ state helpers

    @property
    def position(self) -> BinlogPosition:
        """Right after the last transaction boundary seen, with the executed GTID set there."""
        if self._position is None:
            self._position = BinlogPosition.of(*self.position_key, self.gtids.text, self.epoch)
        return self._position

    def _move(self, file: str, pos: int) -> None:
        self.position_key = (file, pos)
        self._position = None

    @property
    def in_transaction(self) -> bool:
        return self.open is not None

    def discard_open(self, reason: str) -> None:
        """Drop the open transaction (its commit was never seen), spill files included."""
        if self.open is not None and (self.open.events or self.open.spilled):
            log.warning("discarding an uncommitted transaction (gtid %s, %d records, %d spill files): %s",
                        self.open.gtid, self.open.rows + self.open.spilled_rows, len(self.open.spilled), reason)
            self.open.drop_spilled()
        self.open = None

    def pending_batch(self) -> PendingBatch:
        """The committed transactions not yet durable and the position after them; they stay
        pending until :meth:`release`."""
        return PendingBatch(tuple(self.pending), self.position, self.pending_rows, self.pending_bytes)

    def release(self, batch: PendingBatch) -> None:
        """``batch`` is durable (files and checkpoint): drop it from ``pending`` and delete its
        spill files. Call only after the sink confirmed the whole batch."""
        count = len(batch.transactions)
        if tuple(self.pending[:count]) != batch.transactions:
            raise RuntimeError("release of a batch that is not the oldest pending one")
        del self.pending[:count]
        self.pending_rows -= batch.rows
        self.pending_bytes -= batch.bytes
        for txn in batch.transactions:
            for part in txn.spilled:
                remove_part(part)

    def _begin(self, gtid: str | None, explicit: bool) -> None:
        if self.open is not None:
            self.discard_open("a new transaction started before its commit")
        self.open = _OpenTransaction(gtid, explicit)

    def _commit(self, log_pos: int, timestamp: int, xid: int | None) -> None:
        txn, self.open = self.open, None
        if txn is not None and (txn.events or txn.spilled):
            self._check_order(txn)  # before the position moves past it: a refusal never skips it
        self.transactions_seen += 1
        if txn is not None and txn.gtid:
            self.gtids.add(txn.gtid)
        self._move(self.file, log_pos)
        self.position_known = True
        if txn is not None and (txn.events or txn.spilled):
            committed = CommittedTransaction(txn.gtid, xid, timestamp * 1_000_000, tuple(txn.events),
                                             tuple(txn.spilled))
            self.pending.append(committed)
            self.pending_rows += txn.rows + txn.spilled_rows  # = committed.row_count, without a pass
            self.pending_bytes += txn.bytes
            if committed.spilled:
                log.info("transaction %s committed: %d records, %d of them in %d spill files",
                         txn.gtid, committed.row_count, txn.spilled_rows, len(txn.spilled))

    def _check_order(self, txn: _OpenTransaction) -> None:
        """The order invariant: a transaction's records order after the start (the checkpoint) and
        after every record before them; else the binlog went backwards and nothing is written."""
        first = txn.spilled[0].first_lsn if txn.spilled else txn.events[0].lsn
        if first <= self.floor_lsn:
            raise CaptureDataError(
                f"{self.file}: transaction {txn.gtid} would be written at lsn {lsn_text(first)}, at or before "
                f"{lsn_text(self.floor_lsn)} (the checkpoint or the previous record): the binlog position went "
                "backwards within one binlog history — binlake refuses to write it. Restart the capture: it "
                "checks the source's history again (failover, RESET MASTER) and says how to recover")
        self.floor_lsn = txn.events[-1].lsn if txn.events else txn.spilled[-1].last_lsn

    def _spill_open(self) -> None:
        """Move the open transaction's events to a new spill file (see module doc)."""
        txn, spill = self.open, self.spill
        assert txn is not None and spill is not None
        txn.spilled.append(spill.write(txn.events))
        txn.events, txn.rows, txn.bytes = [], 0, 0
        self.spill_files += 1
        count = len(txn.spilled)
        if count == 1:
            self.spilled_transactions += 1
        if count & (count - 1) == 0:  # 1, 2, 4, 8 … spill files: a few lines even for a huge transaction
            log.info("transaction %s holds more than %d records or %d bytes (capture.max_transaction_rows_"
                     "in_memory, capture.max_transaction_bytes_in_memory): %d records so far, %d spill files "
                     "in %s", txn.gtid, self.max_rows_in_memory, self.max_bytes_in_memory, txn.spilled_rows,
                     count, spill.path)

    # ------------------------------------------------------------------ event handlers

    def on_rotate(self, next_file: str, position: int) -> None:
        """A RotateEvent (real or the server's fake one when a dump starts)."""
        self.file = next_file
        if self.open is None and self.position_known:
            self._move(next_file, max(int(position), 4))

    def on_boundary(self, log_pos: int) -> None:
        """A dataless event that only ever stands between transactions (binlog checkpoint, GTID
        list, …: :data:`binlake.capture.eventtypes.BETWEEN_TRANSACTIONS`) ends at ``log_pos``:
        outside a transaction the position moves past it, so the checkpoint can reach the end of
        the binlog. Never backwards (the server's artificial events carry ``log_pos`` 0)."""
        if self.open is None and self.position_known and log_pos > self.position_key[1]:
            self._move(self.file, log_pos)

    def on_format_description(self) -> None:
        """A new binlog file starts (or a dump starts): table ids may be reused from here on."""
        self.on_schema_change()

    def on_gtid(self, gtid: str, mariadb_flags: int | None = None) -> None:
        """A GTID event: MariaDB's (``mariadb_flags`` given; an implicit BEGIN unless FL_STANDALONE)
        or MySQL's (a ``BEGIN`` query follows for a multi-statement transaction)."""
        explicit = mariadb_flags is not None and not mariadb_flags & MARIADB_FL_STANDALONE
        self._begin(gtid, explicit)

    def on_xid(self, xid: int, log_pos: int, timestamp: int) -> None:
        self._commit(log_pos, timestamp, xid)

    def on_rows(self, event: Any) -> None:
        """Write/Update/DeleteRows: records of selected tables join the open transaction."""
        layout = self.layouts.layout_for(event)
        if layout is None:
            return
        if self.open is None:  # no GTID/BEGIN seen (should not happen at a transaction boundary)
            self.open = _OpenTransaction(None, explicit=True)
        changes = self.records(event, layout, self.file)
        if self._epoch_base:
            changes.lsn |= self._epoch_base
        txn = self.open
        txn.events.append(changes)
        txn.rows += changes.row_count
        txn.bytes += approx_bytes(changes)
        if (txn.rows >= self.max_rows_in_memory or txn.bytes >= self.max_bytes_in_memory) and self.spill is not None:
            self._spill_open()

    def on_query(self, query: str, schema: str, log_pos: int, timestamp: int) -> None:
        """A Query event: transaction control, DDL, or statement-format DML."""
        statement = ddl.classify(query, schema)
        if statement.kind == ddl.CONTROL:
            self._on_control(statement.verb, query, log_pos, timestamp)
        elif statement.kind == ddl.DML:
            self._on_statement_dml(statement, log_pos)
        elif statement.kind == ddl.OTHER:
            if self.open is not None and not self.open.explicit:
                self._commit(log_pos, timestamp, None)  # a standalone statement (GRANT, …) in its own GTID
        else:
            self._on_ddl(statement, query, log_pos, timestamp)

    def _on_control(self, verb: str, query: str, log_pos: int, timestamp: int) -> None:
        if verb in ("BEGIN", "START TRANSACTION"):
            if self.open is None:
                self.open = _OpenTransaction(None, explicit=True)
            self.open.explicit = True
        elif verb == "COMMIT":
            self._commit(log_pos, timestamp, None)
        elif verb == "ROLLBACK":
            if self.open is not None and (self.open.events or self.open.spilled):
                log.warning("%s:%d: the binlog records a ROLLBACK of a transaction with non-transactional "
                            "changes; its %d records are discarded", self.file, log_pos,
                            self.open.rows + self.open.spilled_rows)
                self.open.events.clear()
                self.open.rows = self.open.bytes = 0
                self.open.drop_spilled()
            self._commit(log_pos, timestamp, None)
        elif verb == "XA":
            self._on_xa(query.strip().upper(), log_pos, timestamp)

    def _on_xa(self, query: str, log_pos: int, timestamp: int) -> None:
        if query.startswith("XA PREPARE"):
            log.warning("XA transaction captured at XA PREPARE (%s:%d)", self.file, log_pos)
            self._commit(log_pos, timestamp, None)
        elif query.startswith("XA ROLLBACK"):
            log.error("XA ROLLBACK at %s:%d of a transaction already captured at XA PREPARE: its changes "
                      "stay in the change log", self.file, log_pos)
            self._commit(log_pos, timestamp, None)
        elif query.startswith("XA COMMIT"):
            self._commit(log_pos, timestamp, None)

    def _on_statement_dml(self, statement: ddl.Statement, log_pos: int) -> None:
        table = statement.tables[0]
        if self.layouts.target(table.schema, table.table) is not None:
            raise CaptureDataError(
                f"{self.file}:{log_pos}: {statement.verb} on selected table {table.schema}.{table.table} "
                "was binlogged as a statement (a session set binlog_format=STATEMENT/MIXED); its rows "
                "are not in the binlog. Make every writer use ROW format, re-run the full load of this "
                "table and restart the capture after this position"
            )

    def _on_ddl(self, statement: ddl.Statement, query: str, log_pos: int, timestamp: int) -> None:
        self.on_schema_change()
        self.layouts.clear()
        if self.open is None:
            self.open = _OpenTransaction(None)
        lsn = lsn_of(self.file, log_pos) | self._epoch_base
        for index, (source, target) in enumerate(self._ddl_tables(statement)):
            self.open.events.append(EventChanges(
                lsn=lsn, binlog_file=self.file, binlog_pos=log_pos, op=OP_DDL,
                source_schema=source.schema, source_table=source.table,
                schema=target.schema, table=target.table, columns="[]",
                before=None, after=None, ddl=query, ddl_kind=statement.kind, first_row_idx=index,
            ))
            self.open.rows += 1
            self.open.bytes += RECORD_OVERHEAD + len(query)
        if not self.open.explicit and not _STARTS_TRANSACTION.search(query):
            self._commit(log_pos, timestamp, None)
        # else a DDL inside a transaction: CREATE … SELECT (MariaDB: a GTID group without FL_STANDALONE;
        # MySQL 8: "CREATE TABLE … START TRANSACTION") — its rows follow, and its XID commits them together

    def _ddl_tables(self, statement: ddl.Statement) -> list[tuple[ddl.TableRef, Any]]:
        """(source table, target) for each lake table the DDL touches, in statement order, each once
        (by its first selected name). A rename gives a record to every lake table of its pairs — the
        old name's (renamed away) and the new name's (another table renamed onto it: an online
        schema change's swap) — so the merge sees the statement with each lake table it concerns
        (binlake.merge.renames); ``RENAME TABLE Foo TO foo`` onto the same lake table stays one
        record (Foo's), so foo's records all follow Foo's (binlake.catalog.TableGuard)."""
        out = []
        named = (self.layouts.selected_in_schema(statement.database) if statement.verb == "DATABASE"
                 else [self.layouts.resolve(t) for t in statement.tables])  # lower_case_table_names
        lake_tables: set[tuple[str, str]] = set()
        for table in named:
            target = self.layouts.target(table.schema, table.table)
            if target is not None and (target.schema, target.table) not in lake_tables:
                lake_tables.add((target.schema, target.table))
                out.append((table, target))
        return out
