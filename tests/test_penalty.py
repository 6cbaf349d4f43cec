"""The energy penalty of energy-aware MA-DARTS: measured candidate energies, normalisation, gradient toward alpha."""

from __future__ import annotations

import pytest
import torch

from nni_snn.snn.energy import profile
from nni_snn.snn.ops import PRIMITIVES
from nni_snn.snn.spikes import SpikeMonitor
from strategies.penalty import ExpectedEnergyPenalty


def test_ops_only_penalty_prices_candidates_and_pushes_alpha_toward_cheap_operations():
    from nni.nas.strategy import DARTS

    from search_spaces import SNNDartsSpace

    torch.manual_seed(0)
    supernet = DARTS().mutate_model(SNNDartsSpace(width=4, num_cells=3, in_channels=1))
    monitor = SpikeMonitor(supernet)
    penalty = ExpectedEnergyPenalty(2.0, profile("ops-45nm"))
    penalty.bind(supernet, monitor)
    with monitor.counting("train"):
        supernet(torch.randn(8, 1, 8, 8))
    energy = penalty.energy_per_candidate()
    free = [PRIMITIVES.index(op) for op in ("max_pool_3x3", "avg_pool_3x3")]
    convs = [PRIMITIVES.index(op) for op in ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")]
    assert energy.shape == (len(penalty._edges), len(PRIMITIVES))
    assert (energy[:, free] == 0).all() and (energy[:, convs] > 0).all()
    assert energy[:, PRIMITIVES.index("sep_conv_5x5")].sum() > energy[:, PRIMITIVES.index("sep_conv_3x3")].sum()

    loss, details = penalty(torch.tensor(1.0))
    assert loss.item() == pytest.approx(1.0 + 2.0)  # starts at lambda: normalised by the first expected energy
    loss.backward()
    alpha = penalty._edges[0]._arch_alpha
    # d/d alpha_i of sum_i p_i c_i is p_i (c_i - mean): descent lowers the operations dearer than average.
    assert (alpha.grad[free] < 0).all() and alpha.grad[PRIMITIVES.index("sep_conv_5x5")] > 0
    assert details["expected_energy_uj"] > 0


def test_madarts_hands_its_one_reporter_and_its_prices_to_the_penalty():
    from nni_snn.train.lightning import EpochReporter
    from strategies import MADarts

    reporter = EpochReporter(energy=profile("loihi", e_ac_pj=1.5, e_mac_pj=7.0))
    strategy = MADarts(reporter=reporter, spike_penalty=1.0)
    assert strategy.reporter is reporter
    assert strategy.penalty.energy is reporter.energy
    assert (strategy.penalty.energy.name, strategy.penalty.energy.e_ac_pj) == ("loihi", 1.5)
    assert isinstance(MADarts().reporter, EpochReporter)  # a default one for NNI's stock evaluators


@pytest.mark.parametrize("name", ["memory-45nm", "loihi"])
def test_hardware_profiles_price_pooling_skips_and_the_neurons_inside_a_candidate(name):
    """Under the ops-only profile the search emptied its cells (pooling and skips were free); under the hardware
    profiles every candidate costs something, and a separable conv pays for its inner neurons too."""
    from nni.nas.strategy import DARTS

    from search_spaces import SNNDartsSpace

    torch.manual_seed(0)
    supernet = DARTS().mutate_model(SNNDartsSpace(width=4, num_cells=3, in_channels=1))
    monitor = SpikeMonitor(supernet)
    penalty = ExpectedEnergyPenalty(1.0, profile(name))
    penalty.bind(supernet, monitor)
    with monitor.counting("train"):
        supernet(torch.randn(8, 1, 8, 8))
    energy = penalty.energy_per_candidate()
    normal_edges = [i for i, edge in enumerate(penalty._edges) if "normal" in edge.label]
    for op in ("max_pool_3x3", "avg_pool_3x3", "skip_connect"):
        assert (energy[normal_edges, PRIMITIVES.index(op)] > 0).all(), op
    # A 3x3 pooling adds each spike into up to 9 outputs, a skip once: on the same input spikes the skip is cheaper.
    assert (energy[normal_edges, PRIMITIVES.index("skip_connect")]
            < energy[normal_edges, PRIMITIVES.index("avg_pool_3x3")]).all()
    # the neurons inside a separable conv: the same edge's dilated conv (no inner neuron) costs less
    sep, dil = PRIMITIVES.index("sep_conv_3x3"), PRIMITIVES.index("dil_conv_3x3")
    assert (energy[:, sep] > energy[:, dil]).all()
