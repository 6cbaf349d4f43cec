"""The SNN DARTS model space: size of the space, shared labels, shapes, spikes into every synaptic layer."""

from __future__ import annotations

import math

import pytest
import torch
from nni.mutable import Categorical, CategoricalMultiple
from torch import nn

from nni_snn import build_network
from search_spaces import SNNDartsSpace
from search_spaces.snn_darts import reduction_indices


def architectures_per_cell_type(space, cell_type: str) -> int:
    """Count from the space's own mutables: per node, ways to choose its inputs x operations on them."""
    mutables = space.simplify()
    total = 1
    for k in range(4):
        inputs = mutables[f"{cell_type}/input_{k}"]
        assert isinstance(inputs, CategoricalMultiple)
        ways = math.comb(len(inputs.values), inputs.n_chosen)
        ops = {len(mutables[f"{cell_type}/op_{k}_{i}"].values) for i in inputs.values}
        assert len(ops) == 1
        total *= ways * ops.pop() ** inputs.n_chosen
    return total


def test_search_space_size_matches_paper():
    space = SNNDartsSpace(width=4, num_cells=3)
    expected = math.comb(2, 2) * math.comb(3, 2) * math.comb(4, 2) * math.comb(5, 2) * 7 ** 8
    for cell_type in ("normal", "reduce"):
        assert architectures_per_cell_type(space, cell_type) == expected == 1_037_664_180


@pytest.mark.parametrize("cells", [3, 5, 8])
def test_choices_are_shared_per_cell_type(cells):
    from nni_snn.files.genotype import CELL_TYPES, NUM_NODES

    space = SNNDartsSpace(width=4, num_cells=cells)
    mutables = space.simplify()
    ops = [k for k, v in mutables.items() if isinstance(v, Categorical)]
    edges = sum(k + 2 for k in range(NUM_NODES))  # node k reads c_{k-2}, c_{k-1} and nodes 0..k-1
    # per cell type, whatever the depth: an operation per edge and an input choice per node
    assert len(mutables) == len(CELL_TYPES) * (edges + NUM_NODES)
    assert len(ops) == len(CELL_TYPES) * edges
    # two reductions, at 1/3 and 2/3 of the depth (DARTS), and there the cells' outputs halve in size
    first, second = reduction_indices(cells)
    assert 0 < first < second < cells and abs(first - cells / 3) < 1 and abs(second - 2 * cells / 3) < 1
    sizes = []
    for cell in space.cells:
        cell.register_forward_hook(lambda _m, _args, out: sizes.append(out.shape[-1]))
    space(torch.randn(2, 3, 16, 16))
    assert tuple(i for i, size in enumerate(sizes) if size < ([16] + sizes)[i]) == (first, second)
    assert len(sizes) == cells and sizes[-1] == 16 // 4


@pytest.mark.parametrize("in_channels,size", [(1, 8), (3, 8), (3, 32)])
@pytest.mark.parametrize("attention", ["none", "ct", "ma"])
def test_forward_shapes(in_channels, size, attention):
    space = SNNDartsSpace(width=4, num_cells=3, timesteps=2, attention=attention, num_classes=5,
                         in_channels=in_channels)
    out = space(torch.randn(2, in_channels, size, size))
    assert out.shape == (2, 5)


def test_every_synaptic_layer_past_the_stem_receives_spikes(hand_arch):
    """Exempt: the stem (analog pixels), attention gates, the classifiers (they read pooled spike counts), and a
    pointwise conv right after its depthwise conv (one factorised synaptic layer)."""
    net = build_network(hand_arch, width=4, num_cells=6, num_classes=10, auxiliary=True)
    net.train()
    checked, last = [], {"depthwise": False}

    def hook(name):
        def check(module, inputs):
            x = inputs[0]
            pointwise_after_depthwise = last["depthwise"] and module.kernel_size == (1, 1)
            if isinstance(module, nn.Conv2d):
                last["depthwise"] = module.groups == module.in_channels > 1
            exempt = name.startswith("stem") or "attention" in name or pointwise_after_depthwise
            if not exempt and not isinstance(module, nn.Linear):
                assert torch.all((x == 0) | (x == 1)), f"{name} receives non-binary input"
                checked.append(name)
        return check

    for name, module in net.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            module.register_forward_pre_hook(hook(name))
    net(torch.randn(4, 3, 16, 16))
    assert len(checked) > 30


