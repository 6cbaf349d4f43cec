"""Long runs survive mistakes and crashes: resume after SIGKILL, NaN guard, determinism, clear errors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from nni_snn.cli.main import main

TINY = ["--dataset", "digits", "--width", "4", "--cells", "3", "--batch-size", "128", "--lr", "0.05",
        "--no-progress"]


def search(out, epochs: int, *extra) -> dict:
    assert main(["search", *TINY, "--epochs", str(epochs), "--output", str(out), *extra]) == 0
    return json.loads((out / "arch.json").read_text())


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("a")
    arch = search(out, 3)
    return {**arch, "history": json.loads((out / "metrics.json").read_text())["history"]}


def test_same_seed_same_architecture(tmp_path, uninterrupted):
    again = search(tmp_path, 3)
    assert again["genotype"] == uninterrupted["genotype"]
    assert again["alpha"] == uninterrupted["alpha"]


@pytest.mark.slow
def test_killed_search_resumes_to_the_same_architecture(tmp_path, uninterrupted):
    out = tmp_path / "b"
    cmd = [sys.executable, "-m", "nni_snn", "search", *TINY, "--epochs", "3", "--output", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = out / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # an epoch takes about a second: kill inside the second one
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists() and not (out / "arch.json").exists()
    import torch

    assert torch.load(checkpoint, map_location="cpu", weights_only=True)["epoch"] < 2  # killed mid-run
    resumed = search(out, 3, "--resume")
    assert resumed["genotype"] == uninterrupted["genotype"]
    for label, probs in uninterrupted["alpha"].items():
        assert resumed["alpha"][label] == pytest.approx(probs, abs=1e-6)
    history = json.loads((out / "metrics.json").read_text())["history"]
    # every epoch keeps its architecture, those before the kill too (the strategy's module saved them)
    assert [h["epoch"] for h in history] == [0, 1, 2] and all("genotype" in h and "alpha" in h for h in history)
    # Resumed mid-run, not from the final epoch (the search writes last.ckpt after every epoch), and every epoch
    # after the kill matches the uninterrupted run's (the α optimizer's state is restored onto the right α).
    for resumed_epoch, before in zip(history, uninterrupted["history"]):
        assert (resumed_epoch["train_loss"], resumed_epoch["val_acc"]) == (before["train_loss"], before["val_acc"])


@pytest.mark.slow
def test_killed_energy_front_search_resumes_to_the_same_front(tmp_path):
    """The front's alpha sets, their Adam states and every epoch's architectures are in the checkpoint: a front
    search killed mid-run and resumed writes what an uninterrupted one writes (the full study resumes its searches)."""
    front = ["--energy-front", "0,3", "--epochs", "3"]

    def lambdas(out) -> dict:
        table = json.loads((out / "front.json").read_text())
        return {row["lambda"]: (json.loads((out / "front" / f"lambda-{row['lambda']:g}" / "arch.json").read_text()),
                                row["epoch"]) for row in table["rows"]}

    uninterrupted = tmp_path / "a"
    assert main(["search", *TINY, *front, "--output", str(uninterrupted)]) == 0
    out = tmp_path / "b"
    proc = subprocess.Popen([sys.executable, "-m", "nni_snn", "search", *TINY, *front, "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = out / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists() and not (out / "front.json").exists()
    import torch

    assert torch.load(checkpoint, map_location="cpu", weights_only=True)["epoch"] < 2  # killed mid-run
    assert main(["search", *TINY, *front, "--output", str(out), "--resume"]) == 0
    expected, resumed = lambdas(uninterrupted), lambdas(out)
    assert resumed.keys() == expected.keys() == {0.0, 3.0}
    for lam, (arch, epoch) in expected.items():
        assert resumed[lam][1] == epoch and resumed[lam][0]["genotype"] == arch["genotype"]
        for label, probs in arch["alpha"].items():
            assert resumed[lam][0]["alpha"][label] == pytest.approx(probs, abs=1e-6)


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["search", *TINY, "--output", str(tmp_path), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "--resume: no checkpoint" in err and err.count("\n") == 1


def test_diverging_run_stops_and_keeps_last_good_files(tmp_path, capsys, hand_arch):
    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps(hand_arch))
    out = tmp_path / "out"
    code = main(["retrain", "--arch", str(arch), *TINY[:6], "--epochs", "2", "--lr", "1e30", "--no-progress",
                 "--output", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert "NaN/inf" in err and "Traceback" not in err
    assert not (out / "checkpoints" / "last.ckpt").exists()  # nothing diverged was saved


@pytest.mark.parametrize("argv,needle", [
    (["search", "--epochs", "0"], "--epochs must be an integer >= 1"),
    (["search", "--batch-size", "-3"], "--batch-size must be an integer >= 1"),
    (["search", "--timesteps", "0"], "--timesteps must be an integer >= 1"),
    (["search", "--cells", "0"], "--cells must be an integer >= 1"),
    (["search", "--width", "x"], "invalid int value"),
    (["retrain"], "retrain needs --arch"),
    (["retrain", "--arch", "missing.json"], "cannot read"),
    (["search", "--dataset", "cifar10", "--data-dir", "EMPTY"], "missing or empty"),
    (["search", "--dataset", "imagefolder", "--data-dir", "EMPTY"], "missing or empty"),
    (["search", "--dataset", "nmnist", "--data-dir", "EMPTY"], "missing or empty"),
    (["search", "--dataset", "dvsgesture"], "needs --data-dir"),
    (["search", "--dataset", "digits-events", "--frames-by", "space"], "--frames-by 'space' is unknown"),
    (["search", "--dataset", "digits-events", "--event-size", "0"], "--event-size must be an integer >= 1"),
    (["search", "--dataset", "digits-events", "--event-size", "9"], "larger than the sensor"),
    (["search", "--dataset", "digits-events", "--download"], "event datasets are read from --data-dir"),
    (["search", "--dataset", "digits", "--event-size", "4"], "digits is images"),
    (["search", "--lr", "-1"], "--lr must be a number > 0"),
    (["search", "--arc-lr", "0"], "--arc-lr must be a number > 0"),
    (["retrain", "--baseline", "spiking-cnn", "--dataset", "digits-events", "--cutout", "4"], "no meaning for event"),
    (["experiment", "no/such/config.yml", "--port", "1"], "not found"),
])
def test_bad_flags_are_one_line_and_exit_2(argv, needle, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = [str(empty) if a == "EMPTY" else a for a in argv]
    if argv[0] != "experiment":
        argv += ["--output", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err
    if needle == "cannot read":  # a bad input file is refused before anything is written
        assert not (tmp_path / "out").exists()


def test_retrain_resumes_from_its_last_checkpoint(tmp_path, hand_arch):
    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps(hand_arch))
    out = tmp_path / "out"
    base = ["retrain", "--arch", str(arch), *TINY[:6], "--batch-size", "256", "--no-progress", "--output", str(out)]
    assert main([*base, "--epochs", "1"]) == 0
    assert main([*base, "--epochs", "2", "--resume"]) == 0
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [0, 1]
