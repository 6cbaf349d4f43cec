"""NIR export (nni_snn.commands.export): the file is read back with nir.read and run by two consumers no one here wrote,
snnTorch and Norse, which must reproduce nni-snn's own forward: the spikes of every neuron population and the logits.
Tiny networks on the embedded 8x8 digits."""

from __future__ import annotations

import functools
import logging
import random

import nir
import numpy as np
import pytest
import torch

from nni_snn.commands.export import NotExportable, to_nir
from nni_snn.data.images import load_dataset
from nni_snn.files.archfile import make_arch
from nni_snn.files.genotype import ALL_OPS, CELL_TYPES, NUM_NODES, SPACES
from nni_snn.networks import build_network
from nni_snn.snn.neuron import SpikingNeuron

T = 4
# Every operation both consumers read: skip (identity and factorised reduction), separable and dilated convs.
CONSUMED = {
    "normal": [["sep_conv_3x3", 0], ["skip_connect", 1], ["dil_conv_3x3", 0], ["skip_connect", 2],
               ["sep_conv_5x5", 1], ["dil_conv_5x5", 3], ["dil_conv_5x5", 2], ["skip_connect", 4]],
    "reduce": [["skip_connect", 0], ["skip_connect", 1], ["dil_conv_3x3", 1], ["sep_conv_3x3", 2],
               ["dil_conv_3x3", 0], ["sep_conv_5x5", 3], ["dil_conv_5x5", 1], ["skip_connect", 4]],
}


@functools.cache
def _digits():
    data = load_dataset("digits", timesteps=T)
    train = torch.stack([data.train[i][0] for i in range(256)])
    test = torch.stack([data.test[i][0] for i in range(64)])
    return train, test


def _network(genotype, head="global", attention="none"):
    """A tiny network with its BN statistics fitted on digits (as a retrain leaves them), in eval mode."""
    torch.manual_seed(0)
    arch = make_arch(attention=attention, timesteps=T, genotype=genotype, head=head)
    net = build_network(arch, width=4, num_cells=3, num_classes=10, in_channels=1, image_size=8)
    train, _ = _digits()
    net.train()
    with torch.no_grad():
        for batch in train.split(64):
            net(batch)
    return net.eval()


def _reference(net, images):
    """nni-snn's logits and the spikes ``[T, N, ...]`` of every neuron population, by NIR node name."""
    spikes = {}
    hooks = [module.register_forward_hook(lambda m, i, o, name=name: spikes.__setitem__(name.replace(".", "_"), o))
             for name, module in net.named_modules() if isinstance(module, SpikingNeuron)]
    with torch.no_grad():
        logits = net(images)
    for hook in hooks:
        hook.remove()
    return logits, spikes


def _run(module, images):
    """Step a consumer's module T times on the same image (the encoder's current is the same at every step), its
    logits averaged over T; the output of each of its submodules at each step."""
    seen: dict[str, list] = {}
    for name, child in module.named_children():
        child.register_forward_hook(
            lambda m, i, o, name=name: seen.setdefault(name, []).append(o[0] if isinstance(o, tuple) else o))
    state, logits = None, []
    with torch.no_grad():
        for _ in range(T):
            out, state = module(images) if state is None else module(images, state)
            logits.append(out.flatten(1))
    return torch.stack(logits).mean(0), {name: torch.stack(outs) for name, outs in seen.items()}


def _snntorch(graph):
    from snntorch.import_nir import import_from_nir

    return import_from_nir(graph)


def _norse(graph):
    # Norse's node importer (its LIFBoxCell for nir.LIF) through nirtorch's graph interpreter. norse.torch.from_nir
    # wraps the same importer in nirtorch's legacy executor, which on this graph returned a tensor of the wrong width.
    import nirtorch
    from norse.torch.utils.import_nir import _import_norse_module

    node = functools.partial(_import_norse_module, dt=graph.metadata["dt"], ignore_warnings=True)
    return nirtorch.nir_to_torch(graph, {nir.Conv2d: node, nir.LIF: node})


