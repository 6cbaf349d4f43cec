"""Architecture selection by perturbation (DARTS-PT: Wang et al., "Rethinking Architecture Selection in Differentiable
NAS", ICLR 2021), on the supernet a DARTS search trained.

DARTS writes, per edge, the operation of largest alpha. In a short search alpha hardly moves from uniform (the
search-quality benchmark measured a largest weight per edge of 0.1436 against 1/7 = 0.1429 after 3 epochs), so that
choice says little; the supernet's weights did train. DARTS-PT asks the supernet instead: an operation matters as much
as the supernet suffers without it.

- Operations: for each edge and each candidate, the supernet's validation loss with that candidate's output removed
  from the edge's mix (its weight set to 0, the others kept as they are); the edge keeps the candidate whose removal
  raises the loss most.
- Inputs: for each node and each incoming edge, the loss with the whole edge removed; the node keeps the two edges
  whose removal raises it most.

Departures from the paper, for a CPU budget: every perturbation is of the trained supernet as it is (the paper
discretises edge by edge and fine-tunes in between), and the score is the loss, not the accuracy, since a few hundred
validation images resolve an accuracy only to tenths of a point. An edge label names the edge in every cell of its
type (NNI shares alpha by label), so a perturbation removes it from all of them, as the genotype would.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict

import torch
from torch import nn

from nni_snn.files.genotype import CELL_TYPES
from nni_snn.nni_compat import DifferentiableMixedLayer, mixed_softmax, set_mixed_softmax


class _MaskedSoftmax(nn.Module):
    """An edge's softmax(alpha) with some candidates' weights multiplied by 0: the mix without them."""

    def __init__(self, softmax: nn.Module, keep: torch.Tensor):
        super().__init__()
        self.softmax, self.keep = softmax, keep

    def forward(self, alpha: torch.Tensor) -> torch.Tensor:
        return self.softmax(alpha) * self.keep.to(alpha.device)


@contextlib.contextmanager
def _removed(layers: list[DifferentiableMixedLayer], drop: list[int]):
    """Within the block, the candidates ``drop`` of every layer in ``layers`` (one edge, all its cells) output nothing."""
    keep = torch.ones(len(layers[0].names))
    keep[drop] = 0.0
    saved = [mixed_softmax(layer) for layer in layers]
    try:
        for layer, softmax in zip(layers, saved):
            set_mixed_softmax(layer, _MaskedSoftmax(softmax, keep))
        yield
    finally:
        for layer, softmax in zip(layers, saved):
            set_mixed_softmax(layer, softmax)


def _mixed_edges(supernet: nn.Module) -> dict[str, list[DifferentiableMixedLayer]]:
    edges: dict[str, list[DifferentiableMixedLayer]] = defaultdict(list)
    for module in supernet.modules():
        if isinstance(module, DifferentiableMixedLayer):
            edges[module.label].append(module)
    return dict(edges)


@torch.no_grad()
def validation_loss(supernet: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Mean cross-entropy of ``supernet`` (eval mode) over ``batches``."""
    total, count = 0.0, 0
    for x, y in batches:
        total += nn.functional.cross_entropy(supernet(x), y, reduction="sum").item()
        count += len(y)
    return total / count


def select_by_perturbation(supernet: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[dict, dict]:
    """The NNI sample DARTS-PT selects from the trained ``supernet`` (a DARTS-mutated ``SNNDartsSpace``), scored on
    ``batches`` of validation data already on the supernet's device; and the scores: the supernet's own loss, and per
    edge label the loss increase without each candidate (``ops``) and without the whole edge (``edges``)."""
    edges = _mixed_edges(supernet)
    was_training = supernet.training
    supernet.eval()
    try:
        base = validation_loss(supernet, batches)
        op_rise, edge_rise = {}, {}
        for label, layers in edges.items():
            names = layers[0].names
            rise = []
            for k in range(len(names)):
                with _removed(layers, [k]):
                    rise.append(validation_loss(supernet, batches) - base)
            op_rise[label] = dict(zip(names, rise))
            with _removed(layers, list(range(len(names)))):
                edge_rise[label] = validation_loss(supernet, batches) - base
    finally:
        supernet.train(was_training)
    sample = {}
    for cell_type in CELL_TYPES:
        if f"{cell_type}/op_0_0" not in op_rise:  # no cell of this type in the supernet (1 or 2 cells)
            continue
        k = 0
        while f"{cell_type}/op_{k}_0" in op_rise:  # each node of the cell (its edge from c_{k-2} always exists)
            labels = [f"{cell_type}/op_{k}_{i}" for i in range(k + 2)]
            ranked = sorted(range(k + 2), key=lambda i: -edge_rise[labels[i]])  # stable: ties keep the lower input
            sample[f"{cell_type}/input_{k}"] = sorted(ranked[:2])
            for label in labels:
                sample[label] = max(op_rise[label], key=op_rise[label].get)
            k += 1
    return sample, {"loss": base, "ops": op_rise, "edges": edge_rise}
