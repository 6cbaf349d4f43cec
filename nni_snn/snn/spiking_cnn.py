"""Hand-designed reference networks that ``nni-snn retrain --baseline NAME`` trains by the same path as a searched
architecture (same data, optimiser, schedule, neuron and spike accounting), as the paper's Table 1 puts searched
SNNs next to hand-designed ones. ``--neuron relu`` gives any of them its ANN twin.
"""

from __future__ import annotations

from torch import Tensor, nn

from nni_snn.registry import BASELINES
from nni_snn.snn.neuron import make_neuron
from nni_snn.snn.ops import Encoder, TimeDistributed, batch_norm


class SpikingCNN(nn.Module):
    """conv3x3-BN-LIF-maxpool twice, then a linear layer on the flattened spike maps; logits averaged over T.

    The first conv + BN is the encoding layer (:class:`~nni_snn.snn.ops.Encoder`: on an image it runs once and is shared
    by the T steps; on event frames it runs on each); the second conv and the linear layer read binary spikes
    (max-pooling spikes keeps them binary).
    """

    def __init__(self, width: int, num_classes: int, in_channels: int, image_size: int, timesteps: int = 2,
                 neuron: dict | None = None) -> None:
        super().__init__()
        self.timesteps = timesteps
        self.stem = Encoder(in_channels, width, timesteps)
        self.spike1 = make_neuron(neuron)
        self.conv2 = TimeDistributed(nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(width, width, 3, padding=1, bias=False),
                                                   batch_norm(width)))
        self.spike2 = make_neuron(neuron)
        self.pool2 = TimeDistributed(nn.MaxPool2d(2))
        side = image_size // 4
        self.linear = nn.Linear(width * side * side, num_classes)

    def forward(self, inputs: Tensor) -> Tensor:
        x = self.spike1(self.stem(inputs))
        x = self.pool2(self.spike2(self.conv2(x)))
        return self.linear(x.flatten(2)).mean(0)


def build_baseline(name: str, *, width: int, num_classes: int, in_channels: int, image_size: int,
                   timesteps: int = 2, neuron: dict | None = None) -> nn.Module:
    """The baseline registered as ``name`` (:data:`nni_snn.registry.BASELINES`)."""
    return BASELINES.load(name)(width, num_classes, in_channels, image_size, timesteps, neuron)
