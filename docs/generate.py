"""The documentation's generated parts, written into the Markdown pages and committed, so that a page reads the same
on the repository page, in a source distribution and on the site (`make docs`).

A generated part sits between two comments in README.md or a page under docs/::

    <!-- generated: NAME ARG (make docs-generate; do not edit) -->
    ...
    <!-- end generated -->

and ``python docs/generate.py --write`` (``make docs-generate``) rewrites what is between them from the code and the
committed results: the CLI reference from the command's own parser, the file schemas and the API summary from the
docstrings, the results tables from ``benchmarks/results`` through the benchmarks' own report functions (no figure
is typed by hand), the model zoo's list (nni_snn/zoo), the tutorials' scripts. ``--write`` also redraws the plots the pages show
(``docs/images/*.png``, committed). ``--check`` exits 1 naming every stale page; tests/test_docs.py does the same.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import re
import sys
import textwrap
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
IMAGES = ROOT / "docs" / "images"
sys.path[:0] = [str(ROOT)]  # the benchmarks package (its studies' report functions)


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
    from benchmarks.study import SETTINGS, Study

    out = RESULTS / "search_quality"
    with _read_only(out / study / "summary.json"), contextlib.redirect_stdout(io.StringIO()):
        return Study(study, SETTINGS[study], out, port=0, variants={}).report()


@cache
def attention_study() -> tuple[dict, list[str]]:
    from benchmarks.attention import AttentionStudy
    from benchmarks.study import SETTINGS

    out = RESULTS / "attention"
    with _read_only(out / "fashionmnist" / "summary.json"):
        study = AttentionStudy("fashionmnist", SETTINGS["fashionmnist"], out, port=0)
        return study.report(), study.paired()


def energy_front() -> tuple[list[dict], set[int]]:
    from nni_snn.files.front import energy_front as front

    return front([RESULTS / "energy_front"])


@cache
def energy_study() -> dict:
    from benchmarks.energy import LAMBDAS, EnergyStudy

    out = RESULTS / "energy"
    with _read_only(out / "fashionmnist" / "summary.json"), contextlib.redirect_stdout(io.StringIO()):
        return EnergyStudy(out, "efficient", LAMBDAS, 1.0, (0, 1, 2)).report()


def energy_headline(setting: str) -> str:
    """The README's one table, from the fronts study of ``setting`` (benchmarks/fronts.py): per method, its front
    under the memory-aware profile (the configurations no other of the method beats on validation accuracy at no more
    energy), cheapest first, each with the seeds it holds, its test accuracy and its energy under the memory-aware
    and the ops-only profiles; then the hypervolumes' paired differences under the memory-aware one. The README
    holds it as a generated part."""
    from benchmarks.fronts import METHODS

    summary = fronts(setting)[0]
    lines = ["| method | network (on its front by validation) | seeds | test accuracy | µJ / sample, memory-45nm | "
             "µJ / sample, ops-45nm |", "| --- | --- | --- | --- | --- | --- |"]
    for method, label in METHODS.items():
        rows = sorted(((k, r) for k, r in summary["rows"].items()
                       if k.split("-")[0] == method and r["val_mean"] is not None),
                      key=lambda kv: (kv[1]["uj_memory-45nm"], -kv[1]["val_mean"]))
        best = -1.0
        for key, row in rows:
            if row["val_mean"] > best:
                best = row["val_mean"]
                lines.append(f"| {label.split(' (')[0]} | {key} | {row['n']} | {row['test_mean']:.4f} ± "
                             f"{row['test_std']:.4f} | {row['uj_memory-45nm']:.3g} | {row['uj_ops-45nm']:.3g} |")
    pairs = summary["paired"].get("memory-45nm", {})
    lines += ["", "Hypervolume differences under memory-45nm, paired by seed (mean ± standard error):", ""] if pairs else []
    for pair, d in pairs.items():
        lines.append(f"- {pair}: {d['mean']:+.4f} ± {d['se']:.4f} (n = {len(d['diffs'])})")
    return "\n".join(lines)


def _energy_table() -> str:
    from benchmarks.energy import table

    return table(energy_study()).split("\n", 2)[2]  # after the title line: the page says the setting


def _front_table() -> str:
    from nni_snn.files.front import front_table

    runs, on_front = energy_front()
    return "```text\n" + front_table(runs, on_front) + "\n```"


def _search_quality_table(study: str) -> str:
    from benchmarks.search_quality import table

    lines = table(study, search_quality(study)).splitlines()
    return "\n".join(lines[1:])  # the heading line: the page has its own


def _attention_table() -> str:
    from benchmarks.attention import table

    return table(attention_study()[0])


def _attention_paired() -> str:
    return "\n".join(attention_study()[1])


def _fuzz_counts() -> dict:
    import json

    return json.loads((RESULTS / "fuzz" / "long.json").read_text())


def _fuzz_sizes() -> dict:
    import json

    return json.loads((RESULTS / "fuzz" / "sizes.json").read_text())


def _fuzz_table() -> str:
    from benchmarks.fuzz_table import table

    return table(_fuzz_counts(), _fuzz_sizes())


def _fuzz_sizes_table() -> str:
    from benchmarks.fuzz_table import sizes_table

    return sizes_table(_fuzz_sizes())


def _fuzz_found() -> str:
    from benchmarks.fuzz_table import found_table

    return found_table(_fuzz_counts())


@cache
def fronts(setting: str) -> tuple[dict, object]:
    from benchmarks.fronts import SETTINGS, FrontStudy

    study = FrontStudy(SETTINGS[setting], RESULTS / "fronts" / setting)
    return study.report(), study


def _fronts_table(setting: str) -> str:
    from benchmarks.fronts import table

    return table(fronts(setting)[0])


TABLES = {
    "search-quality-fashionmnist": lambda: _search_quality_table("fashionmnist"),
    "search-quality-digits": lambda: _search_quality_table("digits"),
    "attention": _attention_table,
    "attention-paired": _attention_paired,
    "energy-front": _front_table,
    "energy": _energy_table,
    "energy-headline-full": lambda: energy_headline("full"),
    "fronts-subset": lambda: _fronts_table("subset"),
    "fronts-full": lambda: _fronts_table("full"),
    "fuzz": _fuzz_table,
    "fuzz-found": _fuzz_found,
    "fuzz-sizes": _fuzz_sizes_table,
}




# --- plots: drawn by --write into docs/images (committed, small), from the same committed results as the tables


def _plot_search_quality(path: Path) -> None:
    from benchmarks.search_quality import plot

    plot({name: search_quality(name) for name in ("fashionmnist", "digits")}, path)


def _plot_energy_study(path: Path) -> None:
    from benchmarks.energy import plot

    plot(energy_study(), path)


def _plot_digits_front(path: Path) -> None:
    from nni_snn.files.plot import draw_front

    draw_front(energy_front()[0], path)


def _plot_fronts_subset(path: Path) -> None:
    from benchmarks.fronts import plot

    summary, study = fronts("subset")
    plot(summary, study, path)


def _plot_fronts_full(path: Path) -> None:
    from benchmarks.fronts import plot

    summary, study = fronts("full")
    plot(summary, study, path)


PLOTS = {
    "search_quality.png": _plot_search_quality,
    "energy_study.png": _plot_energy_study,
    "digits_front.png": _plot_digits_front,
    "fronts_subset.png": _plot_fronts_subset,
    "fronts_full.png": _plot_fronts_full,
}


# --- docstrings as Markdown: the modules' docstrings are reStructuredText of a plain kind (inline literals, roles,
# literal blocks after "::", Google-style sections), which these few rules turn into Markdown that GitHub and MyST
# both render.

SECTIONS = ("Args:", "Arguments:", "Parameters:", "Returns:", "Raises:", "Yields:", "Attributes:")


def docstring_md(doc: str | None) -> str:
    text = inspect.cleandoc(doc or "")
    text = re.sub(r":[a-z]+(?::[a-z]+)?:`~?([^`]+)`", r"``\1``", text)  # :func:`x` -> ``x``
    text = text.replace("``", "`")
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::") or line.strip() in SECTIONS:
            block, i = [], i + 1
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
                block.append(lines[i])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            block = textwrap.dedent("\n".join(block)).strip("\n").splitlines()
            if line.strip() in SECTIONS:  # a section: one list item per entry, its continuation lines joined
                items: list[str] = []
                for entry in block:
                    if entry.startswith((" ", "\t")) and items:
                        items[-1] += " " + entry.strip()
                    elif entry.strip():
                        items.append(entry.strip())
                out += [f"**{line.strip()[:-1]}**", "", *(f"- {item}" for item in items), ""]
            else:
                out += [line.rstrip()[:-1].rstrip(), "", "```text", *block, "```", ""]
            continue
        out.append(line.strip() if not line.strip() else line)
        i += 1
    return "\n".join(out).strip()


def module_doc(name: str) -> str:
    import importlib

    return docstring_md(importlib.import_module(name).__doc__)


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


def _signature(obj) -> str:
    """Parameters with their defaults, no annotations (the docstrings say the types where they matter). NNI wraps
    the ``__init__`` of model spaces and traced classes in ``(*args, **kwargs)``: the real one is shown."""
    target = (_wrapped_init(obj) or obj) if inspect.isclass(obj) else obj  # a class's signature has no self
    params = [p.replace(annotation=inspect.Parameter.empty) for p in inspect.signature(target).parameters.values()
              if p.name != "self"]
    return str(inspect.Signature(params))


# The API summary: what a user imports, by section; a class name followed by the methods to list.
API = {
    "Building networks": ["nni_snn.networks.build_network", "nni_snn.networks.network_parameters",
                          "nni_snn.files.spec.NetworkSpec merged of problem settings",
                          "nni_snn.files.archfile.load_arch", "nni_snn.files.archfile.zoo_names",
                          "nni_snn.files.archfile.make_arch", "nni_snn.files.archfile.arch_from_sample",
                          "nni_snn.commands.export.to_nir"],
    "Search space and strategy": ["search_spaces.SNNDartsSpace", "strategies.MADarts"],
    "Training": ["nni_snn.train.lightning.SNNClassifier"],
    "Neurons, attention and accounting": ["nni_snn.snn.neuron.make_neuron", "nni_snn.snn.neuron.LIF",
                                          "nni_snn.snn.neuron.PLIF",
                                          "nni_snn.snn.attention.ChannelTimeAttention",
                                          "nni_snn.snn.attention.MultiDimAttention",
                                          "nni_snn.snn.spikes.SpikeMonitor counting summary reset",
                                          "nni_snn.snn.spikes.energy_uj"],
    "Data": ["nni_snn.data.images.load_dataset", "nni_snn.data.images.dataset_names",
             "nni_snn.data.images.split_for_search", "nni_snn.data.images.split_for_validation",
             "nni_snn.data.images.unaugmented", "nni_snn.data.events.emulate_dvs"],
    "Results": ["nni_snn.files.front.energy_front", "nni_snn.files.plot.draw_front"],
}


def _resolve(path: str):
    import importlib

    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def api_summary() -> str:
    out = []
    for section, names in API.items():
        out += [f"## {section}", ""]
        for entry in names:
            path, *methods = entry.split()
            obj = _resolve(path)
            kind = "class " if inspect.isclass(obj) else ""
            out += [f"### `{kind}{path}{_signature(obj)}`", "", docstring_md(obj.__doc__), ""]
            for method in methods:
                member = getattr(obj, method)
                out += [f"- `{method}{_signature(member)}`: "
                        + docstring_md(member.__doc__).replace("\n\n", " ").replace("\n", " "), ""]
    return "\n".join(out).strip()


# --- the CLI reference, from the command's own parser (argparse keeps its groups and actions in attributes that
# sphinx-argparse reads too; they have stayed the same since Python 3.2).


def _cell(text: str, code: bool = False) -> str:
    """One table cell: one line, its bars escaped, and outside code its angle brackets, which GitHub would read as
    HTML tags and drop (``~/nni-experiments/<id>``)."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if code else text.replace("<", "&lt;").replace(">", "&gt;")


