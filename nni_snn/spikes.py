"""Spike accounting: how many spikes a network emits per input sample, overall and per group of layers.

Convention (what is counted, per what):

- *spikes per sample* = number of spikes emitted by all :class:`~nni_snn.neuron.LIF` neurons of the network
  over all T time steps for one input sample, averaged over the samples seen in that phase. Only LIF outputs
  count; the analog stem input and the classifier are not spikes.
- *firing rate* = spikes / neuron-steps, where neuron-steps is the number of output elements of the LIFs
  (neurons x T x samples); a value in [0, 1].
- *samples* = sum of ``shape[0]`` of the first input of the monitored model's forward (images ``[N, C, H, W]``)
  over the calls made while the phase was active.
- Groups: every LIF belongs to the group ``group_of(module_name)``; LIFs whose group is ``None`` are ignored.
  ``spikes_per_group`` is spikes per sample per group, so the groups sum to ``spikes_per_sample``.

Every forward call counts, so a module run twice per step (e.g. gradient checkpointing, or an architecture
step and a weight step on different batches) counts twice, as the hardware would spike twice.

Counting is cheap when off (``phase is None``: hooks return at once) and asynchronous when on: counts stay
tensors on the outputs' device, and only :meth:`SpikeMonitor.summary` copies them to the host.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from nni_snn.neuron import LIF

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["SpikeMonitor", "default_group_of"]

_F32_EXACT = 2**24


def default_group_of(name: str) -> str:
    """``"cells.3.node.op"`` -> ``"cells.3"`` (second component is a digit), ``"stem.lif"`` -> ``"stem"``."""
    parts = name.split(".")
    if len(parts) >= 2 and parts[1].isdigit():
        return ".".join(parts[:2])
    return parts[0] or "<root>"


class SpikeMonitor:
    """Count spikes of every LIF in ``model`` per phase (e.g. ``"train"``, ``"val"``) and group.

    Use ``with monitor.counting("val"): model(x)``; or set ``monitor.phase`` directly (``None`` = off).
    ``with SpikeMonitor(model) as m:`` removes the hooks on exit.
    """

    def __init__(self, model: nn.Module, group_of: Callable[[str], str | None] | None = None) -> None:
        self.phase: str | None = None
        group_of = group_of or default_group_of
        self.groups: list[str] = []
        self._spikes: dict[str, dict[str, Tensor]] = {}
        self._steps: dict[str, dict[str, int]] = {}
        self._samples: dict[str, int] = {}
        self._handles = []
        for name, module in model.named_modules():
            if not isinstance(module, LIF):
                continue
            group = group_of(name)
            if group is None:
                continue
            if group not in self.groups:
                self.groups.append(group)
            self._handles.append(module.register_forward_hook(self._make_hook(group)))
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
        for store in (self._spikes, self._steps, self._samples):
            if phase is None:
                store.clear()
            else:
                store.pop(phase, None)

    def summary(self, phase: str) -> dict[str, Any]:
        """Counts of ``phase`` as plain Python numbers (the one place that syncs with the device).

        Keys: ``samples``, ``spikes_per_sample``, ``firing_rate``, ``spikes_per_group`` and
        ``firing_rate_per_group`` (dicts over all groups). A phase without samples gives zeros.
        """
        samples = self._samples.get(phase, 0)
        spike_t = self._spikes.get(phase, {})
        steps = self._steps.get(phase, {})
        counted = [g for g in self.groups if g in spike_t]
        values: dict[str, float] = {g: 0.0 for g in self.groups}
        if counted:
            device = spike_t[counted[0]].device
            host = torch.stack([spike_t[g].to(device) for g in counted]).cpu().tolist()
            values.update(zip(counted, host))
        total_spikes = sum(values.values())
        total_steps = sum(steps.values())
        per_sample = (lambda s: s / samples) if samples else (lambda s: 0.0)
        return {
            "samples": samples,
            "spikes_per_sample": per_sample(total_spikes),
            "firing_rate": total_spikes / total_steps if total_steps else 0.0,
            "spikes_per_group": {g: per_sample(v) for g, v in values.items()},
            "firing_rate_per_group": {g: v / steps[g] if steps.get(g) else 0.0 for g, v in values.items()},
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
