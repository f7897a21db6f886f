"""The ordered steps that apply one table's part of a micro-batch, and their Delta transactions (pure).

A table's records in a batch are cut at its DDL records: rows before a DDL are merged with the
table as it was, the DDL is applied, and the rows after it are merged with the new layout.
Records at or below ``floor`` (the snapshot's lsn, or a TRUNCATE/DROP applied by an *earlier*
batch) are left out: they are already in the table, or were wiped by a later statement.

Current-state tables only need what follows the batch's last *wipe* (TRUNCATE, DROP, CREATE OR
REPLACE): rows before it are deleted by it, so they are not merged at all, and the earlier wipes
are folded into it (:attr:`DdlStep.folded`); column DDL before it is still applied, in order. A
staging table truncated and refilled thousands of times in one batch is therefore two steps. SCD2
tables keep every step (the versions between two wipes are history).

The rows between two DDLs are cut further into steps of at most :class:`~binlake.merge.bounds.Bounds`
records and bytes (:func:`split_rows`), at lsns between layout groups (the summary's lsn buckets),
so one MERGE never holds more than that however large the backlog — even within one change-log
file. The cuts are a function of the summary and the bounds, which a replay takes from its first
attempt (:func:`binlake.merge.bounds.bounds_for_batch`).

Replay stability: :func:`plan_steps` is a pure function of the batch's records (through
:class:`TableChanges`), the floor the table had *before* the batch and whether the table keeps
history (and the bounds the batch first ran with) — never of what the batch's own commits
wrote. Step ``i`` of batch ``b`` commits with :func:`step_txn` ``(app_id, b, i)``, so the same
step gets the same Delta transaction on every attempt, and a step whose transaction the table
already has is skipped (see :mod:`binlake.merge.txn`). There is no limit on the number of steps: steps beyond
:data:`STEP_SLOTS` use an app id of their own per part of :data:`STEP_SLOTS` steps.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

from binlake.merge.bounds import UNBOUNDED, Bounds
from binlake.merge.summary import DdlRecord, LayoutGroup, TableChanges

STEP_SLOTS = 1000
"""Transaction versions reserved per batch and app id: steps ``0..999`` of batch ``b`` are versions
``b * 1000 + i`` of the merge's app id, steps ``1000..1999`` the same versions of ``<app id>#1``…"""


@dataclass(frozen=True)
class DdlStep:
    """Apply one DDL control record; ``folded``: earlier wipes of the batch this wipe stands for
    (their rows are gone with it)."""

    record: DdlRecord
    folded: tuple[DdlRecord, ...] = ()

    @property
    def dropped_lsn(self) -> int | None:
        """Lsn of the last DROP TABLE (or RENAME away) among the record and the wipes folded into it."""
        drops = [d.lsn for d in (*self.folded, self.record) if d.kind.upper() == "DROP" or d.gone]
        return max(drops, default=None)


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


@dataclass(frozen=True)
class StepTxn:
    """The Delta transaction ``(txnAppId, txnVersion)`` a step commits with."""

    app_id: str
    version: int


def plan_steps(changes: TableChanges, floor: int, history: bool = False, limits: Bounds = UNBOUNDED) -> list[Step]:
    """The steps for ``changes``, skipping everything at or below lsn ``floor``; ``history``: the
    table keeps history (SCD2), so rows before a wipe are merged too; rows steps of at most
    ``limits`` records and bytes each (:func:`split_rows`).

    Layout groups must not span a DDL (see :meth:`TableChanges.straddling`).
    """
    ddls = [d for d in changes.ddls if d.lsn > floor]
    low = floor
    steps: list[Step] = []
    wipes = [d for d in ddls if d.wipes]
    if wipes and not history:
        last = wipes[-1]
        steps = [DdlStep(d) for d in ddls if d.lsn < last.lsn and not d.wipes]
        steps.append(DdlStep(last, tuple(wipes[:-1])))
        ddls = [d for d in ddls if d.lsn > last.lsn]
        low = last.lsn
    bounds = [d.lsn for d in ddls]
    segments: list[list[LayoutGroup]] = [[] for _ in range(len(ddls) + 1)]
    for g in changes.groups:  # one pass: a group lies in the segment of its highest lsn
        if g.max_lsn > low:
            segments[bisect_left(bounds, g.max_lsn)].append(g)
    for ddl, groups in zip([*ddls, None], segments, strict=True):
        high = ddl.lsn if ddl is not None else None
        if groups:
            steps.extend(split_rows(RowsStep(low, high, tuple(groups)), limits))
        if ddl is not None:
            steps.append(DdlStep(ddl))
            low = ddl.lsn
    return steps


def split_rows(step: RowsStep, limits: Bounds) -> list[RowsStep]:
    """``step`` as consecutive steps of at most ``limits`` records and bytes each (one group alone
    may exceed them), covering the same lsns in order: each cut is at the lowest lsn of a group
    above every lsn of the groups before it, which becomes the exclusive ``before_lsn`` of one
    step and ``after_lsn + 1`` of the next. Groups that overlap in lsn are never separated."""
    ordered = sorted(step.groups, key=lambda g: (g.min_lsn, g.max_lsn))
    parts: list[RowsStep] = []
    current: list[LayoutGroup] = []
    low, records, size, reach = step.after_lsn, 0, 0, step.after_lsn
    for group in ordered:
        if current and group.min_lsn > reach and limits.exceeded_by(records + group.rows, size + group.bytes):
            parts.append(RowsStep(low, group.min_lsn, tuple(current)))
            current, low, records, size = [], group.min_lsn - 1, 0, 0
        current.append(group)
        records, size, reach = records + group.rows, size + group.bytes, max(reach, group.max_lsn)
    if not parts:
        return [step]
    parts.append(RowsStep(low, step.before_lsn, tuple(current)))
    return [RowsStep(p.after_lsn, p.before_lsn, tuple(sorted(p.groups, key=lambda g: (g.max_lsn, g.min_lsn))))
            for p in parts]


def step_txn(app_id: str, batch_id: int, step_index: int) -> StepTxn:
    """The transaction of step ``step_index`` of batch ``batch_id``: for each app id the versions
    strictly increase over batches and steps, so Delta skips exactly the commits already made."""
    if step_index < 0:
        raise ValueError(f"step_index must be >= 0, got {step_index}")
    if batch_id < 0:
        raise ValueError(f"batch_id must be >= 0, got {batch_id}")
    part, slot = divmod(step_index, STEP_SLOTS)
    return StepTxn(app_id if part == 0 else f"{app_id}#{part}", batch_id * STEP_SLOTS + slot)
