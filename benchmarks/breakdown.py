"""Where a step's time goes, by kind of work: ``python -m benchmarks.search --profile`` prints it (torch.profiler,
CPU self time).

Attribution:
- forward: every module of a known kind (conv, BN, LIF, pooling, attention, the mixed operation, the node sum) runs
  inside a ``record_function`` label set by hooks; an aten op counts for the innermost labelled module around it,
  except that everything inside an attention module counts as attention (its own convs and sigmoids included);
- backward: autograd gives each backward node the ``sequence_nr`` of the forward op that made it, so a backward op
  counts for the kind its forward op had;
- the rest by step phase: the Adam step on the alphas, gradient clipping and SGD, and "other" (losses, cat of the
  cell's nodes, reshapes outside labelled modules).
The column "copies" is the share of each kind spent in copy / allocation ops (``copy_``, ``cat``, ``stack``,
``clone``, ``empty*``, ``zeros``, ``fill_``, ...), the layout copies between time-major and folded tensors included.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager

import torch
from torch import nn
from torch.autograd.profiler import record_function
from torch.profiler import ProfilerActivity, profile

COPY_OPS = {"aten::copy_", "aten::cat", "aten::stack", "aten::clone", "aten::contiguous", "aten::empty",
            "aten::empty_like", "aten::empty_strided", "aten::zeros", "aten::zeros_like", "aten::fill_",
            "aten::zero_", "aten::_to_copy", "aten::to", "aten::resize_", "aten::new_empty", "aten::new_zeros",
            "aten::ones_like", "aten::_unsafe_view"}
PHASES = ("alpha forward", "alpha backward", "alpha step (Adam)", "weight forward", "weight backward",
          "clip + SGD")


def kind_of(module: nn.Module) -> str | None:
    """The kind of work a module stands for, or None for a container whose children say it."""
    from nni.nas.oneshot.pytorch.supermodule.differentiable import (
        DifferentiableMixedCell,
        DifferentiableMixedLayer,
    )

    from nni_snn.snn.attention import ChannelTimeAttention, MultiDimAttention
    from nni_snn.snn.neuron import SpikingNeuron
    from search_spaces.darts_nodes import DartsNodeInput
    if isinstance(module, (ChannelTimeAttention, MultiDimAttention)):
        return "attention"
    if isinstance(module, (DifferentiableMixedLayer, DifferentiableMixedCell)):  # the SNN's edges, NNI's ANN cells
        return "mixed-op weighting"
    if isinstance(module, DartsNodeInput):
        return "node sum"
    if isinstance(module, SpikingNeuron):
        return "LIF"
    if isinstance(module, nn.ReLU):
        return "ReLU"
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return "BN"
    if isinstance(module, nn.Conv2d):
        return "conv"
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        return "pooling"
    kind = getattr(type(module), "profile_kind", None)  # a module may name its own kind (the fused BN + LIF)
    return kind


@contextmanager
def labelled(model: nn.Module):
    """Hooks that run each module of a known kind inside ``record_function("kind::<kind>")``."""
    handles, open_ = [], {}

    def pre(module, args):
        ctx = record_function(f"kind::{kind_of(module)}")
        ctx.__enter__()
        open_.setdefault(id(module), []).append(ctx)

    def post(module, args, out):
        open_[id(module)].pop().__exit__(None, None, None)

    for m in model.modules():
        if kind_of(m) is not None:
            handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def phase(name: str):
    return record_function(f"phase::{name}")


def breakdown(step, warmup: int = 1) -> dict:
    """Profile one call of ``step`` (a callable whose phases are labelled with :func:`phase`); returns
    ``{"total_ms", "kinds": {kind: (ms, copies_ms)}, "phases": {phase: ms}}`` in CPU self time."""
    for _ in range(warmup):
        step()
    with labelled(step.model), profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = list(prof.events())
    seq_kind: dict[int, str] = {}
    kinds: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    phases: dict[str, float] = defaultdict(float)

    def labels(ev):
        while ev is not None:
            yield ev
            ev = ev.cpu_parent

    # Forward pass first (sequence numbers of the forward ops), then everything.
    for ev in events:
        chain = list(labels(ev))
        kind = _forward_kind(chain)
        if kind is not None and ev.sequence_nr >= 0 and not ev.name.startswith(("kind::", "phase::")):
            seq_kind.setdefault(ev.sequence_nr, kind)
    for ev in events:
        if ev.name.startswith(("kind::", "phase::")):
            continue
        chain = list(labels(ev))
        ph = next((e.name[7:] for e in chain if e.name.startswith("phase::")), "unlabelled")
        kind = _forward_kind(chain)
        if kind is None:  # backward: the kind of the forward op whose node this runs under
            node = next((e for e in chain if e.name.startswith("autograd::engine::evaluate_function")), None)
            kind = seq_kind.get(node.sequence_nr) if node is not None and node.sequence_nr >= 0 else None
            if kind is None and node is not None:
                inner = next((e for e in chain if e.sequence_nr >= 0 and e is not node), None)
                kind = seq_kind.get(inner.sequence_nr) if inner is not None else None
        if kind is None:
            kind = {"alpha step (Adam)": "alpha step (Adam)", "clip + SGD": "clip + SGD"}.get(ph, "other")
        ms = ev.self_cpu_time_total / 1000
        kinds[kind][0] += ms
        if ev.name in COPY_OPS:
            kinds[kind][1] += ms
        phases[ph] += ms
    total = sum(v[0] for v in kinds.values())
    return {"total_ms": total, "kinds": {k: tuple(v) for k, v in kinds.items()}, "phases": dict(phases)}


def _forward_kind(chain) -> str | None:
    names = [e.name[6:] for e in chain if e.name.startswith("kind::")]
    if not names:
        return None
    return "attention" if "attention" in names else names[0]


def print_breakdown(title: str, result: dict, before: dict | None = None) -> None:
    total = result["total_ms"]
    print(f"\n{title}: {total:.0f} ms CPU self time in the profiled step")
    head = f"{'kind':<20} {'ms':>8} {'share':>6} {'copies':>7}"
    print(head + (f" {'before ms':>9} {'ratio':>6}" if before else ""))
    for kind, (ms, copies) in sorted(result["kinds"].items(), key=lambda kv: -kv[1][0]):
        row = f"{kind:<20} {ms:>8.1f} {ms / total:>6.1%} {copies / max(ms, 1e-9):>7.0%}"
        if before:
            b = before["kinds"].get(kind, (0.0, 0.0))[0]
            row += f" {b:>9.1f} {ms / b:>5.2f}x" if b else f" {'-':>9}"
        print(row)
    print("by phase: " + ", ".join(f"{p} {ms:.0f}" for p, ms in result["phases"].items()))


def saved_by_kind(model: nn.Module, forward) -> dict[str, float]:
    """MB of the distinct storages autograd saves for backward during ``forward()``, by the kind of the innermost
    labelled module that saved each (as in :func:`breakdown`; parameters left out)."""
    stack: list[str] = []
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, tuple[str, int]] = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in params and s.data_ptr() not in seen:
            kinds = stack or ["other"]
            seen[s.data_ptr()] = ("attention" if "attention" in kinds else kinds[-1], s.nbytes())
        return t

    def pre(module, args):
        stack.append(kind_of(module))

    def post(module, args, out):
        stack.pop()

    handles = []
    for m in model.modules():
        if kind_of(m) is not None:
            handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = forward()
        del out
    finally:
        for h in handles:
            h.remove()
    by: dict[str, float] = defaultdict(float)
    for kind, nbytes in seen.values():
        by[kind] += nbytes / 2**20
    return dict(by)
