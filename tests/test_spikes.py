"""Spike accounting: exact counts on a network whose spikes are known by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nni_snn.neuron import LIF
from nni_snn.spikes import SpikeMonitor, default_group_of


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
    stored = monitor._spikes["train"]["a"]
    assert isinstance(stored, torch.Tensor) and stored.dtype == torch.float64
