"""Speed settings change speed only: the band and every output are the same under each.

Each comparison is in float64, where two exact routes (or summation orders) agree to
~1e-13 relative: 1e-9 leaves room for the conditioning of the longer axes, and is still
six orders below the 3-7% that a different band would make.
"""
import threading

import numpy as np
import pytest

import blconv
from blconv import settings

from helpers import rel

FWD = {1: blconv.conv1d_forward, 2: blconv.conv2d_forward}
BWD = {1: blconv.conv1d_backward, 2: blconv.conv2d_backward}

LAYERS = {  # (x shape, w shape, keywords)
    "fcn-150": ((3, 4, 150), (5, 4, 5), dict(padding="same", compress_rate=0.5)),
    "fcn-427": ((2, 3, 427), (4, 3, 3), dict(padding="same", compress_rate=0.5)),
    "resnet-32": ((2, 3, 32, 32), (4, 3, 3, 3), dict(padding=1, compress_rate=0.5)),
    "strided-dilated": ((2, 4, 15, 17), (6, 2, 3, 3),
                        dict(stride=2, dilation=(1, 2), padding=2, groups=2, compress_rate=0.3)),
    "energy-300": ((3, 2, 300), (3, 2, 7), dict(padding=3, preserve_energy=0.9)),
    "pow2": ((2, 2, 20, 20), (2, 2, 3, 3), dict(padding=1, compress_rate=0.5, fft_size="pow2")),
}

SETTINGS = {
    "matrix": lambda: blconv.transform("matrix"),
    "fft": lambda: blconv.transform("fft"),
    "auto-1": lambda: blconv.transform("auto", matrix_max_n=1),
    "auto-64": lambda: blconv.transform("auto", matrix_max_n=64),
    "auto-100000": lambda: blconv.transform("auto", matrix_max_n=100_000),
    "1-fft-thread": lambda: blconv.fft_workers(1),
    "chunks-of-1": lambda: blconv.max_workspace_bytes(1),
}


def _run(name):
    xs, ws, kw = LAYERS[name]
    d = len(xs) - 2
    rng = np.random.default_rng(len(name))
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    b = rng.standard_normal(ws[0])
    y, ctx = FWD[d](x, w, b, **kw)
    dy = rng.standard_normal(y.shape)
    return ctx.band, (y,) + tuple(BWD[d](dy, ctx))


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("layer", LAYERS)
def test_outputs_do_not_depend_on_speed_settings(layer, setting):
    band, want = _run(layer)
    with SETTINGS[setting]():
        got_band, got = _run(layer)
    assert got_band == band
    for g, r in zip(got, want):
        assert rel(g, r) <= 1e-9


def test_band_does_not_depend_on_the_route_in_a_layer():
    """The examples of a length-150 and a length-427 layer and a 32x32 one under every route."""
    for xs, ws, kw, fft_shape in [((1, 1, 32, 32), (1, 1, 3, 3), dict(padding=1), (33, 33)),
                                  ((1, 1, 150), (1, 1, 5), dict(padding=2), (152,)),
                                  ((1, 1, 427), (1, 1, 3), dict(padding=1), (432,))]:
        for make in SETTINGS.values():
            with make():
                assert blconv.band_for(xs, ws, compress_rate=0.5, **kw).fft_shape == fft_shape


def test_context_managers_restore_and_nest():
    base = settings.current()
    with blconv.transform("fft"):
        assert settings.current().transform == "fft"
        with blconv.transform("matrix", matrix_max_n=7), blconv.fft_workers(1):
            s = settings.current()
            assert (s.transform, s.matrix_max_n, s.fft_workers) == ("matrix", 7, 1)
        assert settings.current().transform == "fft" and settings.current().fft_workers == \
            base.fft_workers
        with pytest.raises(RuntimeError):
            with blconv.max_workspace_bytes(10):
                raise RuntimeError("inside")
        assert settings.current().max_workspace_bytes is None
    assert settings.current() == base


def test_setters_change_the_default_and_contexts_override_it():
    base = settings.current()
    try:
        blconv.set_transform("fft", matrix_max_n=10)
        blconv.set_fft_workers(1)
        blconv.set_max_workspace_bytes(1 << 20)
        s = settings.current()
        assert (s.transform, s.matrix_max_n, s.fft_workers, s.max_workspace_bytes) == \
            ("fft", 10, 1, 1 << 20)
        with blconv.transform("matrix"):
            assert settings.current().transform == "matrix"
        assert settings.current().transform == "fft"
    finally:
        blconv.set_transform(base.transform, matrix_max_n=base.matrix_max_n)
        blconv.set_fft_workers(base.fft_workers)
        blconv.set_max_workspace_bytes(base.max_workspace_bytes)
    assert settings.current() == base


def test_a_threads_setting_does_not_leak_into_another_thread():
    seen, inside, release = {}, threading.Event(), threading.Event()

    def worker():
        with blconv.transform("matrix", matrix_max_n=3):
            inside.set()
            release.wait(10)
            seen["worker"] = settings.current().transform

    t = threading.Thread(target=worker)
    t.start()
    inside.wait(10)
    seen["main"] = settings.current().transform          # while the worker's is active
    release.set()
    t.join()
    assert seen == {"worker": "matrix", "main": "auto"}


@pytest.mark.parametrize("call, match", [
    (lambda: blconv.transform("cuda"), r"transform: mode must be 'auto', 'matrix' or 'fft', "
                                       r"got 'cuda'"),
    (lambda: blconv.transform("auto", matrix_max_n=0), r"transform: matrix_max_n must be an "
                                                       r"int >= 1, got 0"),
    (lambda: blconv.set_transform("fast"), r"set_transform: mode must be"),
    (lambda: blconv.fft_workers(0), r"fft_workers: workers must be -1 or a positive int, "
                                    r"got 0"),
    (lambda: blconv.set_fft_workers(True), r"set_fft_workers: workers must be"),
    (lambda: blconv.max_workspace_bytes(-5), r"max_workspace_bytes: max_workspace_bytes must "
                                             r"be None or an int >= 1, got -5"),
    (lambda: blconv.set_max_workspace_bytes(1.5), r"set_max_workspace_bytes: "),
], ids=["mode", "threshold", "set-mode", "workers", "set-workers", "workspace",
        "set-workspace"])
def test_bad_settings_are_refused(call, match):
    before = settings.current()
    with pytest.raises(ValueError, match=match):
        call()
    assert settings.current() == before


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-4)])
def test_a_samples_prediction_does_not_depend_on_its_batch(dtype, rtol):
    """At a fixed rate (not the per-batch energy policy), in eval mode, each sample's
    logits are the same alone or in a batch, to the rounding of GEMMs of another size."""
    from blconv.models import fcn1d
    model = fcn1d(2, 3, channels=(8, 16, 8), compress_rate=0.5, dtype=dtype.__name__, seed=0)
    model.eval()
    x = np.random.default_rng(0).standard_normal((6, 2, 60)).astype(dtype)
    together = model(x)
    alone = np.concatenate([model(x[i:i + 1]) for i in range(len(x))])
    np.testing.assert_allclose(alone, together, rtol=rtol, atol=rtol * np.abs(together).max())
