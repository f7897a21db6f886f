"""The verification record of one lake table — what ``verified_as_of`` means, and its only reader/writer
(no Spark: ``binlake status`` reads it).

``_binlake/validation/<schema segment>/<table segment>.json`` (:func:`binlake.lake.verification_key`
of the *target* table) holds two runs of validation for the table:

* ``last_run`` — the latest validation that **checked every chunk** of the table, whatever it found
  (``OK``, ``DIFFERENT``, ``IN FLIGHT``, ``ERROR``), with its counts and, after ``--repair``, the
  resync it started;
* ``last_equal`` — the latest such run that found the table **equal** (status ``OK``: no row differs
  and no row was in flight). Its ``as_of_lsn`` is the table's ``verified_as_of``.

What ``verified_as_of = P`` guarantees. Before reading anything of the table, validation takes one
source snapshot position ``P`` by the full load's snapshot method (:func:`binlake.validation.job.
position_before`). Every chunk is then compared with its own later source snapshot, at a position
``P_i >= P``, and was found equal: the lake rows of the chunk's key range, as the lake held them
when they were read, are exactly the source rows of that range at ``P_i`` (by checksum, or row by
row). So any difference the lake held at that moment — a wrong value, a missing or phantom row —
caused by a change at or before ``P`` was not there. It says nothing about changes after ``P_i``
(the merge may apply them later, and the next verification checks them), nor about a run that was
stopped part way: a run is recorded only once every chunk of the table has been checked, so the
record never claims more than was checked. ``IN FLIGHT`` rows (the lake at another position than
the source snapshot) were *not* checked: such a run is a ``last_run`` but never a ``last_equal``.

The record is rewritten whole (:meth:`binlake.lake.Lake.put_bytes` is atomic); one validation at a
time writes it (two concurrent validations of one table may each replace the other's run: both
records are true).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from binlake.lake import VALIDATION_DIR, Lake, verification_key
from binlake.positions import lsn_text

if TYPE_CHECKING:  # binlake status reads records without importing Spark (binlake.validation does)
    from binlake.validation.report import TableValidation

RECORD_VERSION = 1
OK = "OK"
DIFFERENT = "DIFFERENT"

_RUN_KEYS = ("source", "table", "status", "as_of_lsn", "started_at", "finished_at", "chunks", "checksum_chunks",
             "differing_chunks", "mismatched", "missing", "extra", "in_flight", "method")


class RecordError(ValueError):
    """A verification record that cannot be read; the message names the object and the problem."""


@dataclass(frozen=True)
class Verification:
    """One validation of every chunk of one table (see the module docstring).

    ``as_of_lsn`` is the source position ``P`` taken before the table's first read (``None`` when
    the run failed before it); ``started_at`` / ``finished_at`` are ISO-8601 UTC times.
    ``repair`` is the id of the resync ``--repair`` started for the differing chunks (the merge
    applies it; the next verification checks it), ``repair_error`` why it could not be started.
    """

    source: str                 # source schema.table
    table: str                  # target schema.table
    status: str
    as_of_lsn: int | None
    started_at: str
    finished_at: str
    chunks: int
    checksum_chunks: int        # chunks found equal by their checksums alone
    differing_chunks: tuple[int, ...]
    mismatched: int
    missing: int
    extra: int
    in_flight: int
    method: str
    repair: str | None = None
    repair_error: str | None = None
    error: str | None = None

    @classmethod
    def of(cls, result: TableValidation, started_at: datetime, finished_at: datetime) -> Verification:
        """The run of ``result`` (its ``as_of_lsn`` is the position taken before the table's reads)."""
        return cls(result.source, result.table, result.status, result.as_of_lsn, started_at.isoformat(),
                   finished_at.isoformat(), result.chunks, result.checksum_chunks, tuple(result.differing_chunks),
                   result.mismatched, result.missing, result.extra, result.in_flight, result.method,
                   error=result.error)

    def repaired(self, resync_id: str | None, error: str | None = None) -> Verification:
        """This run, with the resync ``--repair`` started (or why it could not)."""
        return replace(self, repair=resync_id, repair_error=error)

    @property
    def differs(self) -> bool:
        """Did this run find rows that really differ (not merely in flight)?"""
        return self.status == DIFFERENT

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["differing_chunks"] = list(self.differing_chunks)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verification:
        """Raises :class:`RecordError` naming a missing key."""
        missing = [key for key in _RUN_KEYS if key not in data]
        if missing:
            raise RecordError(f"verification run lacks {', '.join(missing)}")
        return cls(**{**{k: data[k] for k in _RUN_KEYS}, "differing_chunks": tuple(data["differing_chunks"]),
                      "repair": data.get("repair"), "repair_error": data.get("repair_error"),
                      "error": data.get("error")})


@dataclass(frozen=True)
class VerificationRecord:
    """A table's record: its latest complete run and its latest run that found it equal."""

    last_run: Verification
    last_equal: Verification | None

    @property
    def verified_as_of(self) -> int | None:
        """The position the table was last verified equal as of (``None``: never)."""
        return self.last_equal.as_of_lsn if self.last_equal else None

    def after(self, run: Verification) -> VerificationRecord:
        """The record once ``run`` is done: it is the last run, and the last equal one if it found
        the table equal."""
        return VerificationRecord(run, run if run.status == OK else self.last_equal)

    def summary(self) -> str:
        """One line for ``binlake tables``: the position verified equal as of, and the latest run when
        it found something else."""
        equal = self.last_equal
        text = (f"verified equal as of {lsn_text(equal.as_of_lsn)} ({equal.finished_at[:19]})" if equal
                else "never verified equal")
        run = self.last_run
        if run == equal:
            return text
        text += f"; latest check {run.finished_at[:19]}: {run.status}"
        if run.differs:
            text += (f" in {len(run.differing_chunks)} of {run.chunks} chunk(s), "
                     + (f"repair resync {run.repair} started" if run.repair else "NOT REPAIRED"))
        return text

    @classmethod
    def first(cls, run: Verification) -> VerificationRecord:
        return cls(run, run if run.status == OK else None)

    def to_dict(self) -> dict[str, Any]:
        return {"version": RECORD_VERSION, "last_run": self.last_run.to_dict(),
                "last_equal": self.last_equal.to_dict() if self.last_equal else None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VerificationRecord:
        if data.get("version") != RECORD_VERSION:
            raise RecordError(f"verification record version {data.get('version')!r}, this binlake reads "
                              f"{RECORD_VERSION}")
        if not isinstance(data.get("last_run"), Mapping):
            raise RecordError("verification record lacks last_run")
        equal = data.get("last_equal")
        return cls(Verification.from_dict(data["last_run"]), Verification.from_dict(equal) if equal else None)


def read_record(lake: Lake, schema: str, table: str) -> VerificationRecord | None:
    """The record of target table ``schema.table``, or ``None`` before its first complete run."""
    return _read(lake, verification_key(schema, table))


def write_run(lake: Lake, schema: str, table: str, run: Verification) -> VerificationRecord:
    """Record ``run`` (a run that checked every chunk) for target table ``schema.table``."""
    key = verification_key(schema, table)
    try:
        previous = _read(lake, key)
    except RecordError:  # an unreadable record is replaced: the new run is the truth now
        previous = None
    record = previous.after(run) if previous else VerificationRecord.first(run)
    lake.put_bytes(key, json.dumps(record.to_dict(), indent=1).encode())
    return record


def all_records(lake: Lake) -> dict[str, VerificationRecord]:
    """Every table's record, by target ``schema.table`` (unreadable records are left out)."""
    records = {}
    for key in lake.list(VALIDATION_DIR):
        if not key.endswith(".json"):
            continue
        try:
            record = _read(lake, key)
        except RecordError:
            continue
        if record is not None:
            records[record.last_run.table] = record
    return records


def _read(lake: Lake, key: str) -> VerificationRecord | None:
    try:
        data = json.loads(lake.get_bytes(key))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise RecordError(f"{lake.uri(key)}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RecordError(f"{lake.uri(key)}: not a JSON object")
    try:
        return VerificationRecord.from_dict(data)
    except RecordError as exc:
        raise RecordError(f"{lake.uri(key)}: {exc}") from None
