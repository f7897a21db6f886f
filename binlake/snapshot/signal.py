"""The signal table: an exact low watermark for the watermark method, without a settle wait.

A chunk read by the watermark method (:mod:`binlake.snapshot.watermark`) is labelled with the binlog
end ``W`` read before its snapshot; the label is exact when every transaction at or before ``W`` is
visible to that snapshot (condition (A) of docs/full-load.md). MySQL writes a transaction to the
binlog *before* its storage-engine commit, so reading ``W`` alone does not give (A). With
``full_load.signal_table`` set, every low watermark is taken as::

    1. W = the binlog end (SHOW MASTER STATUS / SHOW BINARY LOG STATUS)
    2. commit a signal: a one-row upsert of a fresh token into the signal table (autocommit)
    3. only then the chunk's snapshot starts (START TRANSACTION WITH CONSISTENT SNAPSHOT)

and the chunk is labelled ``W``. Why that is exact: the signal transaction ``G`` is written to the
binlog after ``W`` was read, so every transaction ``T`` at or before ``W`` precedes ``G`` in binlog
order. With ``binlog_order_commits = ON`` (MySQL's default; MariaDB always commits in binlog order,
its ``commit_ordered`` step) transactions are committed in the storage engine in binlog order, and
``G``'s COMMIT returns only after ``G``'s own engine commit — so after ``T``'s. A snapshot started
after that return sees ``T``. Transactions after ``W`` may or may not be in the snapshot: their
change-log records have lsns above the label and the merge's per-row guard applies them on top.
The signal is only a barrier: its own position is not needed, nor a running capture, nor GTIDs.

What would break the argument is refused by :func:`prepare` (before anything is written):
``binlog_order_commits = OFF`` (or a MySQL server that does not show it), a session with
``sql_log_bin = 0`` or a ``binlog-do-db`` / ``binlog-ignore-db`` filter that keeps the signal out
of the binlog (a transaction without binlog events skips the ordered commit), and a signal table
that is not transactional. The table's rows never reach the lake: the configuration adds an
``exclude`` selection rule for it to ``table_mappings`` (:func:`exclusion_rule`).

Pure except :func:`prepare`, :func:`binlog_filters` and :meth:`Signal.commit`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pymysql

from binlake.positions import BinlogPosition
from binlake.source import Connection, SourceError, global_variables, is_mariadb

log = logging.getLogger(__name__)

EXCLUSION_RULE_NAME = "binlake-signal-table"  # the rule-name of the exclude rule the config adds
TRANSACTIONAL_ENGINES = frozenset({"innodb", "xtradb", "rocksdb", "tokudb"})
ER_DBACCESS_DENIED = 1044
ER_BAD_DB = 1049
ER_TABLEACCESS_DENIED = 1142
ER_BAD_FIELD = 1054
ER_READ_ONLY = (1290, 1836)  # --read-only / super_read_only; a read-only transaction or replica


class SignalTableError(SourceError):
    """The signal table cannot be used (missing, not writable, or a setting defeats it); the message
    names the fix."""


@dataclass(frozen=True)
class SignalTable:
    """``full_load.signal_table`` parsed: the source table the watermark method commits signals into."""

    schema: str
    table: str

    @classmethod
    def parse(cls, text: str) -> SignalTable | None:
        """``"schema.table"`` → the table; ``""`` → ``None`` (no signal: the settle wait).
        Raises :class:`ValueError` naming the expected form."""
        text = text.strip()
        if not text:
            return None
        schema, dot, table = text.partition(".")
        if not dot or not schema or not table or "." in table or "`" in text or len(schema) > 64 or len(table) > 64:
            raise ValueError(f"{text!r} is not <schema>.<table> (one dot, no backquotes, names of at most 64 "
                             "characters), e.g. binlake.binlake_signal")
        return cls(schema, table)

    @property
    def qualified(self) -> str:
        return f"`{self.schema}`.`{self.table}`"

    def create_sql(self) -> str:
        """The DDL of the table (one row per signaller, updated in place)."""
        return (f"CREATE TABLE IF NOT EXISTS {self.qualified} ("
                "signaller VARCHAR(64) NOT NULL PRIMARY KEY, token CHAR(32) NOT NULL, "
                "signalled_at TIMESTAMP(6) NOT NULL) ENGINE=InnoDB")

    def upsert_sql(self) -> str:
        """The signal: parameters ``(signaller, token, token)``; a fresh token always changes the row,
        so the transaction always has a row event in the binlog."""
        return (f"INSERT INTO {self.qualified} (signaller, token, signalled_at) VALUES (%s, %s, UTC_TIMESTAMP(6)) "
                "ON DUPLICATE KEY UPDATE token = %s, signalled_at = UTC_TIMESTAMP(6)")

    def setup_help(self, user: str) -> str:
        """What a DBA runs so that ``user`` can signal."""
        return (f"CREATE DATABASE IF NOT EXISTS `{self.schema}`; {self.create_sql()}; "
                f"GRANT SELECT, INSERT, UPDATE ON {self.qualified} TO {user}")


def literal_locator(name: str) -> str:
    """``name`` as a DMS locator that matches exactly it (``_``, ``%`` and ``[`` are wildcard syntax)."""
    return "".join(f"[{c}]" if c in "_%[" else c for c in name)


def exclusion_rule(table: SignalTable, rule_id: int) -> dict[str, Any]:
    """The DMS ``exclude`` selection rule that keeps the signal table out of the lake."""
    return {"rule-type": "selection", "rule-id": str(rule_id), "rule-name": EXCLUSION_RULE_NAME,
            "object-locator": {"schema-name": literal_locator(table.schema),
                               "table-name": literal_locator(table.table)},
            "rule-action": "exclude"}


def with_exclusion(mappings: Mapping[str, Any], table: SignalTable) -> dict[str, Any]:
    """``mappings`` (``{"rules": [...]}``) with :func:`exclusion_rule` added once, under a rule-id
    above every numeric one (an exclude rule's id does not change what it excludes)."""
    rules = mappings.get("rules")
    if not isinstance(rules, list):
        return dict(mappings)
    if any(isinstance(r, Mapping) and r.get("rule-name") == EXCLUSION_RULE_NAME for r in rules):
        return dict(mappings)
    ids = [int(r["rule-id"]) for r in rules if isinstance(r, Mapping) and str(r.get("rule-id", "")).isdigit()]
    return {**mappings, "rules": [*rules, exclusion_rule(table, max(ids, default=0) + 1)]}


def filtered_out(schema: str, do_db: str, ignore_db: str) -> bool:
    """Does a ``binlog-do-db`` / ``binlog-ignore-db`` filter (comma-separated lists, as SHOW MASTER
    STATUS shows them) keep row changes of ``schema`` out of the binlog?"""
    do = {d.strip() for d in do_db.split(",") if d.strip()}
    ignore = {d.strip() for d in ignore_db.split(",") if d.strip()}
    return (bool(do) and schema not in do) or schema in ignore


def settings_problems(table: SignalTable, mariadb: bool, order_commits: str | None, sql_log_bin: str | None,
                      do_db: str, ignore_db: str) -> list[str]:
    """What makes a signal in ``table`` no barrier on this server, each with its fix (pure)."""
    problems = []
    if mariadb:
        pass  # no binlog_order_commits: MariaDB's commit_ordered step always runs in binlog order
    elif order_commits is None:
        problems.append("the server does not show binlog_order_commits, so binlake cannot check that transactions "
                        "commit in binlog order")
    elif order_commits.upper() not in ("ON", "1"):
        problems.append(f"binlog_order_commits is {order_commits}: transactions may commit in another order than "
                        "the binlog's; SET GLOBAL binlog_order_commits = ON (on RDS/Aurora: the parameter group)")
    if sql_log_bin is not None and sql_log_bin.upper() not in ("ON", "1"):
        problems.append("sql_log_bin is off for binlake's sessions: the signal would not be written to the binlog")
    if filtered_out(table.schema, do_db, ignore_db):
        problems.append(f"the binlog filter (binlog-do-db={do_db!r}, binlog-ignore-db={ignore_db!r}) keeps schema "
                        f"{table.schema!r} out of the binlog: put the signal table in a schema the binlog logs")
    return problems


@dataclass(frozen=True)
class Signal:
    """A checked signal table and who signals (``<pipeline>:<purpose>``, its row's key)."""

    table: SignalTable
    signaller: str

    def commit(self, conn: Connection) -> str:
        """Commit one signal on ``conn``; returns its fresh token after the COMMIT has returned."""
        token = uuid.uuid4().hex
        with conn.cursor() as cur:
            cur.execute(self.table.upsert_sql(), (self.signaller, token, token))
        conn.commit()
        return token

    def select_sql(self) -> str:
        """The token of this signaller's row: parameter ``(signaller,)``."""
        return f"SELECT token FROM {self.table.qualified} WHERE signaller = %s"


def low_watermark_before(read_end: Callable[[], BinlogPosition], commit_signal: Callable[[], object]) -> BinlogPosition:
    """The exact low watermark: the binlog end read *before* the signal is committed (the order is the
    argument of the module docstring: a signal committed first would prove nothing about
    transactions written to the binlog between it and the read)."""
    low = read_end()
    commit_signal()
    return low


def binlog_filters(conn: Connection) -> tuple[str, str]:
    """``(Binlog_Do_DB, Binlog_Ignore_DB)`` of SHOW MASTER STATUS (SHOW BINARY LOG STATUS on MySQL >= 8.4)."""
    with conn.cursor() as cur:
        try:
            cur.execute("SHOW MASTER STATUS")
        except pymysql.err.ProgrammingError:
            cur.execute("SHOW BINARY LOG STATUS")
        row = cur.fetchone()
        names = [str(d[0]).lower() for d in cur.description or ()]
    if row is None:
        return "", ""
    values = dict(zip(names, row, strict=False))
    return str(values.get("binlog_do_db") or ""), str(values.get("binlog_ignore_db") or "")


def prepare(conn: Connection, table: SignalTable, signaller: str) -> Signal:
    """Check the server and the table, create the table when it is missing (if the user may), and commit
    one signal as a trial. Raises :class:`SignalTableError` naming the problem and the fix."""
    with conn.cursor() as cur:
        cur.execute("SELECT CURRENT_USER(), @@SESSION.sql_log_bin")
        user, sql_log_bin = cur.fetchone() or ("binlake", None)
    mariadb = is_mariadb(conn)
    order = None if mariadb else global_variables(conn, ["binlog_order_commits"])["binlog_order_commits"]
    problems = settings_problems(table, mariadb, order, None if sql_log_bin is None else str(sql_log_bin),
                                 *binlog_filters(conn))
    if problems:
        raise SignalTableError(f"full_load.signal_table {table.schema}.{table.table} cannot give exact low "
                               f"watermarks: {'; '.join(problems)}. Fix that, or set full_load.signal_table: '' to "
                               "fall back to the settle wait (a timing assumption, docs/full-load.md)")
    _ensure_table(conn, table, str(user))
    signal = Signal(table, signaller[:64])
    try:
        signal.commit(conn)
    except pymysql.err.MySQLError as exc:
        code = exc.args[0] if exc.args else None
        if code in (ER_TABLEACCESS_DENIED, ER_DBACCESS_DENIED):
            fix = f"Run GRANT SELECT, INSERT, UPDATE ON {table.qualified} TO {user}"
        elif code in ER_READ_ONLY:
            fix = ("The server is read-only: the signal must be committed on the writable primary — point source (or "
                   "full_load.source) at it, or set full_load.signal_table: '' (the settle wait)")
        elif code == ER_BAD_FIELD:
            fix = f"The table has another layout than binlake's: DROP TABLE {table.qualified} (binlake creates it)"
        else:
            fix = f"Run {table.setup_help(str(user))}"
        raise SignalTableError(f"cannot write the signal table {table.qualified} (full_load.signal_table): "
                               f"{exc.args[-1] if exc.args else exc}. {fix}") from None
    log.info("exact low watermarks: signals are committed into %s (binlog_order_commits %s)", table.qualified,
             "n/a (MariaDB commits in binlog order)" if mariadb else order)
    return signal


def _ensure_table(conn: Connection, table: SignalTable, user: str) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                    (table.schema, table.table))
        row = cur.fetchone()
        if row is None:
            try:
                cur.execute(table.create_sql())
            except pymysql.err.MySQLError as exc:
                reason = exc.args[-1] if exc.args else exc
                raise SignalTableError(f"the signal table {table.qualified} (full_load.signal_table) does not exist "
                                       f"(or the user cannot see it) and binlake cannot create it ({reason}): "
                                       f"a DBA runs {table.setup_help(user)}") from None
            log.info("created the signal table %s", table.qualified)
        elif str(row[0] or "").lower() not in TRANSACTIONAL_ENGINES:
            raise SignalTableError(f"the signal table {table.qualified} uses the {row[0]} engine, which does not take "
                                   f"part in the binlog's ordered commit: ALTER TABLE {table.qualified} ENGINE=InnoDB")
