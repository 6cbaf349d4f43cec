"""Multi-trial NAS (NNI's Random / RegularizedEvolution through NasExperiment) over SNNDartsSpace."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from conftest import ROOT, free_port

from nni_snn import build_network
from nni_snn.cli.options import MultitrialOptions
from nni_snn.experiment import multitrial as multitrial_baseline
from nni_snn.experiment import nnictl
from nni_snn.files import archfile, genotype

TINY = {"dataset": "digits", "attention": "ma", "timesteps": 2, "width": 4, "cells": 3, "epochs": 1,
        "batch_size": 64, "lr": 0.05, "seed": 0, "accelerator": "cpu",
        "threads": 1}


def _sample(hand_arch: dict) -> dict:
    return genotype.sample_from_genotype(hand_arch["genotype"])


def test_network_key_ignores_operations_of_unchosen_edges(hand_arch):
    sample = _sample(hand_arch)
    # Node 1 of the normal cell reads inputs 0 and 2: an operation on its edge from input 1 is never built.
    same_network = {**sample, "normal/op_1_1": "avg_pool_3x3"}
    other_network = {**sample, "normal/op_1_0": "avg_pool_3x3"}
    assert multitrial_baseline.network_key(same_network) == multitrial_baseline.network_key(sample)
    assert multitrial_baseline.network_key(other_network) != multitrial_baseline.network_key(sample)

    chain = multitrial_baseline.make_strategy("random", trials=3, concurrency=1, seed=0)
    new_network = chain[1].filter_fn  # the Filter middleware behind NNI's strategy
    assert new_network(SimpleNamespace(sample=sample))
    assert not new_network(SimpleNamespace(sample=same_network))
    assert new_network(SimpleNamespace(sample=other_network))


def test_strategies_fit_small_trial_counts():
    from nni.nas.strategy import Random, RegularizedEvolution

    assert isinstance(multitrial_baseline.make_strategy("random", trials=3, concurrency=1, seed=0)[0], Random)
    evolution = multitrial_baseline.make_strategy("evolution", trials=3, concurrency=1, seed=0)[0]
    assert isinstance(evolution, RegularizedEvolution)
    assert (evolution.population_size, evolution.sample_size) == (2, 2)  # 2 random, then mutants
    big = multitrial_baseline.make_strategy("evolution", trials=400, concurrency=4, seed=0)[0]
    assert (big.population_size, big.sample_size) == (100, 25)  # Real et al.'s sizes
    assert multitrial_baseline.make_strategy("evolution", trials=3, concurrency=4, seed=0)[0].population_size == 4
    with pytest.raises(ValueError, match="population"):
        multitrial_baseline.make_strategy("evolution", trials=10, concurrency=4, seed=0, population=2)
    with pytest.raises(ValueError, match="unknown"):
        multitrial_baseline.make_strategy("bayes", trials=3, concurrency=1, seed=0)


def test_train_sampled_reports_like_a_trial(tmp_path, monkeypatch):
    """The evaluator's function on a network NNI froze from the space, under NNI's mock trial runtime."""
    import nni
    from nni.nas.evaluator import FunctionalEvaluator
    from nni.nas.space import SimplifiedModelSpace

    from search_spaces import SNNDartsSpace

    monkeypatch.setattr(nni.trial, "_params", None)  # no parameters left over from other tests
    space = SNNDartsSpace(width=4, num_cells=3, timesteps=2, attention="ma", num_classes=10, in_channels=1)
    evaluator = FunctionalEvaluator(multitrial_baseline.train_sampled, dataset="digits", epochs=1, batch_size=64, lr=0.05,
                                    seed=0, accelerator="cpu", threads=1, output=str(tmp_path))
    model = SimplifiedModelSpace.from_model(space, evaluator).random()
    with evaluator.mock_runtime(model):
        model.execute()

    assert len(model.metrics.intermediates) == 1
    assert 0.0 <= model.metrics.final <= 1.0  # NNI keeps "default"
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(model.metrics.final)
    assert metrics["spikes_per_sample"] > 0 and metrics["params"] > 0
    arch = archfile.load_arch(tmp_path / "arch.json")
    assert arch["genotype"] == genotype.genotype_from_sample(model.sample)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["random", "evolution"])
def test_multitrial_through_the_nni_manager(strategy, tmp_path, monkeypatch, experiment_env):
    """3 tiny trials each: evolution trains 2 random networks, then a mutant of the better one."""
    monkeypatch.chdir(ROOT)  # NNI runs trials in the parent's working directory
    port = free_port()
    client = nnictl.RestClient(port)
    seen = {}

    def while_running(exp):
        seen["id"] = exp.id
        seen["trials"] = client.trials()
        seen["metrics"] = client.metrics()

    opts = MultitrialOptions(**TINY, search_strategy=strategy, trials=3, concurrency=1, port=port,
                             output=str(tmp_path / "out"), working_dir=str(tmp_path / "nni-experiments"))
    summary = multitrial_baseline.run_multitrial(opts, before_stop=while_running)
    with pytest.raises(OSError):
        client.trials()  # run_multitrial stopped the manager

    # What the manager recorded: every trial succeeded and reported every epoch and a final result.
    assert [t["status"] for t in seen["trials"]] == ["SUCCEEDED"] * 3
    for kind, count in (("PERIODICAL", 3), ("FINAL", 3)):
        results = [nnictl.metric_value(m) for m in seen["metrics"] if m["type"] == kind]
        assert len(results) == count
        for result in results:
            assert 0.0 <= result["default"] <= 1.0
            assert result["spikes_per_sample"] > 0 and "spikes_cells.0" in result

    trials = summary["trials"]
    assert len(trials) == 3 and len({json.dumps(t["genotype"]) for t in trials}) == 3
    for trial in trials:
        assert trial["status"] == "SUCCEEDED" and trial["duration"] > 0
        assert 0.0 <= trial["accuracy"] <= 1.0 and trial["spikes_per_sample"] > 0
        folder = next((tmp_path / "nni-experiments" / seen["id"]).glob(f"**/trials/{trial['trial_id']}"))
        assert archfile.load_arch(folder / "arch.json")["genotype"] == trial["genotype"]
    assert summary["accuracy"] == max(t["accuracy"] for t in trials)
    assert json.loads((tmp_path / "out" / "metrics.json").read_text()) == summary

    arch = archfile.load_arch(tmp_path / "out" / "arch.json")
    assert arch["search"]["strategy"] == strategy and arch["results"]["accuracy"] == summary["accuracy"]
    assert arch["genotype"] == next(t["genotype"] for t in trials if t["trial_id"] == summary["best"]["trial_id"])
    net = build_network(arch, width=4, num_cells=3, num_classes=10, in_channels=1)
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert (tmp_path / "out" / "normal.png").is_file()


@pytest.mark.parametrize("argv,needle", [
    (["--search-strategy", "bayes"], "--search-strategy 'bayes' is unknown"),
    (["--trials", "0"], "--trials must be an integer >= 1"),
    (["--attention", "se"], "--attention"),
    (["--port", "70000"], "--port must be in 1..65535"),
])
def test_multitrial_command_refuses_mistakes_in_one_line(argv, needle, capsys, tmp_path):
    from nni_snn.cli.main import main

    assert main(["multitrial", *argv, "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_multitrial_command_refuses_a_busy_port(capsys, tmp_path):
    import socket

    from nni_snn.cli.main import main

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert main(["multitrial", "--port", str(port), "--output", str(tmp_path)]) == 2
    assert f"--port {port} is in use" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written


def test_multitrial_command_refuses_a_bad_duration(capsys, tmp_path):
    from nni_snn.cli.main import main

    assert main(["multitrial", "--duration", "abc", "--output", str(tmp_path)]) == 2
    assert "--duration 'abc': give a positive time" in capsys.readouterr().err
