"""The search-space protocol every space implements.

A space knows how to sample, validate, canonicalise, tokenise, mutate and flatten its
architectures. Searchers and the controller only talk to a space through this interface, so a
new space (a new file in this package) works with every searcher.
"""

from __future__ import annotations

import abc
from typing import Any, Hashable, Sequence

import numpy as np


class InvalidConfigError(ValueError):
    """A Tune config does not describe an architecture of the space."""


class SearchSpace(abc.ABC):
    """Abstract search space.

    Token encodings are fixed-length sequences over ``range(vocab_size)``; token 0 is reserved
    for padding. ``allowed_tokens(pos)`` lists the tokens the decoder may emit at ``pos``.
    """

    name: str = "space"

    # -- sampling and validity ---------------------------------------------------------
    @abc.abstractmethod
    def sample(self, rng: np.random.Generator) -> Any:
        """Draw a valid architecture uniformly (over canonical keys where feasible)."""

    @abc.abstractmethod
    def invalid_reason(self, arch: Any) -> str | None:
        """Why ``arch`` is not a member of the space, or None when it is."""

    def is_valid(self, arch: Any) -> bool:
        """True when ``arch`` is a member of the space."""
        return arch is not None and self.invalid_reason(arch) is None

    @abc.abstractmethod
    def key(self, arch: Any) -> Hashable:
        """Canonical key: equal for architectures that compute the same function."""

    def describe(self, arch: Any) -> str:
        """Short human-readable form."""
        return str(arch)

    # -- controller tokens --------------------------------------------------------------
    @property
    @abc.abstractmethod
    def vocab_size(self) -> int:
        """Number of distinct tokens, padding (0) included."""

    @property
    @abc.abstractmethod
    def seq_len(self) -> int:
        """Length of every token sequence."""

    @abc.abstractmethod
    def allowed_tokens(self, position: int) -> Sequence[int]:
        """Tokens the decoder may emit at ``position``."""

    def token_mask(self) -> np.ndarray:
        """Boolean ``seq_len x vocab_size`` mask of allowed tokens."""
        mask = np.zeros((self.seq_len, self.vocab_size), dtype=bool)
        for p in range(self.seq_len):
            mask[p, list(self.allowed_tokens(p))] = True
        return mask

    @abc.abstractmethod
    def encode(self, arch: Any) -> list[int]:
        """Token sequence of ``arch``."""

    @abc.abstractmethod
    def decode(self, tokens: Sequence[int]) -> Any | None:
        """Architecture of a token sequence, or None when it describes no member."""

    # -- local moves ---------------------------------------------------------------------
    @abc.abstractmethod
    def mutate(self, arch: Any, rng: np.random.Generator) -> Any:
        """A valid architecture with a different key, derived from ``arch``."""

    @abc.abstractmethod
    def neighbours(self, arch: Any) -> list[Any]:
        """All valid architectures at edit distance 1, one per distinct key, ``arch`` excluded."""

    # -- flat Tune config ----------------------------------------------------------------
    @abc.abstractmethod
    def choices(self) -> dict[str, list[Any]]:
        """One categorical decision per key: the values ``to_config`` may produce."""

    def tune_space(self) -> dict[str, Any]:
        """``param_space`` for Tune's built-in searchers: one ``tune.choice`` per decision."""
        from ray import tune

        return {k: tune.choice(v) for k, v in self.choices().items()}

    @abc.abstractmethod
    def to_config(self, arch: Any) -> dict[str, Any]:
        """Flat config with exactly the keys of ``choices()``."""

    @abc.abstractmethod
    def _from_checked_config(self, config: dict[str, Any]) -> Any:
        """Architecture of a config whose keys and values were checked; may be invalid."""

    def from_config(self, config: dict[str, Any]) -> Any:
        """Architecture of a flat config (may still be invalid; check with ``is_valid``).

        Raises:
            InvalidConfigError: keys missing or extra, or a value outside its choices.
        """
        choices = self.choices()
        missing = sorted(set(choices) - set(config))
        extra = sorted(set(config) - set(choices))
        if missing or extra:
            raise InvalidConfigError(
                f"config does not match {self.name}: missing keys {missing}, extra keys {extra}; "
                f"build configs with space.to_config(arch) or space.tune_space()"
            )
        for k, allowed in choices.items():
            if config[k] not in allowed:
                raise InvalidConfigError(
                    f"config value {k}={config[k]!r} is not one of {allowed} in {self.name}"
                )
        return self._from_checked_config(config)

    def arch_of(self, config: dict[str, Any]) -> Any:
        """``from_config`` on the space's own keys of a possibly larger Tune config."""
        return self.from_config({k: config[k] for k in self.choices() if k in config})

    # -- optional constraints ------------------------------------------------------------
    def flops(self, arch: Any) -> float:
        """Multiply-adds of ``arch``; spaces without a cost model raise."""
        raise NotImplementedError(f"{self.name} has no FLOPs model")
