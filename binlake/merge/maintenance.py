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
   Then the table's tombstones (see :mod:`binlake.merge.tombstones`) are pruned — those older than
   the retention and below every reader that could replay an older change
   (:meth:`binlake.merge.cleanup.ChangelogCleanup.tombstone_floor`) — and VACUUMed; they are
   compacted with the table (step 1), so their file count stays flat.
3. After every batch, whatever ``merge.optimize_every_batches`` says, the change-log cleanup
   (:mod:`binlake.merge.cleanup`, at most once a minute): change-log files every reader has applied
   and older than ``changelog.retention_hours`` are removed.

The metrics table is compacted on the same cadence as the tables; once a day its rows older than
``merge.metrics_retention_days`` are deleted and it is VACUUMed. Progress is kept per table in
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

from binlake.config import ChangelogConfig, MergeConfig
from binlake.lake import MERGE_DIR, MERGE_METRICS_DIR, table_key, tombstones_key
from binlake.merge import tombstones
from binlake.merge.apply import MergeContext
from binlake.merge.cleanup import ChangelogCleanup
from binlake.merge.layout import is_metadata_column
from binlake.merge.metrics import JOINED, MERGED, TableMetrics, prune_metrics
from binlake.merge.target import is_delta_table

log = logging.getLogger(__name__)

STATE_KEY = f"{MERGE_DIR}/maintenance.json"
VACUUM_EVERY = datetime.timedelta(hours=24)
DELTA_MIN_RETENTION_HOURS = 168
CHECK_CONF = "spark.databricks.delta.retentionDurationCheck.enabled"
METRICS = "_binlake.merge.metrics"


class Maintenance:
    """Runs OPTIMIZE / VACUUM / tombstone pruning on the cadence of the module docstring."""

    def __init__(self, ctx: MergeContext, config: MergeConfig, capture_lsn: Callable[[], int | None],
                 changelog: ChangelogConfig | None = None) -> None:
        self.ctx = ctx
        self.config = config
        self.capture_lsn = capture_lsn
        self.cleanup = ChangelogCleanup(ctx.lake, (changelog or ChangelogConfig()).retention_hours,
                                        lambda: self.ctx.clock(), capture_lsn)
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

    def after_batch(self, batch_id: int, metrics: Iterable[TableMetrics],
                    lsn_range: tuple[int, int] | None = None) -> None:
        """Count the batch for every table it merged, and maintain the tables that are due; then
        the change-log cleanup (``lsn_range``: the lowest and highest record lsn the batch read,
        inclusive; ``None``: unknown, and the cleanup waits for a batch that says)."""
        try:
            self._tables_after_batch(batch_id, metrics)
        finally:
            if lsn_range is not None:
                self._guarded("change-log cleanup", self.cleanup.batch_finished, batch_id, lsn_range)

    def _tables_after_batch(self, batch_id: int, metrics: Iterable[TableMetrics]) -> None:
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
            if name != METRICS:
                self._guarded(f"OPTIMIZE tombstones of {name}", self._optimize, self._tombstones(name))
            entry.update(batches=0, optimized_at=self.ctx.clock().isoformat())
            self._save()
            if self._vacuum_due(entry):
                if name == METRICS:
                    self._guarded("metrics retention", self._prune_metrics, path)
                else:
                    self._guarded(f"prune tombstones of {name}", self._prune, entry["schema"], entry["table"], path)
                    self._guarded(f"VACUUM tombstones of {name}", self._vacuum, self._tombstones(name))
                self._guarded(f"VACUUM {path}", self._vacuum, path)
                entry["vacuumed_at"] = self.ctx.clock().isoformat()
                self._save()
        log.info("maintenance of %d table(s) took %.1f s", len(names), time.monotonic() - started)

    def _path(self, name: str) -> str:
        if name == METRICS:
            return self.ctx.lake.uri(MERGE_METRICS_DIR)
        entry = self.state[name]
        return self.ctx.lake.uri(table_key(entry["schema"], entry["table"]))

    def _tombstones(self, name: str) -> str:
        entry = self.state[name]
        return self.ctx.lake.uri(tombstones_key(entry["schema"], entry["table"]))

    def _vacuum_due(self, entry: dict[str, Any]) -> bool:
        last = entry.get("vacuumed_at")
        return last is None or self.ctx.clock() - datetime.datetime.fromisoformat(last) >= VACUUM_EVERY

    def _guarded(self, what: str, action: Callable[..., object], *args: object) -> None:
        try:
            action(*args)
        except Exception:
            log.exception("maintenance step failed: %s", what)

    def _optimize(self, path: str) -> None:
        if is_delta_table(self.ctx.spark, path):
            DeltaTable.forPath(self.ctx.spark, path).optimize().executeCompaction()

    def _prune_metrics(self, path: str) -> None:
        days = self.config.metrics_retention_days
        if days <= 0:
            return
        cutoff = (self.ctx.clock() - datetime.timedelta(days=days)).astimezone(datetime.UTC)
        pruned = prune_metrics(self.ctx.spark, path, cutoff)
        log.info("metrics: %d row(s) older than %d day(s) deleted", pruned, days)

    def _vacuum(self, path: str) -> None:
        hours = self.config.vacuum_retention_hours
        if hours <= 0 or not is_delta_table(self.ctx.spark, path):
            return
        check = self.ctx.spark.conf.get(CHECK_CONF, "true")
        if hours < DELTA_MIN_RETENTION_HOURS and str(check).lower() != "false":
            log.warning("VACUUM skipped: retention %d h is under Delta's %d h safety check (set %s=false in "
                        "spark.conf to allow it)", hours, DELTA_MIN_RETENTION_HOURS, CHECK_CONF)
            return
        DeltaTable.forPath(self.ctx.spark, path).vacuum(float(hours))

    def _prune(self, schema: str, table: str, target_path: str) -> None:
        path = self.ctx.lake.uri(tombstones_key(schema, table))
        below = self.cleanup.tombstone_floor()
        if below is None or not is_delta_table(self.ctx.spark, path):
            return
        key = [f.name for f in self.ctx.spark.read.format("delta").load(path).schema.fields
               if not is_metadata_column(f.name)]
        older_than = self.ctx.clock() - datetime.timedelta(hours=self.config.vacuum_retention_hours)
        pruned = tombstones.prune(self.ctx.spark, path, target_path, key, below, older_than)
        log.info("%s.%s: %d tombstone(s) pruned", schema, table, pruned)
