"""``nni-snn experiment CONFIG`` (or ``--resume ID``, ``--attach ID``): run an nnictl experiment, follow it,
summarise the best trial.

It starts the real NNI manager with ``nnictl create`` (``nnictl resume``; ``--attach`` starts nothing and follows an
experiment that runs already), polls NNI's REST API with a progress line (trials done / running / total, the running
trials' epochs, the best result), and at the end prints the web UI address, the best trial, its ``arch.json`` and
accuracy, and how to stop the experiment. The experiment keeps running (web UI included) until ``nnictl stop``
unless ``--stop`` is given; it does not depend on the command that follows it, which may be interrupted and attached
again.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from nni_snn.errors import ExperimentError, UsageError
from nni_snn.experiment.manager_host import LOOPBACK as MANAGER_LOOPBACK
from nni_snn.experiment.manager_host import (
    check_host,
    experiment_host,
    manager_env,
    url_host,
    warn_if_exposed,
)
from nni_snn.files.runfolder import RunFolder, read_mapping, write_text_atomic

FINISHED = {"SUCCEEDED", "FAILED", "USER_CANCELED", "SYS_CANCELED", "EARLY_STOPPED"}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# Experiment states from which no trial will run or finish any more, and what to tell the user (trials that had
# all finished are summarised before this is checked). DONE with no trial at all is one too: nothing was dispatched.
CANNOT_PROGRESS = {"ERROR": "the experiment failed", "STOPPING": "the experiment was stopped",
                   "STOPPED": "the experiment was stopped", "VIEWED": "the experiment is only viewed (nnictl view)"}


class RestClient:
    """The few calls of NNI's REST API (``/api/v1/nni``) that following an experiment needs."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.base = f"http://{host}:{port}/api/v1/nni"

    def get(self, path: str):
        with urllib.request.urlopen(f"{self.base}/{path}", timeout=10) as response:
            return json.loads(response.read().decode())

    def trials(self) -> list[dict]:
        return self.get("trial-jobs")

    def metrics(self) -> list[dict]:
        """Every reported metric: ``type`` is PERIODICAL (intermediate) or FINAL, ``data`` a JSON string."""
        return self.get("metric-data")

    def profile(self) -> dict:
        return self.get("experiment")


def examples_root() -> Path:
    """The folder holding the example configs' ``experiments/`` (their ``trialCodeDirectory``, ".."): the
    repository's root in a checkout; ``nni_snn/examples`` in an installed package, where pyproject.toml ships the
    repository's experiments/."""
    package = Path(__file__).resolve().parent.parent  # nni_snn/
    return package / "examples" if (package / "examples" / "experiments").is_dir() else package.parent


def example_configs() -> dict[str, Path]:
    """The example nnictl configs by name (``quickstart``: experiments/quickstart.yml); a YAML file of search options
    there, such as efficient_fashionmnist.yml, is not one."""
    found = sorted((examples_root() / "experiments").glob("*.yml"))
    return {path.stem: path for path in found if "\ntrialCommand:" in path.read_text()}


def config_path(config: str | Path) -> Path:
    """An nnictl config: a file, else the name of an example config (:func:`example_configs`)."""
    if Path(config).is_file():
        return Path(config)
    examples = example_configs()
    if str(config) in examples:
        return examples[str(config)]
    raise ExperimentError(f"experiment config {config} not found; give a file, or the name of an example: "
                          f"{', '.join(examples)}")


def copy_examples(folder: Path) -> Path:
    """Copy the example configs (and scripts) to ``folder/experiments``, where they run as in the repository (their
    trialCodeDirectory is ``folder``); the folder written. Refuses before writing anything if one is there already."""
    sources = sorted(p for p in (examples_root() / "experiments").iterdir() if p.suffix in (".yml", ".sh"))
    target = folder / "experiments"
    there = [target / p.name for p in sources if (target / p.name).exists()]
    if there:
        raise UsageError(f"{there[0]} exists: not overwriting it; give another folder")
    try:
        for source in sources:
            write_text_atomic(target / source.name, source.read_text())
    except OSError as err:
        raise UsageError(f"{err.filename or folder}: cannot write ({err.strerror})") from None
    return target


def nnictl() -> str:
    """The nnictl next to this Python (the project's virtualenv), else the one on PATH."""
    local = Path(sys.executable).with_name("nnictl")
    found = str(local) if local.exists() else shutil.which("nnictl")
    if not found:
        raise ExperimentError("nnictl not found; install nni-snn into this environment (make setup)")
    return found


