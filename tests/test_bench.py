"""The benchmark tool: its fftconvolve peer is correct, its JSON is complete and true.

No timing is asserted; timings belong in docs/benchmarks.md.
"""
import argparse
import importlib.util
import json
import re

import numpy as np
import pytest
from conftest import GPU

import blconv
from blconv import bench, reference
from blconv.bench.report import target_ratios


def _case(dim, rng, bias):
    if dim == 2:     # non-square input and kernel, padding 1
        x = rng.standard_normal((2, 3, 7, 6))
        w = rng.standard_normal((4, 3, 3, 2))
        padding = 1
    elif dim == "2-strided":
        x = rng.standard_normal((2, 3, 9, 8))
        w = rng.standard_normal((4, 3, 1, 2))
        padding = 1
    else:            # even kernel with 'same': the odd extra zero goes on the right
        x = rng.standard_normal((3, 2, 11))
        w = rng.standard_normal((5, 2, 4))
        padding = "same"
    b = rng.standard_normal(w.shape[0]) if bias else None
    return x, w, b, padding


@pytest.mark.parametrize("max_bytes", [2**30, 1], ids=["whole-batch", "per-sample"])
@pytest.mark.parametrize("dim,bias", [(2, False), (1, True), ("2-strided", True)],
                         ids=["2d", "1d-bias", "2d-stride2"])
def test_fftconvolve_peer_matches_reference(dim, bias, max_bytes):
    rng = np.random.default_rng(1)
    x, w, b, padding = _case(dim, rng, bias)
    stride = 2 if dim == "2-strided" else 1
    y = bench.fftconvolve_forward(x, w, b, stride=stride, padding=padding, max_bytes=max_bytes)
    y_ref = reference.correlate(x, w, b, stride=stride, padding=padding)
    assert y.shape == y_ref.shape and y.dtype == np.float64
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-10)

    dy = rng.standard_normal(y_ref.shape)
    grads = bench.fftconvolve_backward(dy, x, w, stride=stride, padding=padding, bias=bias,
                                       max_bytes=max_bytes)
    grads_ref = reference.correlate_backward(dy, x, w, stride=stride, padding=padding,
                                             bias=bias)
    for name, g, g_ref in zip(("dx", "dw", "db"), grads, grads_ref):
        if g_ref is None:
            assert g is None, name
        else:
            assert g.shape == g_ref.shape, name
            np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-10, err_msg=name)


def test_fftconvolve_peer_keeps_float32():
    rng = np.random.default_rng(2)
    x, w, _, padding = _case(2, rng, False)
    x, w = x.astype(np.float32), w.astype(np.float32)
    y = bench.fftconvolve_forward(x, w, padding=padding)
    dx, dw, _ = bench.fftconvolve_backward(np.ones_like(y), x, w, padding=padding)
    assert y.dtype == dx.dtype == dw.dtype == np.float32


