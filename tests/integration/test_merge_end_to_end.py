"""The merge under fire: a randomized workload on a real MariaDB runs while the full load runs and
while the merge is SIGKILLed at random points (the capture too, once); DDL mid-stream. After
everything caught up, every lake table equals its source table, row for row, value for value.

Capture, full load and merge run as subprocesses (``binlake capture``, ``jobs/full_load.py``,
``streaming/merge.py``), killed by process group, so a kill can land anywhere — inside a Delta
commit, between two commits of one batch, between a commit and the checkpoint.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from capture_support import checkpoint_reached, master_position, wait_for, write_config

from binlake.config import PipelineConfig, parse_config
from binlake.devdb import LocalMariaDB

pytestmark = [pytest.mark.slow, pytest.mark.spark]
ROOT = Path(__file__).resolve().parents[2]

TABLES = """
CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20), qty INT, price DECIMAL(10,2),
                    updated DATETIME(3));
CREATE TABLE pairs (a INT, b VARCHAR(8), v INT, PRIMARY KEY (a, b));
CREATE TABLE nokey (x INT, y VARCHAR(10))
"""


@dataclass
class Workload:
    """Random transactions (5% rolled back): inserts, updates, deletes, primary-key changes, churn
    on a few hot keys inside one transaction, multi-table transactions; DDL when asked."""

    connect: Callable[[], Any]
    seed: int
    transactions: int = 0
    ddl: list[str] = field(default_factory=list)
    name_column: str = "name"
    has_note: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    error: BaseException | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=60)
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        rng = random.Random(self.seed)
        conn = self.connect()
        try:
            while not self._stop.is_set():
                with conn.cursor() as cur:
                    if self.ddl:
                        self._apply_ddl(cur, self.ddl.pop(0))
                        continue
                    for _ in range(rng.randint(1, 3)):
                        rng.choice(self._OPS)(self, cur, rng)
                if rng.random() < 0.05:
                    conn.rollback()
                else:
                    conn.commit()
                    self.transactions += 1
                self._stop.wait(0.01)
        except BaseException as exc:
            self.error = exc
        finally:
            conn.close()

    def _apply_ddl(self, cur: Any, statement: str) -> None:
        cur.execute(statement)
        if "ADD COLUMN note" in statement:
            self.has_note = True
        if "RENAME COLUMN name TO title" in statement:
            self.name_column = "title"

    @staticmethod
    def _some(cur: Any, rng: random.Random, sql_max: str, sql_pick: str) -> Any:
        cur.execute(sql_max)
        (high,) = cur.fetchone()
        if high is None:
            return None
        cur.execute(sql_pick, (rng.randint(0, int(high)),))
        row = cur.fetchone()
        return row[0] if row else None

    def _item(self, cur: Any, rng: random.Random) -> Any:
        return self._some(cur, rng, "SELECT MAX(id) FROM items",
                          "SELECT id FROM items WHERE id >= %s ORDER BY id LIMIT 1")

    def insert_item(self, cur: Any, rng: random.Random) -> None:
        note = ", note" if self.has_note else ""
        values = ", %s" if self.has_note else ""
        args: list[Any] = [f"n{rng.randint(0, 10**6)}", rng.randint(0, 99), Decimal(rng.randint(0, 99999)) / 100]
        if self.has_note:
            args.append(f"t{rng.randint(0, 999)}")
        cur.execute(f"INSERT INTO items ({self.name_column}, qty, price, updated{note}) "
                    f"VALUES (%s, %s, %s, NOW(3){values})", args)

    def update_item(self, cur: Any, rng: random.Random) -> None:
        key = self._item(cur, rng)
        if key is not None:
            extra = ", note = CONCAT('u', qty)" if self.has_note and rng.random() < 0.5 else ""
            cur.execute(f"UPDATE items SET qty = qty + 1, {self.name_column} = %s, updated = NOW(3){extra} "
                        "WHERE id = %s", (f"u{rng.randint(0, 999)}", key))

    def delete_item(self, cur: Any, rng: random.Random) -> None:
        key = self._item(cur, rng)
        if key is not None:
            cur.execute("DELETE FROM items WHERE id = %s", (key,))

    def move_item(self, cur: Any, rng: random.Random) -> None:
        key = self._item(cur, rng)
        if key is not None:
            cur.execute("UPDATE items SET id = (SELECT m FROM (SELECT MAX(id) + 1 AS m FROM items) x) WHERE id = %s",
                        (key,))

    def churn(self, cur: Any, rng: random.Random) -> None:
        """Several changes of the same few keys in one transaction (delete + re-insert too)."""
        cur.execute("SELECT id FROM items ORDER BY id LIMIT 3")
        hot = [row[0] for row in cur.fetchall()]
        for _ in range(rng.randint(2, 5)):
            if not hot:
                return
            key = rng.choice(hot)
            cur.execute("UPDATE items SET qty = qty + 1 WHERE id = %s", (key,))
        if hot and rng.random() < 0.3:
            cur.execute(f"SELECT {self.name_column}, qty, price, updated FROM items WHERE id = %s", (hot[0],))
            row = cur.fetchone()
            cur.execute("DELETE FROM items WHERE id = %s", (hot[0],))
            cur.execute(f"INSERT INTO items (id, {self.name_column}, qty, price, updated) VALUES (%s, %s, %s, %s, %s)",
                        (hot[0], *row))

    def pair_change(self, cur: Any, rng: random.Random) -> None:
        a, b = rng.randint(1, 60), f"k{rng.randint(1, 9)}"
        choice = rng.random()
        if choice < 0.4:
            cur.execute("INSERT INTO pairs VALUES (%s, %s, %s) ON DUPLICATE KEY UPDATE v = v + 1", (a, b, 1))
        elif choice < 0.7:
            cur.execute("UPDATE IGNORE pairs SET b = %s WHERE a = %s AND b = %s", (f"m{rng.randint(1, 9)}", a, b))
        else:
            cur.execute("DELETE FROM pairs WHERE a = %s", (a,))

    def nokey_change(self, cur: Any, rng: random.Random) -> None:
        x = rng.randint(1, 400)
        cur.execute("SELECT COUNT(*) FROM nokey WHERE x = %s", (x,))
        (present,) = cur.fetchone()
        if not present:
            cur.execute("INSERT INTO nokey VALUES (%s, %s)", (x, f"y{rng.randint(0, 99)}"))
        elif rng.random() < 0.5:
            cur.execute("UPDATE nokey SET y = %s WHERE x = %s", (f"z{rng.randint(0, 99)}", x))
        else:
            cur.execute("DELETE FROM nokey WHERE x = %s", (x,))

    _OPS = (insert_item, insert_item, update_item, update_item, delete_item, move_item, churn, pair_change,
            pair_change, nokey_change)


def seed_source(db: LocalMariaDB, database: str) -> None:
    for statement in TABLES.split(";"):
        db.execute(statement, database)
    db.execute("INSERT INTO items (name, qty, price, updated) SELECT CONCAT('i', seq), seq MOD 50, seq / 7, "
               "TIMESTAMP('2024-01-01') + INTERVAL seq SECOND FROM seq_1_to_3000", database)
    db.execute("INSERT INTO pairs SELECT seq MOD 60, CONCAT('k', seq MOD 9), seq FROM seq_1_to_300 "
               "ON DUPLICATE KEY UPDATE v = pairs.v", database)
    db.execute("INSERT INTO nokey SELECT seq * 2, CONCAT('y', seq) FROM seq_1_to_150", database)


class Group:
    """A subprocess in its own process group, killed as a whole (python and its JVM)."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.handle = log.open("ab")
        self.process = subprocess.Popen(args, stdout=self.handle, stderr=subprocess.STDOUT, cwd=ROOT,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        self.process.wait(timeout=120)
        self.handle.close()

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout=timeout)
        self.handle.close()
        return code