def trial_env() -> dict:
    """Trials run ``python -m nni_snn``: put this environment's ``bin`` first on their PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def create(config: Path, port: int, env: dict | None = None, host: str = MANAGER_LOOPBACK) -> str:
    """``nnictl create``, its manager listening on ``host`` (:mod:`nni_snn.experiment.manager_host`); returns the experiment
    id."""
    if not config.is_file():
        raise ExperimentError(f"experiment config {config} not found")
    result = subprocess.run([nnictl(), "create", "--config", str(config), "--port", str(port)],
                            capture_output=True, text=True, env=manager_env(host, env or trial_env()), timeout=300,
                            check=False)
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)  # nnictl colours its output
    match = re.search(r"Experiment ID:\s*(\w+)", output)
    if result.returncode != 0 or not match:
        last = [line for line in output.splitlines() if line.strip()][-1:] or ["no output"]
        raise ExperimentError(f"nnictl create failed: {last[0].strip()}")
    return match.group(1)


def stop(experiment_id: str) -> None:
    subprocess.run([nnictl(), "stop", experiment_id], capture_output=True, text=True, timeout=120, check=False)


def manager_record(experiment_id: str) -> dict:
    """nnictl's record of the experiment (its manager's ``pid``, ``logDir``, ``status``), {} if it has none."""
    from nni_snn.nni_compat import Experiments

    return Experiments().get_all_experiments().get(experiment_id, {})


def manager_log(experiment_id: str) -> Path:
    root = manager_record(experiment_id).get("logDir") or os.path.expanduser("~/nni-experiments")
    return Path(root) / experiment_id / "log" / "nnimanager.log"


def process_alive(pid: int | None) -> bool:
    """Whether ``pid`` runs (a zombie, left unreaped by a container's init, counts as ended)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def last_error(log: Path) -> str:
    """The last ERROR line of the manager's log, without its time stamp and logger ('' if none)."""
    try:
        errors = [line for line in log.read_text(errors="replace").splitlines() if "] ERROR " in line]
    except OSError:
        return ""
    return re.sub(r"^\[[^]]*\] ERROR (\([^)]*\) )?", "", errors[-1]).strip() if errors else ""


def stopped(experiment_id: str, why: str) -> ExperimentError:
    """One line: why the experiment cannot go on, the manager's last error, and where its log is."""
    log = manager_log(experiment_id)
    error = last_error(log)
    return ExperimentError(f"{why}{': ' + error if error else ''}; log: {log}")


def wait(client: RestClient, timeout: float | None, poll: float = 3.0, progress=print,
         experiment_id: str | None = None) -> list[dict]:
    """Wait until the experiment is done (all trials finished, none left to run) or ``timeout`` seconds pass (None:
    no limit), calling ``progress`` with a :func:`progress_line` after every poll.

    With ``experiment_id`` it also watches the manager: a manager that has exited (its REST API gone with it) or
    an experiment in a state that cannot progress (ERROR, stopped, only viewed) ends the wait at once, with one
    line that names the manager's last error and its log, instead of waiting out ``timeout``."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            status, trials = client.get("check-status")["status"], client.trials()
            line = progress_line(status, trials, client.metrics(), client.profile().get("params", {}))
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if experiment_id and not process_alive(manager_record(experiment_id).get("pid")):
                raise stopped(experiment_id, "the NNI manager has stopped") from None
            status, trials, line = "STARTING", [], "experiment starting"
        progress(line)
        finished = all(t["status"] in FINISHED for t in trials)
        if status in ("DONE", "STOPPED", "NO_MORE_TRIAL") and trials and finished:
            return trials
        if experiment_id and status in CANNOT_PROGRESS:
            raise stopped(experiment_id, CANNOT_PROGRESS[status])
        if experiment_id and status == "DONE" and not trials:
            raise stopped(experiment_id, "the experiment ended without running a trial")
        if deadline is not None and time.monotonic() > deadline:
            again = f"; it goes on: nni-snn experiment --attach {experiment_id} follows it" if experiment_id else ""
            raise ExperimentError(f"experiment not finished after {timeout:.0f} s (status {status}){again}")
        time.sleep(poll)


def progress_line(status: str, trials: list[dict], metrics: list[dict], params: dict) -> str:
    """What the experiment is doing, in one line: trials done / running / total, each running trial's latest epoch
    (how many per-epoch results it has reported: a search-and-retrain trial counts both), and the best final
    result so far, e.g. ``experiment running: 1/3 trials done, 1 running (Xy3Zq: epoch 4), best 0.8125``."""
    done = sum(t["status"] in FINISHED for t in trials)
    total = params.get("maxTrialNumber") or len(trials)  # an experiment without a limit: the trials so far
    epochs, best = {}, None
    for metric in metrics:
        if metric["type"] == "PERIODICAL":
            epochs[metric["trialJobId"]] = epochs.get(metric["trialJobId"], 0) + 1
        elif metric["type"] == "FINAL":
            value = metric_value(metric)
            value = value.get("default") if isinstance(value, dict) else value
            if isinstance(value, (int, float)) and not math.isnan(value) and (best is None or value > best):
                best = value
    running = [t["trialJobId"] for t in trials if t["status"] == "RUNNING"]
    line = f"experiment {status.lower()}: {done}/{total} trials done, {len(running)} running"
    if running:
        line += " (" + ", ".join(f"{tid}: epoch {epochs.get(tid, 0)}" for tid in running) + ")"
    waiting = sum(t["status"] in ("WAITING", "UNKNOWN") for t in trials)
    if waiting:
        line += f", {waiting} waiting"
    return line + (f", best {best:.4f}" if best is not None else "")


def progress_printer(stream=None):
    """Where the progress lines go: on a terminal, one line rewritten in place (carriage return); otherwise (a log
    file, a pipe, CI) a plain line each time it changes, so a log shows every step once."""
    stream = stream or sys.stdout
    if stream.isatty():
        width = [0]

        def show(line: str) -> None:
            width[0] = max(width[0], len(line))  # pad over a longer line written before
            print("\r" + line.ljust(width[0]), end="", flush=True, file=stream)
        show.in_place = True
        return show
    last = [None]

    def show(line: str) -> None:
        if line != last[0]:
            print(line, flush=True, file=stream)
            last[0] = line
    show.in_place = False
    return show


def metric_value(metric: dict):
    """A reported metric as the trial sent it: the REST API gives it JSON-encoded, inside a JSON string."""
    data = json.loads(metric["data"])
    return json.loads(data) if isinstance(data, str) else data


def best_trial(client: RestClient) -> tuple[dict, dict] | None:
    """(trial, final metric dict) of the succeeded trial with the highest final ``default``."""
    finals = {}
    for metric in client.metrics():
        if metric["type"] == "FINAL":
            value = metric_value(metric)
            finals[metric["trialJobId"]] = value if isinstance(value, dict) else {"default": value}
    trials = {t["trialJobId"]: t for t in client.trials() if t["status"] == "SUCCEEDED"}
    ranked = sorted((f["default"], tid) for tid, f in finals.items() if tid in trials)
    if not ranked:
        return None
    tid = ranked[-1][1]
    return trials[tid], finals[tid]


def trial_parameters(trial: dict) -> dict:
    """The tuner's parameters of a trial as the REST API lists it."""
    record = trial.get("hyperParameters") or ["{}"]
    return json.loads(record[0]).get("parameters", {})


def trial_location(client: RestClient, trial_id: str) -> tuple[str, str] | None:
    """(host, folder) of the trial's output directory as the manager records it: host '' on this machine; a remote
    machine's trials are under ``~/nni-experiments/<id>/environments/<machine>/trials/`` of its user."""
    path = client.get(f"trial-jobs/{trial_id}").get("logPath")
    if not path:
        return None
    host, remote, folder = path.rpartition(":~/")  # NNI 3.0 writes a remote trial's as "<host>:~/nni-experiments/..."
    return (host, "~/" + folder) if remote else ("", path)


def trial_dir(client: RestClient, experiment_id: str, trial_id: str) -> Path:
    """The trial's output directory (``NNI_OUTPUT_DIR``), on this machine (a remote one on loopback included)."""
    location = trial_location(client, trial_id)
    if location and (not location[0] or location[0] in LOOPBACK):
        return Path(location[1]).expanduser()
    profile = client.profile()
    root = Path(profile.get("logDir") or Path(os.path.expanduser("~/nni-experiments")) / experiment_id)
    # The layout below the experiment folder depends on the training service (local: environments/local-env/).
    return next(root.glob(f"**/trials/{trial_id}"), root / "trials" / trial_id)


def resume(experiment_id: str, port: int, env: dict | None = None, host: str | None = None) -> dict[int, str]:
    """``nnictl resume``: the manager starts again on ``port`` with the experiment's records. NNI 3.0 starts each
    trial that was running (or waiting) when its manager stopped again, with the same id, folder and parameters;
    finished trials are not rerun. The trials continue from their last checkpoint (``nni_snn.cli.main``). The manager
    listens on ``host``; without one, on loopback, which only an experiment of the local machine can do.

    First it ends what a killed manager left running (:func:`leftovers`); returns those processes."""
    record = known_experiment(experiment_id)
    if process_alive(record.get("pid")):
        raise ExperimentError(f"experiment {experiment_id} is running (port {record.get('port')}); nothing to resume "
                              f"(nni-snn experiment --attach {experiment_id} follows it)")
    if host is None and record.get("platform", "local") != "local":
        raise UsageError(f"experiment {experiment_id} runs its trials on {record['platform']} workers: give --host, "
                         "the address they reach this machine at (its config's nniManagerIp)")
    ended = end_leftovers(experiment_id)
    result = subprocess.run([nnictl(), "resume", experiment_id, "--port", str(port)], capture_output=True, text=True,
                            env=manager_env(host or MANAGER_LOOPBACK, env or trial_env()), timeout=300, check=False)
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    if result.returncode != 0 or "ERROR" in output:
        last = [line for line in output.splitlines() if line.strip()][-1:] or ["no output"]
        raise ExperimentError(f"nnictl resume failed: {last[0].strip()}")
    return ended


def leftovers(experiment_id: str) -> dict[int, str]:
    """The processes a killed manager of this experiment left running on this machine, ``{pid: "tuner" | "trial"}``
    (Linux: read from ``/proc``; elsewhere none are found).

    A manager stopped with ``nnictl stop`` ends its tuner (the dispatcher, ``python -m nni``) and its trials; one
    killed (SIGKILL, a crash, the machine's OOM killer) cannot. Its tuner then retries the manager's port every
    second, and once ``nnictl resume`` starts a manager there it connects to it beside the new tuner: NNI 3.0's
    manager fails at once ("Dispatcher stream error, tuner may have crashed"). Its trials would train on beside the
    resumed ones, in the same folders. They are recognised by what NNI puts in their environment: a trial's
    ``NNI_EXP_ID``, the tuner's ``SDK_PROCESS=dispatcher`` and its experiment's ``NNI_LOG_DIRECTORY``."""
    log_dir = os.path.realpath(manager_log(experiment_id).parent)
    found = {}
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            pairs = environ.read_bytes().split(b"\0")
        except OSError:  # ended meanwhile, or another user's
            continue
        env = dict(pair.decode(errors="replace").split("=", 1) for pair in pairs if b"=" in pair)
        pid = int(environ.parent.name)
        if env.get("NNI_EXP_ID") == experiment_id and "NNI_TRIAL_JOB_ID" in env:
            found[pid] = "trial"
        elif env.get("SDK_PROCESS") == "dispatcher" and os.path.realpath(env.get("NNI_LOG_DIRECTORY", "/")) == log_dir:
            found[pid] = "tuner"
    return {pid: kind for pid, kind in found.items() if process_alive(pid)}


def end_leftovers(experiment_id: str, grace: float = 30) -> dict[int, str]:
    """End :func:`leftovers` as NNI's manager ends its own: trials with SIGINT (Lightning stops the fit; the resumed
    trial continues from the last epoch's checkpoint), the tuner with SIGTERM; SIGKILL after ``grace`` seconds.
    Returns what was ended."""
    left = leftovers(experiment_id)
    for pid, kind in left.items():
        os.kill(pid, signal.SIGINT if kind == "trial" else signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(process_alive(pid) for pid in left) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:
        if process_alive(pid):
            os.kill(pid, signal.SIGKILL)
    return left


def read_config(config: Path) -> dict:
    """The nnictl config as a mapping (nnictl itself checks the rest)."""
    return read_mapping(config, f"experiment config {config}", error=ExperimentError,
                        expected="a mapping of nnictl settings", syntax="YAML")


def known_experiment(experiment_id: str) -> dict:
    """nnictl's record of ``experiment_id`` (:func:`manager_record`); an id it does not know is refused."""
    record = manager_record(experiment_id)
    if not record:
        raise ExperimentError(f"no experiment {experiment_id!r} known to nnictl; `nnictl experiment list --all` "
                              "lists them")
    return record


def running_experiment(experiment_id: str) -> dict:
    """nnictl's record of ``experiment_id``, refused unless its manager runs on this machine."""
    record = known_experiment(experiment_id)
    if not process_alive(record.get("pid")):
        raise ExperimentError(f"experiment {experiment_id} is not running (its manager has stopped); "
                              f"nni-snn experiment --resume {experiment_id} starts it again")
    return record


def run(config: str | Path | None, port: int, timeout: float | None, stop_after: bool, resume_id: str | None = None,
        host: str | None = None, attach_id: str | None = None) -> int:
    """Start the experiment of ``config`` (or resume ``resume_id``, or attach to the running ``attach_id``), follow
    it and summarise its best trial. Its manager listens on ``host``, else where
    :func:`nni_snn.experiment.manager_host.experiment_host` says (loopback for the local machine)."""
    if attach_id is not None:
        record = running_experiment(attach_id)
        if port is not None and port != record.get("port"):
            raise UsageError(f"experiment {attach_id} listens on port {record.get('port')}, not {port}: leave "
                             "--port out to follow it where it runs")
        port = record.get("port")
        print(f"following experiment {attach_id}; web UI: http://{url_host(MANAGER_LOOPBACK)}:{port}", flush=True)
        return follow(attach_id, port, timeout, stop_after, None)
    port = 8080 if port is None else port
    if config is not None:
        config = config_path(config)
    listen = experiment_host(read_config(config), host) if config is not None else host
    if listen is not None:
        check_host(listen, "--host" if host is not None else "nniManagerIp")
        warn_if_exposed(listen, port)
    ended = resume(resume_id, port, host=listen) if resume_id else {}
    experiment_id = resume_id or create(config, port, host=listen)
    web_ui = f"http://{url_host(listen if listen and listen not in ('0.0.0.0', '::') else MANAGER_LOOPBACK)}:{port}"
    print(f"experiment {experiment_id} {'resumed' if resume_id else 'started'}; web UI: {web_ui}", flush=True)
    if ended:
        print(f"ended {len(ended)} process{'es' * (len(ended) > 1)} its killed manager had left running "
              f"({', '.join(sorted(set(ended.values())))})")
    return follow(experiment_id, port, timeout, stop_after, listen, web_ui)


def follow(experiment_id: str, port: int, timeout: float | None, stop_after: bool, listen: str | None,
           web_ui: str | None = None) -> int:
    """Follow the running experiment on ``port`` with a progress line until it ends, then summarise its best trial
    (and stop it where ``stop_after``)."""
    client = RestClient(port)  # on loopback: the manager is reachable there wherever else it listens
    web_ui = web_ui or f"http://{url_host(MANAGER_LOOPBACK)}:{port}"
    try:
        show = progress_printer()
        try:
            wait(client, timeout, progress=show, experiment_id=experiment_id)
        except KeyboardInterrupt:
            if not stop_after:  # the manager runs on without this command
                print(f"\nthe experiment goes on; nni-snn experiment --attach {experiment_id} follows it again",
                      file=sys.stderr, flush=True)
            raise
        finally:
            if show.in_place:
                print()
        found = best_trial(client)
        if found is None:
            raise ExperimentError("no trial succeeded; see the trials' logs in the web UI")
        trial, final = found
        print(f"best trial: {trial['trialJobId']} {json.dumps(trial_parameters(trial))}")
        print(f"accuracy: {final['default']:.4f}   spikes/sample: {final.get('spikes_per_sample', float('nan')):.1f}"
              f"   energy/sample: {final.get('energy_uj_per_sample', float('nan')):.4g} uJ")
        location = trial_location(client, trial["trialJobId"])
        if location and location[0] and location[0] not in LOOPBACK:  # on another machine: say where
            print(f"architecture: {location[0]}:{RunFolder(location[1]).arch} (on that machine)")
        else:
            arch_path = RunFolder(trial_dir(client, experiment_id, trial["trialJobId"])).arch
            print(f"architecture: {arch_path if arch_path.exists() else '(none written)'}")
    finally:
        if stop_after:
            stop(experiment_id)
            print(f"experiment {experiment_id} stopped")
    if not stop_after:
        print(f"web UI: {web_ui}   stop the experiment with: nnictl stop {experiment_id}   "
              f"resume it after a stop with: nni-snn experiment --resume {experiment_id} --port {port}"
              f"{f' --host {listen}' if listen and listen != MANAGER_LOOPBACK else ''}")
    return 0
