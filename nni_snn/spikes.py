"""Spike accounting: spikes, synaptic operations and energy per input sample, overall and per group of layers.

Convention (what is counted, per what):

- *spikes per sample* = number of spikes emitted by all spiking neurons (:class:`~nni_snn.neuron.SpikingNeuron`:
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
  :class:`~nni_snn.ops.Encoder`: an image, MACs; event frames, SOPs); for any other layer, whether its input is
  binary is checked once, on its first counted call (an all-zero input counts as binary: silent spikes).
- *energy* (:func:`energy_uj`) = SOPs x E_AC + MACs x E_MAC, by default 0.9 pJ per accumulate and 4.6 pJ per
  multiply-accumulate (32-bit float, 45 nm CMOS: M. Horowitz, "Computing's energy problem", ISSCC 2014), the
  usual estimate in SNN papers. Batch norm, pooling, neuron updates and data movement are not counted.
- Groups: every LIF belongs to the group ``group_of(module_name)``; LIFs whose group is ``None`` are ignored.
  ``spikes_per_group`` is spikes per sample per group, so the groups sum to ``spikes_per_sample``; synaptic
  layers are grouped the same way (``sops_per_group``, ``macs_per_group``). Groups named in ``apart`` (the
  auxiliary head, a training aid that only runs in training) are counted per group but left out of the totals, so
  that training and validation totals describe the same network.

Every forward call counts, so a module run twice per step (e.g. gradient checkpointing, or an architecture
step and a weight step on different batches) counts twice, as the hardware would spike twice.

Counting is cheap when off (``phase is None``: hooks return at once) and asynchronous when on: counts stay
tensors on the outputs' device, and only :meth:`SpikeMonitor.summary` copies them to the host.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Container, Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from nni_snn.neuron import SpikingNeuron

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["E_AC_PJ", "E_MAC_PJ", "ReadsAnalog", "SpikeMonitor", "calibrate", "default_group_of", "energy_uj"]

_F32_EXACT = 2**24
E_AC_PJ = 0.9  # pJ per accumulate (SOP), 32-bit float add, 45 nm (Horowitz, ISSCC 2014)
E_MAC_PJ = 4.6  # pJ per multiply-accumulate, 32-bit float mult 3.7 + add 0.9, 45 nm (same source)


def energy_uj(sops: float, macs: float, e_ac_pj: float = E_AC_PJ, e_mac_pj: float = E_MAC_PJ) -> float:
    """Energy in microjoules of ``sops`` accumulates and ``macs`` multiply-accumulates."""
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


def _left_padding(layer: nn.Conv2d) -> tuple[int, int]:
    if layer.padding == "valid":
        return (0, 0)
    if layer.padding == "same":  # PyTorch puts the odd pixel of padding on the right / bottom
        return tuple(d * (k - 1) // 2 for k, d in zip(layer.kernel_size, layer.dilation))
    return layer.padding


def _macs(layer: nn.Module, out: Tensor) -> int:
    if isinstance(layer, nn.Linear):
        return out.numel() * layer.in_features
    kh, kw = layer.kernel_size
    return out.numel() * (layer.in_channels // layer.groups) * kh * kw


def default_group_of(name: str, indexed: Container[str] | None = None) -> str:
    """``"cells.3.node.op"`` -> ``"cells.3"`` (second component is a digit), ``"stem.lif"`` -> ``"stem"``.

    ``indexed``: the top-level containers whose numbered children are groups of their own (None: every container).
    """
    parts = name.split(".")
    if len(parts) >= 2 and parts[1].isdigit() and (indexed is None or parts[0] in indexed):
        return ".".join(parts[:2])
    return parts[0] or "<root>"


class SpikeMonitor:
    """Count spikes of every LIF in ``model`` per phase (e.g. ``"train"``, ``"val"``) and group.

    Use ``with monitor.counting("val"): model(x)``; or set ``monitor.phase`` directly (``None`` = off).
    ``with SpikeMonitor(model) as m:`` removes the hooks on exit.
    """

    def __init__(self, model: nn.Module, group_of: Callable[[str], str | None] | None = None,
                 apart: Container[str] = ()) -> None:
        self.phase: str | None = None
        self.apart = apart  # groups counted on their own, outside the totals
        group_of = group_of or default_group_of
        self.groups: list[str] = []  # groups with neurons or synaptic layers
        self._spikes: dict[str, dict[str, Tensor]] = {}
        self._steps: dict[str, dict[str, int]] = {}
        self._samples: dict[str, int] = {}
        self._handles = []
        for name, module in model.named_modules():
            if not isinstance(module, SpikingNeuron):
                continue
            group = group_of(name)
            if group is None:
                continue
            if group not in self.groups:
                self.groups.append(group)
            self._handles.append(module.register_forward_hook(self._make_hook(group)))
        # Groups with neurons: the only ones spikes and firing rates describe (the synaptic layers come next).
        self.neuron_groups: list[str] = list(self.groups)
        self.layer_groups: dict[str, str] = {}  # synaptic layer name -> group
        self._sops: dict[str, dict[str, Tensor]] = {}  # phase -> layer -> SOPs (device tensor)
        self._macs: dict[str, dict[str, int]] = {}  # phase -> layer -> MACs (shapes only: no device work)
        self._binary_input: dict[str, bool] = {}  # layer -> reads spikes (decided once)
        self._analog_owner: dict[str, ReadsAnalog] = {}  # layer -> the ReadsAnalog module it belongs to
        analog_owner = {f"{owner_name}.{name}" if owner_name else name: owner
                        for owner_name, owner in model.named_modules() if isinstance(owner, ReadsAnalog)
                        for name, _ in owner.named_modules()}
        self._last_map: tuple | None = None
        self._reach_tensors: dict[tuple, Tensor] = {}
        for name, layer, pointwise in _synaptic_layers(model):
            group = group_of(name)
            if group is None:
                continue
            if group not in self.groups:
                self.groups.append(group)
            self.layer_groups[name] = group
            if name in analog_owner:
                self._analog_owner[name] = analog_owner[name]
            self._handles.append(layer.register_forward_hook(self._make_synapse_hook(name, pointwise)))
        self._handles.append(model.register_forward_pre_hook(self._count_samples, with_kwargs=True))

    def _make_hook(self, group: str) -> Callable[[nn.Module, Any, Tensor], None]:
        def hook(module: nn.Module, inputs: Any, output: Tensor) -> None:
            phase = self.phase
            if phase is None:
                return
            spikes = self._spikes.setdefault(phase, {})
            steps = self._steps.setdefault(phase, {})
            # A float32 sum of 0/1 values is exact while the count stays below 2**24 (every partial sum is
            # an integer that float32 represents); it is ~5x cheaper than summing in float64.
            dtype = torch.float32 if output.numel() <= _F32_EXACT else torch.float64
            count = output.detach().sum(dtype=dtype).to(torch.float64)
            prev = spikes.get(group)
            spikes[group] = count if prev is None else prev + count.to(prev.device)
            steps[group] = steps.get(group, 0) + output.numel()

        return hook

    def _make_synapse_hook(self, name: str, pointwise: nn.Module | None) -> Callable[..., None]:
        def hook(layer: nn.Module, inputs: tuple, output: Tensor) -> None:
            phase = self.phase
            if phase is None:
                return
            x = inputs[0].detach()
            owner = self._analog_owner.get(name)
            binary = owner.reads_events if owner is not None else self._binary_input.get(name)
            if binary is None:  # one host sync per layer, on its first counted call
                binary = self._binary_input[name] = bool(((x == 0) | (x == 1)).all())
            if binary:
                sops = self._sops.setdefault(phase, {})
                count = self._count_sops(layer, x, output, _fan_out_channels(layer, pointwise))
                sops[name] = count if name not in sops else sops[name] + count
            else:
                macs = _macs(layer, output)
                if pointwise is not None:  # the fused pointwise conv reads this analog output
                    macs += output.numel() * pointwise.out_channels
                store = self._macs.setdefault(phase, {})
                store[name] = store.get(name, 0) + macs

        return hook

    def _count_sops(self, layer: nn.Module, x: Tensor, output: Tensor, fan_out_channels: int) -> Tensor:
        """Accumulations triggered by the input spikes ``x`` of ``layer``, reaching ``fan_out_channels`` output
        channels per input channel. A conv's window is a rectangle, so the number of outputs an input pixel reaches
        is a product of per-axis counts: SOPs = fan-out x sum over pixels of spikes x reach_h x reach_w."""
        if isinstance(layer, nn.Linear):
            return self._spike_map(x, conv=False) * fan_out_channels
        spike_map = self._spike_map(x, conv=True)
        geometry = zip(spike_map.shape, output.shape[-2:], layer.kernel_size, layer.stride, _left_padding(layer),
                       layer.dilation)
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
        key = (x.data_ptr(), x.shape, x.stride(), x._version, conv)
        if self._last_map is not None and self._last_map[0] == key:
            return self._last_map[2]
        # float32 sums of 0/1 values are exact below 2**24 per pixel; the products with the reach counts are not.
        spike_map = x.sum(dim=(0, 1), dtype=torch.float32).double() if conv else x.sum(dtype=torch.float64)
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
        """Phases that have seen samples or spikes since their last reset."""
        return sorted(set(self._samples) | set(self._spikes))

    def reset(self, phase: str | None = None) -> None:
        """Forget the counts of ``phase``, or of every phase when ``phase`` is None."""
        for store in (self._spikes, self._steps, self._samples, self._sops, self._macs):
            if phase is None:
                store.clear()
            else:
                store.pop(phase, None)

    def layer_counts(self, phase: str) -> tuple[dict[str, Tensor], dict[str, int]]:
        """``(sops, macs)`` of ``phase`` per synaptic layer name; SOPs stay device tensors (no host sync)."""
        return dict(self._sops.get(phase, {})), dict(self._macs.get(phase, {}))

    def samples(self, phase: str) -> int:
        return self._samples.get(phase, 0)

    def summary(self, phase: str, reduce: Callable[[Tensor], Tensor] | None = None) -> dict[str, Any]:
        """Counts of ``phase`` as plain Python numbers (the one place that syncs with the device).

        Keys: ``samples``, ``spikes_per_sample``, ``firing_rate``, ``sops_per_sample``, ``macs_per_sample`` and,
        per group, ``spikes_per_group`` and ``firing_rate_per_group`` (over the groups with neurons),
        ``sops_per_group`` and ``macs_per_group`` (over all groups). The totals leave out the groups in ``apart``.
        A phase without samples gives zeros.

        ``reduce``: sums a float64 vector over the processes of a distributed run (e.g. an all-reduce); the raw
        counts and sample numbers of every process are added first and only then divided, so that the figures are
        those of all the samples, as one process seeing them all would count them.
        """
        spike_t = self._spikes.get(phase, {})
        sop_t = self._sops.get(phase, {})
        # One stack, one copy to the host for everything counted on the device.
        keyed = [("spikes", g, t) for g, t in spike_t.items()] + [("sops", n, t) for n, t in sop_t.items()]
        host = torch.stack([t.to(keyed[0][2].device) for *_, t in keyed]).cpu().tolist() if keyed else []
        spikes = {g: 0.0 for g in self.neuron_groups}  # a group of synaptic layers only (a classifier) has no spikes
        steps = {g: float(self._steps.get(phase, {}).get(g, 0)) for g in self.neuron_groups}
        sops = {g: 0.0 for g in self.groups}
        macs = {g: 0.0 for g in self.groups}
        for (kind, key, _), value in zip(keyed, host):
            if kind == "spikes":
                spikes[key] += value
            else:
                sops[self.layer_groups[key]] += value
        for name, value in self._macs.get(phase, {}).items():
            macs[self.layer_groups[name]] += value
        samples = self._samples.get(phase, 0)
        if reduce is not None:
            # Every process lists its counts in the same order (the groups are the model's, alike in every process):
            # one sum over processes adds like to like. float64 keeps integer counts exact up to 2**53.
            stores = (spikes, steps, sops, macs)
            flat = [v for store in stores for v in store.values()] + [float(samples)]
            summed = reduce(torch.tensor(flat, dtype=torch.float64)).cpu().tolist()
            values = iter(summed)
            for store in stores:
                for key in store:
                    store[key] = next(values)
            samples = round(next(values))

        def total(per_group: dict) -> float:
            return sum(v for g, v in per_group.items() if g not in self.apart)

        total_steps = total(steps)
        per_sample = (lambda s: s / samples) if samples else (lambda s: 0.0)
        return {
            "samples": samples,
            "spikes_per_sample": per_sample(total(spikes)),
            "firing_rate": total(spikes) / total_steps if total_steps else 0.0,
            "sops_per_sample": per_sample(total(sops)),
            "macs_per_sample": per_sample(total(macs)),
            "spikes_per_group": {g: per_sample(v) for g, v in spikes.items()},
            "firing_rate_per_group": {g: v / steps[g] if steps[g] else 0.0 for g, v in spikes.items()},
            "sops_per_group": {g: per_sample(v) for g, v in sops.items()},
            "macs_per_group": {g: per_sample(v) for g, v in macs.items()},
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
def calibrate(model: nn.Module, batches, group_of: Callable[[str], str | None] | None = None) -> dict[str, Any]:
    """Evaluation-mode counts of ``model`` over ``batches`` (an iterable of images or ``(images, labels)``):
    the :meth:`SpikeMonitor.summary` of one short pass, e.g. to estimate a network's energy before training."""
    was_training = model.training
    model.eval()
    try:
        with SpikeMonitor(model, group_of) as monitor, monitor.counting("calibration"):
            for batch in batches:
                model(batch[0] if isinstance(batch, (tuple, list)) else batch)
        return monitor.summary("calibration")
    finally:
        model.train(was_training)
