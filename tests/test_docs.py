"""The documentation: every public name in the API reference, and a warning-free build.

The build test runs ``sphinx-build -W --keep-going`` into a temporary directory (it also
executes the notebooks, in quick mode); it is skipped when the ``docs`` extra is not
installed.
"""
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# module -> its page of the API reference
API_PAGES = {
    "blconv": "blconv", "blconv.nn": "nn", "blconv.optim": "optim", "blconv.models": "models",
    "blconv.train": "train", "blconv.checkpoint": "checkpoint", "blconv.data": "data",
    "blconv.experiments": "experiments", "blconv.runs": "runs", "blconv.results": "results",
    "blconv.dist": "dist", "blconv.viz": "viz",
    "blconv.reference": "reference", "blconv.bench": "bench", "blconv.torch": "torch",
}
_DIRECTIVE = re.compile(r"^\.\. [\w:-]+::\s+(\S+)")
_ENTRY = re.compile(r"^~?[A-Za-z_][\w.]*$")


def _documented(page: Path) -> set[str]:
    """Last components of the names a page documents (auto* directives, autosummary rows)."""
    names = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        m = _DIRECTIVE.match(line)
        target = m.group(1) if m else (line if _ENTRY.match(line) else None)
        if target:
            names.add(target.lstrip("~").rsplit(".", 1)[-1])
    return names


@pytest.mark.parametrize("module", sorted(API_PAGES))
def test_api_reference_lists_every_public_name(module):
    if module == "blconv.torch":
        pytest.importorskip("torch")
    page = DOCS / "api" / f"{API_PAGES[module]}.rst"
    public = set(importlib.import_module(module).__all__)
    missing = sorted(public - _documented(page))
    assert not missing, f"docs/api/{page.name} does not document {module}.{missing}"


def test_every_api_page_is_in_the_reference_index():
    index = (DOCS / "api" / "index.rst").read_text(encoding="utf-8")
    for page in API_PAGES.values():
        assert re.search(rf"^   {page}$", index, re.M), f"{page} is not in api/index.rst"


def test_the_notebooks_are_linked_into_the_docs():
    assert (DOCS / "notebooks").resolve() == (ROOT / "notebooks").resolve()


def _docs_tools_missing():
    for name in ("sphinx", "numpydoc", "myst_nb", "pydata_sphinx_theme", "ipykernel"):
        try:
            importlib.import_module(name)
        except ImportError:
            return name
    return None


@pytest.mark.slow
@pytest.mark.skipif(_docs_tools_missing() is not None,
                    reason=f"needs the docs extra ({_docs_tools_missing()} is missing): "
                           f'pip install -e ".[docs]"')
def test_docs_build_without_warnings(tmp_path):
    out = tmp_path / "html"
    env = dict(os.environ, BLCONV_QUICK="1")
    # the notebooks train tiny models: one BLAS thread each avoids oversubscribed cores
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stderr[-6000:]}"
    for page in ("index", "theory", "api/blconv", "notebooks/01_quickstart"):
        assert (out / f"{page}.html").is_file(), page
    # the executed notebook carries its plots
    assert "<img" in (out / "notebooks" / "01_quickstart.html").read_text(encoding="utf-8")
