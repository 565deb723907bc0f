"""The NAS-Bench-101 cell space.

An architecture is a pruned :class:`~seminas_tune.nasbench.api.ModelSpec`. Cells with fewer
than 7 vertices are handled in a *padded* 7-vertex form (isolated filler vertices before the
output) for tokens, flat configs and local moves; pruning removes the fillers again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from seminas_tune.nasbench.api import (
    CONV1X1,
    CONV3X3,
    INPUT,
    MAX_EDGES,
    MAX_VERTICES,
    MAXPOOL3X3,
    OUTPUT,
    ModelSpec,
    OutOfDomainError,
    check_spec,
)
from seminas_tune.nasbench.graph import hash_module, labels_of, wl_signature, wl_signature_of_lists
from seminas_tune.spaces.base import InvalidConfigError, SearchSpace

_OPS = (CONV3X3, CONV1X1, MAXPOOL3X3)
_SHORT = {INPUT: "in", OUTPUT: "out", CONV3X3: "c3", CONV1X1: "c1", MAXPOOL3X3: "mp"}
# Token vocabulary of the reference implementation.
_PAD, _NO_EDGE, _EDGE = 0, 1, 2
_OP_TOKEN = {CONV1X1: 3, CONV3X3: 4, MAXPOOL3X3: 5, OUTPUT: 6}
_TOKEN_OP = {t: op for op, t in _OP_TOKEN.items()}
_N = MAX_VERTICES
_SLOTS = [(r, c) for c in range(1, _N) for r in range(c)]  # upper-triangle slots, column-major
_ROWS, _COLS = np.array(_SLOTS).T
_TRIU = {n: np.triu_indices(n, 1) for n in range(2, _N + 1)}
_BIT = 1 << np.arange(len(_SLOTS), dtype=np.int64)  # slot -> bit of a padded graph's memo key
_EDGE_BITS = len(_SLOTS)
_POW3 = [3**i for i in range(_N - 2)]  # interior vertex v's op index is digit v - 1 of the ops code
# vertex mask -> mask of the edge slots between its vertices
_SLOTS_WITHIN = [sum(1 << i for i, (r, c) in enumerate(_SLOTS) if keep >> r & keep >> c & 1) for keep in range(1 << _N)]
# Token positions: for each column c, its c edge bits then the op of vertex c.
_LAYOUT = [item for c in range(1, _N) for item in [("edge", r, c) for r in range(c)] + [("op", c, c)]]


def _allowed(kind: str, column: int) -> tuple[int, ...]:
    if kind == "edge":
        return (_NO_EDGE, _EDGE)
    if column == _N - 1:
        return (_OP_TOKEN[OUTPUT],)
    return tuple(_OP_TOKEN[o] for o in (CONV1X1, CONV3X3, MAXPOOL3X3))


def _padded_code(matrix: np.ndarray, ops: Sequence[str]) -> int:
    """A padded 7-vertex graph as one integer: its 21 edge bits (slot order), then the
    interior ops' indices in ``_OPS`` as base-3 digits."""
    return int(matrix[_ROWS, _COLS] @ _BIT) | sum(_OPS.index(o) * p for o, p in zip(ops[1:-1], _POW3)) << _EDGE_BITS


