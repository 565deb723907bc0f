"""A space of categorical decisions, from a Tune ``param_space`` or plain value lists."""

from __future__ import annotations

import copy
from collections.abc import Callable, Hashable
from typing import Any

from seminas_tune.spaces._tune_grid import grid, tune_domains
from seminas_tune.spaces.base import SEP, SearchSpace, flatten, value_id

__all__ = ["CategoricalSpace", "tune_domains"]


class CategoricalSpace(SearchSpace):
    """Architectures (and hyper-parameters) as one value per decision.

    An architecture is the tuple of its values in decision order. Sampling, tokens, mutation,
    neighbours and the config come from the decisions; hooks add what they cannot express.

    Args:
        param_space: a Tune ``param_space``: ``tune.choice``, integer and bounded float domains,
            constants, nested dicts. Continuous domains are searched on a grid (see
            :mod:`seminas_tune.spaces._tune_grid`).
        decisions: instead of ``param_space``, plain value lists by flat key (``"a/b"`` nests).
        resolution: grid points per continuous domain.
        key: ``key(config) -> hashable``; configs that build the same model share a key.
        constraint: ``constraint(config) -> bool | str | None``; False or a reason string
            rejects a config (True or None accepts it).
        flops: ``flops(config) -> float``, the cost the searchers' ``max_flops`` bounds.
        name: shown in messages and checkpoints.

    Hooks get the config as the trainable receives it (nested, constants included).

    Raises:
        ValueError: an entry cannot be searched (``grid_search``, ``sample_from``, unbounded),
            naming it; or no decision at all.
    """

    name = "categorical"

    def __init__(
        self,
        param_space: dict[str, Any] | None = None,
        *,
        decisions: dict[str, list[Any]] | None = None,
        resolution: int = 10,
        key: Callable[[dict], Hashable] | None = None,
        constraint: Callable[[dict], bool | str | None] | None = None,
        flops: Callable[[dict], float] | None = None,
        name: str | None = None,
    ):
        if (param_space is None) == (decisions is None):
            raise ValueError("CategoricalSpace takes either a Tune param_space or decisions=, not both or neither")
        if param_space is not None:
            domains = tune_domains(param_space)
            self._decisions = {k: grid(k, d, resolution) for k, d in domains.items()}
            self._constants = {
                k: v
                for k, v in flatten(param_space).items()
                if k not in domains and not any(k.startswith(d + SEP) for d in domains)
            }
        else:
            self._decisions = {k: list(v) for k, v in (decisions or {}).items()}
            self._constants = {}
        empty = [k for k, v in self._decisions.items() if not v]
        if not self._decisions or empty:
            raise ValueError(f"CategoricalSpace needs at least one decision with values (empty: {empty})")
        self._names = list(self._decisions)
        self._key_fn, self._constraint, self._flops = key, constraint, flops
        if name is not None:
            self.name = name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self._names)} decisions: {', '.join(self._names[:6])}" + (
            ", ...)" if len(self._names) > 6 else ")"
        )

    # -- the protocol ----------------------------------------------------------------------
    def choices(self) -> dict[str, list[Any]]:
        return self._decisions

    def constants(self) -> dict[str, Any]:
        return self._constants

    def from_choices(self, values: dict[str, Any]) -> tuple:
        return tuple(values[k] for k in self._names)

    def to_config(self, arch: tuple) -> dict[str, Any]:
        config: dict[str, Any] = {}
        for path, value in [*self._constants.items(), *zip(self._names, arch)]:
            node, parts = config, path.split(SEP)
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = copy.deepcopy(value)
        return config

    def _values(self, arch: tuple) -> dict[str, Any]:
        return dict(zip(self._names, arch))

    def invalid_reason(self, arch: Any) -> str | None:
        if not isinstance(arch, tuple) or len(arch) != len(self._names):
            return f"expected a tuple of {len(self._names)} values ({', '.join(self._names)}), got {arch!r}"
        for (name, vals), m, v in zip(self._decisions.items(), self._index_maps(), arch):
            if value_id(v) not in m:
                return f"{name}={v!r} is not one of {vals}"
        if self._constraint is not None:
            verdict = self._constraint(self.to_config(arch))
            if verdict is False:
                return "rejected by the constraint"
            if isinstance(verdict, str):
                return verdict
        return None

    def key(self, arch: tuple) -> Hashable:
        if self._key_fn is not None:
            return self._key_fn(self.to_config(arch))
        return super().key(arch)

    def flops(self, arch: tuple) -> float:
        if self._flops is None:
            return super().flops(arch)
        return float(self._flops(self.to_config(arch)))
