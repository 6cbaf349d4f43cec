"""Sphinx configuration of the nni-snn documentation (``make docs``: HTML in docs/_build/html, warnings as errors)."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent / "_ext")]

from nni_snn import __version__  # this checkout's, found through the path above

project = "nni-snn"
author = "the nni-snn developers"
copyright = "2026, the nni-snn developers"

release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinxarg.ext",
    "nni_snn_docs",
]
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "_generated"]
html_theme = "furo"
html_title = f"nni-snn {release}"
templates_path: list[str] = []

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
# NNI, torch and Lightning are imported for real: autodoc reads the classes the user imports.
# Flags such as --arc-lr appear as plain text in the generated tables: no "--" to en dash.
smartquotes = False
nitpicky = False
# sphinx-argparse's domain cannot resolve MyST's "any" references; MyST says so on every build.
suppress_warnings = ["myst.domains"]

# Links into PyTorch's, NNI's and Lightning's docs. Their inventories are fetched over the network, which a build
# here does not have: set NNI_SNN_DOCS_INTERSPHINX=1 where it does (a build without them has the same pages, with
# those names as plain text instead of links).
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "torch": ("https://pytorch.org/docs/stable", None),
    "nni": ("https://nni.readthedocs.io/en/v3.0", None),
    "lightning": ("https://lightning.ai/docs/pytorch/stable", None),
}
if not os.environ.get("NNI_SNN_DOCS_INTERSPHINX"):
    intersphinx_mapping = {}
intersphinx_timeout = 10
