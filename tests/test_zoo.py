"""The model zoo: every ``zoo:NAME`` loads and builds the network its entry was retrained as, goes wherever an
arch.json path does (retrain, show, export of such a retrain), matches the committed runs it was taken from, and an
unknown name is refused in one line that lists the known ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nni_snn import build_network, load_arch
from nni_snn.cli.main import main
from nni_snn.files.archfile import ZOO, zoo_names
from nni_snn.networks import network_parameters

ROOT = Path(__file__).resolve().parents[1]


def test_the_zoo_holds_the_docs_architectures():
    assert {"fashionmnist-efficient", "fashionmnist-deployable"} <= set(zoo_names())


@pytest.mark.parametrize("name", zoo_names())
def test_each_zoo_name_loads_and_builds_its_retrained_network(name):
    arch = load_arch(f"zoo:{name}")
    done = arch["zoo"]["retrained"]
    torch.manual_seed(0)
    net = build_network(f"zoo:{name}", width=done["width"], num_cells=done["cells"], num_classes=10,
                        in_channels=1, image_size=28)
    assert network_parameters(net)["params"] == done["params"]  # the network the entry's figures are of
    net.eval()
    with torch.no_grad():
        assert net(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_the_zoo_entries_are_those_of_the_committed_runs():
    done = subprocess.run([sys.executable, "-m", "benchmarks.zoo"], capture_output=True, text=True, check=False,
                          timeout=120, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("command", [["show", "zoo:no-such-model"],
                                     ["retrain", "--arch", "zoo:no-such-model", "--epochs", "1"]])
def test_an_unknown_zoo_name_is_refused_in_one_line(command, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(command) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nni-snn: error: zoo:no-such-model: no such architecture")
    assert all(f"zoo:{name}" in err[0] for name in zoo_names())


def test_a_zoo_name_goes_to_show_retrain_and_export(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["show", "zoo:fashionmnist-deployable", "--width", "8", "--cells", "3", "--in-channels", "1",
                 "--image-size", "28"]) == 0
    shown = capsys.readouterr().out
    params = json.loads((ZOO / "fashionmnist-deployable.json").read_text())["zoo"]["retrained"]["params"]
    assert f"{params} parameters" in shown and "made by: nni-snn search" in shown
    assert main(["retrain", "--arch", "zoo:fashionmnist-deployable", "--dataset", "digits", "--width", "4",
                 "--cells", "3", "--epochs", "1", "--no-progress", "--output", "run"]) == 0
    assert main(["export", "run", "--output", "net.nir"]) == 0
    assert (tmp_path / "net.nir").stat().st_size > 0
