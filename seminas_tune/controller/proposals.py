"""Where a controller round's new architectures come from, and how it picks among them.

Four sources feed one candidate list: gradient-ascent decodes of the best seeds (the paper's
only source), the unseen neighbours (edit distance 1) of the best evaluated architectures, the
space's mutations of the best ones (an option), and the best-predicted members of the
pseudo-labeled set. :func:`acquire` ranks the list by the predictor ensemble (its mean, or
independent Thompson sampling from each candidate's N(mean, spread)) and the round keeps the
first ``num_new``.
"""

from __future__ import annotations

import numpy as np
import torch

from seminas_tune.controller.epd import EPD

ACQUISITIONS = ("mean", "its")


def tokens_of(space, archs: list, device) -> torch.Tensor:
    return torch.tensor([space.encode(a) for a in archs], dtype=torch.long, device=device)


@torch.no_grad()
def predict_heads(model: EPD, tokens: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    """Every head's prediction, ``n x heads``, in evaluation mode."""
    model.eval()
    return torch.cat([model.predict_heads(tokens[i : i + batch]) for i in range(0, tokens.shape[0], batch)])


def predict(model: EPD, tokens: torch.Tensor) -> torch.Tensor:
    """The ensemble's mean prediction, ``n``."""
    return predict_heads(model, tokens).mean(dim=-1)


def sample_unlabeled(space, rng: np.random.Generator, n: int, exclude: set) -> list:
    """Up to ``n`` random members with distinct keys outside ``exclude``."""
    out, keys = [], set(exclude)
    for _ in range(n * 3):
        if len(out) >= n:
            break
        a = space.sample(rng)
        k = space.key(a)
        if k not in keys:
            keys.add(k)
            out.append(a)
    return out


def fits(space, arch, max_flops: float | None) -> bool:
    """Whether ``arch`` is within the FLOPs bound (always, without one)."""
    return max_flops is None or space.flops(arch) <= max_flops


def ascend(
    model: EPD, space, seeds: torch.Tensor, num_new: int, seen: set, max_flops: float | None, max_step: float
) -> tuple[list, float]:
    """Gradient ascent from seed token sequences with step sizes 1, 2, 3, ... until
    ``num_new`` new valid architectures decode; returns (archs, last step size)."""
    model.eval()
    states = model.encode(seeds).detach().requires_grad_(True)
    with torch.enable_grad():
        model.predict_from_states(states).sum().backward()
    grad = states.grad.detach()
    new, keys, eta = [], set(seen), 0.0
    while len(new) < num_new and eta < max_step:
        eta += 1.0
        moved = torch.nn.functional.normalize(states.detach() + eta * grad, dim=-1)
        for row in model.greedy_decode(moved).cpu().tolist():
            arch = space.decode(row)
            if arch is None:
                continue
            k = space.key(arch)
            if k in keys or not fits(space, arch, max_flops):
                continue
            keys.add(k)
            new.append(arch)
            if len(new) >= num_new:
                break
    return new, eta


def neighbours_of_best(
    space, labeled: list, scores: np.ndarray, n: int, seen: set, max_flops: float | None, rng: np.random.Generator
) -> list:
    """Up to ``n`` unseen neighbours of the evaluated architectures, best first: all of the best
    one's, then the next best's, ... (each parent's in random order)."""
    keys, out = set(seen), []
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        nbrs = space.neighbours(labeled[i])
        for j in rng.permutation(len(nbrs)):
            if len(out) >= n:
                return out
            a, k = nbrs[j], space.key(nbrs[j])
            if k not in keys and fits(space, a, max_flops):
                keys.add(k)
                out.append(a)
    return out


def mutations_of_best(
    space, labeled: list, scores: np.ndarray, n: int, seen: set, max_flops: float | None, rng: np.random.Generator
) -> list:
    """Up to ``n`` unseen children of the 10 best evaluated architectures by the space's own
    mutation (in a table-restricted space it reaches members more than one edit away), the
    parents taken in turn, best first; at most ``5 n`` tries."""
    best = [labeled[i] for i in np.argsort(-np.asarray(scores), kind="stable")[:10]]
    keys, out = set(seen), []
    for t in range(5 * n if best else 0):
        if len(out) >= n:
            break
        a = space.mutate(best[t % len(best)], rng)
        if space.key(a) not in keys and fits(space, a, max_flops):
            keys.add(space.key(a))
            out.append(a)
    return out


def best_of(pool: list, pred: torch.Tensor, n: int, skip: set, space, max_flops: float | None) -> list:
    """The ``n`` best-predicted members of ``pool`` whose keys are not in ``skip``."""
    out, skip = [], set(skip)
    for i in torch.argsort(pred, descending=True).cpu().tolist():
        if len(out) >= n:
            break
        a = pool[i]
        if space.key(a) in skip or not fits(space, a, max_flops):
            continue
        skip.add(space.key(a))
        out.append(a)
    return out


def acquire(heads: torch.Tensor, acquisition: str, rng: np.random.Generator) -> list[int]:
    """Candidate indices, best first, by the ensemble predictions ``n x heads``: their mean
    (``"mean"``), or one draw per candidate from N(mean, std across heads) (``"its"``,
    independent Thompson sampling as in BANANAS; the mean when there is one head)."""
    h = heads.double().cpu().numpy()
    value = h.mean(axis=1)
    if acquisition == "its" and h.shape[1] > 1:
        value = rng.normal(value, h.std(axis=1, ddof=1))
    return np.argsort(-value, kind="stable").tolist()
