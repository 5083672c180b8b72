"""The notebooks follow the rules they are held to, checked without running them.

Stored without outputs, a quick mode and a seed in the first cell, only the public API
imported, no library code defined.  Running them is the job of
``BLCONV_QUICK=1 pytest --nbmake notebooks/`` (and of the docs build).
"""
import ast
import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
EXPECTED = ["01_quickstart", "02_gradients", "03_time_series", "04_images", "05_robustness",
            "06_pytorch"]
PUBLIC = {"blconv", "blconv.nn", "blconv.optim", "blconv.models", "blconv.train",
          "blconv.checkpoint", "blconv.data", "blconv.viz", "blconv.experiments",
          "blconv.reference", "blconv.torch"}
OTHERS = {"os", "contextlib", "copy", "numpy", "matplotlib", "matplotlib.pyplot",
          "IPython.display", "torch", "torch.nn", "torch.nn.functional"}


def _load(name):
    return json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))


def _code(cell) -> str:
    """The cell's Python source, IPython magics and shell lines left out."""
    src = "".join(cell["source"])
    return "\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!")))


def test_the_expected_notebooks_exist():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_stored_without_outputs(name):
    nb = _load(name)
    assert nb["nbformat"] == 4
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"cell {i}"


@pytest.mark.parametrize("name", EXPECTED)
def test_first_code_cell_sets_quick_mode_and_seed(name):
    first = next(c for c in _load(name)["cells"] if c["cell_type"] == "code")
    src = _code(first)
    assert 'os.environ.get("BLCONV_QUICK"' in src
    assert "default_rng(SEED)" in src and "SEED = " in src


@pytest.mark.parametrize("name", EXPECTED)
def test_only_the_public_api_and_no_library_code(name):
    for i, cell in enumerate(_load(name)["cells"]):
        if cell["cell_type"] != "code":
            continue
        tree = ast.parse(_code(cell))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names
                                           if f"{node.module}.{a.name}" in PUBLIC]
            else:
                assert not isinstance(node, ast.ClassDef), f"cell {i} defines a class"
                continue
            assert modules[0] in PUBLIC | OTHERS, f"cell {i} imports {modules[0]}"
