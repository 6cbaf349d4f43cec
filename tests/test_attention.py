"""Cell-output attention (paper 3.3): shapes, parameter counts from the formulas, gating in (0, 1)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nni_snn.snn.attention import (
    ATTENTIONS,
    ChannelTimeAttention,
    MultiDimAttention,
    eca_kernel_size,
    make_attention,
)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("kind", ["ct", "ma"])
@pytest.mark.parametrize("T", [1, 2, 6])
@pytest.mark.parametrize("H", [1, 2, 8])
def test_shapes_and_scaling(kind: str, T: int, H: int):
    torch.manual_seed(0)
    att = make_attention(kind, 16, T)
    x = torch.randn(T, 3, 16, H, H + 1)
    out = att(x)
    assert out.shape == x.shape
    assert (out.abs() <= x.abs()).all()  # sigmoid weights only scale down
    assert (out.sign() * x.sign() >= 0).all()


@pytest.mark.parametrize("C, T, k, kt", [(64, 2, 3, 3), (16, 1, 3, 1), (128, 6, 5, 7), (256, 2, 5, 3)])
def test_ct_parameters(C: int, T: int, k: int, kt: int):
    # ECA: t = int(|(log2 C + 1) / 2|), made odd; kt = smallest odd >= T
    assert eca_kernel_size(C) == k
    att = ChannelTimeAttention(C, T)
    assert (att.kt, att.k) == (kt, k)
    assert n_params(att) == kt * k


def test_ma_parameters():
    assert n_params(MultiDimAttention(64, 2)) == 2 * 64 * (64 // 16) + 2 * 7 * 7
    assert n_params(MultiDimAttention(64, 6)) == n_params(MultiDimAttention(64, 2))  # independent of T
    assert n_params(MultiDimAttention(8, 2)) == 2 * 8 * 1 + 2 * 7 * 7  # hidden width at least 1


def test_ct_weights_depend_on_time_step():
    att = ChannelTimeAttention(16, 2)
    x = torch.ones(2, 1, 16, 4, 4)
    x[1] *= 3.0  # same pattern, different statistics at t=2
    w = att(x) / x
    assert not torch.allclose(w[0], w[1])


def test_make_attention():
    assert {"none", "ct", "ma"} <= set(ATTENTIONS)  # the paper's three, the names arch.json files carry
    assert isinstance(make_attention("none", 16, 2), nn.Identity)
    assert isinstance(make_attention("ct", 16, 2), ChannelTimeAttention)
    assert isinstance(make_attention("ma", 16, 2), MultiDimAttention)
    x = torch.randn(2, 3, 16, 4, 4)
    for kind in ATTENTIONS:  # whatever is registered builds, and keeps a cell output's shape
        assert make_attention(kind, 16, 2)(x).shape == x.shape, kind
    with pytest.raises(ValueError) as caught:
        make_attention("cbam", 16, 2)
    assert all(kind in str(caught.value) for kind in ATTENTIONS)  # the message lists what is valid


@pytest.mark.parametrize("kind", ["ct", "ma"])
def test_gradients(kind: str):
    att = make_attention(kind, 16, 2)
    x = torch.randn(2, 2, 16, 4, 4, requires_grad=True)
    att(x).sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in att.parameters())


def test_ma_matches_cbam_written_plainly():
    """The fast form (sums times 1/count, max with indices) computes eq. 7-10 as written with mean and amax, values
    and gradients (float64, where ties do not occur)."""
    torch.manual_seed(0)
    att = MultiDimAttention(16, 2).double()
    x = torch.randn(2, 3, 16, 5, 5, dtype=torch.float64, requires_grad=True)

    def plain(x):
        y = x.flatten(0, 1)
        w = att.sigmoid(att.mlp(y.mean(dim=(2, 3), keepdim=True)) + att.mlp(y.amax(dim=(2, 3), keepdim=True)))
        y = y * w
        s = torch.cat([y.amax(dim=1, keepdim=True), y.mean(dim=1, keepdim=True)], dim=1)
        return (y * att.sigmoid(att.spatial(s))).reshape(x.shape)

    g = torch.randn_like(x)
    fast, reference = att(x), plain(x)
    assert torch.allclose(fast, reference)
    assert torch.allclose(torch.autograd.grad(fast, x, g)[0], torch.autograd.grad(reference, x, g)[0])


def test_a_new_attention_type_is_one_registration(tmp_path):
    """Registered once, an attention type is built, accepted by the options and arch.json, shown in --help, built
    into networks and named in nni-snn front's table."""
    import json

    from nni_snn.cli.flags import resolve
    from nni_snn.cli.main import build_parser
    from nni_snn.cli.options import SearchOptions
    from nni_snn.files.archfile import load_arch, make_arch
    from nni_snn.files.front import read_run
    from nni_snn.files.genotype import CONV_HEAVY
    from nni_snn.networks import build_network

    ATTENTIONS.register("half", "a throwaway attention", "torch.nn:Identity", label="HALF-DARTS")
    try:
        assert isinstance(make_attention("half", 16, 2), nn.Identity)
        parser = build_parser()
        assert resolve(SearchOptions, parser.parse_args(["search", "--attention", "half"])).attention == "half"
        search_help = parser._subparsers._group_actions[0].choices["search"].format_help()
        assert "half (a throwaway attention)" in " ".join(search_help.split())
        arch = load_arch(make_arch(attention="half", timesteps=2, genotype=CONV_HEAVY))
        build_network(arch, width=4, num_cells=3, num_classes=10, in_channels=1)
        (tmp_path / "arch.json").write_text(json.dumps(arch))
        (tmp_path / "metrics.json").write_text(json.dumps({"accuracy": 0.5, "energy_uj_per_sample": 1.0,
                                                           "spikes_per_sample": 1.0, "sops_per_sample": 1.0}))
        assert read_run(tmp_path)["label"] == "HALF-DARTS λ=0"
    finally:
        ATTENTIONS.pop("half")
