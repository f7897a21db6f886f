"""The executed GTID set as the capture advances (MariaDB ``domain-server-seq`` or MySQL ``uuid:n``).

The set travels in the checkpoint so a capture can be re-pointed at a replica by GTID. It is only
as complete as its starting value: after a start from an explicit file/position on MySQL (no
``BINLOG_GTID_POS`` there) it holds just the transactions seen since.

>>> t = GtidTracker("0-1-5,1-2-7")
>>> t.add("0-1-6"); t.text
'0-1-6,1-2-7'
"""

from __future__ import annotations

from pymysqlreplication.gtid import Gtid, GtidSet


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
            self._mysql = GtidSet(",".join(mysql_parts))

    def add(self, gtid: str) -> None:
        """Record one executed transaction's GTID."""
        if is_mariadb_gtid(gtid):
            domain = int(gtid.split("-", 1)[0])
            self._mariadb[domain] = gtid
        elif self._mysql is None:
            self._mysql = GtidSet(gtid)
        else:
            self._mysql.merge_gtid(Gtid(gtid))

    @property
    def text(self) -> str | None:
        parts = [self._mariadb[d] for d in sorted(self._mariadb)]
        if self._mysql is not None:
            parts.append(str(self._mysql).replace("\n", ""))
        return ",".join(parts) or None
