"""nni-snn: MA-DARTS architecture search for spiking neural networks on Microsoft NNI 3.0."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nni-snn")
except PackageNotFoundError:  # a source tree on PYTHONPATH, never installed
    __version__ = "unknown"

__all__ = ["SNNClassifier", "__version__", "arch_from_sample", "build_network", "load_arch", "load_dataset",
           "split_for_search"]

# Imported on first use: importing the package (e.g. ``nni_snn.snn.neuron``) must not import NNI's model space
# (``build_network`` builds ``search_spaces.SNNDartsSpace``), nor torch for ``nni-snn --help``. These are what a
# Python user of NNI needs next to ``SNNDartsSpace`` and ``MADarts`` (docs/tutorials/nas_experiment.py): the data, the
# Lightning module of NNI's ``Lightning`` evaluator, and the way from an exported sample to a network.
_LAZY = {"build_network": "nni_snn.networks", "load_arch": "nni_snn.files.archfile", "arch_from_sample": "nni_snn.files.archfile",
         "SNNClassifier": "nni_snn.train.lightning", "load_dataset": "nni_snn.data.images", "split_for_search": "nni_snn.data.images"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
