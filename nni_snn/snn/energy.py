"""Energy models: named, cited profiles that price what :mod:`nni_snn.snn.spikes` counts.

A network's energy per sample is the sum, over its counted modules, of each module's counts times that module's unit
costs. The counts (per sample, see :mod:`nni_snn.snn.spikes` for what each means):

- ``sops``: accumulations triggered by input spikes in a synaptic layer (conv / linear reading spikes or events);
- ``macs``: multiply-accumulates of a layer reading analog values (the encoding layer on images, attention gates,
  a classifier reading spike rates);
- ``adds``: accumulations without a weight: a pooling window, a skip connection or a global pool reading spikes,
  each input spike added into every output it reaches (analog inputs: every output element x window);
- ``neuron_updates``: every spiking neuron at every time step (leak, integrate, threshold), whether it fires or not;
- ``spikes``: spikes emitted, each routed once to the layers that read it.

The memory model (:meth:`EnergyProfile.unit_pj`), in the spirit of Lemaire et al. (ICONIP 2022) and Dampfhoffer et
al. (IEEE TETCI 2023): every layer keeps its weights and its neurons' state (membrane potentials, or the
accumulators a conv's events add into) in SRAMs of its own, sized to hold them for one sample at one time step.
Then each SOP reads one weight and reads and writes one accumulator; each addition reads and writes one accumulator;
each neuron update reads and writes one membrane potential; each MAC reads one weight (no reuse assumed); each spike
is written once into its layer's spike buffer (one bit per neuron). An access costs what an SRAM of that size costs
(:func:`sram_access_pj`), so large layers pay more per access than small ones.

Not counted under any profile: batch norm (folded into weights and thresholds at inference), the element-wise
products of the attention gates, the mean over T of the logits, control logic, leakage and off-chip (DRAM)
traffic; every value is taken as 32 bits.

Torch-free: ``nni-snn --help`` lists the profiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from nni_snn.registry import Registry

# 64-bit SRAM read energy by capacity, 45 nm (M. Horowitz, "Computing's energy problem", ISSCC 2014): 8 KB 10 pJ,
# 32 KB 20 pJ, 1 MB 100 pJ. Between them log-log interpolation; outside, the nearest segment's slope.
SRAM_POINTS = ((8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0))
# Memories smaller than this are priced as this (registers and latches below it are not modelled).
SRAM_FLOOR_BYTES = 1024
BYTES_PER_VALUE = 4  # float32 weights, membrane potentials and accumulators
# 45 nm, 32-bit float (Horowitz, ISSCC 2014): an accumulate (SOP) is an add, a multiply-accumulate a multiply (3.7 pJ)
# and an add. The 45 nm profiles' prices, and nni_snn.snn.spikes.energy_uj's.
E_AC_PJ = 0.9
E_MAC_PJ = 4.6


def sram_access_pj(nbytes: float) -> float:
    """Energy of one access to an SRAM of ``nbytes`` capacity (:data:`SRAM_POINTS`)."""
    size = max(float(nbytes), SRAM_FLOOR_BYTES)
    points = SRAM_POINTS
    i = 0 if size <= points[1][0] else 1  # the segment (or its extension) that holds ``size``
    (s0, e0), (s1, e1) = points[i], points[i + 1]
    slope = math.log(e1 / e0) / math.log(s1 / s0)
    return e0 * (size / s0) ** slope


@dataclass(frozen=True)
class EnergyProfile:
    """The unit costs of one hardware model, in pJ. ``memory``: price SRAM accesses by size (the memory model of the
    module docstring); without it, a chip's measured per-event energies include their memory traffic."""

    name: str
    source: str  # where the constants come from
    e_ac_pj: float  # one synaptic accumulate (32-bit float add, or a chip's synaptic operation)
    e_mac_pj: float  # one multiply-accumulate
    add_pj: float | None = None  # one weightless addition (pooling, skip); None: e_ac_pj
    neuron_pj: float = 0.0  # a neuron update's arithmetic (memory priced apart when ``memory``)
    spike_pj: float = 0.0  # routing one spike (memory priced apart when ``memory``)
    memory: bool = False

    def with_prices(self, e_ac_pj: float | None = None, e_mac_pj: float | None = None) -> EnergyProfile:
        """This profile with a user's accumulate and multiply-accumulate prices where given."""
        return replace(self, e_ac_pj=self.e_ac_pj if e_ac_pj is None else e_ac_pj,
                       e_mac_pj=self.e_mac_pj if e_mac_pj is None else e_mac_pj)

    def unit_pj(self, kind: str, weight_bytes: float = 0.0, state_bytes: float = 0.0) -> tuple[float, float]:
        """``(arithmetic, memory)`` pJ of one count of ``kind`` (``sops``, ``macs``, ``adds``, ``neuron_updates``,
        ``spikes``) in a module whose weights take ``weight_bytes`` and whose neurons' (or accumulators') state for
        one sample and time step takes ``state_bytes``."""
        add = self.e_ac_pj if self.add_pj is None else self.add_pj
        arithmetic = {"sops": self.e_ac_pj, "macs": self.e_mac_pj, "adds": add, "neuron_updates": self.neuron_pj,
                      "spikes": self.spike_pj}[kind]
        if not self.memory:
            return arithmetic, 0.0
        weight, state = sram_access_pj(weight_bytes), sram_access_pj(state_bytes)
        memory = {"sops": weight + 2 * state,  # read the weight, read and write the target's accumulator
                  "macs": weight,  # read the weight; inputs and the running sum stay in registers
                  "adds": 2 * state,  # read and write the accumulator
                  "neuron_updates": 2 * state,  # read and write the membrane potential
                  "spikes": sram_access_pj(state_bytes / BYTES_PER_VALUE / 8)}[kind]  # one bit per neuron
        return arithmetic, memory


