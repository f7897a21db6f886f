"""Registration in the AWS Glue Data Catalog (``lake.catalog: glue``), as Athena reads Delta tables.

A lake table becomes a Glue table of type ``EXTERNAL_TABLE`` whose parameters say Delta both ways
Athena and Spark-on-Glue look for it (``table_type=DELTA``, ``spark.sql.sources.provider=delta``),
with the location in the storage descriptor and in the SerDe's ``path`` (what Spark reads) and the
one placeholder column Spark itself writes for Delta tables (``col array<string>``): the real
schema is read from the Delta log by Athena, Trino and Spark, so the merge's column changes need no
update here. A database is created with its lake schema folder as ``LocationUri``.

Requests (:func:`table_input`, :func:`database_input` build them; ``tests/unit/test_registration_glue.py``
holds their recorded shapes): ``GetDatabase``/``CreateDatabase``, ``GetTable``, ``CreateTable``,
``UpdateTable`` (a table moved inside the lake), ``DeleteTable``. Credentials come from the AWS
chain (environment, profile, instance role) through boto3; binlake never reads nor logs them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from binlake.config import PipelineConfig
from binlake.registration.plan import CatalogName, Registered

PLACEHOLDER_COLUMNS = [{"Name": "col", "Type": "array<string>", "Comment": "schema in the Delta log"}]


def glue_location(uri: str) -> str:
    """A lake URI as Glue and Athena name it: ``s3a://b/k`` → ``s3://b/k``; a local path → ``file:…``."""
    if uri.startswith("s3a://"):
        return "s3://" + uri[len("s3a://"):]
    if uri.startswith("/"):
        return "file:" + uri
    return uri


def database_input(database: str, location: str) -> dict[str, Any]:
    return {"Name": database, "LocationUri": location, "Description": "lake schema replicated by binlake"}


def table_input(name: CatalogName, location: str) -> dict[str, Any]:
    """The ``TableInput`` of ``CreateTable`` / ``UpdateTable`` for a Delta table at ``location``."""
    return {
        "Name": name.table,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"EXTERNAL": "TRUE", "table_type": "DELTA", "spark.sql.sources.provider": "delta",
                       "classification": "delta", "binlake.registered": "true"},
        "StorageDescriptor": {
            "Columns": PLACEHOLDER_COLUMNS,
            "Location": location,
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                          "Parameters": {"serialization.format": "1", "path": location}},
        },
        "PartitionKeys": [],
    }


def glue_client(config: PipelineConfig) -> Any:
    """A boto3 Glue client: region ``lake.glue_region`` (else ``lake.s3.region``), endpoint
    ``lake.glue_endpoint`` if set, short timeouts and a few retries (registration is retried by
    the merge anyway)."""
    import boto3
    from botocore.config import Config

    lake = config.lake
    return boto3.client("glue", region_name=lake.glue_region or lake.s3.region, endpoint_url=lake.glue_endpoint,
                        config=Config(connect_timeout=10, read_timeout=30, retries={"max_attempts": 3}))


class GlueCatalog:
    """The Glue Data Catalog behind ``client`` (``catalog_id``: the account, None = the caller's)."""

    def __init__(self, client: Any, catalog_id: str | None = None) -> None:
        self.client = client
        self._catalog = {"CatalogId": catalog_id} if catalog_id else {}

    def lookup(self, names: Iterable[CatalogName]) -> dict[CatalogName, Registered]:
        held: dict[CatalogName, Registered] = {}
        for name in names:
            try:
                table = self.client.get_table(**self._catalog, DatabaseName=name.database, Name=name.table)["Table"]
            except self.client.exceptions.EntityNotFoundException:
                continue
            location = str((table.get("StorageDescriptor") or {}).get("Location", ""))
            held[name] = Registered(location, table.get("TableType") == "EXTERNAL_TABLE")
        return held

    def create_database(self, database: str, location: str) -> None:
        try:
            self.client.get_database(**self._catalog, Name=database)
            return
        except self.client.exceptions.EntityNotFoundException:
            pass
        with contextlib.suppress(self.client.exceptions.AlreadyExistsException):  # created meanwhile
            self.client.create_database(**self._catalog, DatabaseInput=database_input(database, location))

    def create(self, name: CatalogName, location: str) -> None:
        try:
            self.client.create_table(**self._catalog, DatabaseName=name.database,
                                     TableInput=table_input(name, location))
        except self.client.exceptions.AlreadyExistsException:
            self.replace(name, location)

    def replace(self, name: CatalogName, location: str) -> None:
        self.client.update_table(**self._catalog, DatabaseName=name.database, TableInput=table_input(name, location))

    def drop(self, name: CatalogName) -> None:
        with contextlib.suppress(self.client.exceptions.EntityNotFoundException):
            self.client.delete_table(**self._catalog, DatabaseName=name.database, Name=name.table)
