"""Spiking candidate operations of the DARTS cell (paper section 3.2) and the cell's input preprocessing.

Every op takes binary SPIKES ``[T, N, C, H, W]`` (the caller turns each cell state into spikes once, with
its own LIF, and shares them among all edges leaving that state) and returns an analog ``[T, N, C, H', W']``
with ``H' = ceil(H / stride)``. Hence no op has a LIF at its input; sep convs have one in the middle, where
DARTS has its inner ReLU, so that every synaptic layer sees spikes. A depthwise conv followed directly by its
pointwise 1x1 conv counts as one factorised synaptic layer: spikes enter the depthwise conv.

Stateless layers (conv, BN, pool) run on the folded view ``[T*N, C, H, W]``; consecutive ones are grouped in
one :class:`TimeDistributed` so the tensor is folded once per group.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from nni_snn.registry import Registry
from nni_snn.snn.neuron import make_neuron
from nni_snn.snn.spikes import ReadsAnalog

__all__ = [
    "BN_EPS",
    "OPS",
    "PRIMITIVES",
    "DepthwiseConv2d",
    "DilConv",
    "DwPwBN",
    "Encoder",
    "FactorizedReduce",
    "PoolBN",
    "Preprocess",
    "SepConv",
    "StridedPointwiseConv2d",
    "TimeDistributed",
    "WholeMapConv2d",
    "batch_norm",
    "cat_channels",
    "fold",
    "unfold",
]

# BN's epsilon in every network here. Spike maps (and pooled spike maps) have channels that stay silent, or fire
# everywhere, for a whole batch: zero variance, and BN's backward then multiplies their gradient by 1/sqrt(eps),
# 316 at PyTorch's default 1e-5. In an exploratory run on digits (batch 32, a cell of pools and dilated convs) such
# channels drove the gradient norm to 1e5 within 40 steps and the network never learned; at 0.01 the gain is 10,
# the same network learned, and channels of ordinary variance (~0.2 for spikes, ~1 for convs) barely notice.
BN_EPS = 1e-2


def batch_norm(channels: int, affine: bool = True, dims: int = 2) -> nn.Module:
    """``nn.BatchNorm2d`` (``dims=2``) or ``nn.BatchNorm1d`` (``dims=1``) with :data:`BN_EPS`."""
    return (nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(channels, eps=BN_EPS, affine=affine)


def fold(x: Tensor) -> Tensor:
    """``[T, N, ...] -> [T*N, ...]`` so that stateless layers treat time steps as extra samples."""
    return x.flatten(0, 1)


def unfold(y: Tensor, T: int) -> Tensor:
    """Inverse of :func:`fold`: ``[T*N, ...] -> [T, N, ...]``."""
    return y.reshape(T, -1, *y.shape[1:])


def _layout(x: Tensor) -> torch.memory_format:
    """The memory format ``x`` is dense in: channels-last maps stay channels-last."""
    return torch.channels_last if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) \
        else torch.contiguous_format


class _CatChannels(torch.autograd.Function):
    """``torch.cat(maps, dim=1)`` of ``[N, C_i, H, W]`` maps whose backward hands each input a *dense* gradient.

    Autograd's own gives every input a channel slice of the output's gradient: a strided view that BN's and
    the convs' CPU kernels read on a slow path (a channels-last BN forward + backward of [256, 32, 14, 14] took
    26 ms with such a gradient against 8 ms with a dense one). One copy per input is cheaper."""

    @staticmethod
    def forward(ctx, *maps: Tensor) -> Tensor:
        ctx.channels = [m.shape[1] for m in maps]
        ctx.layouts = [_layout(m) for m in maps]
        return torch.cat(maps, dim=1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        parts = grad.split(ctx.channels, dim=1)
        return tuple(part.contiguous(memory_format=layout) for part, layout in zip(parts, ctx.layouts))


def cat_channels(states: list[Tensor]) -> Tensor:
    """Time-major ``[T, N, C_i, H, W]`` states concatenated along the channels, ``[T, N, sum C_i, H, W]``, in the
    layout of the maps (:class:`_CatChannels`: dense gradients for each state)."""
    return unfold(_CatChannels.apply(*(fold(s) for s in states)), states[0].shape[0])


class TimeDistributed(nn.Module):
    """Apply a stateless module (conv/BN/pool stack) to every time step at once via the folded view."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        return unfold(self.module(fold(x)), x.shape[0])