def _option_rows(parser: argparse.ArgumentParser) -> list[str]:
    formatter = parser._get_formatter()
    out = []
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.help != argparse.SUPPRESS
                   and not isinstance(a, (argparse._SubParsersAction, argparse._HelpAction))]
        if not actions:
            continue
        rows = []
        for action in actions:
            if action.option_strings:
                takes = action.nargs != 0
                metavar = formatter._format_args(action, action.dest.upper()) if takes else ""
                name = ", ".join(f"{flag} {metavar}".strip() for flag in action.option_strings)
            else:
                name = formatter._format_args(action, action.dest)
            default = action.default
            shown = "" if default in (None, False, argparse.SUPPRESS) or action.nargs == 0 else f"`{default}`"
            hidden = action.choices and "{" not in name  # a metavar stands for the choices
            choices = f" One of: {', '.join(f'`{c}`' for c in action.choices)}." if hidden else ""
            meaning = formatter._expand_help(action) if action.help else ""
            rows.append((f"`{_cell(name, code=True)}`", _cell(shown), _cell(meaning + choices)))
        # the options' layered defaults are None and their help says the default: no column of blanks then
        with_default = any(row[1] for row in rows)
        out += [f"**{group.title}**", "", "| argument | default | meaning |" if with_default else "| argument | meaning |",
                "| --- | --- | --- |" if with_default else "| --- | --- |"]
        out += [f"| {' | '.join(row if with_default else row[::2])} |" for row in rows]
        out.append("")
    return out


