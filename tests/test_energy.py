"""The energy model: each count of a small network by hand, each profile's price of them, and the option's refusals."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from nni_snn.snn.energy import PROFILES, profile, sram_access_pj
from nni_snn.snn.neuron import LIF
from nni_snn.snn.ops import fold, unfold
from nni_snn.snn.spikes import SpikeMonitor


def test_sram_access_energy_follows_horowitzs_table_and_grows_with_size():
    assert sram_access_pj(8 * 1024) == pytest.approx(10.0)
    assert sram_access_pj(32 * 1024) == pytest.approx(20.0)
    assert sram_access_pj(1024 * 1024) == pytest.approx(100.0)
    assert sram_access_pj(16) == sram_access_pj(1024) == pytest.approx(10.0 / 8**0.5)  # below 1 KB: priced as 1 KB
    sizes = [2**k for k in range(10, 24)]
    assert all(sram_access_pj(a) < sram_access_pj(b) for a, b in itertools.pairwise(sizes))


class Hand(nn.Module):
    """Binary input [N, T, 1, 4, 4] -> LIF (a constant input of 1 fires at every step, 0 never: the LIF passes
    binary inputs through) -> 2x2 max pooling -> linear to 3 classes, plus an identity skip of the spikes."""

    def __init__(self):
        super().__init__()
        self.lif = LIF()
        self.pool = nn.MaxPool2d(2)
        self.skip = nn.Identity()
        self.fc = nn.Linear(4, 3, bias=False)

    def forward(self, x):
        spikes = self.lif(x.transpose(0, 1))  # time-major
        self.skip(spikes)
        pooled = unfold(self.pool(fold(spikes)), spikes.shape[0])
        return self.fc(pooled.flatten(2)).mean(0)


def test_each_count_of_a_small_network_by_hand_and_each_profiles_price():
    torch.manual_seed(0)
    T, N = 2, 3
    x = (torch.rand(N, T, 1, 4, 4) > 0.5).float()
    net = Hand()
    with SpikeMonitor(net) as monitor, monitor.counting("val"):
        net(x)
    spikes = x.sum().item() / N  # per sample
    pooled = x.view(N, T, 2, 2, 2, 2).amax(dim=(3, 5)).sum().item() / N  # spikes into the linear layer
    updates = T * 16
    adds = 2 * spikes  # the 2x2 window reaches one output per spike; the skip adds each spike once
    sops = 3 * pooled  # every spike into the linear layer reaches its 3 outputs
    s = {name: monitor.summary("val", energy=PROFILES.load(name)) for name in PROFILES}
    counts = s["memory-45nm"]
    assert counts["spikes_per_sample"] == pytest.approx(spikes)
    assert counts["neuron_updates_per_sample"] == updates
    assert counts["adds_per_sample"] == pytest.approx(adds)
    assert counts["sops_per_sample"] == pytest.approx(sops)
    assert counts["memory_accesses_per_sample"] == pytest.approx(sops + 2 * (sops + adds + updates) + spikes)
    # Every memory of this network is under 1 KB: each access costs the same.
    a = sram_access_pj(1024)
    expected_pj = {
        "memory-45nm": spikes * a + updates * (5.5 + 2 * a) + adds * (0.9 + 2 * a) + sops * (0.9 + 3 * a),
        "ops-45nm": sops * 0.9,
        "loihi": spikes * 1.7 + updates * 81 + (adds + sops) * 23.6,
    }
    for name, pj in expected_pj.items():
        assert s[name]["energy_uj_per_sample"] == pytest.approx(pj * 1e-6), name
        assert s["ops-45nm"]["energy_uj_by_profile"][name] == pytest.approx(pj * 1e-6), name
        assert s[name]["energy_profile"] == name
        assert sum(s[name]["energy_uj_by_term"].values()) == pytest.approx(s[name]["energy_uj_per_sample"])
    assert s["memory-45nm"]["energy_uj_by_term"]["memory"] == pytest.approx(
        (spikes * a + 2 * a * (updates + adds) + 3 * a * sops) * 1e-6)
    # A user's prices replace the profile's accumulate and multiply-accumulate.
    assert monitor.summary("val", energy=profile("ops-45nm", e_ac_pj=2.0))["energy_uj_per_sample"] == \
        pytest.approx(sops * 2.0 * 1e-6)


def test_memory_costs_more_per_access_in_a_larger_layer():
    small, large = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.Conv2d(64, 64, 3, padding=1, bias=False)
    energy = profile("memory-45nm")
    per_sop = {}
    for name, conv in (("small", small), ("large", large)):
        x = torch.ones(1, conv.in_channels, 32, 32)
        with SpikeMonitor(conv) as monitor, monitor.counting("val"):
            conv(x)
        summary = monitor.summary("val", energy=energy)
        per_sop[name] = summary["energy_uj_per_sample"] / summary["sops_per_sample"]
    assert per_sop["large"] > per_sop["small"] > 0.9e-6


def test_the_cnn_pays_for_its_pooling_and_neurons_and_the_cell_classifier_for_its_global_pool(hand_arch):
    from nni_snn.networks import build_network
    from nni_snn.snn.spiking_cnn import SpikingCNN

    torch.manual_seed(0)
    cnn = SpikingCNN(4, 10, 1, 8)
    with SpikeMonitor(cnn) as monitor, monitor.counting("val"):
        cnn(torch.rand(2, 1, 8, 8))
    counts = monitor.summary("val")
    assert counts["neuron_updates_per_sample"] == 2 * (4 * 8 * 8 + 4 * 4 * 4)  # T x (stem + conv2 neurons)
    assert counts["adds_per_sample"] == pytest.approx(counts["spikes_per_sample"])  # 2x2 pools: one output a spike
    net = build_network(hand_arch, width=4, num_cells=3, num_classes=10, in_channels=1, image_size=8)
    with SpikeMonitor(net) as monitor, monitor.counting("val"):
        net(torch.rand(2, 1, 8, 8))
    summary = monitor.summary("val")
    assert summary["energy_uj_per_group"]["classifier"] > 0 and summary["adds_per_sample"] > 0


def test_unknown_profile_is_refused_in_one_line(capsys):
    from nni_snn.cli.main import main

    for argv in (["search", "--energy-profile", "tpu"], ["show", "--energy-profile", "tpu", "missing.json"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "tpu" in err and "memory-45nm" in err, err


def test_front_compares_runs_under_one_profile(capsys, tmp_path):
    """nni-snn 0.1's committed runs were priced under the ops-only model alone: front reads them under it, and
    refuses in one line to put them under another."""
    from pathlib import Path

    from nni_snn.cli.main import main

    runs = str(Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "energy_front")
    assert main(["front", runs, "--output", str(tmp_path / "front.png")]) == 0
    assert "energy profile: ops-45nm" in capsys.readouterr().out
    assert main(["front", runs, "--energy-profile", "memory-45nm", "--output", str(tmp_path / "f.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no energy under memory-45nm" in err, err
