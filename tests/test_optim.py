"""Optimisers and clipping: updates against numbers worked out by hand, state round trips, and bad inputs."""
import math

import numpy as np
import pytest

from memnet_np import optim


def tiny():
    params = {"W": np.array([[1.0, -2.0], [0.5, 0.0]]), "b": np.array([0.3, -0.1])}
    grads = {"W": np.array([[0.5, -1.0], [2.0, 0.0]]), "b": np.array([-0.4, 0.1])}
    return params, grads


def copy(d):
    return {k: v.copy() for k, v in d.items()}


# ----------------------------------------------------------------------------------------------------------------
# SGD


def test_sgd_two_steps_by_hand():
    w = {"w": np.array([1.0, -2.0])}
    g = {"w": np.array([0.5, -1.0])}
    opt = optim.SGD(lr=0.1)
    opt.step(w, g)                                            # 1 − 0.05, −2 + 0.1
    np.testing.assert_allclose(w["w"], [0.95, -1.9])
    opt.step(w, g)
    np.testing.assert_allclose(w["w"], [0.9, -1.8])
    assert opt.state == {"velocity": {}}                      # no velocity without momentum


def test_sgd_momentum_two_steps_by_hand():
    w = {"w": np.array([1.0])}
    opt = optim.SGD(lr=0.1, momentum=0.9)
    opt.step(w, {"w": np.array([2.0])})                       # v = −0.2, w = 0.8
    np.testing.assert_allclose(opt.state["velocity"]["w"], [-0.2])
    np.testing.assert_allclose(w["w"], [0.8])
    opt.step(w, {"w": np.array([1.0])})                       # v = 0.9·(−0.2) − 0.1 = −0.28, w = 0.52
    np.testing.assert_allclose(opt.state["velocity"]["w"], [-0.28])
    np.testing.assert_allclose(w["w"], [0.52])


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_minimises_a_quadratic(momentum):
    # f(w) = ½ (w − c)ᵀ A (w − c), gradient A (w − c); minimum at c
    A = np.array([[3.0, 0.5], [0.5, 1.0]])
    c = np.array([1.0, -2.0])
    params = {"w": np.zeros(2)}
    opt = optim.SGD(lr=0.1, momentum=momentum)
    f0 = 0.5 * c @ A @ c
    for _ in range(300):
        opt.step(params, {"w": A @ (params["w"] - c)})
    d = params["w"] - c
    assert 0.5 * d @ A @ d < 1e-10 * f0
    np.testing.assert_allclose(params["w"], c, atol=1e-5)


def test_step_schedule_halves_every_25_epochs():
    lrs = [optim.step_schedule(0.01, e, 25) for e in (0, 24, 25, 49, 50, 99)]
    assert lrs == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.0025, 0.01 * 0.5 ** 3])
    assert optim.step_schedule(1.0, 30, 15, factor=0.1) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="every"):
        optim.step_schedule(0.01, 3, 0)
    with pytest.raises(ValueError, match="epoch"):
        optim.step_schedule(0.01, -1, 25)
    with pytest.raises(ValueError, match="lr0"):
        optim.step_schedule(0.0, 1, 25)


def test_lr_is_a_plain_attribute_the_loop_sets():
    w = {"w": np.array([0.0])}
    opt = optim.SGD(0.1)
    opt.lr = 0.5
    opt.step(w, {"w": np.array([1.0])})
    np.testing.assert_allclose(w["w"], [-0.5])
    opt.lr = 0.0
    with pytest.raises(ValueError, match="lr"):
        opt.step(w, {"w": np.array([1.0])})


# ----------------------------------------------------------------------------------------------------------------
# Adam


