"""Lake names: the one encoding of schema and table names into path segments, and the check that
no two source tables share a lake table.

Every lake path that holds a table's data or state — the Delta table, its tombstones, its full-load
state, the merge's hand-off record — is built from :func:`encode_name` of the (target or source)
schema and table name (through :func:`binlake.lake.table_segments`), so one table's files never mix
with another's.

The encoding (``binlake-name-1``), character by character:

* ``a``–``z``, ``0``–``9`` and ``_`` are kept: plain lower-case names keep the folder names earlier
  binlake versions gave them;
* an upper-case ASCII letter becomes ``~`` and the letter in lower case (``Orders`` → ``~orders``),
  so ``Foo`` and ``foo`` stay apart on case-insensitive stores (macOS file systems, some Hadoop
  stores);
* every other character becomes its UTF-8 bytes, each as ``-`` and two lower-case hex digits
  (``a:b`` → ``a-3ab``, ``a/b`` → ``a-2fb``, ``a b`` → ``a-20b``, ``é`` → ``-c3-a9``, ``-`` →
  ``-2d``);
* the first ``_`` is written ``-5f`` when the segment would otherwise start with ``_tmp-`` (names
  with that prefix are temporary objects to :mod:`binlake.lake` and would be hidden).

So a segment holds only RFC 3986 unreserved characters (``a-z 0-9 _ ~ -``): no layer quotes or
interprets it — Hadoop ``Path`` (a ``java.net.URI``), S3 keys, Spark's glob expansion, Delta SQL text
(``delta.`<path>```), shells. It never contains ``.``, so it is never ``.``/``..`` nor hidden, and no
two names give one segment even when the store ignores case. :func:`decode_name` reverses it and
accepts only segments :func:`encode_name` writes. A segment is at most :data:`MAX_SEGMENT`
characters (file names are limited to 255 bytes, and state files add a suffix and a temporary
prefix): longer encodings are refused, naming the fix.

This module is pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

ENCODING = "binlake-name-1"
MAX_SEGMENT = 200
HIDDEN_PREFIX = "_tmp-"  # = binlake.lake.TMP_PREFIX (checked by a unit test)

_KEPT = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_HEX_BYTE = re.compile("[0-9a-f]{2}")
_LEGACY_UNSAFE = str.maketrans({"`": "_", ":": "_", "/": "_"})


class LakeNameError(ValueError):
    """A name that cannot become a lake path, or a segment that is no encoded name."""


class TargetCollisionError(ValueError):
    """Two source tables would be written to one lake table; the message names both."""


def _encode_char(ch: str) -> str:
    if ch in _KEPT:
        return ch
    if ch in _UPPER:
        return "~" + ch.lower()
    return "".join(f"-{byte:02x}" for byte in ch.encode("utf-8"))


def encode_name(name: str) -> str:
    """The path segment of one schema or table name (see the module docstring).

    >>> encode_name("orders"), encode_name("Orders"), encode_name("a:b"), encode_name("a/b")
    ('orders', '~orders', 'a-3ab', 'a-2fb')

    Raises :class:`LakeNameError` for an empty name, one that is not valid Unicode (a lone
    surrogate), or one whose segment would be longer than :data:`MAX_SEGMENT` characters.
    """
    if not isinstance(name, str) or not name:
        raise LakeNameError(f"a schema or table name must be a non-empty string, got {name!r}")
    try:
        segment = "".join(_encode_char(ch) for ch in name)
    except UnicodeEncodeError:
        raise LakeNameError(f"name {name!r} is not valid Unicode") from None
    if segment.startswith(HIDDEN_PREFIX):
        segment = "-5f" + segment[1:]
    if len(segment) > MAX_SEGMENT:
        raise LakeNameError(
            f"name {name!r} encodes to a {len(segment)}-character lake path segment; at most {MAX_SEGMENT} "
            "fit a file name. For a target name: give the table (or schema) a shorter one with a DMS "
            "'rename' transformation rule; a source name this long (its full-load state is kept under it) "
            "must be shortened on the source")
    return segment


def decode_name(segment: str) -> str:
    """The name :func:`encode_name` turned into ``segment``; :class:`LakeNameError` when ``segment``
    is not exactly what :func:`encode_name` writes for some name."""
    raw = bytearray()
    i = 0
    while i < len(segment):
        ch = segment[i]
        if ch in _KEPT:
            raw += ch.encode()
            i += 1
        elif ch == "~" and i + 1 < len(segment) and segment[i + 1] in _KEPT and segment[i + 1].isalpha():
            raw += segment[i + 1].upper().encode()
            i += 2
        elif ch == "-" and _HEX_BYTE.fullmatch(segment, i + 1, i + 3):
            raw.append(int(segment[i + 1:i + 3], 16))
            i += 3
        else:
            raise LakeNameError(f"{segment!r} is not an encoded name: unexpected {ch!r} at {i}")
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise LakeNameError(f"{segment!r} is not an encoded name: its bytes are not UTF-8") from None
    if not name or encode_name(name) != segment:
        raise LakeNameError(f"{segment!r} is not an encoded name (not the form encode_name writes)")
    return name


def legacy_folder_name(name: str) -> str:
    """The folder name binlake gave ``name`` before ``binlake-name-1`` (``` ` ```, ``:``, ``/`` → ``_``,
    all else kept): used only to find lakes written that way (:mod:`binlake.catalog`)."""
    return name.translate(_LEGACY_UNSAFE)


def is_plain(name: str) -> bool:
    """Only ``a-z 0-9 _``: the name's lake paths are the same as before ``binlake-name-1``."""
    return bool(name) and set(name) <= _KEPT


SourceName = tuple[str, str]
TargetName = tuple[str, str]


class TargetClaims:
    """Which source table holds each lake table: :meth:`claim` refuses a second source for a target.

    The one collision check of binlake: the full load and the capture run it over every selected
    table before writing anything, the capture again for each table it first meets in the binlog,
    the merge for each table it first meets in the change log.
    """

    def __init__(self) -> None:
        self._owners: dict[TargetName, SourceName] = {}

    def claim(self, source: SourceName, target: TargetName) -> None:
        """Record that ``source`` (schema, table) is replicated to ``target`` (schema, table).
        Raises :class:`TargetCollisionError` when another source table already has ``target``."""
        owner = self._owners.setdefault(target, source)
        if owner != source:
            raise collision(owner, source, target)

    def owner(self, target: TargetName) -> SourceName | None:
        """The source table that claimed ``target``, if any."""
        return self._owners.get(target)

    def transfer(self, source: SourceName, target: TargetName) -> None:
        """Give ``target`` to ``source`` (its earlier owner no longer exists: renamed or dropped)."""
        self._owners[target] = source


def collision(first: SourceName, second: SourceName, target: TargetName) -> TargetCollisionError:
    a, b = sorted([first, second])
    return TargetCollisionError(
        f"source tables {_qualified(a)} and {_qualified(b)} both map to lake table {_qualified(target)} "
        "(after the table mapping's transformation rules): one would overwrite the other. Exclude one with a "
        "selection rule or give one another target name with a 'rename' transformation rule")


def check_distinct_targets(pairs: Iterable[tuple[SourceName, TargetName]]) -> None:
    """Refuse (:class:`TargetCollisionError`, naming both) when two sources share a target; also
    refuses (:class:`LakeNameError`) a source or target name that cannot become a lake path."""
    claims = TargetClaims()
    for source, target in sorted(pairs):
        for name in (*source, *target):
            encode_name(name)
        claims.claim(source, target)


def _qualified(name: tuple[str, str]) -> str:
    return "`" + name[0].replace("`", "``") + "`.`" + name[1].replace("`", "``") + "`"
