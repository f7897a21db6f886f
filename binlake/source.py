"""Talking to the source server: connections, pre-flight checks, binlog coordinates.

Used by the capture and the full load. Every check raises a :class:`SourceError` subclass whose
message names the exact setting or grant and how to fix it. The password comes from
``SourceConfig.password()`` and never appears in a message or a log line (pymysql's own error
messages do not contain it either).

Example::

    conn = connect(config.source)
    check_binlog_settings(conn)
    check_grants(conn, need_replication=True)
    start = master_position(conn)        # BinlogPosition(file, pos, gtid=@@gtid_binlog_pos)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

import pymysql

from binlake import tls
from binlake.config import SourceConfig
from binlake.positions import BinlogPosition

Connection = pymysql.connections.Connection  # the connection class (generic in the stubs)
log = logging.getLogger(__name__)

ER_ACCESS_DENIED = 1045
ER_SPECIFIC_ACCESS_DENIED = 1227
ER_MASTER_FATAL_READING_BINLOG = 1236
CLIENT_CONNECT_ERRORS = (2002, 2003, 2005, 2006, 2013)


class SourceError(RuntimeError):
    """A source problem that stops binlake; the message says what to change."""


class SourceUnreachableError(SourceError):
    """The server cannot be reached or refuses the login."""


class SourceTlsError(SourceUnreachableError):
    """The TLS settings and the server disagree: no TLS offered, an untrusted or misnamed certificate."""


class SourceSettingsError(SourceError):
    """A server setting (binlog format, row image, …) that binlake cannot work with."""


class SourceGrantsError(SourceError):
    """The binlake user lacks a privilege."""


class BinlogPurgedError(SourceError):
    """The binlog needed to continue is gone from the server: only a new full load can recover."""


def connection_kwargs(source: SourceConfig) -> dict[str, Any]:
    """pymysql keyword arguments for ``source`` (contains the password: never log this dict)."""
    return {
        "host": source.host,
        "port": source.port,
        "user": source.user,
        "password": source.password(),
        "connect_timeout": source.connect_timeout_s,
        "read_timeout": source.read_timeout_s,
        "write_timeout": source.read_timeout_s,
        "charset": "utf8mb4",
        "autocommit": True,
        **tls.pymysql_settings(source.tls),
    }


def describe(source: SourceConfig) -> str:
    """``user@host:port`` — what messages name (never the password)."""
    return f"{source.user}@{source.host}:{source.port}"


def connect(source: SourceConfig, database: str | None = None, **extra: Any) -> Connection:
    """An autocommit utf8mb4 connection; :class:`SourceUnreachableError` when that fails."""
    kwargs = connection_kwargs(source)
    kwargs.update(extra)
    if database is not None:
        kwargs["database"] = database
    tls.warn_unverified(source.tls, source.host)
    try:
        return pymysql.connect(**kwargs)
    except pymysql.err.OperationalError as exc:
        code = exc.args[0] if exc.args else None
        text = exc.args[1] if len(exc.args) > 1 else str(exc)
        tls_hint = tls.failure_hint(source.tls, source.host, str(text))
        if tls_hint is not None or isinstance(exc, tls.PublicKeyRetrievalRefused):
            raise SourceTlsError(f"cannot connect to source {describe(source)}: {tls_hint or text}") from None
        if code == ER_ACCESS_DENIED:
            hint = "check source.user and the password in source.password_env / source.password_file"
            if source.tls.mode is tls.TlsMode.DISABLED:
                hint += ("; source.tls.mode is disabled, and a server that accepts this user only over TLS "
                         "(require_secure_transport, REQUIRE SSL) refuses it so: set source.tls.mode: verify-identity")
        else:
            hint = "check source.host / source.port and that the server is running"
        raise SourceUnreachableError(f"cannot connect to source {describe(source)}: {text} ({hint})") from None


def _query(conn: Connection, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def is_mariadb(conn: Connection) -> bool:
    """Is the server MariaDB (as opposed to MySQL)?"""
    return "mariadb" in str(conn.get_server_info()).lower()  # type: ignore[no-untyped-call]


def lower_case_table_names(conn: Connection) -> int:
    """The server's ``lower_case_table_names`` (0: case-sensitive names; 1: stored and compared in lower
    case; 2: stored as given, compared in lower case)."""
    rows = _query(conn, "SELECT @@lower_case_table_names")
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def global_variables(conn: Connection, names: Iterable[str]) -> dict[str, str | None]:
    """``{name: value}`` of global variables (lower-case names; ``None`` when the server has no such variable)."""
    wanted = [name.lower() for name in names]
    rows = _query(conn, "SHOW GLOBAL VARIABLES WHERE Variable_name IN (" + ",".join(["%s"] * len(wanted)) + ")",
                  wanted)
    found = {str(name).lower(): None if value is None else str(value) for name, value in rows}
    return {name: found.get(name) for name in wanted}


# setting → (required value, what to run); every server must have these
_BINLOG_REQUIREMENTS = {
    "log_bin": ("ON", "start the server with log-bin (e.g. log-bin=binlog in my.cnf)"),
    "binlog_format": ("ROW", "SET GLOBAL binlog_format=ROW and binlog_format=ROW in my.cnf"),
    "binlog_row_image": ("FULL", "SET GLOBAL binlog_row_image=FULL and binlog_row_image=FULL in my.cnf"),
    "binlog_row_metadata": (
        "FULL",
        "SET GLOBAL binlog_row_metadata=FULL and binlog_row_metadata=FULL in my.cnf "
        "(needs MariaDB >= 10.5 or MySQL >= 8.0.14)",
    ),
}
# MySQL-only setting → (the value binlake needs when the server has it, what to run)
_MYSQL_REQUIREMENTS = {
    "binlog_transaction_compression": (
        "OFF",
        "SET GLOBAL binlog_transaction_compression=OFF and binlog_transaction_compression=OFF in my.cnf "
        "(binlake does not decode zstd-compressed transactions yet; a session can still turn it on with "
        "SET SESSION binlog_transaction_compression=ON, and the capture stops at such a transaction)",
    ),
    "binlog_row_value_options": (
        "",
        "SET GLOBAL binlog_row_value_options='' and binlog_row_value_options='' in my.cnf "
        "(PARTIAL_JSON logs JSON updates as diffs; binlake needs full row images)",
    ),
}
# read and logged by the pre-flight check; a server lacks the other flavour's (and newer) names
BINLOG_SETTINGS = (
    "version", *_BINLOG_REQUIREMENTS, "binlog_checksum",
    "log_bin_compress", "log_bin_compress_min_len", *_MYSQL_REQUIREMENTS,
    "gtid_mode", "enforce_gtid_consistency", "gtid_strict_mode", "gtid_domain_id",
    "encrypt_binlog", "binlog_encryption",
)


def binlog_settings_problems(values: Mapping[str, str | None]) -> list[str]:
    """Each setting in ``values`` (from :data:`BINLOG_SETTINGS`) binlake cannot work with, and its fix (pure).

    ``values`` maps lower-case names to the server's value, ``None`` for a variable the server
    does not have. The four settings every server needs are required; a MySQL-only setting is
    checked only where it exists. ``log_bin_compress`` (MariaDB), ``binlog_checksum`` (NONE or
    CRC32), GTID modes and binlog encryption (the server decrypts before sending) are all fine.
    """
    problems = []
    for name, (required, fix) in _BINLOG_REQUIREMENTS.items():
        actual = values.get(name)
        if (actual or "").upper() != required:
            shown = "missing (server too old)" if actual is None else actual
            problems.append(f"{name} is {shown}, binlake needs {required}: {fix}")
    for name, (required, fix) in _MYSQL_REQUIREMENTS.items():
        actual = values.get(name)
        if actual is not None and actual.upper() != required:
            problems.append(f"{name} is {actual}, binlake needs {required or 'it empty'}: {fix}")
    return problems


def describe_binlog_settings(values: Mapping[str, str | None]) -> str:
    """``name=value, …`` of the settings the server has, then the names it lacks (pure; for the log)."""
    present = ", ".join(f"{name}={value or repr('')}" for name, value in values.items() if value is not None)
    absent = [name for name, value in values.items() if value is None]
    return present + (f" (not on this server: {', '.join(absent)})" if absent else "")


def check_binlog_settings(conn: Connection) -> dict[str, str | None]:
    """Log every binlog setting that matters to the capture and refuse a server binlake cannot read exactly.

    Requires ``log_bin=ON``, ``binlog_format=ROW``, ``binlog_row_image=FULL`` and
    ``binlog_row_metadata=FULL`` (column names, signedness, ENUM/SET labels and primary keys come
    only from that metadata); on MySQL also ``binlog_transaction_compression=OFF`` and an empty
    ``binlog_row_value_options``. Raises :class:`SourceSettingsError` naming every wrong setting
    and its fix; returns the values read (see :data:`BINLOG_SETTINGS`).
    Note: GLOBAL settings apply to new sessions only; sessions open before a change keep writing
    with their old settings, and a session may override ``binlog_format`` and
    ``binlog_transaction_compression`` — the capture stops on what it cannot decode (see
    :mod:`binlake.capture.eventtypes`) rather than skip it.
    """
    values = global_variables(conn, BINLOG_SETTINGS)
    log.info("source binlog settings: %s", describe_binlog_settings(values))
    problems = binlog_settings_problems(values)
    if problems:
        raise SourceSettingsError("the source's binlog cannot be captured: " + "; ".join(problems))
    return values


_PRIVILEGE_ALIASES = {
    "REPLICATION SLAVE": {"REPLICATION SLAVE", "REPLICATION REPLICA", "ALL PRIVILEGES", "ALL"},
    "REPLICATION CLIENT": {
        "REPLICATION CLIENT", "BINLOG MONITOR", "SUPER", "ALL PRIVILEGES", "ALL",
    },
    "SELECT": {"SELECT", "ALL PRIVILEGES", "ALL"},
}
_GRANT_LINE = re.compile(r"^GRANT (?P<privs>.+?) ON (?P<scope>\S+) TO ", re.IGNORECASE)
_ROLE_LINE = re.compile(r"^GRANT (?P<roles>`[^`]+`(?:\s*,\s*`[^`]+`)*) TO ", re.IGNORECASE)


def parse_grants(lines: Iterable[str]) -> tuple[dict[str, set[str]], list[str]]:
    """``({scope: {privilege, ...}}, [role, ...])`` from ``SHOW GRANTS`` lines (pure)."""
    scopes: dict[str, set[str]] = {}
    roles: list[str] = []
    for line in lines:
        match = _GRANT_LINE.match(line)
        if match:
            privileges = {re.sub(r"\s*\(.*\)$", "", p.strip()).upper() for p in match["privs"].split(",")}
            scopes.setdefault(match["scope"].replace("`", ""), set()).update(privileges)
            continue
        role_match = _ROLE_LINE.match(line)
        if role_match:
            roles.extend(r.strip().strip("`") for r in role_match["roles"].split(","))
    return scopes, roles


def missing_privileges(scopes: dict[str, set[str]], need_replication: bool) -> list[str]:
    """The required privileges that ``scopes`` (from :func:`parse_grants`) do not hold (pure)."""
    global_privs = scopes.get("*.*", set())
    missing = []
    if need_replication:
        missing += [p for p in ("REPLICATION SLAVE", "REPLICATION CLIENT") if not _PRIVILEGE_ALIASES[p] & global_privs]
    if not any(_PRIVILEGE_ALIASES["SELECT"] & privs for privs in scopes.values()):
        missing.append("SELECT")
    return missing


def _grant_lines(conn: Connection) -> list[str]:
    lines = [str(row[0]) for row in _query(conn, "SHOW GRANTS FOR CURRENT_USER()")]
    _, roles = parse_grants(lines)
    for role in roles:
        try:
            lines += [str(row[0]) for row in _query(conn, "SHOW GRANTS FOR %s", (role,))]
        except pymysql.err.MySQLError:
            continue
    return lines


def check_grants(conn: Connection, need_replication: bool) -> None:
    """Refuse a user that lacks what binlake needs.

    Always SELECT (on ``*.*`` or on a schema); with ``need_replication`` also REPLICATION SLAVE
    and REPLICATION CLIENT (MariaDB >= 10.5 calls the latter BINLOG MONITOR) on ``*.*``.
    Privileges from granted roles are included. Raises :class:`SourceGrantsError` naming each
    missing grant and the statement that adds it.
    """
    scopes, _ = parse_grants(_grant_lines(conn))
    missing = missing_privileges(scopes, need_replication)
    if missing:
        user = _query(conn, "SELECT CURRENT_USER()")[0][0]
        raise SourceGrantsError(
            f"source user {user} lacks {', '.join(missing)}: run "
            f"GRANT {', '.join(missing)} ON *.* TO {user} (a DBA must do this)"
        )


def master_position(conn: Connection) -> BinlogPosition:
    """The current end of the binlog: file, position and the executed GTID set.

    MariaDB: ``@@gtid_binlog_pos``; MySQL: ``@@gtid_executed`` (``None`` when GTIDs are off).
    """
    rows: list[tuple[Any, ...]]
    try:
        rows = _query(conn, "SHOW MASTER STATUS")
    except pymysql.err.ProgrammingError:  # MySQL >= 8.4 dropped the old name
        rows = _query(conn, "SHOW BINARY LOG STATUS")
    except pymysql.err.OperationalError as exc:
        if exc.args and exc.args[0] == ER_SPECIFIC_ACCESS_DENIED:
            raise SourceGrantsError(
                "SHOW MASTER STATUS was refused: the source user needs REPLICATION CLIENT "
                "(BINLOG MONITOR on MariaDB >= 10.5)"
            ) from None
        raise
    if not rows:
        raise SourceSettingsError("the source has no binlog (log_bin is OFF): start it with log-bin")
    file, pos = str(rows[0][0]), int(rows[0][1])
    variable = "@@gtid_binlog_pos" if is_mariadb(conn) else "@@gtid_executed"
    try:
        gtid = _query(conn, f"SELECT {variable}")[0][0]
    except pymysql.err.MySQLError:
        gtid = None
    gtid_text = str(gtid).replace("\n", "") if gtid else None
    return BinlogPosition.of(file, pos, gtid_text)


def binlog_files(conn: Connection) -> list[tuple[str, int]]:
    """``[(file name, size), ...]`` of the binlogs the server still has, oldest first."""
    return [(str(row[0]), int(row[1])) for row in _query(conn, "SHOW BINARY LOGS")]


def gtid_at(conn: Connection, file: str, pos: int) -> str | None:
    """MariaDB: the GTID set executed at ``file:pos`` (``BINLOG_GTID_POS``); ``None`` elsewhere."""
    if not is_mariadb(conn):
        return None
    value = _query(conn, "SELECT BINLOG_GTID_POS(%s, %s)", (file, pos))[0][0]
    return str(value) if value else None


def purged_message(position: str, detail: str) -> str:
    """The one wording used whenever the binlog needed to continue is gone."""
    return (
        f"the source no longer has the binlog needed to continue from {position} ({detail}). "
        "Changes made since then are lost to the capture: a new full load is required "
        "(re-run the full load, then start the capture with capture.start: end or from the "
        "new snapshot position). Keep binlogs longer (binlog_expire_logs_seconds / expire_logs_days) "
        "to avoid this."
    )


def check_binlog_available(conn: Connection, file: str) -> None:
    """Raise :class:`BinlogPurgedError` when ``file`` is older than the oldest binlog on the server."""
    files = binlog_files(conn)
    names = [name for name, _ in files]
    if file in names:
        return
    from binlake.positions import file_sequence

    if names and file_sequence(file) < file_sequence(names[0]):
        raise BinlogPurgedError(purged_message(file, f"oldest binlog on the server is {names[0]}"))
    if names and file_sequence(file) > file_sequence(names[-1]):
        raise SourceError(
            f"binlog {file} is newer than the server's newest binlog {names[-1]}: the checkpoint "
            "does not belong to this server (or the server was reset with RESET MASTER); "
            "a new full load is required"
        )
    raise BinlogPurgedError(purged_message(file, "the file is not in SHOW BINARY LOGS"))


def server_id(conn: Connection) -> int:
    """The source's own ``@@server_id``."""
    return int(_query(conn, "SELECT @@server_id")[0][0])


def server_uuid(conn: Connection) -> str | None:
    """MySQL's ``@@server_uuid`` (``None`` on MariaDB, which has no such variable)."""
    try:
        value = _query(conn, "SELECT @@server_uuid")[0][0]
    except pymysql.err.MySQLError:
        return None
    return str(value) if value else None


def gtid_binlog_state(conn: Connection) -> str | None:
    """MariaDB's ``@@gtid_binlog_state`` — the last GTID per domain *and server id* in the server's
    binlog history (kept across PURGE, emptied by RESET MASTER); on MySQL ``@@GLOBAL.gtid_executed``,
    every transaction the server executed (the same question: emptied by RESET MASTER / RESET BINARY
    LOGS AND GTIDS; ``None`` with GTIDs off)."""
    variable = "@@GLOBAL.gtid_binlog_state" if is_mariadb(conn) else "@@GLOBAL.gtid_executed"
    value = _query(conn, f"SELECT {variable}")[0][0]
    return str(value).replace("\n", "") if value else None
