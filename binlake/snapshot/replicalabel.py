"""A replica snapshot's GTIDs → a position in the primary's change-log order (pure).

A snapshot read from a replica holds a set of the primary's transactions, known by their GTIDs
(:class:`Held`). Its rows need a label in the *primary's* lsn order (``epoch << 52 | file << 32 |
pos``, :mod:`binlake.positions`) such that **every change-log record at or before the label is in
the snapshot** (condition (A) of docs/full-load.md, "The watermark method"; records after it are
either not in the snapshot or applied again on top by the merge's per-row ``_binlake_lsn`` guard,
which is idempotent for full after-images).

That label exists when the snapshot holds a *prefix* of the primary's order — per replication
domain on MariaDB (a replica commits the transactions of one domain in the primary's order, whatever
``slave_parallel_mode``), over all transactions on MySQL (``replica_preserve_commit_order``). Then
the first change-log record the snapshot lacks, ``r``, splits the change log: everything before it
is held. :func:`translate` finds ``r`` by reading the change log backwards from the capture's
checkpoint (which must already cover the snapshot, so nothing held is still to come) and returns
the last record before ``r`` — or the checkpoint itself when the snapshot lacks nothing the change log
holds up to it. The scan stops as soon as every stream (domain) is *settled*: the snapshot holds
everything the checkpoint holds of it, or a held record of it has been read (older ones of that
stream are then held too, by the prefix property), or at ``floor`` (a previous label of a snapshot
that held no more than this one). Records contradicting the prefix property (a held record after a
missing one in the same stream) are refused, never guessed around.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from binlake.gtidset import GtidSet, GtidSetError

ALL = -1  # the one stream of MySQL GTIDs (a prefix of the primary's whole commit order)


class ReplicaLabelError(ValueError):
    """No exact label exists (or cannot be found yet); the message says why and what to do."""


@dataclass(frozen=True)
class Record:
    """Where one change-log record (or the checkpoint) is in the primary's history."""

    lsn: int
    file: str
    pos: int
    gtid: str | None = None


@dataclass(frozen=True)
class Held:
    """The transactions a replica snapshot holds. MariaDB: the last sequence number per domain
    (``BINLOG_GTID_POS`` form, ``0-11-42,1-11-7``: every GTID ``d-s-n`` with ``n <=`` the domain's
    is held); MySQL: a GTID set (``@@gtid_executed``)."""

    text: str
    mariadb: bool
    domains: tuple[tuple[int, int], ...] = ()  # MariaDB: (domain, last seq), sorted
    mysql: GtidSet = field(default_factory=GtidSet)

    @classmethod
    def parse(cls, text: str | None, mariadb: bool) -> Held:
        try:
            parsed = GtidSet.parse(text)
        except GtidSetError as exc:
            raise ReplicaLabelError(f"the replica's GTID position {text!r} cannot be read: {exc}") from None
        if mariadb != (parsed.is_mariadb or not parsed):
            raise ReplicaLabelError(f"the replica's GTID position {text!r} is not in the "
                                    f"{'MariaDB' if mariadb else 'MySQL'} form")
        return cls(str(parsed), mariadb, tuple(sorted(_domain_seqs(parsed).items())), parsed)

    def has(self, gtid: str) -> bool:
        """Is the transaction ``gtid`` in the snapshot?"""
        if self.mariadb:
            domain, seq = _mariadb_gtid(gtid)
            return seq <= dict(self.domains).get(domain, 0)
        return GtidSet.parse(gtid) <= self.mysql

    def stream(self, gtid: str) -> int:
        return _mariadb_gtid(gtid)[0] if self.mariadb else ALL

    def streams(self, checkpoint_gtid: str | None) -> set[int]:
        """The streams whose order matters: every domain of the snapshot or of the checkpoint."""
        if not self.mariadb:
            return {ALL}
        return {d for d, _ in self.domains} | set(_domain_seqs(GtidSet.parse(checkpoint_gtid)))

    def lacks(self, checkpoint_gtid: str | None) -> set[int]:
        """The streams of which the checkpoint holds transactions the snapshot does not."""
        other = GtidSet.parse(checkpoint_gtid)
        if not self.mariadb:
            return {ALL} if other.missing_from(self.mysql) else set()
        mine = dict(self.domains)
        return {d for d, seq in _domain_seqs(other).items() if seq > mine.get(d, 0)}

    def missing_from(self, checkpoint_gtid: str | None) -> str | None:
        """What the snapshot holds and the checkpoint does not yet (``None``: the checkpoint covers it)."""
        other = GtidSet.parse(checkpoint_gtid)
        if not self.mariadb:
            missing = self.mysql.missing_from(other)
            return missing.text
        theirs = _domain_seqs(other)
        ahead = [f"domain {d} at {seq}" for d, seq in self.domains if seq > theirs.get(d, 0)]
        return ", ".join(ahead) or None

    def gaps(self, checkpoint_gtid: str | None) -> str | None:
        """MySQL: transactions the checkpoint holds that the snapshot lacks although it holds a later one
        of the same source UUID (GNOs are given in commit order, so a prefix has none); ``None``: none.
        A MariaDB position (the last sequence number per domain) cannot show such gaps."""
        if self.mariadb:
            return None
        lacking = GtidSet.parse(checkpoint_gtid).missing_from(self.mysql)
        mine = dict(self.mysql.mysql)
        gaps = [f"{uuid}{':' + tag if tag else ''}:{first}" for (uuid, tag), intervals in lacking.mysql
                for first, _ in intervals if (uuid, tag) in mine and first < mine[(uuid, tag)][-1][1]]
        return ", ".join(gaps) or None

    def includes(self, earlier: Held) -> bool:
        """Does this snapshot hold everything ``earlier`` held (a replica only moves forward)?"""
        if self.mariadb:
            mine = dict(self.domains)
            return all(mine.get(d, 0) >= seq for d, seq in earlier.domains)
        return earlier.mysql <= self.mysql