def cli_reference() -> str:
    from nni_snn.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    summary = {a.dest: a.help for a in sub._choices_actions}
    out = ["| command | what it does |", "| --- | --- |"]
    out += [f"| [`nni-snn {name}`](#nni-snn-{name}) | {_cell(summary.get(name) or '')} |" for name in sub.choices]
    out.append("")
    for name, command in sub.choices.items():
        out += [f"## nni-snn {name}", ""]
        if command.description or summary.get(name):
            out += [_cell(command.description or summary[name]), ""]
        out += _option_rows(command)
        if command.epilog:
            out += [_cell(command.epilog), ""]
    return "\n".join(out).strip()


def example(path: str) -> str:
    """A tutorial's script (relative to docs/), as the page shows it; tests/test_docs.py runs it."""
    return "```python\n" + (ROOT / "docs" / path).read_text().rstrip() + "\n```"


def zoo_list() -> str:
    """The model zoo (nni_snn/zoo, written by benchmarks/zoo.py): one table row and one pair of commands per entry."""
    import json

    from nni_snn.files.archfile import ZOO, zoo_names

    rows = ["| name | what | retrained: accuracy | µJ / sample | parameters |", "| --- | --- | --- | --- | --- |"]
    commands = []
    for name in zoo_names():
        zoo = json.loads((ZOO / f"{name}.json").read_text())["zoo"]
        done = zoo["retrained"]
        accuracy = (f"test {done['test_accuracy']:.4f} (chosen on validation)" if "test_accuracy" in done
                    else f"{done['accuracy']:.4f} (best epoch on test)")
        energy = f"{done['energy_uj_per_sample']:.3g} ({done.get('energy_profile', 'ops-45nm')})"
        size = f"width {done['width']}, {done['cells']} cells"
        rows.append(f"| `zoo:{name}` | {_cell(zoo['what'])}; {_cell(zoo['study'])} | {accuracy} at {size} | "
                    f"{energy} | {done['params']:,} |")
        commands += [f"# zoo:{name}, as it was made ({', '.join(zoo['runs'])})", zoo["search_command"],
                     zoo["retrain_command"]]
    return "\n".join([*rows, "", "```bash", *commands, "```"])


