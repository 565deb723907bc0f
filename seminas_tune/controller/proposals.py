"""Where a controller round's new architectures come from, and how it picks among them.

Four sources feed one candidate list: gradient-ascent decodes of the best seeds (the paper's
only source), the unseen neighbours (edit distance 1) of the best evaluated architectures, the
space's mutations of the best ones, and the best-predicted members of the
pseudo-labeled set. :func:`propose` builds that list for a round, :func:`acquire` ranks it by
the predictor ensemble (its mean, or independent Thompson sampling from each candidate's
N(mean, spread)) and the round keeps the first ``num_new``.
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


def far_from_best(
    space,
    labeled: list,
    scores: np.ndarray,
    pool: list,
    tokens: torch.Tensor,
    pred: torch.Tensor,
    n: int,
    skip: set,
    max_flops: float | None,
) -> list:
    """The ``n`` best-predicted members of ``pool`` (``tokens``: their encodings; keys not in
    ``skip``) that are far from the 5 best evaluated architectures: whose token distance to the
    nearest of them is at least the pool's median, so a search caught in one basin samples the
    others its predictor likes most."""
    if n <= 0 or not pool or not labeled:
        return []
    best = np.argsort(-np.asarray(scores), kind="stable")[:5]
    top = tokens_of(space, [labeled[i] for i in best], tokens.device)
    dist = (tokens[:, None, :] != top[None, :, :]).sum(dim=-1).min(dim=1).values.cpu().numpy()
    far = np.flatnonzero(dist >= np.median(dist))
    return best_of([pool[i] for i in far], pred[torch.as_tensor(far, device=pred.device)], n, skip, space, max_flops)


def acquire(heads: torch.Tensor, acquisition: str, rng: np.random.Generator) -> list[int]:
    """Candidate indices, best first, by the ensemble predictions ``n x heads``: their mean
    (``"mean"``), or one draw per candidate from N(mean, std across heads) (``"its"``,
    independent Thompson sampling as in BANANAS; the mean when there is one head)."""
    h = heads.double().cpu().numpy()
    value = h.mean(axis=1)
    if acquisition == "its" and h.shape[1] > 1:
        value = rng.normal(value, h.std(axis=1, ddof=1))
    return np.argsort(-value, kind="stable").tolist()


def propose(model: EPD, req, unl: list, y_lab: torch.Tensor, rng, dev, info: dict) -> list:
    """A round's ``num_new`` architectures (``req``: its ``RoundRequest``; ``unl``: its
    pseudo-labeled set): candidates from gradient ascent, the best cells' neighbours and
    mutations and ``unl``, ranked by ``req.acquisition``; topped up with the best-predicted
    members of a wider random pool when they are too few."""
    space, seen = req.space, set(req.seen_keys)
    # Seeds and pool ranked by the *final* predictor, not the stale pseudo-labels.
    unl_tok = tokens_of(space, unl, dev) if unl else None
    unl_pred = predict(model, unl_tok) if unl else torch.zeros(0, device=dev)
    explore = far_from_best(
        space, req.labeled, req.scores, unl, unl_tok, unl_pred, req.num_explore, seen, req.max_flops
    )
    seen |= {space.key(a) for a in explore}
    complete = incumbent_neighbours(model, req, seen, rng, dev)
    seen |= {space.key(a) for a in complete}
    num_new = req.num_new - len(explore) - len(complete)
    if req.num_explore > 0:
        info["explore"] = len(explore)
    if req.num_complete > 0:
        info["complete"] = len(complete)
    sources: dict[str, list] = {}
    if req.num_local > 0:
        sources["local"] = neighbours_of_best(space, req.labeled, req.scores, req.num_local, seen, req.max_flops, rng)
        seen |= {space.key(a) for a in sources["local"]}
    if req.num_mutation > 0:
        m = mutations_of_best(space, req.labeled, req.scores, req.num_mutation, seen, req.max_flops, rng)
        sources["mutation"], seen = m, seen | {space.key(a) for a in m}
    num_ascent = req.num_new if req.num_ascent is None else req.num_ascent
    if num_ascent > 0:
        pool_archs, pool_pred = list(req.labeled) + unl, torch.cat([y_lab, unl_pred])
        top = torch.argsort(pool_pred, descending=True)[: req.top_k].cpu().tolist()
        seeds = tokens_of(space, [pool_archs[i] for i in top], dev)
        sources["ascent"], info["step_size"] = ascend(
            model, space, seeds, num_ascent, seen, req.max_flops, req.max_step_size
        )
        seen |= {space.key(a) for a in sources["ascent"]}
        info["generated"] = len(sources["ascent"])
    if req.num_pool > 0 and unl:
        sources["pool"] = best_of(unl, unl_pred, req.num_pool, seen, space, req.max_flops)
    cands = [a for archs in sources.values() for a in archs]
    origin = [name for name, archs in sources.items() for _ in archs]
    new: list = []
    if cands:
        order = acquire(predict_heads(model, tokens_of(space, cands, dev)), req.acquisition, rng)[:num_new]
        new = [cands[i] for i in order]
        info["chosen"] = {name: sum(origin[i] == name for i in order) for name in sources}
    if len(new) < num_new:
        more = sample_unlabeled(space, rng, req.fill_pool - len(unl), set(req.seen_keys) | {space.key(a) for a in unl})
        pool = unl + more
        pred = torch.cat([unl_pred, predict(model, tokens_of(space, more, dev))]) if more else unl_pred
        taken = set(req.seen_keys) | {space.key(a) for a in cands + explore}
        new += best_of(pool, pred, num_new - len(new), taken, space, req.max_flops)
    return new + explore + complete


def incumbent_neighbours(model: EPD, req, seen: set, rng, dev) -> list:
    """Up to ``req.num_complete`` unseen architectures of the nearest ring around the best
    evaluated one that has any (one edit, else two: a local optimum's way out is a double move),
    ranked by ``req.acquisition``."""
    if req.num_complete <= 0 or not req.labeled:
        return []
    space = req.space
    best = req.labeled[int(np.argmax(req.scores))]
    ring, inner = space.neighbours(best), {space.key(best)}
    for _ in range(2):
        fresh = [a for a in ring if space.key(a) not in seen and fits(space, a, req.max_flops)]
        if fresh:
            order = acquire(predict_heads(model, tokens_of(space, fresh, dev)), req.acquisition, rng)
            return [fresh[i] for i in order[: req.num_complete]]
        inner |= {space.key(a) for a in ring}
        ring = list({space.key(b): b for a in ring for b in space.neighbours(a) if space.key(b) not in inner}.values())
    return []
