"""Retrying operations on binlake's own lake files: which errors are transient, and the back-off.

:class:`RetryPolicy` runs one storage operation (``put``, ``get``, ``list`` …) and retries it on a
*transient* error with exponential back-off: waits of ``first_seconds``, doubling, each capped at
``max_seconds``, at most ``retries`` retries (``lake.retries``, ``lake.retry_max_seconds``). Every
retry is logged at WARNING with the object's URI and the cause. A *persistent* error, or a
transient one still there after the last retry, raises :class:`LakeError` naming the URI, the
cause and whether it was retried. The wait is deterministic (no jitter): one capture process per
pipeline writes to the lake, there is no herd to spread.

:func:`is_transient` decides, from the error alone:

* transient — S3 HTTP 500/502/503/504 and 429, throttling codes (``SlowDown``, ``Throttling`` …),
  ``RequestTimeout``; botocore connection errors and timeouts (``EndpointConnectionError``,
  ``ConnectionClosedError``, ``ReadTimeoutError`` …); OS errors of a network or a busy resource
  (``EINTR``, ``EAGAIN``, ``EBUSY``, ``ETIMEDOUT``, ``ECONNRESET``, ``ECONNREFUSED``, ``EPIPE`` …);
* persistent — everything else, e.g. ``AccessDenied``, ``NoSuchBucket``, bad credentials, TLS
  errors, ``ENOSPC``, ``EACCES``, ``EROFS``, ``ENOTDIR``, ``EEXIST``, ``EIO``: retrying cannot fix
  them and a person must act. Unknown errors count as persistent (stop loudly rather than guess).

Example::

    policy = RetryPolicy(retries=5, max_seconds=10)
    policy.call(lambda: storage.put_bytes(key, data), "write", lake.uri(key))
"""

from __future__ import annotations

import errno
import logging
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_ERRNOS = frozenset({
    errno.EINTR, errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY, errno.ETIMEDOUT, errno.ECONNRESET,
    errno.ECONNABORTED, errno.ECONNREFUSED, errno.EPIPE, errno.EHOSTUNREACH, errno.ENETUNREACH,
    errno.ENETDOWN, errno.ENETRESET,
})
TRANSIENT_HTTP_STATUS = frozenset({429, 500, 502, 503, 504})
TRANSIENT_S3_CODES = frozenset({
    # botocore's standard retry mode: transient and throttling error codes
    "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete", "InternalError",
    "ServiceUnavailable", "Throttling", "ThrottlingException", "ThrottledException",
    "RequestThrottledException", "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
    "LimitExceededException", "RequestThrottled", "SlowDown", "EC2ThrottledException",
})


class LakeError(RuntimeError):
    """An operation on a lake object failed for good; the message names the URI and the cause.

    ``uri``: the object (or folder) operated on; ``cause``: the original error; ``attempts``: how
    many times the operation ran; ``transient``: whether the cause was a transient kind (then the
    retries were exhausted).
    """

    def __init__(self, verb: str, uri: str, cause: BaseException, attempts: int, transient: bool) -> None:
        if not transient:
            why = "not retried: this error does not go away by waiting"
        elif attempts > 1:
            why = f"still failing after {attempts - 1} retries (lake.retries)"
        else:
            why = "tried once"
        super().__init__(f"{verb} {uri} failed: {describe(cause)} ({why})")
        self.verb, self.uri, self.cause, self.attempts, self.transient = verb, uri, cause, attempts, transient


def describe(exc: BaseException) -> str:
    """The error's class and text, with the S3 error code and HTTP status when there is one."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return f"{type(exc).__name__} {code} (HTTP {status}): {exc}"
    return f"{type(exc).__name__}: {exc}"


def _botocore_transient(exc: BaseException) -> bool | None:
    """``True``/``False`` for a botocore error, ``None`` for anything else."""
    exceptions = sys.modules.get("botocore.exceptions")  # not imported: no botocore error can exist
    if exceptions is None:
        return None
    if isinstance(exc, exceptions.SSLError | exceptions.NoCredentialsError):
        return False
    if isinstance(exc, exceptions.ClientError):
        response = exc.response
        code = response.get("Error", {}).get("Code")
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code in TRANSIENT_S3_CODES or status in TRANSIENT_HTTP_STATUS
    if isinstance(exc, exceptions.ConnectionError | exceptions.HTTPClientError | exceptions.IncompleteReadError):
        return True
    if isinstance(exc, exceptions.BotoCoreError):
        return False
    return None


def is_storage_error(exc: BaseException) -> bool:
    """An error of the storage itself (OS or S3 client), as opposed to a caller's bug (``ValueError`` …)."""
    return isinstance(exc, OSError) or _botocore_transient(exc) is not None


def is_transient(exc: BaseException) -> bool:
    """Whether waiting and retrying may make ``exc`` go away (see module doc)."""
    botocore = _botocore_transient(exc)
    if botocore is not None:
        return botocore
    if isinstance(exc, TimeoutError | ConnectionError):  # builtin: ETIMEDOUT, ECONNRESET, EPIPE, …
        return True
    if isinstance(exc, OSError):
        return exc.errno in TRANSIENT_ERRNOS
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential back-off for lake operations (see module doc).

    ``sleep`` waits between attempts; the capture passes one that a stop signal interrupts (it
    raises, and the operation is abandoned without being retried).
    """

    retries: int = 10
    max_seconds: float = 30.0
    first_seconds: float = 0.5
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries must be >= 0")
        if self.max_seconds <= 0 or self.first_seconds <= 0:
            raise ValueError("max_seconds and first_seconds must be > 0")

    def delays(self) -> Iterator[float]:
        """The waits before retry 1, 2, … ``retries``."""
        wait = self.first_seconds
        for _ in range(self.retries):
            yield min(wait, self.max_seconds)
            wait *= 2

    def call(self, operation: Callable[[], T], verb: str, uri: str,
             passthrough: tuple[type[BaseException], ...] = ()) -> T:
        """``operation()``, retried on transient errors; :class:`LakeError` when it fails for good.

        Exceptions of a ``passthrough`` type (e.g. ``FileNotFoundError`` of a read: an answer, not
        a failure) and errors that are not the storage's (:func:`is_storage_error`) are raised
        unchanged, never retried.
        """
        delays = self.delays()
        attempt = 0
        while True:
            attempt += 1
            try:
                return operation()
            except passthrough:
                raise
            except Exception as exc:
                if not is_storage_error(exc):
                    raise
                transient = is_transient(exc)
                wait = next(delays, None) if transient else None
                if wait is None:
                    raise LakeError(verb, uri, exc, attempt, transient) from exc
                log.warning("%s %s failed (%s); retry %d of %d in %.1fs", verb, uri, describe(exc), attempt,
                            self.retries, wait)
            self.sleep(wait)


NO_RETRY = RetryPolicy(retries=0)
"""One attempt: for read-outs (``binlake status``) that should answer at once when the lake is down."""