def test_adam_two_steps_by_hand():
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    w = {"w": np.array([1.0, 1.0])}
    opt = optim.Adam(lr=lr, beta1=b1, beta2=b2, eps=eps)
    g1, g2 = np.array([2.0, -0.5]), np.array([1.0, 0.5])
    opt.step(w, {"w": g1})
    # t=1: m = 0.1 g1, v = 0.001 g1², m̂ = g1, v̂ = g1², step = lr g1/(|g1| + eps)
    np.testing.assert_allclose(opt.state["m"]["w"], [0.2, -0.05])
    np.testing.assert_allclose(opt.state["v"]["w"], [0.004, 0.00025])
    np.testing.assert_allclose(w["w"], [1.0 - 0.1 * 2 / (2 + eps), 1.0 + 0.1 * 0.5 / (0.5 + eps)], rtol=1e-15)
    w_after_1 = w["w"].copy()
    opt.step(w, {"w": g2})
    # t=2, entry 0: m = 0.9·0.2 + 0.1·1 = 0.28, v = 0.999·0.004 + 0.001·1 = 0.004996
    #   m̂ = 0.28/0.19, v̂ = 0.004996/0.001999
    # entry 1: m = 0.9·(−0.05) + 0.1·0.5 = 0.005, v = 0.999·0.00025 + 0.001·0.25 = 0.00049975
    assert opt.state["t"] == 2
    np.testing.assert_allclose(opt.state["m"]["w"], [0.28, 0.005])
    np.testing.assert_allclose(opt.state["v"]["w"], [0.004996, 0.00049975])
    m_hat = np.array([0.28, 0.005]) / 0.19
    v_hat = np.array([0.004996, 0.00049975]) / (1 - 0.999 ** 2)
    np.testing.assert_allclose(w["w"], w_after_1 - lr * m_hat / (np.sqrt(v_hat) + eps), rtol=1e-14)
    np.testing.assert_allclose(w["w"], [0.9 - 0.1 * (0.28 / 0.19) / math.sqrt(0.004996 / 0.001999),
                                        1.1 - 0.1 * (0.005 / 0.19) / math.sqrt(0.00049975 / 0.001999)], rtol=1e-7)


def test_adam_first_step_is_lr_times_sign():
    rng = np.random.default_rng(0)
    g = rng.choice([-1.0, 1.0], size=(4, 5)) * 10.0 ** rng.uniform(-2, 2, size=(4, 5))   # |g| in 1e-2 .. 1e2
    w0 = rng.standard_normal((4, 5))
    params = {"w": w0.copy()}
    optim.Adam(lr=1e-3).step(params, {"w": g})
    # bias correction makes m̂ = g and v̂ = g² at t = 1, so Δw = −lr·g/(|g| + ε) = −lr·sign(g) up to ε/|g| ≤ 1e-6,
    # whatever the size of g (without the correction the first step would be lr·0.1/√0.001 ≈ 3.2·lr)
    np.testing.assert_allclose(params["w"] - w0, -1e-3 * g / (np.abs(g) + 1e-8), rtol=1e-9)
    np.testing.assert_allclose(params["w"] - w0, -1e-3 * np.sign(g), rtol=1e-6)


# ----------------------------------------------------------------------------------------------------------------
# RMSProp (Graves 2013)


def rmsprop_loop(w, grads, lr, decay, momentum, eps):
    """Eqs 38–41 of Graves 2013 written with scalar loops, one entry at a time."""
    w = [float(x) for x in w]
    n, gbar, delta = [0.0] * len(w), [0.0] * len(w), [0.0] * len(w)
    for g in grads:
        for i in range(len(w)):
            n[i] = decay * n[i] + (1 - decay) * g[i] ** 2
            gbar[i] = decay * gbar[i] + (1 - decay) * g[i]
            delta[i] = momentum * delta[i] - lr * g[i] / math.sqrt(n[i] - gbar[i] ** 2 + eps)
            w[i] = w[i] + delta[i]
    return w, n, gbar, delta


def test_rmsprop_two_steps_by_hand():
    w = {"w": np.array([1.0])}
    opt = optim.RMSProp(lr=0.1, decay=0.5, momentum=0.5, eps=0.01)
    opt.step(w, {"w": np.array([2.0])})
    # n = 0.5·4 = 2, ḡ = 0.5·2 = 1, Δ = −0.1·2/√(2 − 1 + 0.01) = −0.2/√1.01
    d1 = -0.2 / math.sqrt(1.01)
    np.testing.assert_allclose(w["w"], [1.0 + d1], rtol=1e-15)
    opt.step(w, {"w": np.array([-1.0])})
    # n = 0.5·2 + 0.5·1 = 1.5, ḡ = 0.5·1 − 0.5 = 0, Δ = 0.5 d1 + 0.1/√(1.5 + 0.01)
    d2 = 0.5 * d1 + 0.1 / math.sqrt(1.51)
    np.testing.assert_allclose(opt.state["n"]["w"], [1.5])
    np.testing.assert_allclose(opt.state["gbar"]["w"], [0.0])
    np.testing.assert_allclose(opt.state["delta"]["w"], [d2], rtol=1e-14)
    np.testing.assert_allclose(w["w"], [1.0 + d1 + d2], rtol=1e-14)


