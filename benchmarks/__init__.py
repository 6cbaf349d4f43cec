"""The benchmarks and studies of nni-snn: scripts run from the repository root as modules of this package,
``python -m benchmarks.NAME`` (what each measures: docs/benchmarks.md). Not part of the installed package.

Shared pieces: :mod:`benchmarks.common` (quiet logging, ``nni-snn`` in this process, hypervolume, macro flags),
:mod:`benchmarks.study` (resumable runs in folders, the search-quality study the attention and energy studies build
on), :mod:`benchmarks.measure` and :mod:`benchmarks.breakdown` (timing and memory), :mod:`benchmarks.lif_reference`
(the LIF as a plain autograd loop).
"""
