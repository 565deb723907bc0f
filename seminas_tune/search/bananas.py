"""BANANAS (White et al., AAAI 2021) as a Ray Tune searcher."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seminas_tune._checks import check_choice, check_int, check_number
from seminas_tune.search.base import ArchSearcher, searcher_parameters
from seminas_tune.search.seminas import round_seed
from seminas_tune.spaces.base import SearchSpace

ENCODINGS = ("auto", "onehot", "path")


@dataclass
class BananasRequest:
    """One BANANAS round (picklable; shipped to a Ray task). ``scores``: larger is better."""

    space: Any
    archs: list
    scores: np.ndarray
    seen_keys: set
    num_new: int
    seed: int
    num_parents: int = 10
    mutations_per_parent: int = 10
    num_random: int = 10
    ensemble_size: int = 5
    layers: int = 10
    width: int = 20
    epochs: int = 200
    batch_size: int = 32
    lr: float = 0.01
    num_threads: int = 1
    encoding: str = "auto"
    max_flops: float | None = None


@dataclass
class BananasResult:
    new_archs: list
    info: dict = field(default_factory=dict)


# -- encodings ---------------------------------------------------------------------------
def _path_encoding_applies(space: SearchSpace) -> bool:
    from seminas_tune.spaces.nasbench101 import NASBench101Space

    return isinstance(space, NASBench101Space)


def _path_features(arch: Any) -> np.ndarray:
    """NB-101 path encoding: one bit per input-to-output path, named by its ops (364 bits)."""
    from seminas_tune.nasbench.api import CONV1X1, CONV3X3, MAXPOOL3X3

    interior_ops, m, ops = (CONV3X3, CONV1X1, MAXPOOL3X3), arch.matrix, arch.ops
    n, out = len(ops), np.zeros(sum(3**k for k in range(6)), dtype=np.float32)
    stack: list[tuple[int, int, int]] = [(0, 0, 0)]  # (vertex, ops on the path so far, their base-3 code)
    while stack:
        v, k, code = stack.pop()
        for w in np.flatnonzero(m[v]):
            if w == n - 1:
                out[(3**k - 1) // 2 + code] = 1.0
            else:
                stack.append((int(w), k + 1, code * 3 + interior_ops.index(ops[w])))
    return out


def encode(space: SearchSpace, archs: list, encoding: str = "auto") -> np.ndarray:
    """Feature rows of ``archs``: a one-hot vector per decision of any space (``onehot``), or
    the path encoding of NB-101 cells (``path``; ``auto`` picks it on NB-101)."""
    if encoding == "path" or (encoding == "auto" and _path_encoding_applies(space)):
        if not _path_encoding_applies(space):
            raise ValueError(f"the path encoding needs a NAS-Bench-101 space, not {space.name}")
        return np.stack([_path_features(a) for a in archs]) if archs else np.zeros((0, 364), np.float32)
    offsets, index = [0], []
    for p in range(space.seq_len):
        allowed = list(space.allowed_tokens(p))
        index.append({t: i for i, t in enumerate(allowed)})
        offsets.append(offsets[-1] + len(allowed))
    x = np.zeros((len(archs), offsets[-1]), dtype=np.float32)
    for r, a in enumerate(archs):
        for p, t in enumerate(space.encode(a)):
            x[r, offsets[p] + index[p][int(t)]] = 1.0
    return x


# -- the predictor ensemble --------------------------------------------------------------
def train_ensemble(x: np.ndarray, y: np.ndarray, req: BananasRequest, seed: int):
    """``ensemble_size`` MLPs (``layers`` hidden ReLU layers of ``width``) trained together with
    Adam on the mean absolute error, each from its own initialisation and batch order. Returns
    ``predict(x) -> (ensemble_size, n)`` in the units of ``y``."""
    import torch

    torch.set_num_threads(max(1, req.num_threads))
    gen = torch.Generator().manual_seed(seed)
    mu, sd = float(y.mean()), float(y.std()) or 1.0
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor((y - mu) / sd, dtype=torch.float32)
    e, n = req.ensemble_size, len(y)
    dims = [x.shape[1]] + [req.width] * req.layers + [1]
    params = []
    for fan_in, fan_out in zip(dims[:-1], dims[1:]):  # torch.nn.Linear's default initialisation
        bound = 1.0 / math.sqrt(fan_in)
        params.append(((torch.rand(e, fan_in, fan_out, generator=gen) * 2 - 1) * bound).requires_grad_())
        params.append(((torch.rand(e, 1, fan_out, generator=gen) * 2 - 1) * bound).requires_grad_())

    def forward(h):  # h: (e, batch, features)
        for i in range(0, len(params), 2):
            h = torch.baddbmm(params[i + 1], h, params[i])
            if i + 2 < len(params):
                h = torch.relu(h)
        return h.squeeze(-1)

    opt = torch.optim.Adam(params, lr=req.lr)
    bs = max(1, min(req.batch_size, n))
    for _ in range(req.epochs):
        order = torch.argsort(torch.rand(e, n, generator=gen), dim=1)
        for start in range(0, n, bs):
            idx = order[:, start : start + bs]
            loss = (forward(xt[idx]) - yt[idx]).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    def predict(xs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            h = torch.as_tensor(xs, dtype=torch.float32).expand(e, -1, -1)
            return forward(h).numpy() * sd + mu

    return predict


def its_order(mean: np.ndarray, std: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Independent Thompson sampling: one draw from N(mean, std) per candidate; indices by
    draw, best first."""
    draws = rng.normal(mean, std)
    return np.argsort(-draws, kind="stable")


