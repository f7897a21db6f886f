"""Automatic maintenance of the lake tables the merge writes.

Every ``merge.optimize_every_batches`` batches (0 = never), after the batch's commits, for each
table merged since the last run:

1. ``OPTIMIZE`` (bin-packing compaction): frequent small MERGE commits leave many small files and
   deletion-vector files; compaction rewrites them into few large ones.
2. ``VACUUM`` with ``merge.vacuum_retention_hours``: removes files no longer referenced for longer
   than that. Readers (time travel, change data feed consumers, a lagging merge) need the files of
   the versions they read, so keep the retention above the slowest reader's lag. Delta refuses a
   retention under 168 h unless ``spark.databricks.delta.retentionDurationCheck.enabled=false`` is
   set (in ``spark.conf``); without it such a value skips VACUUM with a warning. 0 = never VACUUM.
3. Tombstone pruning (see :mod:`binlake.merge.tombstones`): tombstones older than the retention
   and below the capture checkpoint's lsn are removed.

The metrics table is compacted the same way. Maintenance runs in the merge's own driver between
batches, so it never races the merge's commits; a failure is logged and does not stop the merge.
Run it by hand with ``binlake.merge.maintenance.Maintenance(...).run(tables)``.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable, Iterable

from delta.tables import DeltaTable

from binlake.config import MergeConfig
from binlake.lake import MERGE_METRICS_DIR, table_key, tombstones_key
from binlake.merge import tombstones
from binlake.merge.apply import MergeContext
from binlake.merge.layout import is_metadata_column
from binlake.merge.metrics import JOINED, MERGED, TableMetrics
from binlake.merge.target import is_delta_table

log = logging.getLogger(__name__)

DELTA_MIN_RETENTION_HOURS = 168
CHECK_CONF = "spark.databricks.delta.retentionDurationCheck.enabled"


class Maintenance:
    """Runs OPTIMIZE / VACUUM / tombstone pruning every N batches (see the module docstring)."""

    def __init__(self, ctx: MergeContext, config: MergeConfig, capture_lsn: Callable[[], int | None]) -> None:
        self.ctx = ctx
        self.config = config
        self.capture_lsn = capture_lsn
        self.touched: set[tuple[str, str]] = set()

    def after_batch(self, batch_id: int, metrics: Iterable[TableMetrics]) -> None:
        self.touched.update((m.schema, m.table) for m in metrics if m.status in (MERGED, JOINED))
        every = self.config.optimize_every_batches
        if every <= 0 or (batch_id + 1) % every != 0:
            return
        tables, self.touched = sorted(self.touched), set()
        self.run(tables)

    def run(self, tables: Iterable[tuple[str, str]]) -> None:
        started = time.monotonic()
        tables = list(tables)
        paths = [self.ctx.lake.uri(table_key(s, t)) for s, t in tables]
        for (schema, table), path in zip(tables, paths, strict=True):
            self._guarded(f"OPTIMIZE {path}", self._optimize, path)
            self._guarded(f"VACUUM {path}", self._vacuum, path)
            self._guarded(f"prune tombstones of {schema}.{table}", self._prune, schema, table, path)
        metrics = self.ctx.lake.uri(MERGE_METRICS_DIR)
        if is_delta_table(self.ctx.spark, metrics):
            self._guarded(f"OPTIMIZE {metrics}", self._optimize, metrics)
        log.info("maintenance of %d table(s) took %.1f s", len(paths), time.monotonic() - started)

    def _guarded(self, what: str, action: Callable[..., object], *args: str) -> None:
        try:
            action(*args)
        except Exception:
            log.exception("maintenance step failed: %s", what)

    def _optimize(self, path: str) -> None:
        DeltaTable.forPath(self.ctx.spark, path).optimize().executeCompaction()

    def _vacuum(self, path: str) -> None:
        hours = self.config.vacuum_retention_hours
        if hours <= 0:
            return
        check = self.ctx.spark.conf.get(CHECK_CONF, "true")
        if hours < DELTA_MIN_RETENTION_HOURS and str(check).lower() != "false":
            log.warning("VACUUM skipped: retention %d h is under Delta's %d h safety check (set %s=false in "
                        "spark.conf to allow it)", hours, DELTA_MIN_RETENTION_HOURS, CHECK_CONF)
            return
        DeltaTable.forPath(self.ctx.spark, path).vacuum(float(hours))

    def _prune(self, schema: str, table: str, target_path: str) -> None:
        path = self.ctx.lake.uri(tombstones_key(schema, table))
        if not is_delta_table(self.ctx.spark, path):
            return
        below = self.capture_lsn()
        if below is None:
            return
        key = [f.name for f in self.ctx.spark.read.format("delta").load(path).schema.fields
               if not is_metadata_column(f.name)]
        older_than = self.ctx.clock() - datetime.timedelta(hours=self.config.vacuum_retention_hours)
        pruned = tombstones.prune(self.ctx.spark, path, target_path, key, below, older_than)
        log.info("%s.%s: %d tombstone(s) pruned", schema, table, pruned)
