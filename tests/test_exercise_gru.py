"""Exercise 5 (the gated GRU step's backward): the solution passes, the stub fails, and each typical mistake, made
in a copy of the solution, fails with the gradients it breaks named WRONG and the mistake recognised."""
from pathlib import Path

import numpy as np
import pytest

from exercise_runs import edited, run_grade
from memnet_np import dmn, ops
from memnet_np.exercises import gru as X

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "tutorials/exercises/solutions/05_gru_backward.py"
STUB = ROOT / "tutorials/exercises/05_gru_backward.py"
ALL = ("dx", "dh_prev", "dWx", "dWh", "db", "dg")


def test_solution_passes_and_stub_fails():
    ok, out = run_grade(SOLUTION)
    assert ok and "PASS  (all 10 gradients right on all 3 cases)" in out, out
    for g in ALL:
        assert f"gru_backward: {g}" in out
    ok, out = run_grade(STUB)
    assert not ok and "not implemented yet: gru_backward, gate_features_backward" in out, out


def test_the_reference_variant_is_the_library_backward_and_every_mistake_changes_something():
    """The checker's catalogue of mistakes is written from the equations, not through ops: with no mistake it must
    be the library's backward, and each mistake must really be wrong (else it could never be recognised)."""
    rng = np.random.default_rng(3)
    for case in X._gru_cases(rng):
        h, cache = ops.gru_forward(**{k: case[k] for k in ("x", "h_prev", "Wx", "Wh", "b", "g")})
        dh = rng.standard_normal(h.shape)
        right = X.gru_backward_variant(dh, cache)
        for mine, lib in zip(right, ops.gru_backward(dh, cache)):
            assert np.allclose(mine, lib, rtol=1e-12, atol=1e-14)
        for m in X.MISTAKES:
            wrong = X.gru_backward_variant(dh, cache, m)
            assert any(not np.allclose(a, b) for a, b in zip(wrong, right)), m
    for case in X._feature_cases(rng):
        z, cache = dmn.gate_features_forward(case["c"], case["m"], case["q"], case["Wb"])
        dz = rng.standard_normal(z.shape)
        right = X.feature_backward_variant(dz, cache)
        for mine, lib in zip(right, dmn.gate_features_backward(dz, cache)):
            assert np.allclose(mine, lib, rtol=1e-12, atol=1e-14)
        for m in X.FEATURE_MISTAKES:
            wrong = X.feature_backward_variant(dz, cache, m)
            assert any(np.shape(a) != np.shape(b) or not np.allclose(a, b) for a, b in zip(wrong, right)), m


# name: (replacements in the solution, gradients that must be WRONG, a phrase in the report)
MISTAKES = {
    "reset path missing": ([("dpre_r = dpre_h * Uh * r * (1 - r)", "dpre_r = 0 * dpre_h")],
                           {"dx", "dh_prev", "dWx", "dWh", "db"}, "the path through the reset gate is missing"),
    "u and 1 - u swapped": ([("dhh = a * dh ", "dhh = (1 - a) * dh "), ("da = (hh - h_prev) * dh",
                                                                        "da = (h_prev - hh) * dh"),
                             ("dh_prev = (1 - a) * dh ", "dh_prev = a * dh ")],
                            set(ALL), "u and 1 − u are swapped"),
    "no direct path": ([("dh_prev = (1 - a) * dh ", "dh_prev = 0 * dh ")], {"dh_prev"},
                       "also hands (1 − a) ⊙ dh straight to h_prev"),
    "no recurrent path": ([("dh_prev = dh_prev + dhw @ Wh", "dh_prev = dh_prev + 0")], {"dh_prev"},
                          "h_prev also feeds every gate through U h_prev"),
    "tanh derivative": ([("dpre_h = dhh * (1 - hh ** 2)", "dpre_h = dhh * (1 - hh)")],
                        {"dx", "dh_prev", "dWx", "dWh", "db"}, "the derivative of tanh is 1 − h̃²"),
    "candidate without r": ([("dUh = dpre_h * r ", "dUh = dpre_h ")], {"dh_prev", "dWh"},
                            "carries the factor r"),
    "factor g missing": ([("du = g[:, None] * da", "du = da")], {"dx", "dh_prev", "dWx", "dWh", "db"},
                         "the factor g is missing"),
    "dg without u": ([("dg = (da * u).sum(1)", "dg = da.sum(1)")], {"dg"}, "the factor u is missing"),
    "dg sign": ([("dg = (da * u).sum(1)", "dg = -(da * u).sum(1)")], {"dg"}, "dg has the wrong sign"),
}


