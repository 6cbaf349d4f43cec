"""The energy penalty of energy-aware MA-DARTS: lambda x the expected energy of the mixed edges, differentiable in alpha.

Every edge of the supernet is a mixed operation: softmax(alpha) weighs its 7 candidates. The candidates' energies
(SOPs x E_AC + MACs x E_MAC per sample, ``nni_snn.spikes``) are measured on the batches the supernet actually sees,
by the search's spike monitor, so they follow the firing rates as training changes them. The penalty is

    lambda x sum over edges of sum_i softmax(alpha_edge)_i x energy_i / reference

where ``reference`` is the same sum at the first architecture step (uniform alpha): the penalty starts at lambda and
falls as alpha moves toward cheaper operations. Energies are constants to the gradient (detached), so the penalty
moves alpha only. Pooling and skip have no synapses and cost nothing; the convs cost their input spikes' fan-out.

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
from nni_snn.spikes import E_AC_PJ, E_MAC_PJ, SpikeMonitor


class ExpectedEnergyPenalty(ExpectationProfilerPenalty):
    """``loss + scale x expected energy / reference``; :meth:`bind` to the supernet and monitor before use."""

    def __init__(self, scale: float, e_ac_pj: float = E_AC_PJ, e_mac_pj: float = E_MAC_PJ, phase: str = "train"):
        nn.Module.__init__(self)  # NNI's base wants a symbolic profiler; this penalty measures instead
        self.scale, self.e_ac_pj, self.e_mac_pj, self.phase = scale, e_ac_pj, e_mac_pj, phase
        # Saved with the search's checkpoints, so a resumed search keeps its scale.
        self.register_buffer("reference", torch.tensor(math.nan, dtype=torch.float64))
        self._edges: list[DifferentiableMixedLayer] = []
        self._layers: list[str] = []
        self._assign: torch.Tensor | None = None  # [edges x 7, layers]: which layer belongs to which candidate
        self._monitor = None
        self._reference_known = False  # set after the first step (or a resume) has given ``reference`` a value

    def bind(self, supernet: nn.Module, monitor: SpikeMonitor) -> None:
        """Find the mixed edges of ``supernet`` and the synaptic layers inside each candidate. ``monitor`` is the
        spike monitor counting the supernet."""
        self._monitor = monitor
        self._edges, self._layers, rows = [], [], []
        layer_names = [n for n, m in supernet.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        for name, module in supernet.named_modules():
            if isinstance(module, DifferentiableMixedLayer):
                self._edges.append(module)
                for op in module.names:
                    rows.append([n for n in layer_names if n.startswith(f"{name}.{op}.")])
        if not self._edges:
            raise ValueError("the energy penalty needs a DARTS supernet: no mixed operations found")
        self._layers = sorted({n for row in rows for n in row})
        index = {n: j for j, n in enumerate(self._layers)}
        assign = torch.zeros(len(rows), len(self._layers), dtype=torch.float64)
        for i, row in enumerate(rows):
            assign[i, [index[n] for n in row]] = 1.0
        self._assign = assign

    def energy_per_candidate(self) -> torch.Tensor:
        """``[edges, candidates]`` energy per sample in pJ of each candidate, over the phase counted so far."""
        samples = self._monitor.samples(self.phase)
        device = self._edges[0]._arch_alpha.device
        if not samples:
            return torch.zeros(len(self._edges), len(self._edges[0].names), dtype=torch.float64, device=device)
        sops, macs = self._monitor.layer_counts(self.phase)
        zero = torch.zeros((), dtype=torch.float64, device=device)
        per_layer = torch.stack([sops.get(n, zero) for n in self._layers]) * self.e_ac_pj
        macs = [macs.get(n, 0) for n in self._layers]
        if any(macs):  # candidates reading analog values (none in SNNDartsSpace: every edge reads spikes)
            per_layer = per_layer + torch.tensor(macs, dtype=torch.float64).to(device) * self.e_mac_pj
        self._assign = self._assign.to(device)  # moved once
        return (self._assign @ per_layer).view(len(self._edges), -1) / samples

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
        final = loss + self.scale * normalized.to(loss.dtype)
        return final, {"loss_original": loss.detach(), "expected_energy_uj": expected.detach() * 1e-6,
                       "normalized_penalty": normalized.detach(), "loss_final": final.detach()}