def _op_digits(code: int) -> list[int]:
    ops_code = code >> _EDGE_BITS
    return [ops_code // p % 3 for p in _POW3]


def _on_paths(code: int) -> tuple[int, list[int], list[int]] | None:
    """(bit mask of the vertices on an input->output path, each vertex's predecessor and
    successor bit masks) of a padded graph's code; None when the output is unreachable.
    :func:`~seminas_tune.nasbench.graph.prune` on bits, for the hot loop of mutation."""
    succ, pred = [0] * _N, [0] * _N
    edges = code & (1 << _EDGE_BITS) - 1
    while edges:
        low = edges & -edges
        r, c = _SLOTS[low.bit_length() - 1]
        succ[r] |= 1 << c
        pred[c] |= 1 << r
        edges ^= low
    fwd = 1
    for v in range(1, _N):
        if pred[v] & fwd:
            fwd |= 1 << v
    if not fwd >> (_N - 1) & 1:
        return None
    bwd = 1 << (_N - 1)
    for v in range(_N - 2, -1, -1):
        if succ[v] & bwd:
            bwd |= 1 << v
    return fwd & bwd, pred, succ


def _lists(keep: int, pred: list[int], succ: list[int], digits: list[int]):
    """(predecessor lists, successor lists, hash labels) of the vertices in ``keep``, renumbered."""
    kept = [v for v in range(_N) if keep >> v & 1]
    index = {v: i for i, v in enumerate(kept)}
    preds = [[index[u] for u in kept if pred[v] >> u & 1] for v in kept]
    succs = [[index[w] for w in kept if succ[v] >> w & 1] for v in kept]
    return preds, succs, [-1] + [digits[v - 1] for v in kept[1:-1]] + [-2]


def make_spec(matrix: Any, ops: Sequence[str]) -> ModelSpec:
    """A ModelSpec stored in pruned form (its original equals its pruned cell when valid)."""
    spec = ModelSpec(matrix, list(ops))
    return ModelSpec(spec.matrix, spec.ops) if spec.valid_spec else spec


class NASBench101Space(SearchSpace):
    """NB-101 cells: <= 7 vertices, <= 9 edges, interior ops conv3x3 / conv1x1 / maxpool3x3.

    Args:
        dataset: a :class:`~seminas_tune.data.NASBench101Data` (or a ``NASBench`` API object).
            With it, the space is the set of cells the data covers: ``sample`` draws members and
            anything else is invalid. Without it, the whole 423,624-cell space.
    """

    name = "NAS-Bench-101"

    def __init__(self, dataset: Any = None):
        self.dataset = getattr(dataset, "dataset", dataset)
        self._members: np.ndarray | None = None
        self._graphs: dict | None = None
        self._hashes: dict = {}
        self._from_padded: dict = {}
        self._from_pruned: dict = {}
        self._tokens: dict = {}
        self._signatures: set | None = None
        self._unfiltered = 0

    def __setstate__(self, state: dict) -> None:  # caches missing from an older pickle start empty
        NASBench101Space.__init__(self, state.get("dataset"))
        self.__dict__.update(state)

    def __getstate__(self) -> dict:
        return {
            **self.__dict__,
            "_graphs": None,
            "_members": None,
            "_hashes": {},
            "_from_padded": {},
            "_from_pruned": {},
            "_tokens": {},
        }

    # -- sampling and validity ---------------------------------------------------------
    def _index(self) -> tuple[dict, np.ndarray]:
        """(hash -> stored graph, member hashes), loaded on first use."""
        if self._graphs is None or self._members is None:
            self._load_graphs()
        assert self._graphs is not None and self._members is not None
        return self._graphs, self._members

    def _load_graphs(self) -> None:
        """Index the stored graphs: the dataset's, or the bundled list of all 423,624 cells."""
        if self.dataset is not None:
            f = self.dataset.fixed
        else:
            import pandas as pd

            from seminas_tune.data.tables import bundled_file

            f = pd.read_parquet(bundled_file("nb101_space_graphs.parquet")).set_index("hash")
        self._graphs = dict(zip(f.index, zip(f["n_vertices"], f["adjacency"], f["ops"])))
        self._members = np.asarray(f.index)

    def _stored_graph(self, module_hash: str) -> tuple[np.ndarray, list[str]]:
        n, adjacency, ops = self._index()[0][module_hash]
        m = np.zeros((n, n), dtype=np.int64)
        m[_TRIU[n]] = np.frombuffer(adjacency.encode(), dtype=np.uint8) - 48
        return m, ops.split(",")

    def spec_of_hash(self, module_hash: str) -> ModelSpec:
        """The stored graph of ``module_hash`` (NB-101's own representative; stored pruned)."""
        spec = ModelSpec.of_pruned(*self._stored_graph(module_hash))
        spec._key = module_hash
        return spec

    def sample(self, rng: np.random.Generator) -> ModelSpec:
        """A cell drawn uniformly over hashes (of the whole space, or of the data's cells)."""
        members = self._index()[1]
        return self.spec_of_hash(str(members[rng.integers(len(members))]))

    def invalid_reason(self, arch: ModelSpec) -> str | None:
        if not isinstance(arch, ModelSpec):
            return f"expected a ModelSpec, got {type(arch).__name__}"
        try:
            check_spec(arch)
        except OutOfDomainError as e:
            return str(e)
        if self.dataset is not None and self.key(arch) not in self.dataset:
            return f"cell {self.key(arch)} is not covered by the data ({self.dataset.name})"
        return None

    def key(self, arch: ModelSpec) -> str:
        k = getattr(arch, "_key", None)
        if k is None:
            if not arch.valid_spec:
                k = "invalid"
            else:
                k = self._hash(arch.matrix, arch.ops)
            arch._key = k
        return k

    def _hash(self, matrix: np.ndarray, ops: Sequence[str]) -> str:
        """Module hash of a pruned cell, memoised: evolution and local search meet the same
        few graphs again and again."""
        graph = (matrix.shape[0], matrix.tobytes(), tuple(ops))
        k = self._hashes.get(graph)
        if k is None:
            if len(self._hashes) > 2_000_000:
                self._hashes.clear()
            k = self._hashes[graph] = hash_module(matrix, labels_of(list(ops)))
        return k

    def describe(self, arch: ModelSpec) -> str:
        if not arch.valid_spec:
            return "invalid (disconnected)"
        bits = "".join(str(int(b)) for b in arch.matrix[np.triu_indices(len(arch.ops), 1)])
        return f"{','.join(_SHORT.get(o, o) for o in arch.ops)} | {bits}"

    # -- padded 7-vertex form ------------------------------------------------------------
    @staticmethod
    def padded(arch: ModelSpec) -> tuple[np.ndarray, list[str]]:
        """7x7 matrix and 7 ops: the cell with isolated conv3x3 fillers before its output."""
        m, ops = arch.matrix, arch.ops
        n = len(ops)
        full = np.zeros((_N, _N), dtype=np.int64)
        idx = list(range(n - 1)) + [_N - 1]
        full[np.ix_(idx, idx)] = m
        full_ops = list(ops[:-1]) + [CONV3X3] * (_N - n) + [OUTPUT]
        return full, full_ops

    def member(self, matrix: np.ndarray, ops: Sequence[str]) -> ModelSpec | None:
        """The pruned cell of a padded (matrix, ops) pair, or None when it is not a valid member."""
        return self._member_of_code(_padded_code(matrix, ops))

    def _member_of_code(self, code: int) -> ModelSpec | None:
        """:meth:`member` of a padded graph's integer code (see :func:`_padded_code`).

        Memoised on the code: evolution, local search and decoding meet the same padded
        graphs again and again, and in a table-restricted space most of them are outside it.
        """
        try:
            return self._from_padded[code]
        except KeyError:
            pass
        spec = None
        cell = _on_paths(code)
        if cell is not None:
            edges = code & _SLOTS_WITHIN[cell[0]]  # the edges on input->output paths
            if edges.bit_count() <= MAX_EDGES:
                spec = self._member_of_pruned(*cell, _op_digits(code), edges)
        if len(self._from_padded) > 3_000_000:  # ~0.5 GB; most entries are None
            self._from_padded.clear()
        self._from_padded[code] = spec
        return spec

    def _member_of_pruned(
        self, keep: int, pred: list[int], succ: list[int], digits: list[int], edges: int
    ) -> ModelSpec | None:
        """The member that the vertices ``keep`` of a padded graph form, or None; memoised on
        those vertices, their edges and ops (many padded graphs differ only off the paths)."""
        key = (keep, edges, tuple(digits[v - 1] for v in range(1, _N - 1) if keep >> v & 1))
        try:
            return self._from_pruned[key]
        except KeyError:
            pass
        spec = None
        preds, succs, labels = _lists(keep, pred, succ, digits)
        if self._may_be_member(preds, succs, labels):
            m = np.zeros((len(labels), len(labels)), dtype=np.int64)
            for v, p in enumerate(preds):
                m[p, v] = 1
            ops = [INPUT] + [_OPS[label] for label in labels[1:-1]] + [OUTPUT]
            k = self._hash(m, ops)
            if self.dataset is None or k in self.dataset:
                spec = ModelSpec(m, ops)
                spec._key = k
                spec = spec if self.is_valid(spec) else None
        if len(self._from_pruned) > 1_000_000:
            self._from_pruned.clear()
        self._from_pruned[key] = spec
        return spec

    def _may_be_member(self, preds: list[list[int]], succs: list[list[int]], labels: list[int]) -> bool:
        """False only for cells certainly outside the data (their cheap WL signature is no
        member's); spares the md5 hash of most rejected mutations."""
        if self.dataset is None:
            return True
        if self._signatures is None:
            self._unfiltered += 1
            if self._unfiltered < 20_000:  # indexing the table costs about 20,000 md5 hashes
                return True
            self._signatures = {
                wl_signature(m, labels_of(member_ops)) for m, member_ops in map(self._stored_graph, self._index()[1])
            }
        return wl_signature_of_lists(preds, succs, labels) in self._signatures

    # -- controller tokens --------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return 7

    @property
    def seq_len(self) -> int:
        return len(_SLOTS) + _N - 1  # 21 edge bits + 6 ops = 27

    def allowed_tokens(self, position: int) -> tuple[int, ...]:
        kind, _, c = _LAYOUT[position]
        return _allowed(kind, c)

    def encode(self, arch: ModelSpec) -> list[int]:
        """Memoised on the graph: each controller round encodes thousands of (mostly known) cells."""
        graph = (arch.matrix.shape[0], arch.matrix.tobytes(), tuple(arch.ops))
        tokens = self._tokens.get(graph)
        if tokens is None:
            m, ops = self.padded(arch)
            tokens = tuple(
                (_EDGE if m[r, c] else _NO_EDGE) if kind == "edge" else _OP_TOKEN[ops[c]] for kind, r, c in _LAYOUT
            )
            if len(self._tokens) > 500_000:  # ~150 MB
                self._tokens.clear()
            self._tokens[graph] = tokens
        return list(tokens)

    def decode(self, tokens: Sequence[int]) -> ModelSpec | None:
        if len(tokens) != self.seq_len:
            return None
        m = np.zeros((_N, _N), dtype=np.int64)
        ops: list[Any] = [INPUT] + [None] * (_N - 1)
        for (kind, r, c), t in zip(_LAYOUT, tokens):
            if t not in _allowed(kind, c):
                return None
            if kind == "edge":
                m[r, c] = int(t == _EDGE)
            else:
                ops[c] = _TOKEN_OP[int(t)]
        return self.member(m, ops)

    # -- local moves ---------------------------------------------------------------------
    def _moves(self, arch: ModelSpec) -> list[ModelSpec | None]:
        """The cells one edge flip or one op change away, in slot order then vertex and op order."""
        code = _padded_code(*self.padded(arch))
        digits = _op_digits(code)
        out = [self._member_of_code(code ^ 1 << i) for i in range(_EDGE_BITS)]
        for i, d in enumerate(digits):
            out += [
                self._member_of_code(code + ((new - d) * _POW3[i] << _EDGE_BITS))
                for new in range(len(_OPS))
                if new != d
            ]
        return out

    def neighbours(self, arch: ModelSpec) -> list[ModelSpec]:
        seen = {self.key(arch)}
        result = []
        for spec in self._moves(arch):
            if spec is not None and self.key(spec) not in seen:
                seen.add(self.key(spec))
                result.append(spec)
        return result

    def mutate(self, arch: ModelSpec, rng: np.random.Generator) -> ModelSpec:
        """NB-101 paper mutation: flip each edge w.p. 1/21, change each op w.p. 1/5; retry
        until the child is valid and differs from the parent. A cell with no valid neighbour
        (possible in a table-restricted space) mutates into a random member."""
        code = _padded_code(*self.padded(arch))
        edges, digits = code & (1 << _EDGE_BITS) - 1, _op_digits(code)
        others = [[o for o in range(len(_OPS)) if o != d] for d in digits]
        own = self.key(arch)
        for _ in range(1000):
            flip = rng.random(_EDGE_BITS) < 1 / _EDGE_BITS
            child_code = edges ^ int(flip @ _BIT)
            change = rng.random(_N - 2) < 1 / (_N - 2)
            ops_code = 0
            for i, changed in enumerate(change.tolist()):  # one of the two other ops, uniformly
                ops_code += (others[i][rng.integers(2)] if changed else digits[i]) * _POW3[i]
            child = self._member_of_code(child_code | ops_code << _EDGE_BITS)
            if child is not None and self.key(child) != own:
                return child
        nbrs = self.neighbours(arch)
        if nbrs:
            return nbrs[rng.integers(len(nbrs))]
        while True:  # an isolated member of a table-restricted space: jump to a random one
            child = self.sample(rng)
            if self.key(child) != own:
                return child

    # -- flat Tune config ----------------------------------------------------------------
    def choices(self) -> dict[str, list[Any]]:
        ch: dict[str, list[Any]] = {f"edge_{r}_{c}": [0, 1] for r, c in _SLOTS}
        ch.update({f"op_{v}": list(_OPS) for v in range(1, _N - 1)})
        return ch

    def to_config(self, arch: ModelSpec) -> dict[str, Any]:
        if not arch.valid_spec:
            raise InvalidConfigError("an invalid (disconnected) cell has no config")
        m, ops = self.padded(arch)
        cfg: dict[str, Any] = {f"edge_{r}_{c}": int(m[r, c]) for r, c in _SLOTS}
        cfg.update({f"op_{v}": ops[v] for v in range(1, _N - 1)})
        return cfg

    def from_choices(self, config: dict[str, Any]) -> ModelSpec:
        m = np.zeros((_N, _N), dtype=np.int64)
        for r, c in _SLOTS:
            m[r, c] = int(config[f"edge_{r}_{c}"])
        ops = [INPUT] + [config[f"op_{v}"] for v in range(1, _N - 1)] + [OUTPUT]
        return make_spec(m, ops)
