"""Genotypes: what a DARTS cell is made of, and how it maps to a sample of ``SNNDartsSpace``.

A genotype is ``{"normal": [[op, input], ... 8 pairs], "reduce": [... 8 pairs]}``: pairs 2k and 2k+1 feed
intermediate node k (8 pairs for DARTS's 4 nodes, 2 per node for a cell of fewer, :data:`CELL_NODES`); input 0 is
c_{k-2}, 1 is c_{k-1}, j >= 2 is node j - 2; ``op`` is one of :data:`PRIMITIVES`.
A cell type the searched network did not have is ``None`` (a search of 1 or 2 cells has no reduction cell, as DARTS
places them at 1/3 and 2/3 of the depth): there was nothing to choose, so nothing is made up for it.

This module is the one home of these concepts: the model space (``search_spaces``), the strategies, the arch file
and the plots all read them from here, so none of them has to import another to agree on the shape of a cell.
"""

from __future__ import annotations

from typing import Any

from nni_snn.files.spec import NetworkSpec
from nni_snn.registry import SPACE_NAMES
from nni_snn.snn.ops import PRIMITIVES  # the operation table's keys (nni_snn.snn.ops.OPS)

__all__ = ["ALL_OPS", "CELL_TYPES", "CONV_HEAVY", "DARTS_V2", "NUM_NODES", "PRIMITIVES", "SPACES", "cell_types_at", "deployable_problem", "depth_problem",
           "format_genotype", "genotype_from_sample", "nodes_of", "reduction_indices", "sample_from_genotype"]

NUM_NODES = 4  # DARTS's intermediate nodes per cell, the default (CELL_NODES: the counts a cell may have)
CELL_TYPES = ("normal", "reduce")
SPACES = dict(zip(SPACE_NAMES, (tuple(PRIMITIVES), tuple(op for op in PRIMITIVES if op != "max_pool_3x3"))))


def reduction_indices(num_cells: int) -> tuple[int, ...]:
    """Cells that halve the resolution and double the width: 1/3 and 2/3 of the depth (DARTS). Below 3 cells there
    is none: at 2 cells DARTS's rule would make both reduction cells, and no normal cell would be searched."""
    return tuple(sorted({num_cells // 3, 2 * num_cells // 3})) if num_cells >= 3 else ()


def cell_types_at(num_cells: int) -> tuple[str, ...]:
    """The cell types a network of ``num_cells`` cells holds (``normal`` alone below 3 cells)."""
    reductions = reduction_indices(num_cells)
    return tuple(t for t, present in zip(CELL_TYPES, (len(reductions) < num_cells, bool(reductions))) if present)


def depth_problem(genotype: dict, num_cells: int, flag: str | None = None) -> str | None:
    """Why a network of ``num_cells`` cells cannot be built from ``genotype`` (a cell type it needs is ``None``: the
    searched network had no such cell), or None. ``flag``: the option that sets the depth, named in the message."""
    missing = [t for t in cell_types_at(num_cells) if genotype.get(t) is None]
    if not missing:
        return None
    fits = " or ".join(str(n) for n in (1, 2) if not any(genotype.get(t) is None for t in cell_types_at(n)))
    depth = f"{flag} {num_cells}" if flag else f"a network of {num_cells} cells"
    instead = (f"give {flag} {fits}" if flag else f"build it with {fits} cells") + ", or " if fits else ""
    return (f"it has no {missing[0]} cell (the network it was searched in had none), which {depth} needs; "
            f"{instead}search with --cells 3 or more")


def deployable_problem(arch: dict) -> str | None:
    """Why ``arch`` (a loaded arch.json) is not in the deployable space, or None."""
    if arch["attention"] != "none":
        return f"attention {arch['attention']!r} is an input-dependent gate NIR cannot express; use attention none"
    ops = {op for pairs in arch["genotype"].values() for op, _ in pairs or ()} - set(SPACES["deployable"])
    return f"its cells hold {', '.join(sorted(ops))}, which NIR cannot express" if ops else None


# A convolution-heavy genotype (no pooling, no skip): the hardest of the space to train, as every path through a cell
# crosses several spiking layers. Tests and benchmarks train it to check that the networks this project builds learn.
CONV_HEAVY = {
    "normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["sep_conv_5x5", 0], ["dil_conv_3x3", 1],
               ["sep_conv_3x3", 1], ["dil_conv_5x5", 2], ["sep_conv_3x3", 0], ["dil_conv_3x3", 3]],
    "reduce": [["sep_conv_5x5", 0], ["dil_conv_5x5", 1], ["sep_conv_3x3", 1], ["dil_conv_3x3", 2],
               ["sep_conv_3x3", 0], ["sep_conv_5x5", 3], ["dil_conv_3x3", 2], ["sep_conv_3x3", 4]],
}

# DARTS-V2 (Liu et al.), as in nni.nas.hub.pytorch.DARTS.load_searched_model("darts-v2"): the benchmarks compare the
# SNN with NNI's ANN DARTS on this genotype.
DARTS_V2 = {
    "normal": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1], ["sep_conv_3x3", 0], ["sep_conv_3x3", 1],
               ["sep_conv_3x3", 1], ["skip_connect", 0], ["skip_connect", 0], ["dil_conv_3x3", 2]],
    "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2], ["max_pool_3x3", 1],
               ["max_pool_3x3", 0], ["skip_connect", 2], ["skip_connect", 2], ["max_pool_3x3", 1]],
}

