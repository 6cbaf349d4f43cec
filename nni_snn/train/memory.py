"""Sizes that cannot fit memory, refused before anything is built: one line with the estimate, not an out-of-memory
kill minutes later (or a machine that swaps until it stops answering).

A training step keeps its activations for backward: their bytes grow with images per step x time steps x channels
x pixels x cells. The bytes per unit are measured (docs/benchmarks.md, "saved for backward"): a search step at
width 8, 5 cells, batch 16, 32x32 images, T=2 keeps 676 MB; a retrain step at width 16, 6 cells, batch 32, 32x32,
T=2 keeps 895 MB. Allocator overhead, parameters, optimiser state and data come on top, so the estimate is a floor:
what it refuses cannot fit, and a run it lets through may still be too large. Parameters alone are counted exactly
(``nni-snn show``: the network built on PyTorch's meta device, which allocates nothing).
"""

from __future__ import annotations

import torch

from nni_snn.errors import SizeError

SEARCH_BYTES = 676e6 / (16 * 2 * 8 * 32 * 32 * 5)  # per image, time step, channel, pixel and cell
RETRAIN_BYTES = 895e6 / (32 * 2 * 16 * 32 * 32 * 6)


def available_bytes(accelerator: str = "cpu") -> int:
    """Memory a run can use: the GPU's (CUDA) or what the system reports as available (on Linux ``MemAvailable``)."""
    from nni_snn.train.hardware import uses_cuda

    if uses_cuda(accelerator) and torch.cuda.is_available():
        return torch.cuda.get_device_properties(0).total_memory
    import psutil

    # psutil, not os.sysconf: macOS has no SC_AVPHYS_PAGES and Windows no os.sysconf at all.
    return psutil.virtual_memory().available


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def check_step(kind: str, opts, data) -> None:
    """Refuse a search or retrain (``kind``) whose step's activations alone exceed the memory available."""
    per_unit = SEARCH_BYTES if kind == "search" else RETRAIN_BYTES
    if kind == "search" and getattr(opts, "partial_channels", 1) > 1:
        per_unit *= min(1.0, 1.22 / opts.partial_channels)  # measured: 0.61x at K = 2, 0.35x at K = 4
    batch = min(opts.batch_size, len(data.train) // (2 if kind == "search" else 1))  # a search: the weight half
    need = per_unit * batch * opts.timesteps * opts.width * data.image_size ** 2 * opts.cells
    have = available_bytes(opts.accelerator)
    if need > have:
        size = data.image_size
        raise SizeError(f"a {kind} step at width {opts.width}, {opts.cells} cells, batch size {batch}, "
                        f"T={opts.timesteps} on {size}x{size} images needs about {gib(need)} for its activations "
                        f"alone (estimate), more than the {gib(have)} available; lower the batch size, width, cells "
                        "or time steps", ("batch_size", "width", "cells", "timesteps"))


def on_meta(build):
    """``build()`` on PyTorch's meta device: the network's shapes without allocating its weights."""
    try:
        with torch.device("meta"):
            return build()
    except (RuntimeError, OverflowError, ValueError, TypeError) as err:  # sizes past int64, say
        raise SizeError(f"cannot build this network at these sizes ({(str(err).splitlines() or [''])[0][:120]}); "
                        "lower its width, cells or classes", ("width", "cells", "num_classes")) from None


def check_parameters(build, accelerator: str = "cpu") -> None:
    """Refuse a network (``build()`` returns it) whose float32 parameters exceed the memory available."""
    count = sum(p.numel() for p in on_meta(build).parameters())
    need, have = 4 * count, available_bytes(accelerator)
    if need > have:
        raise SizeError(f"this network has {count:.3g} parameters, {gib(need)} in float32, more than the "
                        f"{gib(have)} available; lower its width or cells", ("width", "cells"))
