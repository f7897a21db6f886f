"""The README's config reference is the generated one, so the docs cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

from binlake.config import reference_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_config_reference_is_generated() -> None:
    text = README.read_text()
    block = re.search(r"<!-- config-reference:start -->\n(.*?)\n<!-- config-reference:end -->", text, re.DOTALL)
    assert block is not None, "README lost its config-reference markers"
    assert block.group(1).strip() == reference_markdown().strip(), "run: binlake config-reference, paste into README"


def test_readme_names_the_two_commands_and_ci_runs_the_test_one() -> None:
    text = README.read_text()
    assert "make demo" in text and "make test" in text
    ci = (README.parent / ".ci" / "run").read_text()
    assert ci.strip().splitlines()[-1] == "make test"
