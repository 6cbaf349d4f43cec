"""Spike accounting: spikes, synaptic operations and energy per input sample, overall and per group of layers.

Convention (what is counted, per what):

- *spikes per sample* = number of spikes emitted by all spiking neurons (:class:`~nni_snn.snn.neuron.SpikingNeuron`:
  LIF, PLIF, ...) of the network over all T time steps for one input sample, averaged over the samples seen in that
  phase. Only their outputs count; the analog stem input and the classifier are not spikes, nor is the ReLU twin.
- *firing rate* = spikes / neuron-steps, where neuron-steps is the number of output elements of the LIFs
  (neurons x T x samples); a value in [0, 1].
- *samples* = sum of ``shape[0]`` of the first input of the monitored model's forward (images ``[N, C, H, W]``)
  over the calls made while the phase was active.
- *SOPs* (synaptic operations) = for every synaptic layer (``nn.Conv2d`` / ``nn.Linear``) whose input is binary
  (spikes), or event counts (the encoding layer on event-camera frames), the number of accumulations its input
  spikes or events trigger: each input spike (event) x its fan-out, the output
  positions and channels it reaches (exact at the borders: a spike near the edge of a padded conv reaches fewer
  outputs). A depthwise conv followed directly by its pointwise 1x1 conv (the factorised layers of the sep/dil
  convs) is one synaptic layer, as hardware would fuse it: a spike reaches every output channel of the pointwise
  conv at every kernel tap; the pointwise conv is not counted again.
- *MACs* = multiply-accumulates of the synaptic layers whose input is analog: the stem's encoding conv on images,
  the attention gates' convs/MLPs and the classifier reading pooled spike rates; ``output elements x (C_in/groups)
  x kernel area`` (zero padding included, the usual FLOPs convention). The layers inside a :class:`ReadsAnalog`
  module read analog values by construction, or events where it says so at a call (the encoding layer,
  :class:`~nni_snn.snn.ops.Encoder`: an image, MACs; event frames, SOPs); for any other layer, whether its input is
  binary is checked once, on its first counted call (an all-zero input counts as binary: silent spikes).
- *additions* = accumulations without a weight (:data:`ADDERS`: max/avg pooling, identity skips, and modules that
  set ``sums_spikes``, such as a classifier averaging spikes): on spikes, each input spike x the outputs it reaches,
  as for a synaptic layer of one output channel per input channel; on analog values, every output element x the
  window (an identity on analog values costs nothing).
- *neuron updates* = output elements of every LIF: every neuron at every time step, firing or not.
- *memory accesses* = weight reads (one per SOP and per MAC) + state reads and writes (two per SOP, addition and
  neuron update: the accumulator or membrane potential read and written back) + spike writes (one per spike).
- *energy* = each counted module's counts x its unit costs under an :class:`~nni_snn.snn.energy.EnergyProfile`
  (default ``memory-45nm``: operations, neuron updates and SRAM accesses priced by the size of the module's
  memories; ``ops-45nm``: SOPs x 0.9 pJ + MACs x 4.6 pJ only, nni-snn 0.1's; ``loihi``: a chip's measured
  per-event energies). :mod:`nni_snn.snn.energy` says what each profile prices and what no profile counts.
- Groups: every LIF belongs to the group ``group_of(module_name)``; LIFs whose group is ``None`` are ignored.
  ``spikes_per_group`` is spikes per sample per group, so the groups sum to ``spikes_per_sample``; synaptic
  layers and adders are grouped the same way (``sops_per_group``, ``macs_per_group``, ``energy_uj_per_group``).
  Groups named in ``apart`` (the auxiliary head, a training aid that only runs in training) are counted per group
  but left out of the totals, so that training and validation totals describe the same network.

Every forward call counts, so a module run twice per step (e.g. gradient checkpointing, or an architecture
step and a weight step on different batches) counts twice, as the hardware would spike twice.

Counting is cheap when off (``phase is None``: hooks return at once) and asynchronous when on: counts stay
tensors on the outputs' device, and only :meth:`SpikeMonitor.summary` copies them to the host.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Container, Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from nni_snn.snn.energy import (
    BYTES_PER_VALUE,
    COUNT_KINDS,
    DEFAULT_PROFILE,
    E_AC_PJ,
    E_MAC_PJ,
    PROFILES,
    EnergyProfile,
    profile,
)
from nni_snn.snn.neuron import SpikingNeuron

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["ADDERS", "E_AC_PJ", "E_MAC_PJ", "ReadsAnalog", "SpikeMonitor", "calibrate", "default_group_of",
           "energy_uj"]

_F32_EXACT = 2**24
# Modules that add without weights: pooling windows and identity skips (a module can also set ``sums_spikes``).
ADDERS = (nn.MaxPool2d, nn.AvgPool2d, nn.Identity)


def energy_uj(sops: float, macs: float, e_ac_pj: float = E_AC_PJ, e_mac_pj: float = E_MAC_PJ) -> float:
    """Energy in microjoules of ``sops`` accumulates and ``macs`` multiply-accumulates: the ``ops-45nm`` profile on
    totals, for records that hold no other counts (nni-snn 0.1's metrics.json)."""
    return (sops * e_ac_pj + macs * e_mac_pj) * 1e-6


class ReadsAnalog(nn.Module):
    """Base of a module whose convs and linears read analog values, not spikes (attention gates, a classifier on
    spike rates, the encoding layer): counted as MACs even when a batch happens to feed them zeros only, unless
    ``reads_events`` says that the current call reads event frames (the encoding layer on event data: SOPs)."""

    reads_events = False


def _synaptic_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module, nn.Module | None]]:
    """``(name, layer, fused_pointwise)`` for every conv/linear; a depthwise conv directly followed by a 1x1 conv
    in the same ``nn.Sequential`` comes with that pointwise conv, which is not yielded on its own."""
    pointwise_after: dict[nn.Module, nn.Module] = {}
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            for first, second in zip(module, list(module)[1:]):
                if (isinstance(first, nn.Conv2d) and first.groups == first.in_channels == first.out_channels > 1
                        and isinstance(second, nn.Conv2d) and second.kernel_size == (1, 1)
                        and second.stride == (1, 1) and second.groups == 1):
                    pointwise_after[first] = second
    fused = set(pointwise_after.values())
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)) and module not in fused:
            yield name, module, pointwise_after.get(module)


