#!/usr/bin/env python
"""Train one run or a sweep: ``python scripts/train.py --model NAME --head HEAD --train FILE``.

Same flags as ``tfbert train``; see ``--help``.
"""

import sys

from tfbert.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