def test_every_state_is_spiked_once_and_its_spikes_shared(hand_arch):
    """One neuron population per state: every LIF runs once per forward, no two LIFs read the same tensor, and the
    stem's spikes reach cell 0 (both inputs) and cell 1 through one neuron."""
    from nni_snn.snn.neuron import LIF

    net = build_network(hand_arch, width=4, num_cells=6, num_classes=10, auxiliary=True)
    net.train()
    calls, inputs = {}, []

    def record(name):
        def hook(module, args, out):
            calls[name] = calls.get(name, 0) + 1
            inputs.append(args[0])
        return hook

    for name, module in net.named_modules():
        if isinstance(module, LIF):
            module.register_forward_hook(record(name))
    net(torch.randn(4, 3, 16, 16))
    assert calls and set(calls.values()) == {1}, "a neuron ran twice"
    states = [name for name in calls if ".edges." not in name]  # the rest: the inner LIF of each sep conv
    assert len(states) == 1 + 6 * 6 + 2  # stem; per cell 5 inner states + its output; the auxiliary head's two
    assert len({x.data_ptr() for x in inputs}) == len(inputs), "two neurons spiked the same state"


def test_auxiliary_head_is_dartss_on_spikes():
    """DARTS's head (1x1 conv to 128, BN, 2x2 conv to 768, BN, linear; ~0.40 M parameters at 10 classes besides
    the 1x1 conv), its first conv before the pooling so it reads spikes: the same function as pooling first."""
    from search_spaces.snn_darts import AuxiliaryHead

    head = AuxiliaryHead(channels=64, num_classes=10)
    params = sum(p.numel() for p in head.parameters())
    assert 0.39e6 < params - 64 * 128 < 0.41e6
    s = (torch.rand(2, 3, 64, 8, 8) < 0.3).float()  # CIFAR's 8x8 maps after two reductions
    conv_first = head.pool(head.reduce.module(s.flatten(0, 1)))
    pool_first = nn.functional.conv2d(nn.functional.avg_pool2d(s.flatten(0, 1), 5, 3), head.reduce.module.weight)
    assert conv_first.shape[-2:] == (2, 2) and torch.allclose(conv_first, pool_first, atol=1e-5)
    head.train()
    assert head(s).shape == (3, 10)
    for size in (2, 5, 7):  # maps under 8x8 are averaged to 2x2
        assert head(torch.zeros(2, 3, 64, size, size)).shape == (3, 10)


@pytest.mark.parametrize("where,with_attention", [("all", [0, 1, 2, 3]), ("last", [3])])
def test_attention_in_every_cell_or_only_the_last(hand_arch, where, with_attention):
    net = build_network({**hand_arch, "attention_cells": where}, width=4, num_cells=4, num_classes=10)
    assert [i for i, c in enumerate(net.cells) if not isinstance(c.attention, nn.Identity)] == with_attention
    space = SNNDartsSpace(width=4, num_cells=4, attention="ma", attention_cells=where)
    assert [i for i, c in enumerate(space.cells) if not isinstance(c.attention, nn.Identity)] == with_attention
    override = build_network({**hand_arch, "attention_cells": where}, width=4, num_cells=4, num_classes=10,
                             attention_cells="all")
    assert not any(isinstance(c.attention, nn.Identity) for c in override.cells)


