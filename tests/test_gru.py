"""The GRU op pair of ops.py: the cell (plain, DMN-gated, attention form) and the masked sequence."""
import numpy as np
import pytest

from memnet_np import ops
from memnet_np.gradcheck import check_op, rel_error

TOL = 1e-7


def weights(rng, D, H, rows=3):
    return {"Wx": rng.standard_normal((rows * H, D)) * 0.7, "Wh": rng.standard_normal((rows * H, H)) * 0.7,
            "b": rng.standard_normal(rows * H) * 0.3}


def cell_inputs(rng, N=3, D=4, H=5, rows=3):
    return {"x": rng.standard_normal((N, D)), "h_prev": rng.standard_normal((N, H)) * 0.8, **weights(rng, D, H, rows)}


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


@pytest.mark.gradcheck
@pytest.mark.parametrize("form", ["plain", "dmn-gated", "attention"])
def test_gru_cell_gradients(form):
    rng = np.random.default_rng(1)
    inputs = cell_inputs(rng, rows=2 if form == "attention" else 3)
    wrt = ["x", "h_prev", "Wx", "Wh", "b"]
    if form == "plain":
        bwd = lambda dh, c: ops.gru_backward(dh, c)[:5]
    else:
        inputs["g"] = rng.uniform(0.1, 0.9, size=3)
        wrt.append("g")
        bwd = ops.gru_backward
    errs = check_op(ops.gru_forward, bwd, inputs, wrt, rng)
    assert set(errs) == set(wrt) and max(errs.values()) < TOL, errs


def test_gru_cell_is_the_documented_equations_unit_by_unit():
    rng = np.random.default_rng(2)
    p = cell_inputs(rng, N=2, D=3, H=2)
    h, _ = ops.gru_forward(*p.values())
    H = 2
    x, hp, Wx, Wh, b = p.values()
    for n in range(2):
        for k in range(H):
            r = sigmoid(Wx[k] @ x[n] + Wh[k] @ hp[n] + b[k])
            cand = np.tanh(Wx[H + k] @ x[n] + r * (Wh[H + k] @ hp[n]) + b[H + k])
            u = sigmoid(Wx[2 * H + k] @ x[n] + Wh[2 * H + k] @ hp[n] + b[2 * H + k])
            assert h[n, k] == pytest.approx(u * cand + (1 - u) * hp[n, k], abs=1e-12)   # u weights the candidate


def test_dmn_gate_is_g_times_the_gru_plus_one_minus_g_times_the_old_state():
    rng = np.random.default_rng(3)
    p = cell_inputs(rng)
    g = np.array([0.0, 0.3, 1.0])
    h_gru, _ = ops.gru_forward(*p.values())
    h, _ = ops.gru_forward(*p.values(), g=g)
    np.testing.assert_allclose(h, g[:, None] * h_gru + (1 - g[:, None]) * p["h_prev"], atol=1e-13)
    assert np.array_equal(h[0], p["h_prev"][0])                # g = 0: nothing changes


def test_attention_gru_has_no_update_gate_and_needs_g():
    rng = np.random.default_rng(4)
    p = cell_inputs(rng, rows=2)
    with pytest.raises(ValueError, match="needs the gate g"):
        ops.gru_forward(*p.values())
    g = np.array([1.0, 0.5, 0.0])
    h, cache = ops.gru_forward(*p.values(), g=g)
    assert cache.u is None
    np.testing.assert_allclose(h, g[:, None] * cache.hh + (1 - g[:, None]) * p["h_prev"], atol=1e-13)


def test_gru_rejects_mismatched_weights():
    rng = np.random.default_rng(5)
    p = cell_inputs(rng)
    with pytest.raises(ValueError, match="GRU weights"):
        ops.gru_forward(p["x"], p["h_prev"], p["Wx"][:, :2], p["Wh"], p["b"])
    with pytest.raises(ValueError, match="GRU weights"):
        ops.gru_forward(p["x"], p["h_prev"], p["Wx"], p["Wh"][:4], p["b"])


def seq_inputs(rng, N=3, T=5, D=4, H=3, rows=3):
    mask = np.ones((N, T), bool)
    mask[1, 3:] = False                                         # a short sequence, right-padded
    mask[2, :2] = False                                         # a reversed one, left-padded
    return {"x": rng.standard_normal((N, T, D)), "h0": rng.standard_normal((N, H)) * 0.5,
            **weights(rng, D, H, rows)}, mask


