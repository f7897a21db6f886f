"""The streaming merge: applies the change log to the lake's Delta tables, in place, exactly once.

Module map (one concept each):

* :mod:`~binlake.merge.job` — wiring and the stream (``streaming/merge.py`` calls ``main``);
* :mod:`~binlake.merge.source` — the change log as a Spark stream / batch; :mod:`~binlake.merge.stream`
  — the stream's source (by lsn), :mod:`~binlake.merge.offsets` — its offsets and read plans,
  :mod:`~binlake.merge.migrate` — checkpoints of the file source it replaced;
* :mod:`~binlake.merge.batch` — the ``foreachBatch`` function;
* :mod:`~binlake.merge.summary`, :mod:`~binlake.merge.plan` — what a batch holds per table, and the
  ordered steps (rows between DDLs, DDLs) that apply it;
* :mod:`~binlake.merge.apply` — one table's steps; :mod:`~binlake.merge.ddlstep` — one DDL;
* :mod:`~binlake.merge.decode` — records → typed rows → latest per key;
* :mod:`~binlake.merge.upsert`, :mod:`~binlake.merge.scd2` — the MERGE for current-state and
  history tables; :mod:`~binlake.merge.tombstones` — deleted keys;
* :mod:`~binlake.merge.layout`, :mod:`~binlake.merge.ddl`, :mod:`~binlake.merge.target` — row
  layouts, DDL text, and schema changes of a lake table;
* :mod:`~binlake.merge.handoff` — from full load to stream; :mod:`~binlake.merge.txn` — idempotent
  commits; :mod:`~binlake.merge.metrics`, :mod:`~binlake.merge.maintenance`.

See docs/merge.md for the guarantees and the behaviour per DDL.
"""
