"""Sample source data for the demo and the benchmarks.

``retail_trans`` is the table of the AWS CDC pipeline blog (DMS → S3 → Hudi/Delta); ``order_items``
adds a composite primary key and a few harder types (DECIMAL, TIMESTAMP(6), ENUM, JSON, utf8mb4).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

RETAIL_TRANS_DDL = """
CREATE TABLE IF NOT EXISTS retail_trans (
  trans_id BIGINT NOT NULL AUTO_INCREMENT,
  customer_id VARCHAR(12) NOT NULL,
  event VARCHAR(10) DEFAULT NULL,
  sku VARCHAR(10) NOT NULL,
  amount INT DEFAULT 0,
  device VARCHAR(10) DEFAULT NULL,
  trans_datetime DATETIME DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (trans_id)
) ENGINE=InnoDB
"""

ORDER_ITEMS_DDL = """
CREATE TABLE IF NOT EXISTS order_items (
  order_id INT UNSIGNED NOT NULL,
  line_no SMALLINT NOT NULL,
  product VARCHAR(40) NOT NULL,
  quantity INT NOT NULL,
  unit_price DECIMAL(12,2) NOT NULL,
  status ENUM('new','paid','shipped','returned') NOT NULL DEFAULT 'new',
  attributes JSON NULL,
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  PRIMARY KEY (order_id, line_no)
) ENGINE=InnoDB
"""

EVENTS = ("view", "cart", "purchase", "return", "refund")
DEVICES = ("mobile", "desktop", "tablet", "kiosk")
PRODUCTS = ("Kaffee ☕", "Tea 🍵", "Croissant", "Bagel", "Müsli", "Açaí bowl", "Smørrebrød")
_EPOCH = datetime(2024, 1, 1)


def retail_trans_row(rng: random.Random) -> tuple[Any, ...]:
    """One ``retail_trans`` row without its id: (customer_id, event, sku, amount, device, trans_datetime)."""
    return (
        f"C{rng.randrange(10**9):011d}",
        rng.choice(EVENTS),
        f"SKU{rng.randrange(10**6):06d}",
        rng.randrange(1, 5000),
        rng.choice(DEVICES),
        (_EPOCH + timedelta(seconds=rng.randrange(3 * 365 * 86400))).strftime("%Y-%m-%d %H:%M:%S"),
    )


def order_item_row(rng: random.Random, order_id: int, line_no: int) -> tuple[Any, ...]:
    return (
        order_id,
        line_no,
        rng.choice(PRODUCTS),
        rng.randrange(1, 20),
        f"{rng.randrange(100, 100000) / 100:.2f}",
        rng.choice(("new", "paid", "shipped")),
        json.dumps({"gift": rng.random() < 0.2, "note": rng.choice(PRODUCTS)}, ensure_ascii=False),
    )


def batched(rows: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def create_sample(conn: Any, retail_rows: int, orders: int, seed: int = 7) -> None:
    """Create and fill both tables in the connection's current database (idempotent DDL)."""
    rng = random.Random(seed)
    with conn.cursor() as cur:
        cur.execute(RETAIL_TRANS_DDL)
        cur.execute(ORDER_ITEMS_DDL)
        for batch in batched((retail_trans_row(rng) for _ in range(retail_rows)), 5000):
            cur.executemany(
                "INSERT INTO retail_trans (customer_id, event, sku, amount, device, trans_datetime) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                batch,
            )
        items = (order_item_row(rng, o, n) for o in range(1, orders + 1) for n in range(1, rng.randrange(2, 5)))
        for batch in batched(items, 5000):
            cur.executemany(
                "INSERT INTO order_items (order_id, line_no, product, quantity, unit_price, status, attributes) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                batch,
            )
    conn.commit()
