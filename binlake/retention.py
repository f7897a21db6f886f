"""How long the source keeps its binlogs, and whether that is long enough for the capture.

A capture that is down (or behind) for longer than the retention finds its binlog purged and can
only recover with a new full load, so the pre-flight reports the retention and warns below
``capture.min_binlog_retention_hours``. Where it comes from:

* RDS MySQL / Aurora MySQL: ``mysql.rds_configuration`` 'binlog retention hours' (set with
  ``CALL mysql.rds_set_configuration('binlog retention hours', 168)``); NULL there means RDS purges
  binlogs as soon as it can — minutes.
* MySQL 8 / MariaDB >= 10.6: ``binlog_expire_logs_seconds``; older servers: ``expire_logs_days``
  (0 = never purged automatically).

:func:`retention_from` and :func:`retention_warning` are pure; :func:`read_retention` runs the
queries (no SUPER or admin privilege needed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pymysql

from binlake.source import Connection, global_variables

log = logging.getLogger(__name__)

RDS_SETTING = "binlog retention hours"


@dataclass(frozen=True)
class Retention:
    """``hours``: how long binlogs are kept (``None``: never purged automatically); ``setting``:
    where that comes from, as the user would change it."""

    hours: float | None
    setting: str

    def describe(self) -> str:
        kept = "kept until purged by hand (no automatic expiry)" if self.hours is None else f"kept {self.hours:g} h"
        return f"binlogs {kept} ({self.setting})"


def retention_from(rds_hours: str | None, rds_table: bool, variables: dict[str, str | None]) -> Retention:
    """The retention from ``mysql.rds_configuration`` (``rds_table``: the table exists; ``rds_hours``
    its value) and the server's expiry variables (pure)."""
    if rds_table:
        hours = float(rds_hours) if rds_hours not in (None, "", "NULL") else 0.0
        return Retention(hours, f"mysql.rds_configuration '{RDS_SETTING}' = {rds_hours or 'NULL'}; change with "
                                f"CALL mysql.rds_set_configuration('{RDS_SETTING}', 168)")
    seconds = variables.get("binlog_expire_logs_seconds")
    days = variables.get("expire_logs_days")
    if seconds not in (None, "", "0"):
        return Retention(int(float(str(seconds))) / 3600, f"binlog_expire_logs_seconds = {seconds}")
    if days not in (None, "", "0", "0.000000"):
        return Retention(float(str(days)) * 24, f"expire_logs_days = {days}")
    return Retention(None, "binlog_expire_logs_seconds and expire_logs_days are 0")


def retention_warning(retention: Retention, margin_hours: float) -> str | None:
    """The warning when binlogs are kept for less than ``margin_hours`` (``None``: long enough)."""
    if retention.hours is None or retention.hours >= margin_hours:
        return None
    return (f"the source keeps its binlogs only {retention.hours:g} h ({retention.setting}), less than "
            f"capture.min_binlog_retention_hours = {margin_hours:g}: a capture stopped or behind for longer "
            "loses its place and needs a new full load. Keep binlogs longer (on RDS/Aurora: CALL "
            f"mysql.rds_set_configuration('{RDS_SETTING}', 168))")


def read_retention(conn: Connection) -> Retention:
    """Query the server (see the module docstring); works for a user without SUPER."""
    rds_table, rds_hours = False, None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT value FROM mysql.rds_configuration WHERE name = %s", (RDS_SETTING,))
            row = cur.fetchone()
        rds_table, rds_hours = True, (None if row is None or row[0] is None else str(row[0]))
    except pymysql.err.MySQLError:  # no such table (not RDS), or no SELECT on it
        pass
    return retention_from(rds_hours, rds_table, global_variables(conn, ["binlog_expire_logs_seconds",
                                                                        "expire_logs_days"]))


def check_retention(conn: Connection, margin_hours: float) -> Retention:
    """Log the retention; warn when it is below ``margin_hours``."""
    retention = read_retention(conn)
    log.info("source binlog retention: %s", retention.describe())
    warning = retention_warning(retention, margin_hours)
    if warning:
        log.warning("%s", warning)
    return retention
