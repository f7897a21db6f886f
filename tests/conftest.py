"""Shared fixtures: one private MariaDB per test session, one database per test, one SparkSession per
session (created lazily), a loopback S3 server (s3proxy, persistent), and a helper that builds a pipeline config.

Integration tests never share state: each gets its own source database and lake directory.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from binlake.config import PipelineConfig, parse_config
from binlake.devdb import LocalMariaDB, free_port
from binlake.devs3 import LocalS3

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # Spark processes started by tests bind to loopback only
PEER_SQL = Path(__file__).resolve().parents[2] / "shared" / "peer-sql"
_db_counter = itertools.count()


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMariaDB]:
    """A MariaDB server (binlog ROW/FULL/FULL metadata, GTID, UTC) on its own datadir and port."""
    server = LocalMariaDB(tmp_path_factory.mktemp("mariadb") / "data", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def source_db(mariadb: LocalMariaDB, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty utf8mb4 database named after the test; dropped afterwards."""
    slug = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40].strip("_")
    name = f"t{next(_db_counter)}_{slug}"
    mariadb.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    yield name
    mariadb.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def lake_dir(tmp_path: Path) -> Path:
    path = tmp_path / "lake"
    path.mkdir()
    return path


def include_schema_rules(schema: str, table: str = "%") -> dict[str, Any]:
    """A DMS table mapping selecting ``schema.table`` (``%`` wildcards allowed)."""
    return {
        "rules": [
            {
                "rule-type": "selection",
                "rule-id": "1",
                "rule-name": "include",
                "object-locator": {"schema-name": schema, "table-name": table},
                "rule-action": "include",
            }
        ]
    }


@pytest.fixture
def make_config(mariadb: LocalMariaDB) -> Callable[..., PipelineConfig]:
    """Build a PipelineConfig for the test server: ``make_config(lake_root, mappings, **overrides)``."""

    def build(lake_root: str | Path, table_mappings: dict[str, Any], **sections: Any) -> PipelineConfig:
        data: dict[str, Any] = {
            "name": "test",
            "source": {"host": "127.0.0.1", "port": mariadb.port, "user": "root", "password_env": None,
                       "server_id": 1000 + next(_db_counter)},
            "lake": {"root": str(lake_root)},
            "table_mappings": table_mappings,
            "spark": {"master": "local[2]"},
        }
        for key, value in sections.items():
            merged = dict(data.get(key, {}))
            merged.update(value)
            data[key] = merged
        return parse_config(data, Path("test-config.yaml"))

    return build


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One local[2] SparkSession with Delta for the whole test session (JVM start is expensive)."""
    from binlake.spark import build_session

    root = tmp_path_factory.mktemp("spark-lake")
    config = parse_config(
        {"lake": {"root": str(root)}, "table_mappings": include_schema_rules("%"), "spark": {"master": "local[2]"}},
        Path("test-config.yaml"),
    )
    session = build_session(config, "tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalS3]:
    """A real S3-compatible server (s3proxy, objects kept on disk) on loopback, for the whole session.

    Yields a :class:`LocalS3`: ``.endpoint`` for ``lake.s3.endpoint``, ``.stop()`` / ``.start()``
    (or ``.stop(hard=True)``, a SIGKILL) to play an outage — objects survive —, ``.client()`` for
    boto3. Its session credentials (random access key, secret and session token) are put in the
    AWS environment variables for the session, so boto3 and s3a in child processes use them.
    """
    server = LocalS3(tmp_path_factory.mktemp("s3") / "objects", free_port())
    server.start()
    previous = {key: os.environ.get(key) for key in server.client_env()}
    os.environ.update(server.client_env())
    yield server
    server.stop()
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def s3_bucket(s3_server: LocalS3, request: pytest.FixtureRequest) -> str:
    """A fresh bucket named after the test on the session's S3 server (started again if a previous
    test left it stopped)."""
    s3_server.start()
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    return s3_server.create_bucket(f"t{next(_db_counter)}-{slug}"[:63].rstrip("-"))


def peer_sql_dir() -> Path:
    """``../shared/peer-sql`` beside the project root; tests using it skip when it is absent."""
    if not PEER_SQL.is_dir():
        pytest.skip(f"peer SQL corpora not found at {PEER_SQL} (they live in the team's shared/ folder, "
                    "not in a user's clone)")
    return PEER_SQL
