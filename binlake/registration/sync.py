"""``binlake catalog sync``: make the catalog hold exactly the live lake tables, and record how it went.

The steps (each logged):

1. read which lake tables exist — every target of ``_binlake/tables.json`` and of the full-load
   states (tables born in the stream have only the latter) — and, from each Delta log, whether it is
   live (:mod:`binlake.registration.deltalog`, :func:`binlake.registration.plan.is_dropped`);
2. ask the catalog what it holds under their names;
3. plan (:func:`binlake.registration.plan.plan`) and apply: databases, then each table. One table's
   failure does not stop the others;
4. write the outcome to ``_binlake/registration.json`` (:data:`binlake.lake.REGISTRATION_KEY`),
   which ``binlake status`` shows.

Idempotent: it reads everything it needs from the lake and the catalog each time, so running it
again (after a crash, a failed attempt, by hand) converges to the same catalog. It reads no source
and writes nothing in the lake but its own record.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from binlake.catalog import read_catalog
from binlake.config import CatalogKind, PipelineConfig
from binlake.lake import REGISTRATION_KEY, SNAPSHOTS_DIR, Lake, table_key
from binlake.progress import read_json
from binlake.registration.deltalog import table_properties
from binlake.registration.glue import glue_location
from binlake.registration.plan import (
    CREATE,
    DROP,
    REPLACE,
    Action,
    CatalogName,
    CatalogNameError,
    LakeTable,
    Registered,
    catalog_name,
    is_dropped,
    lake_table_names,
    plan,
)

log = logging.getLogger(__name__)


class Catalog(Protocol):
    """What registration needs of a catalog (:class:`~binlake.registration.hive.HiveCatalog`,
    :class:`~binlake.registration.glue.GlueCatalog`)."""

    def lookup(self, names: Iterable[CatalogName]) -> dict[CatalogName, Registered]: ...
    def create_database(self, database: str, location: str) -> None: ...
    def create(self, name: CatalogName, location: str) -> None: ...
    def replace(self, name: CatalogName, location: str) -> None: ...
    def drop(self, name: CatalogName) -> None: ...


@dataclass
class SyncReport:
    """The outcome of one sync, as written to ``_binlake/registration.json``."""

    catalog: str
    started_at: str
    finished_at: str | None = None
    registered: list[str] = field(default_factory=list)  # catalog names pointing into the lake now
    created: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)  # {"table", "why"}: needs a person
    failed: list[dict[str, str]] = field(default_factory=list)   # {"table", "error"}: retried
    error: str | None = None  # the whole sync failed (catalog unreachable, …): retried

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failed

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def location_of(kind: CatalogKind, lake: Lake, key: str = "") -> str:
    """Where the catalog must point for lake ``key``: Spark's URI for Hive, ``s3://…`` for Glue."""
    uri = lake.uri(key)
    return glue_location(uri) if kind == CatalogKind.GLUE else uri


def state_targets(lake: Lake) -> list[tuple[str, str]]:
    """The target (schema, table) of every full-load state in the lake."""
    targets = []
    for key in lake.list(SNAPSHOTS_DIR):
        data = read_json(lake, key) if key.endswith(".json") else None
        target = (data or {}).get("target") or {}
        if target.get("schema") and target.get("table"):
            targets.append((str(target["schema"]), str(target["table"])))
    return targets


def lake_tables(lake: Lake, kind: CatalogKind) -> list[LakeTable]:
    """Step 1: every lake table binlake made, with its location and whether it is live."""
    tables = []
    for schema, table in lake_table_names(read_catalog(lake), state_targets(lake)):
        key = table_key(schema, table)
        properties = table_properties(lake, key)
        tables.append(LakeTable(schema, table, location_of(kind, lake, key),
                                properties is not None and not is_dropped(properties)))
    return tables


def _names(kind: CatalogKind, tables: Iterable[LakeTable]) -> list[CatalogName]:
    names = set()
    for t in tables:
        with contextlib.suppress(CatalogNameError):
            names.add(catalog_name(kind, t.schema, t.table))
    return sorted(names)


