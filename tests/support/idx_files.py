"""Small idx files in the layout of MNIST and Fashion-MNIST, for tests that read or download them."""

from __future__ import annotations

import gzip
import struct

import torch


def write_idx(folder, per_class: int = 6, test_per_class: int = 2, compress: bool = True, size: int = 28) -> None:
    """The four standard idx files (as Debian's dataset-fashion-mnist installs them, and as the official mirrors
    serve them): class c's images are brighter where c is larger, so the classes are separable."""
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    for prefix, count in (("train", per_class), ("t10k", test_per_class)):
        labels = torch.arange(10).repeat_interleave(count)
        images = (torch.rand(len(labels), size, size, generator=generator) * 100 + labels[:, None, None] * 15)
        raw_images = struct.pack(">IIII", 0x0803, len(labels), size, size) + images.to(torch.uint8).numpy().tobytes()
        raw_labels = struct.pack(">II", 0x0801, len(labels)) + labels.to(torch.uint8).numpy().tobytes()
        for name, raw in ((f"{prefix}-images-idx3-ubyte", raw_images), (f"{prefix}-labels-idx1-ubyte", raw_labels)):
            if compress:
                (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
