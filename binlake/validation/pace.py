"""Pacing of validation (pure): the source rate limit, stop requests between steps, and durations.

Validation asks the source for chunk checksums in steps of ``validation.step_chunks`` chunks
(:func:`binlake.validation.job.validate_table`). After every step a :class:`Pacer` pauses so that
the average rate since the pacer was made stays at or below ``validation.max_chunks_per_second``,
and raises :class:`Stopped` when a stop was requested (SIGTERM/SIGINT of ``validate --every``):
the step that was running is finished, nothing half-read is recorded.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(d|h|m|s)")
_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


class Stopped(Exception):
    """A stop was requested; raised between steps, never inside one."""


class Pacer:
    """Pauses after each step so that at most ``max_chunks_per_second`` chunks are read per second on
    average (0 = no pause); ``stop`` is the event a signal handler sets."""

    def __init__(self, max_chunks_per_second: float = 0.0, stop: threading.Event | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_chunks_per_second < 0:
            raise ValueError(f"max_chunks_per_second must be >= 0, got {max_chunks_per_second}")
        self.max_chunks_per_second = max_chunks_per_second
        self.stop = stop or threading.Event()
        self._clock = clock
        self._started = clock()
        self._chunks = 0

    def pause_for(self, chunks: int) -> float:
        """Seconds to pause once ``chunks`` more chunks were read (pure given the clock)."""
        self._chunks += chunks
        if not self.max_chunks_per_second:
            return 0.0
        return max(0.0, self._started + self._chunks / self.max_chunks_per_second - self._clock())

    def step(self, chunks: int) -> None:
        """Call after a step that read ``chunks`` chunks: pauses as the rate asks (a stop request ends
        the pause at once), then raises :class:`Stopped` if a stop was requested."""
        pause = self.pause_for(chunks)
        if pause > 0:
            self.stop.wait(pause)
        self.check()

    def check(self) -> None:
        """Raise :class:`Stopped` when a stop was requested."""
        if self.stop.is_set():
            raise Stopped("stop requested")


def parse_duration(text: str) -> float:
    """Seconds of a duration such as ``90s``, ``30m``, ``1h``, ``1h30m``, ``2d`` or a bare number of
    seconds; raises :class:`ValueError` naming the text when it is none, or not positive."""
    value = text.strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        parts = _DURATION.findall(value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise ValueError(f"duration {text!r}: expected a number of seconds or e.g. 90s, 30m, 1h, 1h30m, 2d"
                             ) from None
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"duration {text!r} must be a finite number of seconds above 0")
    return seconds
