"""binlake.logs: no secret reaches a log line — known values masked wherever they appear, secret
fields masked by shape, chatty libraries kept quiet under --verbose."""

from __future__ import annotations

import io
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from binlake import logs
from binlake.config import SourceConfig
from binlake.logs import MASK, QUIET_LIBRARIES, RedactingFormatter, configure_logging, redact, register_secret

ACCESS_KEY = "AKIA" + secrets.token_hex(8).upper()
SECRET_KEY = secrets.token_urlsafe(30)
TOKEN = secrets.token_urlsafe(48)

# What botocore logs at DEBUG for one signed request (shape copied from botocore.endpoint).
BOTOCORE_REQUEST = (
    "Sending http request: <AWSPreparedRequest stream_output=False, method=PUT, "
    "url=http://127.0.0.1:9000/bkt/lake/_binlake/capture/checkpoint.json, headers={'User-Agent': b'Boto3/1.35', "
    f"'X-Amz-Date': b'20261201T093000Z', 'X-Amz-Security-Token': b'{TOKEN}', 'Authorization': "
    f"b'AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20261201/us-east-1/s3/aws4_request, "
    "SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=0f1e2d3c4b5a', 'Content-Length': '2'}>"
)


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    yield


def test_environment_credentials_are_masked_wherever_they_appear() -> None:
    line = redact(f"key {ACCESS_KEY} secret={SECRET_KEY}, token in a path /tmp/{TOKEN}/x")
    assert ACCESS_KEY not in line and SECRET_KEY not in line and TOKEN not in line
    assert line == f"key {MASK} secret={MASK}, token in a path /tmp/{MASK}/x"


def test_variables_named_like_secrets_are_masked_short_values_are_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_DB_PASSWORD", "Tr0ub4dor&3")
    monkeypatch.setenv("SESSION_TOKEN_TTL", "3600")  # named like a secret, but too short to be one
    monkeypatch.setenv("SECRET_ROTATION", "true")
    assert redact("connect with Tr0ub4dor&3: true after 3600 s") == f"connect with {MASK}: true after 3600 s"


def test_the_source_password_is_masked_once_read_from_a_file(tmp_path: Path) -> None:
    password = secrets.token_urlsafe(24)
    (tmp_path / "pw").write_text(password + "\n")
    assert password in redact(f"x {password}")  # not known yet
    assert SourceConfig(password_file=str(tmp_path / "pw"), password_env=None).password() == password
    assert redact(f"Access denied using {password}") == f"Access denied using {MASK}"


def test_botocore_request_headers_are_masked() -> None:
    line = redact(BOTOCORE_REQUEST, secrets=[])  # by shape alone, without knowing the values
    assert TOKEN not in line and "Signature=" not in line and ACCESS_KEY not in line
    assert f"'X-Amz-Security-Token': {MASK}, 'Authorization': {MASK}, 'Content-Length': '2'" in line
    assert "url=http://127.0.0.1:9000/bkt/lake/_binlake/capture/checkpoint.json" in line


@pytest.mark.parametrize(("text", "expected"), [
    ("Authorization: AWS4-HMAC-SHA256 Credential=AKIAX/2026/us-east-1/s3/aws4_request, SignedHeaders=host, "
     "Signature=abc\nHost: s3", f"Authorization: {MASK}\nHost: s3"),
    ("x-amz-security-token: FQoGZXIvYXdzEJr//////////wEaDM", f"x-amz-security-token: {MASK}"),
    ("GET /b/k?X-Amz-Credential=AKIA%2F2026&X-Amz-Signature=deadbeef&X-Amz-Security-Token=tok&partNumber=1",
     f"GET /b/k?X-Amz-Credential={MASK}&X-Amz-Signature={MASK}&X-Amz-Security-Token={MASK}&partNumber=1"),
    ("jdbc:mysql://db:3306/?user=loader&password=hunter22&useSSL=false",
     f"jdbc:mysql://db:3306/?user=loader&password={MASK}&useSSL=false"),
    ("{'user': 'loader', 'password': 'hunter22', 'fetchsize': '10000'}",
     f"{{'user': 'loader', 'password': {MASK}, 'fetchsize': '10000'}}"),
    ('{"spark.hadoop.fs.s3a.secret.key": "abc123", "spark.master": "local"}',
     f'{{"spark.hadoop.fs.s3a.secret.key": {MASK}, "spark.master": "local"}}'),
    ("aws_secret_access_key = wJalrXUtnFEMI", f"aws_secret_access_key = {MASK}"),
])
def test_secret_fields_are_masked_by_shape(text: str, expected: str) -> None:
    assert redact(text, secrets=[]) == expected


@pytest.mark.parametrize("text", [
    "source.password: secrets are not allowed in the config file; use source.password_env / source.password_file",
    "step 1/5: connecting to the source loader@127.0.0.1:3306 and checking it",
    "spark.hadoop.fs.s3a.aws.credentials.provider=software.amazon.awssdk.auth.credentials."
    "EnvironmentVariableCredentialsProvider",
])
def test_ordinary_lines_are_left_alone(text: str) -> None:
    assert redact(text, secrets=[]) == text


def test_a_longer_secret_containing_a_shorter_one_is_masked_whole() -> None:
    register_secret("abcd")
    register_secret("abcd-efgh-ijkl")
    assert redact("x abcd-efgh-ijkl y") == f"x {MASK} y"


def test_the_formatter_masks_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter(logs.LOG_FORMAT))
    logger = logging.getLogger("binlake.test_redaction")
    logger.addHandler(handler)
    try:
        logger.warning("signing with %s", SECRET_KEY)
        try:
            raise RuntimeError(f"refused: X-Amz-Security-Token: {TOKEN}")
        except RuntimeError:
            logger.exception("upload failed")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert SECRET_KEY not in output and TOKEN not in output
    assert f"signing with {MASK}" in output and "RuntimeError: refused" in output


def test_verbose_leaves_botocore_py4j_and_urllib3_quiet() -> None:
    root = logging.getLogger()
    before = (root.level, [(h, h.formatter) for h in root.handlers])
    try:
        configure_logging(verbose=True)
        assert root.level == logging.DEBUG
        for name, level in QUIET_LIBRARIES.items():
            assert logging.getLogger(name).getEffectiveLevel() == level >= logging.WARNING
        assert not logging.getLogger("botocore.endpoint").isEnabledFor(logging.DEBUG)
        assert all(isinstance(h.formatter, RedactingFormatter) for h in root.handlers)
    finally:
        root.setLevel(before[0])
        for handler, formatter in before[1]:
            handler.setFormatter(formatter)
