"""``binlake capture`` entry point: wiring only (config → lake → runner), logging and exit codes.

Exit codes: 0 after a clean stop (SIGTERM/SIGINT), 2 for a problem the user must fix (config,
source settings or grants, purged binlog, data binlake cannot capture exactly), 3 when the lake
failed for good (a change-log or checkpoint write, or reading the checkpoint; the checkpoint did
not move: fix the lake, restart), 1 otherwise.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from binlake.capture.records import CaptureDataError
from binlake.capture.runner import CaptureRunner
from binlake.capture.sink import LakeWriteError
from binlake.config import ConfigError, load_config
from binlake.logs import configure_logging
from binlake.retry import LakeError
from binlake.source import SourceError
from binlake.typemap import UnsupportedTypeError

log = logging.getLogger("binlake.capture")

USER_ERRORS = (ConfigError, SourceError, CaptureDataError, UnsupportedTypeError)


def main(config_path: str | Path, verbose: bool = False) -> int:
    """Run the capture of the pipeline in ``config_path`` until stopped; the process exit code.
    ``verbose``: binlake's own DEBUG lines too (libraries stay quiet, secrets are masked)."""
    configure_logging(verbose)
    try:
        config = load_config(config_path)
        runner = CaptureRunner(config)
        runner.install_signal_handlers()
        runner.run()
    except USER_ERRORS as exc:
        log.error("%s", exc)
        return 2
    except (LakeWriteError, LakeError) as exc:  # LakeError: e.g. the checkpoint could not be read at start
        log.error("%s", exc)
        return 3
    except Exception:
        log.exception("capture failed")
        return 1
    return 0


if __name__ == "__main__":  # python -m binlake.capture.main CONFIG
    sys.exit(main(sys.argv[1]))
