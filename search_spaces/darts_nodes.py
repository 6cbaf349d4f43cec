"""The DARTS form of a node's input choice, plugged into NNI's one-shot machinery.

NNI's stock differentiable InputChoice weighs inputs by an alpha of its own. DARTS (and the paper, eq. 11) sums
*all* incoming mixed edges and derives a node's two inputs afterwards from the operation weights: per node, the
2 incoming edges whose strongest operation has the largest softmax weight. This module does exactly that, so the
space searched by NNI's DARTS (and by MADarts) is the paper's.
"""

from __future__ import annotations

import torch
from nni.nas.nn.pytorch import InputChoice
from nni.nas.oneshot.pytorch.supermodule.base import BaseSuperNetModule
from torch import nn


def derive_inputs(edge_weights: list[torch.Tensor], n_chosen: int = 2) -> list[int]:
    """DARTS derivation: indices of the ``n_chosen`` edges whose strongest operation weighs most (sorted)."""
    strengths = torch.stack([w.max() for w in edge_weights])
    return sorted(torch.argsort(-strengths, stable=True)[:n_chosen].tolist())


class DartsNodeInput(InputChoice, BaseSuperNetModule):
    """Sums every incoming edge; exports the two strongest edges of the node."""

    def __init__(self, n_candidates: int, label: str, edge_alphas: list[nn.Parameter], softmax: nn.Module):
        super().__init__(n_candidates, n_chosen=2, reduction="sum", label=label)
        # A plain list: the alphas belong to the edges' mixed layers and must not be registered twice.
        self._edge_alphas = list(edge_alphas)
        self._softmax = softmax

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return sum(inputs)

    def resample(self, memo):
        return {}

    def export(self, memo):
        if self.label in memo:
            return {}
        with torch.no_grad():
            return {self.label: derive_inputs([self._softmax(a) for a in self._edge_alphas])}

    def export_probs(self, memo):
        return {}  # the edges' operation probabilities already describe this choice

    @classmethod
    def mutate(cls, module, name, memo, mutate_kwargs):
        if type(module) is InputChoice and hasattr(module, "edge_labels"):
            missing = [label for label in module.edge_labels if label not in memo]
            if missing:
                raise KeyError(f"Edge alphas {missing} of node {module.label} not found.")
            return cls(module.n_candidates, module.label, [memo[label] for label in module.edge_labels],
                       mutate_kwargs.get("softmax", nn.Softmax(-1)))
        return None


def darts_node_hooks(strategy) -> list:
    """Mutation hooks this space adds to NNI's differentiable strategies (DARTS, GumbelDARTS, MADarts)."""
    from nni.nas.strategy import DARTS, Proxyless
    if isinstance(strategy, DARTS) and not isinstance(strategy, Proxyless):
        return [DartsNodeInput.mutate]
    return []
