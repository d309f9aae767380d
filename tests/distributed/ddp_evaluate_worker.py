"""One torchrun process of the resume-race test: rank 1 reads the record cache late.

Without a barrier between reading the cache and the first write, rank 0's first records
change what rank 1 sees as pending, so the two ranks partition different lists and a
sample is scored by no rank.
"""

from __future__ import annotations

import os
import sys
import time

import groundbench.evaluate as evaluate_module
from groundbench.cli import main

_read = evaluate_module.read_records


def _late_read(*args, **kwargs):
    if os.environ.get("RANK") == "1":
        time.sleep(float(os.environ.get("LATE_READ_S", "3")))
    return _read(*args, **kwargs)


evaluate_module.read_records = _late_read

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
