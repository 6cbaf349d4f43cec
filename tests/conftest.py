"""Shared test helpers: a hand-written architecture and tiny sizes so the suite runs on CPU in minutes."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import nni  # noqa: F401  (see below)
import pytest
import torch
import yaml

from nni_snn.files.genotype import ALL_OPS

# NNI binds a log handler to sys.stdout when first imported: imported here, at collection, it binds pytest's
# session-long capture; first imported inside a test with capsys, it would keep that test's stream, closed after it,
# and every later NNI log line would print "--- Logging error ---" into another test's captured stderr.

HAND_ARCH = {"format": "nni-snn/arch", "version": 1, "attention": "ma", "timesteps": 2, "genotype": ALL_OPS}
ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent  # this venv's nni-snn and nnictl


def free_port() -> int:
    """A TCP port free on loopback now: for an NNI manager, an sshd or DDP's rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def experiment_config(tmp_path: Path, edit: Callable[[dict], object], source: str = "quickstart.yml") -> Path:
    """experiments/``source`` changed by ``edit`` (given the config, changes it in place), its NNI experiment files
    under ``tmp_path``; written to ``tmp_path / source``."""
    config = yaml.safe_load((ROOT / "experiments" / source).read_text())
    config["experimentWorkingDirectory"] = str(tmp_path / "nni-experiments")
    edit(config)
    path = tmp_path / source
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def experiment_env(monkeypatch):
    """This venv's nnictl and nni-snn first on PATH, for the NNI manager and its trials (the manager listens on
    loopback: nni_snn.experiment.manager_host); one torch thread per trial."""
    monkeypatch.setenv("PATH", f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True, scope="session")
def _event_cache(tmp_path_factory):
    """Event frames are cached under NNI_SNN_CACHE (default ~/.cache/nni-snn): tests write theirs in a temporary
    folder, never in the home directory."""
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
