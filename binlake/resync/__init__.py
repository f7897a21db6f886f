"""Online resync: re-read one table (or some of its key ranges) and bring the lake table to the
source's content while the capture and the merge keep running, exactly once.

* :mod:`~binlake.resync.job` — ``binlake resync``: plan chunks, read each in its own consistent
  snapshot at lsn ``P`` (the full load's statement), deliver it as Parquet into the lake;
* :mod:`~binlake.resync.manifest` — the values (pure); :mod:`~binlake.resync.store` — the files;
* :mod:`~binlake.resync.ranges` — which lake rows lie in a chunk's key range (Spark SQL, exact or
  refused);
* :mod:`binlake.merge.resync` — the merge applies due chunks (``P <= applied lsn``), one tagged
  MERGE each, guarded by ``_binlake_lsn`` and tombstones;
* :mod:`~binlake.resync.repair` — ``binlake validate --repair``; :mod:`~binlake.resync.guard` —
  the full load's refusal to drop a table under a running merge.

See docs/resync.md for the argument that the table converges exactly.
"""
