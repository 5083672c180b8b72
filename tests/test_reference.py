"""The spatial oracle against answers worked out by hand, and its gradients against
central differences."""
import numpy as np
import pytest

from blconv.reference import correlate, correlate_backward


@pytest.mark.parametrize("x, w, kw, expected", [
    ([1, 2, 3, 4], [1, -1], {}, [-1, -1, -1]),
    ([1, 2, 3], [1, 1, 1], {"padding": 1}, [3, 6, 5]),
    ([1, 2, 3], [1, 1, 1], {"padding": 1, "stride": 2}, [3, 5]),
    ([1, 2, 3, 4, 5], [1, 1], {"dilation": 2}, [4, 6, 8]),
    ([1, 2, 3], [1, 1], {"padding": "same"}, [3, 5, 3]),     # odd extra zero on the right
    ([1, 2, 3], [2], {"padding": "valid"}, [2, 4, 6]),
], ids=["plain", "pad1", "pad1-stride2", "dilation2", "same-even-kernel", "valid"])
def test_1d_known_answers(x, w, kw, expected):
    y = correlate(np.array([[x]], float), np.array([[w]], float), **kw)
    np.testing.assert_array_equal(y[0, 0], expected)


def test_2d_known_answer_and_bias():
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])             # x[i, j] - x[i+1, j+1] = -4
    y = correlate(x, w, np.array([0.5]))
    np.testing.assert_array_equal(y, np.full((1, 1, 2, 2), -3.5))


def test_groups_known_answer():
    x = np.array([[[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]]])     # two channels
    w = np.array([[[2.0]], [[3.0]]])                           # (C_out=2, C_in/groups=1, 1)
    y = correlate(x, w, groups=2)
    np.testing.assert_array_equal(y[0], [[2, 4, 6], [30, 60, 90]])


def test_1d_gradients_known_answer():
    x = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    w = np.array([[[1.0, -1.0]]])
    dx, dw, db = correlate_backward(np.ones((1, 1, 3)), x, w)
    np.testing.assert_array_equal(dw[0, 0], [6, 9])           # sums of x[0:3], x[1:4]
    np.testing.assert_array_equal(dx[0, 0], [1, 0, 0, -1])
    np.testing.assert_array_equal(db, [3])


@pytest.mark.parametrize("d, kw", [
    (1, dict(stride=2, padding=1, dilation=2, groups=2)),
    (2, dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=1)),
    (2, dict(padding="same", dilation=2, groups=2)),
], ids=["1d", "2d-mixed", "2d-same"])
def test_gradients_central_differences(d, kw):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4) + (7,) * d)
    w = rng.standard_normal((4, 4 // kw["groups"]) + (3,) * d)
    b = rng.standard_normal(4)
    dy = rng.standard_normal(correlate(x, w, b, **kw).shape)
    dx, dw, db = correlate_backward(dy, x, w, **kw)
    loss = lambda x_, w_, b_: np.sum(dy * correlate(x_, w_, b_, **kw))
    h = 1e-6
    for arr, grad, name in ((x, dx, "x"), (w, dw, "w"), (b, db, "b")):
        for idx in [tuple(rng.integers(0, s) for s in arr.shape) for _ in range(5)]:
            args = {"x": x, "w": w, "b": b}
            plus, minus = arr.copy(), arr.copy()
            plus[idx] += h
            minus[idx] -= h
            fd = (loss(**{**{k + "_": v for k, v in args.items()}, name + "_": plus})
                  - loss(**{**{k + "_": v for k, v in args.items()}, name + "_": minus})) / (2 * h)
            assert abs(fd - grad[idx]) < 1e-6 * max(1.0, abs(fd)), (name, idx)
