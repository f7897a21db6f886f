"""Logging for every binlake process: timestamped lines on stderr, secrets never written.

Two layers keep credentials out of the log, at every level, ``--verbose`` included:

1. Libraries that log credentials or request headers at DEBUG stay at WARNING whatever binlake's
   own level is (:data:`QUIET_LIBRARIES`): botocore logs signed request headers
   (``Authorization``, ``X-Amz-Security-Token``), py4j logs every command sent to the JVM (JDBC
   options with the source password among them).
2. Every line a binlake handler writes, traceback included, goes through :func:`redact`: the
   values of the secrets this process knows (the AWS keys and session token from the environment,
   the source password however it was read, anything passed to :func:`register_secret`) and the
   values of known secret-bearing fields (``Authorization:`` and ``X-Amz-Security-Token:``
   headers, ``password=…``, ``X-Amz-Signature=…``, ``'password': …``, ``"fs.s3a.secret.key": …``)
   become ``***``.

Spark's JVM log (log4j2) is not ours: it stays at WARN, and the Spark settings binlake builds
never hold a secret (S3 credentials come from the AWS environment chain, the config refuses
secret-bearing ``spark.conf`` keys).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "***"

QUIET_LIBRARIES: dict[str, int] = {
    "botocore": logging.WARNING,
    "boto3": logging.WARNING,
    "s3transfer": logging.WARNING,
    "urllib3": logging.WARNING,
    "py4j": logging.WARNING,
    "pymysql": logging.WARNING,
    "pymysqlreplication": logging.ERROR,
}

# Environment variables whose values are secrets wherever they appear.
SECRET_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
_SECRET_ENV_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL", re.IGNORECASE)
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words; no real key or password is that short
# A variable merely *named* like a secret (FEATURE_TOKEN_TTL=3600, SECRET_ROTATION=true) may hold an
# ordinary word: only values this long are taken for secrets.
MIN_NAMED_SECRET_LENGTH = 8

_NAMES = (r"password|passwd|pwd|authorization|secret[_.-]?(?:access[_.-]?)?key|session[_.-]?token|security[_.-]?token"
          r"|access[_.-]?key(?:[_.-]?id)?|x-amz-signature|x-amz-credential")
_VALUE = r"""(?P<value>b?'[^']*'|b?"[^"]*"|[^\s&;,'"}\])]+)"""
_FIELDS = (
    # name=value: URLs and query strings, JDBC properties, ini files, -D options
    re.compile(rf"(?i)(?P<key>(?:{_NAMES})\s*=\s*){_VALUE}"),
    # 'name': value — a dict's or a JSON object's key (a dotted Hadoop key ending in a secret name too)
    re.compile(rf"""(?i)(?P<key>['"][\w.-]*?(?:{_NAMES})['"]\s*:\s*){_VALUE}"""),
    # a raw HTTP header line, whose value holds spaces: the rest of the line
    re.compile(r"(?im)(?P<key>\b(?:authorization|x-amz-security-token)\s*:\s*)(?P<value>[^\r\n]+)"),
)

_lock = threading.Lock()
_registered: set[str] = set()


def register_secret(value: str | None) -> None:
    """Mask ``value`` in every later log line of this process (no-op for empty/short values)."""
    if value and len(value) >= MIN_SECRET_LENGTH:
        with _lock:
            _registered.add(value)


def environment_secrets(environ: dict[str, str] | os._Environ[str] | None = None) -> set[str]:
    """The values of the AWS credential variables and of every variable named like a secret
    (``*PASSWORD*``, ``*SECRET*``, ``*TOKEN*``, ``*CREDENTIAL*``) whose value is long enough to be one."""
    environ = os.environ if environ is None else environ
    return {
        value for name, value in environ.items()
        if (name in SECRET_ENV and len(value) >= MIN_SECRET_LENGTH)
        or (_SECRET_ENV_NAME.search(name) and len(value) >= MIN_NAMED_SECRET_LENGTH)
    }


def known_secrets() -> list[str]:
    """Registered secrets plus the environment's, longest first (so a secret containing another is
    masked whole)."""
    with _lock:
        values = _registered | environment_secrets()
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: list[str] | None = None) -> str:
    """``text`` with every known secret value and every secret-bearing field's value masked."""
    for secret in known_secrets() if secrets is None else secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in _FIELDS:
        text = pattern.sub(lambda match: match.group("key") + MASK, text)
    return text


class RedactingFormatter(logging.Formatter):
    """A formatter whose whole output (message, arguments, traceback) goes through :func:`redact`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(verbose: bool = False) -> None:
    """Log binlake's lines at INFO (DEBUG with ``verbose``) to stderr, redacted; libraries in
    :data:`QUIET_LIBRARIES` at their fixed level either way. Idempotent: calling it again only
    changes the level, and puts the redacting formatter on handlers someone else installed."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    for handler in root.handlers:
        if not isinstance(handler.formatter, RedactingFormatter):
            handler.setFormatter(RedactingFormatter(LOG_FORMAT))
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name, level in QUIET_LIBRARIES.items():
        logging.getLogger(name).setLevel(level)
