"""Pipeline config: defaults, errors naming file and key, no inline secrets, reference generation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from binlake.config import ConfigError, PrepMode, load_config, reference_markdown

MAPPING = {"rules": [{"rule-type": "selection", "rule-id": "1", "object-locator": {"schema-name": "shop",
           "table-name": "%"}, "rule-action": "include"}]}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    return path


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    (tmp_path / "mapping.json").write_text(json.dumps(MAPPING))
    config = load_config(write(tmp_path, "lake:\n  root: /data/lake/\ntable_mappings_file: mapping.json\n"))
    assert config.lake.root == "/data/lake"
    assert not config.lake.is_s3
    assert config.full_load.target_table_prep_mode is PrepMode.DROP_AND_CREATE
    assert config.source.port == 3306
    assert config.table_mappings == MAPPING
    with pytest.raises(Exception, match="frozen"):
        config.source.port = 1  # type: ignore[misc]


def test_errors_name_file_key_and_problem(tmp_path: Path) -> None:
    mapping = json.dumps(MAPPING)
    path = write(tmp_path, f"lake: {{root: s3a://b/p}}\nsource: {{port: 99999}}\ntable_mappings: {mapping}\n")
    with pytest.raises(ConfigError, match=r"pipeline.yaml: source.port: Input should be less than or equal to 65535"):
        load_config(path)
    path = write(tmp_path, f"lake: {{root: /x}}\nsorce: {{}}\ntable_mappings: {json.dumps(MAPPING)}\n")
    with pytest.raises(ConfigError, match=r"sorce: Extra inputs are not permitted"):
        load_config(path)
    path = write(tmp_path, "lake: {root: /x}\ntable_mappings: {rules: []}\n")
    with pytest.raises(ConfigError, match=r"table_mappings: no selection rule includes"):
        load_config(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    path = write(tmp_path, "lake: {root: /x}\nfull_load: {target_table_prep_mode: APPEND}\n"
                 f"table_mappings: {json.dumps(MAPPING)}\n")
    with pytest.raises(ConfigError, match=r"full_load\.target_table_prep_mode"):
        load_config(path)


def test_secrets_are_refused_in_the_file(tmp_path: Path) -> None:
    mapping = json.dumps(MAPPING)
    path = write(tmp_path, f"lake: {{root: /x}}\nsource: {{password: hunter2}}\ntable_mappings: {mapping}\n")
    with pytest.raises(ConfigError, match=r"source\.password: secrets are not allowed") as error:
        load_config(path)
    assert "hunter2" not in str(error.value)


def test_password_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_PW", "s3cret")
    config = load_config(write(tmp_path, f"lake: {{root: /x}}\nsource: {{password_env: MY_PW}}\n"
                               f"table_mappings: {json.dumps(MAPPING)}\n"))
    assert config.source.password() == "s3cret"
    assert "s3cret" not in repr(config)
    (tmp_path / "pw").write_text("fromfile\n")
    config = load_config(write(tmp_path, f"lake: {{root: /x}}\nsource: {{password_file: {tmp_path / 'pw'}}}\n"
                               f"table_mappings: {json.dumps(MAPPING)}\n"))
    assert config.source.password() == "fromfile"


def test_reference_lists_every_key_with_default() -> None:
    reference = reference_markdown()
    for key in ("`source.host`", "`lake.root`", "`lake.s3.endpoint`", "`full_load.target_table_prep_mode`",
                "`capture.flush_seconds`", "`merge.trigger_seconds`", "`spark.master`"):
        assert key in reference
    expected = ('| `full_load.target_table_prep_mode` | one of: DROP_AND_CREATE, TRUNCATE_BEFORE_LOAD, DO_NOTHING '
                '| `"DROP_AND_CREATE"` |')
    assert expected in reference


def test_relative_lake_root_is_anchored_at_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "p.yaml"
    path.write_text(f"lake: {{root: ../lake}}\ntable_mappings: {json.dumps(MAPPING)}\n")
    assert load_config(path).lake.root == str(tmp_path / "lake")
