"""nni-snn: MA-DARTS architecture search for spiking neural networks on Microsoft NNI 3.0."""

from nni_snn.archfile import build_network, load_arch

__version__ = "0.1.0"
__all__ = ["__version__", "build_network", "load_arch"]
