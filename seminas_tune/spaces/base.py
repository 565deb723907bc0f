"""The search-space protocol.

A space must say three things: its decisions (``choices``), the config of an architecture
(``to_config``) and the architecture of one value per decision (``from_choices``). Everything
else a searcher or the controller needs (sampling, validity, canonical keys, token encoding,
neighbours, mutation) has a default derived from those; a space overrides what its structure
does better (NB-101 its graph moves, MobileNetV2 its canonical key).
"""

from __future__ import annotations

import abc
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

#: Separator of nested config keys in flat decision names (as in Tune's result columns).
SEP = "/"


class InvalidConfigError(ValueError):
    """A Tune config does not describe an architecture of the space."""


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a/b": 1}``."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, path + SEP))
        else:
            out[path] = v
    return out


def value_id(value: Any) -> tuple:
    """An equality key that keeps ``1``, ``1.0`` and ``True`` apart and accepts lists."""
    try:
        hash(value)
        return type(value).__name__, value
    except TypeError:
        return type(value).__name__, repr(value)


class SearchSpace(abc.ABC):
    """Abstract search space. Subclasses implement :meth:`choices`, :meth:`to_config` and
    :meth:`from_choices`; the rest has defaults.

    Token encodings are fixed-length sequences over ``range(vocab_size)``; token 0 is reserved
    for padding. By default there is one token per decision and one token per distinct value
    (shared by decisions with equal values), and ``allowed_tokens(pos)`` lists the values of
    decision ``pos``.
    """

    name: str = "space"

    # -- what a space must say -----------------------------------------------------------
    @abc.abstractmethod
    def choices(self) -> dict[str, list[Any]]:
        """One categorical decision per flat config key: the values it may take."""

    @abc.abstractmethod
    def to_config(self, arch: Any) -> dict[str, Any]:
        """The config a trainable receives; flattened (``flatten``) its keys are those of
        ``choices()`` plus ``constants()``."""

    @abc.abstractmethod
    def from_choices(self, values: dict[str, Any]) -> Any:
        """The architecture of one value per decision (values already checked; it may still
        be invalid)."""

    # -- sampling and validity -----------------------------------------------------------
    def constants(self) -> dict[str, Any]:
        """Flat config entries that are not searched."""
        return {}

    def sample(self, rng: np.random.Generator) -> Any:
        """A valid architecture, uniform over the decisions (invalid draws are redrawn)."""
        options = list(self.choices().items())
        sizes = np.array([len(v) for _, v in options])
        for _ in range(10_000):
            idx = rng.integers(0, sizes)
            arch = self.from_choices({k: v[i] for (k, v), i in zip(options, idx)})
            if self.invalid_reason(arch) is None:
                return arch
        raise RuntimeError(f"{self.name}: no valid architecture in 10,000 random draws; check the constraint")

    def invalid_reason(self, arch: Any) -> str | None:
        """Why ``arch`` is not a member of the space, or None when it is."""
        return None

    def is_valid(self, arch: Any) -> bool:
        """True when ``arch`` is a member of the space."""
        return arch is not None and self.invalid_reason(arch) is None

    def key(self, arch: Any) -> Hashable:
        """Canonical key: equal for architectures that compute the same function."""
        return tuple(self._indices(arch))

    def describe(self, arch: Any) -> str:
        """Short human-readable form."""
        parts = []
        for k, v in self._values(arch).items():
            parts.append(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}")
        return " ".join(parts)

    def _values(self, arch: Any) -> dict[str, Any]:
        flat = flatten(self.to_config(arch))
        return {k: flat[k] for k in self.choices()}

    def _index_maps(self) -> list[dict[tuple, int]]:
        maps = self.__dict__.get("_index_cache")
        if maps is None:
            maps = [{value_id(v): i for i, v in enumerate(vals)} for vals in self.choices().values()]
            self.__dict__["_index_cache"] = maps
        return maps

    def _indices(self, arch: Any) -> list[int]:
        out = []
        for (name, v), m in zip(self._values(arch).items(), self._index_maps()):
            i = m.get(value_id(v))
            if i is None:
                raise ValueError(f"{self.name}: {name}={v!r} is not one of {self.choices()[name]}")
            out.append(i)
        return out

    # -- controller tokens ---------------------------------------------------------------
    def _vocab(self) -> tuple[dict[tuple, int], list[list[int]]]:
        """(value id -> token, per decision: token of each value)."""
        cached = self.__dict__.get("_vocab_cache")
        if cached is None:
            ids: dict[tuple, int] = {}
            per: list[list[int]] = []
            for vals in self.choices().values():
                per.append([ids.setdefault(value_id(v), len(ids) + 1) for v in vals])
            cached = self.__dict__["_vocab_cache"] = (ids, per)
        return cached

    @property
    def vocab_size(self) -> int:
        """Number of distinct tokens, padding (0) included."""
        return len(self._vocab()[0]) + 1

    @property
    def seq_len(self) -> int:
        """Length of every token sequence."""
        return len(self.choices())

    def allowed_tokens(self, position: int) -> Sequence[int]:
        """Tokens the decoder may emit at ``position``."""
        if not 0 <= position < self.seq_len:
            raise IndexError(f"position {position} outside 0..{self.seq_len - 1}")
        return tuple(self._vocab()[1][position])

    def token_mask(self) -> np.ndarray:
        """Boolean ``seq_len x vocab_size`` mask of allowed tokens."""
        mask = np.zeros((self.seq_len, self.vocab_size), dtype=bool)
        for p in range(self.seq_len):
            mask[p, list(self.allowed_tokens(p))] = True
        return mask

    def encode(self, arch: Any) -> list[int]:
        """Token sequence of ``arch``."""
        per = self._vocab()[1]
        return [per[p][i] for p, i in enumerate(self._indices(arch))]

    def decode(self, tokens: Sequence[int]) -> Any | None:
        """Architecture of a token sequence, or None when it describes no member."""
        if len(tokens) != self.seq_len:
            return None
        values = {}
        for (name, vals), toks, t in zip(self.choices().items(), self._vocab()[1], tokens):
            if int(t) not in toks:
                return None
            values[name] = vals[toks.index(int(t))]
        arch = self.from_choices(values)
        return arch if self.invalid_reason(arch) is None else None

    # -- local moves ---------------------------------------------------------------------
    def neighbours(self, arch: Any) -> list[Any]:
        """All valid architectures that differ in one decision, one per distinct key, ``arch``
        excluded; in decision order, then value order."""
        values = self._values(arch)
        seen, out = {self.key(arch)}, []
        for name, vals in self.choices().items():
            current = value_id(values[name])
            for v in vals:
                if value_id(v) == current:
                    continue
                cand = self.from_choices({**values, name: v})
                if self.invalid_reason(cand) is not None:
                    continue
                k = self.key(cand)
                if k not in seen:
                    seen.add(k)
                    out.append(cand)
        return out

    def mutate(self, arch: Any, rng: np.random.Generator) -> Any:
        """A random neighbour (``arch`` itself when it has none)."""
        nbrs = self.neighbours(arch)
        return nbrs[rng.integers(len(nbrs))] if nbrs else arch

    # -- Tune configs --------------------------------------------------------------------
    def tune_space(self) -> dict[str, Any]:
        """``param_space`` for Tune's built-in searchers: one ``tune.choice`` per decision."""
        from ray import tune

        return {k: tune.choice(v) for k, v in self.choices().items()}

    def from_config(self, config: dict[str, Any]) -> Any:
        """Architecture of a config (nested or flat; may still be invalid: check ``is_valid``).

        Raises:
            InvalidConfigError: keys missing or extra, or a value outside its choices.
        """
        flat = flatten(config)
        choices = self.choices()
        missing = sorted(set(choices) - set(flat))
        extra = sorted(set(flat) - set(choices) - set(self.constants()))
        if missing or extra:
            raise InvalidConfigError(
                f"config does not match {self.name}: missing keys {missing}, extra keys {extra}; "
                f"build configs with space.to_config(arch) or space.tune_space()"
            )
        values = {}
        for (k, allowed), m in zip(choices.items(), self._index_maps()):
            i = m.get(value_id(flat[k]))
            if i is None:  # an equal value of another type (numpy scalars from a DataFrame)
                i = next((j for j, v in enumerate(allowed) if type(v) is not bool and v == flat[k]), None)
            if i is None:
                raise InvalidConfigError(f"config value {k}={flat[k]!r} is not one of {allowed} in {self.name}")
            values[k] = allowed[i]
        return self.from_choices(values)

    def arch_of(self, config: dict[str, Any]) -> Any:
        """``from_config`` on the space's own keys of a possibly larger Tune config."""
        flat = flatten(config)
        return self.from_config({k: flat[k] for k in self.choices() if k in flat})

    # -- optional constraints ------------------------------------------------------------
    def flops(self, arch: Any) -> float:
        """Cost bounded by the searchers' ``max_flops`` (FLOPs, latency, ...); spaces without a
        cost model raise."""
        raise NotImplementedError(f"{self.name} has no cost (FLOPs) model")
