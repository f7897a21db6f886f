"""Process helpers shared by the development servers (:mod:`binlake.devdb`, :mod:`binlake.devs3`)."""

from __future__ import annotations

import signal
import socket
import subprocess


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes], hard: bool, timeout: float) -> None:
    """Stop ``process``: SIGTERM (a clean shutdown) or, with ``hard``, SIGKILL; SIGKILL after
    ``timeout`` seconds if it has not exited. Returns once it has exited (reaped)."""
    process.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