# The profiles a user can name (--energy-profile). Each entry's target is the profile itself.
PROFILES = Registry("energy profile")
PROFILES.register(
    "memory-45nm", "default: operations, neuron updates and SRAM accesses by memory size, 45 nm",
    EnergyProfile("memory-45nm", "M. Horowitz, ISSCC 2014 (45 nm: add 0.9 pJ, multiply-add 4.6 pJ, SRAM 10 pJ at "
                                 "8 KB to 100 pJ at 1 MB); memory model after Lemaire et al., ICONIP 2022",
                  e_ac_pj=E_AC_PJ, e_mac_pj=E_MAC_PJ, neuron_pj=E_MAC_PJ + E_AC_PJ, memory=True))
PROFILES.register(
    "ops-45nm", "SOPs x 0.9 pJ + MACs x 4.6 pJ only (the usual estimate in SNN papers, nni-snn 0.1's; pooling, skips, neurons and memory free)",
    EnergyProfile("ops-45nm", "M. Horowitz, ISSCC 2014 (45 nm, 32-bit float add 0.9 pJ, multiply 3.7 pJ)",
                  e_ac_pj=E_AC_PJ, e_mac_pj=E_MAC_PJ, add_pj=0.0))
PROFILES.register(
    "loihi", "Intel Loihi's measured energy per event: synaptic op 23.6 pJ, neuron update 81 pJ, spike 1.7 pJ",
    EnergyProfile("loihi", "M. Davies et al., Loihi: a neuromorphic manycore processor with on-chip learning, IEEE "
                           "Micro 38(1), 2018, Table 2 (synaptic spike op 23.6 pJ, active neuron update 81 pJ, "
                           "within-tile spike 1.7 pJ); MACs off-chip at 45 nm (4.6 pJ)",
                  e_ac_pj=23.6, e_mac_pj=E_MAC_PJ, neuron_pj=81.0, spike_pj=1.7))
DEFAULT_PROFILE = "memory-45nm"
COUNT_KINDS = ("sops", "macs", "adds", "neuron_updates", "spikes")


def profile(name: str, e_ac_pj: float | None = None, e_mac_pj: float | None = None) -> EnergyProfile:
    """The profile registered as ``name``, with a user's accumulate / multiply-accumulate prices where given;
    an unknown name is a ValueError that lists the known ones."""
    return PROFILES.load(name).with_prices(e_ac_pj, e_mac_pj)
