"""``spark-submit delta_dump.py --config C --table schema/table``: print the Delta table's rows as
JSON lines (columns without binlake metadata, sorted) — used to read an S3 lake from a test."""

from __future__ import annotations

import argparse
import json

from binlake.config import load_config
from binlake.spark import build_session


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--table", required=True)
    args = parser.parse_args()
    config = load_config(args.config)
    spark = build_session(config, "dump")
    frame = spark.read.format("delta").load(f"{config.lake.root}/{args.table}")
    columns = [c for c in frame.columns if not c.startswith("_binlake_")]
    for row in frame.select(*columns).orderBy(*columns).collect():
        print("ROW " + json.dumps(row.asDict(), default=str))
    spark.stop()


if __name__ == "__main__":
    main()
