"""Registration in Spark's session catalog backed by a Hive metastore (``lake.catalog: hive``).

Runs in the registration process's own SparkSession (built with
``spark.sql.catalogImplementation=hive``, :func:`hive_settings`), never in the merge's: a metastore
that is down or slow can then hold up registration only, not replication.

Each lake table becomes ``CREATE TABLE IF NOT EXISTS `db`.`t` USING DELTA LOCATION '<path>'``:
an *external* table (Spark makes every table with a ``LOCATION`` external: ``DROP TABLE`` removes
the name, never a file). The schema stays in the Delta log, so a column the merge adds or renames
is seen by the next query without re-registration. A database is created at its lake schema folder.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql import SparkSession

from binlake.config import PipelineConfig
from binlake.merge.sql import sql_string
from binlake.registration.plan import CatalogName, Registered, quote


def hive_settings(config: PipelineConfig) -> dict[str, str]:
    """The Spark settings of a session whose catalog is the configured Hive metastore."""
    settings = {"spark.sql.catalogImplementation": "hive"}
    if config.lake.hive_metastore_uris:
        settings["spark.hadoop.hive.metastore.uris"] = config.lake.hive_metastore_uris
    return settings


class HiveCatalog:
    """The session catalog of ``spark`` (a Hive-backed session, see :func:`hive_settings`)."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark

    def lookup(self, names: Iterable[CatalogName]) -> dict[CatalogName, Registered]:
        """What the catalog holds under each of ``names``."""
        databases = {row[0].lower() for row in self.spark.sql("SHOW DATABASES").collect()}
        held: dict[CatalogName, Registered] = {}
        for name in names:
            if name.database not in databases or not self.spark.catalog.tableExists(name.sql):
                continue
            rows = self.spark.sql(f"DESCRIBE TABLE EXTENDED {name.sql}").collect()
            detail = {str(row[0]): str(row[1]) for row in rows if row[0]}
            held[name] = Registered(detail.get("Location", ""), detail.get("Type", "").upper() == "EXTERNAL")
        return held

    def create_database(self, database: str, location: str) -> None:
        self.spark.sql(f"CREATE DATABASE IF NOT EXISTS {quote(database)} LOCATION {sql_string(location)} "
                       "COMMENT 'lake schema replicated by binlake'")

    def create(self, name: CatalogName, location: str) -> None:
        self.spark.sql(f"CREATE TABLE IF NOT EXISTS {name.sql} USING DELTA LOCATION {sql_string(location)}")

    def replace(self, name: CatalogName, location: str) -> None:
        self.drop(name)
        self.create(name, location)

    def drop(self, name: CatalogName) -> None:
        """Remove the name of an external table (its files stay); a managed table of that name (whose
        DROP would delete its files) is refused, whatever the plan said."""
        held = self.lookup([name]).get(name)
        if held is None:
            return
        if not held.external:
            raise RuntimeError(f"{name} is a managed table now: not dropped (its files would go with it)")
        self.spark.sql(f"DROP TABLE IF EXISTS {name.sql}")
