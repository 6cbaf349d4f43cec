"""The docs' generated parts.

- ``{results} NAME`` puts a result table there, made at build time from the committed results
  (``benchmarks/results``) by the benchmarks' own report functions, so that no figure is typed by hand. The plots
  are written once per build into ``docs/_generated/`` (not committed) and shown with an ordinary image directive.
- ``{run-example} PATH`` runs the Python script PATH (relative to ``docs/``) with the interpreter building the docs,
  in a temporary folder, and shows its code and its output; a script that fails or overruns fails the build.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.errors import ExtensionError
from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
GENERATED = ROOT / "docs" / "_generated"
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]


@contextlib.contextmanager
def _read_only(path: Path):
    """The studies' report() refreshes summary.json beside the runs; the docs build leaves the tree as it was."""
    before = path.read_bytes() if path.exists() else None
    try:
        yield
    finally:
        if before is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(before)


@cache
def search_quality(study: str) -> dict:
    from bench_search_quality import SETTINGS, Study

    out = RESULTS / "search_quality"
    with _read_only(out / study / "summary.json"), contextlib.redirect_stdout(io.StringIO()):
        return Study(study, SETTINGS[study], out, port=0, variants={}).report()


@cache
def attention_study() -> tuple[dict, list[str]]:
    from bench_attention import AttentionStudy
    from bench_search_quality import SETTINGS

    out = RESULTS / "attention"
    with _read_only(out / "fashionmnist" / "summary.json"):
        study = AttentionStudy("fashionmnist", SETTINGS["fashionmnist"], out, port=0)
        return study.report(), study.paired()


def energy_front() -> tuple[list[dict], set[int]]:
    from nni_snn.front import energy_front as front

    return front([RESULTS / "energy_front"])


@cache
def energy_study() -> dict:
    from bench_energy import LAMBDAS, EnergyStudy

    out = RESULTS / "energy"
    with _read_only(out / "fashionmnist" / "summary.json"), contextlib.redirect_stdout(io.StringIO()):
        return EnergyStudy(out, "efficient", LAMBDAS, 1.0, (0, 1, 2)).report()


def energy_headline() -> str:
    """The README's one table, from the fronts study at 1,000 training images (benchmarks/bench_fronts.py): per
    method, the configuration of highest mean validation accuracy, its test accuracy and its energy under the
    memory-aware and the ops-only profiles; then the hypervolumes' paired differences under the memory-aware one.
    tests/test_docs.py checks the README holds it."""
    from bench_fronts import METHODS

    summary = fronts("subset")[0]
    lines = ["| network (chosen on validation) | test accuracy | µJ / sample, memory-45nm | µJ / sample, ops-45nm |",
             "| --- | --- | --- | --- |"]
    for method, label in METHODS.items():
        rows = {k: r for k, r in summary["rows"].items() if k.split("-")[0] == method and r["val_mean"] is not None}
        if rows:
            key, row = max(rows.items(), key=lambda kv: kv[1]["val_mean"])
            lines.append(f"| {label.split(' (')[0]}: {key} | {row['test_mean']:.4f} ± {row['test_std']:.4f} | "
                         f"{row['uj_memory-45nm']:.3g} | {row['uj_ops-45nm']:.3g} |")
    pairs = summary["paired"].get("memory-45nm", {})
    lines += ["", "Hypervolume differences under memory-45nm, paired by seed (mean ± standard error):", ""] if pairs else []
    for pair, d in pairs.items():
        lines.append(f"- {pair}: {d['mean']:+.4f} ± {d['se']:.4f} (n = {len(d['diffs'])})")
    return "\n".join(lines)


def _energy_table() -> str:
    from bench_energy import table

    return table(energy_study()).split("\n", 2)[2]  # after the title line: the page says the setting


def _front_table() -> str:
    from nni_snn.front import front_table

    runs, on_front = energy_front()
    return "```text\n" + front_table(runs, on_front) + "\n```"


def _search_quality_table(study: str) -> str:
    from bench_search_quality import table

    lines = table(study, search_quality(study)).splitlines()
    return "\n".join(lines[1:])  # the heading line: the page has its own


def _attention_table() -> str:
    from bench_attention import table

    return table(attention_study()[0])


def _attention_paired() -> str:
    return "\n".join(attention_study()[1])


def _fuzz_counts() -> dict:
    import json

    return json.loads((RESULTS / "fuzz" / "long.json").read_text())


def _fuzz_table() -> str:
    from fuzz_table import table

    return table(_fuzz_counts())


def _fuzz_found() -> str:
    from fuzz_table import found_table

    return found_table(_fuzz_counts())


