"""Pacing of validation: durations of ``--every``, the source rate limit and stop requests (pure)."""

from __future__ import annotations

import threading

import pytest

from binlake.validation.pace import Pacer, Stopped, parse_duration


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("30m", 1800), ("1h", 3600), ("1h30m", 5400), ("2d", 172_800), ("1.5h", 5400), ("45", 45),
    ("0.5", 0.5), (" 10M ", 600),
])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1x", "1h 30m", "-5m", "0", "0s", "1hh", "m30", "inf", "nan"])
def test_bad_durations_name_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_pause_keeps_the_average_rate_at_the_limit() -> None:
    clock = Clock()
    pacer = Pacer(2.0, clock=clock)             # 2 chunks/s: 8 chunks take at least 4 s
    clock.now += 1.0                            # the step read 8 chunks in 1 s
    assert pacer.pause_for(8) == pytest.approx(3.0)
    clock.now += 3.0 + 10.0                     # paused, then the next step took 10 s for 4 chunks
    assert pacer.pause_for(4) == 0.0            # slower than the limit already: no pause
    assert Pacer(0.0, clock=clock).pause_for(1000) == 0.0  # 0 = no limit
    with pytest.raises(ValueError, match="max_chunks_per_second"):
        Pacer(-1.0)


def test_a_stop_request_ends_the_pause_and_is_raised_between_steps() -> None:
    stop = threading.Event()
    pacer = Pacer(0.001, stop)                  # a pause of ~1000 s
    stop.set()
    with pytest.raises(Stopped):
        pacer.step(1)                           # returns at once: the event ends the wait
    Pacer(0.0).step(5)                          # no stop, no limit: nothing happens


def test_every_takes_a_duration_and_refuses_a_bad_one(capsys: pytest.CaptureFixture[str]) -> None:
    from binlake.validation.job import parse_args

    assert parse_args(["--config", "c.yaml", "--every", "30m", "--repair"]).every == 1800
    assert parse_args(["--config", "c.yaml"]).every is None
    with pytest.raises(SystemExit):
        parse_args(["--config", "c.yaml", "--every", "soon"])
    assert "duration 'soon': expected a number of seconds or e.g. 90s, 30m" in capsys.readouterr().err


def test_the_first_signal_asks_the_verifier_to_stop_and_a_second_one_is_the_old_handler() -> None:
    import os
    import signal

    from binlake.validation.every import stop_on_signals

    seen: list[int] = []
    before = signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append(signum))
    try:
        stop = stop_on_signals((signal.SIGUSR1,))
        os.kill(os.getpid(), signal.SIGUSR1)
        assert stop.wait(5) and seen == []
        os.kill(os.getpid(), signal.SIGUSR1)
        assert seen == [signal.SIGUSR1]
    finally:
        signal.signal(signal.SIGUSR1, before)
