"""The executed GTID set as the capture advances (MariaDB ``domain-server-seq`` or MySQL ``uuid:n``).

The set travels in the checkpoint so a capture can be re-pointed at a replica by GTID. It is only
as complete as its starting value: after a start from an explicit file/position on MySQL (no
``BINLOG_GTID_POS`` there) it holds just the transactions seen since.

:func:`missing_gtids` answers the failover question "has this server executed everything the lake
holds?" (pure; both forms: MySQL sets, tagged ones included, are compared by
:class:`binlake.gtidset.GtidSet`).

>>> t = GtidTracker("0-1-5,1-2-7")
>>> t.add("0-1-6"); t.text
'0-1-6,1-2-7'
"""

from __future__ import annotations

from dataclasses import dataclass

from binlake.gtidset import GtidSet


def is_mariadb_gtid(gtid: str) -> bool:
    """``0-1-42`` (MariaDB) as opposed to ``uuid:42`` (MySQL)."""
    return ":" not in gtid


class GtidTracker:
    """Mutable executed-GTID set; :attr:`text` is its canonical text (``None`` while empty)."""

    def __init__(self, initial: str | None = None) -> None:
        self._mariadb: dict[int, str] = {}
        self._mysql: GtidSet | None = None
        parts = [p.strip() for p in (initial or "").replace("\n", "").split(",") if p.strip()]
        for part in parts:
            if is_mariadb_gtid(part):
                self.add(part)
        mysql_parts = [part for part in parts if not is_mariadb_gtid(part)]
        if mysql_parts:
            self._mysql = GtidSet.parse(",".join(mysql_parts))

    def add(self, gtid: str) -> None:
        """Record one executed transaction's GTID."""
        if is_mariadb_gtid(gtid):
            domain = int(gtid.split("-", 1)[0])
            self._mariadb[domain] = gtid
        else:
            self._mysql = (self._mysql or GtidSet()).with_gtid(gtid)

    @property
    def text(self) -> str | None:
        parts = [self._mariadb[d] for d in sorted(self._mariadb)]
        if self._mysql is not None:
            parts.append(str(self._mysql))
        return ",".join(parts) or None


@dataclass(frozen=True, order=True)
class MariadbGtid:
    """One MariaDB GTID ``domain-server-seq``."""

    domain: int
    server: int
    seq: int

    @classmethod
    def parse(cls, text: str) -> MariadbGtid:
        parts = text.strip().split("-")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise ValueError(f"{text!r} is not a MariaDB GTID of the form domain-server-seq (e.g. 0-1-42)")
        return cls(int(parts[0]), int(parts[1]), int(parts[2]))

    def __str__(self) -> str:
        return f"{self.domain}-{self.server}-{self.seq}"


def parse_mariadb_set(text: str | None) -> list[MariadbGtid]:
    """``"0-1-42,1-2-7"`` → GTIDs (empty for ``None``/``""``); ``ValueError`` on another form."""
    return [MariadbGtid.parse(part) for part in (text or "").replace("\n", "").split(",") if part.strip()]


def missing_gtids(lake_set: str | None, server_state: str | None) -> list[str]:
    """The GTIDs of ``lake_set`` that a server whose binlog state is ``server_state`` has not executed.

    ``lake_set``: what the lake holds (the checkpoint's executed set, MariaDB ``gtid_binlog_pos``
    form: the last GTID per domain). ``server_state``: the server's ``@@gtid_binlog_state`` (the
    last GTID per domain *and server id* in its binlog history). With ``gtid_strict_mode`` sequence
    numbers only grow within a domain, so ``d-s-n`` is executed by the server exactly when its state
    holds ``d-s-m`` with ``m >= n``. A GTID whose ``(domain, server)`` pair is absent from the state
    counts as missing (the server's history does not show it). Returns ``[]`` when everything is
    there, else the missing GTIDs (the lake's, in domain order), e.g. ``["0-1-42"]``.

    >>> missing_gtids("0-1-42,1-2-7", "0-1-45,0-2-50,1-2-7")
    []
    >>> missing_gtids("0-1-42", "0-1-40,0-2-43")
    ['0-1-42']
    """
    if any(not is_mariadb_gtid(part) for part in (lake_set or "", server_state or "") if part):
        # MySQL (server_state: @@gtid_executed): interval containment; a MariaDB part never matches a MySQL one
        missing = GtidSet.parse(lake_set).missing_from(GtidSet.parse(server_state))
        return str(missing).split(",") if missing else []
    have: dict[tuple[int, int], int] = {}
    for gtid in parse_mariadb_set(server_state):
        key = (gtid.domain, gtid.server)
        have[key] = max(have.get(key, -1), gtid.seq)
    return [str(g) for g in sorted(parse_mariadb_set(lake_set)) if have.get((g.domain, g.server), -1) < g.seq]


def merge_sets(base: str | None, gtids: list[str]) -> str | None:
    """``base`` with ``gtids`` (in binlog order) executed after it, as canonical text."""
    tracker = GtidTracker(base)
    for gtid in gtids:
        tracker.add(gtid)
    return tracker.text


def union(*sets: str | None) -> str | None:
    """MariaDB sets in ``gtid_binlog_pos`` form (last GTID per domain) combined: per domain the GTID
    with the highest sequence number (with ``gtid_strict_mode`` the later one).

    >>> union("0-1-42,1-1-3", "0-2-50", None)
    '0-2-50,1-1-3'
    """
    texts = [text for text in sets if text]
    if any(not is_mariadb_gtid(text) for text in texts):
        combined = GtidSet()  # MySQL: the union of the intervals
        for text in texts:
            combined |= GtidSet.parse(text)
        return combined.text
    best: dict[int, MariadbGtid] = {}
    for gtid in (g for text in texts for g in parse_mariadb_set(text)):
        if gtid.domain not in best or gtid.seq > best[gtid.domain].seq:
            best[gtid.domain] = gtid
    return ",".join(str(best[d]) for d in sorted(best)) or None