def candidates(req: BananasRequest, rng: np.random.Generator) -> tuple[list, dict]:
    """Unseen mutations (edit distance 1) of the ``num_parents`` best evaluated architectures,
    ``mutations_per_parent`` each at most, then ``num_random`` random ones; distinct keys."""
    space, out, keys = req.space, [], set(req.seen_keys)

    def take(a: Any) -> bool:
        k = space.key(a)
        if k in keys or not space.is_valid(a) or (req.max_flops is not None and space.flops(a) > req.max_flops):
            return False
        keys.add(k)
        out.append(a)
        return True

    best = np.argsort(-np.asarray(req.scores), kind="stable")[: req.num_parents]
    for i in best:
        nbrs = space.neighbours(req.archs[i])
        got = 0
        for j in rng.permutation(len(nbrs)):
            if got >= req.mutations_per_parent:
                break
            got += take(nbrs[j])
    mutated = len(out)
    for _ in range(50 * req.num_random):
        if len(out) - mutated >= req.num_random:
            break
        take(space.sample(rng))
    return out, {"mutations": mutated, "random": len(out) - mutated}


def run_bananas_round(req: BananasRequest) -> BananasResult:
    """One BANANAS round: train the ensemble, mutate the best, pick ``num_new`` by ITS."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(req.seed)
    cands, info = candidates(req, rng)
    if not cands:
        return BananasResult([], {**info, "seconds": time.perf_counter() - t0})
    predict = train_ensemble(encode(req.space, req.archs, req.encoding), np.asarray(req.scores), req, req.seed)
    pred = predict(encode(req.space, cands, req.encoding))
    order = its_order(pred.mean(0), pred.std(0), rng)
    new = [cands[i] for i in order[: req.num_new]]
    return BananasResult(new, {**info, "seconds": time.perf_counter() - t0})


class BANANASSearcher(ArchSearcher):
    """BANANAS (White et al., AAAI 2021): Bayesian optimisation with an ensemble of neural
    predictors, as a Tune searcher.

    After ``num_initial`` random architectures, each round trains ``ensemble_size`` MLPs on the
    evaluated ones, mutates the ``num_parents`` best into candidates (plus ``num_random`` random
    ones), and proposes the ``num_new`` unseen candidates ranked best by independent Thompson
    sampling from each candidate's N(ensemble mean, ensemble std). Architectures are one-hot
    encoded per decision; NB-101 cells use the paper's path encoding (``encoding="auto"``).
    Training runs in the background (a Ray task when Ray is up) while ``suggest`` returns None.

    Every argument is keyword-only; the shared ones are
    :class:`~seminas_tune.search.base.ArchSearcher`'s. Those left as None come from the preset
    (:mod:`seminas_tune.search.presets`: ``"paper"`` is the published setting).

    Args:
        num_initial: random architectures first (paper: 10).
        num_new: architectures proposed per round (paper: 10).
        num_parents: best evaluated architectures mutated into candidates.
        mutations_per_parent: most candidates from one parent.
        num_random: random candidates beside the mutations.
        ensemble_size: MLPs in the ensemble (paper: 5).
        layers, width: hidden layers of each MLP and their width (paper: 10 x 20).
        epochs, batch_size, lr: Adam training on the mean absolute error (paper: 200, 32, 0.01).
        num_threads: torch threads of a round.
        encoding: ``"auto"``, ``"onehot"`` or ``"path"`` (NB-101 only).
    """

    short_name = "bananas"

    def __init__(
        self,
        *,
        num_initial: int | None = None,
        num_new: int | None = None,
        num_parents: int | None = None,
        mutations_per_parent: int | None = None,
        num_random: int | None = None,
        ensemble_size: int | None = None,
        layers: int | None = None,
        width: int | None = None,
        epochs: int | None = None,
        batch_size: int | None = None,
        lr: float | None = None,
        num_threads: int | None = None,
        encoding: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        own = set(searcher_parameters(BANANASSearcher)) - set(searcher_parameters(ArchSearcher))
        s = self._settings(**{k: v for k, v in locals().items() if k in own})
        positive = ("num_initial", "num_new", "num_parents", "mutations_per_parent", "ensemble_size", "width")
        for name in (*positive, "num_random", "layers", "epochs", "batch_size", "num_threads"):
            check_int(name, getattr(s, name), low=1 if name in positive else 0)
        check_number("lr", s.lr, positive=True)
        check_choice("encoding", s.encoding, ENCODINGS)
        self.num_initial: int = s.num_initial
        self.num_new: int = s.num_new
        self.num_parents: int = s.num_parents
        self.mutations_per_parent: int = s.mutations_per_parent
        self.num_random: int = s.num_random
        self.ensemble_size: int = s.ensemble_size
        self.layers: int = s.layers
        self.width: int = s.width
        self.epochs: int = s.epochs
        self.batch_size: int = s.batch_size
        self.lr: float = float(s.lr)
        self.num_threads: int = s.num_threads
        self.encoding: str = s.encoding
        self.iteration = 0
        self.history: list[dict] = []

    def _propose(self) -> list | None:
        decided, batch = self._round_step(self.num_initial, self._apply)
        if decided:
            return batch
        labeled, size = self.results(), min(self.num_new, self.max_queries - self.num_spent)
        if len(labeled) < 2:  # nothing to fit yet (failed evaluations): keep exploring at random
            return self.sample_new(size)
        return self._start_round(run_bananas_round, self._request(labeled, size), self._apply)

    def _request(self, labeled: list, num_new: int) -> BananasRequest:
        names = "num_parents mutations_per_parent num_random ensemble_size layers width epochs batch_size lr"
        names += " num_threads encoding max_flops"
        return BananasRequest(
            space=self.space,
            archs=[o.arch for o in labeled],
            scores=np.array([o.score for o in labeled], dtype=np.float64),
            seen_keys=self.seen_keys(),
            num_new=num_new,
            seed=round_seed(self.seed, self.iteration),
            **{k: getattr(self, k) for k in names.split()},
        )

    def _apply(self, result: BananasResult, remaining: int) -> list:
        self.iteration += 1
        want = min(self.num_new, remaining)
        new = [a for a in result.new_archs if self.is_new(a)][:want]
        fill = self.sample_new(want - len(new)) if len(new) < want else []
        self.history.append({**result.info, "iteration": self.iteration, "random_fill": len(fill)})
        return new + fill
