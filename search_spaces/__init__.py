"""NNI model spaces of nni-snn."""

from search_spaces.snn_darts import SNNDartsSpace

__all__ = ["SNNDartsSpace"]
