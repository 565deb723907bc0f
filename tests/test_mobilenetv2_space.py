"""MobileNetV2Space: geometry, tokens, keys, moves, and FLOPs/params against built networks."""

import numpy as np
import pytest
import torch
from torch import nn

from seminas_tune.spaces.base import InvalidConfigError
from seminas_tune.spaces.mobilenetv2 import MB_OPS, OPS, ZERO, MobileNetV2Space
from seminas_tune.supernet.image import MobileNetV2Net

FIRST = (0, 4, 8, 12, 16, 20)


@pytest.fixture(scope="module")
def space():
    return MobileNetV2Space()


def counted_macs_and_params(net: nn.Module, resolution: int) -> tuple[int, int]:
    """Multiply-adds of every Conv2d and Linear, measured with forward hooks."""
    macs = [0]

    def hook(m, _inp, out):
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1]
            macs[0] += out[0].numel() * (m.in_channels // m.groups) * k
        else:
            macs[0] += m.in_features * m.out_features

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    net.eval()
    with torch.no_grad():
        net(torch.zeros(1, 3, resolution, resolution))
    for h in handles:
        h.remove()
    return macs[0], sum(p.numel() for p in net.parameters())


def test_geometry_matches_the_design(space):
    specs = space.layer_specs()
    assert len(specs) == space.seq_len == 21
    assert [s.index for s in specs if s.first_of_stage] == list(FIRST)
    assert [specs[i].out_channels for i in FIRST] == [24, 40, 80, 96, 192, 320]
    assert [specs[i].stride for i in FIRST] == [2, 2, 2, 1, 2, 1]
    assert specs[0].in_size == 112 and specs[-1].in_size == 7
    assert space.stem_channels == 32 and space.first_block_channels == 16
    assert space.head_channels == 1280


def test_first_layer_of_stage_stays_unskippable_when_widths_collide():
    small = MobileNetV2Space(resolution=32, width_mult=0.25, num_classes=10)
    specs = small.layer_specs()
    assert specs[12].in_channels == specs[12].out_channels  # 80 and 96 both round to 24
    assert [s.index for s in specs if s.first_of_stage] == list(FIRST)
    assert OPS.index(ZERO) + 1 not in small.allowed_tokens(12)


def test_tokens_and_zero_rule(space):
    assert space.vocab_size == 8
    zero_tok = OPS.index(ZERO) + 1
    mask = space.token_mask()
    assert not mask[:, 0].any()
    for p in range(21):
        assert mask[p, zero_tok] == (p not in FIRST)
    arch = tuple(["mb_k3_e3"] * 21)
    bad = arch[:4] + (ZERO,) + arch[5:]
    assert "first of their stage" in space.invalid_reason(bad)
    with pytest.raises(ValueError, match="layer_04='zero' is not one of"):
        space.encode(bad)
    with pytest.raises(ValueError, match="cannot be 'zero'"):
        space.flops(bad)
    with pytest.raises(InvalidConfigError):
        space.from_config(space.to_config(bad))
    assert space.decode([0] * 21) is None
    assert space.decode(space.encode(arch)[:-1]) is None
    assert space.invalid_reason(arch[:20]) is not None
    assert "layer_20='conv' is not one of" in space.invalid_reason(arch[:20] + ("conv",))


def test_encode_decode_config_round_trip(space):
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = space.mutate(space.sample(rng), rng)
        assert space.decode(space.encode(a)) == a
        assert space.from_config(space.to_config(a)) == a
        assert all(t in space.allowed_tokens(p) for p, t in enumerate(space.encode(a)))
    assert set(space.choices()) == set(space.to_config(a))
    assert ZERO not in space.choices()["layer_04"] and ZERO in space.choices()["layer_05"]


def test_key_ignores_where_a_stage_skips(space):
    base = list(["mb_k5_e6"] * 21)
    a, b = base.copy(), base.copy()
    a[1], a[2] = ZERO, "mb_k3_e3"
    b[2], b[1] = ZERO, "mb_k3_e3"
    assert space.key(tuple(a)) == space.key(tuple(b))
    c = base.copy()
    c[1], c[3] = "mb_k3_e3", ZERO
    assert space.key(tuple(a)) == space.key(tuple(c))
    d, e = base.copy(), base.copy()
    d[1], d[2] = "mb_k3_e3", "mb_k7_e3"
    e[1], e[2] = "mb_k7_e3", "mb_k3_e3"  # the order of ops inside a stage matters
    assert space.key(tuple(d)) != space.key(tuple(e))
    assert "-" in space.describe(tuple(a)) and space.describe(tuple(a)).count("|") == 5


def test_sample_is_canonical_and_uniform_over_keys(space):
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(3000)]
    assert all(space.is_valid(a) and space.key(a) == a for a in archs)
    full = np.mean([ZERO not in a[1:4] for a in archs])
    assert abs(full - 216 / 259) < 0.03  # 6^3 of the 259 keys of a 4-layer stage
    assert len({space.key(a) for a in archs}) == len(archs)


def test_neighbours_and_mutate(space):
    arch = tuple(["mb_k3_e3"] * 21)
    nbrs = space.neighbours(arch)
    keys = [space.key(n) for n in nbrs]
    assert len(keys) == len(set(keys)) and space.key(arch) not in keys
    assert all(space.is_valid(n) and sum(x != y for x, y in zip(n, arch)) == 1 for n in nbrs)
    # per 4-layer stage: 5 + 3 * 5 op changes and one distinct skip; last stage: 5
    assert len(nbrs) == 5 * 21 + 5
    rng = np.random.default_rng(2)
    for _ in range(100):
        m = space.mutate(arch, rng)
        assert space.is_valid(m) and space.key(m) != space.key(arch)


@pytest.mark.parametrize(
    "resolution,width_mult,num_classes", [(224, 1.0, 1000), (32, 0.25, 10), (97, 0.5, 7), (64, 1.4, 10)]
)
def test_flops_and_params_match_the_built_network(resolution, width_mult, num_classes):
    space = MobileNetV2Space(resolution=resolution, width_mult=width_mult, num_classes=num_classes)
    rng = np.random.default_rng(resolution)
    for arch in (space.sample(rng), tuple(space.neighbours(space.sample(rng))[-1])):
        macs, params = counted_macs_and_params(MobileNetV2Net(space, arch), resolution)
        assert space.flops(arch) == macs
        assert space.params(arch) == params


def test_flops_order_and_range(space):
    light = tuple("mb_k3_e3" if i in FIRST else ZERO for i in range(21))
    heavy = tuple(["mb_k7_e6"] * 21)
    rng = np.random.default_rng(3)
    samples = [space.flops(space.sample(rng)) for _ in range(200)]
    assert space.flops(light) <= min(samples) <= max(samples) <= space.flops(heavy)
    assert 250e6 < np.median(samples) < 600e6  # MobileNetV2-like costs at 224 px
    for op_small, op_big in zip(MB_OPS[::2], MB_OPS[1::2]):
        a = tuple([op_small] * 21)
        b = a[:5] + (op_big,) + a[6:]
        assert space.flops(b) > space.flops(a) and space.params(b) > space.params(a)
    assert MobileNetV2Space(resolution=160).flops(heavy) < space.flops(heavy)


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="resolution"):
        MobileNetV2Space(resolution=8)
