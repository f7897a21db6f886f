"""What every binlake entry point does first: logging to stderr (redacted, :mod:`binlake.logs`),
and the pipeline config — a bad config ends the job with its :class:`~binlake.config.ConfigError`
message (exit status 2), never a stack trace."""

from __future__ import annotations

import logging

from binlake.config import ConfigError, PipelineConfig, load_config
from binlake.logs import LOG_FORMAT, configure_logging

__all__ = ["CONFIG_ERROR_EXIT", "LOG_FORMAT", "configure_logging", "load_pipeline"]

CONFIG_ERROR_EXIT = 2

log = logging.getLogger("binlake")


def load_pipeline(path: str) -> PipelineConfig | None:
    """The config at ``path``, or ``None`` after logging why it cannot be used."""
    try:
        return load_config(path)
    except ConfigError as exc:
        log.error("%s", exc)
        return None
