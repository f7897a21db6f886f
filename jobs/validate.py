"""spark-submit entry point of data validation: ``spark-submit jobs/validate.py --config conf/demo.yaml``."""

import sys

from binlake.validation import main

if __name__ == "__main__":
    sys.exit(main())
