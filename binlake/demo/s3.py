"""The demo's S3 variant (``binlake demo --s3``, ``make demo-s3``): the same pipeline, its lake on a
private S3-compatible server on loopback (s3proxy, :mod:`binlake.devs3`) instead of ``./lake``.

The server keeps its objects under ``.run/demo/s3`` and checks signatures against random
credentials made for the run; the capture, full load, merge and validation find them, with a
session token, in the AWS environment variables — the same chain as on AWS, nothing in the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from binlake.devdb import free_port
from binlake.devs3 import LocalS3

DEMO_BUCKET = "binlake-demo"


def s3_variant(data: dict[str, Any], config_dir: Path, endpoint: str, bucket: str = DEMO_BUCKET) -> dict[str, Any]:
    """The demo config ``data`` (read from a file in ``config_dir``) with its lake at
    ``s3a://<bucket>/lake`` on ``endpoint``; a ``table_mappings_file`` is inlined, since the new
    config lives in another folder."""
    variant = {key: value for key, value in data.items() if key != "table_mappings_file"}
    if "table_mappings_file" in data:
        variant["table_mappings"] = json.loads((config_dir / str(data["table_mappings_file"])).read_text())
    variant["lake"] = {"root": f"s3a://{bucket}/lake", "s3": {"endpoint": endpoint, "path_style": True}}
    return variant


def start_demo_s3(run_dir: Path, config_path: Path) -> tuple[LocalS3, Path]:
    """Start the server (objects in ``run_dir/s3``), export its credentials to this process's
    environment (children inherit them), create the bucket and write the S3 variant of
    ``config_path`` into ``run_dir``; the server and the new config's path."""
    server = LocalS3(run_dir / "s3", free_port())
    server.start()
    os.environ.update(server.client_env())
    server.create_bucket(DEMO_BUCKET)
    data = yaml.safe_load(config_path.read_text())
    path = run_dir / "pipeline-s3.yaml"
    path.write_text(yaml.safe_dump(s3_variant(data, config_path.resolve().parent, server.endpoint)))
    return server, path
