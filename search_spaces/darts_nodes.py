"""The DARTS form of a node's input choice, plugged into NNI's one-shot machinery.

NNI's stock differentiable InputChoice weighs inputs by an alpha of its own. DARTS (and the paper, eq. 11) sums
*all* incoming mixed edges and derives a node's two inputs afterwards from the operation weights: per node, the
2 incoming edges whose strongest operation has the largest softmax weight. This module does exactly that, so the
space searched by NNI's DARTS (and by MADarts) is the paper's.

With partial channels (PC-DARTS, ``SNNDartsSpace(partial_channels=K)``) a node instead weighs its incoming edges by
the softmax of an edge-normalisation vector beta (the node's own InputChoice alpha, otherwise unused), and the
derivation ranks each edge by beta's weight times its strongest operation's weight (Xu et al. 2020, eq. 4-5).

:class:`WeightedMixedLayer` is NNI's mixed operation with the alpha-weighted sum of the candidates in one autograd
function: one output buffer instead of a temporary per product and per partial sum.
"""

from __future__ import annotations

import torch
from nni.nas.nn.pytorch import InputChoice, LayerChoice
from torch import nn
from torch.autograd.function import once_differentiable

from nni_snn.nni_compat import BaseSuperNetModule, DifferentiableMixedLayer


def derive_inputs(edge_weights: list[torch.Tensor], n_chosen: int = 2,
                  edge_scale: torch.Tensor | None = None) -> list[int]:
    """DARTS derivation: indices of the ``n_chosen`` edges whose strongest operation weighs most (sorted); with
    ``edge_scale`` (PC-DARTS's softmaxed beta of the node) each edge's strength is multiplied by its entry."""
    strengths = torch.stack([w.max() for w in edge_weights])
    if edge_scale is not None:
        strengths = strengths * edge_scale
    return sorted(torch.argsort(-strengths, stable=True)[:n_chosen].tolist())


class _WeightedSum(torch.autograd.Function):
    """``sum_i w[i] * x_i`` into one buffer; backward: ``dL/dx_i = w[i] dL/dy`` and ``dL/dw[i] = <dL/dy, x_i>``
    (a dot product, no temporary), the latter only when w needs a gradient, and only then are the x_i saved."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0] * w[0]  # promotes a half-precision x to w's dtype, as NNI's weighted sum does
        for i in range(1, len(xs)):
            out.addcmul_(xs[i], w[i])
        ctx.save_for_backward(w, *(xs if ctx.needs_input_grad[0] else ()))
        ctx.dtypes = [x.dtype for x in xs]
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        w, *xs = ctx.saved_tensors
        grad_xs = [grad * w[i] if ctx.needs_input_grad[i + 1] else None for i in range(len(ctx.dtypes))]
        grad_xs = [g.to(dt) if g is not None else None for g, dt in zip(grad_xs, ctx.dtypes)]
        grad_w = None
        if ctx.needs_input_grad[0]:
            flat = grad.reshape(-1)
            grad_w = torch.stack([torch.dot(flat, x.reshape(-1).to(grad.dtype)) for x in xs]).to(w.dtype)
        return (grad_w, *grad_xs)


class WeightedMixedLayer(DifferentiableMixedLayer):
    """NNI's DARTS mixed operation (same alpha, softmax, export) with :class:`_WeightedSum` as its reduction."""

    def _reduction(self, items, weights):
        if not all(isinstance(x, torch.Tensor) and x.shape == items[0].shape for x in items):
            return super()._reduction(items, weights)
        return _WeightedSum.apply(weights, *items)

    @classmethod
    def mutate(cls, module, name, memo, mutate_kwargs):
        if type(module) is LayerChoice:  # this hook is only the SNN space's (darts_node_hooks)
            if module.label not in memo:
                raise KeyError(f"LayerChoice {module.label} not found in memo.")
            return cls(module.candidates, memo[module.label], mutate_kwargs.get("softmax", nn.Softmax(-1)),
                       module.label)
        return None


class DartsNodeInput(InputChoice, BaseSuperNetModule):
    """Sums every incoming edge, or with ``beta`` (partial channels) weighs them by ``softmax(beta)``; exports the
    two strongest edges of the node."""

    def __init__(self, n_candidates: int, label: str, edge_alphas: list[nn.Parameter], softmax: nn.Module,
                 beta: nn.Parameter | None = None):
        super().__init__(n_candidates, n_chosen=2, reduction="sum", label=label)
        # A plain list: the alphas belong to the edges' mixed layers and must not be registered twice.
        self._edge_alphas = list(edge_alphas)
        self._softmax = softmax
        # beta: this node's own architecture parameter, registered here under NNI's name for one (``_arch_alpha``:
        # NNI's DARTS collects arch_parameters(), and code that tells alphas from weights by name finds it).
        self._arch_alpha = beta

    def arch_parameters(self):
        if self._arch_alpha is not None:
            yield self._arch_alpha

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        if self._arch_alpha is None:
            return sum(inputs)
        return _WeightedSum.apply(self._softmax(self._arch_alpha), *inputs)

    def resample(self, memo):
        return {}

    def export(self, memo):
        if self.label in memo:
            return {}
        with torch.no_grad():
            scale = self._softmax(self._arch_alpha) if self._arch_alpha is not None else None
            return {self.label: derive_inputs([self._softmax(a) for a in self._edge_alphas], edge_scale=scale)}

    def export_probs(self, memo):
        return {}  # the edges' operation probabilities already describe this choice

    @classmethod
    def mutation_hook(cls, nodes: dict[str, tuple[list[str], bool]]):
        """NNI's mutation hook that makes every InputChoice labelled in ``nodes`` a DARTS node: ``nodes`` maps a
        node's input label to the labels of its incoming edges and whether it weighs them by a beta of its own
        (partial channels)."""

        def mutate(module, name, memo, mutate_kwargs):
            if type(module) is not InputChoice or module.label not in nodes:
                return None
            edge_labels, edge_normalization = nodes[module.label]
            missing = [label for label in edge_labels if label not in memo]
            if missing:
                raise KeyError(f"Edge alphas {missing} of node {module.label} not found.")
            beta = memo[module.label] if edge_normalization else None
            return cls(module.n_candidates, module.label, [memo[label] for label in edge_labels],
                       mutate_kwargs.get("softmax", nn.Softmax(-1)), beta)

        return mutate


def darts_node_hooks(strategy, nodes: dict[str, tuple[list[str], bool]]) -> list:
    """Mutation hooks the SNN space adds to NNI's differentiable strategies (DARTS, GumbelDARTS, MADarts); ``nodes``:
    see :meth:`DartsNodeInput.mutation_hook`."""
    from nni.nas.strategy import DARTS, Proxyless
    if isinstance(strategy, DARTS) and not isinstance(strategy, Proxyless):
        return [DartsNodeInput.mutation_hook(nodes), WeightedMixedLayer.mutate]
    return []
