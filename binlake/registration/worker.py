"""The registration process :class:`~binlake.registration.runner.RegistrationRunner` starts: reads the
pipeline config as JSON on stdin, runs one catalog sync; exit status 0 = every live lake table
registered, 1 = something failed (recorded in ``_binlake/registration.json``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from binlake.config import parse_config
from binlake.logs import configure_logging
from binlake.registration.sync import run_sync


def main() -> int:
    configure_logging(False)
    config = parse_config(json.loads(sys.stdin.read()), Path("<registration>"))
    return 0 if run_sync(config).ok else 1


if __name__ == "__main__":
    sys.exit(main())
