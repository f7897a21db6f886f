"""The loopback S3 server the S3 tests run on (s3proxy, binlake/devs3.py) is a real, persistent one:
objects survive a stop and a SIGKILL, signatures are checked, session tokens are accepted."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from binlake.config import S3Config
from binlake.devs3 import LocalS3
from binlake.lake import Lake

pytestmark = pytest.mark.s3


def test_objects_survive_a_stop_and_a_kill(s3_server: LocalS3, s3_bucket: str) -> None:
    lake = Lake(f"s3a://{s3_bucket}/lake", S3Config(endpoint=s3_server.endpoint, path_style=True))
    lake.put_bytes("_binlake/changelog/a.parquet", b"first")
    lake.put_bytes("_binlake/changelog/b.parquet", b"second")
    lake.put_bytes("db/t/_delta_log/00000000000000000000.json", b"{}")

    s3_server.stop()
    with pytest.raises(EndpointConnectionError):
        s3_server.client().head_object(Bucket=s3_bucket, Key="lake/_binlake/changelog/a.parquet")
    s3_server.start()
    assert lake.get_bytes("_binlake/changelog/a.parquet") == b"first"

    s3_server.stop(hard=True)
    s3_server.start()
    assert lake.list("_binlake/changelog") == ["_binlake/changelog/a.parquet", "_binlake/changelog/b.parquet"]
    assert lake.list("") == [*lake.list("_binlake/changelog"), "db/t/_delta_log/00000000000000000000.json"]
    assert lake.get_bytes("_binlake/changelog/b.parquet") == b"second"


def test_signatures_are_checked_and_session_tokens_accepted(s3_server: LocalS3, s3_bucket: str) -> None:
    import boto3

    client = s3_server.client()  # access key + secret + session token (X-Amz-Security-Token)
    client.put_object(Bucket=s3_bucket, Key="k", Body=b"v")
    assert client.get_object(Bucket=s3_bucket, Key="k")["Body"].read() == b"v"
    client.delete_objects(Bucket=s3_bucket, Delete={"Objects": [{"Key": "k"}]})
    assert "Contents" not in client.list_objects_v2(Bucket=s3_bucket)
    wrong = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name=s3_server.region,
                         aws_access_key_id=s3_server.access_key, aws_secret_access_key="not-the-secret")
    with pytest.raises(ClientError) as refused:
        wrong.list_objects_v2(Bucket=s3_bucket)
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_an_empty_directory_marker_is_seen_as_s3a_looks_for_it(s3_server: LocalS3, s3_bucket: str) -> None:
    """s3a's mkdirs writes ``dir/``; its getFileStatus then HEADs ``dir`` (must be 404, else it is a
    file) and lists prefix ``dir/`` (must return the marker, else the directory does not exist)."""
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="checkpoint/sources/0/", Body=b"")
    with pytest.raises(ClientError) as missing:
        client.head_object(Bucket=s3_bucket, Key="checkpoint/sources/0")
    assert missing.value.response["Error"]["Code"] == "404"
    listing = client.list_objects_v2(Bucket=s3_bucket, Prefix="checkpoint/sources/0/", Delimiter="/", MaxKeys=2)
    assert [item["Key"] for item in listing["Contents"]] == ["checkpoint/sources/0/"]
    lake = Lake(f"s3a://{s3_bucket}", S3Config(endpoint=s3_server.endpoint, path_style=True))
    assert lake.list("checkpoint") == []  # a marker is not a file
