"""The ``xp`` fixture: NumPy, array-api-strict on a non-default device, and CuPy."""
import importlib.util

import numpy as np
import pytest

import blconv


def _gpu_available():
    if importlib.util.find_spec("cupy") is None:
        return False, "CuPy is not installed"
    try:
        import cupy
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # no driver, no device
        return False, f"no usable CUDA device ({type(e).__name__})"
    return (n > 0), "no CUDA device"


GPU, GPU_REASON = _gpu_available()


@pytest.fixture(autouse=True, scope="session")
def _private_data_home(tmp_path_factory):
    """The tests never read or write the user's data home (``$BLCONV_DATA``)."""
    import os
    saved = os.environ.get("BLCONV_DATA")
    os.environ["BLCONV_DATA"] = str(tmp_path_factory.mktemp("blconv-data"))
    yield
    if saved is None:
        os.environ.pop("BLCONV_DATA", None)
    else:
        os.environ["BLCONV_DATA"] = saved


def pytest_collection_modifyitems(config, items):
    if GPU:
        return
    skip = pytest.mark.skip(reason=f"GPU test: {GPU_REASON}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


class Strict:
    """array-api-strict arrays placed on a non-default device."""

    def __init__(self):
        import array_api_strict as xs
        self.xp = xs
        self.device = xs.Device("device1")

    def asarray(self, a):
        return self.xp.asarray(np.asarray(a), device=self.device)


class NumPy:
    xp = np

    @staticmethod
    def asarray(a):
        return np.asarray(a)


class CuPy:
    def __init__(self):
        import cupy
        self.xp = cupy

    def asarray(self, a):
        return self.xp.asarray(np.asarray(a))


@pytest.fixture(params=["numpy", "strict", pytest.param("cupy", marks=pytest.mark.gpu)])
def backend(request):
    """An object with ``.asarray(numpy_array)`` putting data on the namespace under test."""
    return {"numpy": NumPy, "strict": Strict, "cupy": CuPy}[request.param]()


@pytest.fixture(params=["matrix", "fft"])
def route(request):
    """Each exact transform route of blconv.spectral in turn, for the test's duration."""
    with blconv.transform(request.param):
        yield request.param
