"""Binlog positions and the LSN that totally orders a pipeline's changes, across binlog histories.

A :class:`BinlogPosition` names a point in one binlog *history* (an epoch, see below): ``file`` and
``pos``, where ``pos`` is the *end* offset of an event (the ``log_pos`` of its header, i.e. where the
next event starts), and optionally the GTID set executed up to that point.

The LSN packs a position into one non-negative int64::

    lsn = epoch << 52 | file_sequence << 32 | pos        epoch < 2**11, file_sequence < 2**20, pos < 2**32

* Within one binlog history (one server, never reset) file numbers and offsets only grow, so the
  LSN grows strictly with the binlog, across file rotations.
* An **epoch** is one such history as the capture read it (:mod:`binlake.capture.history` keeps
  the registry). The capture moves to epoch ``e + 1`` whenever it starts reading a history it has
  not read before — another server after a failover, the same server after ``RESET MASTER``, or an
  explicit start that leaves a gap. Every change of the new history therefore orders after every
  change of the old one, whatever its file numbers: the order key survives a change of server.
* Epoch 0 leaves every LSN exactly as before epochs existed (``file_sequence << 32 | pos``), so
  lakes written by older versions keep their order.

All records produced from one binlog event share its LSN (ordered among themselves by row index).
A snapshot consistent at position ``P`` holds exactly the transactions whose commit event ends at
or before ``P``: a change with ``lsn <= P.lsn`` is already in it, one with ``lsn > P.lsn`` is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_FILE_SEQUENCE = re.compile(r"\.(\d+)$")
POS_BITS = 32
FILE_BITS = 20
EPOCH_BITS = 11
EPOCH_SHIFT = POS_BITS + FILE_BITS  # 52
MAX_EPOCH = 2**EPOCH_BITS - 1
MAX_FILE_SEQUENCE = 2**FILE_BITS - 1

FILE_KEY = "file"
POS_KEY = "pos"
GTID_KEY = "gtid"
EPOCH_KEY = "epoch"


def file_sequence(binlog_file: str) -> int:
    """The numeric suffix of a binlog file name: ``binlog.000042`` → 42."""
    match = _FILE_SEQUENCE.search(binlog_file)
    if not match:
        raise ValueError(f"binlog file name {binlog_file!r} has no numeric suffix like '.000001'")
    return int(match.group(1))


def epoch_base(epoch: int) -> int:
    """The lowest LSN of ``epoch`` (``epoch << 52``); every LSN of the epoch is ``>=`` it and below
    the next epoch's base. Raises ``ValueError`` outside ``0..2047``."""
    if not 0 <= epoch <= MAX_EPOCH:
        raise ValueError(f"binlog history epoch {epoch} is outside 0..{MAX_EPOCH}: the lake has seen too many "
                         "binlog histories (failovers, resets, explicit starts) for one change log; start a "
                         "new pipeline (new lake root) with a full load")
    return epoch << EPOCH_SHIFT


def make_lsn(binlog_file: str, pos: int, epoch: int = 0) -> int:
    """Pack ``(epoch, file, end position)`` into one int64 (see module docstring)."""
    if not 0 <= pos < 2**POS_BITS:
        raise ValueError(f"binlog position {pos} is outside 0..2^32-1")
    sequence = file_sequence(binlog_file)
    if sequence > MAX_FILE_SEQUENCE:
        raise ValueError(f"binlog file {binlog_file!r}: file numbers above {MAX_FILE_SEQUENCE} do not fit binlake's "
                         "order key; the server's binlog numbering must be reset (RESET MASTER) and the "
                         "pipeline restarted with capture.start: end and a new full load")
    return epoch_base(epoch) | (sequence << POS_BITS) | pos


def split_lsn(lsn: int) -> tuple[int, int, int]:
    """``lsn`` → ``(epoch, file_sequence, pos)``."""
    return (lsn >> EPOCH_SHIFT, (lsn >> POS_BITS) & MAX_FILE_SEQUENCE, lsn & (2**POS_BITS - 1))


def lsn_text(lsn: int | None) -> str:
    """An lsn as ``000003:1234`` (epoch 0) or ``e2:000003:1234`` (epoch 2); ``-`` when unknown."""
    if lsn is None:
        return "-"
    epoch, sequence, pos = split_lsn(lsn)
    text = f"{sequence:06d}:{pos}"
    return f"e{epoch}:{text}" if epoch else text


@dataclass(frozen=True, order=True)
class BinlogPosition:
    """An immutable, ordered point in one binlog history (ordered by lsn: epoch, file sequence, offset).

    ``gtid`` (the GTID set executed up to this point, e.g. MariaDB ``0-1-42``) is carried along
    but does not take part in ordering or equality. ``epoch``: the binlog history the position
    belongs to (0 unless the capture moved to another history, see module docstring).
    """

    lsn: int = field(init=False, repr=False)
    file: str
    pos: int
    gtid: str | None = field(default=None, compare=False)
    epoch: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "lsn", make_lsn(self.file, self.pos, self.epoch))

    @classmethod
    def of(cls, file: str, pos: int, gtid: str | None = None, epoch: int = 0) -> BinlogPosition:
        return cls(file=file, pos=pos, gtid=gtid or None, epoch=epoch)

    def in_epoch(self, epoch: int) -> BinlogPosition:
        """The same binlog point, labelled as belonging to ``epoch``."""
        return BinlogPosition.of(self.file, self.pos, self.gtid, epoch)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BinlogPosition:
        """Load from ``{"file", "pos", "gtid", "epoch"}`` (``epoch`` defaults to 0: positions written
        before epochs existed); fails loudly on a missing key."""
        missing = [key for key in (FILE_KEY, POS_KEY) if key not in data]
        if missing:
            raise ValueError(f"binlog position is missing key(s) {missing}: {data!r}")
        return cls.of(str(data[FILE_KEY]), int(data[POS_KEY]), data.get(GTID_KEY), int(data.get(EPOCH_KEY) or 0))

    def to_dict(self) -> dict[str, Any]:
        return {FILE_KEY: self.file, POS_KEY: self.pos, GTID_KEY: self.gtid, EPOCH_KEY: self.epoch, "lsn": self.lsn}

    def __str__(self) -> str:
        suffix = f" (gtid {self.gtid})" if self.gtid else ""
        prefix = f"epoch {self.epoch} " if self.epoch else ""
        return f"{prefix}{self.file}:{self.pos}{suffix}"
