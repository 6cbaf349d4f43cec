"""The documentation: its generated parts (docs/generate.py) are current in the committed pages, the site builds
with warnings as errors, the tutorials' scripts run, every `nni-snn` command in it parses with the command's own
parser, and the README stays short."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PAGES = [p for p in PAGES if "_build" not in p.parts]
FENCE = re.compile(r"^(```+|~~~+)\s*(\S*)")


def code_blocks(text: str) -> list[tuple[str, list[str]]]:
    """(language, lines) of every fenced block of a Markdown page."""
    blocks, current, language, fence = [], None, "", ""
    for line in text.splitlines():
        opened = FENCE.match(line.strip())
        if current is None and opened:
            current, fence, language = [], opened.group(1), opened.group(2)
        elif current is not None and line.strip().startswith(fence) and not line.strip().strip(fence[0]):
            blocks.append((language, current))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def shell_commands(lines: list[str]) -> list[str]:
    """The commands of a shell block, continuation lines (ending in a backslash) joined."""
    commands, pending = [], ""
    for line in lines:
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        commands.append(pending.strip())
        pending = ""
    return [c for c in commands + [pending.strip()] if c and not c.startswith("#")]


def nni_snn_commands() -> list[tuple[str, list[str]]]:
    """(where, the arguments after `nni-snn`) for every `nni-snn ...` command in a shell block of the pages."""
    found = []
    for page in PAGES:
        for language, lines in code_blocks(page.read_text()):
            if language not in ("bash", "sh", "shell", "console"):
                continue
            if language == "console":  # a session: the commands are the lines after the prompt
                lines = [line.strip()[2:] for line in lines if line.strip().startswith("$ ")]
            for command in shell_commands(lines):
                if "nni-snn" not in command:
                    continue
                words = shlex.split(command, comments=True)
                if words[:2] == ["pip", "install"]:  # the package's name, not the command
                    continue
                at = [i for i, w in enumerate(words) if w == "nni-snn" or w.endswith("/nni-snn")]
                if at:
                    found.append((f"{page.relative_to(ROOT)}: {command}", words[at[0] + 1:]))
    return found


def test_the_pages_hold_nni_snn_commands():
    # The extraction itself: a regression here would make the parsing test below vacuous.
    where = {w.split(":")[0] for w, _ in nni_snn_commands()}
    assert {"README.md", "docs/howto/search.md", "docs/howto/scaling.md"} <= where


@pytest.mark.parametrize("where,args", nni_snn_commands(), ids=lambda v: v[:80] if isinstance(v, str) else "")
def test_every_documented_command_parses(where, args):
    from nni_snn.cli.main import build_parser

    try:
        build_parser().parse_args(args)  # a UsageError (one line) names what is wrong
    except SystemExit as end:  # --help prints and exits 0
        assert end.code == 0 and "--help" in args


def test_the_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150


def _generator():
    sys.path[:0] = [str(ROOT / "docs")]
    try:
        import generate
    finally:
        sys.path.remove(str(ROOT / "docs"))
    return generate


def test_the_generated_parts_of_the_pages_are_current():
    """The CLI reference, file schemas, API summary, results tables (the README's too) and the zoo's list are
    written into the pages; a change to the code or the committed results leaves a page stale until
    `make docs-generate` rewrites it."""
    stale = _generator().stale()
    assert not stale, f"stale generated parts in {stale}: run `make docs-generate` and commit the pages"


def test_a_stale_generated_part_is_found_and_rewritten():
    generate = _generator()
    marker = "<!-- generated: results fuzz (make docs-generate; do not edit) -->\n"
    page = f"Counts:\n\n{marker}\n| an old table |\n\n<!-- end generated -->\n\nAfter.\n"
    fresh = generate.update(page)
    assert fresh != page and "| an old table |" not in fresh
    assert generate.TABLES["fuzz"]() in fresh and fresh.startswith("Counts:") and fresh.endswith("After.\n")
    assert generate.update(fresh) == fresh


def test_the_pages_images_are_committed_and_small():
    """An image a page shows must be in the repository (the repository page shows no built site)."""
    tracked = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.splitlines())
    images = [(page, page.parent / target) for page in PAGES
              for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", page.read_text())]
    assert images
    for page, image in images:
        image = image.resolve()
        assert image.is_file(), f"{page.relative_to(ROOT)}: no image {image}"
        assert str(image.relative_to(ROOT)) in tracked, f"{image} is not committed"
        assert image.stat().st_size < 200_000, f"{image} is over 200 kB"


@pytest.mark.slow
def test_the_fixed_network_tutorial_runs(tmp_path):
    """docs/tutorials/python_api.md shows this script and tells a user to run it (its other script,
    nas_experiment.py, is run and checked by tests/test_api.py)."""
    done = subprocess.run([sys.executable, str(ROOT / "docs" / "tutorials" / "fixed_network.py")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "spikes per sample:" in done.stdout


@pytest.mark.slow
def test_the_docs_build_with_warnings_as_errors(tmp_path):
    """`make docs`: Sphinx with -W over the committed pages, no broken reference."""
    done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q",
                           "-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(tmp_path / "html")],
                          check=False, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-5000:]
    assert "--spike-penalty" in (tmp_path / "html" / "reference" / "cli.html").read_text()
    assert "build_network" in (tmp_path / "html" / "reference" / "api.html").read_text()
