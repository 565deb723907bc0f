"""A compact Tune progress display, and a prompt Ctrl-C while Tune waits for a searcher.

Pass :class:`CompactProgress` as a ``RunConfig`` callback with ``verbose=0``. In a terminal it
rewrites one line in place; written to a file or a pipe it prints plain lines (no control
characters), one every ``interval_s`` seconds and one whenever a controller round starts or ends.
A thread draws it, so it keeps moving while Tune's loop is blocked.

When no trial is running and the searcher returns None (a controller round), Tune blocks in a
loop that polls the searcher once a second and ignores Ctrl-C until the round ends.
:class:`PromptInterrupt` makes that Ctrl-C end the run at once, leaving a restorable experiment.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from ray.tune import Callback

_DONE = ("TERMINATED", "ERROR")


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def compact_output(searcher: Any = None) -> dict:
    """``RunConfig`` keywords for the compact display and prompt Ctrl-C:
    ``tune.RunConfig(name=..., **compact_output(searcher))``.

    Also selects Tune's legacy output engine (``RAY_AIR_NEW_OUTPUT=0``) unless set: at
    ``verbose=0`` it prints nothing, where the new one still prints an experiment banner.
    """
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    return {"verbose": 0, "callbacks": [CompactProgress(searcher), PromptInterrupt()]}


@dataclass
class Status:
    """What the status line shows."""

    done: int
    budget: int | None
    best: float | None
    best_arch: str
    round_text: str
    elapsed: float
    eta: float

    def line(self) -> str:
        budget = f"/{self.budget}" if self.budget else ""
        best = f"best {self.best:.4f} {self.best_arch}" if self.best is not None else "best -"
        parts = [f"{self.done}{budget} trials", best]
        if self.round_text:
            parts.append(self.round_text)
        parts.append(f"{_clock(self.elapsed)} elapsed, ETA {_clock(self.eta)}")
        return " | ".join(parts)


class CompactProgress(Callback):
    """One-line progress of a Tune run, optionally with a package searcher's controller rounds.

    Args:
        searcher: an :class:`~seminas_tune.search.base.ArchSearcher` (for the budget, the space's
            short form of the best architecture and the controller round), or None.
        metric, mode: what "best" means (default: the searcher's metric and mode).
        interval_s: seconds between plain lines when the output is not a terminal.
        stream: where to write (default: standard output at the start of the run).
    """

    def __init__(
        self,
        searcher: Any = None,
        metric: str | None = None,
        mode: str | None = None,
        interval_s: float = 10.0,
        stream: Any = None,
    ):
        self.searcher = searcher
        self._metric, self._mode = metric, mode
        self.interval_s = interval_s
        self._stream = stream
        self._trials: list = []
        self._lock, self._stop, self._thread = threading.Lock(), threading.Event(), None
        self._reset()

    def _reset(self) -> None:
        self._start = time.monotonic()
        self._done_at_start: int | None = None
        self._last_print = -math.inf
        self._last_round: tuple = ()
        self._round_start: float | None = None

    @property
    def metric(self) -> str:
        """The metric shown (the searcher's, which Tune may set only when the run starts)."""
        return self._metric or getattr(self.searcher, "metric", None) or "val_accuracy"

    @property
    def mode(self) -> str:
        return self._mode or getattr(self.searcher, "mode", None) or "max"

    def __getstate__(self) -> dict:
        # Pickled into the experiment (tuner.pkl) with the searcher; the stream and thread are not.
        return {**self.__dict__, "_stream": None, "_thread": None, "_stop": None, "_lock": None, "_trials": []}

    def setup(self, **info: Any) -> None:
        self._reset()
        self._trials = []
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._thread = threading.Thread(target=self._draw, name="seminas-progress", daemon=True)
        self._thread.start()

    def _draw(self) -> None:
        while not self._stop.wait(0.25):
            self.show(self._trials)

    @property
    def stream(self):
        return self._stream or sys.stdout

    @property
    def tty(self) -> bool:
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def status(self, trials: list) -> Status:
        done, best, arch = (
            self._searcher_best() if hasattr(self.searcher, "observations") else self._trials_best(trials)
        )
        if self._done_at_start is None:
            self._done_at_start = done
        budget = getattr(self.searcher, "max_queries", None)
        elapsed = time.monotonic() - self._start
        new = done - self._done_at_start
        eta = elapsed / new * (budget - done) if budget and new > 0 else math.inf
        return Status(done, budget, best, arch, self._round_text(), elapsed, eta)

    def _searcher_best(self) -> tuple[int, float | None, str]:
        """From a package searcher's observations (also right before Tune reports any trial)."""
        obs = self.searcher.observations
        ok = [o for o in obs if o.status == "ok"]
        if not ok:
            return len(obs), None, ""
        top = max(ok, key=lambda o: o.score)
        return len(obs), top.value, self.searcher.space.describe(top.arch)

    def _trials_best(self, trials: list) -> tuple[int, float | None, str]:
        done = [t for t in trials if t.status in _DONE]
        sign = 1 if self.mode == "max" else -1
        best, best_trial = None, None
        for t in done:
            r = t.last_result or {}
            v = r.get(self.metric)
            if (
                isinstance(v, (int, float))
                and math.isfinite(v)
                and r.get("valid", True)
                and (best is None or sign * v > sign * best)
            ):
                best, best_trial = float(v), t
        return len(done), best, self._describe(best_trial)

    def _describe(self, trial) -> str:
        if trial is None:
            return ""
        try:
            space = self.searcher.space
            return space.describe(space.arch_of(trial.config))
        except Exception:  # noqa: BLE001 - no space, or another searcher's config: show it flat
            return ",".join(f"{v}" for v in trial.config.values())

    def _round_text(self) -> str:
        s = self.searcher
        if s is None or not hasattr(s, "iteration"):
            return ""
        running = bool(getattr(s, "job_running", False))
        if running and self._round_start is None:
            self._round_start = time.monotonic()
        if not running:
            self._round_start = None
        if running:
            took = time.monotonic() - self._round_start
            spin = "|/-\\"[int(took * 4) % 4] if self.tty else ""
            return f"controller round {s.iteration + 1} training {took:.0f} s {spin}".rstrip()
        return f"controller rounds {s.iteration}"

    def _phase(self) -> tuple:
        s = self.searcher
        return (getattr(s, "iteration", None), bool(getattr(s, "job_running", False)))

    def show(self, trials: list, force: bool = False) -> None:
        with self._lock:
            self._show(list(trials), force)

    def _show(self, trials: list, force: bool) -> None:
        now = time.monotonic()
        phase = self._phase()
        changed = phase != self._last_round
        wait = 0.5 if self.tty else self.interval_s
        if not (force or changed or now - self._last_print >= wait):
            return
        line = self.status(trials).line()
        self._last_print, self._last_round = now, phase
        if self.tty:
            cols = shutil.get_terminal_size((120, 20)).columns - 1
            self.stream.write("\r" + line[:cols] + "\x1b[K")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self._trials = trials

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._stop.set()
        self.show(trials, force=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _tune_controller(frame):
    """The ``TuneController`` whose method the main thread is in, or None."""
    from ray.tune.execution.tune_controller import TuneController

    while frame is not None:
        obj = frame.f_locals.get("self")
        if isinstance(obj, TuneController):
            return obj
        frame = frame.f_back
    return None


class _FinishedView:
    """A search algorithm that says it is finished; everything else goes to the real one."""

    def __init__(self, inner: Any):
        self._inner = inner

    def is_finished(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class PromptInterrupt(Callback):
    """Make Ctrl-C end a run within a second even while Tune waits for the searcher.

    Tune's own SIGINT handler stops the run after the current step, but a step blocked waiting
    for the searcher (no trial running, the searcher returns None) only ends when the searcher
    answers. This handler runs Tune's, then shows the controller it interrupted a view of its
    search algorithm that says the search is finished, which ends that wait and the loop at once.
    Tune then saves the experiment as after any Ctrl-C: the view is not part of the saved state
    (the search algorithm's own state is), so the experiment resumes normally.
    """

    def __init__(self):
        self._tune_handler = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_tune_handler": None}

    def setup(self, **info: Any) -> None:
        if threading.current_thread() is threading.main_thread():
            self._tune_handler = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum, frame) -> None:
        if callable(self._tune_handler):
            self._tune_handler(signum, frame)  # Tune stops after this step; a second Ctrl-C is not ours
        controller = _tune_controller(frame)
        if controller is not None and not isinstance(controller._search_alg, _FinishedView):
            controller._search_alg = _FinishedView(controller._search_alg)
