"""A run never replaces another unasked: a command whose --output holds a run refuses (one line, exit 2, nothing
touched) unless --overwrite, which removes that run's results first and says so; --resume continues it; every run
logs to a TensorBoard version folder of its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import HAND_ARCH, free_port

from nni_snn.cli.main import main

TINY = ["--dataset", "digits", "--width", "4", "--cells", "3", "--batch-size", "128", "--lr", "0.05",
        "--no-progress"]


def snapshot(folder: Path) -> dict:
    """Every file under ``folder``, with its bytes: what a refused command must leave as it was."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nni-snn: error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def arch(tmp_path) -> Path:
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(HAND_ARCH))
    return path


@pytest.mark.parametrize("command, left", [
    ("search", {"arch.json": "{}", "metrics.json": "{}"}),
    ("search", {"checkpoints/last.ckpt": "x"}),  # an unfinished run: --resume continues it
    ("retrain", {"metrics.json": "{}", "checkpoints/best.ckpt": "x"}),
    ("multitrial", {"arch.json": "{}"}),
])
def test_an_output_holding_a_run_is_refused_before_anything_runs(command, left, tmp_path, arch, capsys):
    out = tmp_path / "out"
    for name, text in left.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    before = snapshot(out)
    argv = {"search": ["search", *TINY, "--epochs", "1"],
            "retrain": ["retrain", "--arch", str(arch), *TINY, "--epochs", "1"],
            "multitrial": ["multitrial", "--trials", "1", "--port", str(free_port())]}[command]
    assert main([*argv, "--output", str(out)]) == 2
    line = one_error(capsys.readouterr().err)
    assert f"--output {out} holds" in line and "--overwrite" in line
    assert ("--resume" in line) == (command != "multitrial")  # multitrial has no --resume
    assert snapshot(out) == before  # nothing written, nothing removed: no config.yaml, no TensorBoard folder


def test_export_refuses_to_replace_a_file(tmp_path, capsys):
    target = tmp_path / "net.nir"
    target.write_bytes(b"an earlier export")
    assert main(["export", str(tmp_path), "--output", str(target)]) == 2
    line = one_error(capsys.readouterr().err)
    assert f"--output {target} exists" in line and "--overwrite" in line
    assert target.read_bytes() == b"an earlier export"
    # With --overwrite the run folder is read: this one is no retrain's, which is the next error.
    assert main(["export", str(tmp_path), "--output", str(target), "--overwrite"]) == 2
    assert "exists" not in one_error(capsys.readouterr().err)


def test_resume_and_overwrite_together_are_refused(tmp_path, capsys):
    assert main(["search", *TINY, "--epochs", "1", "--output", str(tmp_path), "--resume", "--overwrite"]) == 2
    assert "not both" in one_error(capsys.readouterr().err)


def test_resume_continues_its_version_and_overwrite_starts_a_new_one(tmp_path, capsys):
    out = tmp_path / "out"
    search = ["search", *TINY, "--output", str(out)]
    assert main([*search, "--epochs", "1"]) == 0
    # A stale file of a kind this search would not write (a 3-cell search draws both cells; a stale checkpoint
    # name Lightning would not reuse): --overwrite must not leave them mixed in with the new run.
    (out / "checkpoints" / "best-v1.ckpt").write_text("stale")
    capsys.readouterr()
    assert main([*search, "--epochs", "2", "--resume"]) == 0  # a finished run can still be continued
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [0, 1]
    assert sorted(p.name for p in (out / "tensorboard").iterdir()) == ["version_0"]  # resumed: its own version

    assert main([*search, "--epochs", "1", "--seed", "1", "--overwrite"]) == 0
    err = capsys.readouterr().err
    replacing = [line for line in err.splitlines() if line.startswith("nni-snn: replacing the run in")]
    assert len(replacing) == 1 and "arch.json" in replacing[0] and "TensorBoard logs stay" in replacing[0]
    assert sorted(p.name for p in (out / "tensorboard").iterdir()) == ["version_0", "version_1"]
    assert all(list((out / "tensorboard" / v).glob("events.out.tfevents.*")) for v in ("version_0", "version_1"))
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["last.ckpt"]
    assert json.loads((out / "arch.json").read_text())["search"]["seed"] == 1
    assert len(json.loads((out / "metrics.json").read_text())["history"]) == 1
    assert "overwrite" not in (out / "config.yaml").read_text()  # read back with --config, it must not replace


def test_a_trial_replaces_an_earlier_start_in_its_own_folder(tmp_path, monkeypatch, capsys):
    """NNI gives each trial its own folder and reruns a trial there only when its experiment is resumed: a run there
    that cannot be continued is replaced (as before), never refused, and one that can is continued."""
    import yaml

    from nni_snn.cli import main as cli
    from nni_snn.cli.options import SearchOptions
    from nni_snn.experiment import trial as nni_trial

    class FakeTrial:  # a trial whose tuner sets no option
        def __init__(self):
            self.parameters = {}

    folder = tmp_path / "trial"
    folder.mkdir()
    (folder / "metrics.json").write_text("{}")
    monkeypatch.setattr(nni_trial, "output_dir", lambda: folder)
    monkeypatch.setattr(nni_trial, "Trial", FakeTrial)
    args = cli.build_parser().parse_args(["search", *TINY, "--epochs", "1"])
    opts, output, _ = cli._prepare(args, SearchOptions)
    assert output == folder and not opts.resume and not (folder / "metrics.json").exists()
    assert "replacing the run in" in capsys.readouterr().err
    # Stopped mid-run with these options (its config.yaml): the resumed experiment's trial continues it.
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "last.ckpt").write_text("x")
    assert yaml.safe_load((folder / "config.yaml").read_text())["output"] == str(folder)
    opts, output, _ = cli._prepare(args, SearchOptions)
    assert opts.resume and (folder / "checkpoints" / "last.ckpt").exists()


def test_the_architecture_a_retrain_reads_in_its_output_is_its_input_not_a_run(tmp_path, arch):
    from nni_snn.cli.main import claim_output
    from nni_snn.cli.options import RetrainOptions
    from nni_snn.errors import UsageError

    opts = RetrainOptions(arch=str(arch), output=str(tmp_path))
    claim_output(tmp_path, opts)  # only the input there: nothing to refuse
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(UsageError, match="holds a finished run"):
        claim_output(tmp_path, opts)
    claim_output(tmp_path, opts, replace=True)
    assert arch.is_file() and not (tmp_path / "metrics.json").exists()
