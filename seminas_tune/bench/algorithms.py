"""The algorithms: our searchers and Tune's, their settings (``--set``) and how each is built.

Our searchers are :data:`seminas_tune.search.SEARCHERS`; Tune's are the entries of
:data:`TUNE_ALGORITHMS`. Adding one of Tune's searchers is one entry there.
"""

from __future__ import annotations

import dataclasses
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from ray.tune.search import Searcher

from seminas_tune.bench.common import METRIC, BenchError, parse_value
from seminas_tune.search import resolved_settings as resolved_settings
from seminas_tune.search.presets import preset_settings


class BasicVariantSearcher(Searcher):
    """Tune's ``BasicVariantGenerator`` (random search) behind the Searcher API.

    ``BasicVariantGenerator`` is a ``SearchAlgorithm`` without ``suggest``; this resolves the
    ``param_space`` with the function it uses (``generate_variants``) and the same seeded random
    state, one config per ``suggest``, so both drivers and the budget rule apply to it.
    """

    def __init__(self, seed: int):
        super().__init__(metric=METRIC, mode="max")
        from ray.tune.search.sample import _BackwardsCompatibleNumpyRng

        self._rng = _BackwardsCompatibleNumpyRng(seed)
        self._space: dict | None = None

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        self._space = config
        return True

    def suggest(self, trial_id: str):
        from ray.tune.search.variant_generator import generate_variants

        for _, cfg in generate_variants(self._space, random_state=self._rng):
            return cfg
        return None

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        pass


# ---------------------------------------------------------------------------------------------
# Tune's searchers: one entry each
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TuneAlgorithm:
    """One of Tune's searchers as the harness runs it.

    Attributes:
        build: ``(seed, budget, settings, invalid_factor) -> Searcher``; ``settings`` are the
            flat ``--set`` values (a copy the function may change).
        modules: modules that must import for it to run.
        defaults: harness settings that differ from the searcher's own, as (path, value) pairs.
        takes_settings: whether ``--set`` may give it any.
        in_default_run: whether ``--algorithms`` includes it by default.
        note: said beside "ok" by ``--list``.
    """

    build: Callable[[int, int, dict, float], Searcher]
    modules: tuple[str, ...] = ()
    defaults: tuple[tuple[str, Any], ...] = ()
    takes_settings: bool = True
    in_default_run: bool = False
    note: str = ""


def _optuna(seed: int, budget: int, settings: dict, invalid_factor: float) -> Searcher:
    import warnings

    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # multivariate, group
    sampler_kw = {k.split(".", 1)[1]: v for k, v in settings.items() if k.startswith("sampler.")}
    rest = {k: v for k, v in settings.items() if not k.startswith("sampler.")}
    return OptunaSearch(sampler=optuna.samplers.TPESampler(seed=seed, **sampler_kw), **rest)


def _hyperopt(seed: int, budget: int, settings: dict, invalid_factor: float) -> Searcher:
    from ray.tune.search.hyperopt import HyperOptSearch

    return HyperOptSearch(random_state_seed=seed, **settings)


def _nevergrad(seed: int, budget: int, settings: dict, invalid_factor: float) -> Searcher:
    import nevergrad as ng
    from ray.tune.search.nevergrad import NevergradSearch

    opt = settings.pop("optimizer")
    return NevergradSearch(optimizer=getattr(ng.optimizers, opt), **settings)


def _zoopt(seed: int, budget: int, settings: dict, invalid_factor: float) -> Searcher:
    from ray.tune.search.zoopt import ZOOptSearch

    settings.setdefault("budget", int(budget * (1 + invalid_factor)))
    return ZOOptSearch(**settings)


TUNE_ALGORITHMS: dict[str, TuneAlgorithm] = {
    "basic": TuneAlgorithm(lambda seed, *_: BasicVariantSearcher(seed), takes_settings=False, in_default_run=True),
    "optuna": TuneAlgorithm(_optuna, ("optuna", "ray.tune.search.optuna"), in_default_run=True),
    # The multivariate TPE (Falkner et al.'s joint density over all decisions). ``group=True``
    # would change nothing here: Tune asks Optuna for every decision of every config, so all of
    # them fall in one group; it matters only for define-by-run spaces whose trials differ in
    # their parameters.
    "optuna_mv": TuneAlgorithm(
        _optuna, ("optuna", "ray.tune.search.optuna"), defaults=(("sampler.multivariate", True),)
    ),
    "hyperopt": TuneAlgorithm(_hyperopt, ("hyperopt", "ray.tune.search.hyperopt"), in_default_run=True),
    "nevergrad": TuneAlgorithm(
        _nevergrad, ("nevergrad", "ray.tune.search.nevergrad"), defaults=(("optimizer", "OnePlusOne"),)
    ),
    "zoopt": TuneAlgorithm(
        _zoopt,
        ("zoopt", "ray.tune.search.zoopt"),
        note=" (stalls on categorical spaces: suggest returns None after a few trials)",
    ),
}
"""Tune's searchers by name, in the order ``--list`` shows them."""


