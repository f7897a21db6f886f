"""The merge stream's lsn source on real Spark and Delta: a change-log file that a capture restart
wrote *below* the offset already read (its first records duplicate applied ones, the rest are new)
is read above the offset only — the new changes reach the lake, the duplicates are not read again —
and each batch's records come once, whichever files hold them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from delta.tables import DeltaTable
from merge_helpers import Source, load_table, merge_config, r, rows, run_merge

from binlake.lake import MERGE_METRICS_DIR, Lake

pytestmark = pytest.mark.spark


def test_a_re_written_file_below_the_offset_is_read_above_it_only(spark: Any, lake_dir: Path) -> None:
    lake = Lake(str(lake_dir))
    src = Source(lake)
    a = load_table(spark, lake, "a", [(1, "a", 1)], 100)
    config = merge_config(lake_dir)
    src.write(src.ins(110, "a", r(2, "b", 2)), src.upd(120, "a", (r(1, "a", 1), r(1, "a1", 10))))
    run_merge(spark, config)  # batch 0: the stream's offset is now lsn(120)
    assert rows(spark, a) == [(1, "a1", 10), (2, "b", 2)]
    # the capture died before its checkpoint passed 110 and wrote 120 again, then went on: 130, 140
    src.write(src.upd(120, "a", (r(1, "a", 1), r(1, "a1", 10))), src.ins(130, "a", r(3, "c", 3)),
              src.dele(140, "a", r(2, "b", 2)))
    run_merge(spark, config)  # batch 1 reads the new file over (lsn(120), lsn(140)] only
    assert rows(spark, a) == [(1, "a1", 10), (3, "c", 3)]
    metrics = spark.read.format("delta").load(lake.uri(MERGE_METRICS_DIR)).filter("batch_id = 1").collect()
    assert [(m["table"], m["records"], m["inserted"], m["deleted"]) for m in metrics] == [("a", 2, 1, 1)]
    assert DeltaTable.forPath(spark, a).history().filter("operation = 'MERGE'").count() == 2
