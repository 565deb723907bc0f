"""The guide ``docs/custom_space.md`` runs: its example space passes the contract suites, its
snippets are the example files' code, and both examples search through Tune."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from examples.custom_space import OPS, CellTableSpace, cell_table, evaluate, live_edges
from seminas_tune import SemiNASSearcher
from seminas_tune.testing import SearcherContract, SpaceContract, drive
from tests.test_searcher_contract import TINY

ROOT = Path(__file__).resolve().parents[1]


class TestCellTableSpace(SpaceContract):
    def make_space(self):
        return CellTableSpace(cell_table())


class TestSemiNASOnCellTable(SearcherContract):
    max_queries = 8  # one controller round (two in the min-mode check)
    hash_seed_queries = 10

    def make_space(self):
        return CellTableSpace(cell_table())

    def make_searcher(self, **kwargs):
        return SemiNASSearcher(
            space=self.make_space(),
            num_initial=4,
            num_new=4,
            top_k=4,
            num_unlabeled=40,
            controller=TINY,
            background="inline",
            **kwargs,
        )

    def objective(self, config):
        return evaluate(config)


def test_cells_differing_off_every_path_share_a_key():
    space = CellTableSpace(cell_table())
    # edge 1->0 feeds node 1, but nothing leaves node 1: its op cannot matter
    a = ("nor_conv_3x3", "skip_connect", "none", "nor_conv_1x1", "none", "avg_pool_3x3")
    b = ("avg_pool_3x3",) + a[1:]
    assert live_edges(a) == {(2, 0), (3, 0), (3, 2)}
    assert space.key(a) == space.key(b) != space.key(a[:3] + ("skip_connect",) + a[4:])
    assert space.describe(b) not in (space.describe(x) for x in space.neighbours(a))


def test_a_cell_without_an_input_output_path_is_not_a_member():
    space = CellTableSpace(cell_table())
    dead = ("nor_conv_3x3", "none", "skip_connect", "none", "none", "none")
    assert "no path from input to output" in space.invalid_reason(dead)
    assert space.decode(space.encode(dead)) is None
    partial = CellTableSpace({k: v for k, v in cell_table().items() if "avg_pool_3x3" not in k})
    assert partial.invalid_reason(("avg_pool_3x3",) * 6) == "not in the table"
    assert all("avg_pool_3x3" not in partial.describe(partial.sample(np.random.default_rng(s))) for s in range(20))
    assert partial.invalid_reason(("conv",) * 6).startswith(f"expected a tuple of 6 ops from {OPS}")


def test_hooks_bound_the_cost_and_apply_the_constraint():
    from examples.digits_search import PARAM_SPACE, mlp_flops
    from seminas_tune.spaces import CategoricalSpace

    # the guide's snippet (docs/custom_space.md, "Hooks")
    space = CategoricalSpace(
        PARAM_SPACE,
        flops=mlp_flops,  # config -> cost; the searcher's max_flops bounds it
        constraint=lambda c: (
            c["model"]["layers"] == 1 or c["model"]["dropout"] <= 0.3 or "dropout above 0.3 only in one-layer nets"
        ),
    )
    searcher = SemiNASSearcher(
        space=space,
        metric="val_accuracy",
        mode="max",
        max_flops=10_000,
        num_initial=6,
        num_new=3,
        top_k=4,
        num_unlabeled=40,
        controller=TINY,
        max_queries=12,
        background="inline",
    )
    # end of the guide's snippet; a made-up score, to check the plumbing
    configs = drive(searcher, lambda c: {"val_accuracy": c["train"]["lr"] * c["model"]["width"]})
    assert len(configs) == 12 and searcher.iteration >= 1
    assert all(mlp_flops(c) <= 10_000 for c in configs)
    assert all(c["model"]["layers"] == 1 or c["model"]["dropout"] <= 0.3 for c in configs)
    big = space.from_config(
        {"model": {"layers": 3, "width": 128, "activation": "relu", "dropout": 0.5}, "train": configs[0]["train"]}
    )
    assert space.flops(big) > 10_000 and space.invalid_reason(big) == "dropout above 0.3 only in one-layer nets"


def _python_blocks(doc: Path) -> list[tuple[str, str]]:
    """(file named on the block's first line, rest of the block) of every ```python block."""
    blocks = re.findall(r"```python\n# (\S+/\S+\.py)\n(.*?)```", doc.read_text(), flags=re.S)
    assert blocks, f"{doc} has no python block naming its file"
    return blocks


def _lines(text: str) -> str:
    return "\n".join(line.strip() for line in text.strip().splitlines())


def test_the_guide_shows_the_example_files_code():
    """Every python block of the guide starts with ``# <file>``; its code (parts separated by
    ``...`` lines, indentation aside) is in that file."""
    for name, code in _python_blocks(ROOT / "docs" / "custom_space.md"):
        text = _lines((ROOT / name).read_text())
        for chunk in code.strip().split("\n...\n"):
            assert _lines(chunk) in text, f"docs/custom_space.md shows code that {name} no longer has:\n{chunk}"


def test_custom_space_search_through_tune(ray_session, tmp_path):
    from examples.custom_space import search

    grid, searcher = search(
        max_queries=10,
        seed=1,
        storage_path=str(tmp_path),
        num_initial=6,
        num_new=4,
        top_k=4,
        num_unlabeled=40,
        controller=TINY,
    )
    assert not grid.errors and len(grid) == 10
    keys = {searcher.space.key(searcher.space.from_config(r.config)) for r in grid}
    assert len(keys) == 10 and searcher.iteration >= 1
    table = cell_table()
    assert all(
        r.metrics["val_accuracy"] == table[searcher.space.describe(searcher.space.from_config(r.config))] for r in grid
    )


@pytest.mark.slow  # 15-75 s each here, with the machine's load; CI still runs it
@pytest.mark.parametrize("name", ["seminas", "optuna"])
def test_digits_search_trains_distinct_configs(ray_session, tmp_path, name):
    from examples.digits_search import search

    extra = dict(num_initial=4, num_new=2, top_k=4, num_unlabeled=40, controller=TINY) if name == "seminas" else {}
    run = search(name, seed=0, trials=6, epochs=1, storage_path=str(tmp_path), **extra)
    flat = [
        (
            c["model"]["layers"],
            c["model"]["width"],
            c["model"]["activation"],
            c["model"]["dropout"],
            c["train"]["lr"],
            c["train"]["weight_decay"],
            c["train"]["batch_size"],
        )
        for c in run["configs"]
    ]
    assert len(flat) == 6 and len(set(flat)) == 6
    if name == "seminas":
        assert run["searcher"].iteration >= 1, "the controller never ran"
    assert all(
        c["epochs"] == 1 and 1 <= c["model"]["layers"] <= 3 and 1e-4 <= c["train"]["lr"] <= 1e-1 for c in run["configs"]
    )
    assert all(0.0 <= a <= 1.0 for a in run["final_accuracy"]) and run["best"] > 0.2  # chance is 0.1