def test_fused_mixed_op_weighting_matches_nnis_weighted_sum():
    """The supernet's mixed operation sums its candidates in one buffer (search_spaces.darts_nodes._WeightedSum): the
    same output and gradients, for the candidates and the alphas, as NNI's own weighted sum."""
    from nni.nas.oneshot.pytorch.supermodule._expression_utils import weighted_sum

    from search_spaces.darts_nodes import _WeightedSum

    torch.manual_seed(0)
    xs = [torch.randn(2, 3, 4, 5, 5, requires_grad=True) for _ in range(7)]
    alpha = torch.randn(7, requires_grad=True)
    grad = torch.randn(2, 3, 4, 5, 5)
    results = []
    for fn in (lambda w: weighted_sum(xs, w), lambda w: _WeightedSum.apply(w, *xs)):
        out = fn(alpha.softmax(-1))
        out.backward(grad)
        results.append((out.detach(), alpha.grad.clone(), [x.grad.clone() for x in xs]))
        alpha.grad = None
        for x in xs:
            x.grad = None
    (out0, ga0, gx0), (out1, ga1, gx1) = results
    torch.testing.assert_close(out1, out0)
    torch.testing.assert_close(ga1, ga0)
    for a, b in zip(gx1, gx0):
        torch.testing.assert_close(a, b)


def test_madarts_step_differentiates_only_what_each_optimiser_steps():
    """First-order DARTS as MADarts runs it (strategies.madarts.Frozen): with the weights frozen the alpha step's
    backward gives the alphas the gradient a full backward gives them and computes no weight gradient; with the alphas
    frozen the weight step's gives the weights theirs; every parameter requires grad again afterwards."""
    from nni.nas.strategy import DARTS

    from strategies.madarts import Frozen

    torch.manual_seed(0)
    model = DARTS().mutate_model(SNNDartsSpace(width=4, num_cells=3, timesteps=2, in_channels=1))
    alphas = [p for n, p in model.named_parameters() if "_arch_alpha" in n]
    weights = [p for n, p in model.named_parameters() if "_arch_alpha" not in n]
    x, y = torch.rand(4, 1, 8, 8), torch.randint(0, 10, (4,))
    model.eval()  # the same batch statistics in every pass
    nn.functional.cross_entropy(model(x), y).backward()
    full = {id(p): p.grad.clone() for p in alphas + weights}
    for trained, other in ((alphas, weights), (weights, alphas)):
        model.zero_grad(set_to_none=True)
        with Frozen(other):
            nn.functional.cross_entropy(model(x), y).backward()
        assert all(p.grad is None for p in other)
        for p in trained:
            torch.testing.assert_close(p.grad, full[id(p)])
    assert all(p.requires_grad for p in alphas + weights)


def test_partial_channels_split_bypass_and_shuffle():
    """PC-DARTS in the supernet (partial_channels=2): an edge's mixed operation reads the first half of the input
    spikes' channels; the second half bypasses it (max-pooled 2x2 on a reduction edge, still binary); the channel
    shuffle interleaves the two halves; each node has an edge-normalisation beta."""
    import torch.nn.functional as F
    from nni.nas.strategy import DARTS

    from search_spaces.snn_darts import channel_shuffle

    assert channel_shuffle(torch.arange(6.).reshape(1, 1, 6, 1, 1), 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    torch.manual_seed(0)
    model = DARTS().mutate_model(SNNDartsSpace(width=4, num_cells=3, timesteps=2, in_channels=1, partial_channels=2))
    for cell, channels, size in ((model.cells[0], 4, 6), (model.cells[1], 8, 3)):  # normal, then reduction
        node = cell.nodes[0]
        assert node.inputs._arch_alpha is not None and node.inputs._arch_alpha.shape == (2,)
        spikes = (torch.rand(2, 3, channels, 6, 6) > 0.5).float()
        seen = {}
        handle = node.edges["0"].register_forward_hook(lambda m, a, o, seen=seen: seen.update(inp=a[0], out=o))
        out = node._edge(0, spikes)
        handle.remove()
        half = channels // 2
        assert torch.equal(seen["inp"], spikes[:, :, :half])
        assert torch.equal(out[:, :, 0::2], seen["out"])
        bypass = spikes[:, :, half:]
        if size != 6:
            bypass = F.max_pool2d(bypass.flatten(0, 1), 2, 2, ceil_mode=True).reshape(2, 3, half, size, size)
        assert torch.equal(out[:, :, 1::2], bypass) and set(bypass.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="partial_channels"):
        SNNDartsSpace(width=4, partial_channels=3)
