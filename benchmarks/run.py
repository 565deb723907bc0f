#!/usr/bin/env python
"""Benchmark harness: ``python benchmarks/run.py --help`` (same as ``seminas-tune bench --help``).

See benchmarks/README.md for the protocol and the outputs.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seminas_tune.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