@pytest.mark.gradcheck
@pytest.mark.parametrize("form", ["plain", "dmn-gated", "attention"])
def test_gru_sequence_gradients_with_padding(form):
    rng = np.random.default_rng(6)
    inputs, mask = seq_inputs(rng, rows=2 if form == "attention" else 3)
    wrt = ["x", "h0", "Wx", "Wh", "b"]
    if form == "plain":
        bwd = lambda d, c: ops.gru_sequence_backward(d, c)[:5]
    else:
        inputs["mask"] = mask
        inputs["g"] = rng.uniform(0.1, 0.9, size=mask.shape)
        wrt.append("g")
        bwd = ops.gru_sequence_backward
    errs = check_op(ops.gru_sequence_forward, bwd, inputs, wrt, rng,
                    **({"mask": mask} if form == "plain" else {}))
    assert set(errs) == set(wrt) and max(errs.values()) < TOL, errs


@pytest.mark.gradcheck
@pytest.mark.parametrize("masked", [False, True])
def test_gru_projection_and_recurrence_gradients(masked):
    """Each half alone: the projection (padded steps skipped when masked) and the recurrence from a given xw."""
    rng = np.random.default_rng(14)
    p, mask = seq_inputs(rng)
    x, h0, Wx, Wh, b = p.values()
    m = mask if masked else None
    errs = check_op(ops.gru_projection_forward, ops.gru_projection_backward, {"x": x, "Wx": Wx, "b": b},
                    ["x", "Wx", "b"], rng, mask=m)
    assert set(errs) == {"x", "Wx", "b"} and max(errs.values()) < TOL, errs
    xw, _ = ops.gru_projection_forward(x, Wx, b)
    g = rng.uniform(0.1, 0.9, size=mask.shape)
    errs = check_op(ops.gru_recurrence_forward, ops.gru_recurrence_backward,
                    {"xw": xw, "h0": h0, "Wh": Wh, "mask": m, "g": g}, ["xw", "h0", "Wh", "g"], rng)
    assert set(errs) == {"xw", "h0", "Wh", "g"} and max(errs.values()) < TOL, errs


def test_gru_sequence_is_the_cell_step_by_step():
    rng = np.random.default_rng(7)
    p, _ = seq_inputs(rng)
    g = rng.uniform(0, 1, size=(3, 5))
    hs, _ = ops.gru_sequence_forward(p["x"], p["h0"], p["Wx"], p["Wh"], p["b"], g=g)
    h = p["h0"]
    for t in range(5):
        h, _ = ops.gru_forward(p["x"][:, t], h, p["Wx"], p["Wh"], p["b"], g=g[:, t])
        np.testing.assert_allclose(hs[:, t], h, atol=1e-13)


@pytest.mark.parametrize("gated", [False, True])
def test_padded_steps_are_inert(gated):
    """A padded step keeps the state exactly, and neither its input nor its gate gets any gradient; what the
    padded positions hold changes nothing."""
    rng = np.random.default_rng(8)
    p, mask = seq_inputs(rng)
    g = rng.uniform(0.2, 0.9, size=mask.shape) if gated else None
    hs, cache = ops.gru_sequence_forward(p["x"], p["h0"], p["Wx"], p["Wh"], p["b"], mask=mask, g=g)
    assert np.array_equal(hs[1, 3], hs[1, 2]) and np.array_equal(hs[1, 4], hs[1, 2])
    assert np.array_equal(hs[2, 0], p["h0"][2]) and np.array_equal(hs[2, 1], p["h0"][2])
    dhs = rng.standard_normal(hs.shape)
    dx, dh0, dWx, dWh, db, dg = ops.gru_sequence_backward(dhs, cache)
    assert not dx[~mask].any() and np.abs(dx[mask]).min() > 0
    if gated:
        assert not dg[~mask].any() and np.abs(dg[mask]).min() > 0
    x2 = p["x"].copy()
    x2[~mask] = 1e3                                             # garbage in the padding
    hs2, cache2 = ops.gru_sequence_forward(x2, p["h0"], p["Wx"], p["Wh"], p["b"], mask=mask, g=g)
    assert np.array_equal(hs2, hs)
    grads2 = ops.gru_sequence_backward(dhs, cache2)
    for a, b in zip((dh0, dWh), (grads2[1], grads2[3])):
        assert rel_error(a, b) < 1e-13


def test_gru_sequence_mask_shape_is_checked():
    rng = np.random.default_rng(9)
    p, mask = seq_inputs(rng)
    with pytest.raises(ValueError, match="mask must have shape"):
        ops.gru_sequence_forward(*p.values(), mask=mask[:, :2])


