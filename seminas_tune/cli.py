"""The ``seminas-tune`` command line: search, report, enumerate, bench, synthesize."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from seminas_tune.search.presets import PRESETS


class _Parser(argparse.ArgumentParser):
    """An argument parser whose mistakes end in one line on stderr (and exit status 2)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _synthesize(argv: list[str]) -> int:
    from seminas_tune.supernet.tts import synthesize_to_wav

    p = _Parser(
        prog="seminas-tune synthesize",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="speak a sentence with a TTS model exported by the search",
    )
    p.add_argument("model", help="model file written by save_tts_model")
    p.add_argument("text", help="the sentence to speak")
    p.add_argument("--out", default="out.wav", help="WAV file to write")
    p.add_argument("--griffin-lim-iters", type=int, default=60, help="Griffin-Lim iterations (vocoder quality)")
    p.add_argument("--stop-threshold", type=float, default=0.5, help="stop-token probability that ends decoding")
    a = p.parse_args(argv)
    if not os.path.exists(a.model):
        p.error(f"model file not found: {a.model}")
    path = synthesize_to_wav(
        a.model, a.text, a.out, griffin_lim_iters=a.griffin_lim_iters, stop_threshold=a.stop_threshold
    )
    print(f"wrote {path}")
    return 0


def _parser() -> argparse.ArgumentParser:
    from seminas_tune.cli_search import BUNDLED
    from seminas_tune.search import SEARCHERS

    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = _Parser(prog="seminas-tune", description=__doc__, formatter_class=fmt)
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    s = sub.add_parser(
        "search",
        formatter_class=fmt,
        help="run a search through Ray Tune; rerun to resume",
        description="Run a search through Ray Tune on a bundled NAS-Bench table or your own "
        "trainable. Rerunning the same command continues an interrupted experiment.",
    )
    s.add_argument(
        "--space",
        default="nb101",
        metavar="{" + ",".join(BUNDLED) + "} or module:object",
        help="a bundled table, or your SearchSpace (or Tune param_space dict) as module:object",
    )
    s.add_argument(
        "--trainable",
        default=None,
        metavar="module:function",
        help="your Tune trainable (default: the bundled table's lookup)",
    )
    s.add_argument("--searcher", choices=sorted(SEARCHERS), default="seminas", help="search algorithm")
    s.add_argument("--budget", type=int, default=300, help="architectures to evaluate")
    s.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds the searcher; with --concurrency 1 a rerun repeats the search exactly, with "
        "more the order in which trials finish varies, and so may the architectures proposed",
    )
    s.add_argument("--concurrency", type=int, default=2, help="trials run at once")
    s.add_argument("--metric", default="val_accuracy", help="the trainable's result to optimise")
    s.add_argument("--mode", choices=["max", "min"], default="max", help="maximise or minimise --metric")
    s.add_argument(
        "--preset",
        choices=PRESETS,
        default="default",
        help="where settings not given with --set come from: 'default' (sized from --budget) or 'paper' "
        "(Luo et al.; hours per controller round on a CPU) (default: default)",
    )
    s.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a searcher setting, e.g. num_initial=20 or controller.joint_steps=30 (repeatable)",
    )
    s.add_argument("--gpu", action="store_true", help="require a GPU for controller training")
    s.add_argument("--storage-path", default="seminas_results", help="folder of Tune experiments")
    s.add_argument("--name", default="seminas_search", help="experiment name (its folder in --storage-path)")
    s.add_argument("--fresh", action="store_true", help="delete the experiment of this name and start over")
    s.add_argument(
        "--output", default=None, help="results CSV; the report goes beside it (default: <storage-path>/<name>.csv)"
    )
    s.add_argument("--top", type=int, default=10, help="best architectures to print")
    s.add_argument(
        "--dataset-file",
        default=None,
        help="official NB-101 tfrecord for --space nb101 (default: the bundled NB101-30k table)",
    )
    s.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="Tune's own full progress output instead of the one-line status",
    )
    r = sub.add_parser(
        "report",
        formatter_class=fmt,
        help="draw the report of an experiment folder",
        description="Draw how a search went (PNG and HTML) from any Tune experiment folder.",
    )
    r.add_argument("dir", help="experiment folder (or a storage path holding one experiment)")
    r.add_argument("--out", default=None, help="PNG to write (default: <dir>/report.png; HTML beside it)")
    r.add_argument("--top", type=int, default=10, help="best architectures listed in the HTML page")
    e = sub.add_parser("enumerate", formatter_class=fmt, help="count the unique cells of the NAS-Bench-101 space")
    e.add_argument(
        "--max-vertices", type=int, default=7, choices=range(2, 8), metavar="{2..7}", help="largest cell size counted"
    )
    sub.add_parser("bench", help="the benchmark harness (see benchmarks/run.py --help)", add_help=False)
    sub.add_parser("synthesize", help="speak a sentence with an exported TTS model", add_help=False)
    return p


def _search(p: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from seminas_tune.cli_search import SearchJob, UsageError, parse_settings, prepare, run

    try:
        job = SearchJob(
            space=args.space,
            searcher=args.searcher,
            budget=args.budget,
            seed=args.seed,
            concurrency=args.concurrency,
            trainable=args.trainable,
            dataset_file=args.dataset_file,
            metric=args.metric,
            mode=args.mode,
            settings={"preset": args.preset, **parse_settings(args.set)},
            gpu=args.gpu,
        )
        if args.top < 0:
            raise UsageError(f"--top must be 0 or more, got {args.top}")
        prep = prepare(job, args.storage_path, args.name, args.fresh)
        output = args.output or os.path.join(args.storage_path, f"{args.name}.csv")
        return run(prep, output, args.top, args.verbose)
    except UsageError as e:
        p.exit(2, f"seminas-tune search: error: {e}\n")


def _report(p: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from seminas_tune.report import NotAnExperimentError, load_experiment, write_report

    try:
        exp = load_experiment(args.dir)
    except NotAnExperimentError as e:
        p.exit(2, f"seminas-tune report: error: {e}\n")
    if not exp.trials:
        p.exit(2, f"seminas-tune report: error: {exp.path} has no trials yet\n")
    png = Path(args.out or exp.path / "report.png")
    written = write_report(exp, png, png.with_suffix(".html"), top=args.top)
    print(f"{len(exp.trials)} trials of {exp.path}: wrote {', '.join(map(str, written))}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    args, rest = p.parse_known_args(argv)
    if args.cmd not in ("bench", "synthesize") and rest:
        p.error(f"unknown arguments: {' '.join(rest)}")
    if args.cmd == "search":
        return _search(p, args)
    if args.cmd == "report":
        return _report(p, args)
    if args.cmd == "enumerate":
        from seminas_tune.nasbench.enumerate import enumerate_space

        res = enumerate_space(args.max_vertices)
        print(f"{'V':>2} {'matrices':>9} {'labelled':>10} {'unique':>8} {'cumulative':>10}")
        for n, r in sorted(res.rows.items()):
            print(f"{n:>2} {r.matrices:>9,} {r.labelled:>10,} {r.unique:>8,} {r.cumulative:>10,}")
        print(f"total unique cells: {res.total:,} ({res.seconds:.1f} s, {res.processes} processes)")
        return 0
    if args.cmd == "bench":
        from seminas_tune.bench import main as bench_main

        return bench_main(rest) or 0
    if args.cmd == "synthesize":
        return _synthesize(rest)
    return 1


if __name__ == "__main__":
    sys.exit(main())
