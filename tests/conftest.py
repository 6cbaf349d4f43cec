"""Shared test helpers: a hand-written architecture and tiny sizes so the suite runs on CPU in minutes."""

from __future__ import annotations

import pytest
import torch

from nni_snn.genotype import ALL_OPS

HAND_ARCH = {"format": "nni-snn/arch", "version": 1, "attention": "ma", "timesteps": 2, "genotype": ALL_OPS}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def hand_arch() -> dict:
    import copy

    return copy.deepcopy(HAND_ARCH)
