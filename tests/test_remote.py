"""NNI's remote training service against a real OpenSSH server on a loopback port: trials started over SSH by the
real NNI manager, through ``nni-snn experiment`` and experiments/ablation_cifar10_remote.yml; and a manager that
stops (no sftp on the server) ending ``nni-snn experiment`` at once with one line."""

from __future__ import annotations

import getpass
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, VENV_BIN, free_port

from nni_snn.experiment import nnictl

SSHD = Path("/usr/sbin/sshd")
SFTP_SERVER = Path("/usr/lib/openssh/sftp-server")
# The remote example's install path on its machines; here, this checkout and its venv.
EXAMPLE_INSTALL = "/home/researcher/nni-snn"
TINY_TRIAL = ("--dataset digits --width 4 --cells 3 --epochs 1 --batch-size 256 --lr 0.05 --retrain-epochs 1 "
              "--retrain-width 4 --retrain-cells 3 --retrain-batch-size 256 --retrain-lr 0.05 --accelerator cpu "
              "--no-progress")


class Sshd:
    def __init__(self, folder: Path, sftp: bool):
        if not SSHD.exists() or not SFTP_SERVER.exists():  # `make test` installs them when run as root
            pytest.skip(f"no OpenSSH server ({SSHD}, {SFTP_SERVER}): install Debian's openssh-server "
                        "(`make test` does, as root)")
        self.port, self.key, self.log = free_port(), folder / "user_key", folder / "sshd.log"
        for key in ("host_key", "user_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / key)], check=True)
        config = folder / "sshd_config"
        config.write_text("\n".join([
            "ListenAddress 127.0.0.1", f"Port {self.port}", f"HostKey {folder / 'host_key'}",
            f"AuthorizedKeysFile {folder / 'user_key.pub'}", "PubkeyAuthentication yes",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password",
            "StrictModes no",  # pytest's tmp_path is not the owner-only folder sshd demands of key files
            "UsePAM no", f"PidFile {folder / 'sshd.pid'}",
            # NNI's manager uploads the trial code and reads logs over sftp; without it, it stops at once.
            f"Subsystem sftp {SFTP_SERVER}" if sftp else "",
        ]) + "\n")
        try:  # sshd's privilege separation folder, which its service would create
            Path("/run/sshd").mkdir(exist_ok=True)
        except OSError:
            pass  # not root: sshd says in its log whether it needs it
        self.proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                                     stderr=self.log.open("w"))
        deadline = time.monotonic() + 20
        while "Server listening" not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start: {self.log.read_text()}")
            time.sleep(0.1)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def sshd(tmp_path, request):
    server = Sshd(tmp_path, sftp=True)
    request.addfinalizer(server.stop)
    return server


@pytest.fixture
def sshd_without_sftp(tmp_path, request):
    server = Sshd(tmp_path, sftp=False)
    request.addfinalizer(server.stop)
    return server


def remote_config(tmp_path: Path, server: Sshd) -> Path:
    """experiments/ablation_cifar10_remote.yml with this machine as both its machines: host, port, user, key and
    the install path (this checkout) changed, and a tiny trial on digits, two at a time, on the CPU."""
    config = yaml.safe_load((ROOT / "experiments" / "ablation_cifar10_remote.yml").read_text()
                            .replace(EXAMPLE_INSTALL + "/.venv/bin", str(VENV_BIN)))
    for machine in config["trainingService"]["machineList"]:
        machine.update(host="127.0.0.1", port=server.port, user=getpass.getuser(), sshKeyFile=str(server.key))
    config["nniManagerIp"] = "127.0.0.1"  # the manager listens there (nni_snn.experiment.manager_host)
    command = config["trialCommand"]
    # One torch thread per trial: the two trials share this machine's cores (the session sets none over SSH).
    config["trialCommand"] = "OMP_NUM_THREADS=1 " + command[:command.index(" --dataset")] + " " + TINY_TRIAL
    config["searchSpace"]["attention"]["_value"] = ["none", "ma"]
    config.update(maxTrialNumber=2, trialConcurrency=2, trialGpuNumber=0, trialCodeDirectory=str(ROOT),
                  experimentWorkingDirectory=str(tmp_path / "nni-experiments"))
    path = tmp_path / "remote.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def nni_snn_experiment(config: Path, port: int, timeout: int, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "nni-snn"), "experiment", str(config), "--port", str(port),
                           "--timeout", str(timeout), *flags], capture_output=True, text=True, timeout=timeout + 120,
                          check=False)


def experiment_id(result: subprocess.CompletedProcess) -> str:
    started = re.search(r"experiment (\w+) started", result.stdout)
    assert started, result.stdout + result.stderr
    return started.group(1)


