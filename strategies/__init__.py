"""NNI search strategies of nni-snn."""

from strategies.madarts import MADarts

__all__ = ["MADarts"]