# What the two smoke-tested layers are, written out here rather than read from bench.LAYERS.
_GEOMETRY = {
    "resnet512": {"x": (512, 4, 4), "w": (512, 512, 3, 3), "padding": 1, "bias": False},
    "fcn3": {"x": (256, 150), "w": (128, 256, 3), "padding": "same", "bias": True},
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "quick.json"
    code = bench.main(["--quick", "--layers", "resnet512", "fcn3", "--repeats", "1",
                       "--no-torch", "--pause", "0", "--warmup", "0", "--json", str(path)])
    with open(path) as f:
        return code, json.load(f)


def test_the_cpu_run_leaves_out_the_gpu_methods_with_a_note(quick_run):
    _, result = quick_run
    for m in ("blconv-graphs", "blconv-tf32"):
        assert f"{m} skipped: GPU only" in result["notes"]
        assert not any(r["method"] == m for r in result["records"])


def test_graphs_records_compare_with_their_own_rate_0_and_with_eager_blconv():
    from blconv.bench.configs import Config
    from blconv.bench.layers import LAYERS
    from blconv.bench.report import layer_records, target_ratios

    def cfg(method, rate, ms):
        c = Config(method, rate, None, None, 1, None, nbytes=1, effective_rate=rate)
        c.fwd_s, c.fwdbwd_s = [ms / 2e3], [ms / 1e3]
        return c

    configs = [cfg("blconv", 0.0, 8.0), cfg("blconv", 0.5, 6.0),
               cfg("blconv-graphs", 0.0, 4.0), cfg("blconv-graphs", 0.5, 2.0),
               cfg("torch", None, 2.5)]
    records = layer_records(LAYERS["resnet64"], configs, "gpu")
    by = {(r["method"], r["rate"]): r for r in records}
    assert by[("blconv-graphs", 0.5)]["ratio_blconv0"] == pytest.approx(0.5)   # 2 / 4
    assert by[("blconv", 0.5)]["ratio_blconv0"] == pytest.approx(0.75)         # 6 / 8
    assert by[("torch", None)]["ratio_blconv0"] == pytest.approx(2.5 / 8)
    targets = {t["what"]: t["value"] for t in target_ratios(records)}
    assert targets["graphs fwd+bwd, c=0.5 / c=0"] == pytest.approx(0.5)
    assert targets["graphs(c=0.5) / eager(c=0.5), fwd+bwd"] == pytest.approx(2 / 6)
    assert targets["graphs(c=0.5) / torch, fwd+bwd"] == pytest.approx(2 / 2.5)


def test_quick_run_json_structure(quick_run):
    code, result = quick_run
    assert code == 0
    assert set(result) == {"header", "records", "targets", "notes"}
    header = result["header"]
    for key in ("cpu", "cores", "python", "numpy", "scipy", "torch", "blas", "date",
                "device", "rates", "repeats"):
        assert key in header, key
    assert header["device"] == "cpu" and header["batch"] == bench.QUICK_BATCH
    records = result["records"]
    seen = {(r["layer"], r["method"], r["rate"]) for r in records}
    expected = {(layer, "blconv", rate) for layer in _GEOMETRY for rate in bench.DEFAULT_RATES}
    expected |= {(layer, m, None) for layer in _GEOMETRY for m in ("reference", "fftconvolve")}
    assert seen == expected and len(records) == len(expected)
    for r in records:
        assert r["repeats"] >= 1 and len(r["fwdbwd_ms_all"]) == r["repeats"]
        assert r["fwd_ms"] > 0 and r["fwdbwd_ms"] > 0
        assert r["ratio_torch"] is None and r["ratio_blconv0"] > 0
        assert r["peak_bytes"] > 0          # tracemalloc sees NumPy's allocations
    assert {t["layer"] for t in result["targets"]} == set(_GEOMETRY)
    assert all(t["value"] is not None for t in result["targets"])


@pytest.mark.parametrize("layer", list(_GEOMETRY))
def test_quick_run_reports_true_nbytes(quick_run, layer):
    _, result = quick_run
    g = _GEOMETRY[layer]
    x = np.zeros((bench.QUICK_BATCH,) + g["x"], dtype=np.float32)
    w = np.zeros(g["w"], dtype=np.float32)
    b = np.zeros(g["w"][0], dtype=np.float32) if g["bias"] else None
    forward = blconv.conv2d_forward if len(g["x"]) == 3 else blconv.conv1d_forward
    rows = {(r["method"], r["rate"]): r for r in result["records"] if r["layer"] == layer}
    for rate in bench.DEFAULT_RATES:
        _, ctx = forward(x, w, b, padding=g["padding"], compress_rate=rate)
        assert rows["blconv", rate]["nbytes"] == ctx.nbytes
        assert rows["blconv", rate]["effective_rate"] == pytest.approx(ctx.band.effective_rate)
    for peer in ("reference", "fftconvolve"):
        assert rows[peer, None]["nbytes"] == x.nbytes + w.nbytes
    assert {r["spatial_bytes"] for r in rows.values()} == {x.nbytes + w.nbytes}
    half, full = rows["blconv", 0.5], rows["blconv", 0.0]
    targets = {t["what"]: t["value"] for t in result["targets"] if t["layer"] == layer}
    assert targets["ctx.nbytes, c=0.5 / c=0"] == pytest.approx(half["nbytes"] / full["nbytes"])
    assert targets["ctx.nbytes, c=0.5 / (x + w)"] == pytest.approx(
        half["nbytes"] / (x.nbytes + w.nbytes))


def test_target_ratios_from_hand_made_records():
    spatial = 1032                                   # x and w

    def row(method, rate, ms, ms_min, nbytes):
        return dict(layer="L", method=method, rate=rate, fwdbwd_ms=ms, fwdbwd_ms_min=ms_min,
                    nbytes=nbytes, spatial_bytes=spatial)
    records = [row("blconv", 0.0, 10.0, 8.0, 1000), row("blconv", 0.5, 6.0, 4.0, 500),
               row("blconv", 0.75, 3.0, 2.0, 250), row("torch", None, 12.0, 10.0, spatial)]
    got = {t["what"]: (t["value"], t.get("value_min")) for t in target_ratios(records)}
    assert got == {
        "blconv fwd+bwd, c=0.5 / c=0": (0.6, 0.5),
        "blconv fwd+bwd, c=0.75 / c=0": (0.3, 0.25),
        "ctx.nbytes, c=0.5 / c=0": (0.5, None),
        "ctx.nbytes, c=0.5 / (x + w)": (500 / 1032, None),
        "ctx.nbytes, c=0 / (x + w)": (1000 / 1032, None),
        "blconv(c=0.5) / torch, fwd+bwd": (0.5, 0.4),
        "blconv(c=0) / torch, fwd+bwd": (10 / 12, 0.8),
    }
    # without torch and c = 0.75, those ratios are left out
    got = {t["what"] for t in target_ratios(records[:2])}
    assert got == {"blconv fwd+bwd, c=0.5 / c=0", "ctx.nbytes, c=0.5 / c=0",
                   "ctx.nbytes, c=0.5 / (x + w)", "ctx.nbytes, c=0 / (x + w)"}


def test_add_parser_registers_bench():
    parser = argparse.ArgumentParser(prog="blconv")
    sub = parser.add_subparsers(dest="command")
    bench.add_parser(sub)
    args = parser.parse_args(["bench", "--layers", "fcn1", "--rates", "0", "0.5", "--no-torch"])
    assert args.command == "bench" and callable(args.func)
    assert args.layers == ["fcn1"] and args.rates == [0.0, 0.5] and args.no_torch


def test_imagenet_stages_are_run_by_name_only():
    # ResNet-18 on ImageNet (He et al. 2016): 3x3 stages of 64@56x56, 128@28x28, 256@14x14
    # and 512@7x7, here at batch 64
    stages = {"imagenet64": (64, 56), "imagenet128": (128, 28), "imagenet256": (256, 14),
              "imagenet512": (512, 7)}
    for name, (c, size) in stages.items():
        layer = bench.LAYERS[name]
        assert layer.x_shape == (64, c, size, size) and layer.w_shape == (c, c, 3, 3)
        assert layer.y_shape == layer.x_shape and not layer.bias
    assert set(bench.DEFAULT_LAYERS) == set(bench.LAYERS) - set(stages)
    parser = argparse.ArgumentParser(prog="blconv")
    bench.add_parser(parser.add_subparsers(dest="command"))
    assert parser.parse_args(["bench"]).layers == list(bench.DEFAULT_LAYERS)
    assert parser.parse_args(["bench", "--layers", "imagenet512"]).layers == ["imagenet512"]


def test_the_shortcut_layers_are_resnet18s_strided_1x1_projections():
    # CIFAR ResNet-18's three downsampling blocks project their input with a 1x1,
    # stride-2 convolution (no bias; batch norm follows)
    for name, (c, size) in {"short128": (64, 32), "short256": (128, 16),
                            "short512": (256, 8)}.items():
        layer = bench.LAYERS[name]
        assert layer.x_shape == (32, c, size, size) and layer.w_shape == (2 * c, c, 1, 1)
        assert layer.y_shape == (32, 2 * c, size // 2, size // 2) and not layer.bias
        assert (layer.stride, layer.padding) == (2, 0) and name in bench.DEFAULT_LAYERS


@pytest.mark.parametrize("argv,message", [
    (["--rates", "1.5"], r"in \[0, 1\)"),
    (["--rates", "half"], "not a number: 'half'"),
    (["--layers", "resnet1024"], "invalid choice"),
    (["--repeats", "0"], ">= 1"),
    (["--methods", "cudnn"], "invalid choice"),
    (["--device", "tpu"], "invalid choice"),
], ids=["rate-range", "rate-text", "layer", "repeats", "method", "device"])
def test_bad_options_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(argv)
    assert exc.value.code == 2
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.parametrize("kwargs,message", [
    ({"layers": ["nope"]}, "layers must be a non-empty subset"),
    ({"rates": [1.0]}, r"rates must be .* in \[0, 1\)"),
    ({"repeats": 0}, "repeats must be an int >= 1"),
    ({"methods": []}, "methods must be a non-empty subset"),
    ({"pause": -1}, "pause must be a number of seconds >= 0"),
    ({"device": "tpu"}, "device must be 'cpu' or 'gpu'"),
], ids=["layer", "rate", "repeats", "methods", "pause", "device"])
def test_run_benchmark_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bench.run_benchmark(**kwargs)


@pytest.mark.skipif(GPU, reason="a GPU is present")
def test_gpu_without_cuda_is_a_clear_error(capsys):
    code = bench.main(["--device", "gpu", "--quick", "--layers", "fcn1", "--no-torch"])
    assert code == 2
    err = capsys.readouterr().err
    expected = "CuPy, which is not installed" if importlib.util.find_spec("cupy") is None \
        else "needs a CUDA device"
    assert expected in err


def test_format_table_shows_missing_values_as_dashes():
    row = {"layer": "fcn1", "method": "torch", "rate": None, "effective_rate": None,
           "repeats": 5, "fwd_ms": 1.0, "fwdbwd_ms": 2.0, "ratio_blconv0": None,
           "ratio_torch": 1.0, "nbytes": 1000, "peak_bytes": None}
    line = bench.format_table({"records": [row]}).splitlines()[-1]
    assert line.split() == ["fcn1", "torch", "-", "-", "5", "1.00", "2.00", "-", "1.00",
                            "0.00", "-"]


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_the_channel_floor_script_times_the_products_inside_the_layer(tmp_path):
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = tmp_path / "floor.json"
    subprocess.run([sys.executable, os.path.join(root, "scripts", "channel_floor.py"),
                    "--layers", "fcn3", "resnet128", "--batch", "2", "--rates", "0", "0.5",
                    "--repeats", "1", "--pause", "0", "--json", str(out)],
                   capture_output=True, text=True, check=True,
                   env=os.environ | {"PYTHONPATH": root})
    records = json.loads(out.read_text())["records"]
    # fcn3: the route blconv picks and the per-frequency route; resnet128: per-frequency only
    assert [(r["layer"], r["route"], r["rate"]) for r in records] == [
        ("fcn3", "picked", 0.0), ("fcn3", "per-frequency", 0.0),
        ("fcn3", "picked", 0.5), ("fcn3", "per-frequency", 0.5),
        ("resnet128", "per-frequency", 0.0), ("resnet128", "per-frequency", 0.5)]
    for r in records:
        assert r["torch_ms"] > 0 and r["ms"] > 0
        if r["route"] == "per-frequency":     # the products are a part of the layer's time
            assert 0 < r["channel_products_ms"] < r["ms"]
    # at batch 2 fcn3 takes the taps route (taps x batch 6): no per-frequency products
    assert all(r["channel_products_ms"] is None for r in records if r["route"] == "picked")


def test_gpu_times_are_read_from_cuda_events_on_the_stream(monkeypatch):
    # a stand-in for CuPy's events: record() stamps the host clock, as an event on an
    # idle stream does; the timer must read the pair around the call, after both are done
    import sys
    import time
    from types import ModuleType, SimpleNamespace

    from blconv.bench import measure
    log = []

    class Event:
        def record(self):
            self.t = time.perf_counter()
            log.append("record")

        def synchronize(self):
            log.append("synchronize")

    cupy = ModuleType("cupy")
    cupy.cuda = SimpleNamespace(Event=Event,
                                get_elapsed_time=lambda a, b: 1e3 * (b.t - a.t))
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    seconds = measure._event_timed(lambda: (log.append("call"), time.sleep(0.02)),
                                   lambda: log.append("sync"))
    assert 0.015 < seconds < 0.5
    assert log == ["sync", "record", "call", "record", "synchronize", "sync"]
