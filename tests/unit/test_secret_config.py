"""The pipeline file never holds a secret: secret-bearing spark.conf settings are refused at parse time,
naming the key and where the secret belongs instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from binlake.config import ConfigError, parse_config


def config_with_spark_conf(conf: dict[str, str]) -> dict[str, Any]:
    include = {"rule-type": "selection", "rule-id": "1", "rule-name": "all", "rule-action": "include",
               "object-locator": {"schema-name": "shop", "table-name": "%"}}
    return {"lake": {"root": "s3a://bucket/lake"}, "table_mappings": {"rules": [include]}, "spark": {"conf": conf}}


@pytest.mark.parametrize("key", [
    "spark.hadoop.fs.s3a.access.key",
    "spark.hadoop.fs.s3a.secret.key",
    "spark.hadoop.fs.s3a.session.token",
    "spark.hadoop.fs.s3a.bucket.lake.secret.key",
])
def test_s3_credentials_in_spark_conf_are_refused_naming_the_aws_chain(key: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(config_with_spark_conf({key: "x"}), Path("p.yaml"))
    message = str(refused.value)
    assert f"p.yaml: spark.conf.{key}: holds a secret" in message
    assert "AWS_SECRET_ACCESS_KEY" in message and "AWS_SESSION_TOKEN" in message and "AWS_PROFILE" in message


@pytest.mark.parametrize("key", [
    "spark.hadoop.javax.jdo.option.ConnectionPassword",
    "spark.ssl.keyStorePassword",
    "spark.authenticate.secret",
    "spark.hadoop.fs.s3a.encryption.key",
    "spark.hadoop.fs.azure.account.key.acct.dfs.core.windows.net",
    "spark.kubernetes.authenticate.oauthToken",
])
def test_other_secret_settings_are_refused_naming_where_they_belong(key: str) -> None:
    with pytest.raises(ConfigError, match=r"source\.password_env / source\.password_file"):
        parse_config(config_with_spark_conf({key: "x"}), Path("p.yaml"))


def test_settings_that_name_providers_or_files_are_accepted() -> None:
    conf = {
        "spark.hadoop.fs.s3a.aws.credentials.provider":
            "software.amazon.awssdk.auth.credentials.ProfileCredentialsProvider",
        "spark.hadoop.fs.s3a.delegation.token.binding": "org.apache.hadoop.fs.s3a.auth.delegation.SessionTokenBinding",
        "spark.kubernetes.authenticate.oauthTokenFile": "/var/run/token",
        "spark.sql.shuffle.partitions": "4",
    }
    assert parse_config(config_with_spark_conf(conf), Path("p.yaml")).spark.conf == conf


def test_spark_settings_for_an_s3_lake_name_credential_providers_never_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    from binlake import spark

    monkeypatch.setattr(spark, "find_jars", lambda prefixes: [])
    config = parse_config(config_with_spark_conf({}), Path("p.yaml"))
    settings = spark.session_settings(config, "test")
    assert "EnvironmentVariableCredentialsProvider" in settings["spark.hadoop.fs.s3a.aws.credentials.provider"]
    assert not [key for key in settings if "access.key" in key or "secret" in key or "token" in key]
    smuggled = config.model_copy(update={"spark": config.spark.model_copy(
        update={"conf": {"spark.hadoop.fs.s3a.session.token": "x"}})})  # built in code, not parsed
    with pytest.raises(ValueError, match=r"spark\.hadoop\.fs\.s3a\.session\.token holds a secret"):
        spark.session_settings(smuggled, "test")
