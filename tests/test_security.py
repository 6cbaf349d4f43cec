"""The NNI manager and web UI listen on loopback unless asked (nni_snn/experiment/manager_host.py, docs/security.md).

The slow tests start the real manager through ``nni-snn experiment`` with experiments/quickstart.yml (make demo's
config; its trials replaced by a sleep, since only the manager is looked at) and read its listening sockets from
the kernel (psutil, which NNI itself requires). No traffic leaves loopback: --host is tried with 127.0.0.2.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
import yaml
from conftest import HAND_ARCH, VENV_BIN, experiment_config, free_port

from nni_snn.cli.main import main
from nni_snn.errors import UsageError
from nni_snn.experiment import manager_host, nnictl

NODE = Path(__import__("nni_node").__path__[0]) / "node"


def listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket that ``pid`` and its children listen on."""
    process = psutil.Process(pid)
    found = set()
    for each in [process, *process.children(recursive=True)]:
        with_sockets = getattr(each, "net_connections", None) or each.connections
        found |= {(c.laddr.ip, c.laddr.port) for c in with_sockets("tcp") if c.status == psutil.CONN_LISTEN}
    return found


@pytest.fixture
def quickstart(tmp_path) -> Path:
    """make demo's config, its trials a sleep (the manager is what is tested), its files under tmp_path."""
    return experiment_config(tmp_path, lambda config: config.update(
        trialCommand=f'{sys.executable} -c "import time; time.sleep(120)"', trialCodeDirectory=str(tmp_path)))


