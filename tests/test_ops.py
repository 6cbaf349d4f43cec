"""Spiking candidate ops: shapes, and the invariant that every synaptic layer receives binary spikes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nni_snn.snn.neuron import LIF, SpikingNeuron
from nni_snn.snn.ops import OPS, PRIMITIVES, FactorizedReduce, Preprocess, TimeDistributed, fold, unfold

T, N, C = 2, 2, 4


def spikes(*shape: int) -> torch.Tensor:
    return (torch.rand(shape) < 0.3).float()


def test_primitives_order():
    assert PRIMITIVES == ["max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                          "dil_conv_3x3", "dil_conv_5x5"]
    assert set(OPS) == set(PRIMITIVES)


def test_fold_unfold_roundtrip():
    x = torch.randn(3, 2, 4, 5, 5)
    assert fold(x).shape == (6, 4, 5, 5)
    assert torch.equal(unfold(fold(x), 3), x)
    td = TimeDistributed(nn.Conv2d(4, 6, 3, padding=1))
    assert td(x).shape == (3, 2, 6, 5, 5)


@pytest.mark.parametrize("name", PRIMITIVES)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("H", [8, 32, 7])
def test_op_shapes(name: str, stride: int, H: int):
    op = OPS.load(name)(C, stride, True)
    out = op(spikes(T, N, C, H, H))
    size = H if stride == 1 else (H + 1) // 2
    assert out.shape == (T, N, C, size, size)


def test_ops_take_a_neuron_spec():
    op = OPS.load("sep_conv_3x3")(C, 1, False, {"tau": 0.5, "surrogate": "arctan"})
    lifs = [m for m in op.modules() if isinstance(m, LIF)]
    assert len(lifs) == 1 and lifs[0].tau == 0.5 and lifs[0].surrogate == "arctan"
    relu = OPS.load("sep_conv_3x3")(C, 1, False, {"kind": "relu"})
    assert not any(isinstance(m, LIF) for m in relu.modules()) and any(isinstance(m, nn.ReLU) for m in relu.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) and m.affine for m in op.modules())


@pytest.mark.parametrize("H", [8, 32, 7, 1])
def test_factorized_reduce_and_preprocess_shapes(H: int):
    size = (H + 1) // 2
    assert FactorizedReduce(C, 6)(spikes(T, N, C, H, H)).shape == (T, N, 6, size, size)
    x = torch.randn(T, N, C, H, H)
    assert Preprocess(C, 6)(x).shape == (T, N, 6, H, H)
    assert Preprocess(C, 6, reduce=True)(x).shape == (T, N, 6, size, size)


def test_factorized_reduce_needs_even_channels():
    with pytest.raises(ValueError, match="even"):
        FactorizedReduce(C, 5)


def record_conv_inputs(module: nn.Module) -> dict[str, list[torch.Tensor]]:
    """Input of every synaptic layer that must see spikes; the pointwise conv right after a depthwise conv is
    exempt (it is the second half of one factorised synaptic layer)."""
    layers = [(n, m) for n, m in module.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    seen: dict[str, list[torch.Tensor]] = {}
    previous = None
    for name, layer in layers:
        exempt = (isinstance(layer, nn.Conv2d) and layer.kernel_size == (1, 1) and previous is not None
                  and previous.groups == previous.in_channels > 1)
        previous = layer if isinstance(layer, nn.Conv2d) else None
        if exempt:
            continue
        seen[name] = []
        layer.register_forward_pre_hook(lambda m, args, name=name: seen[name].append(args[0].detach()))
    return seen


def assert_binary(seen: dict[str, list[torch.Tensor]]) -> None:
    for name, inputs in seen.items():
        assert inputs, f"{name} never ran"
        for x in inputs:
            assert ((x == 0) | (x == 1)).all(), f"{name} received non-binary input"


@pytest.mark.parametrize("name", PRIMITIVES)
@pytest.mark.parametrize("stride", [1, 2])
def test_every_synaptic_layer_receives_spikes(name: str, stride: int):
    op = OPS.load(name)(C, stride, True)
    seen = record_conv_inputs(op)
    op(spikes(T, N, C, 8, 8))
    assert_binary(seen)
    convs = [m for m in op.modules() if isinstance(m, nn.Conv2d)]
    if name.startswith(("sep", "dil")):
        assert len(seen) == len(convs) // 2  # one checked conv per depthwise+pointwise pair


@pytest.mark.parametrize("reduce", [False, True])
def test_preprocess_reads_spikes_without_a_neuron_of_its_own(reduce: bool):
    """The state it reads was spiked once by its producer; a neuron here would spike it a second time."""
    pre = Preprocess(C, 6, reduce=reduce)
    seen = record_conv_inputs(pre)
    out = pre(spikes(T, N, C, 8, 8))
    assert out.shape == (T, N, 6, *([4, 4] if reduce else [8, 8]))
    assert len(seen) == (2 if reduce else 1)
    assert not any(isinstance(m, SpikingNeuron) for m in pre.modules())


def test_gradient_flows_through_sep_conv():
    op = OPS.load("sep_conv_3x3")(C, 1, True)
    x = spikes(T, N, C, 8, 8).requires_grad_()
    op(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("k,dilation,stride", [(3, 1, 1), (5, 1, 1), (3, 2, 1), (5, 2, 1), (3, 2, 2), (5, 1, 2)])
def test_depthwise_conv_matches_conv2d_forward_and_backward(k, dilation, stride):
    from nni_snn.snn.ops import DepthwiseConv2d
    torch.manual_seed(0)
    fast = DepthwiseConv2d(6, k, stride=stride, padding=dilation * (k // 2), dilation=dilation)
    ref = nn.Conv2d(6, 6, k, stride=stride, padding=dilation * (k // 2), dilation=dilation, groups=6, bias=False)
    ref.load_state_dict(fast.state_dict())
    x = (torch.rand(4, 6, 9, 9) > 0.6).float().requires_grad_()
    g = torch.randn_like(ref(x))
    y_fast, y_ref = fast(x), ref(x)
    torch.testing.assert_close(y_fast, y_ref)
    gx_fast, gw_fast = torch.autograd.grad(y_fast, (x, fast.weight), g)
    gx_ref, gw_ref = torch.autograd.grad(y_ref, (x, ref.weight), g)
    torch.testing.assert_close(gx_fast, gx_ref)
    torch.testing.assert_close(gw_fast, gw_ref)




@pytest.mark.parametrize("k,dilation,stride", [(3, 1, 1), (5, 2, 1), (3, 1, 2)])
def test_recomputed_depthwise_output_gives_the_same_gradients_and_is_not_kept(k, dilation, stride):
    """The supernet's DwPwBN recomputes its depthwise output in backward: same values and gradients, bit for bit,
    and the depthwise output is freed once the forward returns (nothing autograd keeps refers to it)."""
    import weakref

    from nni_snn.snn.ops import DwPwBN
    torch.manual_seed(0)
    kept = DwPwBN(6, 6, k, stride, dilation * (k // 2), dilation, affine=False)
    recomputed = DwPwBN(6, 6, k, stride, dilation * (k // 2), dilation, affine=False, recompute_depthwise=True)
    recomputed.load_state_dict(kept.state_dict())
    hidden = []
    for layer in (kept, recomputed):
        layer[0].register_forward_hook(lambda m, i, out: hidden.append(weakref.ref(out)))
    x = (torch.rand(8, 6, 10, 10) > 0.6).float()
    xs = [x.clone().requires_grad_() for _ in range(2)]
    y_kept, y_rec = kept(xs[0]), recomputed(xs[1])
    assert hidden[0]() is not None and hidden[1]() is None
    assert torch.equal(y_kept, y_rec)
    g = torch.randn_like(y_kept)
    y_kept.backward(g)
    y_rec.backward(g)
    assert torch.equal(xs[0].grad, xs[1].grad)
    for a, b in zip(kept.parameters(), recomputed.parameters()):
        assert torch.equal(a.grad, b.grad)

def test_only_the_supernet_recomputes():
    from nni.nas.strategy import DARTS

    from nni_snn.snn.ops import DwPwBN
    from search_spaces import SNNDartsSpace
    space = SNNDartsSpace(width=4, num_cells=3, timesteps=2, num_classes=10, in_channels=1)
    supernet = DARTS().mutate_model(space)
    assert all(m.recompute_depthwise for m in supernet.modules() if isinstance(m, DwPwBN))
    import nni_snn.files.genotype as g
    from nni_snn.files.archfile import make_arch
    from nni_snn.networks import build_network
    fixed = build_network(make_arch(attention="ma", genotype=g.CONV_HEAVY, timesteps=2), width=4, num_cells=3,
                          num_classes=10, in_channels=1)
    layers = [m for m in fixed.modules() if isinstance(m, DwPwBN)]
    assert layers and not any(m.recompute_depthwise for m in layers)


def test_recomputed_depthwise_output_under_autocast():
    """Under mixed precision (--precision bf16-mixed) the recomputed depthwise output is the forward's own: the
    same gradients as keeping it."""

    from nni_snn.snn.ops import DwPwBN
    torch.manual_seed(0)
    kept = DwPwBN(6, 6, 5, 1, 4, 2, affine=True)
    recomputed = DwPwBN(6, 6, 5, 1, 4, 2, affine=True, recompute_depthwise=True)
    recomputed.load_state_dict(kept.state_dict())
    x = (torch.rand(8, 6, 10, 10) > 0.6).float()
    grads = []
    for layer in (kept, recomputed):
        xi = x.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = layer(xi)
        y.float().square().sum().backward()
        grads.append([xi.grad, *(p.grad for p in layer.parameters())])
    for a, b in zip(*grads):
        assert torch.equal(a, b)


# ---- the CPU's faster forms of a few layers: the same function as the layer they stand for ----------------------


@pytest.mark.parametrize("side", [7, 8])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_strided_pointwise_conv_is_the_strided_conv(side, layout):
    from nni_snn.snn.ops import StridedPointwiseConv2d

    torch.manual_seed(0)
    conv = StridedPointwiseConv2d(6, 4)
    plain = nn.Conv2d(6, 4, 1, stride=2, bias=False)
    plain.load_state_dict(conv.state_dict())
    x = (torch.rand(3, 6, side, side) > 0.6).float().contiguous(memory_format=layout)
    xs = [x.clone().requires_grad_(), x.clone().requires_grad_()]
    outs = [conv(xs[0]), plain(xs[1])]
    # The same sums, but oneDNN's kernels may add them in another order (channels-last at one thread does): equal up
    # to float rounding.
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-6, atol=1e-6)
    grad = torch.randn_like(outs[1])
    for out in outs:
        out.backward(grad)
    torch.testing.assert_close(xs[0].grad, xs[1].grad, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(conv.weight.grad, plain.weight.grad)


def test_whole_map_conv_is_the_conv_on_any_map():
    from nni_snn.snn.ops import WholeMapConv2d

    torch.manual_seed(0)
    conv = WholeMapConv2d(5, 7, 2, bias=False)
    plain = nn.Conv2d(5, 7, 2, bias=False)
    plain.load_state_dict(conv.state_dict())
    for side in (2, 3):  # the kernel's size (a linear layer) and larger (the conv itself)
        x = torch.randn(4, 5, side, side).contiguous(memory_format=torch.channels_last)
        xs = [x.clone().requires_grad_(), x.clone().requires_grad_()]
        outs = [conv(xs[0]), plain(xs[1])]
        assert outs[0].shape == outs[1].shape
        torch.testing.assert_close(outs[0], outs[1])
        grad = torch.randn_like(outs[1])
        for out in outs:
            out.backward(grad)
        torch.testing.assert_close(xs[0].grad, xs[1].grad)
        torch.testing.assert_close(conv.weight.grad, plain.weight.grad)
        conv.weight.grad = plain.weight.grad = None


def test_cat_channels_is_cat_with_dense_gradients():
    from nni_snn.snn.ops import cat_channels

    torch.manual_seed(0)
    states = [torch.randn(2, 3, c, 4, 4).flatten(0, 1).contiguous(memory_format=torch.channels_last)
              .unflatten(0, (2, 3)).requires_grad_() for c in (2, 5)]
    out = cat_channels(states)
    assert torch.equal(out, torch.cat(states, dim=2))
    grad = torch.randn_like(out)
    out.backward(grad)
    for s in states:  # each gradient in its state's own layout, not a channel slice of the output's
        assert fold(s.grad).is_contiguous(memory_format=torch.channels_last)
    ours = [s.grad for s in states]
    for s in states:
        s.grad = None
    torch.cat(states, dim=2).backward(grad)
    assert all(torch.equal(a, s.grad) for a, s in zip(ours, states))


def test_the_lif_keeps_a_channels_last_layout_and_its_values():
    torch.manual_seed(0)
    x = torch.randn(3, 4, 6, 5, 5)
    cl = fold(x).contiguous(memory_format=torch.channels_last).unflatten(0, (3, 4))
    spikes, spikes_cl = LIF()(x), LIF()(cl)
    assert torch.equal(spikes, spikes_cl)
    assert fold(spikes_cl).is_contiguous(memory_format=torch.channels_last)