@cache
def fronts(setting: str) -> tuple[dict, object]:
    from bench_fronts import SETTINGS, FrontStudy

    study = FrontStudy(SETTINGS[setting], RESULTS / "fronts" / setting)
    return study.report(), study


def _fronts_table(setting: str) -> str:
    from bench_fronts import table

    return table(fronts(setting)[0])


TABLES = {
    "search-quality-fashionmnist": lambda: _search_quality_table("fashionmnist"),
    "search-quality-digits": lambda: _search_quality_table("digits"),
    "attention": _attention_table,
    "attention-paired": _attention_paired,
    "energy-front": _front_table,
    "energy": _energy_table,
    "energy-headline": energy_headline,
    "fronts-subset": lambda: _fronts_table("subset"),
    "fuzz": _fuzz_table,
    "fuzz-found": _fuzz_found,
}


class Results(SphinxDirective):
    """``{results} NAME``: the Markdown of report NAME (:data:`TABLES`), parsed in place."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        if name not in TABLES:
            raise self.error(f"unknown results {name!r}; known: {', '.join(TABLES)}")
        self.env.note_dependency(str(RESULTS))
        container = nodes.container()
        self.state.nested_parse(StringList(TABLES[name]().splitlines(), source=f"results:{name}"),
                                self.content_offset, container)
        return container.children


class RunExample(SphinxDirective):
    """``{run-example} PATH``: PATH's code, then what it printed when run for this build (``:timeout:`` seconds,
    default 600). The script runs in an empty temporary folder with this repository first on ``PYTHONPATH``."""

    required_arguments = 1
    option_spec: ClassVar[dict] = {"timeout": directives.positive_int}

    def run(self) -> list[nodes.Node]:
        script = Path(self.env.srcdir) / self.arguments[0]
        if not script.is_file():
            raise self.error(f"run-example: no such script {script}")
        self.env.note_dependency(str(script))
        code = script.read_text()
        env = {**os.environ, "MPLBACKEND": "Agg",
               "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
        timeout = self.options.get("timeout", 600)
        with tempfile.TemporaryDirectory(prefix="nni-snn-docs-") as cwd:
            try:
                done = subprocess.run([sys.executable, str(script)], check=False, cwd=cwd, env=env,
                                      capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise ExtensionError(f"{self.arguments[0]} ran over its {timeout} s") from None
        if done.returncode != 0:
            raise ExtensionError(f"{self.arguments[0]} exited with {done.returncode}:\n{done.stderr[-3000:]}")
        source = nodes.literal_block(code, code, language="python")
        caption = nodes.paragraph(text=f"Its output, from running python {script.name} for this page:")
        output = nodes.literal_block(done.stdout, done.stdout, language="text")
        return [source, caption, output]


def _plots(app) -> None:
    """The studies' plots, from the committed results, before any page is read."""
    import bench_energy
    from bench_search_quality import plot

    from nni_snn.plot import draw_front

    GENERATED.mkdir(exist_ok=True)
    plot({name: search_quality(name) for name in ("fashionmnist", "digits")}, GENERATED / "search_quality.png")
    bench_energy.plot(energy_study(), GENERATED / "energy_study.png")
    runs, _ = energy_front()
    draw_front(runs, GENERATED / "digits_front.png")
    import bench_fronts

    summary, study = fronts("subset")
    bench_fronts.plot(summary, study, GENERATED / "fronts_subset.png")


def _wrapped_init(cls):
    """The class's own ``__init__`` where NNI wrapped it (a model space's, in two layers of closures), else None."""
    wrappers = [cls.__init__]
    for _ in range(3):
        cells = [cell.cell_contents for w in wrappers for cell in getattr(w, "__closure__", None) or ()]
        wrappers = [value for value in cells if callable(value)]
        for value in wrappers:
            if getattr(value, "__qualname__", "") == f"{cls.__qualname__}.__init__":
                return value
    return None


def _signature(app, what, name, obj, options, signature, return_annotation):
    """NNI wraps the ``__init__`` of model spaces and traced classes in ``(*args, **kwargs)``: show the real one."""
    import inspect

    if what != "class" or signature != "(*args, **kwargs)":
        return None
    init = _wrapped_init(obj)
    try:
        real = inspect.signature(init) if init else inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    params = [p for p in real.parameters.values() if p.name != "self"]
    return str(real.replace(parameters=params, return_annotation=inspect.Signature.empty)), return_annotation


def setup(app):
    os.environ.setdefault("MPLBACKEND", "Agg")
    app.add_directive("results", Results)
    app.add_directive("run-example", RunExample)
    app.connect("builder-inited", _plots)
    app.connect("autodoc-process-signature", _signature)
    return {"version": "1", "parallel_read_safe": True}
