"""The package's layout: imports go one way (no cycles), and ``import blconv`` stays light."""
import ast
import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "blconv"


def _modules(package: pathlib.Path) -> dict[str, tuple[pathlib.Path, bool]]:
    """Dotted module name -> (file, is a package's ``__init__``)."""
    found = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        is_init = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_init else parts)] = (path, is_init)
    return found


def _targets(name: str, is_init: bool, node, modules) -> set[str]:
    """The package modules an ``import`` or ``from ... import`` statement of ``name`` loads."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in modules}
    if node.level:
        base = name.split(".") if is_init else name.split(".")[:-1]
        base = base[:len(base) - node.level + 1]
        where = ".".join(base + ([node.module] if node.module else []))
    else:
        where = node.module or ""
    if where not in modules:
        return set()
    return {f"{where}.{a.name}" if f"{where}.{a.name}" in modules else where
            for a in node.names}


def import_graph(package: pathlib.Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package modules it imports, at module level or inside functions.

    Left out: the imports inside a package ``__init__``'s module-level ``__getattr__``,
    the lazy re-exports (``blconv.sweep``), which run only when the attribute is first
    asked for, once the package is initialised.
    """
    modules = _modules(package)
    graph = {}
    for name, (path, is_init) in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        lazy = {id(n) for f in tree.body if is_init and isinstance(f, ast.FunctionDef)
                and f.name == "__getattr__" for n in ast.walk(f)}
        graph[name] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in lazy:
                graph[name] |= _targets(name, is_init, node, modules) - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle ``[a, b, ..., a]``, or ``None`` (depth-first search)."""
    state: dict[str, int] = {}      # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .a import f\n\ndef __getattr__(name):\n"
                                     "    from .c import g\n    return g\n")
    (pkg / "a.py").write_text("def f():\n    from .sub.b import h\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from .. import c\n")
    (pkg / "c.py").write_text("from . import a\n")
    graph = import_graph(pkg)
    assert graph["pkg"] == {"pkg.a"}                 # the lazy re-export is not an edge
    assert find_cycle(graph) == ["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]
    (pkg / "c.py").write_text("import os\n")
    assert find_cycle(import_graph(pkg)) is None


def test_blconv_has_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, f"import cycle in blconv/: {' -> '.join(cycle)}"


def test_import_blconv_leaves_the_experiment_layer_and_dask_unloaded():
    code = """
import json, sys
import blconv
heavy = ("blconv.experiments", "blconv.dist", "blconv.runs", "blconv.results", "dask",
         "distributed")
loaded = [m for m in heavy if m in sys.modules]
listed = "sweep" in dir(blconv) and "sweep" in blconv.__all__
import blconv.experiments
print(json.dumps([loaded, listed, blconv.sweep is blconv.experiments.sweep]))
"""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    assert json.loads(out) == [[], True, True]


def test_command_line_parser_leaves_scipy_signal_unloaded():
    """Every ``blconv`` command builds the whole parser; scipy.signal (about a second to
    import) is for the benchmark's fftconvolve peer alone."""
    code = ("import sys\nimport blconv.cli\nblconv.cli.build_parser()\n"
            "print('scipy.signal' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "False"


def test_blconv_names_only_what_it_has():
    import blconv
    with pytest.raises(AttributeError, match="module 'blconv' has no attribute 'sweeps'"):
        blconv.sweeps


def test_no_private_name_is_imported_across_modules():
    """``from .x import _name`` reaches into another module's insides; importing a private
    *module* of the package (``from . import _backend``) is how the package uses its own
    helpers, and allowed."""
    modules = _modules(PACKAGE)
    found = []
    for name, (path, is_init) in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not (
                    node.level or (node.module or "").startswith("blconv")):
                continue
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                one = ast.ImportFrom(module=node.module, names=[alias], level=node.level)
                if private and not any(t.endswith("." + alias.name)     # a private module
                                       for t in _targets(name, is_init, one, modules)):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {alias.name}")
    assert found == []
