"""Every use of NNI's internals, in one place, each with the reason it is needed; checked against nni 3.0.

NNI's documented API (``nni.trace``, ``nni.report_*``, ``nni.get_next_parameter``, ``nni.nas.nn.pytorch``,
``nni.nas.strategy``, ``nni.nas.evaluator(.pytorch)``, ``nni.nas.experiment``) is imported where it is used. What
this project needs beyond it, deep or private modules and attributes that NNI may change in any release, is reached
only through this module (tests/test_layers.py keeps it so, tests/test_nni_compat.py resolves every entry): on a new
NNI, this file is the list to check.

Names resolve on first use (a module ``__getattr__``): importing this module imports nothing of NNI, so a lazy import
stays lazy (``nni-snn --help`` imports no torch; nnictl's polling imports only nnictl's record).

Private attributes relied on by subclasses of the classes below (checked against nni 3.0 too):
``DifferentiableMixedLayer._softmax``, ``._arch_alpha`` and ``._reduction`` (``search_spaces.darts_nodes``; and
:func:`mixed_softmax`), ``TpeTuner._params`` and ``._running_params`` (``nni_snn.experiment.tuners``).

Behaviour of NNI's manager relied on: its servers (``nni_node``) listen with no host, which
``nni_snn/manager_listen.cjs`` fills in (``nni_snn.experiment.manager_host``; tests/test_security.py checks the sockets).
"""

from __future__ import annotations

import importlib

CHECKED_AGAINST = "3.0"

# name -> (module, why it is needed); every entry checked against nni 3.0.
INTERNALS: dict[str, tuple[str, str]] = {
    "DartsLightningModule": ("nni.nas.oneshot.pytorch.differentiable",
                             "MADarts's module extends DARTS's Lightning loop (validation, architecture history)"),
    "BaseSuperNetModule": ("nni.nas.oneshot.pytorch.supermodule.base",
                           "DARTS's node input (all edges summed) is a supernet module of NNI's one-shot mutation"),
    "DifferentiableMixedLayer": ("nni.nas.oneshot.pytorch.supermodule.differentiable",
                                 "the mixed edge: fused weighted sum, energy penalty and DARTS-PT read its alpha"),
    "ExpectationProfilerPenalty": ("nni.nas.oneshot.pytorch.profiler",
                                   "the energy penalty plugs in where DARTS takes an expectation penalty"),
    "SequentialExecutionEngine": ("nni.nas.execution",
                                  "runs the one-shot strategy in this process, without NasExperiment's manager"),
    "RawFormatModelSpace": ("nni.nas.space", "hands space and evaluator to a strategy run without NasExperiment"),
    "model_context": ("nni.nas.space", "builds the fixed network of a genotype from the space, no mutables left"),
    "current_model": ("nni.nas.space", "tells the space it is being built fixed (affine BN, no partial channels)"),
    "ChosenInputs": ("nni.nas.nn.pytorch.choice",
                     "what an InputChoice is in a fixed network: a node then builds only its two chosen edges"),
    "label_scope": ("nni.mutable", "labels normal/... and reduce/...: all cells of one type share one alpha"),
    "get_default_trial_command_channel": ("nni.runtime.trial_command_channel",
                                          "the in-process NAS engine swaps the channel; a trial keeps its own"),
    "set_default_trial_command_channel": ("nni.runtime.trial_command_channel",
                                          "to report through the trial's own channel during a search"),
    "Experiments": ("nni.tools.nnictl.config_utils", "nnictl's record of an experiment: manager pid and log folder"),
    "TpeTuner": ("nni.algorithms.hpo.tpe_tuner", "nni_snn.experiment.tuners.TPE mends its race between a trial's end and result"),
    "parse_time": ("nni.experiment.config.utils", "--duration read as NNI reads its own durations"),
}


def __getattr__(name: str):
    if name not in INTERNALS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(INTERNALS[name][0]), name)
    globals()[name] = value  # resolved once
    return value


def trial_record() -> dict | None:
    """The parameter record NNI got for this trial: ``nni.trial._params``, module-global with no public getter (the
    metrics sent carry its id)."""
    import nni.trial

    return nni.trial._params


def set_trial_record(record: dict | None) -> None:
    """Replace ``nni.trial._params`` (no public setter): a trial that got another trial's record reports as its own."""
    import nni.trial

    nni.trial._params = record


def mixed_softmax(layer):
    """A ``DifferentiableMixedLayer``'s softmax over its alpha (``_softmax``, private)."""
    return layer._softmax


def set_mixed_softmax(layer, softmax) -> None:
    """Replace it: DARTS-PT masks candidates out of an edge's mix this way."""
    layer._softmax = softmax
