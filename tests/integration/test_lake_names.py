"""Table names that used to share a lake folder (``a:b``, ``a/b``, ``a_b``; ``A_B`` where the server
keeps case) each replicate to their own lake table through full load, capture and merge, value for
value; two source tables that the mapping sends to one lake table are refused, naming both, by the
full load, the capture and the merge, before anything is written — also a table created while the
capture runs; one table renamed onto the other's lake name continues it. Tables an older binlake
loaded under paths that changed are refused with the moves."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from capture_support import (
    CaptureThread,
    captured,
    capturing,
    checkpoint_reached,
    master_position,
    wait_for,
    write_config,
)
from merge_helpers import Source, load_table, merge_config, rows
from typer.testing import CliRunner

from binlake.capture.records import CaptureDataError
from binlake.catalog import read_catalog
from binlake.cli import app
from binlake.config import PipelineConfig
from binlake.devdb import LocalMariaDB
from binlake.lake import CATALOG_KEY, Lake, snapshot_state_key, table_key
from binlake.merge.job import run as run_merge
from binlake.snapshot.job import FullLoadError, run_full_load
from binlake.tables import list_tables

pytestmark = [pytest.mark.spark]


def quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def include_all(schema: str, *extra: dict[str, Any]) -> dict[str, Any]:
    return {"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "all", "rule-action": "include",
                       "object-locator": {"schema-name": schema, "table-name": "%"}}, *extra]}


def case_kept(db: LocalMariaDB) -> bool:
    """lower_case_table_names=0: ``A_B`` and ``a_b`` are two tables."""
    (value,) = db.execute("SELECT @@lower_case_table_names")[0]
    return int(str(value)) == 0


def workload(db: LocalMariaDB, schema: str, names: list[str], round_: int) -> None:
    """Different changes on each table (so a mix-up shows): inserts, updates, deletes, and one
    transaction over every table."""
    with db.connect(schema, autocommit=False) as conn, conn.cursor() as cur:
        for k, name in enumerate(names):
            t = quoted(name)
            cur.execute(f"INSERT INTO {t} (id, v, n) VALUES (%s, %s, %s), (%s, %s, %s)",
                        (100 * round_ + k, f"{name}+{round_}", k, 100 * round_ + 50 + k, f"{name}*", -k))
            cur.execute(f"UPDATE {t} SET n = n + %s, v = CONCAT(v, %s) WHERE MOD(id, %s) = 0", (k + 1, name, k + 2))
            cur.execute(f"DELETE FROM {t} WHERE MOD(id, %s) = 1", (k + 3,))
            conn.commit()
        for k, name in enumerate(names):
            cur.execute(f"UPDATE {quoted(name)} SET n = n * 10 + %s WHERE id < 5", (k,))
        conn.commit()


@pytest.mark.slow  # one merge join per table: 3 min measured here with other test jobs sharing the 2 cores
def test_names_that_shared_a_folder_each_get_their_own_lake_table(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Callable[..., PipelineConfig], spark: Any
) -> None:
    names = ["a:b", "a/b", "a_b"] + (["A_B"] if case_kept(mariadb) else [])
    for k, name in enumerate(names):
        mariadb.execute(f"CREATE TABLE {quoted(source_db)}.{quoted(name)} (id INT PRIMARY KEY, v VARCHAR(60), n INT)")
        mariadb.execute(f"INSERT INTO {quoted(source_db)}.{quoted(name)} VALUES " +
                        ", ".join(f"({i}, '{k}-{i}', {i * (k + 1)})" for i in range(40)))
    config = make_config(lake_dir, include_all(source_db), full_load={"chunk_rows": 1000, "tables_in_parallel": 2},
                         capture={"flush_seconds": 0.5, "start": "end"})
    capture = CaptureThread(config).start()
    try:
        wait_for(lambda: capture.error is not None or checkpoint_reached(config, master_position(mariadb))(), 30,
                 "the capture to start")
        workload(mariadb, source_db, names, 1)                   # before the snapshot: the lsn guard skips it
        run_full_load(config, spark)
        workload(mariadb, source_db, names, 2)                   # after: the merge applies it
        end = master_position(mariadb)
        wait_for(lambda: capture.error is not None or checkpoint_reached(config, end)(), 60, "the capture")
    finally:
        capture.stop()
    run_merge(spark, config, available_now=True)

    lake = Lake(str(lake_dir))
    paths = {name: lake.uri(table_key(source_db, name)) for name in names}
    assert len(set(paths.values())) == len(names)
    for name in names:
        source = mariadb.execute(f"SELECT id, v, n FROM {quoted(source_db)}.{quoted(name)} ORDER BY id")
        assert rows(spark, paths[name], "id", "v", "n") == [tuple(r) for r in source], name

    catalog = json.loads(lake.get_bytes(CATALOG_KEY))
    assert {(t["source"]["table"], t["path"]) for t in catalog["tables"]} == {
        (name, table_key(source_db, name)) for name in names}
    assert {e.source_table for e in read_catalog(lake)} == set(names)
    listed = list_tables(config, lake)
    assert {(r.source_table, r.path, r.state) for r in listed} == {(n, paths[n], "joined") for n in names}


def colliding_mapping(schema: str) -> dict[str, Any]:
    return include_all(schema, {"rule-type": "transformation", "rule-id": "2", "rule-name": "rename",
                                "rule-target": "table", "rule-action": "rename", "value": "orders",
                                "object-locator": {"schema-name": schema, "table-name": "orders[_]v1"}})


def test_two_tables_renamed_to_one_lake_table_are_refused_naming_both(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Callable[..., PipelineConfig], spark: Any
) -> None:
    for name in ("orders", "orders_v1"):
        mariadb.execute(f"CREATE TABLE {source_db}.{name} (id INT PRIMARY KEY, v INT)")
        mariadb.execute(f"INSERT INTO {source_db}.{name} VALUES (1, 1)")
    config = make_config(lake_dir, colliding_mapping(source_db), capture={"start": "end"})
    both = rf"`{source_db}`\.`orders` and `{source_db}`\.`orders_v1` both map to lake table `{source_db}`\.`orders`"

    with pytest.raises(FullLoadError, match=both):
        run_full_load(config, spark)
    capture = CaptureThread(config).start()
    capture.thread.join(timeout=30)
    assert isinstance(capture.error, CaptureDataError), capture.error
    assert re.search(both, str(capture.error))
    written = [p.relative_to(lake_dir).as_posix() for p in lake_dir.rglob("*") if p.is_file()]
    assert [p for p in written if not p.startswith("_binlake/capture/status")] == [], "nothing may be written"
    assert [(r.source_table, r.state) for r in list_tables(config)] == [("orders", "collision"),
                                                                         ("orders_v1", "collision")]
    result = CliRunner().invoke(app, ["tables", "--config", str(write_config(config, lake_dir.parent / "c.yaml"))])
    assert result.exit_code == 1, result.output
    assert re.search(rf"{source_db}\.orders_v1 +{source_db}\.orders +collision", result.output)
    assert re.search(both, result.output)


def test_a_table_loaded_under_the_old_layout_is_refused_with_the_moves(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Callable[..., PipelineConfig], spark: Any
) -> None:
    """An older binlake kept ``Orders`` in ``<schema>/Orders`` with its state at the raw name: the full
    load must not start it over in ``<schema>/~orders`` while readers keep reading the old folder."""
    name = "Orders" if case_kept(mariadb) else "or:ders"
    mariadb.execute(f"CREATE TABLE {source_db}.`{name}` (id INT PRIMARY KEY, v INT)")
    lake = Lake(str(lake_dir))
    old = f"_binlake/snapshots/{source_db}/{name}.json"
    lake.put_bytes(old, json.dumps({"load_id": "old", "status": "complete",
                                    "source": {"schema": source_db, "table": name},
                                    "target": {"schema": source_db, "table": name}}).encode())
    config = make_config(lake_dir, include_all(source_db))
    new = snapshot_state_key(source_db, name)
    with pytest.raises(FullLoadError, match=rf"{re.escape(old)} → {re.escape(new)}"):
        run_full_load(config, spark)
    assert sorted(p.relative_to(lake_dir).as_posix() for p in lake_dir.rglob("*") if p.is_file()) == [old]
    assert [r.state for r in list_tables(config)] == ["old layout"]


def test_the_merge_refuses_a_change_log_with_two_sources_for_one_lake_table(spark: Any, tmp_path: Path) -> None:
    lake = Lake(str(tmp_path))
    path = load_table(spark, lake, "orders", [(1, "a", 1)], snapshot_pos=100)
    source = Source(lake)
    mine = source.ins(200, "orders", {"id": 2, "name": "b", "qty": 2})
    other = dataclasses.replace(mine, lsn=mine.lsn + 10, binlog_pos=210, source_table="orders_v1")
    source.write(mine, other, source.ins(220, "orders", {"id": 3, "name": "c", "qty": 3}))  # side by side
    with pytest.raises(Exception, match=r"`shop`\.`orders` and `shop`\.`orders_v1` both map to lake table"):
        run_merge(spark, merge_config(tmp_path), available_now=True)
    assert rows(spark, path, "id", "name", "qty") == [(1, "a", 1)]


def lowercase_mapping(schema: str) -> dict[str, Any]:
    return include_all(schema, {"rule-type": "transformation", "rule-id": "2", "rule-name": "lower",
                                "rule-target": "table", "rule-action": "convert-lowercase",
                                "object-locator": {"schema-name": schema, "table-name": "%"}})


def test_the_capture_refuses_a_table_created_next_to_one_with_the_same_lake_table(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Callable[..., PipelineConfig]
) -> None:
    if not case_kept(mariadb):
        pytest.skip("the server folds table names to lower case")
    mariadb.execute(f"CREATE TABLE {source_db}.orders (id INT PRIMARY KEY)")
    config = make_config(lake_dir, lowercase_mapping(source_db), capture={"start": "end", "flush_seconds": 0.2})
    capture = CaptureThread(config).start()
    wait_for(lambda: capture.error is not None or checkpoint_reached(config, master_position(mariadb))(), 30,
             "the capture to start")
    mariadb.execute(f"INSERT INTO {source_db}.orders VALUES (1)")
    wait_for(lambda: checkpoint_reached(config, master_position(mariadb))(), 30, "the first insert")
    mariadb.execute(f"CREATE TABLE {source_db}.Orders (id INT PRIMARY KEY)")
    mariadb.execute(f"INSERT INTO {source_db}.Orders VALUES (2)")
    capture.thread.join(timeout=30)
    assert isinstance(capture.error, CaptureDataError), capture.error
    assert re.search(rf"`{source_db}`\.`Orders` and `{source_db}`\.`orders` both map", str(capture.error))
    rows_captured = [(r["source_table"], r["op"]) for r in captured(config)]
    assert ("orders", "I") in rows_captured and ("Orders", "I") not in rows_captured


def test_a_table_renamed_onto_the_same_lake_name_continues(
    mariadb: LocalMariaDB, source_db: str, lake_dir: Path, make_config: Callable[..., PipelineConfig]
) -> None:
    """``RENAME TABLE Foo TO foo`` under a lower-case rule: the two never exist together."""
    if not case_kept(mariadb):
        pytest.skip("the server folds table names to lower case")
    mariadb.execute(f"CREATE TABLE {source_db}.Foo (id INT PRIMARY KEY)")
    config = make_config(lake_dir, lowercase_mapping(source_db), capture={"start": "end", "flush_seconds": 0.2})
    with capturing(config) as capture:
        wait_for(lambda: capture.error is not None or checkpoint_reached(config, master_position(mariadb))(), 30,
                 "the capture to start")
        mariadb.execute(f"INSERT INTO {source_db}.Foo VALUES (1)")
        mariadb.execute(f"RENAME TABLE {source_db}.Foo TO {source_db}.foo")
        mariadb.execute(f"INSERT INTO {source_db}.foo VALUES (2)")
        end = master_position(mariadb)
        wait_for(lambda: capture.error is not None or checkpoint_reached(config, end)(), 30, "the capture")
    assert capture.error is None
    rows_captured = [(r["source_table"], r["table"], r["op"]) for r in captured(config) if r["op"] != "DDL"]
    assert rows_captured == [("Foo", "foo", "I"), ("foo", "foo", "I")]
