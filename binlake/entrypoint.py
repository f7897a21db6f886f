"""What every binlake entry point does first: logging to stderr, and the pipeline config — a bad
config ends the job with its :class:`~binlake.config.ConfigError` message (exit status 2), never a
stack trace."""

from __future__ import annotations

import logging
import sys

from binlake.config import ConfigError, PipelineConfig, load_config

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CONFIG_ERROR_EXIT = 2

log = logging.getLogger("binlake")


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    logging.getLogger("py4j").setLevel(logging.WARNING)


def load_pipeline(path: str) -> PipelineConfig | None:
    """The config at ``path``, or ``None`` after logging why it cannot be used."""
    try:
        return load_config(path)
    except ConfigError as exc:
        log.error("%s", exc)
        return None
