"""Helpers for the capture integration tests: run the capture in a thread or a subprocess, and an
independent oracle (stock pymysqlreplication + typemap over the same binlog range) to compare with."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import QueryEvent, XidEvent
from pymysqlreplication.row_event import DeleteRowsEvent, TableMapEvent, UpdateRowsEvent, WriteRowsEvent

from binlake.capture.checkpoint import load_checkpoint
from binlake.capture.runner import CaptureRunner
from binlake.changelog import read_changelog, records
from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.lake import Lake
from binlake.positions import BinlogPosition, make_lsn
from binlake.typemap import column_type_from_information_schema, encode_binlog_value, table_map_column_types

ROOT = Path(__file__).resolve().parents[2]
_oracle_ids = iter(range(9100, 9999))


def master_position(db: LocalMariaDB) -> BinlogPosition:
    file, pos = db.execute("SHOW MASTER STATUS")[0][:2]
    return BinlogPosition.of(str(file), int(str(pos)))


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def checkpoint_reached(config: PipelineConfig, target: BinlogPosition) -> Callable[[], bool]:
    lake = Lake.from_config(config)

    def reached() -> bool:
        checkpoint = load_checkpoint(lake)
        return checkpoint is not None and checkpoint.position.lsn >= target.lsn

    return reached


BEAT_EVERY_SECONDS = 0.25


def reach_end(config: PipelineConfig, server: LocalMariaDB, failed: Callable[[], bool], epoch: int = 0,
              timeout: float = 60, what: str = "the capture to reach the binlog end") -> None:
    """Wait until the capture's checkpoint covers ``server``'s binlog end *as of this call* (in ``epoch``),
    or until ``failed()``. The target is fixed once: a row written to the unselected table ``beats.beat``
    every :data:`BEAT_EVERY_SECONDS` moves the binlog on, so a capture at an idle end still checkpoints,
    but never moves the target away from a capture that is catching up."""
    target = master_position(server).in_epoch(epoch)
    reached = checkpoint_reached(config, target)
    server.execute("CREATE DATABASE IF NOT EXISTS beats")
    server.execute("CREATE TABLE IF NOT EXISTS beats.beat (id INT AUTO_INCREMENT PRIMARY KEY)")
    last_beat = [0.0]

    def done() -> bool:
        if failed() or reached():
            return True
        if time.monotonic() - last_beat[0] >= BEAT_EVERY_SECONDS:
            server.execute("INSERT INTO beats.beat VALUES ()")
            last_beat[0] = time.monotonic()
        return False

    wait_for(done, timeout, what)


def caught_up(config: PipelineConfig, server: LocalMariaDB, capture: CaptureThread, epoch: int = 0,
              timeout: float = 60) -> None:
    """:func:`reach_end` for a :class:`CaptureThread`, which must not have failed."""
    reach_end(config, server, lambda: capture.error is not None, epoch, timeout)
    assert capture.error is None, capture.error


class CaptureThread:
    """A CaptureRunner in a background thread; ``stop()`` ends it at the next event or heartbeat."""

    def __init__(self, config: PipelineConfig) -> None:
        self.runner = CaptureRunner(config)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.runner.run()
        except BaseException as exc:
            self.error = exc

    def start(self) -> CaptureThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.runner.stopping = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "capture thread did not stop"
        if self.error is not None:
            raise self.error


@contextmanager
def capturing(config: PipelineConfig) -> Iterator[CaptureThread]:
    capture = CaptureThread(config).start()
    try:
        yield capture
    finally:
        capture.stop()


def capture_range(config: PipelineConfig, end: BinlogPosition, timeout: float = 60) -> None:
    """Run the capture (from its configured start) until its checkpoint reaches ``end``."""
    with capturing(config) as capture:
        wait_for(lambda: capture.error is not None or checkpoint_reached(config, end)(), timeout,
                 f"the checkpoint to reach {end}")
    assert capture.error is None


def captured(config: PipelineConfig, dedupe: bool = True) -> list[dict[str, Any]]:
    """All change-log records (JSON columns parsed), ordered by (lsn, row_idx)."""
    return records(read_changelog(Lake.from_config(config), dedupe=dedupe))


def write_config(config: PipelineConfig, path: Path) -> Path:
    data = json.loads(config.model_dump_json())
    path.write_text(yaml.safe_dump(data))
    return path


def start_subprocess(config_path: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """``python -m binlake.cli capture --config …`` with its log in ``log_path``."""
    handle = log_path.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "binlake.cli", "capture", "--config", str(config_path)],
        stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def stop_subprocess(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> int:
    process.send_signal(sig)
    return process.wait(timeout=timeout)


# --- the oracle: stock library + typemap, independent of binlake.capture -----------------------

def declared_types(db: LocalMariaDB, schema: str, table: str) -> list[Any]:
    rows = db.execute(
        "SELECT DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME FROM information_schema.COLUMNS "
        f"WHERE TABLE_SCHEMA = '{schema}' AND TABLE_NAME = '{table}' ORDER BY ORDINAL_POSITION")
    return [column_type_from_information_schema(str(d), str(c), str(s) if s is not None else None) for d, c, s in rows]


def oracle_changes(db: LocalMariaDB, schema: str, start: BinlogPosition, end: BinlogPosition,
                   declared: dict[str, list[Any]] | None = None) -> list[dict[str, Any]]:
    """Committed row changes of ``schema`` in ``[start, end)`` as the stock library decodes them.

    Each: ``lsn``, ``row_idx``, ``op``, ``table``, ``before``/``after`` dicts of canonical strings.
    Rows of transactions whose commit is not in the range are left out.
    """
    stream = BinLogStreamReader(
        connection_settings={"host": "127.0.0.1", "port": db.port, "user": "root", "password": ""},
        server_id=next(_oracle_ids), log_file=start.file, log_pos=start.pos, resume_stream=True, blocking=False,
        only_events=[TableMapEvent, WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent, XidEvent, QueryEvent],
        enable_logging=False,
    )
    out: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    types: dict[int, list[Any]] = {}
    file = start.file
    try:
        for event in stream:
            file = stream.log_file or file
            if event.packet.log_pos and make_lsn(file, event.packet.log_pos) > end.lsn:
                break
            if isinstance(event, TableMapEvent):
                hint = (declared or {}).get(event.table)
                types[event.table_id] = table_map_column_types(event, hint)
            elif isinstance(event, XidEvent) or (isinstance(event, QueryEvent) and event.query == "COMMIT"):
                out.extend(pending)
                pending = []
            elif isinstance(event, WriteRowsEvent | UpdateRowsEvent | DeleteRowsEvent):
                if event.schema != schema:
                    continue
                pending.extend(_oracle_rows(event, types[event.table_id], make_lsn(file, event.packet.log_pos)))
    finally:
        stream.close()
    return out


def _image(event: Any, ctypes: list[Any], values: dict[str, Any], sources: dict[str, Any]) -> dict[str, Any]:
    return {c.name: encode_binlog_value(ct, values[c.name], sources.get(c.name))
            for c, ct in zip(event.columns, ctypes, strict=True)}


def _oracle_rows(event: Any, ctypes: list[Any], lsn: int) -> list[dict[str, Any]]:
    rows = []
    for idx, row in enumerate(event.rows):
        if isinstance(event, UpdateRowsEvent):
            op, before, after = "U", _image(event, ctypes, row["before_values"], row["before_none_sources"]), \
                _image(event, ctypes, row["after_values"], row["after_none_sources"])
        elif isinstance(event, WriteRowsEvent):
            op, before, after = "I", None, _image(event, ctypes, row["values"], row["none_sources"])
        else:
            op, before, after = "D", _image(event, ctypes, row["values"], row["none_sources"]), None
        rows.append({"lsn": lsn, "row_idx": idx, "op": op, "table": event.table, "before": before, "after": after})
    return rows


def comparable(changes: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Change-log records or oracle changes reduced to what both must agree on (row changes only)."""
    return [(c["lsn"], c["row_idx"], c["op"], c.get("source_table", c.get("table")),
             json.dumps(c["before"], sort_keys=True), json.dumps(c["after"], sort_keys=True))
            for c in changes if c["op"] != "DDL"]
