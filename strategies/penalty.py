"""The energy penalty of energy-aware MA-DARTS: lambda x the expected energy of the mixed edges, differentiable in alpha.

Every edge of the supernet is a mixed operation: softmax(alpha) weighs its 7 candidates. Each candidate's energy per
sample is what its counted modules (``nni_snn.snn.spikes``: synaptic layers, pooling and skip additions, the neurons
inside a separable conv) cost under the search's energy profile (``nni_snn.snn.energy``, the ``--energy-profile`` that
prices the run's metrics too), measured on the batches the supernet actually sees by the search's spike monitor, so
it follows the firing rates as training changes them. The penalty is

    lambda x sum over edges of sum_i softmax(alpha_edge)_i x energy_i / reference

where ``reference`` is the same sum at the first architecture step (uniform alpha): the penalty starts at lambda and
falls as alpha moves toward cheaper operations. Energies are constants to the gradient (detached), so the penalty
moves alpha only. Under the ``ops-45nm`` profile pooling and skips cost nothing, and the search learned to empty its
cells of convolutions; under ``memory-45nm`` (the default) and ``loihi`` every addition a pooling window or a skip
makes, and every memory access, is priced. The neuron populations of a cell's nodes are not: they run whatever
operation each edge holds.

It plugs in where NNI's DARTS takes an expectation penalty (``DartsLightningModule(penalty=...)``, applied to the
architecture step's loss and logged under ``penalty/``). NNI's own ``ExpectationProfilerPenalty`` receives the
operation probabilities as Python floats (``export_probs``), so its expectation has no gradient toward alpha; this
one reads alpha itself.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nni_snn.nni_compat import DifferentiableMixedLayer, ExpectationProfilerPenalty
from nni_snn.snn.energy import DEFAULT_PROFILE, EnergyProfile, profile
from nni_snn.snn.spikes import SpikeMonitor


class ExpectedEnergyPenalty(ExpectationProfilerPenalty):
    """``loss + scale x expected energy / reference``; :meth:`bind` to the supernet and monitor before use."""

    def __init__(self, scale: float, energy: EnergyProfile | None = None, phase: str = "train"):
        nn.Module.__init__(self)  # NNI's base wants a symbolic profiler; this penalty measures instead
        self.scale, self.energy, self.phase = scale, energy or profile(DEFAULT_PROFILE), phase
        # Saved with the search's checkpoints, so a resumed search keeps its scale.
        self.register_buffer("reference", torch.tensor(math.nan, dtype=torch.float64))
        self._edges: list[DifferentiableMixedLayer] = []
        self._keys: list[tuple[str, str]] = []  # (count kind, module name) of every counted module in a candidate
        self._units: torch.Tensor | None = None  # pJ per count of each key (set once the modules have run)
        self._assign: torch.Tensor | None = None  # [edges x 7, keys]: which key belongs to which candidate
        self._monitor = None
        self._reference_known = False  # set after the first step (or a resume) has given ``reference`` a value

    def bind(self, supernet: nn.Module, monitor: SpikeMonitor) -> None:
        """Find the mixed edges of ``supernet`` and the counted modules inside each candidate. ``monitor`` is the
        spike monitor counting the supernet."""
        from nni_snn.snn.energy import COUNT_KINDS

        self._monitor = monitor
        self._edges, rows = [], []
        counted = list(monitor.module_groups)
        for name, module in supernet.named_modules():
            if isinstance(module, DifferentiableMixedLayer):
                self._edges.append(module)
                for op in module.names:
                    prefix = f"{name}.{op}"
                    rows.append([n for n in counted if n == prefix or n.startswith(prefix + ".")])
        if not self._edges:
            raise ValueError("the energy penalty needs a DARTS supernet: no mixed operations found")
        names = sorted({n for row in rows for n in row})
        self._keys = [(kind, n) for n in names for kind in COUNT_KINDS]
        index = {key: j for j, key in enumerate(self._keys)}
        assign = torch.zeros(len(rows), len(self._keys), dtype=torch.float64)
        for i, row in enumerate(rows):
            assign[i, [index[(kind, n)] for n in row for kind in COUNT_KINDS]] = 1.0
        self._assign = assign

    def energy_per_candidate(self) -> torch.Tensor:
        """``[edges, candidates]`` energy per sample in pJ of each candidate, over the phase counted so far."""
        samples = self._monitor.samples(self.phase)
        device = self._edges[0]._arch_alpha.device
        if not samples:
            return torch.zeros(len(self._edges), len(self._edges[0].names), dtype=torch.float64, device=device)
        if self._units is None:  # every candidate has run once now: the sizes of its memories are known
            self._units = torch.tensor([self._monitor.unit_pj(kind, n, self.energy) for kind, n in self._keys],
                                       dtype=torch.float64, device=device)
            self._assign = self._assign.to(device)  # moved once
        counts = self._monitor.counts(self.phase)
        values = [counts[kind].get(n, 0) for kind, n in self._keys]
        on_device = [i for i, v in enumerate(values) if isinstance(v, torch.Tensor)]
        per_key = torch.tensor([0.0 if isinstance(v, torch.Tensor) else float(v) for v in values],
                               dtype=torch.float64).to(device)
        if on_device:
            per_key = per_key.index_put((torch.tensor(on_device, device=device),),
                                        torch.stack([values[i].to(device) for i in on_device]))
        return (self._assign @ (per_key * self._units)).view(len(self._edges), -1) / samples
    def expected_energy(self) -> torch.Tensor:
        """Expected energy per sample (pJ) of all mixed edges under the current alpha; differentiable in alpha."""
        probs = torch.stack([edge._softmax(edge._arch_alpha) for edge in self._edges]).to(torch.float64)
        return (probs * self.energy_per_candidate().detach()).sum()

    def forward(self, loss: torch.Tensor, sample=None) -> tuple[torch.Tensor, dict]:
        expected = self.expected_energy()
        if not self._reference_known:  # one host sync per run, not per step
            if torch.isnan(self.reference):  # the first architecture step (a resumed search has its reference)
                self.reference.fill_(max(float(expected.detach()), 1e-12))
            self._reference_known = True
        normalized = expected / self.reference
        self.last_loss = loss.detach()  # the architecture loss before the penalty (an energy front records it)
        final = loss + self.scale * normalized.to(loss.dtype)
        return final, {"loss_original": loss.detach(), "expected_energy_uj": expected.detach() * 1e-6,
                       "normalized_penalty": normalized.detach(), "loss_final": final.detach()}
