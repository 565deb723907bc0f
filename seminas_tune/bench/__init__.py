"""The benchmark harness: algorithms x benchmarks x budgets x seeds on NAS-Bench tables.

``seminas-tune bench ...`` and ``python benchmarks/run.py ...`` both call :func:`main`.
``benchmarks/README.md`` describes the protocol and every output; in short:

* A *unit* is one (algorithm, benchmark, seed) search. Each unit writes one part file
  (``parts/<benchmark>/<algorithm>/seedNNNN.csv`` plus a ``.json`` with its settings and
  timings) atomically; a later run with the same settings skips it (resumable).
* Two drivers share one code path: the searcher is wrapped in :class:`HarnessSearcher`
  (budget, penalty rule, records), which the **inline** driver calls directly through the
  Searcher API and the **tune** driver hands to a real ``tune.Tuner`` (``num_samples=-1``,
  one trial at a time). Same seed, same query sequence.
* Tune's built-in searchers search the flat ``space.tune_space()``. A config that is no
  member of the table gets the penalty (0.0), is reported to the searcher as such, and does
  not use the query budget (at most ``invalid_factor x budget`` of them). A repeated cell is
  looked up again and does use the budget (flagged ``duplicate``).
* At the end the part files are merged into ``results.csv`` and summarised in
  ``summary.md`` (regret at budgets, mean ranks, queries to the top 0.1 % / 0.01 %, the
  random-search self-check) and ``regret_<benchmark>.png``.

Modules, each importing only those above it: ``common`` (:class:`BenchError`, constants),
``tables`` (benchmarks), ``algorithms`` (searchers and ``--set``), ``drivers``, ``units``
(running and storing units), ``stats``, ``report`` (``summary.md``, plots), ``cli``.
The functions raise :class:`BenchError` on bad input; only :func:`main` turns it into an
exit code.
"""

from seminas_tune.bench.algorithms import (
    TUNE_ALGORITHMS,
    BasicVariantSearcher,
    TuneAlgorithm,
    algorithm_status,
    base_algorithm,
    build_searcher,
    default_settings,
    our_kwargs,
    parse_sets,
    parse_value,
    resolved_settings,
    setting_problem,
    validate_settings,
)
from seminas_tune.bench.cli import main, make_parser, run
from seminas_tune.bench.common import (
    HARNESS_VERSION,
    METRIC,
    PENALTY,
    ROW_COLUMNS,
    BenchError,
)
from seminas_tune.bench.drivers import HarnessSearcher, drive_inline, drive_tune
from seminas_tune.bench.report import ReportOptions, summarise
from seminas_tune.bench.stats import (
    goal_lines,
    mean_se,
    queries_to,
    random_expectation,
    regret_curves,
    variant_lines,
)
from seminas_tune.bench.tables import (
    BENCHMARKS,
    Benchmark,
    get_benchmark,
    get_benchmark_ident,
)
from seminas_tune.bench.units import (
    StoppedBySignal,
    Unit,
    load_parts,
    run_unit,
    run_units,
    unit_is_done,
)

__all__ = [
    "BENCHMARKS",
    "HARNESS_VERSION",
    "METRIC",
    "PENALTY",
    "ROW_COLUMNS",
    "TUNE_ALGORITHMS",
    "BasicVariantSearcher",
    "BenchError",
    "Benchmark",
    "HarnessSearcher",
    "ReportOptions",
    "StoppedBySignal",
    "TuneAlgorithm",
    "Unit",
    "algorithm_status",
    "base_algorithm",
    "build_searcher",
    "default_settings",
    "drive_inline",
    "drive_tune",
    "get_benchmark",
    "get_benchmark_ident",
    "goal_lines",
    "load_parts",
    "main",
    "make_parser",
    "mean_se",
    "our_kwargs",
    "parse_sets",
    "parse_value",
    "queries_to",
    "random_expectation",
    "regret_curves",
    "resolved_settings",
    "run",
    "run_unit",
    "run_units",
    "setting_problem",
    "summarise",
    "unit_is_done",
    "validate_settings",
    "variant_lines",
]
