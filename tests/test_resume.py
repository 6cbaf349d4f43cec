"""Resuming an experiment with the real NNI manager: stopped with ``nnictl stop`` while a trial is mid-run, then
killed with SIGKILL while another is, and resumed each time; the interrupted trials continue from their last
epoch's checkpoint, finished trials are not rerun, and the manager's REST data (the web UI's) holds every trial's
results once. ``nni-snn experiment``'s progress lines, as a log (not a terminal) gets them, are checked on the way."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from itertools import pairwise
from pathlib import Path

import pytest
from conftest import ROOT, VENV_BIN, experiment_config, free_port

from nni_snn.experiment import nnictl

# 3 search + 2 retrain epochs: a search epoch takes about 10 s on 2 busy cores, so a stop after the first reported
# epoch lands mid-run (NNI's manager takes a few seconds to stop its trials).
TRIAL = ("python -m nni_snn search --dataset digits --width 4 --cells 3 --epochs 3 --batch-size 128 --lr 0.05 "
         "--retrain-epochs 2 --retrain-width 4 --retrain-cells 3 --retrain-batch-size 128 --retrain-lr 0.05 "
         "--accelerator cpu --no-progress")
EPOCHS = 5  # per-epoch results each trial reports


def three_trials(tmp_path: Path) -> Path:
    """The quickstart's three attentions (GridSearch), one trial at a time, each tiny."""
    return experiment_config(tmp_path, lambda config: config.update(
        trialCommand=TRIAL, trialCodeDirectory=str(ROOT), maxTrialNumber=3, trialConcurrency=1))


def epochs_reported(client: nnictl.RestClient) -> dict[str, int]:
    counts = {}
    for metric in client.metrics():
        if metric["type"] == "PERIODICAL":
            counts[metric["trialJobId"]] = counts.get(metric["trialJobId"], 0) + 1
    return counts


def mid_run_trial(client: nnictl.RestClient, finished: int, exp_id: str, timeout: float = 600) -> str:
    """The running trial, once ``finished`` trials have succeeded and it has reported its first epoch and written its
    checkpoint of it (the report comes at validation's end, the checkpoint at the training epoch's end, after it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            trials, reported = client.trials(), epochs_reported(client)
            running = [t["trialJobId"] for t in trials if t["status"] == "RUNNING" and reported.get(t["trialJobId"])
                       and (nnictl.trial_dir(client, exp_id, t["trialJobId"]) / "checkpoints" / "last.ckpt").exists()]
        except OSError:
            trials, running = [], []
        assert not any(t["status"] in ("FAILED", "SYS_CANCELED") for t in trials), trials
        if sum(t["status"] == "SUCCEEDED" for t in trials) == finished and running:
            return running[0]
        time.sleep(0.2)
    raise AssertionError(f"no trial mid-run after {finished} finished within {timeout} s")


def trial_processes(trial_id: str) -> list[int]:
    """This user's processes that run NNI trial ``trial_id`` (by the variable NNI's trial keeper sets)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"NNI_TRIAL_JOB_ID={trial_id}".encode() in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:
            pass
    return found


def progress_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("experiment ") and " trials done" in line]


