"""Multi-step leaky integrate-and-fire (LIF) neuron with surrogate gradients (paper section 3.1).

Dynamics (paper eq. 1-2), per neuron, over time steps ``t = 1..T`` with ``u_0 = 0``::

    u_t = tau * u_{t-1} * (1 - o_{t-1}) + x_t
    o_t = 1 if u_t > v_threshold else 0          (strictly greater: u_t == v_threshold gives no spike)

``tau`` is the decay factor of eq. 1, the fraction of the membrane kept per step, not a time constant. SpikingJelly's
``LIFNode(tau=T, v_reset=0.0)`` computes ``H_t = V_{t-1} + (X_t - V_{t-1}) / T`` (``decay_input=True``, its default)
or ``H_t = V_{t-1} - V_{t-1} / T + X_t`` (``decay_input=False``): it keeps ``1 - 1/T`` per step. So this LIF with
``tau`` is SpikingJelly's with ``T = 1 / (1 - tau)`` and ``decay_input=False`` (tau 0.2 here: T 1.25; its default
T 2: tau 0.5), but for the threshold, which SpikingJelly's spike reaches at equality. The surrogate's sharpness is
``surrogate_alpha`` (``alpha`` inside the surrogate functions), apart from the search's architecture weights alpha.

The neuron is *stateless* between calls: one ``forward`` takes the whole time-major input ``[T, ...]``
and walks over ``T`` itself, so there is nothing to reset between batches and no "backward through the
graph a second time" bugs. The loop runs inside a custom :class:`torch.autograd.Function` that keeps only
the membrane potentials for backward (spikes are recomputed from them), instead of the ~4 intermediate
tensors per step that autograd would keep for a plain Python loop.

The step function has zero gradient almost everywhere, so backward replaces ``dH/dv`` by a *surrogate*
(``SURROGATES``), evaluated at ``v = u - v_threshold``. Every surrogate here integrates to 1 over ``v`` and
gets sharper (taller and narrower) as ``alpha`` grows.

Neurons are pluggable: :data:`NEURONS` (a :class:`~nni_snn.registry.Registry`) maps a spec's ``kind`` to its
factory, and every neuron that emits spikes derives from :class:`SpikingNeuron`, which is what the spike monitor
counts. :class:`PLIF` (a LIF with a learnable decay) is the second one.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from nni_snn.registry import NEURONS, SURROGATES

__all__ = ["LIF", "NEURONS", "PLIF", "SURROGATES", "SpikingNeuron", "make_neuron", "neuron_options",
           "resolved_spec"]

# NEURONS (kind -> factory of the neuron) and SURROGATES (name -> surrogate(v, alpha)) are registered in
# nni_snn.registry, torch-free, so that --help lists them; the implementations are here.


def neuron_options(kind: str) -> tuple[str, ...]:
    """The spec keys (besides ``kind``) that neuron ``kind`` takes: its factory's named keyword parameters."""
    parameters = inspect.signature(NEURONS.load(kind)).parameters.values()
    return tuple(p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def resolved_spec(spec: dict | None = None) -> dict:
    """``spec`` (see :func:`make_neuron`) with every option of its neuron spelt out, those it leaves out at the
    neuron's defaults: what arch.json records, so that a later change of a default does not change what a file
    means. ``{"kind": "relu"}`` has none."""
    spec = dict(spec or {})
    kind = spec.pop("kind", "lif")
    if kind not in NEURONS:
        raise ValueError(f"unknown neuron {kind!r}; valid: {', '.join(NEURONS)}")
    parameters = inspect.signature(NEURONS.load(kind)).parameters
    defaults = {name: parameters[name].default for name in neuron_options(kind)
                if parameters[name].default is not inspect.Parameter.empty}
    return {"kind": kind, **defaults, **spec}


class SpikingNeuron(nn.Module):
    """Base of the neurons that emit spikes ``[T, ...]`` of 0./1.: the spike monitor (``nni_snn.snn.spikes``) counts the
    output of every module of this class. Non-spiking stand-ins (the ReLU twin) do not derive from it."""


def rectangular(v: Tensor, alpha: float) -> Tensor:
    """Box surrogate (STBP): height ``alpha`` on ``|v| < 1 / (2 alpha)``, zero elsewhere (area 1)."""
    return (v.abs() < 0.5 / alpha).to(v.dtype).mul_(alpha)


def sigmoid(v: Tensor, alpha: float) -> Tensor:
    """Derivative of ``sigmoid(alpha * v)``: ``alpha * s * (1 - s)``; peak ``alpha / 4`` at ``v = 0``."""
    # s (1 - s) is even in v: with s = sigmoid(-alpha |v|) <= 1/2, s - s^2 does not cancel, and it is one pass over
    # one buffer (the LIF's backward is memory-bound; this takes fewer passes than computing sigmoid(-av) for 1 - s).
    s = v.abs().mul_(-alpha).sigmoid_()
    return s.addcmul_(s, s, value=-1.0).mul_(alpha)


def sigmoid_times(grad: Tensor, v: Tensor, alpha: float, out: Tensor | None = None) -> Tensor:
    """``grad * sigmoid(v, alpha)`` in 4 passes over the tensor instead of 6 (the LIF's backward is memory-bound): aten's
    ``sigmoid_backward`` forms ``grad * s * (1 - s)`` in one. ``v`` is consumed (overwritten). ``s (1 - s)`` cancels
    for ``s`` near 1, an absolute error of float's epsilon times ``alpha``, where the surrogate is ~0 anyway."""
    s = v.mul_(alpha).sigmoid_()
    return torch.ops.aten.sigmoid_backward.grad_input(grad, s, grad_input=s if out is None else out).mul_(alpha)


def arctan(v: Tensor, alpha: float) -> Tensor:
    """Derivative of ``atan(pi/2 * alpha * v) / pi + 1/2``: ``alpha/2 / (1 + (pi/2 * alpha * v)^2)``;
    peak ``alpha / 2`` at ``v = 0``."""
    return (math.pi / 2.0 * alpha * v).square_().add_(1.0).reciprocal_().mul_(alpha / 2.0)



# ``grad * surrogate(v)`` in one fused form, for a backward that never needs the surrogate alone.
SURROGATE_TIMES: dict[str, Callable[..., Tensor]] = {"sigmoid": sigmoid_times}


def _no_spike(u: Tensor, v_th: float) -> Tensor:
    """``1 - o = (u <= v_th)`` as a fresh tensor of u's dtype (much faster on CPU than ``torch.where``)."""
    return torch.le(u, v_th, out=torch.empty_like(u))


def _steps_like(x: Tensor) -> Tensor:
    """An empty ``[T, ...]`` buffer of ``x``'s shape and dtype in which every step has the layout of ``x[0]``: a
    channels-last map (nni_snn.snn.ops.Encoder) stays channels-last through the neurons, so the convs, BNs and pools
    that read their spikes need no layout conversion."""
    if x.dim() == 5 and x[0].is_contiguous(memory_format=torch.channels_last) and not x[0].is_contiguous():
        T, N = x.shape[:2]
        return torch.empty((T * N, *x.shape[2:]), dtype=x.dtype, device=x.device,
                           memory_format=torch.channels_last).view(x.shape)
    return torch.empty(x.shape, dtype=x.dtype, device=x.device)


class _LIFFunction(torch.autograd.Function):
    """Forward loop over T without an autograd graph; backward runs the recurrence in reverse.

    Written with in-place / ``out=`` ops: the neuron is memory-bound, so every avoided pass over the tensor
    (and, on CPU, every avoided large allocation) counts.
    """

    @staticmethod
    def forward(ctx, x: Tensor, tau: float | Tensor, v_th: float, surrogate: str, alpha: float,
                detach_reset: bool) -> Tensor:
        # Membrane potentials of all steps, in the input dtype: the only thing backward needs.
        u_all = _steps_like(x)
        u_all[0].copy_(x[0])
        for t in range(1, x.shape[0]):
            u_prev = u_all[t - 1]
            # u_t = tau * u_{t-1} * (1 - o_{t-1}) + x_t: a spike resets u_{t-1} to zero.
            torch.add(_no_spike(u_prev, v_th).mul_(u_prev).mul_(tau), x[t], out=u_all[t])
        ctx.save_for_backward(u_all)
        ctx.params = (tau, v_th, surrogate, alpha, detach_reset)
        spikes = torch.empty_like(u_all)
        return torch.gt(u_all, v_th, out=spikes)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        (u_all,) = ctx.saved_tensors
        return _lif_backward(u_all, grad_out, *ctx.params)[0], None, None, None, None, None


def _lif_backward(u_all: Tensor, grad_out: Tensor, tau: float | Tensor, v_th: float, surrogate: str, alpha: float,
                  detach_reset: bool, want_tau: bool = False) -> tuple[Tensor, Tensor | None]:
    """``(dL/dx, dL/dtau)`` of the LIF recurrence, in one reverse pass over T; ``dL/dtau`` (PLIF's) only when
    ``want_tau``: ``u_{t+1}`` depends on ``tau`` directly through ``u_t * (1 - o_t)``, so it adds up, step by step,
    the product already formed for ``dL/du_t`` with ``u_t``: one reduction per step, no extra buffer."""
    sg_fn = SURROGATES.load(surrogate)
    # With the reset detached, backward needs dL/do_t * sg(v) but never sg alone (7 passes per step instead of 10
    # for the default neuron).
    sg_times = SURROGATE_TIMES.get(surrogate) if detach_reset else None
    grad_x = torch.empty_like(u_all)
    # At least float32, so that half-precision inputs do not lose precision along the recurrence.
    acc = torch.promote_types(u_all.dtype, torch.float32)
    grad_tau = torch.zeros((), dtype=acc, device=u_all.device) if want_tau else None
    delta = None  # dL/du_{t+1}
    for t in range(u_all.shape[0] - 1, -1, -1):
        u = u_all[t].to(acc)
        # dL/du_t = dL/do_t * do_t/du_t + dL/du_{t+1} * du_{t+1}/du_t; dL/dx_t = dL/du_t
        in_place = acc == grad_x.dtype
        grad = grad_out[t] if in_place else grad_out[t].to(acc)
        if sg_times is not None:
            d = sg_times(grad, u - v_th, alpha, out=grad_x[t] if in_place else None)
        else:
            sg = sg_fn(u - v_th, alpha)
            d = torch.mul(grad, sg, out=grad_x[t]) if in_place else grad * sg
        if delta is not None:
            # du_{t+1}/du_t = tau * (1 - o_t)  [- tau * u_t * do_t/du_t if the reset is not detached]
            if grad_tau is not None:  # PLIF: tau is a 0-dim tensor on its device (no host sync)
                kept = _no_spike(u, v_th).mul_(delta)  # (1 - o_t) * dL/du_{t+1}
                grad_tau += torch.dot(kept.flatten(), u.flatten())
                d.addcmul_(kept, tau)
            elif isinstance(tau, float):
                d.addcmul_(_no_spike(u, v_th), delta, value=tau)
            else:
                d.addcmul_(_no_spike(u, v_th).mul_(tau), delta)
            if not detach_reset:
                d.addcmul_(delta, (u * sg).mul_(tau), value=-1.0)
        if not in_place:
            grad_x[t].copy_(d)
        delta = d
    return grad_x, grad_tau


class LIF(SpikingNeuron):
    """Multi-step LIF neuron: ``[T, ...]`` float input currents -> ``[T, ...]`` spikes (0./1., same dtype).

    Args:
        tau: membrane decay per step (paper: 0.2).
        v_threshold: firing threshold (paper: 0.5); a spike needs ``u > v_threshold``.
        surrogate: name in :data:`SURROGATES` used for ``dH/dv`` in backward.
        surrogate_alpha: the surrogate's sharpness (its ``alpha``); larger = taller and narrower. Named apart from
            the search's architecture weights, alpha.
        detach_reset: if True the reset term ``(1 - o_{t-1})`` is treated as a constant in backward.

    Defaults: the paper names no surrogate. ``sigmoid`` with ``surrogate_alpha = 4`` (SpikingJelly's default for its
    LIF neurons) has peak ``dH/dv = 1`` at the threshold and exponential tails: neurons far from threshold
    pass almost no gradient. Measured on digits (docs/benchmarks.md, "Learning"), the polynomial tails of
    ``arctan`` (alpha 2, this project's earlier default) let the surrogate's error pile up through the ~20
    LIF layers of a 5-cell network: 0.9136 with arctan against 0.9415 with sigmoid after 5 epochs (and in
    exploratory runs sigmoid with alpha 3 or 6 did worse than 4). The reset is detached by default: that
    drops a term of sign ``-u * sg`` from the recurrence, a common simplification that keeps backward
    cheaper and better conditioned; ``detach_reset=False`` keeps it.
    """

    def __init__(self, tau: float = 0.2, v_threshold: float = 0.5, surrogate: str = "sigmoid",
                 surrogate_alpha: float = 4.0, detach_reset: bool = True) -> None:
        super().__init__()
        if surrogate not in SURROGATES:
            raise ValueError(f"unknown surrogate {surrogate!r}; valid: {', '.join(SURROGATES)}")
        self.tau = float(tau)
        self.v_threshold = float(v_threshold)
        self.surrogate = surrogate
        self.surrogate_alpha = float(surrogate_alpha)
        self.detach_reset = bool(detach_reset)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 1 or x.shape[0] < 1:
            raise ValueError(f"LIF expects a time-major tensor [T, ...] with T >= 1, got shape {tuple(x.shape)}")
        if x.dtype in (torch.float16, torch.bfloat16):
            # Mixed precision (--precision bf16-mixed / 16-mixed): the convs run in half precision, but the membrane
            # recurrence and the threshold comparison run in float32, so a neuron fires exactly when its float32
            # membrane crosses V_th (bf16 keeps 8 bits of mantissa: u near 0.5 would be off by up to 0.002). The
            # spikes come back in the input's dtype, where 0 and 1 are exact.
            return _LIFFunction.apply(x.float(), self.tau, self.v_threshold, self.surrogate, self.surrogate_alpha,
                                      self.detach_reset).to(x.dtype)
        return _LIFFunction.apply(x, self.tau, self.v_threshold, self.surrogate, self.surrogate_alpha,
                                  self.detach_reset)

    def extra_repr(self) -> str:
        return (f"tau={self.tau}, v_threshold={self.v_threshold}, surrogate={self.surrogate!r}, "
                f"surrogate_alpha={self.surrogate_alpha}, detach_reset={self.detach_reset}")


class _PLIFFunction(torch.autograd.Function):
    """:class:`_LIFFunction` with a learnable decay: its loops give the spikes and ``dL/dx``, and the gradient of the
    decay follows from those. ``u_t = tau * u_{t-1} * (1 - o_{t-1}) + x_t`` depends on ``tau`` directly through
    ``u_{t-1} * (1 - o_{t-1})`` (the rest flows through ``u_{t-1}``), and ``dL/du_t = dL/dx_t``, so
    ``dL/dtau = sum_{t >= 1} dL/dx_t * u_{t-1} * (1 - o_{t-1})``; with ``tau = sigmoid(w)``,
    ``dL/dw = dL/dtau * tau * (1 - tau)``."""

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor, v_th: float, surrogate: str, alpha: float, detach_reset: bool) -> Tensor:
        # A 0-dim tensor on w's device: the LIF loops take it as they take a number, without a host sync.
        tau = torch.sigmoid(w.detach().float())
        ctx.w_dtype, ctx.w_shape = w.dtype, w.shape
        return _LIFFunction.forward(ctx, x, tau, v_th, surrogate, alpha, detach_reset)  # saves u_all, params

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        (u_all,) = ctx.saved_tensors
        grad_x, grad_tau = _lif_backward(u_all, grad_out, *ctx.params, want_tau=True)
        tau = ctx.params[0]
        grad_w = (grad_tau * (tau * (1.0 - tau))).to(ctx.w_dtype).reshape(ctx.w_shape)
        return grad_x, grad_w, None, None, None, None


