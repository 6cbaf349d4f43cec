"""Sphinx configuration of the nni-snn documentation (``make docs``: HTML in docs/_build/html, warnings as errors).

The pages are plain Markdown: their generated parts (CLI reference, file schemas, API summary, results tables,
plots) are written into them by docs/generate.py and committed, so the site shows what the repository page shows.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

project = "nni-snn"
author = "the nni-snn developers"
copyright = "2026, the nni-snn developers"

# This checkout's version, from its one home; the build imports nothing of the package (the pages are Markdown).
release = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.MULTILINE).group(1)

extensions = ["myst_parser"]
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "pypi.md"]  # pypi.md: the package index's page (pyproject's readme), not the site's
html_theme = "furo"
html_title = f"nni-snn {release}"
templates_path: list[str] = []

# Flags such as --arc-lr appear as plain text in the generated tables: no "--" to en dash.
smartquotes = False
