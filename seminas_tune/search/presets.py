"""Searcher settings by preset: the one place the constructors, the CLI and the harness read.

- ``"default"``: one setting for every space and budget, chosen because it is best across the
  tables we have (NB-201 CIFAR-10/100, ImageNet16-120, NB101-30k;
  ``benchmarks/results/seminas_default/``). SemiNAS starts from 10 random architectures, then
  proposes batches of 10 (a tenth of what was evaluated, once that is more), the best by one
  predictor's value from a candidate list of gradient-ascent decodes (3 x the batch), the best
  cells' unseen neighbours (10 x), the space's mutations of the 10 best cells (10 x) and the best
  pseudo-labeled cells (3 x); 2,000 pseudo-labels, 60 + 20 warm-started controller steps; the
  encoder embeds each token's position (``EPDConfig.positional``). A cell whose result said
  ``valid=False`` is learned as the worst one seen (``invalid_cost``): through NB-101's bare
  ``param_space`` that cut invalid suggestions 4.6-fold at a level regret
  (``benchmarks/results/flat_space/``); the paper ignores such cells. A 5-head ensemble with
  Thompson sampling was no better over 200 NB-201 seeds and cost a quarter more, so it is an
  option (``ensemble``, ``acquisition``).
  The budget only cuts the last batch: starting a 50-query search from 5 cells and batches of 5
  was worse on the three NB-201 tables and better on NB101-30k alone (100 seeds).
  The mutations were lower on NB101-30k at 50-300 queries and level on NB-201 (200 seeds,
  paired), so they are on; in a table-restricted space they reach cells more than one edit away.
  Exploring far from the best cells once the search stalls (``explore_share``) freed some
  searches caught in one basin but diverted slow climbers: higher means at 10 of 12 points over
  50 seeds, so it is off. Completing the best cell's neighbourhood, then its two-edit ring, after
  a stall (``escape_share``) was level or lower at 300 queries on all four tables but higher at
  100 on all four (50 seeds), so it is off too.
  SemiNAS (RE) has the same schedule and ranks the children of 1,000 tournaments and 1,000 random
  cells per step by Thompson sampling over 5 heads, the setting its runs measured
  (``benchmarks/results/seminas_re/``).
- ``"paper"``: each publication's setting. SemiNAS, Luo et al. (2020): N = 100, M = 10,000,
  K = 100, 100 new per iteration, the reference controller schedule (1,000 + 500 epochs: hours
  per round on a CPU). BANANAS, White et al. (2021): 10 random, then 10 per round, an ensemble
  of 5 MLPs of 10 x 20 trained 200 epochs; ``"default"`` shrinks only the MLP (see below).

A searcher argument given explicitly always wins over its preset.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from seminas_tune.controller.epd import EPDConfig
from seminas_tune.controller.trainer import ControllerConfig

PRESETS = ("default", "paper")


def _seminas(preset: str, budget: int) -> dict[str, Any]:
    if preset == "paper":
        return dict(
            num_initial=100,
            num_unlabeled=10_000,
            top_k=100,
            num_new=100,
            new_fraction=0.0,
            upsample=10,
            ascent_candidates=1.0,
            local_candidates=0.0,
            mutation_candidates=0.0,
            pool_candidates=0.0,
            explore_share=0.0,
            escape_share=0.0,
            ensemble=1,
            acquisition="mean",
            invalid_cost=False,
            controller=ControllerConfig(schedule="reference"),
        )
    return dict(
        num_initial=10,
        num_unlabeled=2_000,
        top_k=100,
        num_new=10,
        new_fraction=0.1,
        upsample=10,
        ascent_candidates=3.0,
        local_candidates=10.0,
        mutation_candidates=10.0,
        pool_candidates=3.0,
        explore_share=0.0,
        escape_share=0.0,
        ensemble=1,
        acquisition="mean",
        invalid_cost=True,
        controller=ControllerConfig(labeled_steps=60, joint_steps=20, epd=EPDConfig(positional=True)),
    )


def _nao(preset: str, budget: int) -> dict[str, Any]:
    return {**_seminas(preset, budget), "num_unlabeled": 0}


def _evolution(preset: str, budget: int) -> dict[str, Any]:
    return dict(population_size=50, tournament_size=10)  # Real et al.'s on NB-101, for every budget


def _seminas_re(preset: str, budget: int) -> dict[str, Any]:
    if preset == "paper":
        return dict(
            _evolution(preset, budget),
            num_initial=None,
            children_per_step=100,
            evals_per_step=10,
            random_candidates=0,
            new_fraction=0.0,
            num_unlabeled=10_000,
            upsample=10,
            ensemble=1,
            acquisition="mean",
            invalid_cost=False,
            controller=ControllerConfig(schedule="reference"),
        )
    # SemiNAS's controller and schedule; its candidates are the tournament children plus random
    # cells, which pull a population out of a basin its mutations cannot leave. Its runs were made
    # with 5 heads and Thompson sampling, which it keeps until one head is measured on it.
    same = ("num_initial", "new_fraction", "num_unlabeled", "upsample", "invalid_cost", "controller")
    seminas = _seminas(preset, budget)
    return dict(
        _evolution(preset, budget),
        children_per_step=1000,
        evals_per_step=seminas["num_new"],
        random_candidates=1000,
        ensemble=5,
        acquisition="its",
        **{k: seminas[k] for k in same},
    )


def _local(preset: str, budget: int) -> dict[str, Any]:
    return dict(num_initial=10)


def _bananas(preset: str, budget: int) -> dict[str, Any]:
    paper = dict(
        num_initial=10,
        num_new=10,
        num_parents=10,
        mutations_per_parent=10,
        num_random=10,
        ensemble_size=5,
        layers=10,
        width=20,
        epochs=200,
        batch_size=32,
        lr=0.01,
        num_threads=1,
        encoding="auto",
    )
    if preset == "paper":
        return paper
    # A smaller MLP for a tenth of the cost: on NB-201 CIFAR-100 and ImageNet16-120 (30, 100 and
    # 290 random cells, 3 draws) it predicts held-out cells as well as the paper's 10 x 20 MLP
    # trained 200 epochs (Kendall tau within 0.01; benchmarks/results/bananas/README.md).
    return {**paper, "layers": 3, "width": 32, "epochs": 50, "batch_size": 64}


_TABLE: dict[str, Callable[[str, int], dict[str, Any]]] = {
    "seminas": _seminas,
    "nao": _nao,
    "seminas_re": _seminas_re,
    "re": _evolution,
    "local": _local,
    "bananas": _bananas,
}


def preset_settings(searcher: str, preset: str, max_queries: int) -> dict[str, Any]:
    """The settings ``preset`` gives searcher ``searcher`` (a short name: ``"seminas"``, ...) for a
    budget of ``max_queries`` evaluations.

    Raises:
        ValueError: an unknown preset.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: choose from {PRESETS}")
    make = _TABLE.get(searcher)
    return make(preset, max_queries) if make else {}


def resolve(searcher: str, preset: str, max_queries: int, given: dict[str, Any]) -> dict[str, Any]:
    """``given`` (a constructor's arguments, None where not given) filled in from the preset."""
    base = preset_settings(searcher, preset, max_queries)
    return {k: base.get(k) if v is None else v for k, v in given.items()}
