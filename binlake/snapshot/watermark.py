"""The snapshot method of a full load: MariaDB's per-transaction snapshot position, or low watermarks.

``full_load.snapshot_method``:

* ``mariadb`` — each chunk's consistent-snapshot transaction reports the exact binlog position it
  is consistent with (``binlog_snapshot_file`` / ``binlog_snapshot_position``, MariaDB and Percona
  Server); the chunk's rows are labelled with it.
* ``watermark`` — for servers without that (MySQL, Aurora MySQL, RDS MySQL): just before a chunk's
  snapshot transaction starts, the driver reads the binlog end (``SHOW BINARY LOG STATUS`` on MySQL
  >= 8.4, ``SHOW MASTER STATUS`` before), the chunk's *low watermark*, and the chunk's rows are
  labelled with it. Between the read and the snapshot, with ``full_load.signal_table`` set, the
  driver commits a signal into that table (:mod:`binlake.snapshot.signal`: exact — every transaction
  at or before the watermark is then committed in the engine); without it, it waits
  ``full_load.watermark_settle_seconds`` (a timing assumption). Every change after the watermark is
  in the change log and is applied on top of the rows by the merge's per-row position guard;
  docs/full-load.md ("The watermark method") gives the argument case by case.
* ``auto`` — ``mariadb`` where the server exposes the snapshot position, else ``watermark``.

Pure except :func:`server_has_snapshot_position`, :func:`watermark_signal`, :func:`low_watermark` and
:func:`snapshot_jdbc`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from binlake.config import PipelineConfig, SnapshotMethod
from binlake.positions import BinlogPosition
from binlake.snapshot.reading import JdbcSource, with_watermark
from binlake.snapshot.signal import Signal, SignalTable, low_watermark_before, prepare
from binlake.source import Connection, SourceError, connect, is_mariadb, master_position

log = logging.getLogger(__name__)


def choose_method(setting: SnapshotMethod, has_snapshot_position: bool) -> SnapshotMethod:
    """The method a load uses: ``mariadb`` or ``watermark`` (pure).

    Raises :class:`SourceError` when ``mariadb`` is asked of a server without the position.
    """
    if setting is SnapshotMethod.AUTO:
        return SnapshotMethod.MARIADB if has_snapshot_position else SnapshotMethod.WATERMARK
    if setting is SnapshotMethod.MARIADB and not has_snapshot_position:
        raise SourceError("full_load.snapshot_method is mariadb, but the source does not expose "
                          "Binlog_snapshot_file/position (MySQL, Aurora and RDS do not): set "
                          "full_load.snapshot_method: auto (or watermark)")
    return setting


def server_has_snapshot_position(conn: Connection) -> bool:
    """Does a consistent-snapshot transaction on this server report its binlog position?"""
    with conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'binlog_snapshot_file'")
        return cur.fetchone() is not None and is_mariadb(conn)


def watermark_signal(conn: Connection, config: PipelineConfig, purpose: str) -> Signal | None:
    """The checked signal of ``full_load.signal_table`` (committed once as a trial), or ``None`` with a
    warning when it is not set. Raises :class:`~binlake.snapshot.signal.SignalTableError` naming the fix."""
    table = SignalTable.parse(config.full_load.signal_table)
    if table is None:
        log.warning("watermark method without full_load.signal_table: each chunk waits "
                    "full_load.watermark_settle_seconds (%.2f s) for transactions already in the binlog to finish "
                    "their engine commit — a timing assumption, not a proof; set full_load.signal_table for exact "
                    "low watermarks (docs/full-load.md, \"The watermark method\")",
                    config.full_load.watermark_settle_seconds)
        return None
    return prepare(conn, table, f"{config.name}:{purpose}")


def low_watermark(connect: Callable[[], Connection], epoch: int, settle_seconds: float, signal: Signal | None = None,
                  sleep: Callable[[float], None] = time.sleep) -> BinlogPosition:
    """The binlog end now (in ``epoch``, with the executed GTID set), after which the caller starts a
    snapshot. With ``signal``: returns once a signal committed *after* the read has returned, so every
    transaction at or before the watermark has committed in the engine (exact; :mod:`binlake.snapshot.signal`).
    Without: returns once ``settle_seconds`` have passed (a timing assumption; docs/full-load.md)."""
    with connect() as conn:
        if signal is not None:
            return low_watermark_before(lambda: master_position(conn).in_epoch(epoch), lambda: signal.commit(conn))
        low = master_position(conn).in_epoch(epoch)
    if settle_seconds > 0:
        sleep(settle_seconds)
    return low


def snapshot_jdbc(config: PipelineConfig, jdbc: JdbcSource, epoch: int, purpose: str = "validate") -> JdbcSource:
    """``jdbc`` as the full load's method reads it on this server: unchanged for ``mariadb``, labelled
    with a low watermark read now (then signalled, or settled) for ``watermark`` — for reads other than
    the full load's chunks that must be consistent with it (validation's per-chunk checksums and rows)."""
    with connect(config.source) as conn:
        method = choose_method(config.full_load.snapshot_method, server_has_snapshot_position(conn))
        if method is SnapshotMethod.MARIADB:
            return jdbc
        signal = watermark_signal(conn, config, purpose)
    low = low_watermark(lambda: connect(config.source), epoch, config.full_load.watermark_settle_seconds, signal)
    return with_watermark(jdbc, low)
