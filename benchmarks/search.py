"""Benchmark: MA-DARTS search step and retrain throughput of the SNN side by side with NNI's ANN DARTS.

Run ``python -m benchmarks.search`` (a few minutes on 2 idle cores; ``--help`` for sizes). Every SNN
figure is measured interleaved (ABAB...) with the ANN one it is divided by, median over ``--repeats`` runs.

1. Search step: both model spaces become differentiable supernets the way NNI's strategy builds them
   (``nni.nas.strategy.DARTS().mutate_model(space)``; the SNN space adds its own ``extra_oneshot_hooks``), then
   one DARTS step is timed: an alpha step (forward + backward on a batch, Adam on the alphas) and a weight
   step (forward + backward on another batch, gradient clipping at 5, SGD on the weights). SNN:
   ``search_spaces.SNNDartsSpace(width, cells, timesteps=T, attention=...)``; ANN:
   ``nni.nas.hub.pytorch.DARTS(width, cells, dataset="cifar")`` (its cell adds a ``none`` op: 8 candidates per
   edge against the SNN's 7). Memory, two measures:
   - ``saved MB``: bytes of the distinct storages autograd keeps for backward during one training forward
     (``torch.autograd.graph.saved_tensors_hooks``; parameters excluded) -- the activation memory;
   - ``rss MB``: in a fresh subprocess, peak RSS (``VmHWM``, reset via ``/proc/self/clear_refs`` after building
     the supernet and one warm-up forward without grad) during two steps minus the RSS before them (``--rss``: ``headline`` = T=2 without attention, ``all``,
     ``off``). On CUDA, the peak allocated memory of one step instead. ``--changes`` also gives the peak RSS with
     glibc mapping every block above 128 KiB (``IN_USE``): the bytes in use, without what the heap keeps of freed
     blocks.
2. Overheads at T=2, all SNN variants interleaved with each other in one loop (``--overhead-repeats``): CT and
   MA attention over none, and spike + SOP accounting (the ``SpikeMonitor`` a search runs, counting) over none.
3. Retrain: forward + backward + SGD of a fixed network (DARTS-V2 genotype for both, the SNN with the same
   cell choices) at paper-like sizes scaled to the machine, images per second.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.breakdown import breakdown, phase, print_breakdown, saved_by_kind
from benchmarks.common import ROOT, quiet
from benchmarks.measure import cuda_peak, interleaved, saved_bytes
from nni_snn.files.genotype import (
    DARTS_V2,  # (op, input) per edge, as NNI's DARTS.load_searched_model("darts-v2")
)

# ----------------------------------------------------------------------------------------------- models


def ann_supernet(width: int, cells: int) -> nn.Module:
    from nni.nas.hub.pytorch import DARTS as DartsSpace
    from nni.nas.strategy import DARTS
    return DARTS().mutate_model(DartsSpace(width=width, num_cells=cells, dataset="cifar"))


def snn_supernet(width: int, cells: int, T: int, attention: str, classes: int = 10, partial_channels: int = 1,
                 stock_mixed_op: bool = False, recompute: bool = True) -> nn.Module:
    """The SNN supernet as MADarts builds it; ``stock_mixed_op``: with NNI's own mixed operation (its weighted sum)
    instead of the space's fused one, and ``recompute=False``: keeping the depthwise outputs
    (``nni_snn.snn.ops.DwPwBN``), the "before"s of ``--changes``."""
    from nni.nas.oneshot.pytorch.supermodule.differentiable import DifferentiableMixedLayer
    from nni.nas.strategy import DARTS

    from nni_snn.snn.ops import DwPwBN
    from search_spaces import SNNDartsSpace
    space = SNNDartsSpace(width=width, num_cells=cells, timesteps=T, attention=attention, num_classes=classes,
                          in_channels=3, partial_channels=partial_channels)
    for layer in space.modules():
        if isinstance(layer, DwPwBN):
            layer.recompute_depthwise &= recompute
    # A strategy's own hooks run before the space's, so NNI's mixed layer then takes every LayerChoice.
    return DARTS(mutation_hooks=[DifferentiableMixedLayer.mutate] if stock_mixed_op else None).mutate_model(space)


def ann_fixed(width: int, cells: int, auxiliary: bool = False) -> nn.Module:
    from nni.nas.hub.pytorch import DARTS as DartsSpace
    arch = {}
    for cell_type, pairs in DARTS_V2.items():
        for k in range(4):
            for e, (op, i) in enumerate(pairs[2 * k:2 * k + 2]):
                arch[f"{cell_type}/op_{k + 2}_{e}"] = op
                arch[f"{cell_type}/input_{k + 2}_{e}"] = [i]
    return DartsSpace.frozen_factory(arch)(width=width, num_cells=cells, dataset="cifar", auxiliary_loss=auxiliary)


def snn_fixed(width: int, cells: int, T: int, attention: str, neuron: dict | None = None,
              auxiliary: bool = False) -> nn.Module:
    from nni_snn import build_network
    from nni_snn.files.archfile import make_arch
    arch = make_arch(attention=attention, timesteps=T, genotype=DARTS_V2)
    return build_network(arch, width=width, num_cells=cells, num_classes=10, in_channels=3, neuron=neuron,
                         auxiliary=auxiliary)


def split_params(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(alphas, weights): NNI's differentiable modules name their architecture parameters ``_arch_alpha``."""
    alphas, weights = [], []
    for name, p in model.named_parameters():
        (alphas if "_arch_alpha" in name else weights).append(p)
    return alphas, weights


