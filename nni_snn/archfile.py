"""Architecture files (``arch.json``): what a search hands to retraining.

Format (version 1, the format of nni-snn 0.1.0)::

    {"format": "nni-snn/arch", "version": 1, "attention": "none" | "ct" | "ma", "attention_cells": "all" | "last",
     "timesteps": 2, "cell_nodes": 4,
     "genotype": {"normal": [[op, input], ... 2 x cell_nodes pairs], "reduce": [... 2 x cell_nodes pairs] | null},
     "neuron": {"kind": "lif", "tau": 0.2, "v_threshold": 0.5, "surrogate": "sigmoid", "surrogate_alpha": 4.0,
                "detach_reset": true}, "normalize": true, "cell_norm": "after-attention" | "before-attention",
     "stem_multiplier": 3, "stem_stride": 1 | 2, "head": "global" | "spatial",
     "alpha": {label: {op: weight}}, "nni_sample": {label: choice}, "search": {...}, "results": {...}}

The genotype is described in :mod:`nni_snn.genotype`: a cell type is ``null`` when the searched network had no cell
of it (a search of 1 or 2 cells has no reduction cell), and such a file builds only the depths without one
(``nni_snn.genotype.depth_problem``); ``cell_nodes`` records the intermediate nodes per cell, two pairs each (a file
written by hand may leave it to the genotype's length). :func:`make_arch` assembles an architecture. The keys up to
``head`` say which network it is (``nni_snn.build_network``); the rest records the search. ``attention_cells``
(every cell's concatenation, or only the final cell's), ``neuron`` (a :func:`nni_snn.neuron.make_neuron` spec),
``normalize`` (see ``SNNDartsSpace``), ``cell_norm`` (where each cell's BN sits relative to its attention) and the
macro-architecture (``stem_multiplier``, ``stem_stride``, ``head``: the stem's width and stride, the classifier;
``SNNDartsSpace``) are written in full, the neuron with every one of its options (:func:`nni_snn.neuron.resolved_spec`),
so that a changed default never changes what a file means. Time steps stay a key of their own: the neuron takes T
from its input. :func:`load_arch` spells out what a file written by hand leaves out: :data:`DEFAULTS` and the
neuron's own defaults.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nni_snn.errors import ArchError
from nni_snn.genotype import (
    ATTENTION_CELLS,
    CELL_NODES,
    CELL_NORMS,
    CELL_TYPES,
    HEADS,
    NUM_NODES,
    PRIMITIVES,
    STEM_STRIDES,
    genotype_from_sample,
    nodes_of,
)
from nni_snn.neuron import make_neuron, resolved_spec
from nni_snn.registry import ATTENTIONS
from nni_snn.userfiles import read_user_file

FORMAT = "nni-snn/arch"
VERSION = 1  # nni-snn 0.1.0's format; a file of another version is refused
# What a network setting means where a file (written by hand) leaves it out: DARTS's macro-architecture, attention at
# every cell, BN after it.
DEFAULTS = {"attention_cells": "all", "normalize": True, "cell_norm": "after-attention",
            "stem_multiplier": 3, "stem_stride": 1, "head": "global"}


def make_arch(*, attention: str, timesteps: int, genotype: dict, attention_cells: str = "all",
              neuron: dict | None = None, normalize: bool = True, cell_norm: str = "after-attention",
              stem_multiplier: int = 3, stem_stride: int = 1, head: str = "global", **extra: Any) -> dict:
    """An architecture in this format, keys in the file's order, the neuron in full (``None``: the default LIF's
    spec), then ``extra`` (e.g. ``alpha``, ``nni_sample``, ``search``, ``results``). Every writer of arch.json and
    every caller of ``build_network`` that has only a genotype uses this, so the format is assembled in one place."""
    arch = {"format": FORMAT, "version": VERSION, "attention": attention, "attention_cells": attention_cells,
            "timesteps": timesteps, "cell_nodes": nodes_of(genotype), "genotype": genotype,
            "neuron": resolved_spec(neuron), "normalize": normalize,
            "cell_norm": cell_norm, "stem_multiplier": stem_multiplier, "stem_stride": stem_stride, "head": head}
    arch.update(extra)
    return arch


def arch_from_sample(sample: dict, space: Any, **extra: Any) -> dict:
    """The architecture of ``sample``, an NNI sample of ``space`` (a ``search_spaces.SNNDartsSpace``, searched or
    frozen), with the space's network settings: what ``NasExperiment.export_top_models(formatter="dict")`` or a
    strategy's ``export()`` returns becomes an arch.json for :func:`~nni_snn.networks.build_network` and ``nni-snn
    retrain``. ``extra`` as in :func:`make_arch`."""
    return make_arch(attention=space.attention, attention_cells=space.attention_cells, timesteps=space.timesteps,
                     genotype=genotype_from_sample(sample), neuron=space.neuron, normalize=space.normalize,
                     cell_norm=space.cell_norm, stem_multiplier=space.stem_multiplier, stem_stride=space.stem_stride,
                     head=space.head, space=space.space, nni_sample=dict(sample), **extra)


def spelt_out(arch: dict) -> dict:
    """A copy of a validated ``arch`` with every setting of its network present: what it leaves out at
    :data:`DEFAULTS` and its neuron's defaults."""
    arch = {**DEFAULTS, **arch}
    arch["neuron"] = resolved_spec(arch.get("neuron"))
    arch["cell_nodes"] = nodes_of(arch["genotype"])
    return arch


