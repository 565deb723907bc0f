"""``python -m seminas_tune.bench ...``: the harness's command line."""

import sys

from seminas_tune.bench.cli import main

sys.exit(main(sys.argv[1:]))
