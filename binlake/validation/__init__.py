"""Data validation: does each lake table hold what its source table holds?

Like DMS data validation, but while replication runs. For each selected table, in order:

1. **Plan** — the full load's primary-key chunks (:func:`binlake.snapshot.planning.plan_chunks`).
2. **Checksums** (:mod:`.checksum`) — per chunk, the source computes ``(COUNT(*), SUM(row hash))``
   in MariaDB, inside a consistent snapshot at binlog position ``P`` (the chunk's lsn); the lake
   computes the same two numbers in Spark, each lake row assigned to its chunk by the key ranges.
   The row hash is the MD5 of a canonical text of the row that both sides build alike
   (:mod:`.canonical`). Chunks whose numbers agree are settled without reading a row.
3. **Rows** (:mod:`.rows`) — only for the chunks whose checksums differ: their rows are read and
   compared key by key; each differing row is *in flight* (the lake is at a different position
   than the snapshot that read it) or a real *mismatch / missing / extra*.

The checksum is only a shortcut; the row comparison is the truth. A table whose column types or
key order have no exact canonical form on both sides (FLOAT/DOUBLE columns; text keys under a
case-insensitive collation when the table has several chunks) is compared row by row in full, and
the report says so (``method`` ``rows`` and a note). ``method="rows"`` (``--method rows``) forces
that for every table. Tables without a primary key are one chunk, compared as multisets.

``--wait`` re-validates a table while it has rows in flight, up to the given seconds. The result
is a readable report and an exit status: 0 when every table matches, 1 when any table differs,
3 when no table differs but some rows were still in flight at the end.
"""

from binlake.validation.job import main, validate, validate_table
from binlake.validation.report import TableValidation, exit_status, format_report

__all__ = ["TableValidation", "exit_status", "format_report", "main", "validate", "validate_table"]
