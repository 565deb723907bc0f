"""The search-space contract: what every space must do for the package's searchers.

Subclass :class:`SpaceContract` in a pytest module and return your space from ``make_space``::

    from seminas_tune.testing import SpaceContract

    class TestMySpace(SpaceContract):
        def make_space(self):
            return MySpace()
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest

from seminas_tune.spaces.base import InvalidConfigError, SearchSpace, flatten


class SpaceContract:
    """Sampling, validity, keys, tokens, neighbours, mutation and configs of one space."""

    #: Architectures sampled per check.
    n_samples: int = 12

    def make_space(self) -> SearchSpace:
        """The space under test."""
        raise NotImplementedError("a SpaceContract subclass returns its space from make_space()")

    @pytest.fixture
    def space(self) -> SearchSpace:
        return self.make_space()

    def samples(self, space: SearchSpace, n: int | None = None, seed: int = 0) -> list[Any]:
        rng = np.random.default_rng(seed)
        return [space.sample(rng) for _ in range(n or self.n_samples)]

    def test_samples_are_valid_and_varied(self, space):
        archs = self.samples(space)
        assert all(space.is_valid(a) and space.invalid_reason(a) is None for a in archs)
        assert len({space.key(a) for a in archs}) > len(archs) // 2, "sampling is stuck on a few keys"
        assert not space.is_valid(None)

    def test_sampling_is_seeded(self, space):
        keys = [[space.key(a) for a in self.samples(space, seed=7)] for _ in range(2)]
        assert keys[0] == keys[1]

    def test_keys_are_hashable_and_stable(self, space):
        for a in self.samples(space):
            assert hash(space.key(a)) == hash(space.key(space.from_config(space.to_config(a))))

    def test_encode_decode_round_trip(self, space):
        for a in self.samples(space):
            tokens = space.encode(a)
            assert len(tokens) == space.seq_len
            assert all(0 < t < space.vocab_size for t in tokens)
            b = space.decode(tokens)
            assert b is not None and space.key(b) == space.key(a)
        assert space.decode(tokens[:-1]) is None

    def test_tokens_respect_the_mask(self, space):
        mask = space.token_mask()
        assert mask.shape == (space.seq_len, space.vocab_size)
        assert not mask[:, 0].any(), "token 0 is padding and never legal"
        assert mask.any(axis=1).all()
        for p in range(space.seq_len):
            assert set(np.flatnonzero(mask[p])) == set(space.allowed_tokens(p))
        tokens = space.encode(self.samples(space, 1)[0])
        for p, t in enumerate(tokens):
            assert mask[p, t]
            bad = [x for x in range(space.vocab_size) if not mask[p, x]]
            if bad:
                assert space.decode(tokens[:p] + [bad[0]] + tokens[p + 1 :]) is None

    def test_config_round_trip(self, space):
        choices = space.choices()
        for a in self.samples(space):
            flat = flatten(space.to_config(a))
            assert set(flat) == set(choices) | set(space.constants())
            assert all(flat[k] in choices[k] for k in choices)
            assert space.key(space.from_config(space.to_config(a))) == space.key(a)
            bigger = {**space.to_config(a), "__extra_hparam": 0.1}
            assert space.key(space.arch_of(bigger)) == space.key(a)

    def test_bad_configs_raise_one_line(self, space):
        cfg = flatten(space.to_config(self.samples(space, 1)[0]))
        first = sorted(space.choices())[0]
        for bad, text in (
            ({k: v for k, v in cfg.items() if k != first}, f"missing keys ['{first}']"),
            ({**cfg, "__bogus": 1}, "extra keys ['__bogus']"),
            ({**cfg, first: "__not-a-choice"}, "__not-a-choice"),
        ):
            with pytest.raises(InvalidConfigError) as e:
                space.from_config(bad)
            assert text in str(e.value) and "\n" not in str(e.value)

    def test_neighbours_are_valid_distinct_and_new(self, space):
        for a in self.samples(space, 4, seed=1):
            nbrs = space.neighbours(a)
            keys = [space.key(b) for b in nbrs]
            assert all(space.is_valid(b) for b in nbrs)
            assert len(keys) == len(set(keys)), "neighbours repeat a key"
            assert space.key(a) not in keys

    def test_mutate_gives_a_valid_different_architecture(self, space):
        rng = np.random.default_rng(5)
        for a in self.samples(space, 6, seed=2):
            if space.neighbours(a):
                b = space.mutate(a, rng)
                assert space.is_valid(b) and space.key(b) != space.key(a)

    def test_space_pickles(self, space):
        """Spaces travel to Ray tasks and into searcher checkpoints (both cloudpickle)."""
        from ray import cloudpickle

        clone = pickle.loads(cloudpickle.dumps(space))
        for a in self.samples(space, 4):
            assert clone.key(a) == space.key(a) and clone.encode(a) == space.encode(a)
