"""The searcher contract (``seminas_tune.testing.SearcherContract``) over every searcher of the
package, on the bundled NB101-30k table and on a Tune ``param_space``, plus checks of our own.

Small controller settings keep the suite fast.
"""

from __future__ import annotations

import math

import pytest
from ray import tune

from seminas_tune.controller import ControllerConfig, EPDConfig
from seminas_tune.search import SEARCHERS, CheckpointError, searcher_parameters
from seminas_tune.spaces import CategoricalSpace, InvalidConfigError
from seminas_tune.testing import SearcherContract, drive
from trainables.nasbench import evaluate_nasbench101, nasbench101_space

TINY = ControllerConfig(
    epd=EPDConfig(hidden=16, mlp_hidden=16), labeled_steps=5, joint_steps=5, batch_size=32, num_threads=1
)

SMALL = {
    "seminas": dict(num_initial=4, num_new=4, top_k=4, num_unlabeled=40, controller=TINY),
    "nao": dict(num_initial=4, num_new=4, top_k=4, controller=TINY),
    "seminas_re": dict(
        population_size=4,
        tournament_size=2,
        num_initial=4,
        children_per_step=6,
        evals_per_step=3,
        random_candidates=6,
        num_unlabeled=40,
        controller=TINY,
    ),
    "re": dict(population_size=4, tournament_size=2),
    "local": dict(num_initial=2),
    "bananas": dict(
        num_initial=3,
        num_new=3,
        num_parents=2,
        mutations_per_parent=3,
        num_random=2,
        ensemble_size=2,
        layers=1,
        width=8,
        epochs=3,
        batch_size=8,
    ),
    "random": {},
}


def make(name: str, **kw):
    """A searcher on NB101-30k with settings small enough for tests."""
    kw = {
        "space": nasbench101_space(),
        "max_queries": 12,
        "seed": 3,
        "metric": "val_accuracy",
        "mode": "max",
        "background": "inline",
        **SMALL[name],
        **kw,
    }
    return SEARCHERS[name](**kw)


ALL = sorted(SEARCHERS)

#: A user's own problem as a Tune param_space (choices, integers, log-uniform and uniform
#: floats, a nested dict, a constant).
PARAM_SPACE = {
    "width": tune.choice([16, 32, 64, 128]),
    "depth": tune.randint(1, 6),
    "act": tune.choice(["relu", "tanh", "gelu"]),
    "optim": {"lr": tune.loguniform(1e-4, 1e-1), "momentum": tune.uniform(0.5, 0.99)},
    "epochs": 3,
}


def synthetic_objective(config: dict) -> dict:
    """A made-up smooth score of a PARAM_SPACE config (generated, for contract checks only)."""
    lr, depth = config["optim"]["lr"], config["depth"]
    score = -((math.log10(lr) + 2.5) ** 2) - 0.1 * (depth - 3) ** 2 - abs(config["optim"]["momentum"] - 0.9)
    score += {"relu": 0.0, "tanh": -0.1, "gelu": 0.05}[config["act"]] + 0.01 * math.log2(config["width"])
    return {"val_accuracy": score}


class _OnNB101(SearcherContract):
    hash_seed_queries = 60  # NB-101 accuracies tie often: long enough for local search to restart

    def make_space(self):
        return nasbench101_space()

    def objective(self, config):
        return evaluate_nasbench101(config)


class _OnParamSpace(SearcherContract):
    def make_space(self):
        return CategoricalSpace(PARAM_SPACE)

    def objective(self, config):
        return synthetic_objective(config)


def _contract_class(name: str, base: type, space_arg) -> type:
    def make_searcher(self, **kwargs):
        return SEARCHERS[name](space=space_arg(self), background="inline", **SMALL[name], **kwargs)

    attrs = {"make_searcher": make_searcher, "__module__": __name__}
    if "controller" in SMALL[name]:
        attrs["hash_seed_queries"] = 20  # a few controller rounds; each costs a second or two
    return type(f"Test{name.title().replace('_', '')}{base.__name__[1:]}", (base,), attrs)


for _name in ALL:
    for _base, _space in ((_OnNB101, lambda self: nasbench101_space()), (_OnParamSpace, lambda self: PARAM_SPACE)):
        _cls = _contract_class(_name, _base, _space)
        globals()[_cls.__name__] = _cls


def test_the_param_space_runs_through_every_searcher_with_nested_configs():
    configs = drive(
        SEARCHERS["seminas"](
            space=PARAM_SPACE,
            metric="val_accuracy",
            mode="max",
            max_queries=12,
            background="inline",
            **SMALL["seminas"],
        ),
        synthetic_objective,
    )
    assert all(c["epochs"] == 3 and set(c["optim"]) == {"lr", "momentum"} for c in configs)
    assert all(1e-4 <= c["optim"]["lr"] <= 1e-1 and 1 <= c["depth"] <= 5 for c in configs)


def test_arguments_are_keyword_only_and_shared_ones_written_once():
    with pytest.raises(TypeError):
        SEARCHERS["re"](nasbench101_space())
    params = searcher_parameters(SEARCHERS["nao"])
    assert params["num_unlabeled"].default is None and params["metric"].default is None
    assert {"space", "max_queries", "seed", "preset", "num_initial", "controller"} <= set(params)


