"""Automatic maintenance of the lake tables the merge writes.

After a batch, for each table the batch merged:

1. ``OPTIMIZE`` (bin-packing compaction) once the table was changed by
   ``merge.optimize_every_batches`` batches since its last compaction (0 = never): frequent small
   MERGE commits leave many small files and deletion-vector files; compaction rewrites them into
   few large ones.
2. At most once per :data:`VACUUM_EVERY` per table (the first a period after the merge first saw
   the table), together with an OPTIMIZE: ``VACUUM`` with
   ``merge.vacuum_retention_hours``, which removes files unreferenced for longer than that.
   Readers (time travel, change data feed consumers, a lagging merge) need the files of the
   versions they read, so keep the retention above the slowest reader's lag. Delta refuses a
   retention under 168 h unless ``spark.databricks.delta.retentionDurationCheck.enabled=false`` is
   set (in ``spark.conf``); without it such a value skips VACUUM with a warning. 0 = never VACUUM.
   Then tombstone pruning (see :mod:`binlake.merge.tombstones`): tombstones older than the
   retention and below the capture checkpoint's lsn are removed.

The metrics table is compacted on the same cadence. Progress is kept per table in
``_binlake/merge/maintenance.json`` right after each step, so a merge killed during maintenance does
not start it over (its batch is replayed, but the steps already done are not). Maintenance runs in
the merge's own driver between batches, so it never races a merge commit; a failure is logged and
does not stop the stream.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from delta.tables import DeltaTable

from binlake.config import MergeConfig
from binlake.lake import MERGE_DIR, MERGE_METRICS_DIR, table_key, tombstones_key
from binlake.merge import tombstones
from binlake.merge.apply import MergeContext
from binlake.merge.layout import is_metadata_column
from binlake.merge.metrics import JOINED, MERGED, TableMetrics
from binlake.merge.target import is_delta_table

log = logging.getLogger(__name__)

STATE_KEY = f"{MERGE_DIR}/maintenance.json"
VACUUM_EVERY = datetime.timedelta(hours=24)
DELTA_MIN_RETENTION_HOURS = 168
CHECK_CONF = "spark.databricks.delta.retentionDurationCheck.enabled"
METRICS = "_binlake.merge.metrics"


class Maintenance:
    """Runs OPTIMIZE / VACUUM / tombstone pruning on the cadence of the module docstring."""

    def __init__(self, ctx: MergeContext, config: MergeConfig, capture_lsn: Callable[[], int | None]) -> None:
        self.ctx = ctx
        self.config = config
        self.capture_lsn = capture_lsn
        self.state: dict[str, dict[str, Any]] = self._load()

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.ctx.lake.get_bytes(STATE_KEY))
        except (FileNotFoundError, ValueError):
            return {}
        return dict(data.get("tables", {}))

    def _save(self) -> None:
        body = json.dumps({"tables": self.state}, indent=1, sort_keys=True).encode()
        self.ctx.lake.put_bytes(STATE_KEY, body, durable=False)

    def after_batch(self, batch_id: int, metrics: Iterable[TableMetrics]) -> None:
        """Count the batch for every table it merged, and maintain the tables that are due."""
        every = self.config.optimize_every_batches
        if every <= 0:
            return
        tables = sorted({(m.schema, m.table) for m in metrics
                         if m.status in (MERGED, JOINED) and m.inserted + m.updated + m.deleted + m.ddl > 0})
        if not tables:
            return
        merged = [f"{schema}.{table}" for schema, table in tables]
        now = self.ctx.clock().isoformat()
        for (schema, table), name in zip(tables, merged, strict=True):
            entry = self.state.setdefault(name, {"vacuumed_at": now})  # first VACUUM a period after first sight
            entry.update(schema=schema, table=table)
        for name in [*merged, METRICS]:
            entry = self.state.setdefault(name, {})
            entry["batches"] = int(entry.get("batches", 0)) + 1
        self._save()
        due = [name for name in [*merged, METRICS] if self.state[name]["batches"] >= every]
        if due:
            self.run(due)

    def run(self, names: Iterable[str]) -> None:
        """Maintain the tables ``names`` (keys of the state: ``schema.table``, or :data:`METRICS`)
        now, recording each step as it is done."""
        started = time.monotonic()
        names = list(names)
        for name in names:
            path = self._path(name)
            if not is_delta_table(self.ctx.spark, path):
                continue
            entry = self.state.setdefault(name, {})
            self._guarded(f"OPTIMIZE {path}", self._optimize, path)
            entry.update(batches=0, optimized_at=self.ctx.clock().isoformat())
            self._save()
            if name != METRICS and self._vacuum_due(entry):
                self._guarded(f"VACUUM {path}", self._vacuum, path)
                self._guarded(f"prune tombstones of {name}", self._prune, entry["schema"], entry["table"], path)
                entry["vacuumed_at"] = self.ctx.clock().isoformat()
                self._save()
        log.info("maintenance of %d table(s) took %.1f s", len(names), time.monotonic() - started)

    def _path(self, name: str) -> str:
        if name == METRICS:
            return self.ctx.lake.uri(MERGE_METRICS_DIR)
        entry = self.state[name]
        return self.ctx.lake.uri(table_key(entry["schema"], entry["table"]))

    def _vacuum_due(self, entry: dict[str, Any]) -> bool:
        last = entry.get("vacuumed_at")
        return last is None or self.ctx.clock() - datetime.datetime.fromisoformat(last) >= VACUUM_EVERY

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
        below = self.capture_lsn()
        if below is None or not is_delta_table(self.ctx.spark, path):
            return
        key = [f.name for f in self.ctx.spark.read.format("delta").load(path).schema.fields
               if not is_metadata_column(f.name)]
        older_than = self.ctx.clock() - datetime.timedelta(hours=self.config.vacuum_retention_hours)
        pruned = tombstones.prune(self.ctx.spark, path, target_path, key, below, older_than)
        log.info("%s.%s: %d tombstone(s) pruned", schema, table, pruned)
