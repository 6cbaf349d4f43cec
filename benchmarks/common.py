"""Helpers the benchmark scripts share: quiet logging, ``nni-snn`` run in this process, the hypervolume of an
accuracy-energy front, the macro-architectures as command-line flags, uniform genotypes of the space.

Every script runs from the repository root as a module of this package (``python -m benchmarks.NAME``), so that
these imports need no ``sys.path`` edit.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository
RESULTS = ROOT / "benchmarks" / "results"  # the committed studies, data the docs' tables are generated from

# The macro-architectures the studies compare, as flags of search and retrain (:func:`flags_of`) and as arch.json keys.
MACROS = {
    "darts": {"stem_multiplier": 3, "stem_stride": 1, "head": "global"},
    # Set by the scouting runs in docs/energy.md: stride 2 cut the energy 5x for -1 point, the stem at 3 x width
    # scored +1 point over 1 x width for +6 % energy; MA attention at the last cell only, as the paper retrains (4.2),
    # since in every cell its gates' MACs were a third of the budget at this size.
    "efficient": {"stem_multiplier": 3, "stem_stride": 2, "head": "spatial", "attention_cells": "last"},
}

# Loggers whose warnings and banners would interleave with a benchmark's progress lines.
QUIET_LOGGERS = ("nni", "pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric",
                 "pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero",
                 "pytorch_lightning.callbacks.model_summary")


def quiet() -> None:
    """Lightning's and NNI's warnings and banners stay out of the progress lines. NNI and Lightning are imported
    here, before any run's output is redirected to its log, so that their log handlers hold the real stderr, not a
    closed log file."""
    import nni_snn.cli.main  # noqa: F401  (NNI, Lightning and their loggers)

    warnings.filterwarnings("ignore")
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def run_cli(args: list[str], log: Path) -> float:
    """Run ``nni-snn ARGS`` in this process (what the command line runs, without a new interpreter's start-up of
    ~10 s per run), its output into ``log``; the seconds it took."""
    from nni_snn.cli.main import main as nni_snn

    start = time.perf_counter()
    with open(log, "a") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        code = nni_snn(args)
    if code:
        raise RuntimeError(f"nni-snn {args[0]} failed (exit {code}); see {log}")
    return time.perf_counter() - start


def write_json_atomic(path: Path, data) -> None:
    """``data`` as JSON at ``path``, written whole or not at all: the benchmarks' one import of the library's
    writer."""
    from nni_snn.files.runfolder import write_json_atomic as write

    write(path, data)


def flags_of(macro: dict) -> list[str]:
    """A macro-architecture (a value of :data:`MACROS`) as ``nni-snn search`` and ``retrain`` flags."""
    return [f for key, value in macro.items() for f in (f"--{key.replace('_', '-')}", str(value))]


def hypervolume(points: list[tuple[float, float]], reference: tuple[float, float]) -> float:
    """Area dominated by ``points`` (accuracy, uJ) in (accuracy, log10 uJ), above and left of ``reference``."""
    acc_ref, log_ref = reference[0], math.log10(reference[1])
    inside = sorted(((a, math.log10(e)) for a, e in points if a > acc_ref and math.log10(e) < log_ref),
                    key=lambda p: p[1])  # cheapest first
    area, best = 0.0, acc_ref
    for i, (acc, log_e) in enumerate(inside):
        best = max(best, acc)  # from this energy up to the next point's, the front reaches the best accuracy so far
        upper = inside[i + 1][1] if i + 1 < len(inside) else log_ref
        area += (best - acc_ref) * (upper - log_e)
    return area


def uniform_genotype(rng: random.Random, nodes: int | None = None) -> dict:
    """A genotype drawn uniformly from the space (cells of ``nodes`` nodes, default DARTS's 4): each node's two
    distinct inputs, then each edge's operation."""
    from nni_snn.files.genotype import CELL_TYPES, NUM_NODES, PRIMITIVES

    genotype = {}
    for cell_type in CELL_TYPES:
        pairs = []
        for k in range(nodes or NUM_NODES):
            for i in sorted(rng.sample(range(k + 2), 2)):
                pairs.append([rng.choice(PRIMITIVES), i])
        genotype[cell_type] = pairs
    return genotype
