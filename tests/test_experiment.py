"""A real nnictl experiment end to end: NNI manager on a loopback port, trials that search and retrain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, experiment_config, free_port

from nni_snn.experiment import nnictl


def _tiny(config: dict) -> None:
    config["searchSpace"]["attention"]["_value"] = ["none", "ma"]
    config["maxTrialNumber"] = 2
    config["trialConcurrency"] = 2  # trials that start together must each run their own parameters
    config["trialCommand"] = ("python -m nni_snn search --dataset digits --width 4 --cells 3 --epochs 1 "
                              "--batch-size 256 --lr 0.05 --retrain-epochs 1 --retrain-width 4 --retrain-cells 3 "
                              "--retrain-batch-size 256 --retrain-lr 0.05 --no-progress")
    config["trialCodeDirectory"] = str(ROOT)


@pytest.fixture
def tiny_quickstart(tmp_path) -> Path:
    """experiments/quickstart.yml, shrunk to two tiny trials, with its files under tmp_path."""
    return experiment_config(tmp_path, _tiny)


@pytest.mark.slow
def test_quickstart_through_nnictl(tiny_quickstart, capsys, experiment_env):
    port = free_port()
    experiment_id = nnictl.create(tiny_quickstart, port)
    client = nnictl.RestClient(port)
    try:
        trials = nnictl.wait(client, timeout=900, progress=lambda line: None)
        assert [t["status"] for t in trials] == ["SUCCEEDED", "SUCCEEDED"]

        metrics = client.metrics()
        intermediate = [nnictl.metric_value(m) for m in metrics if m["type"] == "PERIODICAL"]
        # 1 search epoch + 1 retrain epoch per trial, each with accuracy and spike counts
        assert len(intermediate) == 4
        for result in intermediate:
            assert 0.0 <= result["default"] <= 1.0
            assert result["spikes_per_sample"] > 0 and "spikes_cells.0" in result
        assert sum(m["type"] == "FINAL" for m in metrics) == 2

        for each in trials:  # what each trial ran is what the manager, tuner and web UI credit it with
            ran = json.loads((nnictl.trial_dir(client, experiment_id, each["trialJobId"]) / "arch.json").read_text())
            assert ran["attention"] == nnictl.trial_parameters(each)["attention"]
        trial, final = nnictl.best_trial(client)
        folder = nnictl.trial_dir(client, experiment_id, trial["trialJobId"])
        arch = json.loads((folder / "arch.json").read_text())
        assert arch["attention"] == nnictl.trial_parameters(trial)["attention"]
        assert (folder / "retrain" / "metrics.json").exists()
        # The tuner optimises validation accuracy; the test accuracy rides along, for reading only.
        retrained = json.loads((folder / "retrain" / "metrics.json").read_text())
        assert final["default"] == pytest.approx(retrained["val_accuracy"])
        assert final["test_accuracy"] == pytest.approx(retrained["accuracy"])
    finally:
        nnictl.stop(experiment_id)
    with pytest.raises(OSError):
        client.trials()  # the manager is gone


def test_every_shipped_config_is_valid_for_nnictl(tmp_path):
    from nni.experiment.config import ExperimentConfig

    key = tmp_path / "id_rsa"
    key.write_text("not a real key")
    configs = sorted((ROOT / "experiments").glob("*.yml"))
    assert {c.name for c in configs} >= {"quickstart.yml", "search_cifar10.yml", "search_cifar100.yml",
                                          "retrain_cifar10.yml", "ablation_cifar10.yml"}
    for path in configs:
        data = yaml.safe_load(path.read_text())
        if "trialCommand" not in data:  # a --config file of nni-snn's own (tests/test_macro.py)
            continue
        for machine in data["trainingService"].get("machineList", []):
            machine["sshKeyFile"] = str(key)  # the remote example names the user's key
        data["trialCodeDirectory"] = str(ROOT)
        ExperimentConfig(**data).validate()
        assert "python -m nni_snn" in data["trialCommand"]


def test_shipped_commands_parse_and_carry_the_paper_recipe():
    """Every shipped trial command is accepted as written (a misspelt flag would fail only hours into a trial), and
    the CIFAR-10 configs retrain with Table 3's sizes and lr (ablation) and DARTS's regularisers (retrain)."""
    import shlex

    from nni_snn.cli.flags import resolve
    from nni_snn.cli.main import build_parser
    from nni_snn.cli.options import RetrainOptions, SearchOptions

    resolved = {}
    for path in sorted((ROOT / "experiments").glob("*.yml")):
        config = yaml.safe_load(path.read_text())
        if "trialCommand" not in config:  # a --config file of nni-snn's own (tests/test_macro.py)
            continue
        words = shlex.split(config["trialCommand"])
        args = build_parser().parse_args(words[words.index("nni_snn") + 1:])
        options = {"search": SearchOptions, "retrain": RetrainOptions}[args.command]
        # The tuner's parameters are options too: a misspelt or out-of-range one fails here, not in the trial.
        for pick in (0, -1):
            sample = {key: space["_value"][pick] for key, space in config.get("searchSpace", {}).items()}
            resolved[path.name] = resolve(options, args, sample).as_dict()
    ablation = resolved["ablation_cifar10.yml"]
    assert (ablation["retrain_width"], ablation["retrain_cells"], ablation["retrain_lr"],
            ablation["retrain_batch_size"], ablation["retrain_epochs"]) == (36, 6, 0.0025, 96, 600)
    # The paper searches at batch 64 (4.2); the CLI's default is 32, so the CIFAR configs must say so.
    assert all(resolved[name]["batch_size"] == 64 for name in ("search_cifar10.yml", "search_cifar100.yml",
                                                               "ablation_cifar10.yml"))
    # Attention at every cell's concatenation in the search (3.3), behind the final cell in the retrain (4.2).
    assert (ablation["attention_cells"], ablation["retrain_attention_cells"]) == ("all", "last")
    # The ablation's retrain uses the same regularisers as retrain_cifar10.yml (DARTS's drop-path and Cutout).
    for name in ("ablation_cifar10.yml", "ablation_cifar10_remote.yml"):
        assert tuple(resolved[name][f"retrain_{k}"] for k in ("drop_path", "cutout", "lr_min")) == (0.2, 16, 0)
    assert resolved["retrain_cifar10.yml"]["attention_cells"] == "last"
    assert resolved["ablation_cifar10_remote.yml"]["retrain_width"] == 36
    retrain = resolved["retrain_cifar10.yml"]
    assert (retrain["drop_path"], retrain["cutout"], retrain["grad_clip"], retrain["lr"], retrain["epochs"],
            retrain["batch_size"], retrain["auxiliary_weight"]) == (0.2, 16, 5, 0.0025, 600, 96, 0.4)
    # The digits experiments keep retraining at their search's size (retrain's defaults would be far slower).
    quickstart = resolved["quickstart.yml"]
    assert (quickstart["retrain_width"], quickstart["retrain_cells"]) == (quickstart["width"], quickstart["cells"])


def test_tpe_takes_a_final_result_that_arrives_after_the_trials_end():
    """NNI 3.0's TPE raises KeyError (and its dispatcher stops) when a trial's end reaches it before its result."""
    from nni_snn.experiment.tuners import TPE

    tuner = TPE(optimize_mode="maximize", seed=0)
    tuner.update_search_space({"tau": {"_type": "uniform", "_value": [0.1, 0.9]}})
    params = tuner.generate_parameters(0)
    tuner.trial_end(0, True)  # the end first
    tuner.receive_trial_result(0, params, {"default": 0.9})
    assert sum(len(records) for records in tuner._history.values()) == 1  # the result joined the history
