"""nni-snn: MA-DARTS architecture search for spiking neural networks on Microsoft NNI 3.0."""

__version__ = "0.1.0"
__all__ = ["__version__", "build_network", "load_arch"]

# Imported on first use: importing the package (e.g. ``nni_snn.neuron``) must not import NNI's model space
# (``build_network`` builds ``search_spaces.SNNDartsSpace``), nor torch for ``nni-snn --help``.
_LAZY = {"build_network": "nni_snn.networks", "load_arch": "nni_snn.archfile"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
