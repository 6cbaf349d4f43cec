"""The SNN DARTS search space (paper 3.2, Figure 1) as an NNI model space.

Macro network: stem (conv + BN, the only layer fed analog pixels) -> ``num_cells`` cells, reduction cells at
1/3 and 2/3 of the depth -> BN -> LIF -> global average pool -> BN -> linear classifier -> mean over T.

A cell has two preprocessed inputs and 4 intermediate nodes. Node k sums two edges chosen among its k + 2
predecessors; each edge is one of the 7 spiking operations. Every state is turned into spikes once (one LIF per
state) and those spikes are shared by all edges leaving it. The 4 nodes are concatenated and pass through the
attention slot (none | ct | ma). Choices are labelled ``normal/...`` or ``reduce/...`` so all cells of one type
share one architecture (one set of alpha per cell type, as in DARTS):

- ``{type}/op_{k}_{i}``: operation on the edge from state i to node k (LayerChoice over ``PRIMITIVES``);
- ``{type}/input_{k}``: the two predecessors of node k (InputChoice, 2 of k + 2). State 0 is c_{k-2}, 1 is
  c_{k-1}, j >= 2 is node j - 2 (DARTS's convention).

Built under a fixed architecture (``nni.nas.space.model_context``) a node creates only its two chosen edges, so
the frozen network carries no unused weights.
"""

from __future__ import annotations

import torch
from nni.mutable import label_scope
from nni.nas.nn.pytorch import InputChoice, LayerChoice, ModelSpace
from nni.nas.nn.pytorch.choice import ChosenInputs
from nni.nas.space import current_model
from torch import nn

from nni_snn.archfile import CELL_TYPES, NUM_NODES
from nni_snn.attention import make_attention
from nni_snn.neuron import make_neuron
from nni_snn.ops import OPS, PRIMITIVES, Preprocess, TimeDistributed, batch_norm
from nni_snn.regularizers import drop_path
from nni_snn.spikes import mark_analog


