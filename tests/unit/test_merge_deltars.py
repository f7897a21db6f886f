"""The delta-rs adapter's pure parts (binlake.merge.deltars): which protocols it writes, how it
reaches S3 (no credential in its options), the version check."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from binlake.config import S3Config
from binlake.merge.deltars import _unwritable, check_version, quote, storage_options, table_uri


@dataclass
class Protocol:
    min_reader_version: int
    min_writer_version: int
    writer_features: list[str] | None = None
    reader_features: list[str] | None = None


@pytest.mark.parametrize("protocol", [
    Protocol(1, 2), Protocol(1, 4),
    Protocol(3, 7, ["timestampNtz", "changeDataFeed", "invariants", "appendOnly"], ["timestampNtz"]),
    Protocol(1, 7, ["changeDataFeed"]),
])
def test_broad_tables_are_written_by_delta_rs(protocol: Protocol) -> None:
    assert _unwritable(protocol) is None


@pytest.mark.parametrize(("protocol", "named"), [
    (Protocol(3, 7, ["deletionVectors", "columnMapping"], ["deletionVectors", "columnMapping"]), "deletionVectors"),
    (Protocol(3, 7, ["typeWidening"], ["typeWidening"]), "typeWidening"),
    (Protocol(2, 5), "column mapping"),
    (Protocol(3, 7, ["changeDataFeed"], ["v2Checkpoint"]), "v2Checkpoint"),
])
def test_modern_tables_stay_with_spark(protocol: Protocol, named: str) -> None:
    problem = _unwritable(protocol)
    assert problem is not None and named in problem


def test_s3_options_name_the_endpoint_and_never_a_credential() -> None:
    options = storage_options(S3Config(endpoint="http://127.0.0.1:9000", region="eu-west-1", path_style=True))
    assert options == {"AWS_REGION": "eu-west-1", "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
                       "AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_ALLOW_HTTP": "true",
                       "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false"}
    assert storage_options(None) == {}
    assert table_uri("s3a://bucket/lake/shop/t") == "s3://bucket/lake/shop/t"
    assert table_uri("/data/lake/shop/t") == "/data/lake/shop/t"


def test_identifiers_keep_case_and_any_character() -> None:
    assert quote('We"ird') == '"We""ird"'


def test_another_major_version_turns_the_path_off() -> None:
    assert check_version("1.6.6")
    assert not check_version("2.0.0")
