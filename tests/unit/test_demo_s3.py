"""The demo's S3 variant: the demo config with its lake moved to the loopback S3 server."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from binlake.config import parse_config
from binlake.demo.s3 import DEMO_BUCKET, s3_variant

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_the_s3_variant_moves_only_the_lake_and_inlines_the_mapping(tmp_path: Path) -> None:
    data = yaml.safe_load((CONF / "demo.yaml").read_text())
    variant = s3_variant(data, CONF, "http://127.0.0.1:9999")
    (tmp_path / "pipeline-s3.yaml").write_text(yaml.safe_dump(variant))  # another folder than conf/
    config = parse_config(yaml.safe_load((tmp_path / "pipeline-s3.yaml").read_text()), tmp_path / "pipeline-s3.yaml")
    assert config.lake.root == f"s3a://{DEMO_BUCKET}/lake" and config.lake.is_s3
    assert config.lake.s3.endpoint == "http://127.0.0.1:9999" and config.lake.s3.path_style
    assert config.table_mappings == json.loads((CONF / data["table_mappings_file"]).read_text())
    assert {k: v for k, v in variant.items() if k not in ("lake", "table_mappings")} == {
        k: v for k, v in data.items() if k not in ("lake", "table_mappings_file")}