@pytest.mark.parametrize("consumer", [_snntorch, _norse], ids=["snntorch", "norse"])
@pytest.mark.parametrize("head", ["global", "spatial"])
def test_consumers_reproduce_every_spike_and_the_logits(tmp_path, consumer, head):
    logging.disable(logging.WARNING)  # snnTorch and Norse log per node
    net = _network(CONSUMED, head)
    _, images = _digits()
    logits, spikes = _reference(net, images)
    path = tmp_path / "net.nir"
    nir.write(path, to_nir(net, (1, 8, 8)))
    graph = nir.read(path)
    got_logits, got = _run(consumer(graph), images)
    compared = 0
    for name, ref in spikes.items():
        if name.endswith("output_spike"):  # the concatenation's population: one per node in the graph
            parts = [got[f"{name}_node{k}"] for k in range(NUM_NODES)]
            out = torch.cat(parts, dim=2)
        else:
            out = got[name]
        assert out.shape == ref.shape, name
        assert torch.equal(out, ref), f"{name}: {(out != ref).float().mean():.4f} of the spikes differ"
        compared += 1
    assert compared == sum(isinstance(m, SpikingNeuron) for m in net.modules())
    rate = torch.cat([s.flatten() for s in spikes.values()]).mean()
    assert 0.02 < rate < 0.9  # the populations fire: equal spikes are not all silence
    torch.testing.assert_close(got_logits, logits, atol=1e-4, rtol=1e-4)
    assert (got_logits.argmax(1) == logits.argmax(1)).all()


def _random_genotype(rng: random.Random) -> dict:
    ops = SPACES["deployable"]
    genotype = {}
    for cell_type in CELL_TYPES:
        pairs = []
        for k in range(NUM_NODES):
            for i in rng.sample(range(k + 2), 2):
                pairs.append([rng.choice(ops), i])
        genotype[cell_type] = pairs
    return genotype


def test_every_network_of_the_deployable_space_exports(tmp_path):
    # A seeded loop over random genotypes of the space, both heads: export, write, read back with nir's type check.
    rng = random.Random(0)
    kinds = set()
    for n in range(12):
        net = _network(_random_genotype(rng), head=("global", "spatial")[n % 2])
        path = tmp_path / f"net{n}.nir"
        nir.write(path, to_nir(net, (1, 8, 8)))
        graph = nir.read(path)
        kinds |= {type(node).__name__ for node in graph.nodes.values()}
        lifs = [node for node in graph.nodes.values() if isinstance(node, nir.LIF)]
        # The paper's decay 0.2 and threshold 0.5: Euler step dt keeps tau of the membrane and adds the input whole.
        for lif in lifs:
            dt = graph.metadata["dt"]
            np.testing.assert_allclose(1 - dt / lif.tau, 0.2, rtol=1e-5)
            # The membrane is the paper's times 1 - tau: the input enters times dt / tau_m, the threshold is scaled.
            np.testing.assert_allclose(lif.r * dt / lif.tau, 0.8, rtol=1e-5)
            np.testing.assert_allclose(lif.v_threshold, 0.5 * 0.8, rtol=1e-6)
            assert np.all(lif.v_reset == 0) and np.all(lif.v_leak == 0)
    assert kinds <= {"Input", "Output", "Conv2d", "LIF", "SumPool2d", "Scale"}


@pytest.mark.parametrize("genotype, attention, says", [
    (ALL_OPS, "none", "max pooling has no NIR equivalent"),
    (CONSUMED, "ma", "attention: the MultiDimAttention gate"),
])
def test_what_nir_cannot_express_is_named(genotype, attention, says):
    net = _network(genotype, attention=attention)
    with pytest.raises(NotExportable, match=says) as err:
        to_nir(net, (1, 8, 8))
    assert "deployable" in str(err.value) and "\n" not in str(err.value)