FEATURES = ("dc", "dm", "dq", "dWb")
FEATURE_MISTAKES = {
    "|x|' taken as 1": ([("sq, sm = np.sign(c - qf), np.sign(c - mf)", "sq, sm = np.ones_like(c), np.ones_like(c)")],
                        {"dc", "dm", "dq"}, "the derivative of |x| is sign(x), not 1"),
    "q's minus sign in |c - q|": ([("(d_q + d_cq * c - d_aq * sq)", "(d_q + d_cq * c + d_aq * sq)")], {"dq"},
                                  "|c − q| depends on q with a minus sign"),
    "direct blocks forgotten": ([("dc = d_c + d_cq", "dc = d_cq"), ("(d_q + d_cq * c", "(d_cq * c"),
                                 ("(d_m + d_cm * c", "(d_cm * c")], {"dc", "dm", "dq"},
                                "z also holds c, m and q themselves"),
    "W_b transposed for q": ([("+ gq @ Wb ", "+ gq @ Wb.T ")], {"dq"}, "(Σ_f dz_f c_f) @ W_b for row vectors"),
    "one bilinear term in dW_b": ([("dWb = gq.T @ q + gm.T @ m", "dWb = gq.T @ q")], {"dWb"},
                                  "W_b appears twice"),
}


def _verdicts(out, function, names):
    lines = out.splitlines()
    return {g: "WRONG" in next(l for l in lines if l.strip().startswith(f"{function}: {g} ")) for g in names}


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_each_typical_mistake_fails_and_is_named(tmp_path, name):
    replacements, wrong, phrase = MISTAKES[name]
    ok, out = run_grade(edited(SOLUTION, tmp_path, name.replace(" ", "_"), *replacements))
    assert not ok, out
    assert _verdicts(out, "gru_backward", ALL) == {g: g in wrong for g in ALL}, out
    assert not any(_verdicts(out, "gate_features_backward", FEATURES).values()), out
    assert phrase in out, out


@pytest.mark.parametrize("name", sorted(FEATURE_MISTAKES))
def test_each_typical_feature_mistake_fails_and_is_named(tmp_path, name):
    replacements, wrong, phrase = FEATURE_MISTAKES[name]
    ok, out = run_grade(edited(SOLUTION, tmp_path, "f" + str(sorted(FEATURE_MISTAKES).index(name)), *replacements))
    assert not ok, out
    assert _verdicts(out, "gate_features_backward", FEATURES) == {g: g in wrong for g in FEATURES}, out
    assert not any(_verdicts(out, "gru_backward", ALL).values()), out
    assert phrase in out, out


def test_gate_features_backward_with_one_or_two_hidden_units():
    """z's last two entries are the bilinear numbers, not another H-wide block, also when H ≤ 2."""
    rng = np.random.default_rng(7)
    for H in (1, 2, 3):
        inputs = {"c": rng.standard_normal((2, 3, H)), "m": rng.standard_normal((2, H)),
                  "q": rng.standard_normal((2, H)), "Wb": rng.standard_normal((H, H))}
        from memnet_np import gradcheck
        errs = gradcheck.check_op(dmn.gate_features_forward, dmn.gate_features_backward, inputs,
                                  wrt=["c", "m", "q", "Wb"], rng=rng)
        assert max(errs.values()) < 1e-7, (H, errs)


def test_calling_the_library_features_backward_is_refused(tmp_path):
    path = edited(SOLUTION, tmp_path, "library_features",
                  ("    c, m, q, Wb = cache\n", "    from memnet_np import dmn\n    dmn.gate_features_backward(dz, "
                                                "dmn.gate_features_forward(*cache)[1])\n    c, m, q, Wb = cache\n"))
    ok, out = run_grade(path)
    assert not ok and "uses dmn.gate_features_backward" in out, out


def test_calling_the_library_backward_is_refused(tmp_path):
    path = edited(SOLUTION, tmp_path, "library",
                  ("    x, h_prev, Wx, Wh, g, r, hh, u, a, Uh = cache\n",
                   "    from memnet_np import ops\n    ops.gru_backward(dh, ops.gru_forward("
                   "cache.x, cache.h_prev, cache.Wx, cache.Wh, 0 * cache.Wx[:, 0], "
                   "cache.g)[1])\n    x, h_prev, Wx, Wh, g, r, hh, u, a, Uh = cache\n"))
    ok, out = run_grade(path)
    assert not ok and "uses ops.gru_backward" in out, out
