"""Export a retrained network to NIR, the neuromorphic ecosystem's exchange format (``nni-snn export``).

What maps to what (``docs/deploy.md`` has the table and the consumers):

- Every BN is folded into the conv or linear layer before it (eval-mode running statistics); the stem's encoder
  becomes one ``Conv2d`` with a bias. An image is static: the encoder runs once here and its current is repeated
  over T; in the NIR graph the encoder is an ordinary stateless conv, so a consumer feeds the same image at each of
  the T steps and gets the same current (event frames: one frame per step).
- The paper's LIF ``u_t = tau * u_{t-1} * (1 - o_{t-1}) + x_t``, spike when ``u_t > V_th``, hard reset to 0, is
  NIR's ``LIF`` (``tau_m du/dt = (v_leak - u) + R I``) discretised by forward Euler with step ``dt``:
  ``v_t = (1 - dt/tau_m) v_{t-1} + (dt/tau_m) R x_t``. With ``tau_m = dt / (1 - tau)``, ``R = 1``, ``v_leak = 0``,
  ``v_reset = 0`` and ``v_threshold = (1 - tau) V_th`` its membrane is ``v_t = (1 - tau) u_t``, the paper's scaled by
  a constant, so it spikes at exactly the paper's steps. (``R = 1 / (1 - tau)`` with ``V_th`` unscaled means the
  same in NIR, but Norse ignores ``R``; snnTorch folds either into its threshold.) ``dt`` is the consumer's time
  step (snnTorch's NIR import assumes 1e-4 s, Norse takes it as an argument), recorded in the graph's metadata.
- A cell's concatenation of its 4 nodes followed by BN + LIF is one neuron population per node (BN folded into a
  per-channel 1x1 conv); a consumer of the concatenation (the next cells' 1x1 preprocessing conv, their
  factorised reduction, the classifier) becomes one conv per node, all summed where they meet (NIR sums the edges
  that enter a node). A node's sum of two edges is the same: both edges enter each consumer of the node.
- DARTS's factorised reduction (two 1x1 stride-2 convs, one on the input shifted by a pixel) is one 3x3 stride-2
  conv with padding 1 whose kernel is zero but for the centre (first half of the channels) and the bottom-right tap
  (second half).
- 3x3 average pooling (``count_include_pad=False``) + BN: ``SumPool2d``, then ``Scale`` by BN gain / window size
  per pixel (smaller at the border), then a per-channel 1x1 conv carrying BN's shift.
- The readout: the classifier (global head: average over the map, BN, linear; spatial head: linear on the whole
  map, BN) is one ``Conv2d`` per population whose kernel covers the whole last map, giving logits ``[classes, 1, 1]``
  at every step; nni-snn's logits are their mean over the T steps (the layers are linear, so averaging before or
  after them is the same).
- The auxiliary head is a training aid and is not exported.

Not expressible in NIR 1.0 (no max, no input-dependent multiplication): max pooling and the CT/MA attention gates;
:func:`to_nir` names the layer and what to change (search in the deployable space, ``--space deployable``).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nni_snn.errors import ExportError, optional_import

__all__ = ["DEFAULT_DT", "NotExportable", "export_run", "lif_parameters", "to_nir"]

# snnTorch's NIR import assumes this time step (seconds); any dt gives the same recurrence to a consumer that uses it.
DEFAULT_DT = 1e-4


class NotExportable(ExportError):
    """A network holding a layer that NIR cannot express; the message names the layer and what to change."""

# What builds a network that NIR can express: the search space without max pooling or attention gates.
DEPLOYABLE = [("space", "deployable")]


def lif_parameters(tau: float, v_threshold: float, shape: tuple[int, ...], dt: float = DEFAULT_DT) -> dict:
    """NIR ``LIF`` parameters (arrays of ``shape``) whose Euler step ``dt`` is the paper's discrete LIF with decay
    ``tau`` (see the module docstring)."""
    if not 0 <= tau < 1:
        raise NotExportable(f"a LIF decay tau={tau} outside [0, 1) has no NIR LIF equivalent")
    full = lambda value: np.full(shape, value, dtype=np.float32)
    return {"tau": full(dt / (1 - tau)), "r": full(1.0), "v_leak": full(0.0),
            "v_threshold": full(v_threshold * (1 - tau)), "v_reset": full(0.0)}


def _bn_affine(bn: nn.Module | None, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """(gain, shift) of an eval-mode BN, identity for None."""
    if bn is None or isinstance(bn, nn.Identity):
        return np.ones(channels, np.float32), np.zeros(channels, np.float32)
    gain = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / torch.sqrt(bn.running_var + bn.eps)
    shift = (bn.bias if bn.affine else torch.zeros_like(bn.running_mean)) - bn.running_mean * gain
    return gain.detach().double().numpy().astype(np.float32), shift.detach().double().numpy().astype(np.float32)


def _out_side(side: int, k: int, stride: int, padding: int, dilation: int) -> int:
    return (side + 2 * padding - dilation * (k - 1) - 1) // stride + 1


class _Builder:
    """Collects NIR nodes and edges. A *current* is a list of node names whose outputs add up; *spikes* is a list of
    ``(node name, channels)`` parts, in channel order (a cell's output is 4 populations)."""

    def __init__(self, dt: float, grouped: bool):
        import nir

        self.nir, self.dt, self.grouped = nir, dt, grouped
        self.nodes: dict = {}
        self.edges: list[tuple[str, str]] = []

    def add(self, name: str, node, sources: list[str]) -> str:
        name = name.replace(".", "_")  # consumers make torch modules of the nodes: no dots in their names
        assert name not in self.nodes, name
        self.nodes[name] = node
        self.edges += [(source, name) for source in sources]
        return name

    def conv(self, name: str, sources: list[str], shape, weight, bias=None, stride=1, padding=0, dilation=1,
             groups=1) -> tuple[str, tuple]:
        weight = np.asarray(weight, np.float32)
        c, h, w = shape
        if groups > 1 and not self.grouped:  # the same conv with a block-diagonal kernel, which every consumer reads
            per_in, per_out = c // groups, weight.shape[0] // groups
            dense = np.zeros((weight.shape[0], c, *weight.shape[2:]), np.float32)
            for g in range(groups):
                dense[g * per_out:(g + 1) * per_out, g * per_in:(g + 1) * per_in] = weight[g * per_out:(g + 1) * per_out]
            weight, groups = dense, 1
        k = weight.shape[-1]
        bias = np.zeros(weight.shape[0], np.float32) if bias is None else np.asarray(bias, np.float32)
        node = self.nir.Conv2d(input_shape=(h, w), weight=weight, stride=(stride, stride), padding=(padding, padding),
                               dilation=(dilation, dilation), groups=groups, bias=bias)
        side = lambda s: _out_side(s, k, stride, padding, dilation)
        return self.add(name, node, sources), (weight.shape[0], side(h), side(w))

    def torch_conv(self, name: str, sources: list[str], shape, conv: nn.Conv2d, bn=None) -> tuple[str, tuple]:
        gain, shift = _bn_affine(bn, conv.out_channels)
        weight = conv.weight.detach().numpy() * gain[:, None, None, None]
        bias = shift + (gain * conv.bias.detach().numpy() if conv.bias is not None else 0)
        return self.conv(name, sources, shape, weight, bias, conv.stride[0], conv.padding[0], conv.dilation[0],
                         conv.groups)

    def lif(self, name: str, sources: list[str], shape, neuron: nn.Module) -> str:
        from nni_snn.snn.neuron import LIF, PLIF

        if not isinstance(neuron, (LIF, PLIF)):
            raise NotExportable(f"{name}: the neuron {type(neuron).__name__} has no NIR equivalent; use a LIF neuron",
                                [("neuron", "lif")])
        # PLIF's tau is its learnt decay, sigmoid(w).
        return self.add(name, self.nir.LIF(**lif_parameters(neuron.tau, neuron.v_threshold, shape, self.dt)), sources)

    def split(self, name: str, parts: list[tuple[str, int]], shape_hw, weight, bias, **conv) -> tuple[list[str], tuple]:
        """A conv over concatenated spikes as one conv per part, the bias on the first; the outputs add up."""
        names, offset, out = [], 0, None
        for i, (source, channels) in enumerate(parts):
            suffix = f"_part{i}" if len(parts) > 1 else ""
            node, out = self.conv(name + suffix, [source], (channels, *shape_hw), weight[:, offset:offset + channels],
                                  bias if i == 0 else None, **conv)
            names.append(node)
            offset += channels
        return names, out


def _reduce_kernel(fr) -> np.ndarray:
    """DARTS's factorised reduction's two 1x1 stride-2 convs (the second on the input shifted by one pixel, zero at
    the far border) as one 3x3 kernel for a stride-2 padding-1 conv: centre tap and bottom-right tap."""
    w1, w2 = fr.conv_1.weight.detach().numpy(), fr.conv_2.weight.detach().numpy()
    half, c_in = w1.shape[:2]
    kernel = np.zeros((2 * half, c_in, 3, 3), np.float32)
    kernel[:half, :, 1, 1] = w1[:, :, 0, 0]
    kernel[half:, :, 2, 2] = w2[:, :, 0, 0]
    return kernel


def _preprocess(b: _Builder, name: str, pre, parts, shape_hw) -> tuple[list[str], tuple]:
    from nni_snn.snn.ops import FactorizedReduce

    body = pre.body
    if isinstance(body, FactorizedReduce):
        fr = body.body.module
        gain, shift = _bn_affine(fr.bn, fr.bn.num_features)
        return b.split(name, parts, shape_hw, _reduce_kernel(fr) * gain[:, None, None, None], shift, stride=2,
                       padding=1)
    conv, bn = body.module
    gain, shift = _bn_affine(bn, conv.out_channels)
    return b.split(name, parts, shape_hw, conv.weight.detach().numpy() * gain[:, None, None, None], shift)


def _edge(b: _Builder, name: str, op: nn.Module, source: str, shape) -> tuple[list[str], tuple]:
    """An edge's operation on the spikes of ``source``: the names of its output current and their shape."""
    from nni_snn.snn.ops import DilConv, FactorizedReduce, PoolBN, SepConv

    if isinstance(op, nn.Identity):
        return [source], shape
    if isinstance(op, FactorizedReduce):
        fr = op.body.module
        gain, shift = _bn_affine(fr.bn, fr.bn.num_features)
        node, out = b.conv(name, [source], shape, _reduce_kernel(fr) * gain[:, None, None, None], shift, stride=2,
                           padding=1)
        return [node], out
    if isinstance(op, (SepConv, DilConv)):
        layers = [op.first.module, op.lif, op.second.module] if isinstance(op, SepConv) else [op.body.module]
        current = [source]
        for j, layer in enumerate(layers):
            if not isinstance(layer, nn.Sequential):  # SepConv's inner LIF
                current = [b.lif(f"{name}.lif", current, shape, layer)]
                continue
            depthwise, pointwise, bn = layer
            dw, shape = b.torch_conv(f"{name}.dw{j}", current, shape, depthwise)
            pw, shape = b.torch_conv(f"{name}.pw{j}", [dw], shape, pointwise, bn)
            current = [pw]
        return current, shape
    if isinstance(op, PoolBN):
        pool, bn = op.body.module
        if not isinstance(pool, nn.AvgPool2d):
            raise NotExportable(f"{name}: max pooling has no NIR equivalent; search in the deployable space, which "
                                "leaves it out", DEPLOYABLE)
        c, h, w = shape
        stride = pool.stride if isinstance(pool.stride, int) else pool.stride[0]
        pooled = b.add(f"{name}.sum", b.nir.SumPool2d(kernel_size=np.array([3, 3]), stride=np.array([stride] * 2),
                                                      padding=np.array([1, 1])), [source])
        # The window's size at each output pixel (count_include_pad=False): 9 inside, 6 or 4 at the border.
        count = torch.nn.functional.avg_pool2d(torch.ones(1, 1, h, w), 3, stride, 1, divisor_override=1)
        gain, shift = _bn_affine(bn, c)
        out = (c, *count.shape[-2:])
        scale = (gain[:, None, None] / count[0].numpy()).astype(np.float32)
        scaled = b.add(f"{name}.scale", b.nir.Scale(scale=scale), [pooled])
        node, out = b.conv(f"{name}.shift", [scaled], out, np.ones((c, 1, 1, 1)), shift, groups=c)
        return [node], out
    raise NotExportable(f"{name}: {type(op).__name__} has no NIR mapping")


def _cell(b: _Builder, name: str, cell, s0, s1, hw0, hw1) -> tuple[list[tuple[str, int]], tuple]:
    from nni_snn.nni_compat import ChosenInputs

    norm_before = cell.norm_before if not isinstance(cell.norm_before, nn.Identity) else None
    if not isinstance(cell.attention, nn.Identity):
        raise NotExportable(f"{name}.attention: the {type(cell.attention).__name__} gate multiplies by the input "
                            "and has no NIR equivalent; use attention none, as the deployable space does", DEPLOYABLE)
    if not all(isinstance(node.inputs, ChosenInputs) for node in cell.nodes):
        raise NotExportable(f"{name}: a supernet; export a fixed network (nni_snn.build_network)")
    read = {i for node in cell.nodes for i in node.inputs.chosen}
    # A cell input that no edge reads is left out (in nni-snn too its preprocessing never runs into a neuron).
    currents: list = [None, None]
    shapes: list = [None, None]
    for i, (pre, parts, hw) in enumerate(((cell.pre0, s0, hw0), (cell.pre1, s1, hw1))):
        if i in read:
            currents[i], shapes[i] = _preprocess(b, f"{name}.pre{i}", pre, parts, hw)
    spikes: dict[int, str] = {}
    for k, node in enumerate(cell.nodes):
        terms, shape = [], None
        for i in node.inputs.chosen:
            if i not in spikes:
                spikes[i] = b.lif(f"{name}.spiking.{i}", currents[i], shapes[i], cell.spiking[i])
            out, shape = _edge(b, f"{name}.nodes.{k}.edges.{i}", node.edges[str(i)], spikes[i], shapes[i])
            terms += out
        currents.append(terms)
        shapes.append(shape)
    # The concatenation -> BN -> LIF, as one population per node.
    population = cell.output
    bn = norm_before if norm_before is not None else getattr(population.norm, "module", None)
    c = shapes[2][0]
    gain, shift = _bn_affine(bn, len(cell.nodes) * c)
    parts = []
    for k in range(len(cell.nodes)):
        source = currents[k + 2]
        if bn is not None:
            sl = slice(k * c, (k + 1) * c)
            node, _ = b.conv(f"{name}.output.norm{k}", source, shapes[k + 2], gain[sl, None, None, None], shift[sl],
                             groups=c)
            source = [node]
        parts.append((b.lif(f"{name}.output.spike.node{k}", source, shapes[k + 2], population.spike), c))
    return parts, shapes[2][1:]


def to_nir(net: nn.Module, image_shape: tuple[int, int, int], dt: float = DEFAULT_DT, grouped: bool = False):
    """The ``nir.NIRGraph`` of ``net`` (a fixed network of ``nni_snn.build_network``, e.g. a retrain's) for inputs
    of ``image_shape = (C, H, W)`` per step. Raises :class:`NotExportable` naming a layer NIR cannot express.

    ``grouped``: keep depthwise convs as ``Conv2d`` with ``groups`` (for hardware that reads them). By default they
    are written as ordinary convs with block-diagonal kernels (the same function): nir 1.0 infers a conv's input
    channels as ``weight.shape[1]``, and so do snnTorch's and Norse's importers, so a grouped conv fails nir's type
    check and both imports; a grouped graph is written without the type check (``nir.read(path, type_check=False)``).
    """
    nir = optional_import("nir", "export", "exporting to NIR")

    from search_spaces.snn_darts import SpatialClassifier

    net = net.eval()
    b = _Builder(dt, grouped)
    c_in, h, w = image_shape
    b.add("input", nir.Input(input_type={"input": np.array([c_in, h, w])}), [])
    with torch.no_grad():
        enc = net.stem.encode
        conv, shape = b.torch_conv("stem.encode", ["input"], (c_in, h, w), enc.conv, enc.bn)
        stem = b.lif("stem.spike", [conv], shape, net.stem.spike)
        s0 = s1 = [(stem, shape[0])]
        hw0 = hw1 = shape[1:]
        for i, cell in enumerate(net.cells):
            out, hw = _cell(b, f"cells.{i}", cell, s0, s1, hw0, hw1)
            s0, s1, hw0, hw1 = s1, out, hw1, hw
        # The classifier as one conv whose kernel covers the whole last map, one part per population: consumers
        # read Conv2d (and not all of them AvgPool2d or Flatten), and its [classes, 1, 1] output is the logits.
        classifier = net.classifier
        if isinstance(classifier, SpatialClassifier):
            gain, shift = _bn_affine(classifier.norm, classifier.linear.out_features)
            weight = classifier.linear.weight.detach().numpy() * gain[:, None]
            bias = gain * classifier.linear.bias.detach().numpy() + shift
            weight = weight.reshape(weight.shape[0], -1, *hw1)  # flatten(C, H, W) is channel-major
        else:
            linear = classifier.linear
            bn, linear = (linear[0], linear[1]) if isinstance(linear, nn.Sequential) else (None, linear)
            gain, shift = _bn_affine(bn, linear.in_features)
            bias = linear.weight.detach().numpy() @ shift + linear.bias.detach().numpy()
            # The average over the map: every position weighs 1 / (H W).
            weight = np.repeat(np.repeat((linear.weight.detach().numpy() * gain[None, :] / (hw1[0] * hw1[1]))
                                         [:, :, None, None], hw1[0], 2), hw1[1], 3)
        classes = weight.shape[0]
        parts, _ = b.split("classifier", s1, hw1, weight, np.zeros(classes))
        # The parts join in a 1x1 identity conv carrying the bias: nirtorch 2.6 returns each edge into the output
        # separately instead of their sum.
        logits, _ = b.conv("classifier.sum", parts, (classes, 1, 1), np.eye(classes)[:, :, None, None], bias)
        b.add("output", nir.Output(output_type={"output": np.array([classes, 1, 1])}), [logits])
    metadata = {"producer": "nni-snn", "grouped": grouped, "timesteps": int(net.timesteps), "dt": dt,
                "readout": "nni-snn's logits are the mean over the T steps of the output",
                "input": "an image: the same image at each of the T steps; event frames: one frame per step"}
    return nir.NIRGraph(nodes=b.nodes, edges=b.edges, metadata=metadata, type_check=not grouped)


def load_run(run_dir: Path, checkpoint: str | None = None):
    """The retrained network of a retrain folder, with its weights, and its input shape ``(C, H, W)``."""
    from nni_snn.cli.options import RetrainOptions
    from nni_snn.data.images import load_for
    from nni_snn.files.archfile import load_arch
    from nni_snn.files.runfolder import RunFolder
    from nni_snn.networks import build_network

    run = RunFolder(run_dir)
    if not run.config.is_file():
        raise ExportError(f"{run.path}: no config.yaml; give the folder of a 'nni-snn retrain' run")
    settings = run.read_config(error=ExportError)
    if not settings.get("arch"):
        raise ExportError(f"{run.path}: a retrain of a hand-designed baseline; only searched networks (an arch.json's) "
                          "are exported")
    fields = {f for f in RetrainOptions.__dataclass_fields__}
    opts = RetrainOptions(**{k: v for k, v in settings.items() if k in fields})
    arch = load_arch(opts.arch)
    opts = opts.against(arch)
    ckpt = Path(checkpoint) if checkpoint else next(
        (p for p in (run.best_checkpoint, run.resume_checkpoint) if p.is_file()), None)
    if ckpt is None or not ckpt.is_file():
        raise ExportError(f"{run.path}: no checkpoints/best.ckpt or last.ckpt; has the retrain finished an epoch?")
    data = load_for(opts, opts.timesteps, cutout=0)
    net = build_network(arch, width=opts.width, num_cells=opts.cells, num_classes=data.num_classes,
                        in_channels=data.in_channels, image_size=data.image_size, **opts.network_settings())
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
        # The auxiliary head is a training aid: not part of the network a user deploys.
        net.load_state_dict({k.removeprefix("_model."): v for k, v in state.items()
                             if k.startswith("_model.") and not k.startswith("_model.auxiliary_head.")})
    except (OSError, KeyError, TypeError, RuntimeError, ValueError, pickle.UnpicklingError) as err:
        raise ExportError(f"{ckpt}: not a checkpoint of this run's network ({str(err).splitlines()[0][:160]})") from None
    return net, (data.in_channels, data.image_size, data.image_size)


def export_run(run_dir: Path, output: Path, checkpoint: str | None = None, dt: float = DEFAULT_DT,
               grouped: bool = False) -> Path:
    """Write the NIR file of a retrain folder's network to ``output`` (atomically); returns it."""
    nir = optional_import("nir", "export", "nni-snn export")

    net, shape = load_run(run_dir, checkpoint)
    graph = to_nir(net, shape, dt, grouped)
    output = Path(output)
    partial = output.with_name(output.name + ".partial")
    try:  # written beside, then renamed: an existing file is replaced whole or not at all
        output.parent.mkdir(parents=True, exist_ok=True)
        nir.write(partial, graph)
        partial.replace(output)
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise ExportError(f"cannot write the NIR file {output}: {err.strerror or err}", ["output"]) from None
    return output
