"""Attention at the cell's concatenation (paper section 3.3): input and output ``[T, N, C, H, W]``.

- ``"ct"`` (:class:`ChannelTimeAttention`, eq. 5-6): ECA-style, one tiny conv over the (time, channel) map
  of spatial averages; a weight per (t, n, c).
- ``"ma"`` (:class:`MultiDimAttention`, eq. 7-10): CBAM-style, channel x time attention from avg- and
  max-pooled statistics through a shared MLP, then spatial attention per time step.

The attention gates are analog and sit on the analog cell output, so their own conv/MLP layers are the
documented exception to "every synaptic layer sees spikes". All weights are sigmoids in (0, 1): attention only
ever scales features down.

Attention types are a registry (:data:`nni_snn.registry.ATTENTIONS`): a new one is its module class, built as
``cls(channels, timesteps)``, and one registration there, which the options, arch.json and ``nni-snn front`` read.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from nni_snn.registry import ATTENTIONS
from nni_snn.snn.ops import fold, unfold
from nni_snn.snn.spikes import ReadsAnalog

__all__ = ["ATTENTIONS", "ChannelTimeAttention", "MultiDimAttention", "eca_kernel_size", "make_attention"]


def eca_kernel_size(channels: int, gamma: int = 2, b: int = 1) -> int:
    """ECA's adaptive kernel size: ``|(log2 C + b) / gamma|`` made odd (C=16, 64 -> 3; C=128 -> 5)."""
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


class ChannelTimeAttention(ReadsAnalog):
    """CT attention: spatial average -> map ``[N, 1, T, C]`` -> one ``(kt, k)`` conv across time and
    channels -> sigmoid -> scale. ``k`` is ECA's adaptive channel kernel, ``kt`` the smallest odd number
    ``>= T`` so every step sees all others. Only ``kt * k`` parameters."""

    def __init__(self, channels: int, timesteps: int, gamma: int = 2, b: int = 1) -> None:
        super().__init__()
        self.k = eca_kernel_size(channels, gamma, b)
        self.kt = timesteps if timesteps % 2 else timesteps + 1
        self.conv = nn.Conv2d(1, 1, (self.kt, self.k), padding=(self.kt // 2, self.k // 2), bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        # A sum times 1/count: the mean, with a backward that expands instead of dividing a full-size tensor.
        stats = (x.sum(dim=(3, 4)) * (1.0 / (x.shape[3] * x.shape[4]))).transpose(0, 1).unsqueeze(1)  # [N, 1, T, C]
        w = self.sigmoid(self.conv(stats))  # [N, 1, T, C]
        return x * w.squeeze(1).transpose(0, 1)[..., None, None]  # [T, N, C, 1, 1]


class MultiDimAttention(ReadsAnalog):
    """MA attention (CBAM over channel x time, then space).

    Channel x time: spatial avg and max per (t, n, c) go through one MLP of 1x1 convs over channels
    (``C -> max(C // reduction, 1) -> C``, ReLU between), summed, sigmoid. The MLP is shared over time so its
    size does not depend on T, yet the weight still differs per channel *and* per time step because the
    statistics it sees are per (c, t). Spatial: channel-wise max and mean -> ``spatial_kernel`` conv ->
    sigmoid, per time step.
    """

    def __init__(self, channels: int, timesteps: int, reduction: int = 16, spatial_kernel: int = 7) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1, bias=False),
        )
        self.spatial = nn.Conv2d(2, 1, spatial_kernel, padding=spatial_kernel // 2, bias=False)
        self.sigmoid = nn.Sigmoid()
        self.timesteps = timesteps

    def forward(self, x: Tensor) -> Tensor:
        T = x.shape[0]
        y = fold(x)  # [T*N, C, H, W]
        c, h, w = y.shape[1:]
        # Means as sums times 1/count and maxima by `max` (with indices) rather than `mean` and `amax`: the same
        # values, but their backward passes are an expand and a scatter, where `mean`'s divides a full-size tensor
        # and `amax`'s builds a tie mask, counts it and divides (measured: a tenth of a T=4 retrain step on CPU).
        avg = y.sum(dim=(2, 3), keepdim=True) * (1.0 / (h * w))
        mx = y.flatten(2).max(dim=2, keepdim=True).values.unsqueeze(-1)
        y = y * self.sigmoid(self.mlp(avg) + self.mlp(mx))
        s = torch.cat([y.max(dim=1, keepdim=True).values, y.sum(dim=1, keepdim=True) * (1.0 / c)], dim=1)  # eq. 9
        y = y * self.sigmoid(self.spatial(s))
        return unfold(y, T)

    def extra_repr(self) -> str:
        return f"timesteps={self.timesteps}"


def make_attention(kind: str, channels: int, timesteps: int) -> nn.Module:
    """Build the attention named ``kind`` (registered in :data:`ATTENTIONS`); ``"none"`` is ``nn.Identity()``."""
    entry = ATTENTIONS.entry(kind)
    return nn.Identity() if entry.target is None else entry.load()(channels, timesteps)
