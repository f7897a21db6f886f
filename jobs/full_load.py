"""Full load: ``spark-submit jobs/full_load.py --config conf/<pipeline>.yaml [--restart]``.

Thin entry point; everything happens in :func:`binlake.snapshot.job.main`.
"""

import sys

from binlake.snapshot.job import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
