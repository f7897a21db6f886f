"""binlake.registration.reading: a lake table found by path without a catalog, by its catalog name
with Hive (lower case, back-quoted); the Glue lookup is in tests/integration/test_catalog_glue.py."""

from __future__ import annotations

from pathlib import Path

from binlake.config import PipelineConfig, parse_config
from binlake.registration.reading import table_ref

RULES = {"rules": [{"rule-type": "selection", "rule-id": "1", "rule-name": "1",
                    "object-locator": {"schema-name": "shop", "table-name": "%"}, "rule-action": "include"}]}


def config(tmp_path: Path, catalog: str) -> PipelineConfig:
    return parse_config({"lake": {"root": str(tmp_path), "catalog": catalog}, "table_mappings": RULES},
                        tmp_path / "c.yaml")


def test_without_a_catalog_the_lake_path(tmp_path: Path) -> None:
    ref = table_ref(config(tmp_path, "none"), "shop", "Orders")
    assert ref.name is None and ref.location == f"{tmp_path}/shop/~orders" and str(ref) == ref.location


def test_with_hive_the_catalog_name(tmp_path: Path) -> None:
    ref = table_ref(config(tmp_path, "hive"), "Shop", "Orders")
    assert ref.name == "`shop`.`orders`" and ref.location == f"{tmp_path}/~shop/~orders"
    assert str(ref).startswith("`shop`.`orders` (hive catalog)")


def test_status_shows_the_last_registration(tmp_path: Path) -> None:
    from binlake.lake import Lake
    from binlake.registration.status import catalog_lines, catalog_status
    from binlake.registration.sync import SyncReport, write_report
    from binlake.status import to_prometheus

    glue = config(tmp_path, "glue")
    lake = Lake.from_config(glue)
    assert catalog_status(config(tmp_path, "none"), lake) is None
    assert "no registration yet" in catalog_lines(catalog_status(glue, lake))[0]
    write_report(lake, SyncReport("glue", "2026-12-01T09:00:00", "2026-12-01T09:00:01", registered=["shop.a"],
                                  refused=[{"table": "shop.a:b", "why": "not a Hive name"}],
                                  error="EndpointConnectionError: Could not connect"))
    status = catalog_status(glue, lake)
    lines = catalog_lines(status)
    assert lines[0] == "catalog: glue: 1 table(s) registered (2026-12-01T09:00:01)  FAILED"
    assert "EndpointConnectionError" in lines[1] and lines[2] == "  shop.a:b: not registered: not a Hive name"
    text = to_prometheus({"pipeline": "p", "capture": {}, "merge": {}, "tables": [], "catalog": status})
    assert 'binlake_catalog_ok{pipeline="p"} 0' in text and 'binlake_catalog_tables{pipeline="p"} 1' in text
    assert 'binlake_catalog_refused{pipeline="p"} 1' in text
