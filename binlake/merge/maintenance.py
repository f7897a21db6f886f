"""Automatic maintenance of the Delta tables the merge writes, between batches.

When (:mod:`binlake.merge.cadence`): a lake table has a *round* once it was changed by
``merge.optimize_every_batches`` batches since its last one (0 = never); the metrics table once that
many batches changed anything. A round:

1. ``OPTIMIZE`` (bin-packing compaction) of the lake table: frequent small MERGE commits leave many
   small files and deletion-vector files; compaction rewrites them into few large ones.
2. Compaction **and** VACUUM of binlake's own tables — the lake table's tombstones
   (:mod:`binlake.merge.tombstones`, one append per batch that deletes) and, in the metrics
   table's round, the metrics (one append per batch) — with their short retention,
   :data:`binlake.merge.deltars.INTERNAL_RETENTION` (10 minutes, also their log retention; why it is
   enough is said there). delta-rs does it (:func:`binlake.merge.deltars.compact_and_vacuum`: no
   Spark job, and Delta Spark's 168-hour check is not involved); a table delta-rs does not write
   (deletion vectors or column mapping, made by an older binlake) gets Spark's OPTIMIZE and a
   VACUUM at its ``delta.deletedFileRetentionDuration``, set to the same retention (Spark's check
   compares a VACUUM's retention with that property, so it passes). Their file count is therefore
   flat: at most ``optimize_every_batches`` appends since the last compaction, plus what was
   removed within the retention. Which tombstone *rows* may go is not decided here (step 3).

At most once per :data:`~binlake.merge.cadence.VACUUM_EVERY` per table (the first a period after
the merge first saw the table), a round also does the *daily* step:

3. The tombstones' row pruning — those older than ``merge.vacuum_retention_hours`` and below every
   reader that could replay an older change
   (:meth:`binlake.merge.cleanup.ChangelogCleanup.tombstone_floor`); for the metrics table, its rows
   older than ``merge.metrics_retention_days``. The files these deletes remove go at a later round
   (step 2), once older than the retention.
4. ``VACUUM`` of the lake table with ``merge.vacuum_retention_hours``, which removes files
   unreferenced for longer than that. Readers (time travel, change data feed consumers, a lagging
   merge) need the files of the versions they read, so keep the retention above the slowest
   reader's lag. Delta refuses a retention under 168 h unless
   ``spark.databricks.delta.retentionDurationCheck.enabled=false`` is set (in ``spark.conf``);
   without it such a value skips VACUUM with a warning. 0 = never VACUUM a lake table.

After every batch, whatever ``merge.optimize_every_batches`` says, the change-log cleanup
(:mod:`binlake.merge.cleanup`, at most once a minute): change-log files every reader has applied and
older than ``changelog.retention_hours`` are removed.

Progress is kept in ``_binlake/merge/maintenance.json`` right after each round and each daily step,
so a merge killed during maintenance does not start it over (its batch is replayed, but the steps
already recorded are not; every step is idempotent). Maintenance runs in the merge's own driver
between batches, so it never races a merge commit nor a read of the tombstones; a failure is logged
and does not stop the stream.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from collections.abc import Callable, Iterable

from delta.tables import DeltaTable

from binlake.config import ChangelogConfig, MergeConfig
from binlake.lake import MERGE_DIR, MERGE_METRICS_DIR, table_key, tombstones_key
from binlake.merge import cadence, deltars, tombstones
from binlake.merge.apply import MergeContext
from binlake.merge.cadence import METRICS
from binlake.merge.cleanup import ChangelogCleanup
from binlake.merge.layout import is_metadata_column
from binlake.merge.metrics import JOINED, MERGED, TableMetrics, prune_metrics
from binlake.merge.target import is_delta_table, set_properties

log = logging.getLogger(__name__)

STATE_KEY = f"{MERGE_DIR}/maintenance.json"
DELTA_MIN_RETENTION_HOURS = 168
CHECK_CONF = "spark.databricks.delta.retentionDurationCheck.enabled"


class Maintenance:
    """Runs the rounds and daily steps of the module docstring (``internal_retention``: the
    retention of binlake's own tables, :data:`~binlake.merge.deltars.INTERNAL_RETENTION`)."""

    def __init__(self, ctx: MergeContext, config: MergeConfig, capture_lsn: Callable[[], int | None],
                 changelog: ChangelogConfig | None = None,
                 internal_retention: datetime.timedelta = deltars.INTERNAL_RETENTION) -> None:
        self.ctx = ctx
        self.config = config
        self.capture_lsn = capture_lsn
        self.internal_retention = internal_retention
        self.cleanup = ChangelogCleanup(ctx.lake, (changelog or ChangelogConfig()).retention_hours,
                                        lambda: self.ctx.clock(), capture_lsn)
        self.state: cadence.State = self._load()

    def _load(self) -> cadence.State:
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
        """Count the batch for every table it changed, and maintain the tables that are due; then
        the change-log cleanup (``lsn_range``: the lowest and highest record lsn the batch read,
        inclusive; ``None``: unknown, and the cleanup waits for a batch that says)."""
        try:
            changed = [(m.schema, m.table) for m in metrics
                       if m.status in (MERGED, JOINED) and m.inserted + m.updated + m.deleted + m.ddl > 0]
            self.state, due = cadence.count_batch(self.state, changed, self.ctx.clock(),
                                                  self.config.optimize_every_batches)
            if changed and self.config.optimize_every_batches > 0:
                self._save()
            if due:
                self.run(due)
        finally:
            if lsn_range is not None:
                self._guarded("change-log cleanup", self.cleanup.batch_finished, batch_id, lsn_range)

    def run(self, names: Iterable[str]) -> None:
        """A round for each of ``names`` (keys of the state: ``schema.table``, or :data:`METRICS`)
        now, with its daily step where due, recording each as it is done."""
        started = time.monotonic()
        names = list(names)
        for name in names:
            path = self._path(name)
            if not is_delta_table(self.ctx.spark, path):
                continue
            daily = cadence.daily_due(self.state.get(name, {}), self.ctx.clock())
            if name == METRICS:
                if daily:
                    self._guarded("metrics retention", self._prune_metrics, path)
                self._guarded("compact and VACUUM the metrics", self._internal, path)
            else:
                tombs = self._tombstones(name)
                if daily:
                    self._guarded(f"prune tombstones of {name}", self._prune, tombs, path)
                self._guarded(f"compact and VACUUM tombstones of {name}", self._internal, tombs)
                self._guarded(f"OPTIMIZE {path}", self._optimize, path)
            self.state[name] = cadence.round_done(self.state.get(name, {}), self.ctx.clock())
            self._save()
            if daily:
                if name != METRICS:
                    self._guarded(f"VACUUM {path}", self._vacuum, path)
                self.state[name] = cadence.daily_done(self.state[name], self.ctx.clock())
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

    def _guarded(self, what: str, action: Callable[..., object], *args: object) -> None:
        try:
            action(*args)
        except Exception:
            log.exception("maintenance step failed: %s", what)

    def _optimize(self, path: str) -> None:
        DeltaTable.forPath(self.ctx.spark, path).optimize().executeCompaction()

    def _internal(self, path: str) -> None:
        """Compact and VACUUM one of binlake's own tables with :attr:`internal_retention`: by
        delta-rs where it writes the table, else by Spark (module docstring, step 2)."""
        lake = self.ctx.lake
        table = deltars.open_table(path, lake.s3_config) if deltars.check_version() else None
        if table is not None and table.writable:
            done = deltars.compact_and_vacuum(table, self.internal_retention)
            log.info("%s: %d file(s) compacted into %d, %d removed file(s) deleted", path,
                     done.compacted, done.written, done.vacuumed)
            return
        if table is None and not is_delta_table(self.ctx.spark, path):
            return
        wanted = deltars.internal_properties(self.internal_retention)
        delta = DeltaTable.forPath(self.ctx.spark, path)
        current = delta.detail().collect()[0]["properties"] or {}
        if any(current.get(k) != v for k, v in wanted.items()):
            set_properties(self.ctx.spark, path, wanted)
        delta.optimize().executeCompaction()
        delta.vacuum()  # at the table's delta.deletedFileRetentionDuration, just set

    def _prune_metrics(self, path: str) -> None:
        days = self.config.metrics_retention_days
        if days <= 0:
            return
        cutoff = (self.ctx.clock() - datetime.timedelta(days=days)).astimezone(datetime.UTC)
        pruned = prune_metrics(self.ctx.spark, path, cutoff)
        log.info("metrics: %d row(s) older than %d day(s) deleted", pruned, days)

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

    def _prune(self, path: str, target_path: str) -> None:
        below = self.cleanup.tombstone_floor()
        if below is None or not is_delta_table(self.ctx.spark, path):
            return
        key = [f.name for f in self.ctx.spark.read.format("delta").load(path).schema.fields
               if not is_metadata_column(f.name)]
        older_than = self.ctx.clock() - datetime.timedelta(hours=self.config.vacuum_retention_hours)
        pruned = tombstones.prune(self.ctx.spark, path, target_path, key, below, older_than)
        log.info("%s: %d tombstone(s) pruned", path, pruned)
