"""The watermark snapshot method (the one MySQL, Aurora and RDS get), forced on MariaDB: a full load
read while the adversarial workload runs (inserts, updates, deletes, primary-key changes,
multi-table transactions, rollbacks), with the capture running from before the load and the merge
after it — the lake must equal the source value by value, and validation (same method) agrees."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from capture_support import CaptureThread, checkpoint_reached, master_position, wait_for

from binlake.config import parse_config
from binlake.demo.sample import create_sample
from binlake.demo.workload import Workload
from binlake.devdb import LocalMariaDB
from binlake.lake import Lake, snapshot_state_key, table_key
from binlake.merge.job import run as run_merge
from binlake.snapshot.job import run_full_load
from binlake.snapshot.state import TableState
from binlake.validation import validate

pytestmark = [pytest.mark.spark, pytest.mark.slow]  # about 2-3 minutes on a shared 2-core machine


def _normal(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def test_watermark_full_load_under_workload_equals_source(
    mariadb: LocalMariaDB, spark: Any, source_db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with mariadb.connect(source_db, autocommit=False) as conn:
        create_sample(conn, retail_rows=4000, orders=400)
    config = parse_config({
        "name": "watermark",
        "source": {"host": "127.0.0.1", "port": mariadb.port, "user": "root", "password_env": None,
                   "server_id": 9191},
        "lake": {"root": str(tmp_path / "lake")},
        "table_mappings": {"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "all",
                                      "object-locator": {"schema-name": source_db, "table-name": "%"},
                                      "rule-action": "include"}]},
        "full_load": {"chunk_rows": 500, "snapshot_method": "watermark", "watermark_settle_seconds": 0.05},
        "capture": {"flush_seconds": 0.5, "start": "end"},
        "merge": {"trigger_seconds": 1, "max_files_per_batch": 50},
        "spark": {"master": "local[2]"},
    }, Path("watermark.yaml"))
    capture = CaptureThread(config).start()
    wait_for(lambda: capture.error is not None or checkpoint_reached(config, master_position(mariadb))(), 30,
             "the capture to start")
    workload = Workload(lambda: mariadb.connect(source_db, autocommit=False), rate_per_s=150.0, seed=5)
    workload.start()
    try:
        with caplog.at_level(logging.INFO, logger="binlake"):
            run_full_load(config, spark)
    finally:
        workload.stop()
    assert "snapshot method: watermark (full_load.snapshot_method: watermark)" in caplog.text
    assert workload.stats.transactions > 50 and workload.stats.rollbacks > 0
    end = master_position(mariadb)
    wait_for(lambda: capture.error is not None or checkpoint_reached(config, end)(), 60, "the capture to catch up")
    capture.stop()
    run_merge(spark, config, available_now=True)

    state = TableState.from_json(Lake.from_config(config).get_bytes(snapshot_state_key(source_db, "retail_trans")))
    assert len(state.chunks) >= 8  # several chunks, each with its own low watermark
    root = config.lake.root
    source = mariadb.execute("SELECT trans_id, customer_id, event, sku, amount, device, "
                             "DATE_FORMAT(trans_datetime, '%Y-%m-%d %H:%i:%s') FROM retail_trans ORDER BY trans_id",
                             source_db)
    lake = spark.read.format("delta").load(f"{root}/{table_key(source_db, 'retail_trans')}").orderBy("trans_id")
    assert [(r.trans_id, r.customer_id, r.event, r.sku, r.amount, r.device,
             r.trans_datetime.strftime("%Y-%m-%d %H:%M:%S")) for r in lake.collect()] == [tuple(r) for r in source]
    items = mariadb.execute("SELECT order_id, line_no, product, quantity, unit_price, status, attributes, "
                            "DATE_FORMAT(updated_at, '%Y-%m-%d %H:%i:%s.%f') FROM order_items "
                            "ORDER BY order_id, line_no", source_db)
    lake_items = spark.read.format("delta").load(f"{root}/{table_key(source_db, 'order_items')}")
    assert [(r.order_id, r.line_no, r.product, r.quantity, str(r.unit_price), r.status, r.attributes,
             r.updated_at.strftime("%Y-%m-%d %H:%M:%S.%f"))
            for r in lake_items.orderBy("order_id", "line_no").collect()] == [tuple(_normal(v) for v in row)
                                                                             for row in items]
    assert [(r.status, r.source_rows == r.lake_rows) for r in validate(spark, config)] == [("OK", True)] * 2