class Encoder(ReadsAnalog):
    """The encoding layer: conv 3x3 + BN from the input to the current of the first neurons, ``[T, N, C, H, W]``.

    An image ``[N, C, H, W]`` is static, so the conv runs once and its output is the current at every one of the T
    steps (the image is repeated, not convolved T times). Event frames ``[N, T, P, H, W]`` (P polarity channels,
    :mod:`nni_snn.data.events`) differ from step to step: the conv runs on each frame, and since its input is then
    events, not pixels, :mod:`nni_snn.snn.spikes` counts it as a synaptic layer (SOPs: one accumulation per event per
    output it reaches), not as MACs: ``reads_events`` (:class:`~nni_snn.snn.spikes.ReadsAnalog`) says which, at each call.
    """

    def __init__(self, in_channels: int, channels: int, timesteps: int, stride: int = 1) -> None:
        super().__init__()
        self.timesteps = timesteps
        # stride 2: the first neurons, and all that follow, see half the resolution (a quarter of the positions).
        self.conv = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn = batch_norm(channels)

    def forward(self, x: Tensor) -> Tensor:
        self.reads_events = x.dim() == 5
        if x.dim() == 5:  # event frames, batch-major as a data loader stacks them
            if x.shape[1] != self.timesteps:
                raise ValueError(f"the input has {x.shape[1]} frames per sample but the network runs "
                                 f"{self.timesteps} time steps; make the frames with T = {self.timesteps}")
            frames = x.transpose(0, 1)
            return unfold(self.bn(self.conv(fold(frames))), self.timesteps)
        current = self.conv(x)
        if current.device.type == "cpu":
            # Channels-last from here on: the neurons keep the layout of what they read (nni_snn.snn.neuron), and the
            # CPU's convs, BNs and max pools of these narrow maps run 1.5-2x faster in it (docs/benchmarks.md, "A
            # Fashion-MNIST epoch on the CPU"). Same values: the layout is not the tensor.
            current = current.contiguous(memory_format=torch.channels_last)
        current = self.bn(current)
        return current.unsqueeze(0).expand(self.timesteps, *current.shape)


