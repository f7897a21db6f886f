"""A reader of the lake by name, as a user's own Spark application would be: its own SparkSession on
the pipeline's Hive metastore (``binlake.registration.reading.reading_session``), ``SHOW TABLES`` and
``SELECT * FROM `db`.`t``` for every table of one database; prints ``{"tables": {name: [rows]}}``
(values as JSON, decimals and times as strings; binlake's ``_binlake_*`` columns left out).

Run by tests/integration/test_catalog_hive.py as ``python catalog_query.py`` with
``{"config": <PipelineConfig as JSON>, "database": "<db>"}`` on stdin.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from binlake.config import parse_config
from binlake.registration.reading import reading_session


def main() -> None:
    request = json.loads(sys.stdin.read())
    config = parse_config(request["config"], Path("<catalog-query>"))
    spark = reading_session(config, "catalog-query")  # a Hive-backed session on the pipeline's metastore
    database = request["database"]
    result = {}
    for row in spark.sql(f"SHOW TABLES IN `{database}`").collect():
        frame = spark.sql(f"SELECT * FROM `{database}`.`{row['tableName']}`")
        names = [f"`{c}`" for c in frame.columns if not c.startswith("_binlake_")]
        result[row["tableName"]] = [list(r) for r in frame.select(*names).collect()]
    spark.stop()
    print(json.dumps({"tables": result}, default=str))


if __name__ == "__main__":
    main()