def test_gru_does_not_modify_inputs():
    rng = np.random.default_rng(10)
    p, mask = seq_inputs(rng)
    copies = {k: v.copy() for k, v in p.items()}
    hs, cache = ops.gru_sequence_forward(*p.values(), mask=mask)
    dhs = rng.standard_normal(hs.shape)
    dcopy = dhs.copy()
    ops.gru_sequence_backward(dhs, cache)
    assert all(np.array_equal(p[k], copies[k]) for k in p) and np.array_equal(dhs, dcopy)


def test_recurrences_sharing_one_projection_sum_its_gradient_into_one_backward_product():
    """Two recurrences over the same inputs and weights (two DMN passes with different gates) from one projection:
    summing their dxw before gru_projection_backward gives what two full sequences give, added."""
    rng = np.random.default_rng(11)
    p, mask = seq_inputs(rng)
    x, h0, Wx, Wh, b = p.values()
    gates = [rng.random(mask.shape) for _ in range(2)]
    dhss = [rng.standard_normal(mask.shape + (h0.shape[1],)) for _ in range(2)]
    xw, proj = ops.gru_projection_forward(x, Wx, b)           # (T, N, 3H) once
    dxw = np.zeros_like(xw)
    for g, dhs in zip(gates, dhss):
        hs, rec = ops.gru_recurrence_forward(xw, h0, Wh, mask, g)
        full, full_cache = ops.gru_sequence_forward(x, h0, Wx, Wh, b, mask=mask, g=g)
        assert np.array_equal(hs, full)
        dxw += ops.gru_recurrence_backward(dhs, rec)[0]
    dx, dWx, db = ops.gru_projection_backward(dxw, proj)
    want = [sum(ops.gru_sequence_backward(dhs, ops.gru_sequence_forward(x, h0, Wx, Wh, b, mask=mask, g=g)[1])[i]
                for g, dhs in zip(gates, dhss)) for i in (0, 2, 4)]   # dx, dWx, db
    for got, w in zip((dx, dWx, db), want):
        assert rel_error(got, w) < 1e-12


def test_gru_recurrence_and_projection_shapes_are_checked():
    rng = np.random.default_rng(12)
    p, mask = seq_inputs(rng)
    x, h0, Wx, Wh, b = p.values()
    xw, _ = ops.gru_projection_forward(x, Wx, b)
    with pytest.raises(ValueError, match="GRU input projection needs x"):
        ops.gru_projection_forward(x, Wx[:, :-1], b)
    with pytest.raises(ValueError, match="GRU recurrence needs xw"):
        ops.gru_recurrence_forward(xw[..., :-1], h0, Wh, mask)
    with pytest.raises(ValueError, match="GRU recurrence needs xw"):
        ops.gru_recurrence_forward(xw, h0[:-1], Wh, mask)
    with pytest.raises(ValueError, match=r"GRU gate g must have shape"):
        ops.gru_recurrence_forward(xw, h0, Wh, mask, g=np.ones(mask.shape[::-1]))
    with pytest.raises(ValueError, match="attention GRU: it needs the gate g"):
        ops.gru_recurrence_forward(xw[..., :2 * h0.shape[1]], h0, Wh[:2 * h0.shape[1]], mask)


@pytest.mark.parametrize("rows", [3, 2])
def test_a_masked_projection_skips_the_padded_steps_and_changes_nothing_the_sequence_gives(rows):
    """The projection of padded steps is left at 0 (not b): hs and every gradient equal an unmasked projection's
    run through the same masked recurrence, and dx is exactly 0 on padded steps."""
    rng = np.random.default_rng(13)
    p, mask = seq_inputs(rng, rows=rows)
    x, h0, Wx, Wh, b = p.values()
    g = rng.random(mask.shape)
    dhs = rng.standard_normal(mask.shape + (h0.shape[1],))
    results = []
    for projection_mask in (None, mask):
        xw, proj = ops.gru_projection_forward(x, Wx, b, projection_mask)
        hs, rec = ops.gru_recurrence_forward(xw, h0, Wh, mask, g)
        dxw, dh0, dWh, dg = ops.gru_recurrence_backward(dhs, rec)
        dx, dWx, db = ops.gru_projection_backward(dxw, proj)
        results.append((hs, dh0, dWh, dg, dx, dWx, db))
    assert np.array_equal(results[1][4][~mask], np.zeros_like(x[~mask]))
    for plain, masked in zip(*results):
        assert rel_error(plain, masked) < 1e-12
    with pytest.raises(ValueError, match="GRU mask must have shape"):
        ops.gru_projection_forward(x, Wx, b, mask[:, :2])
