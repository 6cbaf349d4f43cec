"""The SNN DARTS search space (paper 3.2, Figure 1) as an NNI model space.

Macro network: stem (conv + BN on the image, run once, or on each event frame; then LIF) -> ``num_cells`` cells, reduction
cells at 1/3 and 2/3 of the depth -> global average pool of the last cell's spikes -> BN -> linear -> mean over T.

A state is one neuron population: it is turned into spikes once, by one LIF, and every consumer reads those
spikes. That holds for the stem's output and each cell's output (read by the next two cells, the classifier and
the auxiliary head) as for the states inside a cell (read by every edge leaving them). So spike and SOP counts
count each neuron once.

A cell reads the spikes of the two previous states, preprocesses them (1x1 conv + BN) and has 4 intermediate
nodes (DARTS's; ``cell_nodes`` sets 1 to 4). Node k sums two edges chosen among its k + 2 predecessors; each edge is
one of the 7 spiking operations. The nodes are concatenated and pass through the attention slot (none | ct | ma; in every cell or only the last,
``attention_cells``), then [BN ->] the cell's output LIF (or, with ``cell_norm="before-attention"``, BN before the
attention). Choices are labelled ``normal/...`` or ``reduce/...`` so
all cells of one type share one architecture (one set of alpha per cell type, as in DARTS):

- ``{type}/op_{k}_{i}``: operation on the edge from state i to node k (LayerChoice over ``PRIMITIVES``);
- ``{type}/input_{k}``: the two predecessors of node k (InputChoice, 2 of k + 2). State 0 is c_{k-2}, 1 is
  c_{k-1}, j >= 2 is node j - 2 (DARTS's convention).

Built under a fixed architecture (``nni.nas.space.model_context``) a node creates only its two chosen edges, so
the frozen network carries no unused weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from nni.nas.nn.pytorch import InputChoice, LayerChoice, ModelSpace
from torch import nn

from nni_snn.files.genotype import (
    CELL_TYPES,
    NUM_NODES,
    SPACES,
    reduction_indices,  # the genotype's rule (which cell types a depth has), importable here too
)
from nni_snn.files.spec import NetworkSpec
from nni_snn.nni_compat import ChosenInputs, current_model, label_scope
from nni_snn.snn.attention import make_attention
from nni_snn.snn.neuron import make_neuron
from nni_snn.snn.ops import (
    OPS,
    Encoder,
    Preprocess,
    TimeDistributed,
    WholeMapConv2d,
    batch_norm,
    cat_channels,
    fold,
    unfold,
)
from nni_snn.snn.regularizers import DropsPath, drop_path
from nni_snn.snn.spikes import ReadsAnalog


def auxiliary_index(num_cells: int) -> int:
    """The auxiliary head follows the 5th cell (paper 3.4); shallower networks use the second to last cell."""
    return min(4, num_cells - 2)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """PC-DARTS's channel shuffle on ``[T, N, C, H, W]``: channel ``g * (C / groups) + j`` moves to ``j * groups + g``,
    so that the next edge's first ``C / groups`` channels, the ones it searches, mix all groups of this one."""
    T, N, C = x.shape[:3]
    return x.reshape(T, N, groups, C // groups, *x.shape[3:]).transpose(2, 3).reshape(x.shape)


class SNNNode(DropsPath):
    """One intermediate node: the sum of two chosen incoming edges, each a spiking operation.

    In the supernet with ``partial_channels = K > 1`` (PC-DARTS, Xu et al. 2020) each edge's mixed operation sees only
    the first ``C / K`` channels of its input spikes; the other channels bypass it (max-pooled 2x2 on a reduction
    edge), the two parts are concatenated and channel-shuffled, and the node weighs its edges by the softmax of its
    edge-normalisation beta (:mod:`search_spaces.darts_nodes`). The bypass carries spikes into the node's sum, not
    into a synaptic layer: the node's state is turned into spikes by its neuron before any conv reads it.
    """

    def __init__(self, cell_type: str, index: int, channels: int, reduction: bool, affine: bool,
                 neuron: dict | None = None, partial_channels: int = 1, space: str = "full"):
        super().__init__()
        n_inputs = index + 2
        with label_scope(cell_type):  # labels "normal/..." / "reduce/..."
            self.inputs = InputChoice(n_inputs, n_chosen=2, reduction="sum", label=f"input_{index}")
            fixed = isinstance(self.inputs, ChosenInputs)
            chosen = self.inputs.chosen if fixed else range(n_inputs)
            # Partial channels only in the supernet: the derived network's edges have all channels.
            self.partial = 1 if fixed else partial_channels
            self.strides = {i: 2 if reduction and i < 2 else 1 for i in chosen}
            self.edges = nn.ModuleDict({
                str(i): LayerChoice(
                    # the supernet keeps every candidate's activations: recompute the cheap ones (nni_snn.snn.ops)
                    {name: OPS.load(name)(channels // self.partial, self.strides[i], affine, neuron,
                                     recompute_depthwise=not fixed)
                     for name in SPACES[space]},
                    label=f"op_{index}_{i}",
                )
                for i in chosen
            })
        # What the DARTS node (search_spaces.darts_nodes) derives this node's inputs from: its edges' operation
        # weights, and with partial channels a beta of its own that weighs the edges.
        self.edge_labels = [f"{cell_type}/op_{index}_{i}" for i in range(n_inputs)]
        self.edge_normalization = self.partial > 1

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
        return self.inputs([self._edge(i, spikes_of(i)) for i in range(len(self.edges))])

    def _edge(self, i: int, spikes: torch.Tensor) -> torch.Tensor:
        if self.partial == 1:
            return self.edges[str(i)](spikes)
        searched = spikes.shape[2] // self.partial
        # Contiguous once here rather than once in each of the candidates' first layers.
        out = self.edges[str(i)](spikes[:, :, :searched].contiguous())
        bypass = spikes[:, :, searched:]
        if self.strides[i] == 2:  # ceil_mode: ceil(H / 2), the size the candidates' stride-2 layers give
            bypass = unfold(F.max_pool2d(fold(bypass), 2, 2, ceil_mode=True), spikes.shape[0])
        return channel_shuffle(torch.cat([out, bypass.to(out.dtype)], dim=2), self.partial)


class Population(nn.Module):
    """The neuron population of one state: [BN ->] LIF, run once; its spikes go to every consumer of the state.

    ``normalize`` puts a BN before the LIF (the default): a cell's output is a sum of BN outputs scaled down by the
    attention gates (MA's two sigmoids start near 1/4), so without it the neurons carrying one cell to the next
    fired 0.7-2.5 % at initialisation, against ~30 % elsewhere, and 70x less gradient reached the first cell than
    the last (benchmarks/learning.py). Normalising the input current of a spiking layer is what
    threshold-dependent BN (tdBN) does; at inference it folds into a per-channel gain and bias current, so the LIF
    still reads one analog current and emits binary spikes.
    """

    def __init__(self, channels: int, neuron: dict | None = None, normalize: bool = True):
        super().__init__()
        self.norm = TimeDistributed(batch_norm(channels)) if normalize else nn.Identity()
        self.spike = make_neuron(neuron)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spike(self.norm(x))


class Stem(nn.Module):
    """The encoding layer (:class:`~nni_snn.snn.ops.Encoder`: conv 3x3 + BN on an image, run once, or on each event
    frame), then the stem's neuron population over T."""

    def __init__(self, in_channels: int, channels: int, timesteps: int, neuron: dict | None = None, stride: int = 1):
        super().__init__()
        self.encode = Encoder(in_channels, channels, timesteps, stride)
        self.spike = make_neuron(neuron)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.spike(self.encode(inputs))


class SNNCell(nn.Module):
    """A DARTS cell on time-major spikes ``[T, N, C, H, W]``; outputs the spikes of its ``nodes * channels`` neurons."""

    def __init__(self, cell_type: str, c_prev_prev: int, c_prev: int, channels: int, reduction_prev: bool,
                 attention: str, timesteps: int, affine: bool, neuron: dict | None = None, normalize: bool = True,
                 cell_norm: str = "after-attention", partial_channels: int = 1, stem_stride: int = 1,
                 head: str = "global", image_size: int | None = None, space: str = "full", nodes: int = NUM_NODES):
        super().__init__()
        self.reduction = cell_type == "reduce"
        self.pre0 = Preprocess(c_prev_prev, channels, reduce=reduction_prev, affine=affine)
        self.pre1 = Preprocess(c_prev, channels, affine=affine)
        # One LIF per state that can feed an edge: the two preprocessed inputs and every node but the last.
        self.spiking = nn.ModuleList(make_neuron(neuron) for _ in range(nodes + 1))
        self.nodes = nn.ModuleList(
            SNNNode(cell_type, k, channels, self.reduction, affine, neuron, partial_channels, space)
            for k in range(nodes))
        concatenated = nodes * channels
        # Where the cell's BN sits (with normalize): after the attention (concatenation -> attention -> BN -> LIF),
        # where a per-channel BN over (T, N, H, W) cancels any constant per-channel gain of the gate, or before it
        # (concatenation -> BN -> attention -> LIF), where the gate's whole output reaches the neurons.
        before = normalize and cell_norm == "before-attention"
        self.norm_before = TimeDistributed(batch_norm(concatenated)) if before else nn.Identity()
        self.attention = make_attention(attention, concatenated, timesteps)  # reads analog values (ReadsAnalog)
        self.output = Population(concatenated, neuron, normalize and not before)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        spikes: dict[int, torch.Tensor] = {}

        def spikes_of(i: int) -> torch.Tensor:
            if i not in spikes:  # each state fires once, whatever number of edges read it
                spikes[i] = self.spiking[i](states[i])
            return spikes[i]

        for node in self.nodes:
            states.append(node(spikes_of))
        return self.output(self.attention(self.norm_before(cat_channels(states[2:]))))


class SpikingClassifier(ReadsAnalog):
    """Global average pool of spikes -> [BN] -> linear, logits averaged over T.

    The linear layer reads spike counts pooled over space and time (linear, so averaging over T before or after it
    is the same). With ``normalize`` (the default) a BN standardises the pooled spike rates first: they sit near
    the LIF's firing rate (~0.3) and differ across samples by only ~0.05 at initialisation, so a plain linear
    readout needs weights ~20x its initial scale before its logits separate classes, and at the paper's learning
    rates it never got there (the loss stayed at ln 10). At inference that BN is an affine map of the rates and
    folds into the linear layer's weights and bias: the classifier still reads spike counts.
    """

    # Its average over space and time adds every input spike into its channel's sum (nni_snn.snn.spikes: additions).
    sums_spikes = True

    def __init__(self, channels: int, num_classes: int, normalize: bool = True):
        super().__init__()
        linear = nn.Linear(channels, num_classes)
        # Reads spike rates pooled over space and time: analog values (ReadsAnalog).
        self.linear = nn.Sequential(batch_norm(channels, dims=1), linear) if normalize else linear

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        return self.linear(spikes.mean(dim=(0, 3, 4)))


class SpatialClassifier(nn.Module):
    """A linear layer on the last cell's whole spike map, flattened at each step, then BN on the logits, averaged
    over T: the spiking CNN's readout. It reads binary spikes, so it costs SOPs (one accumulation per spike per
    class), where the global head's BN + linear on pooled rates costs MACs; and it keeps where in the image a feature
    fired.

    Why the BN on the logits: the linear layer reads thousands of spikes (6,272 at width 8 on a 7x7 map), so at lr
    0.1 one step moved the logits by tens and the network it read fell silent for good (retrained at chance on
    Fashion-MNIST, measured); normalising the logits makes the step independent of the fan-in. It is a per-class
    affine map at inference, which folds into the linear layer's weights and bias: the readout still reads spikes.
    """

    def __init__(self, channels: int, side: int, num_classes: int):
        super().__init__()
        self.linear = nn.Linear(channels * side * side, num_classes)
        self.norm = batch_norm(num_classes, dims=1)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        logits = self.linear(spikes.flatten(2))  # [T, N, classes]
        return unfold(self.norm(fold(logits)), spikes.shape[0]).mean(0)


def output_side(image_size: int, stem_stride: int, num_cells: int) -> int:
    """The side of the last cell's map: the stem's stride, then each reduction cell, each rounding up (a 3x3 or 1x1
    stride-2 layer with DARTS's padding maps a side s to ceil(s / 2))."""
    side = -(-image_size // stem_stride)
    for _ in reduction_indices(num_cells):
        side = -(-side // 2)
    return side


class AuxiliaryHead(nn.Module):
    """DARTS's auxiliary head on spikes (paper 3.4; DARTS: ReLU, avg-pool 5/3, 1x1 conv to 128, BN, ReLU, 2x2 conv
    to 768, BN, ReLU, linear; ~0.40 M parameters at 10 classes, whatever the width).

    Its input is the spikes of the cell it follows (DARTS's first ReLU), its two ReLUs are LIFs, and so that its
    first conv reads binary spikes it runs before the pooling: a bias-free 1x1 conv and an average pool are both
    linear and commute, so ``pool(conv(s)) == conv(pool(s))`` and the head computes DARTS's function. On CIFAR's
    8x8 maps the 5/3 pool gives 2x2, and the 2x2 conv 1x1; maps under 8x8 are averaged to 2x2 instead, and larger
    ones' 2x2 conv outputs are averaged over space before the linear layer (a spiking classifier).
    """

    def __init__(self, channels: int, num_classes: int, neuron: dict | None = None, normalize: bool = True,
                 hidden: int = 128, features: int = 768):
        super().__init__()
        self.reduce = TimeDistributed(nn.Conv2d(channels, hidden, 1, bias=False))
        self.norm = TimeDistributed(batch_norm(hidden))
        self.spike = make_neuron(neuron)
        self.conv = TimeDistributed(nn.Sequential(WholeMapConv2d(hidden, features, 2, bias=False), batch_norm(features)))
        self.spike2 = make_neuron(neuron)
        self.classifier = SpikingClassifier(features, num_classes, normalize)

    @staticmethod
    def pool(x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) >= 8:  # the 5/3 pool leaves at least 2x2 for the 2x2 conv
            return F.avg_pool2d(x, 5, stride=3, count_include_pad=False)
        return F.adaptive_avg_pool2d(x, 2)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        x = self.reduce(spikes)
        x = unfold(self.pool(fold(x)), x.shape[0])
        return self.classifier(self.spike2(self.conv(self.spike(self.norm(x)))))


class SNNDartsSpace(ModelSpace):
    """MA-DARTS search space. ``forward`` maps images ``[N, C, H, W]`` or event frames ``[N, T, 2, H, W]`` to logits
    ``[N, num_classes]``.

    With ``auxiliary=True`` and in training mode it returns ``(logits, auxiliary_logits)``. ``attention_cells``:
    ``"all"`` puts the attention at every cell's concatenation (paper 3.3), ``"last"`` only in the final cell
    (paper 4.2's retraining). ``neuron`` is the spec of every spiking site (:func:`nni_snn.snn.neuron.make_neuron`;
    ``{"kind": "relu"}`` = the ANN twin); ``normalize=False`` drops the BNs before the cells' output neurons and
    the classifier (see :class:`Population` and :class:`SpikingClassifier` for why they are there);
    ``cell_norm`` puts each cell's BN after its attention (``"after-attention"``) or before it
    (``"before-attention"``), see :class:`SNNCell`. ``partial_channels = K > 1``: PC-DARTS's partial channel
    connections in the supernet (1/K of each edge's channels searched, :class:`SNNNode`); it needs ``width`` divisible
    by K and changes nothing in a network built under a fixed architecture.

    The macro-architecture, where most of the energy goes (``docs/energy.md``): the stem has ``stem_multiplier x
    width`` channels and its conv ``stem_stride`` (2 halves the resolution every cell works at); ``head`` is
    ``"global"`` (:class:`SpikingClassifier`) or ``"spatial"`` (:class:`SpatialClassifier`, which needs
    ``image_size``, the input's side). ``space``: the candidate operations (``nni_snn.files.genotype.SPACES``);
    ``"deployable"`` leaves out max pooling and needs attention none, so that its networks export to NIR.
    ``cell_nodes``: the intermediate nodes of every cell (DARTS's 4; fewer keep fewer neuron populations alive).
    """

    def __init__(self, width: int = 16, num_cells: int = 5, num_classes: int = 10, in_channels: int = 3,
                 auxiliary: bool = False, partial_channels: int = 1, image_size: int | None = None, **settings):
        super().__init__()
        # The network settings (nni_snn.files.spec.NetworkSpec's fields) are plain keyword arguments, so that NNI records
        # plain values when it traces the space (a multi-trial experiment sends them to its trials as JSON).
        self.spec = spec = NetworkSpec(**settings)
        problem = spec.problem()
        if problem:
            raise ValueError(problem)
        if partial_channels < 1 or width % partial_channels:
            raise ValueError(f"partial_channels must be >= 1 and divide the width {width}, got {partial_channels}")
        if spec.head == "spatial" and not image_size:
            raise ValueError("head 'spatial' needs image_size, the input's side")
        for name, value in spec.settings().items():  # read as the network's attributes (net.timesteps, ...)
            setattr(self, name, value)
        timesteps, neuron, normalize = spec.timesteps, spec.neuron, spec.normalize
        # Under a fixed architecture the BNs are affine (DARTS's evaluation networks); in the supernet they are
        # not, as in DARTS's search, so the mixed operations' scales stay comparable.
        affine = current_model() is not None
        c_curr = spec.stem_multiplier * width
        self.stem = Stem(in_channels, c_curr, timesteps, neuron, spec.stem_stride)
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
                                      self._attention_of(i, spec.attention, num_cells), timesteps, affine, neuron,
                                      normalize, spec.cell_norm, partial_channels if current_model() is None else 1,
                                      space=spec.space, nodes=spec.cell_nodes))
            reduction_prev = reduction
            c_pp, c_p = c_p, spec.cell_nodes * c_curr
            if i == self.auxiliary_after:
                self.auxiliary_head = AuxiliaryHead(c_p, num_classes, neuron, normalize)
        if spec.head == "spatial":
            self.classifier = SpatialClassifier(c_p, output_side(image_size, spec.stem_stride, num_cells), num_classes)
        else:
            self.classifier = SpikingClassifier(c_p, num_classes, normalize)

    def _attention_of(self, index: int, kind: str, num_cells: int) -> str:
        return kind if self.attention_cells == "all" or index == num_cells - 1 else "none"

    def forward(self, inputs: torch.Tensor):
        s0 = s1 = self.stem(inputs)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1)
            if i == self.auxiliary_after and self.training:
                aux = self.auxiliary_head(s1)
        logits = self.classifier(s1)
        return (logits, aux) if aux is not None else logits

    def extra_oneshot_hooks(self, strategy) -> list:
        """DARTS sums every incoming edge of a node and derives inputs from operation strengths (paper 3.4)."""
        from search_spaces.darts_nodes import darts_node_hooks
        nodes = [m for m in self.modules() if isinstance(m, SNNNode) and type(m.inputs) is InputChoice]
        return darts_node_hooks(strategy, {node.inputs.label: (node.edge_labels, node.edge_normalization)
                                           for node in nodes})