def pipeline_config(db: LocalMariaDB, database: str, root: Path, files_per_batch: int = 3) -> PipelineConfig:
    return parse_config({
        "name": "merge-e2e",
        "source": {"host": "127.0.0.1", "port": db.port, "user": "root", "password_env": None, "server_id": 4711},
        "lake": {"root": str(root / "lake")},
        "table_mappings": {"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "db",
                                      "object-locator": {"schema-name": database, "table-name": "%"},
                                      "rule-action": "include"}]},
        "full_load": {"chunk_rows": 700},
        "capture": {"flush_seconds": 0.5},
        "merge": {"trigger_seconds": 1, "max_files_per_batch": files_per_batch, "optimize_every_batches": 4},
        "spark": {"master": "local[2]"},
    }, root / "e2e.yaml")


def source_rows(db: LocalMariaDB, database: str, table: str, columns: str, order: str) -> list[tuple[Any, ...]]:
    return [tuple(_norm(v) for v in row)
            for row in db.execute(f"SELECT {columns} FROM {table} ORDER BY {order}", database)]


def lake_rows(spark: Any, path: str, columns: str, order: str) -> list[tuple[Any, ...]]:
    frame = spark.read.format("delta").load(path)
    return [tuple(_norm(v) for v in row) for row in frame.selectExpr(*columns.split(", ")).orderBy(
        *order.split(", ")).collect()]


