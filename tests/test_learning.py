"""The networks this project builds learn at the default learning rates, on real digits.

A DARTS spiking network whose loss stays at ln 10 cannot rank architectures; these tests fail if the fixed network,
the supernet or the hand-designed reference stops learning at the defaults a user gets.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from nni_snn import build_network
from nni_snn.cli.main import main
from nni_snn.cli.options import RetrainOptions, SearchOptions
from nni_snn.data.images import load_dataset
from nni_snn.files.genotype import CONV_HEAVY
from nni_snn.train.lightning import SNNClassifier

ARCH = {"format": "nni-snn/arch", "version": 1, "attention": "ma", "timesteps": 2, "genotype": CONV_HEAVY}


@pytest.fixture(scope="module")
def digits_batch():
    images, labels = load_dataset("digits").train.tensors
    return images[:64], labels[:64]


def loss_after_steps(net: nn.Module, params, batch, lr: float, steps: int) -> tuple[float, float]:
    """(first, last) training loss of ``steps`` SGD steps on one batch, with the hyper-parameters of training; last is
    the mean of the last three steps (one step's loss is noisy: BN sees the batch in a new light every step)."""
    hparams = SNNClassifier().hparams
    optimizer = torch.optim.SGD(params, lr=lr, momentum=hparams.momentum, weight_decay=hparams.weight_decay)
    images, labels = batch
    losses = []
    net.train()
    for _ in range(steps):
        loss = nn.functional.cross_entropy(net(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses[0], sum(losses[-3:]) / 3


def test_fixed_network_learns_at_the_default_retrain_lr(digits_batch):
    net = build_network(ARCH, width=8, num_cells=5, num_classes=10, in_channels=1)
    first, last = loss_after_steps(net, net.parameters(), digits_batch, RetrainOptions.lr, 25)
    assert first == pytest.approx(2.3, abs=0.3)  # ln 10: chance
    assert last < 0.5 * first  # the network before this default reached 0.97 x first (lr 0.0025) or 0.93 x (0.1)


def test_supernet_learns_at_the_default_search_lr(digits_batch):
    from nni.nas.strategy import DARTS

    from search_spaces import SNNDartsSpace

    supernet = DARTS().mutate_model(SNNDartsSpace(width=4, num_cells=3, in_channels=1))
    weights = [p for name, p in supernet.named_parameters() if "_arch_alpha" not in name]
    first, last = loss_after_steps(supernet, weights, digits_batch, SearchOptions.lr, 25)
    assert last < 0.5 * first


def test_evaluation_mode_at_initialisation_distinguishes_inputs_once_bn_statistics_are_set(digits_batch):
    from nni_snn.train.estimate import fit_batch_norm

    net = build_network(ARCH, width=8, num_cells=5, num_classes=10, in_channels=1)
    images, _ = digits_batch
    fit_batch_norm(net, [images])
    net.eval()
    with torch.no_grad():
        logits = net(images)
    assert logits.std(dim=0).mean() > 1e-3 and len(set(logits.argmax(1).tolist())) > 1
    assert not net.training


def test_bn_before_the_cell_output_neurons_and_the_readout_is_the_default_and_can_be_turned_off():
    from nni_snn.snn.neuron import LIF

    on = build_network(ARCH, width=4, num_cells=3, num_classes=10, in_channels=1)
    off = build_network({**ARCH, "normalize": False}, width=4, num_cells=3, num_classes=10, in_channels=1)
    assert isinstance(on.cells[0].output.norm.module, nn.BatchNorm2d)
    assert isinstance(off.cells[0].output.norm, nn.Identity)
    assert isinstance(on.classifier.linear[0], nn.BatchNorm1d) and isinstance(off.classifier.linear, nn.Linear)
    assert all(m.surrogate == "sigmoid" and m.surrogate_alpha == 4.0 for m in on.modules() if isinstance(m, LIF))
    twin = build_network(ARCH, width=4, num_cells=3, num_classes=10, in_channels=1, neuron={"kind": "relu"})
    assert not any(isinstance(m, LIF) for m in twin.modules())
    assert sum(p.numel() for p in twin.parameters()) == sum(p.numel() for p in on.parameters())


TINY = ["--width", "4", "--cells", "3", "--epochs", "1", "--batch-size", "256", "--no-progress"]


def test_neuron_options_override_the_arch_files_and_are_recorded(tmp_path):
    from nni_snn.cli.options import RetrainOptions
    from nni_snn.snn.neuron import LIF

    base = {"kind": "lif", "tau": 0.2, "surrogate": "sigmoid", "surrogate_alpha": 4.0}
    given = RetrainOptions(arch="arch.json", tau=0.5, v_threshold=1.0, detach_reset=False)
    spec = given.against({**ARCH, "neuron": base}).neuron_spec()
    assert spec == {"kind": "lif", "tau": 0.5, "surrogate": "sigmoid", "surrogate_alpha": 4.0, "v_threshold": 1.0,
                    "detach_reset": False}
    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps({**ARCH, "neuron": base}))
    out = tmp_path / "out"
    assert main(["retrain", "--arch", str(arch), "--tau", "0.5", "--v-threshold", "1.0", "--no-detach-reset", *TINY,
                 "--output", str(out)]) == 0
    assert json.loads((out / "metrics.json").read_text())["network"]["neuron"] == spec
    net = build_network(arch, width=4, num_cells=3, num_classes=10, in_channels=1, neuron=spec)
    lifs = [m for m in net.modules() if isinstance(m, LIF)]
    assert lifs and all(m.tau == 0.5 and m.v_threshold == 1.0 and not m.detach_reset for m in lifs)


def test_retrain_a_spiking_cnn_reference_and_an_ann_twin(tmp_path):
    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps(ARCH))
    assert main(["retrain", "--baseline", "spiking-cnn", *TINY, "--output", str(tmp_path / "cnn")]) == 0
    cnn = json.loads((tmp_path / "cnn" / "metrics.json").read_text())
    assert cnn["network"]["baseline"] == "spiking-cnn" and cnn["spikes_per_sample"] > 0
    assert cnn["sops_per_sample"] > 0  # the second conv and the linear layer read spikes
    assert main(["retrain", "--arch", str(arch), "--neuron", "relu", *TINY, "--output", str(tmp_path / "ann")]) == 0
    ann = json.loads((tmp_path / "ann" / "metrics.json").read_text())
    assert ann["network"]["neuron"] == {"kind": "relu"} and ann["spikes_per_sample"] == 0


@pytest.mark.parametrize("flags, message", [
    (["--baseline", "resnet"], "--baseline 'resnet' is unknown"),
    (["--baseline", "spiking-cnn", "--arch", "a.json"], "either --arch or --baseline"),
    (["--arch", "a.json", "--surrogate", "triangle"], "--surrogate 'triangle' is unknown"),
    (["--arch", "a.json", "--neuron", "izhikevich"], "--neuron 'izhikevich' is unknown"),
    (["--arch", "a.json", "--surrogate-alpha", "0"], "--surrogate-alpha must be a number > 0"),
    (["--arch", "a.json", "--tau", "1.5"], "--tau must be a number in [0, 1]"),
    (["--arch", "a.json", "--v-threshold", "-1"], "--v-threshold must be a number > 0"),
])
def test_network_option_mistakes_are_one_line(tmp_path, capsys, flags, message):
    assert main(["retrain", *flags, *TINY, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
