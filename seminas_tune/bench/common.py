"""What every module of the harness shares: its error type and the protocol's constants."""

from __future__ import annotations

import ast
from typing import Any

HARNESS_VERSION = 1
"""Part of every unit's fingerprint: raise it when a unit's results would change."""
METRIC = "val_accuracy"
PENALTY = 0.0
"""The value a config that is no member of the table gets (``valid=False``)."""
ROW_COLUMNS = [
    "benchmark",
    "algorithm",
    "seed",
    "step",
    "query",
    "valid",
    "duplicate",
    "key",
    "value",
    "table_value",
    "best_value",
    "regret",
    "val_regret",
    "incumbent_test",
    "cum_time",
]


class BenchError(ValueError):
    """A harness input or state that cannot work; the message says what to change.

    The harness's functions raise it; only the command line (:func:`seminas_tune.bench.main`)
    turns it into a one-line message and exit code 2.
    """


def parse_value(text: str) -> Any:
    """A ``--set`` value: ``true`` / ``false`` (any case) as booleans, else a Python literal, else
    the text itself."""
    if text.strip().lower() in ("true", "false"):
        return text.strip().lower() == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