def test_export_command_mistakes_are_one_line(tmp_path, capsys):
    from nni_snn.cli.main import main

    assert main(["export", str(tmp_path / "missing")]) == 2
    assert main(["export", str(tmp_path)]) == 2  # no config.yaml
    assert main(["search", "--space", "deployable", "--attention", "ma"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("nni-snn: error: ") for line in err)
    assert "--space deployable needs --attention none" in err[2]


def test_the_deployable_space_is_an_option_of_search_retrain_and_nni_trials(tmp_path, capsys):
    import argparse
    import json

    from nni_snn.cli.flags import resolve
    from nni_snn.cli.main import main
    from nni_snn.cli.options import SearchOptions

    # An NNI trial's parameters (an nnictl config's search space) set it like any other option.
    args = argparse.Namespace(config=None)
    opts = resolve(SearchOptions, args, {"space": "deployable", "attention": "none"})
    assert opts.space == "deployable"
    # The supernet of the space has no max pooling among its candidates.
    from search_spaces import SNNDartsSpace

    supernet = SNNDartsSpace(width=4, num_cells=3, timesteps=2, attention="none", in_channels=1, space="deployable")
    names = {name for module in supernet.modules() if hasattr(module, "names") for name in module.names}
    assert names == set(SPACES["deployable"]) and "max_pool_3x3" not in names
    # A retrain in the deployable space refuses an architecture outside it, in one line, before loading any data.
    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps(make_arch(attention="none", timesteps=2, genotype=ALL_OPS)))
    assert main(["retrain", "--arch", str(arch), "--space", "deployable", "--output", str(tmp_path / "r")]) == 2
    assert "max_pool_3x3, which NIR cannot express" in capsys.readouterr().err


class _SumPool(torch.nn.Module):
    """NIR's SumPool2d with its padding (nirtorch 2.6's default mapping drops the padding)."""

    def __init__(self, node):
        super().__init__()
        self.kernel, self.stride, self.padding = (tuple(int(v) for v in a) for a in
                                                  (node.kernel_size, node.stride, node.padding))

    def forward(self, x):
        return torch.nn.functional.avg_pool2d(x, self.kernel, self.stride, self.padding, divisor_override=1)


class _Scale(torch.nn.Module):
    def __init__(self, node):
        super().__init__()
        self.register_buffer("scale", torch.as_tensor(node.scale))

    def forward(self, x):
        return x * self.scale


def test_average_pooling_maps_exactly(tmp_path):
    # Neither consumer reads SumPool2d with padding or Scale: those two are mapped here by NIR's definitions, the rest
    # (convs, the LIF) by Norse through nirtorch, to check the mapping of avg_pool_3x3 + BN (border pixels included).
    import nirtorch
    from norse.torch.utils.import_nir import _import_norse_module

    logging.disable(logging.WARNING)
    genotype = {cell_type: [[op if op != "max_pool_3x3" else "avg_pool_3x3", i] for op, i in ALL_OPS[cell_type]]
                for cell_type in CELL_TYPES}
    net = _network(genotype)
    _, images = _digits()
    logits, spikes = _reference(net, images)
    path = tmp_path / "net.nir"
    nir.write(path, to_nir(net, (1, 8, 8)))
    graph = nir.read(path)
    node = functools.partial(_import_norse_module, dt=graph.metadata["dt"], ignore_warnings=True)
    module = nirtorch.nir_to_torch(graph, {nir.Conv2d: node, nir.LIF: node, nir.SumPool2d: _SumPool,
                                           nir.Scale: _Scale})
    got_logits, got = _run(module, images)
    assert any(isinstance(n, nir.SumPool2d) for n in graph.nodes.values())
    for name, ref in spikes.items():
        out = (torch.cat([got[f"{name}_node{k}"] for k in range(NUM_NODES)], dim=2) if name.endswith("output_spike")
               else got[name])
        assert torch.equal(out, ref), f"{name}: {(out != ref).float().mean():.4f} of the spikes differ"
    torch.testing.assert_close(got_logits, logits, atol=1e-4, rtol=1e-4)
