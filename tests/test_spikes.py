"""Spike accounting: exact counts on a network whose spikes are known by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nni_snn.snn.neuron import LIF
from nni_snn.snn.spikes import SpikeMonitor, default_group_of


class Tiny(nn.Module):
    """T = 2. For a row [0.9, 0.3, 0.45]: LIF ``a`` spikes 2 + 0 + 1 = 3 times (u = 0.3, 0.36 never fires;
    0.45 fires at t2 with 0.09 + 0.45); ``blocks.0`` sees twice the input [1.8, 0.6, 0.9] and fires at every
    step, 6 times. Both have 3 neurons x 2 steps = 6 neuron-steps per sample."""

    def __init__(self) -> None:
        super().__init__()
        self.a = LIF()
        self.blocks = nn.ModuleList([LIF()])

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = img.unsqueeze(0).expand(2, *img.shape)
        return self.a(x) + self.blocks[0](2 * x)


def batch(n: int) -> torch.Tensor:
    return torch.tensor([[0.9, 0.3, 0.45]]).repeat(n, 1)


def test_default_groups():
    assert default_group_of("cells.3.node_2.op.lif") == "cells.3"
    assert default_group_of("stem.lif") == "stem"
    assert default_group_of("classifier") == "classifier"


def test_exact_counts_per_phase():
    model = Tiny()
    monitor = SpikeMonitor(model)
    assert monitor.groups == ["a", "blocks.0"]
    with monitor.counting("train"):
        model(batch(4))
        model(batch(2))
    with monitor.counting("val"):
        model(batch(3))
    assert monitor.phase is None
    train = monitor.summary("train")
    assert train["samples"] == 6
    assert train["spikes_per_sample"] == pytest.approx(9.0)
    assert train["firing_rate"] == pytest.approx(9 / 12)  # 9 spikes over 2 LIFs x 3 neurons x 2 steps
    assert train["spikes_per_group"] == pytest.approx({"a": 3.0, "blocks.0": 6.0})
    assert train["firing_rate_per_group"] == pytest.approx({"a": 0.5, "blocks.0": 1.0})
    val = monitor.summary("val")
    assert val["samples"] == 3 and val["spikes_per_sample"] == pytest.approx(9.0)
    assert monitor.phases == ["train", "val"]


def test_off_counts_nothing_and_empty_phase_is_zero():
    model = Tiny()
    monitor = SpikeMonitor(model)
    model(batch(5))  # phase None
    s = monitor.summary("train")
    assert s["samples"] == 0 and s["spikes_per_sample"] == 0.0 and s["firing_rate"] == 0.0
    assert s["spikes_per_group"] == {"a": 0.0, "blocks.0": 0.0}


def test_custom_groups_and_ignored_modules():
    model = Tiny()
    monitor = SpikeMonitor(model, group_of=lambda name: "all" if name == "a" else None)
    with monitor.counting("train"):
        model(batch(2))
    assert monitor.summary("train")["spikes_per_group"] == {"all": 3.0}


def test_reset_and_remove():
    model = Tiny()
    monitor = SpikeMonitor(model)
    monitor.phase = "train"
    model(batch(1))
    monitor.phase = "val"
    model(batch(1))
    monitor.reset("train")
    assert monitor.summary("train")["samples"] == 0
    assert monitor.summary("val")["samples"] == 1
    monitor.reset()
    assert monitor.phases == []
    monitor.remove()
    model(batch(1))
    assert monitor.summary("val")["samples"] == 0


def test_context_manager_removes_hooks():
    model = Tiny()
    with SpikeMonitor(model) as monitor, monitor.counting("train"):
        model(batch(2))
    with monitor.counting("train"):
        model(batch(2))
    assert monitor.summary("train")["samples"] == 2
    assert not model._forward_hooks and not model._forward_pre_hooks and not model.a._forward_hooks


def test_counts_stay_on_device_as_tensors():
    model = Tiny()
    monitor = SpikeMonitor(model)
    with monitor.counting("train"):
        model(batch(2))
    stored = monitor.counts("train")["spikes"]["a"]
    assert isinstance(stored, torch.Tensor) and stored.dtype == torch.float64


class Synaptic(nn.Module):
    """Stem conv (analog) -> LIF -> [depthwise 3x3 + pointwise 1x1 to 5 channels] and a 1x1 stride-2 conv on the
    stem's spikes, then a linear layer on flattened spikes. Shapes: images [N, 1, 4, 4], T = 1."""

    def __init__(self, stem_out: int = 2) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, stem_out, 3, padding=1, bias=False)
        self.lif = LIF()
        self.block = nn.Sequential(nn.Conv2d(stem_out, stem_out, 3, padding=1, groups=stem_out, bias=False),
                                   nn.Conv2d(stem_out, 5, 1, bias=False))
        self.down = nn.Conv2d(stem_out, 3, 1, stride=2, bias=False)
        self.head = nn.Linear(stem_out * 16, 7, bias=False)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        spikes = self.lif(self.stem(img).unsqueeze(0))[0]
        return self.block(spikes).sum() + self.down(spikes).sum() + self.head(spikes.flatten(1)).sum()


def identity_stem(model: Synaptic) -> None:
    """The stem copies the image into channel 0 (and zeros channel 1): the image decides where it spikes."""
    with torch.no_grad():
        model.stem.weight.zero_()
        model.stem.weight[0, 0, 1, 1] = 1.0


