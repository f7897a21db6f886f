"""A delta-rs checkpoint on a local lake leaves no stale Hadoop checksum behind: Delta Spark writes
``_last_checkpoint`` with a ``.crc`` beside it, delta-rs rewrites the file and not the checksum, and
Spark's next read of ``_last_checkpoint`` would fail it (``ChecksumException``) and fall back to
listing the whole log. Read here through Hadoop's checksummed local file system, as Delta does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from binlake.merge import deltars
from binlake.merge.deltars import MergeClauses

pytestmark = pytest.mark.spark


def _read_through_hadoop(spark: Any, path: Path) -> str:
    jvm = spark._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(str(path))
    fs = hadoop_path.getFileSystem(spark._jsc.hadoopConfiguration())
    stream = fs.open(hadoop_path)
    try:
        return str(jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
    finally:
        stream.close()


def test_a_delta_rs_checkpoint_after_a_spark_one_leaves_last_checkpoint_readable(spark: Any, tmp_path: Path) -> None:
    path = tmp_path / "t"
    frame = spark.createDataFrame([(i, i) for i in range(3)], "id BIGINT, qty BIGINT")
    frame.write.format("delta").save(str(path))
    for version in range(1, 11):  # Delta Spark checkpoints version 10 and writes _last_checkpoint + its .crc
        spark.createDataFrame([(100 + version, version)], "id BIGINT, qty BIGINT").write.format("delta") \
            .mode("append").save(str(path))
    assert (path / deltars.LAST_CHECKPOINT_CRC).exists()
    clauses = MergeClauses(on="t.id = s.id", delete_when="false", update_when="true", insert_when="true",
                           assignments={"id": "s.id", "qty": "s.qty"})
    for version in range(11, 21):  # delta-rs commits 11 … 20 and checkpoints version 20
        table = deltars.open_table(str(path), None)
        assert table is not None
        deltars.merge_rows(table, pa.table({"id": pa.array([1], pa.int64()), "qty": pa.array([version], pa.int64())}),
                           clauses, "test-app", version)
    assert '"version":20' in _read_through_hadoop(spark, path / "_delta_log" / "_last_checkpoint").replace(" ", "")
    rows = {r["id"]: r["qty"] for r in spark.read.format("delta").load(str(path)).collect()}
    assert rows == {0: 0, 1: 20, 2: 2, **{100 + v: v for v in range(1, 11)}}
