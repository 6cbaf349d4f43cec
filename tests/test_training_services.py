"""The example configs for NNI's Kubernetes training services (kubeflow, frameworkcontroller): loaded and validated the
way ``nnictl create`` does (``ExperimentConfig.load``, then ``validate``), with the remote example's trial. They are
not run here: no Kubernetes cluster is available. NNI 3.0's config schema also has aml, dlc and openpai, but its
manager refuses aml and dlc ("Bad training service platform: aml") and has no openpai service left, so no example is
shipped for them."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
KUBERNETES = {"kubeflow": "ablation_cifar10_kubeflow.yml", "frameworkcontroller": "ablation_cifar10_frameworkcontroller.yml"}


def _load(path: Path):
    from nni.experiment.config import ExperimentConfig
    from nni.experiment.config.utils import internal

    try:
        config = ExperimentConfig.load(str(path))  # what nnictl create does with --config FILE
    finally:  # NNI 3.0 leaves the file's folder set when a field is unknown, and the next load would then fail
        if internal._current_base_path is not None:
            internal.unset_base_path()
    config.validate()
    return config.canonical_copy()  # the root's trial settings copied into the training service, as NNI sends it


def _trial_arguments(command: str) -> list[str]:
    """The ``nni_snn`` arguments of a trial command, the data folder left out (each platform mounts it elsewhere)."""
    words = shlex.split(command)
    words = words[words.index("nni_snn") + 1:]
    at = words.index("--data-dir")
    return words[:at] + words[at + 2:]


@pytest.mark.parametrize("platform", sorted(KUBERNETES))
def test_a_kubernetes_example_is_valid_for_nnictl_and_runs_the_remote_examples_trial(platform):
    config = _load(ROOT / "experiments" / KUBERNETES[platform])
    service = config.training_service
    assert service.platform == platform and service.reuse_mode is True
    assert Path(service.trial_code_directory) == ROOT  # ".." from experiments/, as NNI resolves it
    remote = yaml.safe_load((ROOT / "experiments" / "ablation_cifar10_remote.yml").read_text())
    assert _trial_arguments(config.trial_command) == _trial_arguments(remote["trialCommand"])
    assert "--data-dir /tmp/mount/" in config.trial_command  # where NNI mounts the NFS export in every pod
    assert (config.trial_gpu_number, config.trial_concurrency) == (1, 3)


@pytest.mark.parametrize(("platform", "edit", "refusal"), [
    ("kubeflow", lambda ts: ts["worker"].update(gpuNumbr=ts["worker"].pop("gpuNumber")), "field(s) gpunumbr"),
    ("kubeflow", lambda ts: ts.update(operator="mxnet-operator"), ""),  # NNI asserts: tf- or pytorch-operator
    ("kubeflow", lambda ts: ts["storage"].update(storageType="s3"), 'storage_type ("s3")'),
    ("frameworkcontroller", lambda ts: ts["taskRoles"][0].pop("frameworkAttemptCompletionPolicy"),
     "framework_attempt_completion_policy is not set"),
    ("frameworkcontroller", lambda ts: ts["taskRoles"][0].update(cpuNumber="eight"), "type of cpu_number"),
])
def test_a_wrong_field_fails_nnis_validation(platform, edit, refusal, tmp_path):
    """The checks above could fail: the same file with one field wrong is refused by NNI's schema."""
    data = yaml.safe_load((ROOT / "experiments" / KUBERNETES[platform]).read_text())
    data["trialCodeDirectory"] = str(ROOT)
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(data))
    _load(path)  # as written, copied elsewhere, it passes
    edit(data["trainingService"])
    path.write_text(yaml.safe_dump(data))
    with pytest.raises((ValueError, AssertionError, AttributeError)) as refused:
        _load(path)
    assert refusal in str(refused.value)
