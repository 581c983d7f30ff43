"""Sphinx configuration of the qkd-pl documentation site (``make docs``).

Sources are Markdown (myst-parser), so the reports in ``docs/`` are pages as they stand; the API
reference is read from the Google-style docstrings (autodoc + napoleon). The build runs with
``-W``: a warning fails it, so every page must be in a toctree and every link must resolve.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # autodoc imports qkd_pl from this checkout, installed or not

project = "qkd-pl"
author = "qkd-pl developers"
copyright = "qkd-pl developers, MIT licence"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx_click",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
# The result folders hold run folders, logs, csv and json beside their reports: only .md files
# are sources, so those are not read; the build output is not a source either.
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]

# Anchors for headings down to ####, so links like report.md#a-section resolve as on GitHub.
myst_heading_anchors = 4

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# Command help and docstrings are written for a terminal: `--option` must stay two hyphens (not an
# en dash) and `text` in single backticks is code, as it reads there.
smartquotes = False
default_role = "literal"

html_theme = "furo"
html_title = "qkd-pl"


# The commands' help is plain text written for a terminal (`qkd COMMAND --help`), while
# sphinx-click hands it to reStructuredText: there a lone `*` (PATH/train/<class>/*,
# alpha * T^2) opens emphasis. Escape such stars in the help lines; directives stay as they are.
_LONE_STAR = re.compile(r"(?<![\\*])\*(?!\*)")


def _escape_help(app, ctx, lines):
    lines[:] = [line if line.lstrip().startswith(".. ") else _LONE_STAR.sub(r"\\*", line) for line in lines]


def setup(app):
    for event in ("description", "options", "arguments", "epilog"):
        app.connect(f"sphinx-click-process-{event}", _escape_help)
