"""The LSTM cell of ops.py: forward against the equations written out per unit, backward against finite differences."""
import numpy as np
import pytest

from memnet_np import ops
from memnet_np.gradcheck import check_op

TOL = 1e-7


def lstm_inputs(rng, N=3, D=4, H=5):
    return {"x": rng.standard_normal((N, D)), "h_prev": rng.standard_normal((N, H)),
            "c_prev": rng.standard_normal((N, H)) * 2, "Wx": rng.standard_normal((4 * H, D)) * 0.7,
            "Wh": rng.standard_normal((4 * H, H)) * 0.7, "b": rng.standard_normal(4 * H)}


def joined_forward(*args):
    """(h, c) side by side as one output, so one random upstream gradient covers both."""
    (h, c), cache = ops.lstm_forward(*args)
    return np.concatenate([h, c], axis=-1), cache


def joined_backward(dhc, cache):
    H = cache.h_prev.shape[-1]
    return ops.lstm_backward(dhc[:, :H], dhc[:, H:], cache)


@pytest.mark.gradcheck
def test_lstm_gradients_of_every_input():
    r = np.random.default_rng(0)
    inputs = lstm_inputs(r)
    errs = check_op(joined_forward, joined_backward, inputs, list(inputs), r)
    assert set(errs) == set(inputs)
    assert max(errs.values()) < TOL, errs


@pytest.mark.gradcheck
def test_lstm_gradients_through_h_only_when_dc_is_none():
    r = np.random.default_rng(1)
    inputs = lstm_inputs(r, N=2, D=3, H=4)
    errs = check_op(lambda *a: (ops.lstm_forward(*a)[0][0], ops.lstm_forward(*a)[1]),
                    lambda dh, cache: ops.lstm_backward(dh, None, cache), inputs, list(inputs), r)
    assert max(errs.values()) < TOL, errs


@pytest.mark.gradcheck
def test_lstm_gradients_over_three_steps_with_shared_weights():
    """Backpropagation through time: the cell applied three times, weight gradients summed over the steps."""
    r = np.random.default_rng(2)
    N, D, H, T = 2, 3, 4, 3
    xs = r.standard_normal((T, N, D))
    p = {"Wx": r.standard_normal((4 * H, D)) * 0.8, "Wh": r.standard_normal((4 * H, H)) * 0.8,
         "b": r.standard_normal(4 * H), "h0": r.standard_normal((N, H)), "c0": r.standard_normal((N, H))}
    dhs = r.standard_normal((T, N, H))

    def loss(p):
        h, c, caches, total = p["h0"], p["c0"], [], 0.0
        for t in range(T):
            (h, c), cache = ops.lstm_forward(xs[t], h, c, p["Wx"], p["Wh"], p["b"])
            caches.append(cache)
            total += float(np.sum(h * dhs[t]))
        return total, caches

    _, caches = loss(p)
    g = {k: np.zeros_like(v) for k, v in p.items()}
    dh, dc = np.zeros((N, H)), np.zeros((N, H))
    for t in reversed(range(T)):
        _, dh, dc, dWx, dWh, db = ops.lstm_backward(dh + dhs[t], dc, caches[t])
        g["Wx"] += dWx
        g["Wh"] += dWh
        g["b"] += db
    g["h0"], g["c0"] = dh, dc
    from memnet_np.gradcheck import check_gradients, format_report
    report = check_gradients(lambda q: (loss(q)[0], g), p, max_entries=None)
    assert all(c.rel_error < TOL for c in report.values()), format_report(report)


def test_lstm_forward_matches_the_equations_unit_by_unit():
    r = np.random.default_rng(3)
    a = lstm_inputs(r, N=2, D=3, H=2)
    (h, c), cache = ops.lstm_forward(*a.values())
    sig = lambda v: 1 / (1 + np.exp(-v))
    H = 2
    for n in range(2):
        for u in range(H):
            z = [a["Wx"][k * H + u] @ a["x"][n] + a["Wh"][k * H + u] @ a["h_prev"][n] + a["b"][k * H + u]
                 for k in range(4)]
            i, f, o, g = sig(z[0]), sig(z[1]), sig(z[2]), np.tanh(z[3])
            c_ref = f * a["c_prev"][n, u] + i * g
            assert c[n, u] == pytest.approx(c_ref, abs=1e-12)
            assert h[n, u] == pytest.approx(o * np.tanh(c_ref), abs=1e-12)


def test_lstm_does_not_modify_its_inputs():
    r = np.random.default_rng(4)
    a = lstm_inputs(r)
    before = {k: v.copy() for k, v in a.items()}
    (h, c), cache = ops.lstm_forward(*a.values())
    dh, dc = r.standard_normal(h.shape), r.standard_normal(c.shape)
    dh0, dc0 = dh.copy(), dc.copy()
    ops.lstm_backward(dh, dc, cache)
    assert all(np.array_equal(before[k], a[k]) for k in a)
    assert np.array_equal(dh, dh0) and np.array_equal(dc, dc0)


def test_lstm_rejects_mismatched_weights():
    r = np.random.default_rng(5)
    a = lstm_inputs(r)
    a["Wh"] = a["Wh"][:, :-1]
    with pytest.raises(ValueError, match="Wh"):
        ops.lstm_forward(*a.values())