class PoolBN(nn.Module):
    """3x3 max/avg pooling followed by BN. DARTS adds the BN only in the search cell (to rescale the pooled
    output against the BN-ended conv ops); we keep it always so search and retrain ops are identical."""

    def __init__(self, kind: str, C: int, stride: int, affine: bool = True) -> None:
        super().__init__()
        if kind == "max":
            pool: nn.Module = nn.MaxPool2d(3, stride=stride, padding=1)
        elif kind == "avg":
            pool = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
        else:
            raise ValueError(f"unknown pooling {kind!r}; valid: max, avg")
        self.body = TimeDistributed(nn.Sequential(pool, batch_norm(C, affine)))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class _DepthwiseConvFunction(torch.autograd.Function):
    """Depthwise conv whose input gradient is computed as a forward conv with the flipped kernel.

    On CPU, oneDNN's backward-data for depthwise convs with dilation or 5x5 kernels is 10-50x slower than its
    forward (measured: dilated 5x5, 16x32x32x8 fp32: ~10 ms against ~0.4 ms); for stride 1 the input gradient
    *is* a forward conv (``padding' = dilation * (k - 1) - padding``), so we run that. The weight gradient
    keeps ATen's kernel. Saves what ``nn.Conv2d`` saves (input and weight).
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, padding: tuple[int, int], dilation: tuple[int, int]) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.conf = (padding, dilation)
        return F.conv2d(x, weight, None, 1, padding, dilation, weight.shape[0])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        x, weight = ctx.saved_tensors
        padding, dilation = ctx.conf
        groups = weight.shape[0]
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            pad_t = tuple(d * (k - 1) - p for d, k, p in zip(dilation, weight.shape[-2:], padding))
            grad_x = F.conv2d(grad_out, weight.flip(-2, -1), None, 1, pad_t, dilation, groups)
        if ctx.needs_input_grad[1]:
            grad_w = torch.ops.aten.convolution_backward(
                grad_out, x, weight, None, [1, 1], list(padding), list(dilation), False, [0, 0], groups,
                [False, True, False])[1]
        return grad_x, grad_w, None, None


class DepthwiseConv2d(nn.Conv2d):
    """``nn.Conv2d(C, C, k, groups=C, bias=False)`` (same parameters and state dict) with a faster CPU backward
    for the shapes where oneDNN's is slow (stride 1, dilated or 5x5: :class:`_DepthwiseConvFunction`)."""

    def __init__(self, channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1) -> None:
        super().__init__(channels, channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
                         groups=channels, bias=False)
        k = self.kernel_size
        self._fast_cpu_backward = (self.stride == (1, 1) and self.padding_mode == "zeros"
                                   and all(kk % 2 == 1 and p <= d * (kk - 1)
                                           for kk, p, d in zip(k, self.padding, self.dilation))
                                   and (self.dilation != (1, 1) or max(k) >= 5))

    def forward(self, x: Tensor) -> Tensor:
        # Under autocast (--precision bf16-mixed on the CPU) the conv inside the custom function runs in half
        # precision while its backward's conv would mix that gradient with the float32 weight: autocast's own conv
        # handles both.
        if (self._fast_cpu_backward and x.device.type == "cpu" and torch.is_grad_enabled()
                and x.dtype == self.weight.dtype and not torch.is_autocast_enabled("cpu")):
            return _DepthwiseConvFunction.apply(x, self.weight, self.padding, self.dilation)
        return super().forward(x)


class DwPwBN(nn.Sequential):
    """Depthwise kxk conv + pointwise 1x1 conv (one factorised synaptic layer) + BN, as ``nn.Sequential`` (its state
    dict and :mod:`nni_snn.snn.spikes`'s pairing of the two convs are a plain Sequential's).

    ``recompute_depthwise`` (the supernet's edges, ``search_spaces.snn_darts``): the pointwise conv does not keep
    the depthwise output; backward recomputes it from the input spikes (which the depthwise conv keeps for its own
    weight gradient). A supernet keeps all 7 candidates' activations of every edge, and these depthwise outputs were
    about a fifth of what its weight step saved (160 of 838 MB, docs/benchmarks.md): one saved activation
    less per layer for one more depthwise forward in backward, with the same values and gradients.
    """

    def __init__(self, C_in: int, C_out: int, k: int, stride: int, padding: int, dilation: int,
                 affine: bool, recompute_depthwise: bool = False) -> None:
        super().__init__(DepthwiseConv2d(C_in, k, stride=stride, padding=padding, dilation=dilation),
                         nn.Conv2d(C_in, C_out, 1, bias=False), batch_norm(C_out, affine))
        self.recompute_depthwise = recompute_depthwise

    def forward(self, x: Tensor) -> Tensor:
        depthwise, pointwise, bn = self
        hidden = depthwise(x)
        if not (self.recompute_depthwise and hidden.requires_grad):
            return bn(pointwise(hidden))
        device = x.device.type
        # Backward may run on another thread (CUDA): recompute under the forward's autocast, not the thread's.
        amp = (torch.is_autocast_enabled(device), torch.get_autocast_dtype(device))

        # Autograd keeps both hooks with every tensor it saves here: they must not hold the depthwise output
        # itself, only its address (pack runs while it is alive) and what recomputes it.
        hidden_at = (hidden.data_ptr(), hidden.shape)

        def pack(saved: Tensor):
            return None if (saved.data_ptr(), saved.shape) == hidden_at else saved

        def unpack(packed):
            if packed is not None:
                return packed
            with torch.no_grad(), torch.autocast(device, dtype=amp[1], enabled=amp[0]):
                return nn.Conv2d.forward(depthwise, x)  # the module's forward without its hooks (spike counting)

        with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
            out = pointwise(hidden)
        return bn(out)