class PLIF(SpikingNeuron):
    """Parametric LIF (Fang et al., ICCV 2021, "Incorporating learnable membrane time constant to enhance learning
    of spiking neural networks"): a :class:`LIF` whose decay ``tau = sigmoid(w)`` is learned, one scalar ``w`` per
    neuron layer, initialised so that ``tau`` equals the ``tau`` option. Same threshold, reset and surrogate as
    :class:`LIF`. The sigmoid keeps the decay in (0, 1) whatever the optimiser does, hence ``0 < tau < 1``.
    """

    def __init__(self, tau: float = 0.2, v_threshold: float = 0.5, surrogate: str = "sigmoid",
                 surrogate_alpha: float = 4.0, detach_reset: bool = True) -> None:
        super().__init__()
        if surrogate not in SURROGATES:
            raise ValueError(f"unknown surrogate {surrogate!r}; valid: {', '.join(SURROGATES)}")
        if not 0.0 < tau < 1.0:
            raise ValueError(f"plif needs 0 < tau < 1 (tau = sigmoid(w)), got tau {tau!r}")
        self.w = nn.Parameter(torch.tensor(math.log(tau / (1.0 - tau))))
        self.v_threshold = float(v_threshold)
        self.surrogate = surrogate
        self.surrogate_alpha = float(surrogate_alpha)
        self.detach_reset = bool(detach_reset)

    @property
    def tau(self) -> float:
        """The current decay, ``sigmoid(w)``."""
        return torch.sigmoid(self.w.detach()).item()

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 1 or x.shape[0] < 1:
            raise ValueError(f"PLIF expects a time-major tensor [T, ...] with T >= 1, got shape {tuple(x.shape)}")
        # As LIF: under mixed precision the membrane runs in float32, and the spikes come back in x's dtype.
        spikes = _PLIFFunction.apply(x.float() if x.dtype in (torch.float16, torch.bfloat16) else x, self.w,
                                     self.v_threshold, self.surrogate, self.surrogate_alpha, self.detach_reset)
        return spikes.to(x.dtype)

    def extra_repr(self) -> str:
        return (f"tau=sigmoid(w)={self.tau:.4g}, v_threshold={self.v_threshold}, surrogate={self.surrogate!r}, "
                f"surrogate_alpha={self.surrogate_alpha}, detach_reset={self.detach_reset}")


