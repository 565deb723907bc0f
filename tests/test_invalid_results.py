"""Results that say ``valid=False``: they do not use the budget, a search that gets only those
stops with a warning, and SemiNAS's predictor learns them as the worst architectures.

The objectives here are small made-up functions of a Tune ``param_space`` (generated data)."""

from __future__ import annotations

import logging

import pytest
from ray import tune

from seminas_tune.search import SEARCHERS
from seminas_tune.testing import drive
from tests.test_searcher_contract import SMALL

SPACE = {
    "act": tune.choice(["relu", "tanh", "gelu"]),
    "width": tune.choice([8, 16, 32, 64]),
    "depth": tune.randint(1, 41),
}


def objective(config: dict) -> dict:
    """Wider and deeper is better; every ``tanh`` config is no architecture at all."""
    score = config["width"] / 64 + config["depth"] / 40
    return {"acc": score, "valid": False} if config["act"] == "tanh" else {"acc": score}


def make(name: str, **kw):
    return SEARCHERS[name](space=SPACE, metric="acc", mode="max", seed=0, background="inline", **{**SMALL[name], **kw})


@pytest.mark.parametrize("name", ["random", "re"])
def test_a_search_that_gets_only_invalid_results_stops_with_a_warning(name, caplog):
    s = make(name, max_queries=5)
    with caplog.at_level(logging.WARNING, logger="seminas_tune.search.base"):
        configs = drive(s, lambda cfg: {"acc": 0.0, "valid": False})
    assert len(configs) == s.invalid_allowance * 5
    assert "results said valid=False" in caplog.text and "stopping" in caplog.text


def test_seminas_learns_invalid_architectures_at_the_worst_score():
    tanh = [{"act": "tanh", "width": 8, "depth": 1}, {"act": "tanh", "width": 64, "depth": 40}]
    s = make("seminas", max_queries=12, points_to_evaluate=tanh)
    drive(s, objective)
    ok, labels = s.results(), s.learning_labels()
    invalid = [o for o in s.observations if o.status == "invalid"]
    assert invalid and len(labels) == len(ok) + len(invalid)
    assert len(ok) == 12  # the budget counts valid results only
    worst = min(o.score for o in ok)
    assert [o.score for o in labels[len(ok) :]] == [worst] * len(invalid)
    assert {o.key for o in labels[len(ok) :]} == {o.key for o in invalid}
    assert s.learning_labels(invalid_cost=False) == ok  # the paper's preset: ignored
