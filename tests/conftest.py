"""Shared test helpers: a hand-written architecture and tiny sizes so the suite runs on CPU in minutes."""

from __future__ import annotations

import nni  # noqa: F401  (see below)
import pytest
import torch

from nni_snn.genotype import ALL_OPS

# NNI binds a log handler to sys.stdout when first imported: imported here, at collection, it binds pytest's
# session-long capture; first imported inside a test with capsys, it would keep that test's stream, closed after it,
# and every later NNI log line would print "--- Logging error ---" into another test's captured stderr.

HAND_ARCH = {"format": "nni-snn/arch", "version": 1, "attention": "ma", "timesteps": 2, "genotype": ALL_OPS}


@pytest.fixture(autouse=True, scope="session")
def _event_cache(tmp_path_factory):
    """Event frames are cached under NNI_SNN_CACHE (default ~/.cache/nni-snn): tests write theirs in a temporary
    folder, never in the home directory."""
    import os

    previous = os.environ.get("NNI_SNN_CACHE")
    os.environ["NNI_SNN_CACHE"] = str(tmp_path_factory.mktemp("event-cache"))
    yield
    if previous is None:
        del os.environ["NNI_SNN_CACHE"]
    else:
        os.environ["NNI_SNN_CACHE"] = previous


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def hand_arch() -> dict:
    import copy

    return copy.deepcopy(HAND_ARCH)