class SearchStep:
    """One first-order DARTS step, as ``DartsLightningModule.training_step`` does it; ``madarts=True``: as
    ``strategies.MADarts`` does it, each backward only for the parameters its optimiser steps."""

    def __init__(self, model: nn.Module, batch: int, size: int, device: torch.device, madarts: bool = False) -> None:
        self.model = model.to(device).train()
        alphas, weights = split_params(self.model)
        assert alphas, "no architecture parameters: was the space mutated?"
        self.alphas, self.weights = alphas, weights
        self.madarts = madarts
        self.arc_opt = torch.optim.Adam(alphas, 3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
        self.w_opt = torch.optim.SGD(weights, 0.025, momentum=0.9, weight_decay=3e-4)
        g = torch.Generator().manual_seed(0)
        self.batches = [(torch.rand(batch, 3, size, size, generator=g).to(device),
                         torch.randint(0, 10, (batch,), generator=g).to(device)) for _ in range(2)]

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        return F.cross_entropy(out[0] if isinstance(out, tuple) else out, y)

    def __call__(self) -> None:
        from strategies.madarts import Frozen
        (xa, ya), (xw, yw) = self.batches
        self.arc_opt.zero_grad(set_to_none=True)
        with Frozen(self.weights if self.madarts else []):  # MADarts: the alpha step records no weight gradient
            with phase("alpha forward"):
                loss = self.loss(xa, ya)
            with phase("alpha backward"):
                loss.backward()
        with phase("alpha step (Adam)"):
            self.arc_opt.step()
        self.w_opt.zero_grad(set_to_none=True)
        with Frozen(self.alphas if self.madarts else []):  # and the weight step no alpha gradient
            with phase("weight forward"):
                loss = self.loss(xw, yw)
            with phase("weight backward"):
                loss.backward()
        with phase("clip + SGD"):
            nn.utils.clip_grad_norm_(self.weights, 5.0)
            self.w_opt.step()


class RetrainStep:
    """One step of ``nni-snn retrain``: forward, loss (+ 0.4 x the auxiliary head's, for a model that returns one),
    backward, gradient clipping at 5, SGD."""

    def __init__(self, model: nn.Module, batch: int, size: int, device: torch.device) -> None:
        self.model = model.to(device).train()
        self.opt = torch.optim.SGD(self.model.parameters(), 0.0025, momentum=0.9, weight_decay=3e-4)
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(batch, 3, size, size, generator=g).to(device)
        self.y = torch.randint(0, 10, (batch,), generator=g).to(device)

    def __call__(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        with phase("weight forward"):
            out = self.model(self.x)
            logits, aux = out if isinstance(out, tuple) else (out, None)
            loss = F.cross_entropy(logits, self.y)
            if aux is not None:
                loss = loss + 0.4 * F.cross_entropy(aux, self.y)
        with phase("weight backward"):
            loss.backward()
        with phase("clip + SGD"):
            nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
            self.opt.step()


# ----------------------------------------------------------------------------------------------- measures


def step_saved_bytes(step: SearchStep | RetrainStep) -> int:
    """Saved-for-backward bytes of one training forward, parameters excluded; for a MADarts step the larger of its
    alpha step's forward (weights frozen) and its weight step's (alphas frozen)."""
    x = step.batches[1][0] if isinstance(step, SearchStep) else step.x
    params = {p.untyped_storage().data_ptr() for p in step.model.parameters()}
    if isinstance(step, SearchStep) and step.madarts:
        from strategies.madarts import Frozen
        phases = []
        for params_off in (step.weights, step.alphas):
            with Frozen(params_off):
                phases.append(saved_bytes(lambda: step.model(x), params))
        return max(phases)
    return saved_bytes(lambda: step.model(x), params)


def rss_child(spec: dict) -> None:
    """Subprocess body: peak RSS growth (bytes) of two search steps after building and warming the model."""
    quiet()
    torch.set_num_threads(spec["threads"])
    device = torch.device("cpu")
    if spec["kind"] == "ann":
        model = ann_supernet(spec["width"], spec["cells"])
    else:
        model = snn_supernet(spec["width"], spec["cells"], spec["T"], spec["attention"],
                             partial_channels=spec.get("partial", 1), stock_mixed_op=spec.get("stock", False),
                             recompute=spec.get("recompute", True))
    step = SearchStep(model, spec["batch"], spec["size"], device, madarts=spec.get("madarts", spec["kind"] == "snn"))
    with torch.no_grad():
        step.model(step.batches[0][0])
    before = _status_kib("VmRSS")
    try:  # reset the high-water mark so that the build's own peak does not hide the step's (Linux)
        Path("/proc/self/clear_refs").write_text("5")
        peak_of = lambda: _status_kib("VmHWM")
    except OSError:
        peak_of = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step()
    step()
    print(json.dumps({"rss": max(peak_of() - before, 0) * 1024}))


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# glibc's malloc with a fixed 128 KiB mmap threshold: every block above it is mapped on allocation and unmapped on
# free, so the peak RSS follows the bytes in use (the CPU counterpart of CUDA's peak allocated memory) instead of
# what the heap keeps of freed blocks at glibc's defaults (which raise the threshold as large blocks are freed).
IN_USE = {"MALLOC_MMAP_THRESHOLD_": str(128 << 10)}


def rss_of(spec: dict, in_use: bool = False) -> int:
    """Peak RSS growth of two steps of ``spec`` in a fresh process; ``in_use``: of the bytes in use (``IN_USE``)."""
    env = {**os.environ, **IN_USE} if in_use else None
    out = subprocess.run([sys.executable, "-m", "benchmarks.search", "--rss-child", json.dumps(spec)],
                         capture_output=True, text=True, check=True, env=env, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])["rss"]


# ----------------------------------------------------------------------------------------------- benches

MB = 2**20


def bench_search(args: argparse.Namespace, device: torch.device) -> None:
    print(f"\n== Search step on {device}: width {args.width}, {args.cells} cells, batch {args.batch}, "
          f"{args.size}x{args.size} RGB; median of {args.repeats}, interleaved with the ANN")
    mem_col = "peak MB" if device.type == "cuda" else "rss MB"
    print(f"{'T':>2} {'attn':>4} {'SNN s':>7} {'ANN s':>7} {'time x':>7} {'saved MB':>9} {'ANN sv':>7} "
          f"{'saved x':>7} {mem_col:>8} {'ANN':>7} {'mem x':>6}")
    ann = SearchStep(ann_supernet(args.width, args.cells), args.batch, args.size, device)
    ann_saved = step_saved_bytes(ann)
    ann_mem: int | None = None
    base = {"width": args.width, "cells": args.cells, "batch": args.batch, "size": args.size,
            "threads": torch.get_num_threads()}
    results = []
    for T in args.timesteps:
        for attention in args.attention:
            snn = SearchStep(snn_supernet(args.width, args.cells, T, attention), args.batch, args.size, device,
                              madarts=True)
            med = interleaved({"snn": snn, "ann": ann}, device, args.repeats)
            saved = step_saved_bytes(snn)
            mem = ann_mem_now = None
            want_rss = args.rss == "all" or (args.rss == "headline" and T == 2 and attention == "none")
            if device.type == "cuda":
                mem, ann_mem_now = cuda_peak(snn, device), cuda_peak(ann, device)
            elif want_rss:
                mem = rss_of({**base, "kind": "snn", "T": T, "attention": attention})
                if ann_mem is None:
                    ann_mem = rss_of({**base, "kind": "ann"})
                ann_mem_now = ann_mem
            row = (f"{T:>2} {attention:>4} {med['snn']:>7.3f} {med['ann']:>7.3f} {med['snn'] / med['ann']:>6.2f}x "
                   f"{saved / MB:>9.1f} {ann_saved / MB:>7.1f} {saved / ann_saved:>6.2f}x")
            if mem is not None:
                row += f" {mem / MB:>8.1f} {ann_mem_now / MB:>7.1f} {mem / max(ann_mem_now, 1):>5.2f}x"
            print(row, flush=True)
            results.append((T, attention, med["snn"], med["ann"]))
            del snn
    by = {(T, a): s / n for T, a, s, n in results}
    for T in args.timesteps:
        if (T, "none") in by:
            extra = ", ".join(f"{a} {by[(T, a)] / by[(T, 'none')] - 1:+.1%}" for a in args.attention
                              if a != "none" and (T, a) in by)
            print(f"T={T}: SNN/ANN step time {by[(T, 'none')]:.2f}x" + (f"; attention over none: {extra}"
                                                                     if extra else ""))


def bench_overheads(args: argparse.Namespace, device: torch.device) -> None:
    """Attention and accounting overheads measured against each other directly, not through the ANN ratio."""
    from nni_snn.snn.spikes import SpikeMonitor
    from nni_snn.train.lightning import cell_group

    T = 2
    print(f"\n== Overheads at T={T} on {device}: the same search step with attention none / ct / ma and with "
          f"spike + SOP counting on; median of {args.overhead_repeats}, interleaved")
    steps = {a: SearchStep(snn_supernet(args.width, args.cells, T, a), args.batch, args.size, device, madarts=True)
             for a in ("none", "ct", "ma")}
    counted = SearchStep(snn_supernet(args.width, args.cells, T, "none"), args.batch, args.size, device, madarts=True)
    monitor = SpikeMonitor(counted.model, group_of=cell_group)
    monitor.phase = "train"
    steps["none+counting"] = counted
    med = interleaved(steps, device, args.overhead_repeats)
    for name, seconds in med.items():
        print(f"{name:>14} {seconds:>7.3f} s  {seconds / med['none'] - 1:+6.1%}", flush=True)
    monitor.summary("train")  # the one host sync an epoch pays


def bench_changes(args: argparse.Namespace, device: torch.device) -> None:
    """Issue 21's search-step changes one at a time, interleaved with NNI's ANN DARTS step in one loop (T=2, MA)."""
    T = 2
    print(f"\n== Search step changes at T={T}, ma on {device}: median of {args.repeats}, interleaved; time and saved "
          f"memory (one training forward) against NNI's ANN DARTS step")
    mk = lambda stock, recompute=False: snn_supernet(args.width, args.cells, T, "ma", stock_mixed_op=stock,
                                                     recompute=recompute)
    steps = {"NNI's ANN DARTS": SearchStep(ann_supernet(args.width, args.cells), args.batch, args.size, device),
             "SNN, NNI's DARTS step (before)": SearchStep(mk(True), args.batch, args.size, device),
             "+ graph only for what is stepped": SearchStep(mk(True), args.batch, args.size, device, madarts=True),
             "+ fused mixed-op weighting": SearchStep(mk(False), args.batch, args.size, device, madarts=True),
             "+ depthwise outputs recomputed (now)": SearchStep(mk(False, True), args.batch, args.size, device,
                                                                madarts=True)}
    med = interleaved(steps, device, args.repeats)
    ann, ann_saved = med["NNI's ANN DARTS"], step_saved_bytes(steps["NNI's ANN DARTS"])
    for name, seconds in med.items():
        saved = step_saved_bytes(steps[name])
        print(f"{name:>38} {seconds:>7.3f} s {seconds / ann:>6.2f}x {saved / MB:>8.1f} MB {saved / ann_saved:>5.2f}x",
              flush=True)
    if device.type == "cpu" and args.rss != "off":  # peak RSS growth of two steps, fresh processes
        base = {"width": args.width, "cells": args.cells, "batch": args.batch, "size": args.size,
                "threads": torch.get_num_threads(), "T": T, "attention": "ma"}
        specs = {"ANN": {**base, "kind": "ann"},
                 "before": {**base, "kind": "snn", "stock": True, "madarts": False, "recompute": False},
                 "without recompute": {**base, "kind": "snn", "recompute": False}, "now": {**base, "kind": "snn"}}
        for label, in_use in (("peak RSS (glibc's defaults)", False), ("peak in use (IN_USE)", True)):
            rss = {k: rss_of(spec, in_use) for k, spec in specs.items()}
            print(f"{label}: " + ", ".join(f"{k} {v / MB:.0f} MB ({v / rss['ANN']:.2f}x)" for k, v in rss.items()))


def bench_partial(args: argparse.Namespace, device: torch.device) -> None:
    """PC-DARTS's partial channels (``--partial-channels K``): step time and memory at each K, interleaved."""
    T = 2
    print(f"\n== Partial channels at T={T}, ma on {device}: width {args.width}, {args.cells} cells, batch {args.batch}; "
          f"median of {args.repeats}, interleaved")
    steps = {K: SearchStep(snn_supernet(args.width, args.cells, T, "ma", partial_channels=K), args.batch, args.size,
                           device, madarts=True) for K in args.partial}
    med = interleaved({str(K): step for K, step in steps.items()}, device, args.repeats)
    mem_col = "peak MB" if device.type == "cuda" else "rss MB"
    print(f"{'K':>2} {'step s':>7} {'vs K=1':>7} {'saved MB':>9} {mem_col:>8}")
    base = {"width": args.width, "cells": args.cells, "batch": args.batch, "size": args.size,
            "threads": torch.get_num_threads(), "kind": "snn", "T": T, "attention": "ma"}
    first = med[str(args.partial[0])]
    for K, step in steps.items():
        mem = cuda_peak(step, device) if device.type == "cuda" else rss_of({**base, "partial": K})
        print(f"{K:>2} {med[str(K)]:>7.3f} {med[str(K)] / first:>6.2f}x {step_saved_bytes(step) / MB:>9.1f} "
              f"{mem / MB:>8.1f}", flush=True)


def bench_retrain(args: argparse.Namespace, device: torch.device) -> None:
    """The SNN's step against its ReLU twin at T = 1 (the same network, layers and parameters, ReLU for every LIF:
    the floor is T x its time) and against NNI's own DARTS-V2 ANN, all interleaved in one loop."""
    w, c, b, s = args.retrain_width, args.retrain_cells, args.retrain_batch, args.size
    print(f"\n== Retrain forward+backward+SGD on {device}: DARTS-V2 genotype, width {w}, {c} cells, batch {b}, "
          f"{s}x{s} RGB; median of {args.repeats}, interleaved; twin = the same network with ReLU at T=1")
    print(f"{'T':>2} {'attn':>4} {'SNN img/s':>10} {'SNN/twin':>9} {'SNN/ANN':>8} {'saved MB':>9} {'ANN sv':>7}")
    ann = RetrainStep(ann_fixed(w, c), b, s, device)
    ann_saved = step_saved_bytes(ann)
    for attention in args.retrain_attention:
        twin = RetrainStep(snn_fixed(w, c, 1, attention, {"kind": "relu"}), b, s, device)
        snns = {T: RetrainStep(snn_fixed(w, c, T, attention), b, s, device) for T in args.timesteps}
        med = interleaved({"ann": ann, "twin": twin, **{f"snn{T}": step for T, step in snns.items()}}, device,
                          args.repeats)
        print(f"{'':>2} {attention:>4} twin {b / med['twin']:.1f} img/s, NNI's ANN {b / med['ann']:.1f} img/s")
        for T, step in snns.items():
            snn = med[f"snn{T}"]
            print(f"{T:>2} {attention:>4} {b / snn:>10.1f} {snn / med['twin']:>8.2f}x {snn / med['ann']:>7.2f}x "
                  f"{step_saved_bytes(step) / MB:>9.1f} {ann_saved / MB:>7.1f}", flush=True)


def bench_profile(args: argparse.Namespace, device: torch.device) -> None:
    """The breakdown of docs/benchmarks.md: one profiled MA-DARTS search step at T=2 (and NNI's ANN DARTS step of
    the same size), one profiled retrain step at T=2 (and its ReLU twin at T=1), by kind of work."""
    T = 2
    results = {}
    steps = {
        f"SNN search step (T={T}, ma, width {args.width}, {args.cells} cells, batch {args.batch})":
            lambda: SearchStep(snn_supernet(args.width, args.cells, T, "ma"), args.batch, args.size, device,
                               madarts=True),
        f"NNI's ANN DARTS search step (width {args.width}, {args.cells} cells, batch {args.batch})":
            lambda: SearchStep(ann_supernet(args.width, args.cells), args.batch, args.size, device),
        f"SNN retrain step (T={T}, ma, DARTS-V2, width {args.retrain_width}, {args.retrain_cells} cells, "
        f"batch {args.retrain_batch})":
            lambda: RetrainStep(snn_fixed(args.retrain_width, args.retrain_cells, T, "ma"), args.retrain_batch,
                                args.size, device),
        "ReLU twin retrain step (T=1, same network)":
            lambda: RetrainStep(snn_fixed(args.retrain_width, args.retrain_cells, 1, "ma", {"kind": "relu"}),
                                args.retrain_batch, args.size, device),
    }
    for title, make in steps.items():
        step = make()
        results[title] = breakdown(step)
        print_breakdown(title, results[title])
        x = step.batches[1][0] if isinstance(step, SearchStep) else step.x
        saved = results[title]["saved_mb"] = saved_by_kind(step.model, lambda m=step.model, x=x: m(x))
        print(f"saved for backward: {sum(saved.values()):.0f} MB; " + ", ".join(
            f"{k} {v:.0f}" for k, v in sorted(saved.items(), key=lambda kv: -kv[1]) if v >= 0.5))
    if args.profile_json:
        Path(args.profile_json).write_text(json.dumps(results, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--cells", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=32, help="image side (default 32, CIFAR)")
    parser.add_argument("--timesteps", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--attention", nargs="+", default=["none", "ct", "ma"])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--rss", choices=["headline", "all", "off"], default="headline",
                        help="CPU peak RSS in fresh subprocesses (default: T=2 without attention only)")
    parser.add_argument("--retrain-width", type=int, default=16, help="paper: 36-64; scaled to a small CPU")
    parser.add_argument("--retrain-cells", type=int, default=6)
    parser.add_argument("--retrain-batch", type=int, default=32)
    parser.add_argument("--retrain-attention", nargs="+", default=["ma"])
    parser.add_argument("--overhead-repeats", type=int, default=9, help="runs per overhead measurement (median)")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--skip-overheads", action="store_true")
    parser.add_argument("--skip-retrain", action="store_true")
    parser.add_argument("--changes", action="store_true",
                        help="only issue 21's search-step changes one by one against NNI's ANN step (T=2, ma)")
    parser.add_argument("--partial", type=int, nargs="+", default=[1, 2, 4],
                        help="partial-channel K values of the partial-channels section (default 1 2 4)")
    parser.add_argument("--skip-partial", action="store_true")
    parser.add_argument("--profile", action="store_true",
                        help="only the torch.profiler breakdown by kind of work (T=2 search and retrain steps)")
    parser.add_argument("--profile-json", help="with --profile: also write the breakdown to this JSON file")
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.rss_child:
        rss_child(json.loads(args.rss_child))
        return
    quiet()
    from nni_snn.commands.runtime import keep_freed_memory
    keep_freed_memory()  # as nni-snn search / retrain do
    torch.manual_seed(0)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{torch.get_num_threads()} torch threads" + (f", {torch.cuda.get_device_name(device)}"
                                                        if device.type == "cuda" else ""))
    if args.profile:
        bench_profile(args, device)
        return
    if args.changes:
        bench_changes(args, device)
        return
    if not args.skip_search:
        bench_search(args, device)
    if not args.skip_overheads:
        bench_overheads(args, device)
    if not args.skip_partial:
        bench_partial(args, device)
    if not args.skip_retrain:
        bench_retrain(args, device)


if __name__ == "__main__":
    main()
