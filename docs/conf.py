"""Sphinx configuration of the blconv documentation.

Build (from the repository root, warnings are errors)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

The notebooks (``notebooks/*.ipynb``, stored without outputs; ``docs/notebooks`` is a
link to that folder) are executed by myst-nb during the build, in quick mode
(``BLCONV_QUICK=1``) unless ``BLCONV_QUICK`` is already set: ``BLCONV_QUICK=0`` renders
the full experiments, which take hours.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

# Document and execute the checkout being built, installed or not: autodoc imports
# blconv from ROOT, and the notebook kernels (child processes) inherit PYTHONPATH.
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
# The notebooks read BLCONV_QUICK in their first cell: small models, few epochs, one seed.
os.environ.setdefault("BLCONV_QUICK", "1")
# Headless matplotlib in this process (autodoc imports blconv.viz, never draws).
os.environ.setdefault("MPLBACKEND", "Agg")

import blconv  # noqa: E402

# -- project -------------------------------------------------------------------------------
project = "blconv"
author = "the blconv developers"
copyright = "the blconv developers"
version = release = blconv.__version__

# -- extensions ----------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",                 # MyST markdown pages and the notebooks (includes myst_parser)
]

exclude_patterns = ["_build", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []
root_doc = "index"

# Pages written alongside the code that may not exist yet in a checkout: index.md lists
# them in its toctree, and _drop_missing_pages removes the entries of absent ones.
OPTIONAL_PAGES = ("benchmarks", "cluster", "robustness")

# -- MyST (markdown) -----------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# -- notebooks (myst-nb) -------------------------------------------------------------------
nb_execution_mode = "force"          # the stored notebooks have no outputs: always execute
nb_execution_timeout = 900           # seconds per cell
nb_execution_raise_on_error = True   # a failing notebook fails the build
nb_execution_show_tb = True
nb_execution_in_temp = True          # run in a temporary directory: nothing written here
nb_merge_streams = True              # one output block per cell, not one per print()
nb_output_stderr = "remove"          # progress bars and library notices stay out of the pages
nb_render_markdown_format = "myst"   # Markdown outputs (tables) rendered as MyST

# -- autodoc, autosummary, numpydoc --------------------------------------------------------
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"           # the numpydoc Parameters sections say the types
autodoc_preserve_defaults = True
autosummary_generate = False         # the API pages list every name explicitly (no stubs)
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- HTML ----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"blconv {release}"
html_static_path = ["_static"]
html_css_files = ["blconv.css"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_align": "left",
    "header_links_before_dropdown": 7,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
# No left sidebar on pages without sub-pages (it would be an empty column).
html_sidebars = {page: [] for page in ("index", "installation", "quickstart", "cli", "theory",
                                       "results", "design", "data", "pytorch")
                 + OPTIONAL_PAGES}
html_context = {"default_mode": "light"}


def _drop_missing_pages(app, docname, source):
    """Remove the toctree entries of OPTIONAL_PAGES that have no source file yet."""
    if docname != root_doc:
        return
    for page in OPTIONAL_PAGES:
        if not any((DOCS / f"{page}{suffix}").exists() for suffix in (".md", ".rst")):
            source[0] = source[0].replace(f"\n{page}\n", "\n")


def setup(app):
    app.connect("source-read", _drop_missing_pages)