def _fan_out_channels(layer: nn.Module, pointwise: nn.Module | None) -> int:
    """Output channels one input channel reaches (a fused depthwise+pointwise layer: all of the pointwise's)."""
    if pointwise is not None:
        return pointwise.out_channels
    return layer.out_channels // layer.groups if isinstance(layer, nn.Conv2d) else layer.out_features


def _reach(size: int, outputs: int, kernel: int, stride: int, left_pad: int, dilation: int) -> tuple[int, ...]:
    """Along one axis of length ``size``: how many (output position, kernel tap) pairs read each input index."""
    reach = [0] * size
    for o in range(outputs):
        for t in range(kernel):
            i = o * stride - left_pad + t * dilation
            if 0 <= i < size:
                reach[i] += 1
    return tuple(reach)


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _left_padding(layer: nn.Module) -> tuple[int, int]:
    if layer.padding == "valid":
        return (0, 0)
    if layer.padding == "same":  # PyTorch puts the odd pixel of padding on the right / bottom
        return tuple(d * (k - 1) // 2 for k, d in zip(layer.kernel_size, layer.dilation))
    return _pair(layer.padding)


def _window(layer: nn.Module) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(kernel, stride, left padding, dilation) of a conv or pooling layer."""
    kernel = _pair(layer.kernel_size)
    stride = _pair(layer.stride if layer.stride is not None else layer.kernel_size)
    return kernel, stride, _left_padding(layer), _pair(getattr(layer, "dilation", 1))


def _macs(layer: nn.Module, out: Tensor) -> int:
    if isinstance(layer, nn.Linear):
        return out.numel() * layer.in_features
    kh, kw = layer.kernel_size
    return out.numel() * (layer.in_channels // layer.groups) * kh * kw


def _state_values(module: nn.Module, out: Tensor) -> int:
    """Values one sample's state holds at one time step in ``module``'s output memory: a LIF's neurons (time-major
    ``[T, N, ...]``), a conv's, pooling's or skip's output map (``[..., C, H, W]``), a linear layer's features."""
    if isinstance(module, SpikingNeuron):
        return math.prod(out.shape[2:])
    if isinstance(module, nn.Linear):
        return out.shape[-1]
    return math.prod(out.shape[-3:]) if out.dim() >= 3 else out.shape[-1]


def default_group_of(name: str, indexed: Container[str] | None = None) -> str:
    """``"cells.3.node.op"`` -> ``"cells.3"`` (second component is a digit), ``"stem.lif"`` -> ``"stem"``.

    ``indexed``: the top-level containers whose numbered children are groups of their own (None: every container).
    """
    parts = name.split(".")
    if len(parts) >= 2 and parts[1].isdigit() and (indexed is None or parts[0] in indexed):
        return ".".join(parts[:2])
    return parts[0] or "<root>"


class SpikeMonitor:
    """Count spikes, neuron updates, synaptic operations and additions of every module in ``model`` per phase (e.g.
    ``"train"``, ``"val"``) and group, and price them with an energy profile.

    Use ``with monitor.counting("val"): model(x)``; or set ``monitor.phase`` directly (``None`` = off).
    ``with SpikeMonitor(model) as m:`` removes the hooks on exit.
    """

    def __init__(self, model: nn.Module, group_of: Callable[[str], str | None] | None = None,
                 apart: Container[str] = ()) -> None:
        self.phase: str | None = None
        self.apart = apart  # groups counted on their own, outside the totals
        group_of = group_of or default_group_of
        self.groups: list[str] = []  # groups with neurons, synaptic layers or adders
        self.module_groups: dict[str, str] = {}  # counted module name -> group
        # phase -> kind (COUNT_KINDS) -> module name -> count (device tensor, or int where shapes alone give it)
        self._counts: dict[str, dict[str, dict[str, Tensor | int]]] = {}
        self._samples: dict[str, int] = {}
        self._handles = []
        self.weight_bytes: dict[str, int] = {}  # synaptic layer -> its weights' memory
        self.state_bytes: dict[str, int] = {}  # counted module -> its output state's memory (set on its first call)
        self._binary_input: dict[str, bool] = {}  # layer or adder -> reads spikes (decided once)
        self._analog_owner: dict[str, ReadsAnalog] = {}  # layer -> the ReadsAnalog module it belongs to
        self._last_map: tuple | None = None
        self._reach_tensors: dict[tuple, Tensor] = {}
        analog_owner = {f"{owner_name}.{name}" if owner_name else name: owner
                        for owner_name, owner in model.named_modules() if isinstance(owner, ReadsAnalog)
                        for name, _ in owner.named_modules()}

        def watch(name: str, hook: Callable, module: nn.Module) -> bool:
            group = group_of(name)
            if group is None:
                return False
            if group not in self.groups:
                self.groups.append(group)
            self.module_groups[name] = group
            self._handles.append(module.register_forward_hook(hook))
            return True

        for name, module in model.named_modules():
            if isinstance(module, SpikingNeuron):
                watch(name, self._make_neuron_hook(name), module)
        # Groups with neurons: the only ones spikes and firing rates describe (the synaptic layers come next).
        self.neuron_groups: list[str] = list(self.groups)
        for name, layer, pointwise in _synaptic_layers(model):
            if watch(name, self._make_synapse_hook(name, pointwise), layer):
                self.weight_bytes[name] = BYTES_PER_VALUE * (
                    layer.weight.numel() + (pointwise.weight.numel() if pointwise is not None else 0))
                if name in analog_owner:
                    self._analog_owner[name] = analog_owner[name]
        for name, module in model.named_modules():
            if getattr(module, "sums_spikes", False) or (isinstance(module, ADDERS) and name not in analog_owner):
                watch(name, self._make_adder_hook(name), module)
        self._handles.append(model.register_forward_pre_hook(self._count_samples, with_kwargs=True))

    def _add(self, kind: str, name: str, count: Tensor | int) -> None:
        store = self._counts.setdefault(self.phase, {}).setdefault(kind, {})
        prev = store.get(name)
        if prev is None:
            store[name] = count
        elif isinstance(prev, Tensor) and isinstance(count, Tensor):
            store[name] = prev + count.to(prev.device)
        else:
            store[name] = prev + count

    def _note_state(self, name: str, values: Callable[[], int]) -> None:
        if name not in self.state_bytes:
            self.state_bytes[name] = BYTES_PER_VALUE * values()

    def _make_neuron_hook(self, name: str) -> Callable[[nn.Module, Any, Tensor], None]:
        def hook(module: nn.Module, inputs: Any, output: Tensor) -> None:
            if self.phase is None:
                return
            self._note_state(name, lambda: _state_values(module, output))
            # A float32 sum of 0/1 values is exact while the count stays below 2**24 (every partial sum is
            # an integer that float32 represents); it is ~5x cheaper than summing in float64.
            dtype = torch.float32 if output.numel() <= _F32_EXACT else torch.float64
            self._add("spikes", name, output.detach().sum(dtype=dtype).to(torch.float64))
            self._add("neuron_updates", name, output.numel())

        return hook

    def _reads_spikes(self, name: str, x: Tensor) -> bool:
        owner = self._analog_owner.get(name)
        if owner is not None:
            return owner.reads_events
        binary = self._binary_input.get(name)
        if binary is None:  # one host sync per module, on its first counted call
            binary = self._binary_input[name] = bool(((x == 0) | (x == 1)).all())
        return binary

    def _make_synapse_hook(self, name: str, pointwise: nn.Module | None) -> Callable[..., None]:
        def hook(layer: nn.Module, inputs: tuple, output: Tensor) -> None:
            if self.phase is None:
                return
            if pointwise is None:
                self._note_state(name, lambda: _state_values(layer, output))
            else:  # the accumulators are the pointwise conv's outputs
                self._note_state(name, lambda: math.prod(output.shape[-2:]) * pointwise.out_channels)
            x = inputs[0].detach()
            if self._reads_spikes(name, x):
                self._add("sops", name, self._count_events(layer, x, output, _fan_out_channels(layer, pointwise)))
            else:
                macs = _macs(layer, output)
                if pointwise is not None:  # the fused pointwise conv reads this analog output
                    macs += output.numel() * pointwise.out_channels
                self._add("macs", name, macs)

        return hook

    def _make_adder_hook(self, name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
            if self.phase is None or not inputs or not isinstance(inputs[0], Tensor):
                return
            x = inputs[0].detach()
            pooling = isinstance(module, (nn.MaxPool2d, nn.AvgPool2d))
            if getattr(module, "sums_spikes", False):  # a global pool of time-major spikes: one sum per channel
                self._note_state(name, lambda: x.shape[2])
                self._add("adds", name, self._spike_map(x, conv=False))
                return
            self._note_state(name, lambda: _state_values(module, output))
            if self._reads_spikes(name, x):
                # Each spike is added into every output its window reaches (pooling), or once (skip, global sum).
                adds = self._count_events(module, x, output, 1) if pooling else self._spike_map(x, conv=False)
            elif pooling:
                adds = output.numel() * math.prod(_pair(module.kernel_size))
            else:
                return  # an identity on analog values moves nothing
            self._add("adds", name, adds)

        return hook

    def _count_events(self, layer: nn.Module, x: Tensor, output: Tensor, fan_out_channels: int) -> Tensor:
        """Accumulations triggered by the input spikes ``x`` of ``layer`` (a conv, a linear or a pooling), reaching
        ``fan_out_channels`` output channels per input channel. A window is a rectangle, so the number of outputs an
        input pixel reaches is a product of per-axis counts: fan-out x sum over pixels of spikes x reach_h x reach_w.
        """
        if isinstance(layer, nn.Linear):
            return self._spike_map(x, conv=False) * fan_out_channels
        spike_map = self._spike_map(x, conv=True)
        geometry = zip(spike_map.shape, output.shape[-2:], *_window(layer))
        reach_h, reach_w = (self._reach_on(spike_map.device, *axis) for axis in geometry)
        return (reach_h @ spike_map @ reach_w) * fan_out_channels

    def _reach_on(self, device: torch.device, *axis: int) -> Tensor:
        """:func:`_reach` as a tensor on ``device``, made once per geometry: no host-to-device copy per step."""
        key = (device, *axis)
        if key not in self._reach_tensors:
            self._reach_tensors[key] = torch.tensor(_reach(*axis), dtype=torch.float64, device=device)
        return self._reach_tensors[key]

    def _spike_map(self, x: Tensor, conv: bool) -> Tensor:
        """``x`` summed over samples and channels, kept for the next layer reading the same spikes (the candidate
        operations of a DARTS edge all read their edge's input): one pass over the spikes per edge, not per op."""
        # Inference tensors (Lightning's test and predict loops) keep no version counter; nothing here writes into
        # spikes in place, so their address, shape and strides name them.
        key = (x.data_ptr(), x.shape, x.stride(), 0 if x.is_inference() else x._version, conv)
        if self._last_map is not None and self._last_map[0] == key:
            return self._last_map[2]
        # float32 sums of 0/1 values are exact below 2**24 per pixel; the products with the reach counts are not.
        spike_map = (x.flatten(0, -3).sum(dim=0, dtype=torch.float32).double() if conv
                     else x.sum(dtype=torch.float64))
        self._last_map = (key, x, spike_map)  # holding x keeps its memory (and so the key) from being reused
        return spike_map

    def _count_samples(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if self.phase is None:
            return
        first = args[0] if args else next(iter(kwargs.values()), None)
        if isinstance(first, Tensor) and first.dim() > 0:
            self._samples[self.phase] = self._samples.get(self.phase, 0) + int(first.shape[0])

    @contextlib.contextmanager
    def counting(self, phase: str) -> Iterator[SpikeMonitor]:
        """Count under ``phase`` inside the block; the previous phase is restored afterwards."""
        previous, self.phase = self.phase, phase
        try:
            yield self
        finally:
            self.phase = previous

    @property
    def phases(self) -> list[str]:
        """Phases that have seen samples or counts since their last reset."""
        return sorted(set(self._samples) | set(self._counts))

    def reset(self, phase: str | None = None) -> None:
        """Forget the counts of ``phase``, or of every phase when ``phase`` is None."""
        for store in (self._counts, self._samples):
            if phase is None:
                store.clear()
            else:
                store.pop(phase, None)

    def counts(self, phase: str) -> dict[str, dict[str, Tensor | int]]:
        """kind (:data:`~nni_snn.snn.energy.COUNT_KINDS`) -> module name -> count of ``phase`` over all its samples
        (no host sync: device tensors where the count depends on the spikes)."""
        return {kind: dict(self._counts.get(phase, {}).get(kind, {})) for kind in COUNT_KINDS}

    def unit_pj(self, kind: str, name: str, energy: EnergyProfile) -> float:
        """pJ of one count of ``kind`` in module ``name`` under ``energy`` (arithmetic and memory together)."""
        return sum(energy.unit_pj(kind, self.weight_bytes.get(name, 0), self.state_bytes.get(name, 0)))

    def samples(self, phase: str) -> int:
        return self._samples.get(phase, 0)

    def summary(self, phase: str, reduce: Callable[[Tensor], Tensor] | None = None,
                energy: EnergyProfile | None = None) -> dict[str, Any]:
        """Counts of ``phase`` as plain Python numbers, priced by ``energy`` (default: the ``memory-45nm``
        profile); the one place that syncs with the device.

        Keys, per sample: ``samples``, ``spikes_per_sample``, ``firing_rate``, ``sops_per_sample``,
        ``macs_per_sample``, ``adds_per_sample``, ``neuron_updates_per_sample``, ``memory_accesses_per_sample`` (and
        its parts ``weight_reads_per_sample``, ``state_accesses_per_sample``; spike writes are the spikes),
        ``energy_uj_per_sample`` with ``energy_uj_by_term`` (sops, macs, adds, neuron_updates, spikes: their
        arithmetic; memory: every access), ``energy_profile`` (its name) and ``energy_uj_by_profile`` (the same counts
        under every registered profile, at their own prices); per group, ``spikes_per_group`` and
        ``firing_rate_per_group`` (over the groups with neurons), ``sops_per_group``, ``macs_per_group``,
        ``neuron_updates_per_group`` and ``energy_uj_per_group`` (over all groups). The totals leave out the groups
        in ``apart``. A phase without samples gives zeros.

        ``reduce``: sums a float64 vector over the processes of a distributed run (e.g. an all-reduce); the raw
        counts and sample numbers of every process are added first and only then divided, so that the figures are
        those of all the samples, as one process seeing them all would count them.
        """
        energy = energy or profile(DEFAULT_PROFILE)
        counted = self._counts.get(phase, {})
        # One stack, one copy to the host for everything counted on the device.
        keyed = [(kind, name, value) for kind, store in counted.items() for name, value in store.items()]
        on_device = [(i, value) for i, (_, _, value) in enumerate(keyed) if isinstance(value, Tensor)]
        host = [float(value) for _, _, value in keyed]
        if on_device:
            device = on_device[0][1].device
            values = torch.stack([v.to(device) for _, v in on_device]).cpu().tolist()
            for (i, _), value in zip(on_device, values):
                host[i] = value
        # Per group: every kind's count, the energy of each term (arithmetic apart from memory) and the energy under
        # every registered profile (so that a study can draw its fronts under each), in pJ.
        terms = (*COUNT_KINDS, "memory")
        others = [PROFILES.load(name) for name in PROFILES]
        per_group = {g: dict.fromkeys((*COUNT_KINDS, *(f"pj_{t}" for t in terms), *(p.name for p in others)), 0.0)
                     for g in self.groups}
        for (kind, name, _), value in zip(keyed, host):
            row = per_group[self.module_groups[name]]
            row[kind] += value
            sizes = self.weight_bytes.get(name, 0), self.state_bytes.get(name, 0)
            arithmetic, memory = energy.unit_pj(kind, *sizes)
            row[f"pj_{kind}"] += value * arithmetic
            row["pj_memory"] += value * memory
            for other in others:
                row[other.name] += value * sum(other.unit_pj(kind, *sizes))
        samples = self._samples.get(phase, 0)
        if reduce is not None:
            # Every process lists its counts in the same order (the groups are the model's, alike in every process):
            # one sum over processes adds like to like. float64 keeps integer counts exact up to 2**53.
            flat = [v for row in per_group.values() for v in row.values()] + [float(samples)]
            summed = iter(reduce(torch.tensor(flat, dtype=torch.float64)).cpu().tolist())
            for row in per_group.values():
                for key in row:
                    row[key] = next(summed)
            samples = round(next(summed))

        def total(key: str) -> float:
            return sum(row[key] for g, row in per_group.items() if g not in self.apart)

        def per_sample(value: float) -> float:
            return value / samples if samples else 0.0

        neuron_steps = total("neuron_updates")
        sops, adds, updates = total("sops"), total("adds"), neuron_steps
        weight_reads = sops + total("macs")
        state_accesses = 2 * (sops + adds + updates)
        uj = {t: per_sample(total(f"pj_{t}")) * 1e-6 for t in terms}
        group_uj = {g: per_sample(sum(row[f"pj_{t}"] for t in terms)) * 1e-6 for g, row in per_group.items()}
        return {
            "samples": samples,
            "spikes_per_sample": per_sample(total("spikes")),
            "firing_rate": total("spikes") / neuron_steps if neuron_steps else 0.0,
            "sops_per_sample": per_sample(sops),
            "macs_per_sample": per_sample(total("macs")),
            "adds_per_sample": per_sample(adds),
            "neuron_updates_per_sample": per_sample(updates),
            "weight_reads_per_sample": per_sample(weight_reads),
            "state_accesses_per_sample": per_sample(state_accesses),
            "memory_accesses_per_sample": per_sample(weight_reads + state_accesses + total("spikes")),
            "energy_uj_per_sample": sum(uj.values()),
            "energy_uj_by_term": uj,
            "energy_profile": energy.name,
            "energy_uj_by_profile": {p.name: per_sample(total(p.name)) * 1e-6 for p in others},
            "spikes_per_group": {g: per_sample(per_group[g]["spikes"]) for g in self.neuron_groups},
            "firing_rate_per_group": {g: (per_group[g]["spikes"] / per_group[g]["neuron_updates"]
                                          if per_group[g]["neuron_updates"] else 0.0) for g in self.neuron_groups},
            "sops_per_group": {g: per_sample(row["sops"]) for g, row in per_group.items()},
            "macs_per_group": {g: per_sample(row["macs"]) for g, row in per_group.items()},
            "neuron_updates_per_group": {g: per_sample(per_group[g]["neuron_updates"]) for g in self.neuron_groups},
            "energy_uj_per_group": group_uj,
        }

    def remove(self) -> None:
        """Remove all hooks; counts already gathered stay readable."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


@torch.no_grad()
def calibrate(model: nn.Module, batches, group_of: Callable[[str], str | None] | None = None,
              energy: EnergyProfile | None = None) -> dict[str, Any]:
    """Evaluation-mode counts of ``model`` over ``batches`` (an iterable of images or ``(images, labels)``), priced
    by ``energy``: the :meth:`SpikeMonitor.summary` of one short pass, e.g. to estimate a network's energy."""
    was_training = model.training
    model.eval()
    try:
        with SpikeMonitor(model, group_of) as monitor, monitor.counting("calibration"):
            for batch in batches:
                model(batch[0] if isinstance(batch, (tuple, list)) else batch)
        return monitor.summary("calibration", energy=energy)
    finally:
        model.train(was_training)
