"""DARTS's evaluation regularisers for retraining: drop-path on the cells' edges and Cutout on training images.

The paper does not say how it regularises its 600-epoch retrain; these are what DARTS's evaluation uses (drop-path
0.2, Cutout 16 on CIFAR, gradient clip 5), written for time-major spiking tensors ``[T, N, C, H, W]``. The callback
that ramps drop-path over the epochs is :class:`nni_snn.train.lightning.DropPathSchedule`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset


def drop_path(x: Tensor, p: float) -> Tensor:
    """Zero whole samples of an edge's output ``[T, N, ...]`` with probability ``p`` and scale the kept ones by
    ``1 / (1 - p)``, so the expected output is unchanged.

    One draw per sample, shared by all T steps: dropping a path at some steps only would feed the LIFs downstream a
    current that flickers over time, which is not the "this path is absent" that drop-path means.
    """
    if p <= 0:
        return x
    keep = 1.0 - p
    mask = torch.empty((1, x.shape[1]) + (1,) * (x.dim() - 2), device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x * mask.div_(keep)  # scale the [1, N, 1, ...] mask, not the activation: one pass over x


class DropsPath(nn.Module):
    """Base of a module that drops its paths in training with probability ``drop_path_prob`` (DARTS's evaluation
    regulariser; the fixed network's cell nodes), which :func:`set_drop_path_prob` sets each epoch. A field, not an
    init argument: NNI traces init arguments into the architecture."""

    drop_path_prob = 0.0


def set_drop_path_prob(net: torch.nn.Module, p: float) -> int:
    """Set ``drop_path_prob`` on every :class:`DropsPath` module of ``net``; returns how many there were."""
    nodes = [m for m in net.modules() if isinstance(m, DropsPath)]
    for m in nodes:
        m.drop_path_prob = p
    return len(nodes)


class Cutout:
    """DARTS's Cutout with one hole: zero a ``size`` x ``size`` square of a ``[C, H, W]`` image tensor.

    The centre is uniform over the image and the square is clipped at the borders (so it can be smaller near an
    edge), as in DARTS. Applied after normalisation, so the hole is the dataset's mean colour. Draws from torch's
    generator: seeded by ``seed_everything``, per data loader worker too.
    """

    def __init__(self, size: int):
        self.size = size

    def __call__(self, image: Tensor) -> Tensor:
        if self.size <= 0:
            return image
        h, w = image.shape[-2:]
        y, x = torch.randint(h, ()).item(), torch.randint(w, ()).item()
        half = self.size // 2
        image = image.clone()
        image[..., max(0, y - half):min(h, y + half), max(0, x - half):min(w, x + half)] = 0
        return image

    def __repr__(self) -> str:
        return f"Cutout(size={self.size})"


class TransformedImages(Dataset):
    """``(image, label)`` pairs of ``dataset`` with ``transform`` applied to each image (for tensor datasets, which
    take no transform of their own)."""

    def __init__(self, dataset: Dataset, transform):
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        image, label = self.dataset[index]
        return self.transform(image), label
