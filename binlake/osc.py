"""Online schema change helper tables: which source table names gh-ost and
pt-online-schema-change give the helper tables of a table (pure).

Both tools change table ``t`` by building a copy under another name, keeping it in step with
``t``, and swapping the names in one ``RENAME TABLE``. Their names (from the tools' sources):

==========================================  ========================  =======================
name                                        tool                      role
==========================================  ========================  =======================
``_t_gho``                                  gh-ost                    the ghost (the new ``t``)
``_t_del``, ``_t_<YYYYMMDDhhmmss>_del``     gh-ost                    the old ``t`` after the swap
                                                                      (``--timestamp-old-table``)
``_t_ghc``                                  gh-ost                    its changelog (heartbeat and
                                                                      state rows; no row of ``t``)
``_t_new``, ``__t_new``, …                  pt-online-schema-change   the new ``t`` (one more
                                                                      ``_`` per name already taken)
``_t_old``, ``__t_old``, …                  pt-online-schema-change   the old ``t`` after the swap
==========================================  ========================  =======================

:func:`readings` gives every way a name reads as one of these, the most likely first;
:mod:`binlake.rules` selects a helper with its table. Names the tools shorten to fit 64 characters,
and names chosen by hand (gh-ost ``--force-table-names``, pt-osc ``--new-table-name``), are not
recognised: such a helper follows the selection rules under its own name (a swap onto ``t`` is then
resynced, :mod:`binlake.merge.renames`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GH_OST = "gh-ost"
PT_OSC = "pt-online-schema-change"

GHOST = "ghost"
"""The copy being built: after the swap it is the table."""
OLD = "old"
"""The table itself, renamed away by the swap."""
CHANGELOG = "changelog"
"""gh-ost's own state and heartbeat rows: no row of the table."""

_TIMESTAMPED_DEL = re.compile(r"_(?P<base>.+)(?P<suffix>_\d{14}_del)")
_GH_OST_ROLES = {"_gho": GHOST, "_ghc": CHANGELOG}
_PT_OSC_ROLES = {"_new": GHOST, "_old": OLD}


@dataclass(frozen=True)
class Helper:
    """One reading of a table name as a helper table: ``prefix + base + suffix``."""

    base: str
    """The table the helper belongs to."""
    prefix: str
    suffix: str
    tool: str
    role: str

    @property
    def carries_rows(self) -> bool:
        """Does the helper hold rows of its table (every role but gh-ost's changelog)?"""
        return self.role != CHANGELOG

    def name_for(self, base: str) -> str:
        """The helper's name for a table named ``base`` (its lake name: ``base`` = the table's target)."""
        return self.prefix + base + self.suffix

    def describe(self) -> str:
        """E.g. ``gh-ost ghost table of orders``."""
        return f"{self.tool} {self.role} table of {self.base}"


def readings(table: str) -> tuple[Helper, ...]:
    """Every reading of ``table`` as a helper name, most likely first: gh-ost's, then pt-osc's with
    the fewest leading underscores taken as the tool's (``__a_new``: of ``_a``, then of ``a``).

    >>> [(h.base, h.role) for h in readings("_orders_gho")]
    [('orders', 'ghost')]
    >>> [h.base for h in readings("__orders_new")]
    ['_orders', 'orders']
    >>> readings("orders")
    ()
    """
    found: list[Helper] = []
    if table.startswith("_") and len(table) > 5 and table[-4:] in ("_gho", "_ghc", "_del"):
        suffix = table[-4:]
        found.append(Helper(table[1:-4], "_", suffix, GH_OST, _GH_OST_ROLES.get(suffix, OLD)))
    if (stamped := _TIMESTAMPED_DEL.fullmatch(table)) is not None:
        found.append(Helper(stamped["base"], "_", stamped["suffix"], GH_OST, OLD))
    if table[-4:] in _PT_OSC_ROLES:
        stem = table[:-4]
        underscores = len(stem) - len(stem.lstrip("_"))
        for n in range(1, min(underscores, len(stem) - 1) + 1):
            found.append(Helper(stem[n:], stem[:n], table[-4:], PT_OSC, _PT_OSC_ROLES[table[-4:]]))
    return tuple(found)
