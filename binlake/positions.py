"""Binlog positions and the LSN that totally orders a source's changes.

A :class:`BinlogPosition` names a point in the binlog of one server: ``file`` and ``pos``, where
``pos`` is the *end* offset of an event (the ``log_pos`` of its header, i.e. where the next event
starts), and optionally the GTID set executed up to that point.

The LSN packs a position into one int64: ``(file_sequence << 32) | pos``. Event header positions
are 32-bit, so ``pos < 2**32`` and LSNs grow strictly with the binlog across file rotations.
All records produced from one binlog event share its LSN (ordered among themselves by row index).

A snapshot consistent at position ``P`` holds exactly the transactions whose commit event ends at
or before ``P``: a change with ``lsn <= P.lsn`` is already in it, one with ``lsn > P.lsn`` is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_FILE_SEQUENCE = re.compile(r"\.(\d+)$")
_POS_BITS = 32

FILE_KEY = "file"
POS_KEY = "pos"
GTID_KEY = "gtid"


def file_sequence(binlog_file: str) -> int:
    """The numeric suffix of a binlog file name: ``binlog.000042`` → 42."""
    match = _FILE_SEQUENCE.search(binlog_file)
    if not match:
        raise ValueError(f"binlog file name {binlog_file!r} has no numeric suffix like '.000001'")
    return int(match.group(1))


def make_lsn(binlog_file: str, pos: int) -> int:
    """Pack ``(file, end position)`` into one strictly increasing int64."""
    if not 0 <= pos < 2**_POS_BITS:
        raise ValueError(f"binlog position {pos} is outside 0..2^32-1")
    return (file_sequence(binlog_file) << _POS_BITS) | pos


def split_lsn(lsn: int) -> tuple[int, int]:
    """``lsn`` → ``(file_sequence, pos)``."""
    return lsn >> _POS_BITS, lsn & (2**_POS_BITS - 1)


@dataclass(frozen=True, order=True)
class BinlogPosition:
    """An immutable, ordered point in one server's binlog (ordered by file sequence, then offset).

    ``gtid`` (the GTID set executed up to this point, e.g. MariaDB ``0-1-42``) is carried along
    but does not take part in ordering or equality.
    """

    lsn: int = field(init=False, repr=False)
    file: str
    pos: int
    gtid: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lsn", make_lsn(self.file, self.pos))

    @classmethod
    def of(cls, file: str, pos: int, gtid: str | None = None) -> BinlogPosition:
        return cls(file=file, pos=pos, gtid=gtid or None)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BinlogPosition:
        """Load from ``{"file": ..., "pos": ..., "gtid": ...}``; fails loudly on a missing key."""
        missing = [key for key in (FILE_KEY, POS_KEY) if key not in data]
        if missing:
            raise ValueError(f"binlog position is missing key(s) {missing}: {data!r}")
        return cls.of(str(data[FILE_KEY]), int(data[POS_KEY]), data.get(GTID_KEY))

    def to_dict(self) -> dict[str, Any]:
        return {FILE_KEY: self.file, POS_KEY: self.pos, GTID_KEY: self.gtid, "lsn": self.lsn}

    def __str__(self) -> str:
        suffix = f" (gtid {self.gtid})" if self.gtid else ""
        return f"{self.file}:{self.pos}{suffix}"