@pytest.mark.slow
def test_stopped_and_killed_experiment_resumes_its_trials_from_their_checkpoints(tmp_path, experiment_env):
    config, port = three_trials(tmp_path), free_port()
    # A fresh run through `nni-snn experiment`, its output a pipe (as in a log file or CI).
    fresh = subprocess.Popen([str(VENV_BIN / "nni-snn"), "experiment", str(config), "--port", str(port)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = fresh.stdout.readline()
    started = re.match(r"experiment (\w+) started", first)
    assert started, first + fresh.stderr.read()
    exp_id, client = started.group(1), nnictl.RestClient(port)
    try:
        # 1. `nnictl stop` while the second trial is mid-run (its first epoch reported).
        stopped = mid_run_trial(client, finished=1, exp_id=exp_id)
        done = next(t["trialJobId"] for t in client.trials() if t["status"] == "SUCCEEDED")
        done_dir = nnictl.trial_dir(client, exp_id, done)
        done_files = {p: p.stat().st_mtime_ns for p in done_dir.rglob("*") if p.is_file()}
        stopped_dir = nnictl.trial_dir(client, exp_id, stopped)
        nnictl.stop(exp_id)
        out, err = fresh.communicate(timeout=120)
        assert fresh.returncode == 2 and "stopped" in err, out + err  # nni-snn experiment said why, in one line
        assert (stopped_dir / "checkpoints" / "last.ckpt").exists()
        assert not (stopped_dir / "retrain" / "metrics.json").exists()  # it was stopped mid-run
        assert not trial_processes(stopped)  # the manager's stop ended the trial (SIGINT)
        lines = progress_lines(out)
        assert all(a != b for a, b in pairwise(lines))  # a line only when something changed
        assert "\r" not in out
        assert any(line.startswith("experiment running: 0/3 trials done, 1 running (") and ": epoch 1)" in line
                   for line in lines), out
        assert any(line.startswith("experiment running: 1/3 trials done, 1 running (") and ", best 0." in line
                   for line in lines), out

        # 2. `nnictl resume`, then SIGKILL the manager while the third trial is mid-run.
        nnictl.resume(exp_id, port)
        killed = mid_run_trial(client, finished=2, exp_id=exp_id)
        killed_dir = nnictl.trial_dir(client, exp_id, killed)
        assert (stopped_dir / "retrain" / "metrics.json").exists()
        manager = nnictl.manager_record(exp_id)["pid"]
        os.kill(manager, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while nnictl.process_alive(manager) or trial_processes(killed):
            # The orphaned trial notices that its manager is gone and stops by itself.
            assert time.monotonic() < deadline, f"trial {killed} still runs after its manager was killed"
            time.sleep(0.2)
        assert (killed_dir / "checkpoints" / "last.ckpt").exists()
        assert not (killed_dir / "retrain" / "metrics.json").exists()

        # 3. `nni-snn experiment --resume`: the same progress display, to the end.
        resumed = subprocess.run([str(VENV_BIN / "nni-snn"), "experiment", "--resume", exp_id, "--port", str(port),
                                  "--timeout", "900"], capture_output=True, text=True, timeout=1000, check=False)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert resumed.stdout.startswith(f"experiment {exp_id} resumed; web UI: http://127.0.0.1:{port}\n")
        # The killed manager's tuner retried its port: resumed beside it, NNI's manager would fail at once.
        assert re.search(r"^ended \d+ process(es)? its killed manager had left running \(tuner\)$", resumed.stdout,
                         re.MULTILINE), resumed.stdout
        lines = progress_lines(resumed.stdout)
        assert all(a != b for a, b in pairwise(lines)) and "\r" not in resumed.stdout
        assert any(f"2/3 trials done, 1 running ({killed}: epoch " in line for line in lines), resumed.stdout
        assert re.fullmatch(r"experiment done: 3/3 trials done, 0 running, best 0\.\d{4}", lines[-1]), lines

        # The manager's records: three trials, each once, succeeded, each epoch's result once, one final each.
        trials = client.trials()
        assert sorted(t["status"] for t in trials) == ["SUCCEEDED"] * 3
        metrics = client.metrics()
        for trial in trials:
            mine = [m for m in metrics if m["trialJobId"] == trial["trialJobId"]]
            periodical = [m["sequence"] for m in mine if m["type"] == "PERIODICAL"]
            # Resumed from its checkpoint: had it started again at epoch 0, it would have reported more epochs.
            assert len(periodical) == EPOCHS and len(set(periodical)) == EPOCHS, (trial["trialJobId"], periodical)
            assert sum(m["type"] == "FINAL" for m in mine) == 1
        # The interrupted trials said that they continued (NNI appends what a trial prints to its trial.log); the
        # killed one that it stopped when its manager was gone; the finished one was not run again.
        for trial_id, folder in ((stopped, stopped_dir), (killed, killed_dir)):
            assert "nni-snn: resuming this trial from" in (folder / "trial.log").read_text(), trial_id
        assert "the NNI manager that started this trial has exited" in (killed_dir / "trial.log").read_text()
        assert {p: p.stat().st_mtime_ns for p in done_dir.rglob("*") if p.is_file()} == done_files
        # And each ran its own parameters to the end: a search and a retrain of every epoch.
        for trial in trials:
            folder = nnictl.trial_dir(client, exp_id, trial["trialJobId"])
            assert json.loads((folder / "arch.json").read_text())["attention"] == \
                nnictl.trial_parameters(trial)["attention"]
            history = json.loads((folder / "metrics.json").read_text())["history"]
            assert [h["epoch"] for h in history] == [0, 1, 2]
            retrained = json.loads((folder / "retrain" / "metrics.json").read_text())["history"]
            assert [h["epoch"] for h in retrained] == [0, 1]
    finally:
        if fresh.poll() is None:
            fresh.kill()
        nnictl.stop(exp_id)


def test_resume_of_an_unknown_experiment_is_one_line(capsys):
    from nni_snn.cli.main import main

    assert main(["experiment", "--resume", "noSuchId1", "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nni-snn: error: no experiment 'noSuchId1' known to nnictl") and err.count("\n") == 1


def test_attaching_to_an_unknown_experiment_is_one_line(capsys):
    from nni_snn.cli.main import main

    assert main(["experiment", "--attach", "noSuchId1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nni-snn: error: no experiment 'noSuchId1' known to nnictl") and err.count("\n") == 1


@pytest.mark.parametrize("argv", [["experiment"], ["experiment", "some.yml", "--resume", "abc"],
                                  ["experiment", "some.yml", "--attach", "abc"],
                                  ["experiment", "--resume", "abc", "--attach", "abc"]])
def test_experiment_needs_one_of_a_config_resume_or_attach(argv, capsys):
    from nni_snn.cli.main import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "give an experiment config, --resume ID of a stopped experiment, or --attach ID" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("flags, needle", [(["--attach", "abc", "--host", "0.0.0.0"], "--attach starts none"),
                                           (["quickstart", "--timeout", "0"], ("--timeout must be a number of "
                                                                              "seconds > 0, got 0")),
                                           (["quickstart", "--port", "0"], "--port must be in 1..65535")])
def test_experiment_refuses_flags_that_do_not_fit(flags, needle, capsys):
    from nni_snn.cli.main import main

    assert main(["experiment", *flags]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_an_experiment_is_followed_without_a_time_limit_by_default():
    """An experiment of 80 minutes is not given up after an hour: --timeout is there only when given."""
    from nni_snn.cli.main import build_parser

    args = build_parser().parse_args(["experiment", "quickstart"])
    assert args.timeout is None and args.port is None  # the port: 8080, or an attached experiment's own
    polls = []

    class Finishing:  # NNI's REST API as a finished experiment answers it, after some polls
        def get(self, path):
            polls.append(path)
            return {"status": "DONE" if len(polls) > 3 else "RUNNING"}

        def trials(self):
            return [{"trialJobId": "a", "status": "SUCCEEDED" if len(polls) > 3 else "RUNNING"}]

        def metrics(self):
            return []

        def profile(self):
            return {"params": {"maxTrialNumber": 1}}

    trials = nnictl.wait(Finishing(), args.timeout, poll=0, progress=lambda line: None)
    assert trials == [{"trialJobId": "a", "status": "SUCCEEDED"}]


def test_progress_line_counts_trials_epochs_and_the_best_result():
    trials = [{"trialJobId": "A", "status": "SUCCEEDED"}, {"trialJobId": "B", "status": "SUCCEEDED"},
              {"trialJobId": "C", "status": "RUNNING"}, {"trialJobId": "D", "status": "WAITING"}]
    def result(value):  # as the REST API gives it: JSON in a JSON string
        return json.dumps(json.dumps({"default": value}))

    metrics = [{"trialJobId": "A", "type": "FINAL", "data": result(0.5)},
               {"trialJobId": "B", "type": "FINAL", "data": result(0.75)},
               {"trialJobId": "C", "type": "PERIODICAL", "data": result(0.9)},
               {"trialJobId": "C", "type": "PERIODICAL", "data": result(0.95)}]
    line = nnictl.progress_line("RUNNING", trials, metrics, {"maxTrialNumber": 5})
    assert line == "experiment running: 2/5 trials done, 1 running (C: epoch 2), 1 waiting, best 0.7500"
    assert nnictl.progress_line("RUNNING", [], [], {}) == "experiment running: 0/0 trials done, 0 running"


def test_progress_printer_writes_a_line_per_change_when_not_a_terminal():
    import io

    stream = io.StringIO()
    show = nnictl.progress_printer(stream)
    for line in ("a", "a", "b", "b", "a"):
        show(line)
    assert stream.getvalue() == "a\nb\na\n" and not show.in_place


def test_progress_printer_rewrites_one_line_on_a_terminal():
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    show = nnictl.progress_printer(stream)
    show("longer line")
    show("short")
    assert stream.getvalue() == "\rlonger line\rshort      " and show.in_place
