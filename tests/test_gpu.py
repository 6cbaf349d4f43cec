"""GPU and mixed-precision paths, selected by ``pytest -m gpu`` (what ``make gpu-check`` runs first).

The CUDA tests skip without CUDA; the bf16 checks run on the CPU's autocast too, so the mixed-precision path is
exercised on every machine.
"""

from __future__ import annotations

import json

import pytest
import torch

from nni_snn import build_network
from nni_snn.cli.main import main
from nni_snn.commands.runtime import loader_workers
from nni_snn.snn.neuron import LIF
from nni_snn.snn.spikes import calibrate
from nni_snn.train.estimate import fit_batch_norm

pytestmark = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
DEVICES = ["cpu", pytest.param("cuda", marks=needs_cuda)]
TINY = ["--dataset", "digits", "--width", "4", "--cells", "3", "--epochs", "1", "--batch-size", "256",
        "--no-progress"]


def _network(hand_arch, device: str):
    torch.manual_seed(0)
    net = build_network(hand_arch, width=8, num_cells=3, num_classes=10).to(device)
    images = torch.rand(32, 3, 16, 16, generator=torch.Generator().manual_seed(0)).to(device)
    fit_batch_norm(net, [images])
    return net.eval(), images


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_autocast_keeps_spikes_binary_and_counts_close(hand_arch, device):
    net, images = _network(hand_arch, device)
    outputs = []
    for module in net.modules():
        if isinstance(module, LIF):
            module.register_forward_hook(lambda m, args, out: outputs.append(out))
    full = calibrate(net, [images])
    layers = len(outputs)
    with torch.autocast(device, dtype=torch.bfloat16):
        half = calibrate(net, [images])
    full_spikes, half_spikes = outputs[:layers], outputs[layers:]
    # bf16 convolutions move the currents a little: only neurons near their threshold may flip (the stem's first)
    assert layers and len(half_spikes) == layers
    assert (full_spikes[0] != half_spikes[0]).float().mean() < 0.05
    assert half["spikes_per_sample"] == pytest.approx(full["spikes_per_sample"], rel=0.05)
    assert half["sops_per_sample"] == pytest.approx(full["sops_per_sample"], rel=0.05)


def test_retrain_in_bf16_mixed_precision_on_this_machine(tmp_path, hand_arch):
    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps(hand_arch))
    out = tmp_path / "out"
    accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    assert main(["retrain", "--arch", str(arch), *TINY, "--precision", "bf16-mixed", "--accelerator", accelerator,
                 "--output", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["spikes_per_sample"] > 0 and 0 <= metrics["accuracy"] <= 1


@needs_cuda
def test_search_and_retrain_steps_on_cuda(tmp_path):
    out = tmp_path / "search"
    assert main(["search", *TINY, "--accelerator", "gpu", "--retrain-epochs", "1", "--retrain-width", "4",
                 "--retrain-cells", "3", "--output", str(out)]) == 0
    assert json.loads((out / "retrain" / "metrics.json").read_text())["sops_per_sample"] > 0


@needs_cuda
def test_spike_and_sop_counts_equal_on_cpu_and_cuda(hand_arch):
    net, images = _network(hand_arch, "cpu")
    on_cpu = calibrate(net, [images])
    on_cuda = calibrate(net.cuda(), [images.cuda()])
    # cuDNN's convolutions sum in another order (TF32 by default): a neuron right at the threshold may flip.
    for key in ("spikes_per_sample", "sops_per_sample", "macs_per_sample"):
        assert on_cuda[key] == pytest.approx(on_cpu[key], rel=0.01)


def test_data_loader_workers_default_to_0_on_the_cpu():
    assert loader_workers(None, "cpu") == 0
    assert loader_workers(3, "cpu") == 3


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given without CUDA")
@pytest.mark.parametrize("flags,needle", [
    (["--precision", "16-mixed"], "--precision 16-mixed needs a CUDA GPU"),
    (["--precision", "fp8"], "--precision 'fp8' is unknown"),
    (["--num-workers", "-1"], "--num-workers must be an integer >= 0"),
])
def test_precision_mistakes_are_one_line(flags, needle, capsys):
    assert main(["search", *TINY, "--accelerator", "cpu", *flags]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_gpu_check_without_cuda_runs_tiny_on_the_cpu_and_says_so(tmp_path, capsys):
    """The script `make gpu-check` runs, on its CPU path: a table and JSON results, the projection marked void."""
    from benchmarks import gpu_check

    out = tmp_path / "gpu-check.json"
    assert gpu_check.main(["--cpu", "--skip-tests", "--repeats", "1", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "no CUDA here" in printed and "projected GPU-h" in printed
    results = json.loads(out.read_text())
    assert not results["cuda"]
    assert [(r["step"], r["precision"], r.get("partial_channels")) for r in results["rows"]] == [
        ("search", "fp32", None), ("search", "bf16", None), ("retrain", "fp32", None), ("retrain", "bf16", None),
        ("search", "fp32", 1), ("search", "fp32", 2), ("search", "fp32", 4)]  # partial channels K = 1, 2, 4
    assert all(r["snn_s"] > 0 and r["ann_s"] > 0 and r["projected_gpu_hours"] > 0 for r in results["rows"])


@pytest.mark.parametrize("device", DEVICES)
def test_partial_channels_supernet_with_frozen_weights_on_each_device(device):
    """The search's new paths on the device: a partial-channels supernet's forward and backward with the weights
    frozen (MADarts's alpha step) gives every alpha and beta a gradient and no weight one."""
    from nni.nas.strategy import DARTS

    from search_spaces import SNNDartsSpace
    from strategies.madarts import Frozen

    torch.manual_seed(0)
    model = DARTS().mutate_model(SNNDartsSpace(width=4, num_cells=3, timesteps=2, in_channels=1,
                                               partial_channels=2)).to(device)
    alphas = [p for n, p in model.named_parameters() if "_arch_alpha" in n]
    weights = [p for n, p in model.named_parameters() if "_arch_alpha" not in n]
    with Frozen(weights):
        model(torch.rand(4, 1, 8, 8, device=device)).sum().backward()
    assert all(a.grad is not None for a in alphas) and all(w.grad is None for w in weights)
