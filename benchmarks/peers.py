"""Benchmark: one training step of the same two-conv spiking CNN in nni-snn, SpikingJelly, snnTorch and Norse.

Run ``python -m benchmarks.peers`` (a few minutes with defaults; ``--help`` for sizes). The network is
nni-snn's ``spiking-cnn`` baseline (``nni_snn.snn.spiking_cnn.SpikingCNN``): conv3x3-BN (run once on the static image, its
current repeated over the T steps) -> LIF -> maxpool 2 -> conv3x3-BN -> LIF -> maxpool 2 -> linear, logits averaged
over T; cross-entropy, SGD with momentum. Each library builds it from its own neuron and, where it has them, its own
multi-step layers; all four start from the same weights, and before timing the script records how far each one's
logits on the batch are from nni-snn's (float rounding flips a neuron sitting on its threshold now and then:
nni-snn's maps are channels-last on the CPU, the others' NCHW). A library that is not installed is skipped
(SpikingJelly is not in the test extra: ``pip install spikingjelly``). A step is forward, loss, backward and the optimiser step on one batch, all libraries
interleaved (one step of each in turn, ``--repeats`` rounds of ``--steps`` steps); the JSON keeps every round.

The LIF, as nni-snn's (``u_t = tau u_{t-1} (1 - o_{t-1}) + x_t``, spike when ``u_t > V_th``, tau 0.2, V_th 0.5,
sigmoid surrogate of sharpness 4, reset detached in backward), in each library:

- SpikingJelly: ``LIFNode(tau=1 / (1 - 0.2), decay_input=False, v_reset=0, detach_reset=True)`` with its
  ``Sigmoid(alpha=4)`` surrogate, multi-step mode (2.0's ``LIFNode`` is its PyTorch implementation, a loop over T
  in ``functional.lif_multi_step``). It fires at ``u >= V_th``: the same spikes but where the membrane lands exactly
  on the threshold.
- snnTorch: ``Leaky(beta=0.2, threshold=0.5, reset_mechanism="zero")`` (its default ``reset_delay``: the reset of a
  spike applies at the next step, as here, and is detached), ``surrogate.sigmoid(slope=4)``; single-step only, so a
  Python loop over T; the conv/BN/pool layers run on the T steps folded into the batch, as nni-snn's do.
- Norse: ``LIFBoxCell`` (a LIF without synaptic current; single-step in Norse 1.1, so a Python loop over T, the
  layers folded as for snnTorch), ``dt * tau_mem_inv = 0.8`` so that it keeps 0.2 of its
  membrane per step. Its Euler step scales the input by that 0.8 too, so ``v = 0.8 u``: ``v_th = 0.4`` gives the same
  spikes, up to rounding. It has no sigmoid surrogate: ``method="tanh"`` with ``alpha = 2.5`` has the same shape over ``u`` as the
  sigmoid of sharpness 4, at 0.8 of its height; and its reset is not detached (gradient flows through it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import Tensor, nn

from benchmarks.common import RESULTS as STUDIES
from nni_snn.snn.ops import BN_EPS
from nni_snn.snn.spiking_cnn import SpikingCNN

TAU, V_TH, ALPHA = 0.2, 0.5, 4.0
RESULTS = STUDIES / "peers"


def reference(width: int, T: int, image: int) -> SpikingCNN:
    torch.manual_seed(0)
    return SpikingCNN(width, 10, 1, image, timesteps=T)


class FoldedCNN(nn.Module):
    """The baseline's layers with another library's neuron: ``make_neuron()`` gives a module mapping time-major
    currents ``[T, N, ...]`` to spikes. The stateless layers run on the folded ``[T*N, ...]`` view, as nni-snn's."""

    def __init__(self, width: int, T: int, image: int, make_neuron) -> None:
        super().__init__()
        self.T = T
        self.conv1 = nn.Sequential(nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width, eps=BN_EPS))
        self.lif1 = make_neuron()
        self.conv2 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(width, width, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(width, eps=BN_EPS))
        self.lif2 = make_neuron()
        self.pool2 = nn.MaxPool2d(2)
        self.linear = nn.Linear(width * (image // 4) ** 2, 10)

    def forward(self, x: Tensor) -> Tensor:
        T, N = self.T, x.shape[0]
        current = self.conv1(x)
        s = self.lif1(current.unsqueeze(0).expand(T, *current.shape))
        s = self.lif2(self.conv2(s.flatten(0, 1)).unflatten(0, (T, N)))
        s = self.pool2(s.flatten(0, 1)).unflatten(0, (T, N))
        return self.linear(s.flatten(2)).mean(0)

    def load_from(self, ref: SpikingCNN) -> FoldedCNN:
        pairs = [(self.conv1[0], ref.stem.conv), (self.conv1[1], ref.stem.bn), (self.conv2[1], ref.conv2.module[1]),
                 (self.conv2[2], ref.conv2.module[2]), (self.linear, ref.linear)]
        for mine, theirs in pairs:
            mine.load_state_dict(theirs.state_dict())
        return self


class SnnTorchLIF(nn.Module):
    """snnTorch's ``Leaky`` over T steps (a Python loop: it is single-step), from a zero membrane every call."""

    def __init__(self) -> None:
        super().__init__()
        import snntorch
        from snntorch import surrogate

        self.leaky = snntorch.Leaky(beta=TAU, threshold=V_TH, reset_mechanism="zero",
                                    spike_grad=surrogate.sigmoid(slope=ALPHA))

    def forward(self, x: Tensor) -> Tensor:
        mem = torch.zeros_like(x[0])
        spikes = []
        for t in range(x.shape[0]):
            spk, mem = self.leaky(x[t], mem)
            spikes.append(spk)
        return torch.stack(spikes)


class NorseLIF(nn.Module):
    """Norse's ``LIFBoxCell`` over T steps (a Python loop: 1.1 has no multi-step LIFBox), from its initial state."""

    def __init__(self) -> None:
        super().__init__()
        from norse.torch import LIFBoxCell, LIFBoxParameters

        keep = 1.0 - TAU  # dt * tau_mem_inv: the fraction of the gap to the input closed per step
        self.cell = LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.tensor(keep / 1e-3),
                                                v_th=torch.tensor(V_TH * keep), method="tanh",
                                                alpha=ALPHA / 2 / keep), dt=1e-3)

    def forward(self, x: Tensor) -> Tensor:
        state = None
        spikes = []
        for t in range(x.shape[0]):
            z, state = self.cell(x[t], state)
            spikes.append(z)
        return torch.stack(spikes)


