"""Tune ``param_space`` entries as finite lists of values (the decisions of a CategoricalSpace).

- ``tune.choice(values)``: its values.
- Integers (``randint``, ``qrandint``, ``lograndint``, ``qlograndint``): every value when there
  are at most ``2 x resolution`` of them, else ``resolution`` values spread over the range
  (log-spaced for the log domains).
- Floats (``uniform``, ``loguniform``, ``quniform``, ``qloguniform``, bounded ``randn``):
  ``resolution`` values from lower to upper (log-spaced for the log domains), snapped to ``q``;
  a quantized domain with at most ``2 x resolution`` multiples of ``q`` keeps them all.
- Anything else that is not a dict (numbers, strings, lists) is a constant.

``grid_search``, ``sample_from`` and unbounded domains cannot be searched and raise
:class:`ValueError` naming the entry.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from seminas_tune.spaces.base import SEP


def _is_domain(value: Any) -> bool:
    from ray.tune.search.sample import Domain

    return isinstance(value, Domain)


def tune_domains(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every searchable entry of a (nested) param_space by flat key; grid searches included,
    so that converting them can raise."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and set(v) == {"grid_search"}:
            out[path] = v
        elif isinstance(v, dict):
            out.update(tune_domains(v, path + SEP))
        elif _is_domain(v):
            out[path] = v
        elif isinstance(v, (list, tuple)) and any(_is_domain(x) or isinstance(x, dict) for x in v):
            raise ValueError(
                f"param_space entry {path!r}: domains inside a list are not searched; use a dict of domains instead"
            )
    return out


def _sampler_parts(domain: Any) -> tuple[Any, float | None]:
    """(inner sampler, quantum q or None)."""
    from ray.tune.search.sample import Quantized

    sampler = domain.get_sampler()
    if isinstance(sampler, Quantized):
        return sampler.sampler, sampler.q
    return sampler, None


def _spread(lower: float, upper: float, n: int, log: bool) -> np.ndarray:
    if log:
        return np.geomspace(lower, upper, n)
    return np.linspace(lower, upper, n)


def _unique(values: list) -> list:
    out: list = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def grid(path: str, domain: Any, resolution: int) -> list[Any]:
    """The finite list of values a searcher chooses from for one param_space entry."""
    from ray.tune.search.sample import Categorical, Float, Function, Integer

    where = f"param_space entry {path!r}"
    if isinstance(domain, dict):
        raise ValueError(
            f"{where}: grid_search cannot be combined with a searcher; use tune.choice({domain['grid_search']!r})"
        )
    if isinstance(domain, Categorical):
        if any(_is_domain(c) for c in domain.categories):
            raise ValueError(f"{where}: tune.choice over domains is not supported; use plain values")
        if not domain.categories:
            raise ValueError(f"{where}: tune.choice([]) has no values")
        return list(domain.categories)
    if isinstance(domain, Function):
        raise ValueError(
            f"{where}: tune.sample_from cannot be searched; use tune.choice, tune.randint or a bounded float domain"
        )
    sampler, q = _sampler_parts(domain)
    kind = type(sampler).__name__
    log = kind == "_LogUniform"
    if isinstance(domain, Integer):
        step = int(q or 1)
        upper = domain.upper if step > 1 else domain.upper - 1  # randint's upper is exclusive
        values = list(range(math.ceil(domain.lower / step) * step, upper + 1, step))
        if not values:
            raise ValueError(f"{where}: the integer range [{domain.lower}, {domain.upper}) is empty")
        if len(values) > 2 * resolution:
            picks = _spread(values[0], values[-1], resolution, log and values[0] > 0)
            values = _unique([int(round(p / step)) * step for p in picks])
        return values
    if isinstance(domain, Float):
        if not (math.isfinite(domain.lower) and math.isfinite(domain.upper)):
            raise ValueError(
                f"{where}: an unbounded float domain (tune.randn) cannot be searched; "
                f"use tune.uniform(low, high) or tune.loguniform(low, high)"
            )
        if q:
            first = math.ceil(domain.lower / q - 1e-9)
            count = math.floor(domain.upper / q + 1e-9) - first + 1
            if 0 < count <= 2 * resolution:
                return [float(f"{(first + i) * q:.12g}") for i in range(count)]
        picks = _spread(domain.lower, domain.upper, resolution, log)
        if q:
            picks = np.round(picks / q) * q
        return _unique([float(f"{p:.12g}") for p in picks])
    raise ValueError(f"{where}: {type(domain).__name__} domains are not supported")
