"""Measuring helpers shared by the benchmark scripts: timing, interleaving, saved-for-backward and CUDA peak bytes."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], None], device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def interleaved(fns: dict[str, Callable[[], None]], device: torch.device, repeats: int,
                warmup: int = 1) -> dict[str, float]:
    """Median seconds per function, alternating between them (ABAB...) so that drift affects all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(timed(fn, device))
    return {name: statistics.median(ts) for name, ts in times.items()}


def saved_bytes(forward: Callable[[], object], exclude: set[int]) -> int:
    """Bytes of the distinct storages autograd keeps for backward while ``forward()`` builds its graph, leaving
    out the storages whose ``data_ptr`` is in ``exclude`` (inputs, parameters: held by the caller anyway)."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() not in exclude:
            storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = forward()
    del out
    return sum(storages.values())


def cuda_peak(fn: Callable[[], None], device: torch.device) -> int:
    """Peak CUDA bytes allocated by ``fn`` above what was allocated before it."""
    sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    sync(device)
    return torch.cuda.max_memory_allocated(device) - base
