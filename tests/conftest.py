"""Shared test helpers: a hand-written architecture and tiny sizes so the suite runs on CPU in minutes."""

from __future__ import annotations

import pytest
import torch

HAND_ARCH = {
    "format": "nni-snn/arch", "version": 1, "attention": "ma", "timesteps": 2,
    "genotype": {
        "normal": [["sep_conv_3x3", 0], ["skip_connect", 1], ["dil_conv_3x3", 0], ["max_pool_3x3", 2],
                   ["sep_conv_5x5", 1], ["avg_pool_3x3", 3], ["dil_conv_5x5", 2], ["skip_connect", 4]],
        "reduce": [["max_pool_3x3", 0], ["skip_connect", 1], ["avg_pool_3x3", 1], ["sep_conv_3x3", 2],
                   ["dil_conv_3x3", 0], ["sep_conv_5x5", 3], ["dil_conv_5x5", 1], ["skip_connect", 4]],
    },
}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def hand_arch() -> dict:
    import copy

    return copy.deepcopy(HAND_ARCH)