# ---------------------------------------------------------------------------------------------
# Names and status
# ---------------------------------------------------------------------------------------------
def ours() -> dict[str, type]:
    """Our searchers by name (imported on first use)."""
    from seminas_tune.search import SEARCHERS

    return SEARCHERS


def is_ours(label: str) -> bool:
    """Whether ``label`` (``NAME`` or ``NAME@TAG``) is one of our searchers."""
    return base_algorithm(label) in ours()


def base_algorithm(label: str) -> str:
    """``seminas@fast`` -> ``seminas`` (a label may carry a tag to compare settings)."""
    return label.split("@", 1)[0]


def default_algorithms() -> list[str]:
    """What ``--algorithms`` runs by default: all of ours, then some of Tune's."""
    return [*ours(), *(n for n, a in TUNE_ALGORITHMS.items() if a.in_default_run)]


def algorithm_status() -> dict[str, str]:
    """Every algorithm name with ``"ok"`` or why it cannot run here."""
    import importlib

    out = {name: "ok" for name in ours()}
    for name, alg in TUNE_ALGORITHMS.items():
        try:
            for module in alg.modules:
                importlib.import_module(module)
            out[name] = "ok" + alg.note
        except Exception as e:  # noqa: BLE001 - any import failure means "not installed"
            out[name] = f"not importable ({type(e).__name__}: {e})"
    return out


# ---------------------------------------------------------------------------------------------
# Settings: --set ALG.PATH=VALUE
# ---------------------------------------------------------------------------------------------
_RESERVED = ("space", "metric", "mode", "max_queries", "seed", "background")
"""Our searchers' arguments the harness sets itself."""

TUNE_SPACE = "tune"
"""``--set seminas@flat.space=tune``: one of our searchers gets the table's flat Tune
``param_space`` (what Tune's searchers get), not its own space class, as a user with a space
we ship no class for would run it."""


def wants_tune_space(settings: dict[str, Any]) -> bool:
    """Whether ``settings`` ask for the table's Tune ``param_space`` instead of its space class."""
    return settings.get("space") == TUNE_SPACE


def _dataclass_args() -> dict[str, type]:
    from seminas_tune.controller import ControllerConfig

    return {"controller": ControllerConfig}


def _parameters(alg: str) -> list[str]:
    """The keyword arguments of our searcher ``alg``, its own and those it passes on."""
    from seminas_tune.search import searcher_parameters

    return list(searcher_parameters(ours()[alg]))


def default_settings(alg: str) -> dict[str, Any]:
    """Harness defaults of ``alg``, recorded with every result. Torch gets one thread in our
    controller searchers: the harness already runs one search per core."""
    if alg in ours():
        return {"controller.num_threads": 1} if "controller" in _parameters(alg) else {}
    return dict(TUNE_ALGORITHMS[alg].defaults) if alg in TUNE_ALGORITHMS else {}


def parse_sets(items: list[str], labels: list[str], preset: str = "default") -> dict[str, dict[str, Any]]:
    """``["seminas.controller.joint_steps=100", ...]`` -> per-label flat settings.

    A setting for a base name (``seminas.x=1``) applies to its tagged labels (``seminas@a``) too;
    a tagged one overrides it. ``preset`` (other than the default) goes to each of our searchers.
    Raises :class:`BenchError` on a malformed or unknown setting.
    """
    base: dict[str, dict] = {}
    for item in items:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise BenchError(f"--set {item!r}: expected ALGORITHM.PATH=VALUE, e.g. seminas.num_unlabeled=2000")
        lhs, value = item.split("=", 1)
        alg, path = lhs.split(".", 1)
        base.setdefault(alg, {})[path] = parse_value(value)
    unknown = set(base) - set(labels) - {base_algorithm(x) for x in labels}
    if unknown:
        raise BenchError(f"--set names algorithms not being run: {sorted(unknown)} (running {labels})")
    out = {}
    for label in labels:
        b = base_algorithm(label)
        chosen = {"preset": preset} if preset != "default" and b in ours() else {}
        s = {**default_settings(b), **chosen, **base.get(b, {})}
        if label != b:
            s.update(base.get(label, {}))
        validate_settings(b, s)
        out[label] = s
    return out


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _dataclass_problem(path: str, cls: type | None, rest: list[str], value: Any) -> str | None:
    for part in rest:
        if cls is None:
            return f"{path.rsplit('.', 1)[0]} is not a settings object"
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if part not in fields:
            return f"{cls.__name__} has no field {part!r} (fields: {sorted(fields)})"
        default = _default(fields[part])
        cls = type(default) if dataclasses.is_dataclass(default) else None
    if cls is not None and not isinstance(value, cls):  # a whole settings object from Python is fine
        leaves = [f.name for f in dataclasses.fields(cls) if not dataclasses.is_dataclass(_default(f))]
        example = (leaves or [dataclasses.fields(cls)[0].name])[0]
        return f"{path} is a settings object ({cls.__name__}): set one of its fields, e.g. {path}.{example}"
    return None


