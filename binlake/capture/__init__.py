"""The binlog capture: source binlog → change-log files in the lake (never imports pyspark)."""
