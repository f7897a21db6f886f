"""The full load: consistent, parallel, resumable snapshots of source tables into Delta tables.

Entry point: :func:`binlake.snapshot.job.main` (``spark-submit jobs/full_load.py --config …``).

Consistency guarantee (MariaDB, InnoDB tables)
-----------------------------------------------
A table is read as chunks of its primary key (:mod:`binlake.chunks`; the ranges tile the whole key
space). Chunk ``c`` is read by one statement inside its own ``START TRANSACTION WITH CONSISTENT
SNAPSHOT`` transaction, which also returns that transaction's ``Binlog_snapshot_file/position``
``P_c``. Hence, for every chunk:

1. its rows are **exactly** the source rows whose key lies in the chunk's range in the database
   state that contains the transactions whose commit ends at or before ``P_c``, and no others;
2. every one of those rows is written with ``_binlake_lsn = lsn(P_c)`` and
   ``_binlake_commit_ts`` = the UTC time of the read;
3. it is appended in one Delta commit tagged with its load and chunk id, at most once, and
   recorded in ``_binlake/snapshots/<schema>/<table>.json`` with ``P_c``.

No global lock is taken and chunks are read at different times, so the table is *not* a snapshot
at one point in time: it is a union of per-chunk snapshots with
``low_watermark <= min_lsn = min P_c <= max_lsn = max P_c``. The change stream completes it:
replaying, in lsn order, every change with ``lsn > min_lsn`` and applying a change to a key only
when its lsn is greater than the row's ``_binlake_lsn`` (a key absent from the lake is applied to;
deleting an absent key is a no-op) turns the table into exactly the source table as of the last
replayed position ``X >= max_lsn``. Changes with ``lsn <= min_lsn`` are in every chunk already.

A table's ``status`` becomes ``complete`` only after every chunk is committed; until then its Delta
table may hold some chunks (readers must check the state file). Non-transactional tables
(MyISAM, Aria, MEMORY) are not covered by consistent snapshots: they are loaded with a warning.
The per-chunk position needs MariaDB's ``Binlog_snapshot_*`` status variables; MySQL (which lacks
them) is refused by the pre-flight check.

Resume: a load that dies part-way is resumed by re-running the job: the stored plan is reused,
chunks recorded as committed are not read again, chunks committed to Delta but not yet recorded
(a crash between the two writes) are found by their commit metadata and recorded, and only the
rest are read.
"""
