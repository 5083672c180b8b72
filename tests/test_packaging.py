"""The package's metadata: pyproject.toml, the licence files and the citation file.

Building and installing the wheel and sdist is CI's job (``.ci/run``); these tests keep
the metadata those builds read honest.
"""
import pathlib
import re
import tomllib

import pytest

import blconv

ROOT = pathlib.Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not (ROOT / "pyproject.toml").exists(),
                                reason="no pyproject.toml (not a source checkout)")


@pytest.fixture(scope="module")
def project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _name(requirement):
    """The distribution a requirement names: 'dask[distributed]>=2024.1' -> 'dask'."""
    return re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower().replace("_", "-")


def test_metadata_lives_in_pyproject_alone(project):
    assert not (ROOT / "setup.cfg").exists() and not (ROOT / "setup.py").exists()
    assert project["name"] == "blconv" and project["dynamic"] == ["version"]
    assert project["license"] == "BSD-3-Clause"
    assert project["scripts"] == {"blconv": "blconv.cli:main"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", blconv.__version__)


def test_classifiers_match_the_supported_pythons(project):
    floor = re.fullmatch(r">=3\.(\d+)", project["requires-python"]).group(1)
    versions = sorted(int(c.rsplit(".", 1)[1]) for c in project["classifiers"]
                      if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c))
    assert versions[0] == int(floor) and versions == list(range(versions[0], versions[-1] + 1))
    for needed in ("Intended Audience :: Science/Research", "Operating System :: OS Independent"):
        assert needed in project["classifiers"]
    # PEP 639: the licence is the expression above, never a classifier as well
    assert not [c for c in project["classifiers"] if c.startswith("License ::")]


def test_threadpoolctl_is_a_core_dependency(project):
    # sweep --threads limits the BLAS threads through it, not only the FFT threads
    assert "threadpoolctl" in {_name(r) for r in project["dependencies"]}


def test_extras_do_not_copy_each_other(project):
    extras = project["optional-dependencies"]
    seen = {}
    for extra, requirements in extras.items():
        for r in requirements:
            name = _name(r)
            if name == "blconv":       # a self-reference names extras that exist
                inner = re.fullmatch(r"blconv\[([a-z0-9,-]+)\]", r).group(1).split(",")
                assert set(inner) <= set(extras) - {extra}, (extra, r)
                continue
            assert name not in seen, f"{name} is listed by both [{seen[name]}] and [{extra}]"
            seen[name] = extra


def test_the_test_extra_installs_no_torch(project):
    """A bare torch requirement would pull a CUDA build of several GB into every test
    environment; CI installs a pinned CPU build explicitly instead."""
    def expand(extra):
        for r in project["optional-dependencies"][extra]:
            if _name(r) == "blconv":
                for inner in re.fullmatch(r"blconv\[(.+)\]", r).group(1).split(","):
                    yield from expand(inner)
            else:
                yield _name(r)
    assert "torch" not in set(expand("test"))
    assert {"sphinx", "dask", "matplotlib", "pytest"} <= set(expand("test"))
    assert [_name(r) for r in project["optional-dependencies"]["torch"]] == ["torch"]


def test_licence_files_ship_the_notices_of_the_data_files(project):
    text = (ROOT / "LICENSE").read_text()
    assert "BSD 3-Clause License" in text and "the blconv developers" in text
    for pattern in project["license-files"]:
        assert list(ROOT.glob(pattern)), pattern
    sklearn = (ROOT / "LICENSES" / "scikit-learn.txt").read_text()
    assert "digits.csv.gz" in sklearn and "The scikit-learn developers" in sklearn
    assert "LICENSES/scikit-learn.txt" in text
    shipped = {p.name for p in (ROOT / "blconv" / "data" / "files").iterdir()}
    assert "digits.csv.gz" in shipped


def test_citation_file_cites_the_paper_and_the_software():
    text = (ROOT / "CITATION.cff").read_text()
    assert text.startswith("cff-version: 1.2.0") and "\ntype: software\n" in text
    assert f"\nversion: {blconv.__version__}\n" in text
    paper = text.split("preferred-citation:", 1)[1]
    assert "Band-limited Training and Inference for Convolutional Neural Networks" in paper
    for name in ("Dziedzic", "Paparrizos", "Krishnan", "Elmore", "Franklin"):
        assert f"family-names: {name}" in paper
    assert "volume: 97" in paper and "start: 1745" in paper and "end: 1754" in paper
