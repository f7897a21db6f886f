"""Reading a lake table the way the pipeline's config says people find it: by name in the catalog
when ``lake.catalog`` is set, by path otherwise (what the notebooks use).

* ``hive``: :func:`reading_session` is a SparkSession on the pipeline's metastore; the table is
  ``spark.table("`db`.`t`")`` — the same name every other Spark, Trino or Hive client uses;
* ``glue``: a plain Spark session cannot query Glue by name (that needs the AWS Glue Data Catalog
  client of EMR or Glue jobs), so the name is looked up in Glue and its location read — the same
  table Athena queries as ``db.t``;
* ``none``: the lake path (:func:`binlake.lake.table_key`).

The catalog name is :func:`binlake.registration.plan.catalog_name` of the lake schema and table.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from binlake.config import CatalogKind, PipelineConfig
from binlake.lake import Lake, table_key
from binlake.registration.plan import catalog_name


def reading_session(config: PipelineConfig, app: str) -> SparkSession:
    """The SparkSession to read the lake with: on the Hive metastore with ``lake.catalog: hive``."""
    from binlake.spark import build_session

    if config.lake.catalog != CatalogKind.HIVE:
        return build_session(config, app)
    from binlake.registration.hive import hive_settings

    conf = {**hive_settings(config), **config.spark.conf}
    return build_session(config.model_copy(update={"spark": config.spark.model_copy(update={"conf": conf})}), app)


@dataclass(frozen=True)
class TableRef:
    """A lake table as a reader finds it: ``name`` (the catalog name, None without a catalog) and
    ``location`` (the Delta table's path, for ``DeltaTable.forPath``, time travel, the change feed)."""

    name: str | None
    location: str
    how: str

    def read(self, spark: SparkSession) -> DataFrame:
        if self.name is not None and self.how == "hive":
            return spark.table(self.name)
        return spark.read.format("delta").load(self.location)

    def __str__(self) -> str:
        return f"{self.name} ({self.how} catalog) at {self.location}" if self.name else self.location


def table_ref(config: PipelineConfig, schema: str, table: str, spark: SparkSession | None = None) -> TableRef:
    """Where lake table ``schema.table`` (lake names) is found: see the module docstring. Raises
    ``LookupError`` naming the catalog table when the catalog does not hold it (run
    ``binlake catalog sync``)."""
    kind = config.lake.catalog
    path = Lake.from_config(config).uri(table_key(schema, table))
    if kind == CatalogKind.NONE:
        return TableRef(None, path, "path")
    name = catalog_name(kind, schema, table)
    if kind == CatalogKind.HIVE:
        if spark is not None and not spark.catalog.tableExists(name.sql):
            raise LookupError(f"{name} is not in the Hive metastore: run `binlake catalog sync --config …`")
        return TableRef(name.sql, path, "hive")
    from binlake.registration.glue import GlueCatalog, glue_client

    held = GlueCatalog(glue_client(config), config.lake.glue_catalog_id).lookup([name]).get(name)
    if held is None:
        raise LookupError(f"{name} is not in the Glue Data Catalog: run `binlake catalog sync --config …`")
    location = held.location
    if location.startswith("s3://"):
        location = "s3a://" + location[len("s3://"):]  # what Spark's s3a connector reads
    return TableRef(str(name), location.removeprefix("file:"), "glue")
