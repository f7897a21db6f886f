"""The version check of binlake/sparkjvm.py (pure: installed versions passed in)."""

from __future__ import annotations

import logging

import pytest

from binlake.sparkjvm import UntestedVersionError, check_versions, major_minor, version_problem

TESTED_NOW = {"pyspark": "4.2.0", "delta-spark": "4.4.0"}


def test_major_minor_reads_release_and_dev_versions() -> None:
    assert major_minor("4.2.0") == (4, 2)
    assert major_minor("4.2.1.dev3") == (4, 2)
    assert major_minor("5") == (5, 0)


def test_the_tested_versions_pass_silently(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        check_versions(TESTED_NOW, allow_untested=False)
    assert caplog.records == []
    assert version_problem("pyspark", "4.2.7") is None


def test_another_minor_version_warns_with_both_versions(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        check_versions({**TESTED_NOW, "delta-spark": "4.5.1"}, allow_untested=False)
    assert len(caplog.records) == 1
    assert "delta-spark 4.5.1" in caplog.text and "4.4.x" in caplog.text


def test_another_major_version_is_refused_unless_allowed() -> None:
    with pytest.raises(UntestedVersionError, match=r"pyspark 5\.0\.0 .*BINLAKE_ALLOW_UNTESTED_SPARK=1"):
        check_versions({**TESTED_NOW, "pyspark": "5.0.0"}, allow_untested=False)
    check_versions({**TESTED_NOW, "pyspark": "5.0.0"}, allow_untested=True)


def test_the_installed_versions_are_the_tested_ones() -> None:
    check_versions(allow_untested=False)