def setting_problem(
    alg: str, path: str, value: Any = None, reserved: tuple[str, ...] = _RESERVED, setter: str = "the harness"
) -> str | None:
    """Why ``path`` (``num_initial``, ``controller.epd.positional``) is not a setting of our
    searcher ``alg``, in a few words; None when it is. ``reserved`` are arguments ``setter`` sets."""
    head, *rest = path.split(".")
    if head in reserved:
        return f"{setter} sets {head} itself"
    params = _parameters(alg)
    if head not in params:
        return f"{alg} has no argument {head!r} (it has {sorted(p for p in params if p not in reserved)})"
    return _dataclass_problem(path, _dataclass_args().get(head), rest, value)


def validate_settings(alg: str, settings: dict[str, Any]) -> None:
    """Raise :class:`BenchError` naming the first setting ``alg`` does not have."""
    if alg in ours():
        for path, value in settings.items():
            if path == "space":
                if value != TUNE_SPACE:
                    raise BenchError(
                        f"--set {alg}.space={value!r}: the harness gives the table's space itself; "
                        f"only space={TUNE_SPACE} (its flat Tune param_space instead) may be set"
                    )
                continue
            problem = setting_problem(alg, path, value)
            if problem:
                raise BenchError(f"--set {alg}.{path}: {problem}")
    elif alg not in TUNE_ALGORITHMS:
        raise BenchError(f"unknown algorithm {alg!r}: choose from {sorted(ours()) + list(TUNE_ALGORITHMS)}")
    elif settings and not TUNE_ALGORITHMS[alg].takes_settings:
        raise BenchError(f"{alg} has no settings (got {sorted(settings)})")


def _set_path(obj: Any, path: list[str], value: Any) -> Any:
    if not path:
        return value
    head = path[0]
    return dataclasses.replace(obj, **{head: _set_path(getattr(obj, head), path[1:], value)})


def our_kwargs(settings: dict[str, Any], alg: str = "", budget: int = 300) -> dict[str, Any]:
    """Searcher keyword arguments from flat dotted settings; a dotted one (``controller.x``)
    changes the object the searcher's preset gives it for ``budget`` queries."""
    preset = preset_settings(alg, settings.get("preset", "default"), budget)
    kwargs: dict[str, Any] = {}
    for path, value in settings.items():
        if path == "space":  # the harness's choice of space (wants_tune_space), not an argument
            continue
        head, *rest = path.split(".")
        if rest:
            if head not in kwargs:
                kwargs[head] = preset.get(head) or _dataclass_args()[head]()
            kwargs[head] = _set_path(kwargs[head], rest, value)
        else:
            kwargs[head] = value
    return kwargs


# ---------------------------------------------------------------------------------------------
# Building a searcher
# ---------------------------------------------------------------------------------------------
def build_searcher(
    label: str,
    space: Any,
    seed: int,
    budget: int,
    settings: dict[str, Any],
    background: str = "inline",
    invalid_factor: float = 50.0,
):
    """The searcher ``label`` names, seeded, with ``settings`` applied."""
    alg = base_algorithm(label)
    settings = dict(settings)
    if alg in ours():
        return ours()[alg](
            space=None if wants_tune_space(settings) else space,  # None: from set_search_properties
            metric=METRIC,
            mode="max",
            max_queries=budget,
            seed=seed,
            background=background,
            **our_kwargs(settings, alg, budget),
        )
    if alg not in TUNE_ALGORITHMS:
        raise BenchError(f"unknown algorithm {label!r}: choose from {', '.join([*ours(), *TUNE_ALGORITHMS])}")
    # Tune's searchers get their own stream per (seed, name): BasicVariantGenerator seeded like
    # our RandomSearcher would otherwise draw the very same NB-201 cells.
    seed = int(np.random.SeedSequence([seed, zlib.crc32(alg.encode())]).generate_state(1)[0] & 0x7FFFFFFF)
    np.random.seed(seed)  # libraries that draw from the global state (nevergrad)
    random.seed(seed)
    return TUNE_ALGORITHMS[alg].build(seed, budget, settings, invalid_factor)
