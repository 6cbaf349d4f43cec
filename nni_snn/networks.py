"""Networks from architecture files: the application-level join of the arch file and the model space.

``build_network`` lives here, not in ``nni_snn.files.archfile``, because it instantiates ``search_spaces.SNNDartsSpace``:
the core modules of ``nni_snn`` import nothing from ``search_spaces`` or ``strategies`` (tests/test_layers.py).
"""

from __future__ import annotations

from pathlib import Path

import torch

from nni_snn.errors import ArchError
from nni_snn.files.archfile import load_arch, spec_of
from nni_snn.files.genotype import depth_problem, sample_from_genotype
from nni_snn.nni_compat import model_context
from search_spaces import SNNDartsSpace

__all__ = ["build_network", "count_parameters", "network_parameters"]


def build_network(arch: str | Path | dict, *, width: int, num_cells: int, num_classes: int, in_channels: int = 3,
                  auxiliary: bool = False, image_size: int | None = None, **settings):
    """A plain ``nn.Module`` for ``arch`` at any width and depth: images ``[N, C, H, W]`` -> logits.

    ``settings``: network settings (:class:`nni_snn.files.spec.NetworkSpec`'s fields, e.g. ``timesteps=4``) in place of
    the file's; those None keep the file's. ``image_size`` (the input's side) is needed by the spatial head. The
    network has no NNI mutables left and only the chosen edges' weights. A depth that needs a cell type the file has
    none of (searched with 1 or 2 cells: no reduction cell) raises :class:`ArchError`.
    """
    source = str(arch) if isinstance(arch, (str, Path)) else "architecture"
    arch = load_arch(arch)
    problem = depth_problem(arch["genotype"], num_cells)
    if problem:
        raise ArchError(f"{source}: {problem}")
    spec = spec_of(arch).merged(**settings)
    with model_context(sample_from_genotype(arch["genotype"])):
        return SNNDartsSpace(width=width, num_cells=num_cells, num_classes=num_classes, in_channels=in_channels,
                             auxiliary=auxiliary, image_size=image_size, **spec.settings())


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def network_parameters(net: torch.nn.Module) -> dict:
    """``params``: the network a user deploys, without the auxiliary head (a training aid);
    ``params_with_auxiliary_head``: with it, as DARTS-style papers count (equal when ``net`` has none)."""
    total = count_parameters(net)
    auxiliary = getattr(net, "auxiliary_head", None)
    return {"params": total - (count_parameters(auxiliary) if auxiliary is not None else 0),
            "params_with_auxiliary_head": total}