def reduction_indices(num_cells: int) -> tuple[int, ...]:
    """Cells that halve the resolution and double the width: 1/3 and 2/3 of the depth (DARTS)."""
    return tuple(sorted({num_cells // 3, 2 * num_cells // 3})) if num_cells >= 3 else ()


def auxiliary_index(num_cells: int) -> int:
    """The auxiliary head follows the 5th cell (paper 3.4); shallower networks use the second to last cell."""
    return min(4, num_cells - 2)


class SNNNode(nn.Module):
    """One intermediate node: the sum of two chosen incoming edges, each a spiking operation."""

    def __init__(self, cell_type: str, index: int, channels: int, reduction: bool, affine: bool,
                 neuron: dict | None = None):
        super().__init__()
        n_inputs = index + 2
        with label_scope(cell_type):  # labels "normal/..." / "reduce/..."
            self.inputs = InputChoice(n_inputs, n_chosen=2, reduction="sum", label=f"input_{index}")
            chosen = self.inputs.chosen if isinstance(self.inputs, ChosenInputs) else range(n_inputs)
            self.edges = nn.ModuleDict({
                str(i): LayerChoice(
                    {name: OPS[name](channels, 2 if reduction and i < 2 else 1, affine, neuron) for name in PRIMITIVES},
                    label=f"op_{index}_{i}",
                )
                for i in chosen
            })
        # Read by the DARTS node hook (search_spaces.supernet) to derive inputs from operation strengths.
        self.inputs.edge_labels = [f"{cell_type}/op_{index}_{i}" for i in range(n_inputs)]

    # Drop-path probability of the fixed network's edges in training (DARTS's evaluation regulariser). A plain
    # attribute that nni_snn.training.DropPathSchedule sets each epoch, so NNI does not trace it as an argument.
    drop_path_prob = 0.0

    def forward(self, spikes_of) -> torch.Tensor:
        if isinstance(self.inputs, ChosenInputs):  # fixed network: only the chosen edges exist
            total = 0
            for i in self.inputs.chosen:
                edge = self.edges[str(i)]
                out = edge(spikes_of(i))
                if self.training and self.drop_path_prob > 0 and not isinstance(edge, nn.Identity):
                    out = drop_path(out, self.drop_path_prob)  # as in DARTS, an identity edge is never dropped
                total = total + out
            return total
        return self.inputs([self.edges[str(i)](spikes_of(i)) for i in range(len(self.edges))])


class SNNCell(nn.Module):
    """A DARTS cell on time-major tensors ``[T, N, C, H, W]``; outputs ``4 * channels`` channels."""

    def __init__(self, cell_type: str, c_prev_prev: int, c_prev: int, channels: int, reduction_prev: bool,
                 attention: str, timesteps: int, affine: bool, neuron: dict | None = None, normalize: bool = True):
        super().__init__()
        self.reduction = cell_type == "reduce"
        self.pre0 = Preprocess(c_prev_prev, channels, reduce=reduction_prev, affine=affine, neuron=neuron,
                               normalize=normalize)
        self.pre1 = Preprocess(c_prev, channels, affine=affine, neuron=neuron, normalize=normalize)
        # One LIF per state that can feed an edge: c_{k-2}, c_{k-1} and the first three nodes.
        self.spiking = nn.ModuleList(make_neuron(neuron) for _ in range(NUM_NODES + 1))
        self.nodes = nn.ModuleList(
            SNNNode(cell_type, k, channels, self.reduction, affine, neuron) for k in range(NUM_NODES))
        self.attention_channels = NUM_NODES * channels
        self.attention = mark_analog(make_attention(attention, self.attention_channels, timesteps))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        spikes: dict[int, torch.Tensor] = {}

        def spikes_of(i: int) -> torch.Tensor:
            if i not in spikes:  # each state fires once, whatever number of edges read it
                spikes[i] = self.spiking[i](states[i])
            return spikes[i]

        for node in self.nodes:
            states.append(node(spikes_of))
        return self.attention(torch.cat(states[2:], dim=2))


class SpikingClassifier(nn.Module):
    """BN -> LIF -> global average pool -> [BN] -> linear, logits averaged over T.

    The first BN rescales the attention-weighted cell output so the LIF fires from the first step; the linear layer
    reads spike counts pooled over space and time (linear, so averaging over T before or after it is the same).
    With ``normalize`` (the default) a BN standardises the pooled spike rates first: they sit near the LIF's
    firing rate (~0.3) and differ across samples by only ~0.05 at initialisation, so a plain linear readout needs
    weights ~20x its initial scale before its logits separate classes, and at the paper's learning rates it
    never got there (the loss stayed at ln 10). At inference that BN is an affine map of the rates and folds into
    the linear layer's weights and bias: the classifier still reads spike counts.
    """

    def __init__(self, channels: int, num_classes: int, neuron: dict | None = None, normalize: bool = True):
        super().__init__()
        self.norm = TimeDistributed(batch_norm(channels))
        self.spike = make_neuron(neuron)
        linear = nn.Linear(channels, num_classes)
        # Reads spike rates pooled over space and time.
        self.linear = mark_analog(nn.Sequential(batch_norm(channels, dims=1), linear) if normalize else linear)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.spike(self.norm(x)).mean(dim=(0, 3, 4)))


class AuxiliaryHead(nn.Module):
    """Auxiliary classifier (paper 3.4): BN -> LIF -> 1x1 conv -> then the spiking classifier."""

    def __init__(self, channels: int, num_classes: int, hidden: int = 128, neuron: dict | None = None,
                 normalize: bool = True):
        super().__init__()
        self.norm = TimeDistributed(batch_norm(channels))
        self.spike = make_neuron(neuron)
        self.conv = TimeDistributed(nn.Conv2d(channels, hidden, 1, bias=False))
        self.classifier = SpikingClassifier(hidden, num_classes, neuron, normalize)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.conv(self.spike(self.norm(x))))


class SNNDartsSpace(ModelSpace):
    """MA-DARTS search space. ``forward`` maps images ``[N, C, H, W]`` to logits ``[N, num_classes]``.

    With ``auxiliary=True`` and in training mode it returns ``(logits, auxiliary_logits)``. ``neuron`` is the spec
    of every spiking site (:func:`nni_snn.neuron.make_neuron`; ``{"kind": "relu"}`` = the ANN twin);
    ``normalize=False`` drops the BNs before the cell-input neurons and the classifier (the earlier network; see
    :class:`~nni_snn.ops.Preprocess` and :class:`SpikingClassifier` for why they are there).
    """

    def __init__(self, width: int = 16, num_cells: int = 5, timesteps: int = 2, attention: str = "ma",
                 num_classes: int = 10, in_channels: int = 3, auxiliary: bool = False, stem_multiplier: int = 3,
                 neuron: dict | None = None, normalize: bool = True):
        super().__init__()
        self.timesteps = timesteps
        self.attention = attention
        self.normalize = normalize
        # Under a fixed architecture the BNs are affine (DARTS's evaluation networks); in the supernet they are
        # not, as in DARTS's search, so the mixed operations' scales stay comparable.
        affine = current_model() is not None
        c_curr = stem_multiplier * width
        self.stem = mark_analog(nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False),
                                              batch_norm(c_curr)))  # the encoding layer reads pixels
        c_pp, c_p, c_curr = c_curr, c_curr, width
        reductions = reduction_indices(num_cells)
        self.cells = nn.ModuleList()
        self.auxiliary_after = auxiliary_index(num_cells) if auxiliary else None
        self.auxiliary_head = None
        reduction_prev = False
        for i in range(num_cells):
            reduction = i in reductions
            if reduction:
                c_curr *= 2
            self.cells.append(SNNCell(CELL_TYPES[reduction], c_pp, c_p, c_curr, reduction_prev,
                                      attention, timesteps, affine, neuron, normalize))
            reduction_prev = reduction
            c_pp, c_p = c_p, NUM_NODES * c_curr
            if i == self.auxiliary_after:
                self.auxiliary_head = AuxiliaryHead(c_p, num_classes, neuron=neuron, normalize=normalize)
        self.classifier = SpikingClassifier(c_p, num_classes, neuron, normalize)

    def forward(self, images: torch.Tensor):
        # The image is repeated over T; the stem is stateless, so run it once and share it across steps.
        x = self.stem(images)
        s0 = s1 = x.unsqueeze(0).expand(self.timesteps, *x.shape)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1)
            if i == self.auxiliary_after and self.training:
                aux = self.auxiliary_head(s1)
        logits = self.classifier(s1)
        return (logits, aux) if aux is not None else logits

    def set_attention(self, kind: str) -> None:
        """Swap the attention at every cell's concatenation (MADarts uses this); the space's init arguments are
        updated too, so exports and frozen networks carry the new kind."""
        for cell in self.cells:
            cell.attention = mark_analog(make_attention(kind, cell.attention_channels, self.timesteps))
        self.attention = kind
        self.trace_kwargs["attention"] = kind

    def extra_oneshot_hooks(self, strategy) -> list:
        """DARTS sums every incoming edge of a node and derives inputs from operation strengths (paper 3.4)."""
        from search_spaces.supernet import darts_node_hooks
        return darts_node_hooks(strategy)
