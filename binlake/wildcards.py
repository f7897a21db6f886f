"""DMS wildcards in table-mapping locators, exactly as the DMS documentation ("Wildcards in table
mapping") defines them (pure): ``%`` zero or more characters, ``_`` one character, ``[_]`` a
literal underscore, ``[ab]`` a set, ``[a-d]`` a range; every other character stands for itself.
There is no escape character (DMS's ``escapeCharacter`` is for Oracle endpoints only): ``[_]``,
``[%]``, ``[[]`` stand for the character itself. A set cannot be empty or unclosed, and
``[^…]``/``[!…]`` (negation, not in the DMS documentation) are refused.
"""

from __future__ import annotations

import re
from functools import lru_cache


class LocatorError(ValueError):
    """A malformed locator; the message names it and what is wrong."""


def _character_set(members: str, locator: str) -> str:
    """The regular-expression class of the inside of a ``[...]`` wildcard (``ab``, ``a-d``, ``_``)."""
    if members[0] in "^!":
        raise LocatorError(f"locator {locator!r}: [{members}] — negated sets are not DMS wildcards; list the "
                        "characters to match instead")
    parts: list[str] = []
    i = 0
    while i < len(members):
        if i + 2 < len(members) and members[i + 1] == "-":
            low, high = members[i], members[i + 2]
            if low > high:
                raise LocatorError(f"locator {locator!r}: range [{low}-{high}] is empty ({low!r} sorts after {high!r})")
            parts.append(f"{re.escape(low)}-{re.escape(high)}")
            i += 3
        else:
            parts.append(re.escape(members[i]))
            i += 1
    return "[" + "".join(parts) + "]"


@lru_cache(maxsize=1024)
def _pattern(locator: str) -> re.Pattern[str]:
    """The regular expression of a DMS locator; :class:`LocatorError` for a malformed ``[...]``."""
    out: list[str] = []
    i = 0
    while i < len(locator):
        ch = locator[i]
        if ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        elif ch == "[":
            end = locator.find("]", i + 1)
            if end < 0:
                raise LocatorError(f"locator {locator!r}: '[' at {i} opens a character set that is never closed "
                                "(DMS reads [ab] as 'a or b'; a literal '[' is written [[])")
            if end == i + 1:
                raise LocatorError(f"locator {locator!r}: '[]' is an empty character set")
            out.append(_character_set(locator[i + 1:end], locator))
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def check_locator(locator: str) -> None:
    """Raise :class:`LocatorError` when ``locator`` is not a well-formed DMS wildcard pattern."""
    _pattern(locator)


def matches(locator: str, name: str) -> bool:
    """Does DMS locator ``locator`` (wildcards ``%``, ``_``, ``[_]``, ``[ab]``, ``[a-d]``, see the module
    docstring) match the whole of ``name``?

    >>> matches("t[_]%", "t_1"), matches("t[_]%", "tx1"), matches("t_1", "tx1")
    (True, False, True)
    """
    return _pattern(locator).fullmatch(name) is not None
