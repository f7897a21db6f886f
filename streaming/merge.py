"""spark-submit entry point of the streaming merge: change log → Delta tables.

    spark-submit streaming/merge.py --config conf/<pipeline>.yaml [--available-now]
"""

import sys

from binlake.merge.job import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
