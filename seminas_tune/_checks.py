"""Checks of settings, shared by the searchers and the settings dataclasses. Each raises a
one-line ValueError that names the setting, says what it must be, and shows what it got, so a
bad value stops a search before it starts rather than inside a controller round."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


def check_int(name: str, value: Any, low: int = 1) -> None:
    """``value`` is an int (not a bool) of at least ``low``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        what = {0: "a non-negative integer", 1: "a positive integer"}.get(low, f"an integer >= {low}")
        raise ValueError(f"{name} must be {what}, got {value!r}")


def check_number(name: str, value: Any, low: float = 0.0, high: float = math.inf, *, positive: bool = False) -> None:
    """``value`` is a real number in ``[low, high]`` (``(0, high]`` when ``positive``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not (ok and (value > 0 if positive else value >= low) and value <= high):
        if positive:
            what = "a positive number" + (f" <= {high:g}" if high < math.inf else "")
        else:
            what = f"a number in [{low:g}, {high:g}]" if high < math.inf else f"a number >= {low:g}"
        raise ValueError(f"{name} must be {what}, got {value!r}")


def check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
