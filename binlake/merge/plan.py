"""The ordered steps that apply one table's part of a micro-batch (pure).

A table's records in a batch are cut at its DDL records: rows before a DDL are merged with the
table as it was, the DDL is applied, and the rows after it are merged with the new layout.
Records at or below ``floor`` (the snapshot's lsn, or a later TRUNCATE/DROP) are left out: they
are already in the table, or were wiped by a later statement.

Each step is applied exactly once across restarts: step ``i`` of batch ``b`` commits with the
Delta transaction version :func:`txn_version` ``(b, i)``, and a step whose version the table has
already committed is skipped (see :mod:`binlake.merge.txn`).
"""

from __future__ import annotations

from dataclasses import dataclass

from binlake.merge.summary import DdlRecord, LayoutGroup, TableChanges

STEP_SLOTS = 1000
"""Transaction versions reserved per batch: a table's batch may have at most this many steps."""


@dataclass(frozen=True)
class DdlStep:
    """Apply one DDL control record."""

    record: DdlRecord


@dataclass(frozen=True)
class RowsStep:
    """Merge the row records with ``after_lsn < lsn`` (and ``lsn < before_lsn`` when set)."""

    after_lsn: int
    before_lsn: int | None
    groups: tuple[LayoutGroup, ...]

    @property
    def latest(self) -> LayoutGroup:
        """The layout group with the highest lsn: the table's layout at the end of the step."""
        return max(self.groups, key=lambda g: (g.max_lsn, g.min_lsn))

    @property
    def deletes(self) -> int:
        return sum(group.deletes for group in self.groups)

    @property
    def rows(self) -> int:
        return sum(group.rows for group in self.groups)


Step = DdlStep | RowsStep


def plan_steps(changes: TableChanges, floor: int) -> list[Step]:
    """The steps for ``changes``, skipping everything at or below lsn ``floor``.

    Layout groups must not span a DDL (see :meth:`TableChanges.straddling`).
    """
    steps: list[Step] = []
    low = floor
    ddls: list[DdlRecord | None] = [d for d in changes.ddls if d.lsn > floor]
    for ddl in [*ddls, None]:
        high = ddl.lsn if ddl is not None else None
        groups = tuple(g for g in changes.groups if g.max_lsn > low and (high is None or g.min_lsn < high))
        if groups:
            steps.append(RowsStep(low, high, groups))
        if ddl is not None:
            steps.append(DdlStep(ddl))
            low = ddl.lsn
    if len(steps) > STEP_SLOTS:
        raise ValueError(f"{changes.name.qualified}: {len(steps)} steps in one batch exceed {STEP_SLOTS}; "
                         "lower merge.max_files_per_batch")
    return steps


def txn_version(batch_id: int, step_index: int) -> int:
    """The Delta transaction version of step ``step_index`` of batch ``batch_id`` (strictly
    increasing over batches and steps, so Delta skips exactly the commits already made)."""
    if not 0 <= step_index < STEP_SLOTS:
        raise ValueError(f"step_index must be in 0..{STEP_SLOTS - 1}, got {step_index}")
    if batch_id < 0:
        raise ValueError(f"batch_id must be >= 0, got {batch_id}")
    return batch_id * STEP_SLOTS + step_index