# A hand-written genotype that uses every operation and every kind of input: the tests' architecture.
ALL_OPS = {
    "normal": [["sep_conv_3x3", 0], ["skip_connect", 1], ["dil_conv_3x3", 0], ["max_pool_3x3", 2],
               ["sep_conv_5x5", 1], ["avg_pool_3x3", 3], ["dil_conv_5x5", 2], ["skip_connect", 4]],
    "reduce": [["max_pool_3x3", 0], ["skip_connect", 1], ["avg_pool_3x3", 1], ["sep_conv_3x3", 2],
               ["dil_conv_3x3", 0], ["sep_conv_5x5", 3], ["dil_conv_5x5", 1], ["skip_connect", 4]],
}


def nodes_of(genotype: dict) -> int:
    """The intermediate nodes per cell of ``genotype`` (two [op, input] pairs each; every cell type has as many)."""
    return next(len(pairs) // 2 for pairs in genotype.values() if pairs is not None)


def genotype_from_sample(sample: dict[str, Any]) -> dict[str, list[list]]:
    """Turn an NNI sample of ``SNNDartsSpace`` into the DARTS-style genotype; a cell type the space has no cell of
    (no choice labelled with it) is ``None``."""
    genotype = {}
    for cell_type in CELL_TYPES:
        if f"{cell_type}/input_0" not in sample:
            genotype[cell_type] = None
            continue
        pairs = []
        k = 0
        while f"{cell_type}/input_{k}" in sample:
            for i in sorted(sample[f"{cell_type}/input_{k}"]):
                pairs.append([sample[f"{cell_type}/op_{k}_{i}"], int(i)])
            k += 1
        genotype[cell_type] = pairs
    return genotype


def sample_from_genotype(genotype: dict[str, list[list]]) -> dict[str, Any]:
    """The NNI sample that freezes ``SNNDartsSpace`` to ``genotype`` (chosen edges only)."""
    sample: dict[str, Any] = {}
    for cell_type in CELL_TYPES:
        pairs = genotype[cell_type]
        if pairs is None:  # no cell of this type: the space asks for none of its choices
            continue
        for k in range(len(pairs) // 2):
            (op_a, in_a), (op_b, in_b) = pairs[2 * k], pairs[2 * k + 1]
            sample[f"{cell_type}/input_{k}"] = sorted([in_a, in_b])
            sample[f"{cell_type}/op_{k}_{in_a}"] = op_a
            sample[f"{cell_type}/op_{k}_{in_b}"] = op_b
    return sample


def format_genotype(arch: dict) -> str:
    """An architecture's genotype as readable lines: one line per node and cell type."""
    nodes = nodes_of(arch["genotype"])
    names = ["c_{k-2}", "c_{k-1}"] + [f"node {j}" for j in range(nodes)]
    lines = [NetworkSpec.of(arch).describe()]
    for cell_type in CELL_TYPES:
        pairs = arch["genotype"][cell_type]
        if pairs is None:
            lines.append(f"{cell_type} cell: none (the searched network had no {cell_type} cell)")
            continue
        lines.append(f"{cell_type} cell:")
        for k in range(nodes):
            edges = "  +  ".join(f"{op}({names[i]})" for op, i in pairs[2 * k:2 * k + 2])
            lines.append(f"  node {k} = {edges}")
        lines.append(f"  output = spikes of {arch['attention']}_attention(concat(node 0..{nodes - 1}))")
    return "\n".join(lines)
