"""Running as an NNI trial: the tuner's parameters in, per-epoch and final results out.

NNI's in-process NAS engine (which runs the one-shot search) swaps NNI's trial channel for its own while a model
trains, so results reported during a search would never reach the NNI manager. :class:`Trial` keeps the channel
and parameter record this process got from the manager and reports through them.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import nni
import nni.trial
from nni.runtime.trial_command_channel import (
    get_default_trial_command_channel,
    set_default_trial_command_channel,
)


def output_dir() -> Path | None:
    """The trial's output directory when this process runs as an NNI trial, else ``None``."""
    path = os.environ.get("NNI_OUTPUT_DIR")
    return Path(path) if path and os.environ.get("NNI_PLATFORM") else None


class Trial:
    """This process's NNI trial; create it once, before anything else asks NNI for parameters."""

    def __init__(self):
        self.parameters: dict = nni.get_next_parameter() or {}
        self._record = nni.trial._params  # NNI keeps the parameter record module-global; no public getter
        self._channel = get_default_trial_command_channel()

    @contextmanager
    def _as_this_trial(self):
        previous_channel, previous_record = get_default_trial_command_channel(), nni.trial._params
        set_default_trial_command_channel(self._channel)
        nni.trial._params = self._record
        try:
            yield
        finally:
            set_default_trial_command_channel(previous_channel)
            nni.trial._params = previous_record

    def intermediate(self, metric: dict) -> None:
        with self._as_this_trial():
            nni.report_intermediate_result(metric)

    def final(self, metric: dict) -> None:
        with self._as_this_trial():
            nni.report_final_result(metric)