def _norm(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def test_lake_equals_source_with_merge_killed_at_random(mariadb: LocalMariaDB, source_db: str, tmp_path: Path,
                                                         request: pytest.FixtureRequest) -> None:
    rng = random.Random(int(os.environ.get("BINLAKE_E2E_SEED", "20240501")))
    seed_source(mariadb, source_db)
    config = pipeline_config(mariadb, source_db, tmp_path)
    config_path = write_config(config, tmp_path / "e2e.yaml")
    python = sys.executable
    capture = Group([python, "-m", "binlake.cli", "capture", "--config", str(config_path)], tmp_path / "capture.log")
    wait_for(checkpoint_reached(config, master_position(mariadb)), 60, "the capture to start")
    workload = Workload(lambda: mariadb.connect(source_db, autocommit=False), seed=rng.randint(0, 10**6))
    workload.start()
    try:
        full_load = Group([python, "jobs/full_load.py", "--config", str(config_path)], tmp_path / "full_load.log")
        assert full_load.wait(timeout=900) == 0, (tmp_path / "full_load.log").read_text()[-3000:]
        ddl = ["ALTER TABLE items ADD COLUMN note VARCHAR(10)", "ALTER TABLE items RENAME COLUMN name TO title"]
        for round_ in range(5):  # kills land in the join, inside batches, between commits, between batches
            merge = Group([python, "streaming/merge.py", "--config", str(config_path)], tmp_path / "merge.log")
            time.sleep(rng.uniform(15, 60))
            merge.kill()
            if round_ < len(ddl):
                workload.ddl.append(ddl[round_])
            if round_ == 1:  # the capture dies too, once
                capture.kill()
                capture = Group([python, "-m", "binlake.cli", "capture", "--config", str(config_path)],
                                tmp_path / "capture.log")
    finally:
        workload.stop()
    assert workload.transactions > 100 and not workload.ddl
    end = master_position(mariadb)
    wait_for(checkpoint_reached(config, end), 300, "the capture to catch up")
    capture.kill(signal.SIGTERM)
    catch_up = write_config(pipeline_config(mariadb, source_db, tmp_path, 200), tmp_path / "catch-up.yaml")
    final = Group([python, "streaming/merge.py", "--config", str(catch_up), "--available-now"],
                  tmp_path / "merge.log")
    assert final.wait(timeout=1800) == 0, (tmp_path / "merge.log").read_text()[-3000:]

    spark = request.getfixturevalue("spark")
    lake = f"{config.lake.root}/{source_db}"
    checks = [("items", "id, title, qty, price, updated, note", "id"), ("pairs", "a, b, v", "a, b"),
              ("nokey", "x, y", "x, y")]
    for table, columns, order in checks:
        assert lake_rows(spark, f"{lake}/{table}", columns, order) == source_rows(
            mariadb, source_db, table, columns, order), table
