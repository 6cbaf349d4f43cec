"""The energy study's pieces a user relies on: the hypervolume that ranks accuracy-energy fronts, and
benchmarks/gpu_study.py's CPU-tiny path (the script a GPU machine runs in one call)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.common import hypervolume

ROOT = Path(__file__).resolve().parents[1]


def test_hypervolume_is_the_dominated_area_in_accuracy_and_log_energy():
    ref = (0.7, 100.0)
    # one point: the box from it to the reference, log10 energy from 1 to 2
    assert hypervolume([(0.8, 10.0)], ref) == pytest.approx(0.1 * 1)
    # a dominated point adds nothing; a point beyond the reference counts for nothing
    assert hypervolume([(0.8, 10.0), (0.75, 20.0), (0.9, 200.0), (0.6, 1.0)], ref) == pytest.approx(0.1)
    # two points on a front: a staircase
    both = hypervolume([(0.8, 10.0), (0.9, 50.0)], ref)
    assert both == pytest.approx(0.1 * math.log10(5) + 0.2 * (2 - math.log10(50)))
    assert both > hypervolume([(0.8, 10.0)], ref) and hypervolume([], ref) == 0


def test_the_gpu_study_runs_its_cpu_tiny_path(tmp_path):
    command = [sys.executable, "-m", "benchmarks.gpu_study", "--tiny", "--output", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads((tmp_path / "gpu-study.json").read_text())
    assert results["macro"]["stem_stride"] == 2 and results["tiny"]
    networks = {k: v for k, v in results["runs"].items() if not k.endswith("(search)")}
    assert set(networks) == {"MA-DARTS", "MA-DARTS, lambda 3", "random genotype 0", "spiking CNN"}
    assert all(0 <= r["accuracy"] <= 1 and r["energy_uj_per_sample"] > 0 for r in networks.values())
    assert "| spiking CNN |" in done.stdout


def test_the_gpu_study_without_its_data_says_so_in_one_line(tmp_path):
    command = [sys.executable, "-m", "benchmarks.gpu_study", "--data-dir", str(tmp_path), "--output",
               str(tmp_path / "o")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "idx files" in done.stderr
