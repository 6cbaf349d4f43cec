"""Architecture files (``arch.json``): what a search hands to retraining.

Format (version 2)::

    {"format": "nni-snn/arch", "version": 2, "attention": "none" | "ct" | "ma", "attention_cells": "all" | "last",
     "timesteps": 2,
     "genotype": {"normal": [[op, input], ... 8 pairs], "reduce": [... 8 pairs]},
     "neuron": {"kind": "lif", "tau": 0.2, "v_threshold": 0.5, "surrogate": "sigmoid", "alpha": 4.0,
                "detach_reset": true}, "normalize": true,
     "alpha": {label: {op: weight}}, "nni_sample": {label: choice}, "search": {...}, "results": {...}}

Pairs 2k and 2k+1 feed intermediate node k; input 0 is c_{k-2}, 1 is c_{k-1}, j >= 2 is node j - 2. Only the
keys up to ``genotype`` are needed to rebuild a network. ``attention_cells`` (every cell's concatenation, or only the
final cell's), ``neuron`` (a :func:`nni_snn.neuron.make_neuron` spec) and ``normalize`` (see ``SNNDartsSpace``) are
optional: a file without them gets the defaults ("all", LIF with today's defaults, true). Version 1 files (written
before version 2 added those three keys) are read the same way. The rest records the search.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

FORMAT = "nni-snn/arch"
VERSION = 2
READABLE_VERSIONS = (1, 2)
NUM_NODES = 4
CELL_TYPES = ("normal", "reduce")
ATTENTION_CELLS = ("all", "last")  # where the attention sits: every cell's concatenation, or the final cell's


# A convolution-heavy genotype (no pooling, no skip): the hardest of the space to train, as every path through a cell
# crosses several spiking layers. Tests and benchmarks train it to check that the networks this project builds learn.
CONV_HEAVY = {
    "normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["sep_conv_5x5", 0], ["dil_conv_3x3", 1],
               ["sep_conv_3x3", 1], ["dil_conv_5x5", 2], ["sep_conv_3x3", 0], ["dil_conv_3x3", 3]],
    "reduce": [["sep_conv_5x5", 0], ["dil_conv_5x5", 1], ["sep_conv_3x3", 1], ["dil_conv_3x3", 2],
               ["sep_conv_3x3", 0], ["sep_conv_5x5", 3], ["dil_conv_3x3", 2], ["sep_conv_3x3", 4]],
}


class ArchError(ValueError):
    """An architecture file that cannot be used; the message names the problem."""


def genotype_from_sample(sample: dict[str, Any]) -> dict[str, list[list]]:
    """Turn an NNI sample of ``SNNDartsSpace`` into the DARTS-style genotype."""
    genotype = {}
    for cell_type in CELL_TYPES:
        pairs = []
        for k in range(NUM_NODES):
            for i in sorted(sample[f"{cell_type}/input_{k}"]):
                pairs.append([sample[f"{cell_type}/op_{k}_{i}"], int(i)])
        genotype[cell_type] = pairs
    return genotype


def sample_from_genotype(genotype: dict[str, list[list]]) -> dict[str, Any]:
    """The NNI sample that freezes ``SNNDartsSpace`` to ``genotype`` (chosen edges only)."""
    sample: dict[str, Any] = {}
    for cell_type in CELL_TYPES:
        pairs = genotype[cell_type]
        for k in range(NUM_NODES):
            (op_a, in_a), (op_b, in_b) = pairs[2 * k], pairs[2 * k + 1]
            sample[f"{cell_type}/input_{k}"] = sorted([in_a, in_b])
            sample[f"{cell_type}/op_{k}_{in_a}"] = op_a
            sample[f"{cell_type}/op_{k}_{in_b}"] = op_b
    return sample


def validate(arch: Any, source: str = "architecture") -> dict:
    """Check ``arch`` against the schema; raise :class:`ArchError` naming the first problem."""
    from nni_snn.attention import ATTENTIONS
    from nni_snn.ops import PRIMITIVES

    def fail(problem: str):
        raise ArchError(f"{source}: {problem}")

    if not isinstance(arch, dict):
        fail("not a JSON object")
    if arch.get("format") != FORMAT:
        fail(f"format is {arch.get('format')!r}, expected {FORMAT!r} (is this an nni-snn arch.json?)")
    if arch.get("version") not in READABLE_VERSIONS or isinstance(arch.get("version"), bool):
        fail(f"version {arch.get('version')!r} is not supported (this nni-snn reads versions "
             f"{', '.join(map(str, READABLE_VERSIONS))})")
    if arch.get("attention") not in ATTENTIONS:
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
    if "neuron" in arch:
        problem = neuron_problem(arch["neuron"])
        if problem:
            fail(f"neuron: {problem}")
    for cell_type in CELL_TYPES:
        pairs = genotype.get(cell_type)
        if not isinstance(pairs, list) or len(pairs) != 2 * NUM_NODES:
            fail(f"genotype.{cell_type} must hold exactly {2 * NUM_NODES} [op, input] pairs")
        for n, pair in enumerate(pairs):
            k = n // 2
            if not (isinstance(pair, list) and len(pair) == 2):
                fail(f"genotype.{cell_type}[{n}] must be an [op, input] pair, got {pair!r}")
            op, inp = pair
            if op not in PRIMITIVES:
                fail(f"genotype.{cell_type}[{n}]: unknown operation {op!r}; use one of {', '.join(PRIMITIVES)}")
            if not isinstance(inp, int) or isinstance(inp, bool) or not 0 <= inp < k + 2:
                fail(f"genotype.{cell_type}[{n}]: input {inp!r} out of range for node {k} (0..{k + 1})")
        for k in range(NUM_NODES):
            if pairs[2 * k][1] == pairs[2 * k + 1][1]:
                fail(f"genotype.{cell_type}: node {k} takes input {pairs[2 * k][1]} twice; its two inputs "
                     "must differ")
    return arch


def neuron_problem(spec: Any) -> str | None:
    """What is wrong with a neuron spec (``None`` if nothing): it must build with :func:`make_neuron`."""
    from nni_snn.neuron import make_neuron

    if not isinstance(spec, dict):
        return f"expected an object such as {{\"kind\": \"lif\"}}, got {spec!r}"
    try:
        make_neuron(spec)
    except (TypeError, ValueError) as err:
        return str(err)
    return None


def load_arch(arch: str | Path | dict) -> dict:
    """Read and validate an architecture from a path or a dict. Plain JSON only: nothing is evaluated."""
    if isinstance(arch, dict):
        return validate(arch)
    path = Path(arch)
    try:
        text = path.read_text()
    except OSError as err:
        raise ArchError(f"{path}: cannot read ({err.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ArchError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    return validate(data, str(path))


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON next to ``path`` and rename it over: readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make results unreadable to others
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_network(arch: str | Path | dict, *, width: int, num_cells: int, num_classes: int, in_channels: int = 3,
                  auxiliary: bool = False, timesteps: int | None = None, neuron: dict | None = None,
                  normalize: bool | None = None, attention_cells: str | None = None):
    """A plain ``nn.Module`` for ``arch`` at any width and depth: images ``[N, C, H, W]`` -> logits.

    ``timesteps``, ``neuron``, ``normalize`` and ``attention_cells`` default to the file's. The network has no NNI mutables left and only
    the chosen edges' weights.
    """
    from nni.nas.space import model_context

    from search_spaces import SNNDartsSpace

    arch = load_arch(arch)
    with model_context(sample_from_genotype(arch["genotype"])):
        return SNNDartsSpace(width=width, num_cells=num_cells, timesteps=timesteps or arch["timesteps"],
                             attention=arch["attention"], num_classes=num_classes, in_channels=in_channels,
                             auxiliary=auxiliary, neuron=neuron or arch.get("neuron"),
                             normalize=arch.get("normalize", True) if normalize is None else normalize,
                             attention_cells=attention_cells or arch.get("attention_cells", "all"))


def format_genotype(arch: dict) -> str:
    """The genotype as readable lines: one line per node and cell type."""
    names = ["c_{k-2}", "c_{k-1}"] + [f"node {j}" for j in range(NUM_NODES)]
    where = {"all": "in every cell", "last": "in the final cell only"}[arch.get("attention_cells", "all")]
    lines = [f"attention: {arch['attention']} ({where})   timesteps: {arch['timesteps']}"]
    for cell_type in CELL_TYPES:
        lines.append(f"{cell_type} cell:")
        pairs = arch["genotype"][cell_type]
        for k in range(NUM_NODES):
            edges = "  +  ".join(f"{op}({names[i]})" for op, i in pairs[2 * k:2 * k + 2])
            lines.append(f"  node {k} = {edges}")
        lines.append(f"  output = spikes of {arch['attention']}_attention(concat(node 0..{NUM_NODES - 1}))")
    return "\n".join(lines)
