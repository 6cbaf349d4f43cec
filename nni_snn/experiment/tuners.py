"""Tuners for the experiments in ``experiments/``: NNI's own, where NNI 3.0 needs a mend.

A module of its own so that NNI's dispatcher imports only this (``tuner: {className: nni_snn.experiment.tuners.TPE}``).
"""

from __future__ import annotations

from nni_snn.nni_compat import TpeTuner


class TPE(TpeTuner):
    """NNI's TPE tuner, tolerant of a trial whose end reaches the tuner before its final result.

    NNI 3.0's TPE forgets a trial's parameters when the trial ends and looks them up again for its final result; a
    trial that reports its result as it exits (as every search here does) races the two, and when the end wins the
    tuner raises KeyError and NNI's dispatcher stops: the experiment then waits forever (seen with
    experiments/neuron_search.yml). The parameters are still in the tuner's full record, so take them from there.
    """

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        if parameter_id in self._params:
            self._running_params.setdefault(parameter_id, self._params[parameter_id])
        super().receive_trial_result(parameter_id, parameters, value, **kwargs)