def relu_twin(**ignored) -> nn.Module:
    """The ANN twin's "neuron": ``nn.ReLU`` (no spikes, so the monitor does not count it); a spec's other keys,
    meant for the spiking neurons, are ignored."""
    return nn.ReLU()




def make_neuron(spec: dict | None = None) -> nn.Module:
    """The neuron a network uses at every spiking site, from a spec such as ``{"kind": "lif", "surrogate":
    "sigmoid", "surrogate_alpha": 4.0}`` (missing keys: the neuron's defaults; no kind: ``lif``). ``{"kind": "relu"}`` builds
    the ANN twin of a network: the same layers with ``nn.ReLU`` in place of every spiking neuron (it reads
    ``[T, ...]`` elementwise), so the accuracy an SNN pays for its binary spikes can be measured. Kinds:
    :data:`NEURONS`."""
    spec = dict(spec or {})
    kind = spec.pop("kind", "lif")
    if kind not in NEURONS:
        raise ValueError(f"unknown neuron {kind!r}; valid: {', '.join(NEURONS)}")
    return NEURONS.load(kind)(**spec)


def neuron_problem(spec) -> str | None:
    """What is wrong with a neuron spec (``None`` if nothing): it must build with :func:`make_neuron`."""
    if not isinstance(spec, dict):
        return f"expected an object such as {{\"kind\": \"lif\"}}, got {spec!r}"
    try:
        make_neuron(spec)
    except (TypeError, ValueError) as err:
        return str(err)
    return None