@pytest.mark.slow
def test_remote_experiment_over_ssh(tmp_path, sshd, experiment_env):
    config, port = remote_config(tmp_path, sshd), free_port()
    result = nni_snn_experiment(config, port, 900)  # without --stop: the manager stays up for the checks below
    exp_id = experiment_id(result)
    # The trial keeper on the "remote" machine keeps its trials under that user's ~/nni-experiments (NNI 3.0).
    remote_root = Path.home() / "nni-experiments" / exp_id
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        assert "experiment done: 2/2 trials done, 0 running, best " in result.stdout
        client = nnictl.RestClient(port)
        trials = client.trials()
        assert [t["status"] for t in trials] == ["SUCCEEDED", "SUCCEEDED"]

        # Each trial ran on the machine, started by its trial keeper over SSH, as the key's user.
        assert "Accepted publickey for " + getpass.getuser() in sshd.log.read_text()
        for trial in trials:
            folder = nnictl.trial_dir(client, exp_id, trial["trialJobId"])
            assert folder.is_relative_to(remote_root / "environments")
            ran = json.loads((folder / "arch.json").read_text())
            assert ran["attention"] == nnictl.trial_parameters(trial)["attention"]  # its own parameters
            assert (folder / "retrain" / "metrics.json").exists()

        # Intermediate results (one search and one retrain epoch per trial) and final results reached the manager.
        metrics = client.metrics()
        intermediate = [nnictl.metric_value(m) for m in metrics if m["type"] == "PERIODICAL"]
        assert len(intermediate) == 4 and all(r["spikes_per_sample"] > 0 for r in intermediate)
        assert sum(m["type"] == "FINAL" for m in metrics) == 2

        # `nni-snn experiment` summarised the best trial and found its arch.json (on the machine: here, this one).
        best, final = nnictl.best_trial(client)
        lines = result.stdout.splitlines()
        assert f"best trial: {best['trialJobId']} " in result.stdout
        assert any(line.startswith(f"accuracy: {final['default']:.4f}") for line in lines)
        arch_line = next(line for line in lines if line.startswith("architecture: "))
        assert arch_line.split()[1].endswith(str(nnictl.trial_dir(client, exp_id, best["trialJobId"]) / "arch.json"))
    finally:
        nnictl.stop(exp_id)
        shutil.rmtree(remote_root, ignore_errors=True)


@pytest.mark.slow
def test_experiment_ends_at_once_when_the_manager_stops(tmp_path, sshd_without_sftp, experiment_env):
    """Without sftp on the server NNI's manager stops at once; ``nni-snn experiment`` says so in one line."""
    config, port = remote_config(tmp_path, sshd_without_sftp), free_port()
    started = time.monotonic()
    result = nni_snn_experiment(config, port, 600, "--stop")
    took = time.monotonic() - started
    shutil.rmtree(Path.home() / "nni-experiments" / experiment_id(result), ignore_errors=True)
    assert result.returncode == 2, result.stdout + result.stderr
    assert took < 60
    error = result.stderr.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("nni-snn: error: ")
    assert "the NNI manager has stopped" in error[0] and "Unable to start subsystem: sftp" in error[0]  # why
    assert error[0].endswith(f"log: {tmp_path / 'nni-experiments' / experiment_id(result)}/log/nnimanager.log")


class StatusOnly:
    """A manager's REST API that reports one experiment status and these trials."""

    def __init__(self, status: str, trials: list[dict]):
        self.status, self._trials = status, trials

    def get(self, path):
        return {"status": self.status}

    def trials(self):
        return self._trials

    def metrics(self):
        return []

    def profile(self):
        return {}


@pytest.mark.parametrize("status, trials, why", [
    ("ERROR", [{"trialJobId": "T1", "status": "RUNNING"}], "the experiment failed"),
    ("STOPPED", [{"trialJobId": "T1", "status": "RUNNING"}], "the experiment was stopped"),
    ("VIEWED", [], r"the experiment is only viewed \(nnictl view\)"),
    ("DONE", [], "the experiment ended without running a trial"),
])
def test_wait_ends_at_once_on_a_status_that_cannot_progress(tmp_path, monkeypatch, status, trials, why):
    from nni_snn.errors import ExperimentError

    log = tmp_path / "abc123" / "log" / "nnimanager.log"
    log.parent.mkdir(parents=True)
    log.write_text("[2026-01-01 00:00:00] INFO (main) Start\n[2026-01-01 00:00:01] ERROR (NNIManager) tuner died\n")
    monkeypatch.setattr(nnictl, "manager_record", lambda experiment_id: {"logDir": str(tmp_path), "pid": 1})
    with pytest.raises(ExperimentError, match=f"^{why}: tuner died; log: {log}$"):
        nnictl.wait(StatusOnly(status, trials), timeout=600, progress=lambda line: None, experiment_id="abc123")


def test_a_remote_trial_takes_its_parameters_from_the_manager(tmp_path, monkeypatch):
    """A remote trial's channel is its machine's trial keeper; the manager's address is in the keeper's config."""
    import http.server
    import threading

    from nni_snn.experiment.trial import assigned_record

    class Manager(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            assert self.path == "/api/v1/nni/trial-jobs/T1"
            record = {"parameter_id": 1, "parameters": {"attention": "ma"}}
            self.send_response(200)
            self.end_headers()
            self.wfile.write(json.dumps({"hyperParameters": [json.dumps(record)]}).encode())

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Manager)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    machine = tmp_path / "nni-experiments" / "exp" / "environments" / "remote-worker1"  # NNI 3.0's layout
    (machine / "trial_keeper").mkdir(parents=True)
    (machine / "trial_keeper" / "trial_keeper_config.json").write_text(json.dumps(
        {"managerCommandChannel": f"ws://127.0.0.1:{server.server_port}/platform/remote/1"}))
    monkeypatch.setenv("NNI_PLATFORM", "remote")
    monkeypatch.setenv("NNI_OUTPUT_DIR", str(machine / "trials" / "T1"))
    monkeypatch.setenv("NNI_TRIAL_JOB_ID", "T1")
    monkeypatch.setenv("NNI_TRIAL_COMMAND_CHANNEL", "http://localhost:1/env/remote-worker1/T1")  # the keeper's
    try:
        received = {"parameter_id": 0, "parameters": {"attention": "none"}}  # another trial's, handed out first
        assert assigned_record(received) == {"parameter_id": 1, "parameters": {"attention": "ma"}}
    finally:
        server.shutdown()