class SepConv(nn.Module):
    """DARTS separable conv, twice, with a LIF where DARTS has its inner ReLU."""

    def __init__(self, C_in: int, C_out: int, k: int, stride: int, affine: bool = True,
                 neuron: dict | None = None, recompute_depthwise: bool = False) -> None:
        super().__init__()
        self.first = TimeDistributed(DwPwBN(C_in, C_in, k, stride, k // 2, 1, affine, recompute_depthwise))
        self.lif = make_neuron(neuron)
        self.second = TimeDistributed(DwPwBN(C_in, C_out, k, 1, k // 2, 1, affine, recompute_depthwise))

    def forward(self, x: Tensor) -> Tensor:
        return self.second(self.lif(self.first(x)))


class DilConv(nn.Module):
    """DARTS dilated separable conv (dilation 2); no inner neuron (DARTS has no inner ReLU here)."""

    def __init__(self, C_in: int, C_out: int, k: int, stride: int, affine: bool = True,
                 recompute_depthwise: bool = False) -> None:
        super().__init__()
        self.body = TimeDistributed(DwPwBN(C_in, C_out, k, stride, k - 1, 2, affine, recompute_depthwise))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class StridedPointwiseConv2d(nn.Conv2d):
    """``nn.Conv2d(C_in, C_out, 1, stride=s, bias=False)`` (same parameters, attributes and state dict) that keeps
    every s-th pixel first and then runs a 1x1 conv at stride 1: the same values and gradients.

    On the CPU, oneDNN's backward of a strided 1x1 conv walks the whole input: measured at 1 thread on a
    [256, 32, 14, 14] map to 16 channels, forward + backward took 28 ms against 7.5 ms for the subsampled one
    (docs/benchmarks.md, "A Fashion-MNIST epoch on the CPU"). The module still receives the
    full map, so the spike accounting's hooks (nni_snn.snn.spikes) see what they saw."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2) -> None:
        super().__init__(in_channels, out_channels, 1, stride=stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        sh, sw = self.stride
        # Made dense (in the map's own layout): oneDNN copies a strided input anyway, and a quarter of the map is cheap.
        return F.conv2d(x[..., ::sh, ::sw].contiguous(memory_format=_layout(x)), self.weight, self.bias, 1, 0, 1,
                        self.groups)


class WholeMapConv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters, attributes and state dict) that, on a map exactly the size of its kernel (no
    padding: one output pixel), runs as the linear layer it then is: the auxiliary head's 2x2 conv on its 2x2 map,
    128 -> 768 channels, forward + backward at batch 256 took 36 ms as oneDNN's conv and 11 ms as a linear layer
    (1 thread). Any other map takes the conv; the module's input and output are the conv's either way."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 4 and tuple(x.shape[-2:]) == self.kernel_size and self.padding == (0, 0) and self.groups == 1:
            out = F.linear(x.flatten(1), self.weight.flatten(1), self.bias)
            return out.view(*out.shape, 1, 1)
        return super().forward(x)


class _FactorizedReduce2d(nn.Module):
    """Folded-view core of :class:`FactorizedReduce`: two offset 1x1 stride-2 convs, concat, BN."""

    def __init__(self, C_in: int, C_out: int, affine: bool) -> None:
        super().__init__()
        if C_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {C_out}")
        self.conv_1 = StridedPointwiseConv2d(C_in, C_out // 2)
        self.conv_2 = StridedPointwiseConv2d(C_in, C_out // 2)
        self.bn = batch_norm(C_out, affine)

    def forward(self, x: Tensor) -> Tensor:
        # Shift by one pixel; zero-pad bottom/right so both halves have ceil(H/2) rows for odd H too.
        shifted = F.pad(x[..., 1:, 1:], (0, 1, 0, 1))
        return self.bn(_CatChannels.apply(self.conv_1(x), self.conv_2(shifted)))


class FactorizedReduce(nn.Module):
    """Halve H and W without discarding pixels (DARTS). Input: spikes ``[T, N, C_in, H, W]``; no LIF inside,
    zero padding keeps the conv input binary."""

    def __init__(self, C_in: int, C_out: int, affine: bool = True) -> None:
        super().__init__()
        self.body = TimeDistributed(_FactorizedReduce2d(C_in, C_out, affine))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class Preprocess(nn.Module):
    """Cell input preprocessing on the input state's spikes: 1x1 conv -> BN, or, after a reduction cell
    (``reduce=True``), :class:`FactorizedReduce` to match the spatial size.

    It has no neuron of its own: the state it reads was turned into spikes once, by the neuron population of the
    cell (or stem) that produced it, and those spikes are shared by every consumer (``search_spaces.snn_darts``).
    """

    def __init__(self, C_in: int, C_out: int, reduce: bool = False, affine: bool = True) -> None:
        super().__init__()
        if reduce:
            self.body: nn.Module = FactorizedReduce(C_in, C_out, affine)
        else:
            self.body = TimeDistributed(nn.Sequential(nn.Conv2d(C_in, C_out, 1, bias=False),
                                                      batch_norm(C_out, affine)))

    def forward(self, spikes: Tensor) -> Tensor:
        return self.body(spikes)


def _skip(C: int, stride: int, affine: bool, neuron: dict | None = None, recompute_depthwise: bool = False) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(C, C, affine)  # no neuron inside


# Op name -> factory ``(C, stride, affine, neuron=None, recompute_depthwise=False)``; ``neuron`` is a spec for
# :func:`make_neuron`, ``recompute_depthwise`` :class:`DwPwBN`'s (the supernet's edges).
OPS = Registry("operation")
OPS.register("max_pool_3x3", "3x3 max pooling + BN",
             lambda C, stride, affine, neuron=None, recompute_depthwise=False: PoolBN("max", C, stride, affine))
OPS.register("avg_pool_3x3", "3x3 average pooling + BN",
             lambda C, stride, affine, neuron=None, recompute_depthwise=False: PoolBN("avg", C, stride, affine))
OPS.register("skip_connect", "identity, or a factorised reduction at stride 2", _skip)
OPS.register("sep_conv_3x3", "separable 3x3 conv, twice",
             lambda C, stride, affine, neuron=None, recompute_depthwise=False:
             SepConv(C, C, 3, stride, affine, neuron, recompute_depthwise))
OPS.register("sep_conv_5x5", "separable 5x5 conv, twice",
             lambda C, stride, affine, neuron=None, recompute_depthwise=False:
             SepConv(C, C, 5, stride, affine, neuron, recompute_depthwise))
OPS.register("dil_conv_3x3", "dilated separable 3x3 conv",
             lambda C, stride, affine, neuron=None, recompute_depthwise=False:
             DilConv(C, C, 3, stride, affine, recompute_depthwise))
OPS.register("dil_conv_5x5", "dilated separable 5x5 conv",
             lambda C, stride, affine, neuron=None, recompute_depthwise=False:
             DilConv(C, C, 5, stride, affine, recompute_depthwise))

# The candidate operations of an edge, in the order of its alpha vector: the table's keys, so the two cannot drift.
PRIMITIVES = list(OPS)
