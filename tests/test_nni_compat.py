"""nni_snn.nni_compat: every NNI internal it names exists in the NNI installed, and importing it imports no NNI."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nni_snn import nni_compat


@pytest.mark.parametrize("name", sorted(nni_compat.INTERNALS))
def test_every_internal_resolves(name):
    _, reason = nni_compat.INTERNALS[name]
    assert getattr(nni_compat, name) is not None and reason


def test_the_trial_record_round_trips():
    before = nni_compat.trial_record()
    try:
        nni_compat.set_trial_record({"parameter_id": 7, "parameters": {}})
        assert nni_compat.trial_record()["parameter_id"] == 7
    finally:
        nni_compat.set_trial_record(before)


def test_importing_it_imports_no_nni():
    code = "import sys, nni_snn.nni_compat; print('nni' in sys.modules or 'torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
