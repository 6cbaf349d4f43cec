"""Running as an NNI trial: the tuner's parameters in, per-epoch and final results out.

NNI's in-process NAS engine (which runs the one-shot search) swaps NNI's trial channel for its own while a model
trains, so results reported during a search would never reach the NNI manager. :class:`Trial` keeps the channel
and parameter record this process got from the manager and reports through them.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import nni

from nni_snn.nni_compat import (
    get_default_trial_command_channel,
    set_default_trial_command_channel,
    set_trial_record,
    trial_record,
)


def output_dir() -> Path | None:
    """The trial's output directory when this process runs as an NNI trial, else ``None``."""
    path = os.environ.get("NNI_OUTPUT_DIR")
    return Path(path) if path and os.environ.get("NNI_PLATFORM") else None


def assigned_record(received: dict | None, attempts: int = 20) -> dict | None:
    """The parameter record the NNI manager assigned to this trial, which may not be the one it ``received``.

    NNI 3.0's local training service (its v1 layer over the v3 one, ``training_service/v3/compat.js``) queues the
    parameters of every trial it creates and answers each trial's request with the oldest queued: two trials that
    start together and ask in the other order swap parameters. Each then runs the other's, while the manager, the
    tuner and the web UI credit its results to its own. The manager's record of the trial (its REST API, on the
    port of the trial's command channel) says which parameters are this trial's. The remote training service
    shares that layer: there the channel is the machine's trial keeper, whose config names the manager's port.
    """
    address, trial_id = manager_address(), os.environ.get("NNI_TRIAL_JOB_ID")
    if not address or not trial_id:
        return received  # not a v3 trial (standalone, or a legacy training service): nothing to check
    for _ in range(attempts):  # the manager stores the trial's form just after starting it: allow it a moment
        try:
            with urllib.request.urlopen(f"http://{address}/api/v1/nni/trial-jobs/{trial_id}", timeout=5) as reply:
                hyper = json.load(reply).get("hyperParameters")
            if hyper:
                return json.loads(hyper[0])
        except (OSError, ValueError):
            pass
        time.sleep(0.5)
    return received


# The trial's parameter record, handed by its first process to the others of a DDP run (Lightning starts them with
# a copy of its environment).
RECORD_ENV = "NNI_SNN_TRIAL_RECORD"


def manager_address() -> str | None:
    """``host:port`` of the NNI manager's REST API, from this trial's command channel (None outside a v3 trial)."""
    channel = os.environ.get("NNI_TRIAL_COMMAND_CHANNEL", "")
    if not channel.startswith("http://"):
        return None
    if os.environ.get("NNI_PLATFORM") == "remote":
        # NNI 3.0 on a remote machine: .../environments/<machine>/trials/<trial> and .../<machine>/trial_keeper/
        try:
            keeper = Path(os.environ["NNI_OUTPUT_DIR"]).parents[1] / "trial_keeper" / "trial_keeper_config.json"
            channel = json.loads(keeper.read_text())["managerCommandChannel"]  # ws://<manager>:<port>/platform/...
        except (OSError, ValueError, KeyError, IndexError):
            return None
    return urllib.parse.urlsplit(channel).netloc


def reported_before() -> int:
    """How many intermediate results the manager already holds for this trial: more than 0 when ``nnictl resume``
    restarted it (NNI keeps the trial's id, folder and results). 0 when it cannot tell."""
    address, trial_id = manager_address(), os.environ.get("NNI_TRIAL_JOB_ID")
    if not address or not trial_id:
        return 0
    try:
        with urllib.request.urlopen(f"http://{address}/api/v1/nni/metric-data/{trial_id}", timeout=5) as reply:
            return sum(metric.get("type") == "PERIODICAL" for metric in json.load(reply))
    except (OSError, ValueError, AttributeError):
        return 0


def stop_with_parent(interval: float = 1.0) -> None:
    """Interrupt this process (as ``nnictl stop`` does, with SIGINT) once the process that started it has exited.

    A local trial is a child of the NNI manager's process (``bash -c`` execs a trial command that is one simple
    command). A manager killed with SIGKILL cannot stop its trials: they would train on, orphaned, and after
    ``nnictl resume`` — which starts the same trial again, in the same folder — two processes would write one
    folder's checkpoints and report to the resumed manager as one trial. Lightning's SIGINT handling ends the fit
    without writing anything more; the next run continues from the last epoch's checkpoint."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(interval)
        # On stdout, which NNI appends to the trial's trial.log (trial.stderr is emptied when the trial is resumed).
        print("nni-snn: the NNI manager that started this trial has exited; stopping", flush=True)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, name="nni-snn-parent-watch", daemon=True).start()


class Trial:
    """This process's NNI trial; create it once, before anything else asks NNI for parameters.

    In a trial that trains on several devices (``--devices N --strategy ddp``) only the first process asks the manager
    for the parameters and reports: asking again would take the next queued trial's parameters (see
    :func:`assigned_record`). The others read its record from the environment.
    """

    def __init__(self):
        inherited = os.environ.get(RECORD_ENV)
        if inherited is not None:
            self._record = json.loads(inherited)
            self._channel = None  # never reports: only rank 0 does
        else:
            nni.get_next_parameter()
            # NNI keeps the parameter record module-global, with no public setter: the metrics sent carry its id.
            set_trial_record(assigned_record(trial_record()))
            self._record = trial_record()
            self._channel = get_default_trial_command_channel()
            os.environ[RECORD_ENV] = json.dumps(self._record)
            # A resumed trial's results follow those it reported before the stop (the web UI orders them by sequence).
            nni.trial.overwrite_intermediate_seq(reported_before())
            stop_with_parent()  # the other ranks are this process's children: they end with it
        self.parameters: dict = (self._record or {}).get("parameters") or {}

    @contextmanager
    def _as_this_trial(self):
        previous_channel, previous_record = get_default_trial_command_channel(), trial_record()
        set_default_trial_command_channel(self._channel)
        set_trial_record(self._record)
        try:
            yield
        finally:
            set_default_trial_command_channel(previous_channel)
            set_trial_record(previous_record)

    def intermediate(self, metric: dict) -> None:
        with self._as_this_trial():
            nni.report_intermediate_result(metric)

    def final(self, metric: dict) -> None:
        with self._as_this_trial():
            nni.report_final_result(metric)