def test_rmsprop_matches_loop_implementation():
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal(6)
    grads = [rng.standard_normal(6) for _ in range(7)]
    params = {"w": w0.copy()}
    opt = optim.RMSProp()                                     # the NTM paper's settings
    assert (opt.lr, opt.decay, opt.momentum, opt.eps) == (1e-4, 0.95, 0.9, 1e-4)
    for g in grads:
        opt.step(params, {"w": g})
    w, n, gbar, delta = rmsprop_loop(w0, grads, 1e-4, 0.95, 0.9, 1e-4)
    np.testing.assert_allclose(params["w"], w, rtol=1e-12)
    np.testing.assert_allclose(opt.state["n"]["w"], n, rtol=1e-12)
    np.testing.assert_allclose(opt.state["gbar"]["w"], gbar, rtol=1e-12)
    np.testing.assert_allclose(opt.state["delta"]["w"], delta, rtol=1e-12)


# ----------------------------------------------------------------------------------------------------------------
# Behaviour shared by all optimisers


ALL = [lambda **kw: optim.SGD(0.1, momentum=0.9, **kw), lambda **kw: optim.Adam(0.01, **kw),
       lambda **kw: optim.RMSProp(0.01, **kw)]


@pytest.mark.parametrize("make", ALL)
def test_step_updates_params_in_place_and_leaves_grads_alone(make):
    params, grads = tiny()
    W_obj = params["W"]
    g0 = copy(grads)
    make().step(params, grads)
    assert params["W"] is W_obj                               # the same array, changed in place
    assert not np.allclose(params["W"], tiny()[0]["W"])
    for k in grads:
        np.testing.assert_array_equal(grads[k], g0[k])


@pytest.mark.parametrize("make", ALL)
def test_skip_leaves_named_params_unchanged(make):
    params, grads = tiny()
    b0 = params["b"].copy()
    opt = make(skip=["b"])
    opt.step(params, grads)
    opt.step(params, {"W": grads["W"]})                       # a skipped parameter needs no gradient
    np.testing.assert_array_equal(params["b"], b0)
    assert not np.allclose(params["W"], tiny()[0]["W"])
    with pytest.raises(ValueError, match="'nope'"):
        make(skip=["nope"]).step(params, grads)


@pytest.mark.parametrize("make", ALL)
def test_state_dict_round_trip_continues_identically(make, tmp_path):
    rng = np.random.default_rng(2)
    params, _ = tiny()
    grads_seq = [{k: rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(6)]
    a = make()
    pa = copy(params)
    for g in grads_seq[:3]:
        a.step(pa, g)
    np.savez(tmp_path / "opt.npz", **a.state_dict())
    with np.load(tmp_path / "opt.npz", allow_pickle=False) as f:
        saved = dict(f)
    b = make()
    b.lr = 123.0                                              # overwritten by the load
    b.load_state_dict(saved)
    assert b.lr == a.lr
    pb = copy(pa)
    for g in grads_seq[3:]:
        a.step(pa, g)
        b.step(pb, g)
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k])