def test_presets_default_is_the_reference_setting_and_paper_the_published_one():
    s = SEARCHERS["seminas"](max_queries=300)
    assert (s.ensemble, s.acquisition) == (1, "mean") and min(s.local_candidates, s.pool_candidates) > 0
    assert (
        s.mutation_candidates > 0
        and SEARCHERS["seminas"](max_queries=300, mutation_candidates=0).mutation_candidates == 0
    )
    assert s.num_unlabeled > 0 and s.controller.schedule == "fast"
    assert SEARCHERS["nao"](max_queries=300).num_unlabeled == 0
    paper = SEARCHERS["seminas"](max_queries=300, preset="paper")
    assert (paper.num_initial, paper.num_new, paper.num_unlabeled, paper.controller.schedule) == (
        100,
        100,
        10_000,
        "reference",
    )
    assert (paper.ensemble, paper.acquisition, paper.ascent_candidates, paper.local_candidates) == (1, "mean", 1, 0)
    assert paper.mutation_candidates == 0
    assert s.explore_share == paper.explore_share == 0  # measured worse at 50 seeds: an option
    assert paper.escape_share == 0
    assert s.invalid_cost is True and paper.invalid_cost is False  # the paper ignores invalid cells
    assert SEARCHERS["seminas"](max_queries=300, preset="paper", num_initial=7).num_initial == 7  # explicit wins
    re, sem = SEARCHERS["seminas_re"](max_queries=300), SEARCHERS["seminas"](max_queries=300)
    assert (re.population_size, re.children_per_step, re.random_candidates) == (50, 1000, 1000)
    # SemiNAS's predictor and schedule, with the 5 heads and Thompson sampling its runs measured
    assert (re.num_initial, re.evals_per_step, re.new_fraction, re.controller) == (
        sem.num_initial,
        sem.num_new,
        sem.new_fraction,
        sem.controller,
    )
    assert (re.ensemble, re.acquisition, re.invalid_cost) == (5, "its", True)
    re = SEARCHERS["seminas_re"](max_queries=300, preset="paper")
    assert (re.num_initial, re.children_per_step, re.evals_per_step, re.random_candidates, re.ensemble) == (
        50,
        100,
        10,
        0,
        1,
    )
    with pytest.raises(ValueError, match="preset must be one of"):
        SEARCHERS["re"](preset="fast")


@pytest.mark.parametrize("name", ALL)
def test_restore_rejects_foreign_or_corrupt_checkpoints(name, tmp_path):
    s = make(name)
    bad = tmp_path / "corrupt.pkl"
    bad.write_bytes(b"not a pickle at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        s.restore(str(bad))
    other = make("random" if name != "random" else "re")
    path = str(tmp_path / "other.pkl")
    other.save(path)
    with pytest.raises(CheckpointError, match="belongs to"):
        s.restore(path)


def test_bad_arguments_raise_one_clear_error():
    with pytest.raises(ValueError, match="mode must be 'max' or 'min'"):
        make("seminas", mode="maximise")
    with pytest.raises(InvalidConfigError, match="missing keys"):
        make("re", points_to_evaluate=[{"edge_0_1": 1}])
    s = make("random")
    s.suggest("t0")
    with pytest.raises(KeyError, match="metric 'val_accuracy' is not in the trial's result"):
        s.on_trial_complete("t0", {"accuracy": 0.9})


#: SemiNAS (RE) with SemiNAS's schedule: 4 random, then batches of 4 ranked from 20 children.
RE_AS_SEMINAS = dict(num_initial=4, population_size=6, evals_per_step=4, children_per_step=20)


def batch_sizes(s) -> list[int]:
    """Run ``s`` on NB101-30k to its budget; the number of suggestions of each controller round."""
    sizes: list[int] = []
    for i, cfg in enumerate(iter(lambda: s.suggest(f"t{s.num_suggested}"), "FINISHED")):
        sizes += [0] * (s.iteration - len(sizes))
        if sizes:
            sizes[-1] += 1
        s.on_trial_complete(f"t{i}", evaluate_nasbench101(cfg))
    return sizes


@pytest.mark.parametrize("name, kw", [("seminas", {}), ("seminas_re", RE_AS_SEMINAS)])
@pytest.mark.parametrize("fraction, sizes", [(0.0, [4, 4, 4, 4, 4, 4, 4, 2]), (0.5, [4, 4, 6, 9, 7])])
def test_new_fraction_grows_the_batches(name, kw, fraction, sizes):
    assert batch_sizes(make(name, max_queries=34, new_fraction=fraction, **kw)) == sizes
    with pytest.raises(ValueError, match="new_fraction"):
        make(name, new_fraction=-1)
    with pytest.raises(ValueError, match="random_candidates must be"):
        make("seminas_re", random_candidates=-1)
    with pytest.raises(ValueError, match="local_candidates must be a number in"):
        make("nao", local_candidates=-1)
    with pytest.raises(ValueError, match="acquisition must be one of"):
        make("seminas", acquisition="ucb")
    with pytest.raises(ValueError, match="invalid_cost must be True or False"):
        make("seminas", invalid_cost="yes")
    with pytest.raises(ValueError, match="explore_share must be a number in"):
        make("seminas", explore_share=1.5)
    with pytest.raises(ValueError, match="escape_share must be a number in"):
        make("seminas", escape_share=-0.5)


def test_seminas_re_ranks_random_candidates_beside_the_children():
    # One child per step could fill a batch of one; the batches of 3 come from the random ones.
    s = make("seminas_re", **RE_AS_SEMINAS | dict(children_per_step=1, evals_per_step=3, random_candidates=5))
    assert batch_sizes(s) == [3, 3, 2]
    assert [h["candidates"] for h in s.history] == [6, 6, 6]  # 1 child + 5 random per round
    with pytest.raises(ValueError, match=r"evals_per_step \(3\) exceeds the candidates per step"):
        make("seminas_re", children_per_step=1, evals_per_step=3, random_candidates=1)
