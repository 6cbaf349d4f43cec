"""The Python API the NNI way, end to end at a tiny size: docs/tutorials/nas_experiment.py (``NasExperiment`` with
``SNNDartsSpace``, NNI's ``Lightning`` evaluator and ``MADarts``, then ``export_top_models`` and the fixed network),
run as a user runs it, from a folder of its own. tests/test_wheel.py runs it from an installed wheel and checks it
with :func:`check_tutorial_run`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import torch

from nni_snn import arch_from_sample, build_network, load_arch, load_dataset
from nni_snn.files.genotype import genotype_from_sample
from search_spaces import SNNDartsSpace

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorials" / "nas_experiment.py"
# The tutorial's space (its WIDTH, CELLS and SNNDartsSpace arguments).
SPACE = {"width": 4, "num_cells": 3, "timesteps": 2, "attention": "ma", "num_classes": 10, "in_channels": 1}


def run_tutorial(python: str | Path, folder: Path, env: dict | None = None) -> str:
    """Run the tutorial with ``python`` in ``folder`` (NNI's experiment records in ``folder/home``, not the user's
    home); its standard output."""
    env = {**(env or os.environ), "HOME": str(folder / "home")}
    result = subprocess.run([str(python), str(TUTORIAL)], cwd=folder, env=env, capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def check_tutorial_run(folder: Path, stdout: str) -> None:
    """What a user of the tutorial relies on: NNI's exported sample is a valid sample of the space and its
    architecture; the arch.json written loads with nni_snn's loader; the fixed network builds, runs and learned."""
    arch = load_arch(folder / "arch.json")
    sample = arch["nni_sample"]
    space = SNNDartsSpace(**SPACE)
    assert space.contains(sample)  # every label of the space, each a valid choice: NNI can freeze the space with it
    assert arch["genotype"] == genotype_from_sample(sample)
    assert load_arch(arch_from_sample(sample, space)) == arch  # the file holds what the function returns
    assert (arch["attention"], arch["timesteps"]) == ("ma", 2)  # the searched space's settings
    assert "normal cell:" in stdout and "reduce cell:" in stdout  # the exported architecture, printed

    network = build_network(arch, **{k: v for k, v in SPACE.items() if k not in ("timesteps", "attention")})
    images, _ = next(iter(torch.utils.data.DataLoader(load_dataset("digits").test, batch_size=8)))
    assert network(images).shape == (8, 10)
    assert not any("_arch_alpha" in name for name, _ in network.named_parameters())  # no NNI mutables left
    accuracy = float(re.search(r"accuracy ([0-9.]+) on 64 held-out digits", stdout).group(1))
    assert accuracy > 0.2, stdout  # chance is 0.1; two epochs on the digits reach ~0.75


def test_tutorial_nas_experiment(tmp_path):
    stdout = run_tutorial(sys.executable, tmp_path, {**os.environ, "PYTHONPATH": str(ROOT)})
    check_tutorial_run(tmp_path, stdout)