def sync(kind: CatalogKind, lake: Lake, catalog: Catalog, now: Callable[[], datetime.datetime]) -> SyncReport:
    """Steps 1–4 (module docstring) with ``catalog``; never raises for a catalog failure: the
    report says what failed (and is written to the lake)."""
    report = SyncReport(kind.value, now().isoformat())
    try:
        log.info("catalog sync 1/4: reading the lake tables of %s", lake.uri())
        tables = lake_tables(lake, kind)
        log.info("catalog sync 2/4: asking the %s catalog about %d lake table(s)", kind.value, len(tables))
        current = catalog.lookup(_names(kind, tables))
        schema_folders = {t.schema: location_of(kind, lake, table_key(t.schema, t.table).rsplit("/", 1)[0])
                          for t in tables}
        actions = plan(kind, tables, current, location_of(kind, lake), schema_folders)
        log.info("catalog sync 3/4: %d change(s), %d table(s) refused", len(actions.actions), len(actions.refused))
        for database, location in actions.databases:
            catalog.create_database(database, location)
        for action in actions.actions:
            try:
                apply(catalog, action)
            except Exception as exc:  # one table's failure must not stop the others
                log.error("catalog: %s of %s failed: %s: %s", action.kind, action.name, type(exc).__name__, exc)
                report.failed.append({"table": str(action.name), "error": f"{type(exc).__name__}: {exc}"})
                continue
            log.info("catalog: %s %s → %s", action.kind, action.name, action.location)
            {CREATE: report.created, REPLACE: report.replaced, DROP: report.dropped}[action.kind].append(
                str(action.name))
        failed = {f["table"] for f in report.failed}
        report.registered = [str(n) for n in actions.registered if str(n) not in failed]
        report.refused = [{"table": table, "why": why} for table, why in actions.refused]
        for item in report.refused:
            log.error("catalog: %s not registered: %s", item["table"], item["why"])
    except Exception as exc:
        log.error("catalog sync failed: %s: %s", type(exc).__name__, exc)
        report.error = f"{type(exc).__name__}: {exc}"
    report.finished_at = now().isoformat()
    write_report(lake, report)
    log.info("catalog sync 4/4: %s — %d registered, %d created, %d replaced, %d dropped, %d refused, %d failed",
             "done" if report.ok else "FAILED", len(report.registered), len(report.created), len(report.replaced),
             len(report.dropped), len(report.refused), len(report.failed))
    return report


def apply(catalog: Catalog, action: Action) -> None:
    """Make one planned change."""
    if action.kind == CREATE:
        catalog.create(action.name, action.location)
    elif action.kind == REPLACE:
        catalog.replace(action.name, action.location)
    elif action.kind == DROP:
        catalog.drop(action.name)
    else:
        raise ValueError(f"unknown catalog action {action.kind!r}")


def write_report(lake: Lake, report: SyncReport) -> None:
    lake.put_bytes(REGISTRATION_KEY, (json.dumps(report.to_json(), indent=1, ensure_ascii=False) + "\n").encode())


def read_report(lake: Lake) -> dict[str, Any] | None:
    """The last sync's record (``None``: none yet)."""
    return read_json(lake, REGISTRATION_KEY)


def open_catalog(config: PipelineConfig) -> tuple[Catalog, Callable[[], None]]:
    """The configured catalog and how to close it (a Hive catalog is a SparkSession of its own)."""
    kind = config.lake.catalog
    if kind == CatalogKind.GLUE:
        from binlake.registration.glue import GlueCatalog, glue_client

        return GlueCatalog(glue_client(config), config.lake.glue_catalog_id), lambda: None
    if kind == CatalogKind.HIVE:
        from binlake.registration.hive import HiveCatalog, hive_settings
        from binlake.spark import build_session

        conf = {**hive_settings(config), **config.spark.conf}  # the user's settings win
        # local, one core: registration is metastore calls only, and needs no cluster
        spark = build_session(config.model_copy(update={"spark": config.spark.model_copy(
            update={"conf": conf, "master": "local[1]"})}), "catalog")
        return HiveCatalog(spark), spark.stop
    raise ValueError(f"lake.catalog {kind.value}: no catalog to open")


def run_sync(config: PipelineConfig, now: Callable[[], datetime.datetime] | None = None) -> SyncReport:
    """One sync with the configured catalog (opening it counts as part of it: a failure to open is
    recorded like any other)."""
    clock = now or (lambda: datetime.datetime.now(datetime.UTC))
    lake = Lake.from_config(config)
    if config.lake.catalog == CatalogKind.NONE:
        raise ValueError("lake.catalog is none: set lake.catalog: hive or glue to register the lake tables by name")
    try:
        catalog, close = open_catalog(config)
    except Exception as exc:
        log.error("catalog %s cannot be opened: %s: %s", config.lake.catalog.value, type(exc).__name__, exc)
        report = SyncReport(config.lake.catalog.value, clock().isoformat(), clock().isoformat(),
                            error=f"{type(exc).__name__}: {exc}")
        write_report(lake, report)
        return report
    try:
        return sync(config.lake.catalog, lake, catalog, clock)
    finally:
        close()