@pytest.mark.slow
@pytest.mark.parametrize("host", [None, "127.0.0.2"])
def test_the_demo_manager_listens_on_loopback_or_where_asked(quickstart, host):
    port = free_port()
    flags = ["--host", host] if host else []
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", "NODE_OPTIONS": ""}
    run = subprocess.Popen([str(VENV_BIN / "nni-snn"), "experiment", str(quickstart), "--port", str(port),
                            "--timeout", "120", *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=env)
    first = run.stdout.readline()
    started = re.search(r"experiment (\w+) started; web UI: (\S+)", first)
    assert started, first + run.stderr.read()
    experiment_id, web_ui = started.groups()
    try:
        deadline = time.monotonic() + 60
        while not nnictl.RestClient(port).trials() and time.monotonic() < deadline:
            time.sleep(0.5)  # the tuner (connected to the manager on loopback) has handed out a trial
        assert nnictl.RestClient(port).trials()
        sockets = listening(nnictl.manager_record(experiment_id)["pid"])
        assert (host or "127.0.0.1", port) in sockets
        assert all(ipaddress.ip_address(address).is_loopback for address, _ in sockets), sockets
        if host:  # exactly there, and on 127.0.0.1 for nnictl, the tuner and the trials: nowhere else
            assert {address for address, _ in sockets} == {host, "127.0.0.1"}
        assert web_ui == f"http://{host or '127.0.0.1'}:{port}"
        with urllib.request.urlopen(web_ui, timeout=10) as page:  # the web UI
            assert b"<html" in page.read().lower()
        with urllib.request.urlopen(f"{web_ui}/api/v1/nni/check-status", timeout=10) as reply:  # the REST API
            assert json.load(reply)["status"] == "RUNNING"
    finally:
        run.terminate()
        run.wait(timeout=30)
        nnictl.stop(experiment_id)
    assert run.stderr.read() == ""  # loopback addresses: no warning


def test_the_preload_gives_every_server_a_host(tmp_path):
    """The preload under node, each way Node's listen() is called (express's app.listen(port), ws's
    listen(port, undefined, undefined, cb), an options object, all interfaces named), and a Unix socket kept."""
    if not NODE.exists():
        pytest.skip("no node in nni_node")
    script = tmp_path / "servers.js"
    script.write_text("""
const net = require('net'), http = require('http');
const calls = [s => s.listen(0), s => s.listen(0, undefined, undefined, () => {}), s => s.listen({port: 0}),
               s => s.listen(0, '0.0.0.0'), s => s.listen({port: 0, host: '::'}), s => s.listen(() => {}),
               s => s.listen(0, '127.0.0.3', 5)];
let left = calls.length + 1;
const out = {};
const done = () => { if (--left === 0) { console.log(JSON.stringify(out)); process.exit(0); } };
calls.forEach((call, i) => { const s = http.createServer(); s.on('listening', () => {
  out[i] = s.address().address; s.close(done); }); call(s); });
const unix = net.createServer(); unix.listen(process.argv[2], () => { out.unix = unix.address(); unix.close(done); });
""")
    for host, expect in [(None, "127.0.0.1"), ("127.0.0.2", "127.0.0.2")]:
        env = manager_host.manager_env(host or manager_host.LOOPBACK, {"PATH": os.environ["PATH"]})
        out = subprocess.run([str(NODE), str(script), str(tmp_path / f"s{expect}.sock")], env=env,
                             capture_output=True, text=True, timeout=30, check=True)
        found = json.loads(out.stdout)
        assert [found[str(i)] for i in range(6)] == [expect] * 6
        assert found["6"] == "127.0.0.3"  # a host given is kept
        assert found["unix"].endswith(".sock")


def test_an_exposed_manager_gets_one_warning_line(capsys):
    manager_host.warn_if_exposed("127.0.0.1", 8080)
    manager_host.warn_if_exposed("::1", 8080)
    assert capsys.readouterr().err == ""
    manager_host.warn_if_exposed("0.0.0.0", 8080)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("nni-snn: warning: the NNI manager and web UI listen on 0.0.0.0")
    for exposed in ("stop the experiment", "change its configuration", "kill or add trials",
                    "read trial logs and files", "without authentication"):
        assert exposed in lines[0]


def test_where_the_manager_listens():
    local = {"trainingService": {"platform": "local"}}
    remote = {"trainingService": {"platform": "remote"}, "nniManagerIp": "10.1.2.3"}
    assert manager_host.experiment_host(local, None) == "127.0.0.1"
    assert manager_host.experiment_host(remote, None) == "10.1.2.3"  # where its workers reach it
    assert manager_host.experiment_host(remote, "127.0.0.1") == "127.0.0.1"  # --host wins (an SSH tunnel)
    with pytest.raises(UsageError, match="platform remote: set nniManagerIp"):
        manager_host.experiment_host({"trainingService": {"platform": "remote"}}, None)
    with pytest.raises(UsageError, match="platform kubeflow: set nniManagerIp"):
        manager_host.experiment_host({"trainingService": [{"platform": "local"}, {"platform": "kubeflow"}]}, None)
    env = manager_host.manager_env("127.0.0.2", {"NODE_OPTIONS": "--max-old-space-size=100"})
    assert env["NODE_OPTIONS"] == f'--max-old-space-size=100 --require "{manager_host.PRELOAD}"'
    assert env["NNI_SNN_MANAGER_HOST"] == "127.0.0.2" and manager_host.PRELOAD.is_file()


@pytest.mark.parametrize("host, why", [("192.0.2.1", "cannot listen there"), ("", "give an address")])
def test_a_host_this_machine_cannot_listen_on_is_one_line(quickstart, capsys, host, why):
    assert main(["experiment", str(quickstart), "--host", host, "--port", str(free_port())]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("nni-snn: error: --host") and why in err[0]


@pytest.mark.parametrize("host", ["192.0.2.1", 5, ["0.0.0.0"]])
def test_a_multitrial_host_this_machine_cannot_listen_on_is_one_line(host, tmp_path, capsys):
    config = tmp_path / "multitrial.yml"
    config.write_text(yaml.safe_dump({"host": host, "port": free_port(), "output": str(tmp_path / "out")}))
    assert main(["multitrial", "--config", str(config)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("nni-snn: error: --host"), err


# ---- resource limits a user can hit by mistake ---------------------------------------------------------------------

def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("nni-snn: ")]
    assert len(lines) == 1 and lines[0].startswith("nni-snn: error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("argv, needs", [
    (["search", "--width", "4096", "--batch-size", "4096"], "a search step at width 4096"),
    (["retrain", "--width", "8192", "--batch-size", "4096", "--timesteps", "8"], "a retrain step at width 8192"),
])
def test_a_run_that_cannot_fit_memory_is_refused_with_the_estimate(argv, needs, tmp_path, capsys):

    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps(HAND_ARCH))
    argv = argv + (["--arch", str(arch)] if argv[0] == "retrain" else []) + [
        "--epochs", "1", "--output", str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert needs in line and re.search(r"needs about [\d.]+ GiB .* more than the [\d.]+ GiB available", line)
    assert line.endswith("(--batch-size, --width, --cells, --timesteps)")  # what to lower, as the command's flags
    assert not (tmp_path / "out" / "checkpoints").exists()  # refused before training


def test_the_memory_check_works_without_os_sysconf(monkeypatch, tmp_path, capsys):
    """macOS has no SC_AVPHYS_PAGES and Windows no os.sysconf at all: the available memory comes from psutil."""
    import os

    import psutil

    from nni_snn.train.memory import available_bytes

    monkeypatch.delattr(os, "sysconf", raising=False)
    assert 0 < available_bytes("cpu") <= psutil.virtual_memory().total
    argv = ["search", "--width", "4096", "--batch-size", "4096", "--epochs", "1", "--output", str(tmp_path / "out")]
    assert main(argv) == 2
    assert "a search step at width 4096" in one_error_line(capsys.readouterr().err)


def test_a_network_too_large_to_build_is_refused_before_allocating(tmp_path, capsys):

    arch = tmp_path / "arch.json"
    arch.write_text(json.dumps(HAND_ARCH))
    assert main(["show", str(arch), "--width", "1000000", "--dataset", "digits"]) == 2  # the estimate builds it
    assert re.search(r"this network has [\d.e+]+ parameters, [\d.]+ GiB in float32, more than",
                     one_error_line(capsys.readouterr().err))
    started = time.monotonic()
    assert main(["show", str(arch), "--width", "1000000"]) == 0  # only counted: on the meta device
    assert "at width 1000000, 5 cells, 10 classes: 552001981000500 parameters" in capsys.readouterr().out
    assert time.monotonic() - started < 30
    assert main(["show", str(arch), "--num-classes", "99999999999999999999999"]) == 2  # past int64
    assert "cannot build this network at these sizes" in one_error_line(capsys.readouterr().err)


FSIZE_RUN = """
import resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # as `ulimit -f`: a full disk, simulated
from nni_snn.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("limit", [300_000, 2_000])
def test_output_past_a_file_size_limit_is_one_line_and_nothing_half_written(limit, tmp_path):
    """A retrain whose checkpoint (300 kB) or metrics (2 kB) cannot be written: one line, exit 1 (the machine's
    room, not the user's command), and every file that a reader takes for a result is either absent or complete,
    and what an earlier run wrote is kept."""

    arch, out = tmp_path / "arch.json", tmp_path / "out"
    arch.write_text(json.dumps(HAND_ARCH))
    argv = ["retrain", "--arch", str(arch), "--width", "4", "--cells", "3", "--batch-size", "256",
            "--subset-per-class", "5", "--output", str(out), "--no-progress"]
    assert main([*argv, "--epochs", "1"]) == 0  # the earlier run, which the one past the limit continues
    earlier = json.loads((out / "metrics.json").read_text())
    run = subprocess.run([sys.executable, "-c", FSIZE_RUN, str(limit), *argv, "--epochs", "2", "--resume"],
                         capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
                         check=False)
    assert run.returncode == 1, run.stderr
    assert "cannot write the results: File too large" in one_error_line(run.stderr)
    assert json.loads((out / "metrics.json").read_text()) == earlier
    for ckpt in (out / "checkpoints").iterdir():  # none, or each one loads in full
        torch_load = __import__("torch").load
        assert "state_dict" in torch_load(ckpt, map_location="cpu", weights_only=True)
    assert not [f for f in out.rglob("*") if f.name.startswith(".") and f.is_file()]  # no temporary files left
