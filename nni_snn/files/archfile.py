"""Architecture files (``arch.json``): what a search hands to retraining.

Format (version 1, the format of nni-snn 0.1.0)::

    {"format": "nni-snn/arch", "version": 1,
     <the network settings: attention, attention_cells, timesteps, cell_nodes, neuron, normalize, cell_norm,
      stem_multiplier, stem_stride, head, space; nni_snn.files.spec.NetworkSpec>,
     "genotype": {"normal": [[op, input], ... 2 x cell_nodes pairs], "reduce": [... 2 x cell_nodes pairs] | null},
     "alpha": {label: {op: weight}}, "nni_sample": {label: choice}, "search": {...}, "results": {...}}

An architecture is a genotype plus a network spec: the settings say which network it is
(``nni_snn.build_network``), the keys after the genotype record the search. The genotype is described in
:mod:`nni_snn.files.genotype`: a cell type is ``null`` when the searched network had no cell of it (a search of 1 or 2
cells has no reduction cell), and such a file builds only the depths without one
(``nni_snn.files.genotype.depth_problem``); ``cell_nodes`` is the intermediate nodes per cell, two pairs each (a file written
by hand may leave it to the genotype's length). :func:`make_arch` assembles an architecture, every setting written in
full, the neuron with every one of its options (:func:`nni_snn.snn.neuron.resolved_spec`), so that a changed default never
changes what a file means. Time steps stay a setting of the file: the neuron takes T from its input.
:func:`load_arch` spells out what a file written by hand (or by an older nni-snn) leaves out: the spec's defaults and
the neuron's own.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from nni_snn.errors import ArchError
from nni_snn.files.genotype import CELL_TYPES, NUM_NODES, PRIMITIVES, genotype_from_sample, nodes_of
from nni_snn.files.spec import NetworkSpec, setting_names
from nni_snn.files.userfiles import read_user_file
from nni_snn.snn.neuron import resolved_spec

FORMAT = "nni-snn/arch"
VERSION = 1  # nni-snn 0.1.0's format; a file of another version is refused


def make_arch(*, genotype: dict, **given: Any) -> dict:
    """An architecture in this format: ``genotype`` and the network settings of ``given``
    (:class:`~nni_snn.files.spec.NetworkSpec`'s fields, the others at their defaults, the neuron in full), in the file's
    order, then the rest of ``given`` (e.g. ``alpha``, ``nni_sample``, ``search``, ``results``). Every writer of
    arch.json and every caller of ``build_network`` that has only a genotype uses this, so the format is assembled in
    one place."""
    names = setting_names()
    spec = NetworkSpec.of(given)
    return _assemble(genotype, dataclasses.replace(spec, neuron=resolved_spec(spec.neuron)),
                     {k: v for k, v in given.items() if k not in names})


def _assemble(genotype: dict, spec: NetworkSpec, extra: dict) -> dict:
    # The genotype fixes the node count, whatever was given for it.
    spec = dataclasses.replace(spec, cell_nodes=nodes_of(genotype))
    return {"format": FORMAT, "version": VERSION, **spec.settings(), "genotype": genotype, **extra}


def arch_from_sample(sample: dict, space: Any, **extra: Any) -> dict:
    """The architecture of ``sample``, an NNI sample of ``space`` (a ``search_spaces.SNNDartsSpace``, searched or
    frozen), with the space's network settings: what ``NasExperiment.export_top_models(formatter="dict")`` or a
    strategy's ``export()`` returns becomes an arch.json for :func:`~nni_snn.networks.build_network` and ``nni-snn
    retrain``. ``extra`` as in :func:`make_arch`."""
    return make_arch(genotype=genotype_from_sample(sample), **space.spec.settings(), nni_sample=dict(sample), **extra)


def spec_of(arch: dict) -> NetworkSpec:
    """The network settings of a loaded ``arch`` (:func:`load_arch`)."""
    return NetworkSpec.of(arch)


def spelt_out(arch: dict) -> dict:
    """A copy of a validated ``arch`` with every setting of its network present: what it leaves out at the
    spec's defaults and its neuron's defaults."""
    spec = NetworkSpec.of(arch)
    return {**arch, **dataclasses.replace(spec, neuron=resolved_spec(spec.neuron),
                                          cell_nodes=nodes_of(arch["genotype"])).settings()}


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
    genotype = arch.get("genotype")
    if not isinstance(genotype, dict):
        fail("missing 'genotype' object")
    # A file written by hand may leave the node count to its genotype: the longest cell's pairs, 2 per node.
    lengths = [len(pairs) for pairs in genotype.values() if isinstance(pairs, list)]
    nodes = arch.get("cell_nodes", (max(lengths) + 1) // 2 if lengths else NUM_NODES)
    # Which network it is: no default stands in for attention and T.
    given = {"attention": arch.get("attention"), "timesteps": arch.get("timesteps"),
             **{name: arch[name] for name in setting_names() if name in arch}}
    problem = NetworkSpec(**{**given, "cell_nodes": nodes}).problem()  # each value, then the rules between them
    if problem:
        fail(problem)
    for key in ("search", "results", "alpha", "nni_sample"):  # the search's records: objects where present
        if key in arch and not isinstance(arch[key], dict):
            fail(f"{key} must be an object, got {type(arch[key]).__name__}")
    if all(genotype.get(cell_type) is None for cell_type in CELL_TYPES):
        fail(f"genotype holds no cell; it needs {' and '.join(CELL_TYPES)} (null for one the search did not have)")
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


# The model zoo: searched architectures shipped with the package (benchmarks/zoo.py writes them from the committed
# runs behind the docs' tables), named ``zoo:NAME`` wherever an arch.json path is accepted.
ZOO = Path(__file__).resolve().parent.parent / "zoo"
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

