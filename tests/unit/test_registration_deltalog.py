"""binlake.registration.deltalog: table properties from a Delta log — commits newest first, then the
newest checkpoint (classic Parquet, V2 JSON); ``None`` where no Delta table is. (That it agrees with
Spark's own reading of a real table: tests/integration/test_catalog_glue.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from binlake.lake import Lake
from binlake.registration.deltalog import DeltaLogError, table_properties

LOG = "shop/t/_delta_log"


def commit(root: Path, version: int, *actions: dict[str, object]) -> None:
    folder = root / LOG
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{version:020d}.json").write_text("\n".join(json.dumps(a) for a in actions) + "\n")


def metadata(**conf: str) -> dict[str, object]:
    return {"metaData": {"id": "x", "format": {"provider": "parquet"}, "schemaString": "{}", "configuration": conf}}


ADD = {"add": {"path": "part-0.parquet", "size": 1, "dataChange": True}}


def test_no_table_is_none(tmp_path: Path) -> None:
    assert table_properties(Lake(str(tmp_path)), "shop/t") is None


def test_the_newest_commit_with_metadata_wins(tmp_path: Path) -> None:
    commit(tmp_path, 0, {"protocol": {"minReaderVersion": 1}}, metadata(a="1"))
    commit(tmp_path, 1, ADD)
    commit(tmp_path, 2, metadata(a="2", b="x"))
    commit(tmp_path, 3, ADD)
    assert table_properties(Lake(str(tmp_path)), "shop/t") == {"a": "2", "b": "x"}


def test_a_parquet_checkpoint_is_read_when_no_later_commit_has_metadata(tmp_path: Path) -> None:
    commit(tmp_path, 11, ADD)  # the commits up to the checkpoint are gone (log cleanup)
    conf_type = pa.map_(pa.string(), pa.string())
    meta_type = pa.struct([("id", pa.string()), ("configuration", conf_type)])
    table = pa.table({"metaData": pa.array([None, {"id": "x", "configuration": [("binlake.merge.droppedLsn", "7")]}],
                                           type=meta_type)})
    pq.write_table(table, tmp_path / LOG / f"{10:020d}.checkpoint.parquet")
    commit(tmp_path, 9, metadata(stale="yes"))  # older than the checkpoint: not looked at
    assert table_properties(Lake(str(tmp_path)), "shop/t") == {"binlake.merge.droppedLsn": "7"}


def test_a_v2_json_checkpoint(tmp_path: Path) -> None:
    commit(tmp_path, 21, ADD)
    (tmp_path / LOG / f"{20:020d}.checkpoint.0f0e0d0c-0b0a-0908-0706-050403020100.json").write_text(
        json.dumps({"checkpointMetadata": {"version": 20}}) + "\n" + json.dumps(metadata(k="v")) + "\n")
    assert table_properties(Lake(str(tmp_path)), "shop/t") == {"k": "v"}


def test_a_log_without_metadata_is_refused(tmp_path: Path) -> None:
    commit(tmp_path, 5, ADD)
    with pytest.raises(DeltaLogError, match="no metaData"):
        table_properties(Lake(str(tmp_path)), "shop/t")