# --- the pages' generated parts

BLOCKS = {
    "cli": lambda _: cli_reference(),
    "api": lambda _: api_summary(),
    "module": module_doc,
    "results": lambda name: TABLES[name](),
    "example": example,
    "zoo": lambda _: zoo_list(),
}
MARKED = re.compile(r"(<!-- generated: (\S+)(?: (\S+))? \(make docs-generate; do not edit\) -->\n)(.*?)"
                    r"(<!-- end generated -->)", re.DOTALL)


def pages() -> list[Path]:
    """README.md and every page under docs/ (not the built site)."""
    found = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [p for p in found if "_build" not in p.relative_to(ROOT).parts]


def update(text: str) -> str:
    """``text`` with every generated part made anew."""
    def fill(match: re.Match) -> str:
        kind, arg = match.group(2), match.group(3)
        if kind not in BLOCKS:
            raise ValueError(f"unknown generated part {kind!r}; known: {', '.join(BLOCKS)}")
        return f"{match.group(1)}\n{BLOCKS[kind](arg).strip()}\n\n{match.group(5)}"

    return MARKED.sub(fill, text)


def stale() -> list[str]:
    """The pages whose generated parts differ from what the code and the committed results give now."""
    return [str(p.relative_to(ROOT)) for p in pages() if update(p.read_text()) != p.read_text()]


def write(plots: bool = True) -> list[str]:
    """Rewrite every stale page (and redraw the plots); the pages changed."""
    changed = stale()
    for name in changed:
        page = ROOT / name
        page.write_text(update(page.read_text()))
    if plots:
        import matplotlib

        matplotlib.use("Agg")
        IMAGES.mkdir(exist_ok=True)
        for name, draw in PLOTS.items():
            draw(IMAGES / name)
    return changed


def main(argv: list[str] | None = None) -> int:
    import warnings

    # NNI 3.0 warns about every newer torch class it does not know, on every import (as nni_snn.cli.main says too).
    warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module", category=RuntimeWarning)
    parser = argparse.ArgumentParser(description="the documentation's generated parts (docs/generate.py)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--write", action="store_true", help="rewrite the stale pages and redraw the plots")
    what.add_argument("--check", action="store_true", help="exit 1 when a page is stale")
    args = parser.parse_args(argv)
    if args.write:
        for name in write():
            print(f"rewrote {name}")
        return 0
    names = stale()
    for name in names:
        print(f"stale: {name} (make docs-generate)", file=sys.stderr)
    return 1 if names else 0


if __name__ == "__main__":
    sys.exit(main())
