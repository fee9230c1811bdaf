"""The checker itself: it must pass correct gradients and catch wrong ones (a checker that cannot fail is none)."""
import numpy as np
import pytest

from memnet_np import gradcheck as gc

pytestmark = pytest.mark.gradcheck


def test_numerical_gradient_of_known_function():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    f = lambda: float(np.sum(np.sin(x) * x ** 2))
    num = gc.eval_numerical_gradient(f, x)
    exact = np.cos(x) * x ** 2 + 2 * x * np.sin(x)
    assert gc.rel_error(exact, num) < 1e-8
    x0 = x.copy()
    gc.eval_numerical_gradient(f, x)
    assert np.array_equal(x, x0), "the checker must restore every entry it nudges"


def test_rel_error_definitions():
    assert gc.rel_error(np.array([1.0]), np.array([1.0])) == 0.0
    assert gc.rel_error(np.array([3.0, 4.0]), np.array([3.0, 4.0]) / 2) == pytest.approx(1 / 3)  # a halved gradient
    assert gc.rel_error(np.zeros(3), np.zeros(3)) == 0.0
    assert gc.max_entry_error(np.array([1.0, 2.0]), np.array([1.0, 2.2])) == pytest.approx(0.2 / 4.2)
    # the elementwise form is swamped by round-off on tiny entries; the normwise one is not
    exact = np.array([1.0, 8e-5])
    numeric = exact + np.array([1e-11, 8.5e-11])
    assert gc.max_entry_error(exact, numeric) > 1e-7 > gc.rel_error(exact, numeric)
    with pytest.raises(ValueError, match="shapes differ"):
        gc.rel_error(np.zeros(3), np.zeros(4))


def test_float32_is_refused():
    with pytest.raises(TypeError, match="float64"):
        gc.eval_numerical_gradient(lambda: 0.0, np.zeros(3, dtype=np.float32))


def _matmul_pair():
    def forward(x, W):
        return x @ W, (x, W)

    def backward(dy, cache):
        x, W = cache
        return dy @ W.T, x.T @ dy
    return forward, backward


def test_check_op_passes_a_correct_backward_near_1e_9():
    rng = np.random.default_rng(1)
    fwd, bwd = _matmul_pair()
    errs = gc.check_op(fwd, bwd, {"x": rng.standard_normal((4, 3)), "W": rng.standard_normal((3, 5))},
                       wrt=["x", "W"], rng=rng)
    assert max(errs.values()) < 1e-9, errs


@pytest.mark.parametrize("bug", ["transposed", "halved", "sign"])
def test_check_op_catches_a_wrong_backward(bug):
    rng = np.random.default_rng(2)
    fwd, _ = _matmul_pair()

    def wrong(dy, cache):
        x, W = cache
        dW = x.T @ dy
        if bug == "transposed":          # a square W makes the transposed gradient shape-compatible
            dW = dW.T
        elif bug == "halved":
            dW = dW / 2
        else:
            dW = -dW
        return dy @ W.T, dW
    errs = gc.check_op(fwd, wrong, {"x": rng.standard_normal((4, 3)), "W": rng.standard_normal((3, 3))},
                       wrt=["x", "W"], rng=rng)
    assert errs["x"] < 1e-9
    assert errs["W"] > 1e-2, errs


def test_model_style_check_reports_per_parameter():
    rng = np.random.default_rng(3)
    params = {"w": rng.standard_normal(5), "b": np.array([0.3])}
    t = rng.standard_normal(5)

    def loss_and_grads(p):
        r = p["w"] * t + p["b"][0]
        return float(0.5 * np.sum(r ** 2)), {"w": r * t, "b": np.array([r.sum()])}, {}
    rep = gc.check_gradients(loss_and_grads, params)
    assert set(rep) == {"w", "b"} and all(r.ok for r in rep.values())
    assert "PASS" in gc.format_report(rep)

    def wrong(p):
        loss, g, info = loss_and_grads(p)
        return loss, {"w": g["w"] * 2, "b": g["b"]}, info
    rep = gc.check_gradients(wrong, params)
    assert not rep["w"].ok and rep["b"].ok
    text = gc.format_report(rep)
    assert "WRONG" in text and text.endswith("FAIL")


def test_missing_gradient_is_named():
    params = {"a": np.ones(2), "b": np.ones(2)}
    with pytest.raises(KeyError, match="'b'"):
        gc.check_gradients(lambda p: (0.0, {"a": np.zeros(2)}), params)


def test_kink_is_reported_not_failed():
    # hinge max(0, 1 − w·x) with the margin exactly at the kink for one entry
    x = np.array([1.0, 2.0])
    params = {"w": np.array([0.5, 0.25])}            # w·x = 1: right on the hinge's kink

    def loss_and_grads(p):
        margin = 1.0 - p["w"] @ x
        active = margin > 0
        return float(max(margin, 0.0)), {"w": -x * active}, {}
    rep = gc.check_gradients(loss_and_grads, params)
    r = rep["w"]
    assert r.kinks == 2 and r.checked == 0
    assert r.kink_matches == 2, "the analytic subgradient equals one of the one-sided slopes"


def test_kink_nearby_is_stepped_off():
    # the kink is 3e-6 away: the step h = 1e-5 straddles it, a smaller step does not
    x = np.array([1.0])
    params = {"w": np.array([1.0 - 3e-6])}

    def loss_and_grads(p):
        margin = 1.0 - p["w"] @ x
        return float(max(margin, 0.0)), {"w": -x * (margin > 0)}, {}
    r = gc.check_gradients(loss_and_grads, params)["w"]
    assert r.kinks == 0 and r.checked == 1 and r.rel_error < 1e-7


def test_a_wrong_gradient_is_not_excused_as_a_kink():
    x = np.array([1.0, -2.0, 0.5])
    params = {"w": np.array([0.3, -0.2, 0.1])}       # far from any kink

    def loss_and_grads(p):
        margin = 2.0 - p["w"] @ x
        return float(max(margin, 0.0)), {"w": x * (margin > 0)}, {}   # sign bug
    r = gc.check_gradients(loss_and_grads, params)["w"]
    assert r.kinks == 0 and not r.ok


def test_a_check_that_compared_nothing_does_not_pass():
    # every entry steps across a kink (|x| at 0), so nothing is compared: that is not a pass
    params = {"x": np.zeros(3)}
    rep = gc.check_gradients(lambda p: (float(np.abs(p["x"]).sum()), {"x": np.zeros(3)}, {}), params)
    r = rep["x"]
    assert r.checked == 0 and r.kinks == 3
    assert not r.ok and not r.rel_error < 1e-7
    text = gc.format_report(rep)
    assert "NOTHING CHECKED" in text and text.endswith("FAIL")
    empty = {"e": np.zeros((0, 4))}
    rep = gc.check_gradients(lambda p: (0.0, {"e": np.zeros((0, 4))}, {}), empty)
    assert rep["e"].checked == 0 and not rep["e"].ok
    assert gc.format_report({}).endswith("FAIL")
    assert np.isnan(gc.rel_error(np.zeros(0), np.zeros(0)))