def validate(arch: Any, source: str = "architecture") -> dict:
    """Check ``arch`` against the schema; raise :class:`ArchError` naming the first problem."""

    def fail(problem: str):
        raise ArchError(f"{source}: {problem}")

    if not isinstance(arch, dict):
        fail("not a JSON object")
    if arch.get("format") != FORMAT:
        fail(f"format is {arch.get('format')!r}, expected {FORMAT!r} (is this an nni-snn arch.json?)")
    if arch.get("version") != VERSION or isinstance(arch.get("version"), bool):
        fail(f"version {arch.get('version')!r} is not supported (this nni-snn reads version {VERSION}, "
             "the format of nni-snn 0.1.0)")
    if not isinstance(arch.get("attention"), str) or arch["attention"] not in ATTENTIONS:  # a registry: hashes
        fail(f"attention {arch.get('attention')!r} is unknown; use one of {', '.join(ATTENTIONS)}")
    if arch.get("attention_cells", "all") not in ATTENTION_CELLS:
        fail(f"attention_cells {arch['attention_cells']!r} is unknown; use one of {', '.join(ATTENTION_CELLS)}")
    timesteps = arch.get("timesteps")
    if not isinstance(timesteps, int) or isinstance(timesteps, bool) or timesteps < 1:
        fail(f"timesteps must be an integer >= 1, got {timesteps!r}")
    genotype = arch.get("genotype")
    if not isinstance(genotype, dict):
        fail("missing 'genotype' object")
    if "normalize" in arch and not isinstance(arch["normalize"], bool):
        fail(f"normalize must be true or false, got {arch['normalize']!r}")
    if arch.get("cell_norm", CELL_NORMS[0]) not in CELL_NORMS:
        fail(f"cell_norm {arch['cell_norm']!r} is unknown; use one of {', '.join(CELL_NORMS)}")
    multiplier = arch.get("stem_multiplier", 3)
    if not isinstance(multiplier, int) or isinstance(multiplier, bool) or multiplier < 1:
        fail(f"stem_multiplier must be an integer >= 1, got {multiplier!r}")
    if arch.get("stem_stride", 1) not in STEM_STRIDES or isinstance(arch.get("stem_stride"), bool):
        fail(f"stem_stride {arch['stem_stride']!r} is unknown; use one of {', '.join(map(str, STEM_STRIDES))}")
    if arch.get("head", HEADS[0]) not in HEADS:
        fail(f"head {arch['head']!r} is unknown; use one of {', '.join(HEADS)}")
    if "neuron" in arch:
        problem = neuron_problem(arch["neuron"])
        if problem:
            fail(f"neuron: {problem}")
    for key in ("search", "results", "alpha", "nni_sample"):  # the search's records: objects where present
        if key in arch and not isinstance(arch[key], dict):
            fail(f"{key} must be an object, got {type(arch[key]).__name__}")
    if all(genotype.get(cell_type) is None for cell_type in CELL_TYPES):
        fail(f"genotype holds no cell; it needs {' and '.join(CELL_TYPES)} (null for one the search did not have)")
    # A file written by hand may leave the node count to its genotype: the longest cell's pairs, 2 per node.
    lengths = [len(pairs) for pairs in genotype.values() if isinstance(pairs, list)]
    nodes = arch.get("cell_nodes", (max(lengths) + 1) // 2 if lengths else NUM_NODES)
    if nodes not in CELL_NODES or isinstance(nodes, bool):
        fail(f"cell_nodes {nodes!r} is unknown; use one of {', '.join(map(str, CELL_NODES))}")
    for cell_type in CELL_TYPES:
        pairs = genotype.get(cell_type, [])  # absent is a mistake; null is a cell type the search did not have
        if pairs is None:
            continue
        if not isinstance(pairs, list) or len(pairs) != 2 * nodes:
            fail(f"genotype.{cell_type} must hold exactly {2 * nodes} [op, input] pairs (2 per node, "
                 f"cell_nodes {nodes})")
        for n, pair in enumerate(pairs):
            k = n // 2
            if not (isinstance(pair, list) and len(pair) == 2):
                fail(f"genotype.{cell_type}[{n}] must be an [op, input] pair, got {pair!r}")
            op, inp = pair
            if op not in PRIMITIVES:
                fail(f"genotype.{cell_type}[{n}]: unknown operation {op!r}; use one of {', '.join(PRIMITIVES)}")
            if not isinstance(inp, int) or isinstance(inp, bool) or not 0 <= inp < k + 2:
                fail(f"genotype.{cell_type}[{n}]: input {inp!r} out of range for node {k} (0..{k + 1})")
        for k in range(nodes):
            if pairs[2 * k][1] == pairs[2 * k + 1][1]:
                fail(f"genotype.{cell_type}: node {k} takes input {pairs[2 * k][1]} twice; its two inputs "
                     "must differ")
    return arch


def neuron_problem(spec: Any) -> str | None:
    """What is wrong with a neuron spec (``None`` if nothing): it must build with :func:`make_neuron`."""
    if not isinstance(spec, dict):
        return f"expected an object such as {{\"kind\": \"lif\"}}, got {spec!r}"
    try:
        make_neuron(spec)
    except (TypeError, ValueError) as err:
        return str(err)
    return None


# The model zoo: searched architectures shipped with the package (benchmarks/zoo.py writes them from the committed
# runs behind the docs' tables), named ``zoo:NAME`` wherever an arch.json path is accepted.
ZOO = Path(__file__).with_name("zoo")
ZOO_PREFIX = "zoo:"


def zoo_names() -> list[str]:
    """The names of the architectures in the model zoo, each loadable as ``"zoo:NAME"`` (docs/zoo.md)."""
    return sorted(p.stem for p in ZOO.glob("*.json"))


def zoo_path(name: str) -> Path:
    """The file of zoo entry ``name``; an unknown name is an :class:`ArchError` listing the known ones."""
    if name not in zoo_names():
        raise ArchError(f"{ZOO_PREFIX}{name}: no such architecture in the zoo; known: "
                        + ", ".join(ZOO_PREFIX + n for n in zoo_names()))
    return ZOO / f"{name}.json"


def load_arch(arch: str | Path | dict) -> dict:
    """Read and validate an architecture from a path, a zoo name (``"zoo:NAME"``, :func:`zoo_names`) or a dict,
    every network setting spelt out (:func:`spelt_out`; a dict is copied, not changed). Plain JSON only: nothing is
    evaluated."""
    if isinstance(arch, dict):
        return spelt_out(validate(arch))
    if isinstance(arch, str) and arch.startswith(ZOO_PREFIX):
        arch = zoo_path(arch[len(ZOO_PREFIX):])
    path = Path(arch)
    try:
        raw = read_user_file(path, limit=16 << 20)  # an arch.json holds a few kB
    except OSError as err:
        raise ArchError(f"{path}: cannot read ({err.strerror})") from None
    try:
        data = json.loads(raw)  # UTF-8 (or UTF-16/32, as JSON allows)
    except json.JSONDecodeError as err:
        raise ArchError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    except UnicodeDecodeError:
        raise ArchError(f"{path}: not valid JSON (not UTF-8 text)") from None
    except RecursionError:
        raise ArchError(f"{path}: not an architecture (nested too deeply)") from None
    return spelt_out(validate(data, str(path)))


def event_framing(arch: dict | None, dataset: str, frames_by: str | None = None,
                  event_size: int | None = None) -> dict:
    """``frames_by`` and ``event_size`` for event data: those given, else the search's (``arch``'s search block, when
    it searched ``dataset``: frames at 48x48 stay 48x48), else time bins at the sensor's size."""
    search = (arch or {}).get("search") or {}
    search = search if search.get("dataset") == dataset else {}
    return {"frames_by": frames_by or search.get("frames_by") or "time",
            "event_size": event_size or search.get("event_size")}

