"""The LIF of :mod:`nni_snn.snn.neuron` as a plain Python loop over T, differentiated by autograd: what its custom
autograd function must equal (tests/test_neuron.py) and is timed against (benchmarks/neuron.py)."""

from __future__ import annotations

import torch
from torch import Tensor

from nni_snn.snn.neuron import SURROGATES


class _Heaviside(torch.autograd.Function):
    """Step function with a surrogate derivative; building block of :func:`lif_reference`."""

    @staticmethod
    def forward(ctx, v: Tensor, surrogate: str, alpha: float) -> Tensor:
        ctx.save_for_backward(v)
        ctx.params = (surrogate, alpha)
        return (v > 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (v,) = ctx.saved_tensors
        surrogate, alpha = ctx.params
        return grad * SURROGATES.load(surrogate)(v, alpha), None, None


def lif_reference(x: Tensor, tau: float = 0.2, v_threshold: float = 0.5, surrogate: str = "arctan",
                  surrogate_alpha: float = 2.0, detach_reset: bool = True) -> Tensor:
    """The LIF's spikes through a Python loop over T (same maths, straightforward but slower and hungrier for
    memory)."""
    spikes = []
    u = o = None
    for t in range(x.shape[0]):
        if u is None:
            u = x[t]
        else:
            keep = 1.0 - (o.detach() if detach_reset else o)
            u = tau * u * keep + x[t]
        o = _Heaviside.apply(u - v_threshold, surrogate, surrogate_alpha)
        spikes.append(o)
    return torch.stack(spikes)
