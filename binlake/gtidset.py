"""GTID sets of both servers as one immutable value: MySQL's ``uuid:1-100:200-300`` (with the tagged
GTIDs of MySQL 8.4, ``uuid:tag:1-5``) and MariaDB's ``domain-server-seq`` (pure).

MySQL (manual, "GTID Format and Storage"): a set is comma-separated *uuid sets*; each is a source
UUID followed by colon-separated intervals ``n`` or ``n-m`` (inclusive), and from 8.4 by tags, each
tag applying to the intervals after it until the next tag (``uuid:1-5:domain_1:1-3:11``). A tag is
``[a-z_][a-z0-9_]{0,31}``, compared case-insensitively (kept lower-case here, as the server does).
``uuid:5`` and ``uuid:tag:5`` are different transactions.

MariaDB: a GTID ``d-s-n`` names the n-th transaction of replication domain ``d``, written by server
``s``. A MariaDB set here keeps the highest ``n`` per ``(domain, server)`` (``@@gtid_binlog_state``
holds exactly that; ``@@gtid_binlog_pos`` is its last GTID per domain). With ``gtid_strict_mode``
sequence numbers grow within a domain, so ``d-s-n`` is contained in a set holding ``d-s-m`` with
``m >= n`` — the failover rule of :func:`binlake.capture.gtids.missing_gtids`.

The canonical text (what :func:`str` returns and checkpoints store) sorts UUIDs (lower-case), puts
untagged intervals before tagged ones, merges overlapping and adjacent intervals (``1-3:4-5`` is
``1-5``, as MySQL prints it), then lists MariaDB GTIDs by domain and server; ``GtidSet.parse(str(s))
== s``. Comparing a MySQL GTID with a MariaDB set (or the reverse) finds nothing in common.

>>> a = GtidSet.parse("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5")
>>> str(a | GtidSet.parse("3e11fa47-71ca-11e1-9e33-c80aa9429562:6-9:11"))
'3e11fa47-71ca-11e1-9e33-c80aa9429562:1-9:11'
>>> str(GtidSet.parse("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-9").missing_from(a))
'3e11fa47-71ca-11e1-9e33-c80aa9429562:6-9'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Interval = tuple[int, int]  # first, last (inclusive), 1 <= first <= last
SourceKey = tuple[str, str]  # (uuid, tag); tag "" = untagged

_UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$")
_TAG = re.compile(r"^[a-z_][a-z0-9_]{0,31}$")
_INTERVAL = re.compile(r"^(\d+)(?:-(\d+))?$")
_MARIADB = re.compile(r"^(\d+)-(\d+)-(\d+)$")
MAX_GNO = 2**63 - 1


class GtidSetError(ValueError):
    """Text that is not a GTID set; the message quotes the part that is wrong."""


def _uuid(text: str) -> str:
    lowered = text.strip().lower()
    if not _UUID.match(lowered):
        raise GtidSetError(f"{text!r} is not a server UUID (like 3e11fa47-71ca-11e1-9e33-c80aa9429562)")
    plain = lowered.replace("-", "")
    return f"{plain[:8]}-{plain[8:12]}-{plain[12:16]}-{plain[16:20]}-{plain[20:]}"


def _normalise(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    """Sorted, with overlapping and adjacent intervals merged."""
    merged: list[list[int]] = []
    for first, last in sorted(intervals):
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return tuple((first, last) for first, last in merged)


def _subtract(have: tuple[Interval, ...], remove: tuple[Interval, ...]) -> tuple[Interval, ...]:
    """``have`` minus ``remove`` (both normalised)."""
    result: list[Interval] = []
    for first, last in have:
        start = first
        for r_first, r_last in remove:
            if r_last < start or r_first > last:
                continue
            if r_first > start:
                result.append((start, r_first - 1))
            start = max(start, r_last + 1)
            if start > last:
                break
        if start <= last:
            result.append((start, last))
    return tuple(result)


def _parse_uuid_set(text: str, into: dict[SourceKey, list[Interval]]) -> None:
    parts = [part.strip() for part in text.split(":")]
    uuid, tag, saw_interval = _uuid(parts[0]), "", False
    if len(parts) < 2:
        raise GtidSetError(f"{text!r}: a UUID needs at least one interval (uuid:1-5)")
    for part in parts[1:]:
        interval = _INTERVAL.match(part)
        if interval:
            first = int(interval[1])
            last = int(interval[2]) if interval[2] else first
            if not 1 <= first <= last <= MAX_GNO:
                raise GtidSetError(f"{text!r}: interval {part!r} must be n or n-m with 1 <= n <= m")
            into.setdefault((uuid, tag), []).append((first, last))
            saw_interval = True
        elif _TAG.match(part.lower()):
            if tag and not saw_interval:
                raise GtidSetError(f"{text!r}: tag {tag!r} has no interval")
            tag, saw_interval = part.lower(), False
        else:
            raise GtidSetError(f"{text!r}: {part!r} is neither an interval (n or n-m) nor a tag ([a-z_][a-z0-9_]*)")
    if not saw_interval:
        raise GtidSetError(f"{text!r}: tag {tag!r} has no interval")


@dataclass(frozen=True)
class GtidSet:
    """An immutable GTID set. ``mysql``: ``((uuid, tag), intervals)`` sorted; ``mariadb``:
    ``((domain, server), seq)`` sorted — build with :meth:`parse` or :meth:`of`."""

    mysql: tuple[tuple[SourceKey, tuple[Interval, ...]], ...] = ()
    mariadb: tuple[tuple[tuple[int, int], int], ...] = ()

    @classmethod
    def of(cls, mysql: Mapping[SourceKey, Iterable[Interval]] | None = None,
           mariadb: Mapping[tuple[int, int], int] | None = None) -> GtidSet:
        """The normalised set of these parts (empty interval lists dropped)."""
        parts = ((key, _normalise(intervals)) for key, intervals in (mysql or {}).items())
        return cls(tuple(sorted((key, iv) for key, iv in parts if iv)), tuple(sorted((mariadb or {}).items())))

    @classmethod
    def parse(cls, text: str | None) -> GtidSet:
        """Either form, or both mixed; ``None``, ``""`` and whitespace/newlines (as servers print
        ``@@gtid_executed``) are fine. :class:`GtidSetError` names the wrong part."""
        mysql: dict[SourceKey, list[Interval]] = {}
        mariadb: dict[tuple[int, int], int] = {}
        for part in (p.strip() for p in (text or "").replace("\n", "").split(",")):
            if not part:
                continue
            match = _MARIADB.match(part)
            if match:
                key = (int(match[1]), int(match[2]))
                mariadb[key] = max(mariadb.get(key, 0), int(match[3]))
            else:
                _parse_uuid_set(part, mysql)
        return cls.of(mysql, mariadb)

    def __str__(self) -> str:
        texts: list[str] = []
        by_uuid: dict[str, list[str]] = {}
        for (uuid, tag), intervals in self.mysql:
            pieces = by_uuid.setdefault(uuid, [])
            if tag:
                pieces.append(tag)
            pieces.extend(str(f) if f == last else f"{f}-{last}" for f, last in intervals)
        texts.extend(f"{uuid}:{':'.join(pieces)}" for uuid, pieces in by_uuid.items())
        texts.extend(f"{domain}-{server}-{seq}" for (domain, server), seq in self.mariadb)
        return ",".join(texts)

    @property
    def text(self) -> str | None:
        """:func:`str`, or ``None`` for the empty set (how positions store "no GTIDs")."""
        return str(self) or None

    def __bool__(self) -> bool:
        return bool(self.mysql or self.mariadb)

    @property
    def is_mysql(self) -> bool:
        return bool(self.mysql)

    @property
    def is_mariadb(self) -> bool:
        return bool(self.mariadb)

    @property
    def is_tagged(self) -> bool:
        """Does the set hold MySQL 8.4 tagged GTIDs (``uuid:tag:n``)?"""
        return any(tag for (_, tag), _ in self.mysql)

    def __or__(self, other: GtidSet) -> GtidSet:
        """Union: MySQL intervals joined; MariaDB the higher sequence number per (domain, server)."""
        mysql: dict[SourceKey, list[Interval]] = {key: list(iv) for key, iv in self.mysql}
        for key, intervals in other.mysql:
            mysql.setdefault(key, []).extend(intervals)
        mariadb = dict(self.mariadb)
        for pair, seq in other.mariadb:
            mariadb[pair] = max(mariadb.get(pair, 0), seq)
        return GtidSet.of(mysql, mariadb)

    def with_gtid(self, gtid: str) -> GtidSet:
        """This set plus one transaction: ``uuid:n``, ``uuid:tag:n`` or ``d-s-n``."""
        return self | GtidSet.parse(gtid)

    def missing_from(self, other: GtidSet) -> GtidSet:
        """What this set holds and ``other`` does not (MariaDB: ``d-s-n`` is held by ``other`` when it
        has ``d-s-m``, ``m >= n``)."""
        have = dict(other.mysql)
        mysql = {key: _subtract(intervals, have.get(key, ())) for key, intervals in self.mysql}
        theirs = dict(other.mariadb)
        mariadb = {key: seq for key, seq in self.mariadb if theirs.get(key, 0) < seq}
        return GtidSet.of(mysql, mariadb)

    def __le__(self, other: GtidSet) -> bool:
        """Is every transaction of this set in ``other``?"""
        return not self.missing_from(other)

    def contains(self, other: GtidSet) -> bool:
        return other <= self

    def count(self) -> int:
        """MySQL transactions in the set (MariaDB GTIDs count one each: a set holds only the last)."""
        return sum(last - first + 1 for _, iv in self.mysql for first, last in iv) + len(self.mariadb)
