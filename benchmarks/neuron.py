"""Benchmark: the LIF's custom autograd function against a plain autograd loop, and SpikeMonitor overhead.

Run ``python -m benchmarks.neuron`` (about a minute with defaults; ``--help`` for sizes). Both sides
of every ratio are measured interleaved in the same run, median over ``--repeats`` runs.

1. LIF forward+backward, ``nni_snn.snn.neuron.LIF`` vs ``benchmarks.lif_reference.lif_reference`` (Python loop over T
   through autograd), for several T; memory = bytes of tensors saved for backward (unique storages, input
   excluded), and on CUDA also the peak allocated memory during forward+backward.
2. SpikeMonitor: forward+backward of a conv/BN/LIF x4 stack without a monitor, with one that is off
   (``phase=None``) and with one counting (``phase="train"``).
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable

import torch
from torch import nn

from benchmarks.lif_reference import lif_reference  # the plain autograd loop (tests/test_neuron.py's too)
from benchmarks.measure import cuda_peak, interleaved, saved_bytes
from nni_snn.snn.neuron import LIF
from nni_snn.snn.ops import TimeDistributed
from nni_snn.snn.spikes import SpikeMonitor


def saved_bytes_of(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> int:
    """Saved-for-backward bytes of ``fn(x)``, the storage of ``x`` itself excluded."""
    return saved_bytes(lambda: fn(x), {x.untyped_storage().data_ptr()})


def bench_lif(device: torch.device, shape: list[int], timesteps: list[int], repeats: int,
              dtype: torch.dtype) -> None:
    print(f"\nLIF forward+backward on {device} ({dtype}), input [T, {', '.join(map(str, shape))}]")
    header = f"{'T':>2} {'LIF ms':>8} {'loop ms':>8} {'speedup':>8} {'saved MB':>9} {'loop MB':>8}"
    if device.type == "cuda":
        header += f" {'peak MB':>8} {'loop pk':>8}"
    print(header)
    lif = LIF()
    for T in timesteps:
        x = (torch.randn(T, *shape, device=device) * 0.5 + 0.3).to(dtype).requires_grad_()
        g = torch.randn_like(x)

        def ours(x: torch.Tensor = x, g: torch.Tensor = g) -> None:
            lif(x).backward(g)

        def reference(x: torch.Tensor = x, g: torch.Tensor = g) -> None:
            lif_reference(x).backward(g)

        med = interleaved({"lif": ours, "ref": reference}, device, repeats)
        mb = 2**20
        row = (f"{T:>2} {med['lif'] * 1e3:>8.2f} {med['ref'] * 1e3:>8.2f} {med['ref'] / med['lif']:>7.2f}x "
               f"{saved_bytes_of(lif, x) / mb:>9.1f} {saved_bytes_of(lif_reference, x) / mb:>8.1f}")
        if device.type == "cuda":
            row += f" {cuda_peak(ours, device) / mb:>8.1f} {cuda_peak(reference, device) / mb:>8.1f}"
        print(row)
        x.grad = None


class Stack(nn.Module):
    """Images ``[N, C, H, W]`` -> repeat over T -> (conv, BN, LIF) x depth, the way the real network runs."""

    def __init__(self, channels: int, timesteps: int, depth: int = 4) -> None:
        super().__init__()
        self.timesteps = timesteps
        self.blocks = nn.ModuleList()
        for _ in range(depth):
            self.blocks.append(TimeDistributed(nn.Sequential(
                nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))))
            self.blocks.append(LIF())

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = img.unsqueeze(0).repeat(self.timesteps, *([1] * img.dim()))
        for block in self.blocks:
            x = block(x)
        return x


def bench_monitor(device: torch.device, batch: int, channels: int, size: int, T: int, repeats: int) -> None:
    print(f"\nSpikeMonitor overhead on {device}: conv/BN/LIF x4, images [{batch}, {channels}, {size}, {size}], T={T}")
    plain = Stack(channels, T).to(device)
    watched = copy.deepcopy(plain)
    monitor = SpikeMonitor(watched)
    img = torch.rand(batch, channels, size, size, device=device)

    def step(model: nn.Module) -> None:
        model(img).sum().backward()

    def off() -> None:
        monitor.phase = None
        step(watched)

    def on() -> None:
        monitor.phase = "train"
        step(watched)

    med = interleaved({"none": lambda: step(plain), "off": off, "on": on}, device, repeats)
    monitor.phase = None
    summary = monitor.summary("train")
    print(f"{'monitor':>8} {'ms':>8} {'ratio':>7}")
    for name in ("none", "off", "on"):
        print(f"{name:>8} {med[name] * 1e3:>8.2f} {med[name] / med['none']:>6.3f}x")
    print(f"(counted {summary['samples']} samples, {summary['spikes_per_sample']:.0f} spikes/sample, "
          f"firing rate {summary['firing_rate']:.3f})")
    monitor.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=4, default=[64, 64, 16, 16], metavar=("N", "C", "H", "W"),
                        help="LIF input shape after T (default: 64 64 16 16)")
    parser.add_argument("--timesteps", type=int, nargs="+", default=[2, 4, 6])
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per measurement (median)")
    parser.add_argument("--monitor-batch", type=int, default=32)
    parser.add_argument("--monitor-channels", type=int, default=32)
    parser.add_argument("--monitor-size", type=int, default=16)
    parser.add_argument("--cpu-only", action="store_true", help="skip CUDA even if available")
    args = parser.parse_args()

    torch.manual_seed(0)
    devices = [torch.device("cpu")]
    if torch.cuda.is_available() and not args.cpu_only:
        devices.append(torch.device("cuda"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", {torch.cuda.get_device_name()}" if len(devices) > 1 else ""))
    for device in devices:
        bench_lif(device, args.shape, args.timesteps, args.repeats, torch.float32)
        if device.type == "cuda":
            bench_lif(device, args.shape, args.timesteps, args.repeats, torch.float16)
        bench_monitor(device, args.monitor_batch, args.monitor_channels, args.monitor_size, 2, args.repeats)


if __name__ == "__main__":
    main()