def test_state_dict_is_flat_floats_and_copies():
    params, grads = tiny()
    opt = optim.Adam(0.01)
    opt.step(params, grads)
    sd = opt.state_dict()
    assert set(sd) == {"lr", "beta1", "beta2", "eps", "t", "m/W", "m/b", "v/W", "v/b"}
    assert sd["t"] == 1.0 and isinstance(sd["lr"], float)
    sd["m/W"][:] = 99.0
    assert not np.any(opt.state["m"]["W"] == 99.0)
    with pytest.raises(ValueError, match="unexpected entry 'velocity/W'"):
        optim.Adam().load_state_dict({**opt.state_dict(), "velocity/W": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="beta2"):
        optim.Adam().load_state_dict({"lr": 0.1, "beta1": 0.9, "eps": 1e-8, "t": 0.0})


def test_float32_params_stay_float32():
    params = {"w": np.ones(3, dtype=np.float32)}
    for opt in (optim.SGD(0.1, momentum=0.5), optim.Adam(0.1), optim.RMSProp(0.1)):
        opt.step(params, {"w": np.array([1.0, -1.0, 0.5])})   # a float64 gradient
        assert params["w"].dtype == np.float32


def test_optimizer_bad_arguments():
    with pytest.raises(ValueError, match="lr"):
        optim.SGD(lr=0.0)
    with pytest.raises(ValueError, match="lr"):
        optim.Adam(lr=-1e-3)
    with pytest.raises(ValueError, match="lr"):
        optim.RMSProp(lr=float("nan"))
    with pytest.raises(ValueError, match="momentum"):
        optim.SGD(0.1, momentum=1.0)
    with pytest.raises(ValueError, match="beta1"):
        optim.Adam(beta1=1.5)
    with pytest.raises(ValueError, match="decay"):
        optim.RMSProp(decay=-0.1)
    with pytest.raises(ValueError, match="eps"):
        optim.RMSProp(eps=0.0)
    params, grads = tiny()
    with pytest.raises(ValueError, match=r"no gradient for parameters \['b'\]"):
        optim.SGD(0.1).step(params, {"W": grads["W"]})
    with pytest.raises(ValueError, match="unknown parameters"):
        optim.SGD(0.1).step(params, {**grads, "extra": np.zeros(1)})
    with pytest.raises(ValueError, match=r"gradient 'b' has shape \(3,\)"):
        optim.SGD(0.1).step(params, {**grads, "b": np.zeros(3)})


@pytest.mark.parametrize("make", ALL)
def test_non_finite_gradient_raises_and_changes_nothing(make):
    params, grads = tiny()
    p0 = copy(params)
    grads["b"] = np.array([0.1, np.nan])
    opt = make()
    with pytest.raises(FloatingPointError, match=r"non-finite gradient in 'b'"):
        opt.step(params, grads)
    with pytest.raises(ValueError, match=r"'b'"):             # the same error is also a ValueError
        opt.step(params, grads)
    for k in params:
        np.testing.assert_array_equal(params[k], p0[k])


def test_check_finite_message():
    optim.check_finite({"a": np.ones(3), "i": np.arange(3)})
    with pytest.raises(FloatingPointError, match=r"non-finite parameter in 'A' \(1 NaN, 1 inf of 4 entries; "
                                                 r"first at index \(0, 1\)\)"):
        optim.check_finite({"ok": np.zeros(2), "A": np.array([[0.0, np.inf], [np.nan, 1.0]])}, what="parameter")


# ----------------------------------------------------------------------------------------------------------------
# Clipping


def two_matrices():
    return {"A": np.array([[3.0, 4.0]]), "B": np.array([[0.0, 0.6], [0.8, 0.0]])}   # norms 5 and 1


def test_clip_by_norm_per_matrix():
    grads = two_matrices()
    g0 = copy(grads)
    clipped, norms = optim.clip_by_norm_per_matrix(grads, 2.0)
    assert norms == pytest.approx({"A": 5.0, "B": 1.0})       # norms before clipping
    np.testing.assert_allclose(clipped["A"], [[1.2, 1.6]])    # rescaled to norm 2
    assert np.linalg.norm(clipped["A"]) == pytest.approx(2.0)
    np.testing.assert_array_equal(clipped["B"], g0["B"])      # below the limit: untouched
    assert clipped is not grads
    for k in grads:
        np.testing.assert_array_equal(grads[k], g0[k])        # input not mutated


def test_clip_by_global_norm():
    grads = two_matrices()
    g0 = copy(grads)
    clipped, total = optim.clip_by_global_norm(grads, 2.0)
    assert total == pytest.approx(math.sqrt(26.0))
    s = 2.0 / math.sqrt(26.0)
    np.testing.assert_allclose(clipped["A"], g0["A"] * s)
    np.testing.assert_allclose(clipped["B"], g0["B"] * s)     # scaled too, although its own norm is below 2
    assert math.sqrt(sum(np.sum(g ** 2) for g in clipped.values())) == pytest.approx(2.0)
    for k in grads:
        np.testing.assert_array_equal(grads[k], g0[k])
    same, total = optim.clip_by_global_norm(grads, 10.0)      # below the limit: untouched
    assert total == pytest.approx(math.sqrt(26.0)) and same is not grads
    for k in grads:
        np.testing.assert_array_equal(same[k], g0[k])


def test_global_and_per_matrix_differ():
    per, _ = optim.clip_by_norm_per_matrix(two_matrices(), 2.0)
    glob, _ = optim.clip_by_global_norm(two_matrices(), 2.0)
    np.testing.assert_allclose(np.linalg.norm(per["B"]), 1.0)
    np.testing.assert_allclose(np.linalg.norm(glob["B"]), 2.0 / math.sqrt(26.0))
    assert not np.allclose(per["A"], glob["A"])


def test_clip_by_value():
    grads = {"g": np.array([-20.0, -10.0, -3.0, 0.0, 9.99, 11.0])}
    g0 = copy(grads)
    clipped = optim.clip_by_value(grads, 10.0)
    np.testing.assert_array_equal(clipped["g"], [-10.0, -10.0, -3.0, 0.0, 9.99, 10.0])
    np.testing.assert_array_equal(grads["g"], g0["g"])
    assert clipped["g"] is not grads["g"]


def test_clipping_bad_arguments():
    g = two_matrices()
    with pytest.raises(ValueError, match="max_norm"):
        optim.clip_by_norm_per_matrix(g, 0.0)
    with pytest.raises(ValueError, match="max_norm"):
        optim.clip_by_global_norm(g, -1.0)
    with pytest.raises(ValueError, match="limit"):
        optim.clip_by_value(g, 0)
    bad = {**g, "C": np.array([1.0, np.inf])}
    for clip in (lambda x: optim.clip_by_norm_per_matrix(x, 1.0), lambda x: optim.clip_by_global_norm(x, 1.0),
                 lambda x: optim.clip_by_value(x, 1.0)):
        with pytest.raises(ValueError, match="non-finite gradient in 'C'"):
            clip(bad)


def test_clipping_keeps_dtype():
    g = {"A": np.full((2, 2), 100.0, dtype=np.float32)}
    assert optim.clip_by_norm_per_matrix(g, 1.0)[0]["A"].dtype == np.float32
    assert optim.clip_by_global_norm(g, 1.0)[0]["A"].dtype == np.float32
    assert optim.clip_by_value(g, 1.0)["A"].dtype == np.float32


def test_finite_arrays_whose_sum_overflows_are_still_finite():
    optim.check_finite({"big": np.array([1e308, 1e308, -1e308]), "small": np.ones(3)})   # no error, no warning
    with pytest.raises(optim.NonFiniteError, match=r"gradient in 'second' \(1 NaN, 0 inf"):
        optim.check_finite({"first": np.array([1e308, 1e308]), "second": np.array([0.0, np.nan])})


# ----------------------------------------------------------------------------------------------------------------
# Spectral clipping (the official MemN2N code's MATLAB `norm(X)`) and matrices made of several arrays


def test_spectral_norm_is_the_largest_singular_value_of_the_stacked_blocks():
    rng = np.random.default_rng(3)
    a, t = rng.standard_normal((9, 4)), rng.standard_normal((5, 4))
    assert math.isclose(optim.spectral_norm(a), np.linalg.svd(a, compute_uv=False)[0], rel_tol=1e-12)
    stacked = np.concatenate([a, t])
    assert math.isclose(optim.spectral_norm(a, t), np.linalg.svd(stacked, compute_uv=False)[0], rel_tol=1e-12)
    wide = rng.standard_normal((2, 7))                        # fewer rows than columns: the other Gram matrix
    assert math.isclose(optim.spectral_norm(wide), np.linalg.svd(wide, compute_uv=False)[0], rel_tol=1e-12)
    v = rng.standard_normal(6)
    assert math.isclose(optim.spectral_norm(v), np.linalg.norm(v), rel_tol=1e-12)
    assert optim.spectral_norm(np.zeros((3, 2))) == 0.0
    # a rank-one matrix: ‖u vᵀ‖₂ = ‖u‖‖v‖, and then the Frobenius norm is the same number
    u, w = rng.standard_normal(5), rng.standard_normal(3)
    assert math.isclose(optim.spectral_norm(np.outer(u, w)), np.linalg.norm(u) * np.linalg.norm(w), rel_tol=1e-12)


def test_spectral_clipping_by_hand_and_groups_clipped_as_one_matrix():
    # diag(30, 40) has spectral norm 40, Frobenius 50: max 20 halves it spectrally, scales by 0.4 in Frobenius
    g = {"A": np.diag([30.0, 40.0]), "H": np.array([[1.0, 0.0], [0.0, 1.0]])}
    spec, norms = optim.clip_by_norm_per_matrix(g, 20.0, norm="spectral")
    assert np.allclose(spec["A"], np.diag([15.0, 20.0])) and norms["A"] == pytest.approx(40.0)
    assert spec["H"] is g["H"]                                # under the limit: shared, not copied
    fro, norms = optim.clip_by_norm_per_matrix(g, 20.0)
    assert np.allclose(fro["A"], np.diag([12.0, 16.0])) and norms["A"] == pytest.approx(50.0)
    # A = [[30, 0]] and TA = [[0, 40]] are the row blocks of diag(30, 40): clipped together, by one factor
    g = {"A": np.array([[30.0, 0.0]]), "TA": np.array([[0.0, 40.0]]), "H": np.eye(2) * 100}
    got, norms = optim.clip_by_norm_per_matrix(g, 20.0, norm="spectral", groups=[("A", "TA")])
    assert np.allclose(got["A"], [[15.0, 0.0]]) and np.allclose(got["TA"], [[0.0, 20.0]])
    assert norms["A"] == norms["TA"] == pytest.approx(40.0)
    assert np.allclose(got["H"], np.eye(2) * 20) and norms["H"] == pytest.approx(100.0)
    frob, norms = optim.clip_by_norm_per_matrix(g, 20.0, groups=[("A", "TA")])   # Frobenius of the stack: 50
    assert np.allclose(frob["A"], [[12.0, 0.0]]) and np.allclose(frob["TA"], [[0.0, 16.0]])
    assert norms["A"] == norms["TA"] == pytest.approx(50.0)
    alone, _ = optim.clip_by_norm_per_matrix(g, 20.0, norm="spectral")   # each alone: 30 → 20, 40 → 20
    assert np.allclose(alone["A"], [[20.0, 0.0]]) and np.allclose(alone["TA"], [[0.0, 20.0]])
    assert list(got) == list(g)                               # the gradients' order is kept


def test_clipping_names_a_bad_norm_and_an_unknown_group_member():
    g = {"A": np.ones((2, 2))}
    with pytest.raises(ValueError, match="norm must be one of 'frobenius', 'spectral', got 'nuclear'"):
        optim.clip_by_norm_per_matrix(g, 1.0, norm="nuclear")
    with pytest.raises(ValueError, match=r"clipping groups name \['TA'\]"):
        optim.clip_by_norm_per_matrix(g, 1.0, groups=[("A", "TA")])


def test_sgd_step_per_matrix_clip_is_clipping_then_sgd_to_the_last_bit():
    rng = np.random.default_rng(3)
    params = {"A": rng.standard_normal((5, 3)), "T": rng.standard_normal((4, 3)).astype(np.float32),
              "b": rng.standard_normal(3)}
    grads = {"A": 30 * rng.standard_normal((5, 3)), "T": rng.standard_normal((4, 3)).astype(np.float32),
             "b": 100 * rng.standard_normal(3)}            # A and b over the norm 40, T under it
    norms = {k: math.sqrt(float(np.sum(g.astype(np.float64) ** 2))) for k, g in grads.items()}
    assert norms["A"] > 40 and norms["b"] > 40 and norms["T"] < 40
    by_parts = copy(params)
    optim.SGD(lr=0.03).step(by_parts, optim.clip_by_norm_per_matrix(grads, 40.0)[0])
    fused, before = copy(params), copy(grads)
    optim.sgd_step_per_matrix_clip(fused, grads, 0.03, 40.0)
    for k in params:
        assert fused[k].dtype == params[k].dtype and np.array_equal(fused[k], by_parts[k]), k
        assert np.array_equal(grads[k], before[k])            # the gradients are left as they were
    # by hand for b: w − lr · 40 g / ‖g‖
    np.testing.assert_allclose(fused["b"], params["b"] - 0.03 * 40 * grads["b"] / norms["b"], rtol=1e-12)


def test_sgd_step_per_matrix_clip_names_a_bad_gradient_before_changing_anything():
    params, grads = tiny()
    grads["b"] = np.array([np.nan, 1.0])
    kept = copy(params)
    with pytest.raises(optim.NonFiniteError, match=r"non-finite gradient in 'b' \(1 NaN, 0 inf"):
        optim.sgd_step_per_matrix_clip(params, grads, 0.1, 40.0)
    assert all(np.array_equal(params[k], kept[k]) for k in params)
    with pytest.raises(ValueError, match=r"gradients for \['W'\] but parameters \['W', 'b'\]"):
        optim.sgd_step_per_matrix_clip(params, {"W": grads["W"]}, 0.1, 40.0)
    with pytest.raises(ValueError, match="lr must be"):
        optim.sgd_step_per_matrix_clip(params, tiny()[1], 0.0, 40.0)
    with pytest.raises(ValueError, match=r"gradient 'W' has shape \(2, 1\) but the parameter has shape \(2, 2\)"):
        optim.sgd_step_per_matrix_clip(params, {"W": np.ones((2, 1)), "b": tiny()[1]["b"]}, 0.1, 40.0)
    assert all(np.array_equal(params[k], kept[k]) for k in params)       # nothing changed
