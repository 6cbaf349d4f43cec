"""The documentation: the site builds with warnings as errors (its result tables generated from the committed runs,
its tutorial executed), every `nni-snn` command in it parses with the command's own parser, and the README stays
short and agrees with the generated results."""

from __future__ import annotations

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
    from nni_snn.cli import build_parser

    try:
        build_parser().parse_args(args)  # a UsageError (one line) names what is wrong
    except SystemExit as end:  # --help prints and exits 0
        assert end.code == 0 and "--help" in args


def test_the_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150


def _docs_extension():
    sys.path[:0] = [str(ROOT / "docs" / "_ext")]
    try:
        import nni_snn_docs
    finally:
        sys.path.remove(str(ROOT / "docs" / "_ext"))
    return nni_snn_docs


def test_the_readmes_results_table_is_the_generated_one():
    """The README types its one table; the docs generate it from benchmarks/results/energy: they must agree."""
    table = _docs_extension().energy_headline()
    assert table in (ROOT / "README.md").read_text(), f"README.md's results table should read:\n{table}"


@pytest.mark.slow
def test_the_docs_build_with_warnings_as_errors(tmp_path):
    """`make docs`: Sphinx with -W, the result tables generated, the tutorial's script run, no broken reference."""
    done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q",
                           "-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(tmp_path / "html")],
                          check=False, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-5000:]
    html = (tmp_path / "html" / "tutorials" / "python_api.html").read_text()
    assert "spikes per sample:" in html  # the tutorial's output, from running it
    assert "--spike-penalty" in (tmp_path / "html" / "reference" / "cli.html").read_text()
