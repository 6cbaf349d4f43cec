"""The docs' generated parts: result tables and plots made at build time from the committed results
(``benchmarks/results``) by the benchmarks' own report functions, so that no figure is typed by hand.

``{results} NAME`` in a page puts the Markdown that the report function ``NAME`` returns there; the plots are
written once per build into ``docs/_generated/`` (not committed) and shown with an ordinary image directive.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from functools import cache
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
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


TABLES = {
    "search-quality-fashionmnist": lambda: _search_quality_table("fashionmnist"),
    "search-quality-digits": lambda: _search_quality_table("digits"),
    "attention": _attention_table,
    "attention-paired": _attention_paired,
    "energy-front": _front_table,
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


def _plots(app) -> None:
    """The study's plot and the energy front's picture, from the committed results, before any page is read."""
    from bench_search_quality import plot

    from nni_snn.plot import draw_front

    GENERATED.mkdir(exist_ok=True)
    plot({name: search_quality(name) for name in ("fashionmnist", "digits")}, GENERATED / "search_quality.png")
    runs, on_front = energy_front()
    draw_front(runs, GENERATED / "energy_front.png")


def setup(app):
    os.environ.setdefault("MPLBACKEND", "Agg")
    app.add_directive("results", Results)
    app.connect("builder-inited", _plots)
    return {"version": "1", "parallel_read_safe": True}
