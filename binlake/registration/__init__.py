"""Lake tables by name: registration of every lake table in a catalog (``lake.catalog``).

* :mod:`~binlake.registration.plan` — what the catalog must hold (pure);
* :mod:`~binlake.registration.deltalog` — a Delta table's properties, read from its log;
* :mod:`~binlake.registration.hive` / :mod:`~binlake.registration.glue` — the two catalogs;
* :mod:`~binlake.registration.sync` — one sync (``binlake catalog sync``), its record in the lake;
* :mod:`~binlake.registration.runner` — the background process the full load and the merge start.
"""
