"""The test tree's own rules: test modules have unique basenames (pytest imports them by basename),
and the capture never imports Spark."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_test_module_basenames_are_unique() -> None:
    names = Counter(path.name for path in (ROOT / "tests").rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_capture_and_pure_modules_import_no_spark() -> None:
    capture_side = [*(ROOT / "binlake" / "capture").glob("*.py"),
                    *(ROOT / "binlake" / name for name in ("changelog.py", "lake.py", "source.py", "cli.py",
                                                          "status.py", "progress.py"))]
    for path in capture_side:
        assert "pyspark" not in _imports(path), f"{path.name} imports pyspark: the capture must not start a JVM"
    for name in ("rules.py", "positions.py", "typemap.py", "chunks.py", "validation/canonical.py",
                 "validation/report.py"):
        io_libraries = {"pymysql", "boto3", "pyarrow", "pyspark", "pymysqlreplication", "socket", "subprocess"}
        assert not _imports(ROOT / "binlake" / name) & io_libraries, f"{name} must stay pure"