def _mariadb_gtid(gtid: str) -> tuple[int, int]:
    parts = gtid.strip().split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ReplicaLabelError(f"change-log GTID {gtid!r} is not a MariaDB GTID (domain-server-seq)")
    return int(parts[0]), int(parts[2])


def _domain_seqs(gtids: GtidSet) -> dict[int, int]:
    """The highest sequence number per domain (across server ids: with ``gtid_strict_mode`` the
    sequence grows across servers within a domain)."""
    seqs: dict[int, int] = {}
    for (domain, _server), seq in gtids.mariadb:
        seqs[domain] = max(seqs.get(domain, 0), seq)
    return seqs


def translate(held: Held, checkpoint: Record, newest_first: Iterable[Sequence[Record]],
              floor: Record | None = None) -> Record:
    """The label of a snapshot holding ``held``: the last change-log record before the first one the
    snapshot lacks, or ``checkpoint`` when it lacks none (see the module docstring).

    ``checkpoint``: the capture's checkpoint, which must cover ``held`` (every held transaction is at
    or before it; the caller waits for that). ``newest_first``: groups of change-log records with
    ``lsn <= checkpoint.lsn``, the groups from the newest to the oldest (records inside a group in
    any order; a record may appear twice). ``floor``: a label already given to a snapshot that held
    no more than ``held`` — every record at or before it is held, so the scan stops there.
    Raises :class:`ReplicaLabelError` when the checkpoint does not cover ``held`` or the change log
    contradicts the prefix property."""
    ahead = held.missing_from(checkpoint.gtid)
    if ahead is not None:
        raise ReplicaLabelError(f"the capture's checkpoint {checkpoint.gtid or '(no GTIDs)'} does not cover the "
                                f"replica's snapshot yet ({ahead})")
    gaps = held.gaps(checkpoint.gtid)
    if gaps is not None:
        _refuse_order(gaps, ALL)
    open_streams = held.lacks(checkpoint.gtid)
    if not open_streams:  # the snapshot holds everything up to the checkpoint: no record to read
        return Record(checkpoint.lsn, checkpoint.file, checkpoint.pos, held.text)
    known = held.streams(checkpoint.gtid)
    latest_held: dict[int, int] = {}  # stream → lsn of its newest held record seen
    first_missing: dict[int, Record] = {}  # stream → its oldest missing record seen
    seen: list[Record] = []
    for group in newest_first:
        oldest = min((r.lsn for r in group), default=None)
        for record in group:
            if record.lsn > checkpoint.lsn or (floor is not None and record.lsn <= floor.lsn):
                continue
            if record.gtid is None:
                raise ReplicaLabelError(f"change-log record at lsn {record.lsn} carries no GTID: a replica snapshot "
                                        "can only be placed in the primary's order by GTIDs (enable GTIDs)")
            stream = held.stream(record.gtid)
            if held.mariadb and stream not in known:
                raise ReplicaLabelError(f"change-log GTID {record.gtid} is of domain {stream}, which neither the "
                                        "replica's snapshot nor the capture's checkpoint knows")
            seen.append(record)
            if held.has(record.gtid):
                latest_held[stream] = max(latest_held.get(stream, record.lsn), record.lsn)
            elif stream not in first_missing or record.lsn < first_missing[stream].lsn:
                first_missing[stream] = record
        _check_prefix(latest_held, first_missing)
        if oldest is not None and all(s in latest_held or s not in open_streams for s in known):
            break  # every stream is settled: nothing older can be missing
        if floor is not None and oldest is not None and oldest <= floor.lsn:
            break
    if not first_missing:
        return Record(checkpoint.lsn, checkpoint.file, checkpoint.pos, held.text)
    missing = min(first_missing.values(), key=lambda r: r.lsn)
    before = [r for r in seen if r.lsn < missing.lsn]
    if before:
        last = max(before, key=lambda r: r.lsn)
        return Record(last.lsn, last.file, last.pos, held.text)
    if floor is not None:
        return Record(floor.lsn, floor.file, floor.pos, held.text)
    return Record(missing.lsn - 1, missing.file, missing.pos - 1, held.text)  # the change log's first record


def _check_prefix(latest_held: dict[int, int], first_missing: dict[int, Record]) -> None:
    for stream, record in first_missing.items():
        if latest_held.get(stream, -1) > record.lsn:
            _refuse_order(record.gtid, stream)


def _refuse_order(lacking: str | None, stream: int) -> None:
    where = "the primary's commit order" if stream == ALL else f"domain {stream}"
    raise ReplicaLabelError(
        f"the replica's snapshot lacks {lacking} but holds a later transaction of {where}: it did not commit in the "
        "primary's order (MySQL: set replica_preserve_commit_order = ON), or it skipped or filtered transactions; "
        "binlake cannot label such a snapshot exactly — read the full load from the primary (unset full_load.source)")