def test_sops_are_exact_per_spike_fan_out():
    model = Synaptic()
    identity_stem(model)
    img = torch.zeros(2, 1, 4, 4)
    img[0, 0, 0, 0] = 0.7  # corner: a 3x3 padded window reaches 4 outputs
    img[1, 0, 1, 1] = 0.7  # inside: reaches 9; off the stride-2 grid, so the 1x1 stride-2 conv skips it
    img[1, 0, 2, 2] = 0.7  # inside, on the stride-2 grid
    img[1, 0, 3, 0] = 0.2  # analog input below threshold: no spike
    monitor = SpikeMonitor(model)
    with monitor.counting("val"):
        model(img)
    s = monitor.summary("val")
    block = 5 * (4 + 9 + 9)  # fused depthwise + pointwise: each tap reaches all 5 output channels
    down = 3 * (1 + 1)  # (0, 0) and (2, 2) are on it, 3 output channels each
    head = 7 * 3  # 3 spikes, 7 outputs each
    assert s["spikes_per_sample"] == pytest.approx(3 / 2)
    assert s["sops_per_group"]["block.0"] == pytest.approx(block / 2)
    assert s["sops_per_group"]["down"] == pytest.approx(down / 2)
    assert s["sops_per_group"]["head"] == pytest.approx(head / 2)
    assert s["sops_per_sample"] == pytest.approx((block + down + head) / 2)
    # The stem reads analog pixels: dense MACs, output elements x C_in x 3 x 3; nothing else is analog.
    assert s["macs_per_group"] == pytest.approx({"stem": 2 * 16 * 9, "lif": 0, "block.0": 0, "down": 0, "head": 0})
    assert s["macs_per_sample"] == pytest.approx(2 * 16 * 9)


def test_sops_match_a_dense_reference_on_random_spikes():
    """SOPs = sum over outputs of the spikes under each window = a conv with all-ones weights, summed."""
    torch.manual_seed(0)
    model = Synaptic(stem_out=3)
    img = torch.randn(4, 1, 4, 4)
    monitor = SpikeMonitor(model)
    with monitor.counting("train"):
        model(img)
    spikes = (model.stem(img) > 0.5).float()
    ones = torch.ones(5, 3, 3, 3)  # the fused depthwise+pointwise layer as one dense conv
    block = torch.nn.functional.conv2d(spikes, ones, padding=1).sum().item()
    down = torch.nn.functional.conv2d(spikes, torch.ones(3, 3, 1, 1), stride=2).sum().item()
    head = spikes.sum().item() * 7
    assert monitor.summary("train")["sops_per_sample"] == pytest.approx((block + down + head) / 4)


def test_energy_and_calibration():
    from nni_snn.snn.spikes import E_AC_PJ, E_MAC_PJ, calibrate, energy_uj

    # energy = SOPs x E_AC + MACs x E_MAC (pJ -> uJ), whatever the per-operation energies
    assert 0 < E_AC_PJ < E_MAC_PJ  # an accumulate is cheaper than a multiply-accumulate: the premise of the estimate
    for sops, macs in [(1e6, 1e6), (3e5, 0), (0, 7e4), (2.5e7, 1.2e5)]:
        assert energy_uj(sops, macs) == pytest.approx((sops * E_AC_PJ + macs * E_MAC_PJ) * 1e-6)
        assert energy_uj(sops, macs) == pytest.approx(energy_uj(sops, 0) + energy_uj(0, macs))
        assert energy_uj(sops, macs, e_ac_pj=2.0, e_mac_pj=3.0) == pytest.approx((2.0 * sops + 3.0 * macs) * 1e-6)
    model = Synaptic().train()
    batches = [torch.randn(3, 1, 4, 4), (torch.randn(1, 1, 4, 4), None)]
    summary = calibrate(model, batches)
    assert model.training  # the mode is restored
    # the same counts as a monitor over the same images in evaluation mode
    model.eval()
    with SpikeMonitor(model) as monitor, monitor.counting("val"):
        model(batches[0])
        model(batches[1][0])
    counted = monitor.summary("val")
    for key in ("samples", "spikes_per_sample", "sops_per_sample", "macs_per_sample"):
        assert summary[key] == pytest.approx(counted[key]), key
    assert summary["samples"] == 4 and summary["macs_per_sample"] == pytest.approx(2 * 16 * 9)  # C_out x H x W x 3 x 3


@pytest.mark.parametrize("kwargs", [
    {"kernel_size": 3, "padding": 1}, {"kernel_size": 5, "padding": 4, "dilation": 2}, {"kernel_size": 3, "stride": 2, "padding": 1},
    {"kernel_size": 1, "stride": 2}, {"kernel_size": (3, 5), "padding": "same"}, {"kernel_size": 3, "groups": 4},
    {"kernel_size": 4, "stride": 3, "padding": 2, "dilation": 2},
])
def test_sops_of_any_conv_geometry_match_an_all_ones_conv(kwargs):
    torch.manual_seed(1)
    conv = nn.Conv2d(4, 8, bias=False, **kwargs)
    spikes = (torch.rand(3, 4, 9, 7) > 0.6).float()
    monitor = SpikeMonitor(conv)
    with monitor.counting("val"):
        conv(spikes)
    ones = nn.Conv2d(4, 8, bias=False, **kwargs)
    ones.weight.data.fill_(1.0)
    assert monitor.summary("val")["sops_per_sample"] == pytest.approx(ones(spikes).sum().item() / 3)


def test_the_ops_only_profile_is_the_library_constants():
    from nni_snn.snn.energy import profile
    from nni_snn.snn.spikes import E_AC_PJ, E_MAC_PJ

    ops = profile("ops-45nm")
    assert (ops.e_ac_pj, ops.e_mac_pj) == (E_AC_PJ, E_MAC_PJ)
