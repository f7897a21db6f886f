"""A steady mixed workload on the sample tables: inserts, updates, deletes, primary-key changes,
multi-table transactions and rollbacks — what the demo, the end-to-end tests and the benchmarks run.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from binlake.demo.sample import order_item_row, retail_trans_row


@dataclass
class WorkloadStats:
    transactions: int = 0
    rollbacks: int = 0
    statements: int = 0


@dataclass
class Workload:
    """Runs random transactions on ``connect()``'s database until :meth:`stop`; one thread."""

    connect: Any
    rate_per_s: float = 50.0
    seed: int = 11
    stats: WorkloadStats = field(default_factory=WorkloadStats)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="workload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        rng = random.Random(self.seed)
        conn = self.connect()
        conn.autocommit(False)
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                self.run_one(conn, rng)
                pause = 1.0 / self.rate_per_s - (time.monotonic() - started)
                if pause > 0:
                    self._stop.wait(pause)
        finally:
            conn.close()

    def run_one(self, conn: Any, rng: random.Random) -> None:
        """One random transaction (committed, or rolled back 5% of the time)."""
        with conn.cursor() as cur:
            for _ in range(rng.randrange(1, 4)):
                rng.choice(_STATEMENTS)(cur, rng)
                self.stats.statements += 1
            if rng.random() < 0.05:
                conn.rollback()
                self.stats.rollbacks += 1
            else:
                conn.commit()
                self.stats.transactions += 1


def _random_id(cur: Any, rng: random.Random, table: str, column: str) -> int | None:
    cur.execute(f"SELECT MIN({column}), MAX({column}) FROM {table}")
    low, high = cur.fetchone()
    if low is None:
        return None
    return rng.randint(int(low), int(high))


def _insert_trans(cur: Any, rng: random.Random) -> None:
    cur.execute(
        "INSERT INTO retail_trans (customer_id, event, sku, amount, device, trans_datetime) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        retail_trans_row(rng),
    )


def _update_trans(cur: Any, rng: random.Random) -> None:
    key = _random_id(cur, rng, "retail_trans", "trans_id")
    if key is not None:
        cur.execute(
            "UPDATE retail_trans SET amount = amount + %s, event = %s WHERE trans_id >= %s ORDER BY trans_id LIMIT 3",
            (rng.randrange(1, 100), rng.choice(("purchase", "return", "refund")), key),
        )


def _delete_trans(cur: Any, rng: random.Random) -> None:
    key = _random_id(cur, rng, "retail_trans", "trans_id")
    if key is not None:
        cur.execute("DELETE FROM retail_trans WHERE trans_id >= %s ORDER BY trans_id LIMIT 2", (key,))


def _move_trans_key(cur: Any, rng: random.Random) -> None:
    """A primary-key change: move one row to a fresh id above the current maximum."""
    key = _random_id(cur, rng, "retail_trans", "trans_id")
    if key is not None:
        cur.execute("SELECT COALESCE(MAX(trans_id), 0) + 1000 FROM retail_trans")
        (new_key,) = cur.fetchone()
        cur.execute("UPDATE retail_trans SET trans_id = %s WHERE trans_id >= %s ORDER BY trans_id LIMIT 1",
                    (new_key, key))


def _order_change(cur: Any, rng: random.Random) -> None:
    """Insert an order, ship one, or return one — together with a retail_trans row (multi-table)."""
    choice = rng.random()
    if choice < 0.5:
        cur.execute("SELECT COALESCE(MAX(order_id), 0) + 1 FROM order_items")
        (order_id,) = cur.fetchone()
        for line in range(1, rng.randrange(2, 4)):
            cur.execute(
                "INSERT INTO order_items (order_id, line_no, product, quantity, unit_price, status, attributes) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                order_item_row(rng, order_id, line),
            )
        _insert_trans(cur, rng)
    elif choice < 0.85:
        order_id = _random_id(cur, rng, "order_items", "order_id")
        cur.execute("UPDATE order_items SET status = 'shipped', quantity = quantity + 1 WHERE order_id = %s",
                    (order_id,))
    else:
        order_id = _random_id(cur, rng, "order_items", "order_id")
        cur.execute("DELETE FROM order_items WHERE order_id = %s AND line_no > 1", (order_id,))


_STATEMENTS = (_insert_trans, _insert_trans, _update_trans, _update_trans, _delete_trans, _move_trans_key,
               _order_change, _order_change)