def spikingjelly_cnn(width: int, T: int, image: int, ref: SpikingCNN) -> nn.Module:
    """The baseline with SpikingJelly's multi-step layers and LIF node, torch backend."""
    from spikingjelly.activation_based import layer, neuron, surrogate

    def lif() -> nn.Module:
        return neuron.LIFNode(tau=1.0 / (1.0 - TAU), decay_input=False, v_threshold=V_TH, v_reset=0.0,
                              surrogate_function=surrogate.Sigmoid(alpha=ALPHA), detach_reset=True, step_mode="m")

    class JellyCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Sequential(nn.Conv2d(1, width, 3, padding=1, bias=False),
                                       nn.BatchNorm2d(width, eps=BN_EPS))  # the image's current, once
            self.body = nn.Sequential(
                lif(), layer.MaxPool2d(2, step_mode="m"),
                layer.Conv2d(width, width, 3, padding=1, bias=False, step_mode="m"),
                layer.BatchNorm2d(width, eps=BN_EPS, step_mode="m"), lif(), layer.MaxPool2d(2, step_mode="m"),
                layer.Flatten(start_dim=1, step_mode="m"), layer.Linear(width * (image // 4) ** 2, 10, step_mode="m"))

        def forward(self, x: Tensor) -> Tensor:
            from spikingjelly.activation_based import functional

            functional.reset_net(self)  # its neurons keep their membrane between calls
            current = self.conv1(x)
            return self.body(current.unsqueeze(0).repeat(T, 1, 1, 1, 1)).mean(0)

    net = JellyCNN()
    for mine, theirs in [(net.conv1[0], ref.stem.conv), (net.conv1[1], ref.stem.bn),
                         (net.body[2], ref.conv2.module[1]), (net.body[3], ref.conv2.module[2]),
                         (net.body[7], ref.linear)]:
        mine.load_state_dict(theirs.state_dict())
    return net


def build(width: int, T: int, image: int) -> tuple[dict[str, nn.Module], dict[str, str]]:
    nets: dict[str, nn.Module] = {"nni-snn": reference(width, T, image)}
    skipped: dict[str, str] = {}
    ref = reference(width, T, image)
    makers = {"spikingjelly": lambda: spikingjelly_cnn(width, T, image, ref),
              "snntorch": lambda: FoldedCNN(width, T, image, SnnTorchLIF).load_from(ref),
              "norse": lambda: FoldedCNN(width, T, image, NorseLIF).load_from(ref)}
    for name, make in makers.items():
        try:
            nets[name] = make()
        except ImportError as err:  # not installed: the others still run
            skipped[name] = f"not installed ({err})"
    return nets, skipped


def agreement(nets: dict[str, nn.Module], x: Tensor) -> dict[str, float]:
    """Largest absolute difference of each library's training-mode logits from nni-snn's, same weights, same batch
    (BN in training mode uses the batch's statistics, so no running state enters)."""
    with torch.no_grad():
        logits = {name: net.train()(x) for name, net in nets.items()}
    return {name: float((out - logits["nni-snn"]).abs().max()) for name, out in logits.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--timesteps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--image", type=int, default=28)
    parser.add_argument("--steps", type=int, default=5, help="steps per library per round")
    parser.add_argument("--repeats", type=int, default=7, help="rounds")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    x = torch.randn(args.batch_size, 1, args.image, args.image)
    y = torch.randint(0, 10, (args.batch_size,))
    nets, skipped = build(args.width, args.timesteps, args.image)
    diffs = agreement(nets, x)
    criterion = nn.CrossEntropyLoss()
    steps = {}
    for name, net in nets.items():
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

        def step(net: nn.Module = net, optimizer: torch.optim.Optimizer = optimizer) -> None:
            loss = criterion(net(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        steps[name] = step
    for step in steps.values():  # warm-up: allocator, oneDNN's kernel choice
        step()
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[name].append((time.perf_counter() - start) / args.steps)
    fastest = min(times, key=lambda n: statistics.median(times[n]))
    rows = {name: {"median_ms": statistics.median(ts) * 1e3, "min_ms": min(ts) * 1e3, "max_ms": max(ts) * 1e3,
                   "rounds_ms": [t * 1e3 for t in ts], "max_logit_difference": diffs[name],
                   "relative_to_nni_snn": statistics.median(ts) / statistics.median(times["nni-snn"])}
            for name, ts in times.items()}
    load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None  # others' work shows in the times
    result = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.processor()
              or platform.machine(), "threads": torch.get_num_threads(), "load_1min_at_end": load,
              "torch": torch.__version__, "versions": _versions(nets), "settings": vars(args) | {"output": None},
              "fastest": fastest, "libraries": rows, "skipped": skipped}
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "peers.json").write_text(json.dumps(result, indent=2) + "\n")
    table = _markdown(result)
    (args.output / "peers.md").write_text(table)
    print(table)


def _versions(nets: dict[str, nn.Module]) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("nni-snn", "spikingjelly", "snntorch", "norse"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "?"
    return {name: found[name] for name in nets}


def _markdown(result: dict) -> str:
    s = result["settings"]
    title = (f"Training step of the spiking CNN (width {s['width']}, T={s['timesteps']}, batch {s['batch_size']}, "
             f"{s['image']}x{s['image']}), {result['threads']} thread(s), torch {result['torch']}, "
             f"load {result['load_1min_at_end']}; {s['repeats']} interleaved rounds of {s['steps']} steps.")
    lines = [title, "",
             "| library | version | median ms | min-max ms | vs nni-snn | max logit difference |",
             "|---|---|---:|---:|---:|---:|"]
    for name, row in result["libraries"].items():
        lines.append(f"| {name} | {result['versions'][name]} | {row['median_ms']:.1f} | "
                     f"{row['min_ms']:.1f}-{row['max_ms']:.1f} | {row['relative_to_nni_snn']:.2f}x | "
                     f"{row['max_logit_difference']:.2g} |")
    for name, why in result["skipped"].items():
        lines.append(f"| {name} | - | - | - | - | {why} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
