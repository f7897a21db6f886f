"""The whole pipeline on a real MariaDB: capture started first, a mixed workload running during the
full load, then the merge — and the lake must equal the source, row for row and value for value.
The notebooks then run top to bottom against that lake, and their outputs are checked."""

from __future__ import annotations

import ast
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from capture_support import CaptureThread, checkpoint_reached, master_position, wait_for, write_config

from binlake.config import PipelineConfig
from binlake.demo.sample import create_sample
from binlake.demo.workload import Workload
from binlake.devdb import LocalMariaDB
from binlake.merge.job import run as run_merge
from binlake.snapshot.job import run_full_load
from binlake.validation import validate

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def mapping_to_retail(database: str) -> dict[str, Any]:
    """Select the test database and name it ``retail`` in the lake (what the notebooks read)."""
    return {"rules": [
        {"rule-type": "selection", "rule-id": "1", "rule-name": "db",
         "object-locator": {"schema-name": database, "table-name": "%"}, "rule-action": "include"},
        {"rule-type": "transformation", "rule-id": "2", "rule-name": "retail", "rule-target": "schema",
         "object-locator": {"schema-name": database}, "rule-action": "rename", "value": "retail"},
    ]}


@dataclass
class Pipeline:
    config: PipelineConfig
    config_path: Path
    database: str
    workload_transactions: int


@pytest.fixture(scope="module")
def pipeline(mariadb: LocalMariaDB, spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    database = "e2e_retail"
    mariadb.execute(f"DROP DATABASE IF EXISTS {database}")
    mariadb.execute(f"CREATE DATABASE {database} CHARACTER SET utf8mb4")
    with mariadb.connect(database, autocommit=False) as conn:
        create_sample(conn, retail_rows=6000, orders=600)
    root = tmp_path_factory.mktemp("e2e")
    from binlake.config import parse_config

    config = parse_config({
        "name": "e2e",
        "source": {"host": "127.0.0.1", "port": mariadb.port, "user": "root", "password_env": None,
                   "server_id": 777},
        "lake": {"root": str(root / "lake")},
        "table_mappings": mapping_to_retail(database),
        "full_load": {"chunk_rows": 700},
        "capture": {"flush_seconds": 1.0, "start": "end"},
        "merge": {"trigger_seconds": 1, "max_files_per_batch": 40},
        "spark": {"master": "local[2]"},
    }, Path("e2e.yaml"))
    capture = CaptureThread(config).start()  # before the full load: nothing may be lost in between
    wait_for(lambda: checkpoint_reached(config, master_position(mariadb))(), 30, "the capture to start")
    workload = Workload(lambda: mariadb.connect(database, autocommit=False), rate_per_s=100.0, seed=3)
    workload.start()
    try:
        run_full_load(config, spark)
        run_merge(spark, config, available_now=True)  # a first catch-up while the workload still runs
    finally:
        workload.stop()
    end = master_position(mariadb)
    wait_for(lambda: capture.error is not None or checkpoint_reached(config, end)(), 60, "capture to catch up")
    capture.stop()
    run_merge(spark, config, available_now=True)
    config_path = write_config(config, root / "e2e.yaml")
    yield Pipeline(config, config_path, database, workload.stats.transactions)
    mariadb.execute(f"DROP DATABASE IF EXISTS {database}")


def _normal(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def test_lake_equals_source_after_workload_during_full_load(
    pipeline: Pipeline, mariadb: LocalMariaDB, spark: Any
) -> None:
    assert pipeline.workload_transactions > 50, "the workload must have changed the source during the load"
    root = pipeline.config.lake.root
    source = mariadb.execute(f"SELECT trans_id, customer_id, event, sku, amount, device, "
                             f"DATE_FORMAT(trans_datetime, '%Y-%m-%d %H:%i:%s') FROM {pipeline.database}.retail_trans "
                             "ORDER BY trans_id")
    lake = spark.read.format("delta").load(f"{root}/retail/retail_trans").orderBy("trans_id").collect()
    lake_rows = [(r.trans_id, r.customer_id, r.event, r.sku, r.amount, r.device,
                  r.trans_datetime.strftime("%Y-%m-%d %H:%M:%S")) for r in lake]
    assert lake_rows == [tuple(row) for row in source]

    source_items = mariadb.execute(f"SELECT order_id, line_no, product, quantity, unit_price, status, attributes, "
                                   f"DATE_FORMAT(updated_at, '%Y-%m-%d %H:%i:%s.%f') FROM {pipeline.database}."
                                   "order_items ORDER BY order_id, line_no")
    lake_items = spark.read.format("delta").load(f"{root}/retail/order_items").orderBy("order_id", "line_no").collect()
    assert [(r.order_id, r.line_no, r.product, r.quantity, str(r.unit_price), r.status, r.attributes,
             r.updated_at.strftime("%Y-%m-%d %H:%M:%S.%f")) for r in lake_items] == [
        tuple(_normal(v) for v in row) for row in source_items]

    results = validate(spark, pipeline.config)
    assert [(r.status, r.source_rows == r.lake_rows) for r in results] == [("OK", True), ("OK", True)]


def _run_notebook(name: str, config_path: Path, workdir: Path) -> Any:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    os.environ["BINLAKE_CONFIG"] = str(config_path)
    try:
        NotebookClient(notebook, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(workdir)}}).execute()
    finally:
        os.environ.pop("BINLAKE_CONFIG", None)
    return notebook


def _outputs(notebook: Any) -> list[dict[str, Any]]:
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])]


def _text(output: dict[str, Any]) -> str:
    data = output.get("data", {})
    return str(data.get("text/plain", output.get("text", "")))


def test_query_notebook_runs_and_shows_the_lake(pipeline: Pipeline, mariadb: LocalMariaDB, tmp_path: Path) -> None:
    notebook = _run_notebook("01_query_the_lake.ipynb", pipeline.config_path, tmp_path)
    texts = [_text(o) for o in _outputs(notebook)]
    assert not [o for o in _outputs(notebook) if o.get("output_type") == "error"]
    (trans_count,), = mariadb.execute(f"SELECT COUNT(*) FROM {pipeline.database}.retail_trans")
    counts_table = next(t for t in texts if "table_name" in t and "row_count" in t)
    trans_line = next(line for line in counts_table.splitlines() if "retail_trans" in line)
    assert trans_line.split()[-1] == str(trans_count)
    travel = ast.literal_eval(next(t for t in texts if "version_after_full_load" in t))
    assert travel["rows_now"] == trans_count
    assert travel["max_lsn_now"] > travel["max_lsn_after_full_load"]
    change_summary = next(t for t in texts if "_change_type" in t)
    assert "update_postimage" in change_summary and "insert" in change_summary
    polars = ast.literal_eval(next(t for t in texts if "polars_rows" in t))  # the same table read by polars
    assert polars["polars_rows"] == trans_count and polars["polars_amount_sum"] == polars["spark_amount_sum"]


def test_lag_notebook_draws_the_chart(pipeline: Pipeline, tmp_path: Path) -> None:
    notebook = _run_notebook("02_replication_lag.ipynb", pipeline.config_path, tmp_path)
    outputs = _outputs(notebook)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the lag chart must be a picture"
    summary = ast.literal_eval(next(_text(o) for o in outputs if "changes_merged" in _text(o)))
    assert summary["changes_merged"] > 0 and summary["batches"] >= 1
    assert summary["lag_p95_s"] >= summary["lag_p50_s"] >= 0
    assert json.dumps(summary)
