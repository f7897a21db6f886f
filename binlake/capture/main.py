"""``binlake capture`` entry point: wiring only (config → lake → runner), logging and exit codes.

Exit codes: 0 after a clean stop (SIGTERM/SIGINT), 2 for a problem the user must fix (config,
source settings or grants, purged binlog, data binlake cannot capture exactly), 3 when the lake
refused a change-log or checkpoint write (the checkpoint did not move: fix the lake, restart),
1 otherwise.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from binlake.capture.records import CaptureDataError
from binlake.capture.runner import CaptureRunner
from binlake.capture.sink import LakeWriteError
from binlake.config import ConfigError, load_config
from binlake.source import SourceError
from binlake.typemap import UnsupportedTypeError

log = logging.getLogger("binlake.capture")

USER_ERRORS = (ConfigError, SourceError, CaptureDataError, UnsupportedTypeError)


def configure_logging(level: int = logging.INFO) -> None:
    """Timestamped lines on stderr (idempotent); pymysqlreplication's own logger is kept quiet."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("pymysqlreplication").setLevel(logging.ERROR)


def main(config_path: str | Path) -> int:
    """Run the capture of the pipeline in ``config_path`` until stopped; the process exit code."""
    configure_logging()
    try:
        config = load_config(config_path)
        runner = CaptureRunner(config)
        runner.install_signal_handlers()
        runner.run()
    except USER_ERRORS as exc:
        log.error("%s", exc)
        return 2
    except LakeWriteError as exc:
        log.error("%s", exc)
        return 3
    except Exception:
        log.exception("capture failed")
        return 1
    return 0


if __name__ == "__main__":  # python -m binlake.capture.main CONFIG
    sys.exit(main(sys.argv[1]))
