"""Every op: forward against hand-computed values and invariants, backward against finite differences."""
import numpy as np
import pytest

from memnet_np import ops
from memnet_np.gradcheck import check_op

TOL = 1e-7


def rng_(seed=0):
    return np.random.default_rng(seed)


def sentences(rng, shape, V, pad_from=None):
    """Word ids in [1, V) with trailing padding of random length per sentence."""
    x = rng.integers(1, V, size=shape)
    L = shape[-1]
    lengths = rng.integers(1, L + 1, size=shape[:-1])
    x[np.arange(L) >= lengths[..., None]] = 0
    return x


# ---------------------------------------------------------------------------------------------------------------
# activations and linear

@pytest.mark.gradcheck
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu"])
def test_activation_gradients(name):
    r = rng_(1)
    x = r.standard_normal((4, 5))
    x[np.abs(x) < 1e-3] = 0.5                          # keep relu away from its kink
    errs = check_op(getattr(ops, f"{name}_forward"), getattr(ops, f"{name}_backward"), {"x": x}, ["x"], r)
    assert errs["x"] < TOL, errs


def test_sigmoid_is_stable_and_exact():
    y, _ = ops.sigmoid_forward(np.array([-1000.0, -2.0, 0.0, 2.0, 1000.0]))
    assert np.all(np.isfinite(y))
    assert y[2] == 0.5 and y[0] == 0.0 and y[-1] == 1.0
    assert y[3] == pytest.approx(1 / (1 + np.exp(-2.0)))


@pytest.mark.gradcheck
@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradients(bias):
    r = rng_(2)
    inputs = {"x": r.standard_normal((3, 2, 4)), "W": r.standard_normal((5, 4))}
    wrt = ["x", "W"]
    if bias:
        inputs["b"] = r.standard_normal(5)
        wrt.append("b")
    fwd = ops.linear_forward
    bwd = ops.linear_backward if bias else (lambda dy, c: ops.linear_backward(dy, c)[:2])
    errs = check_op(fwd, bwd, inputs, wrt, r)
    assert max(errs.values()) < TOL, errs


def test_linear_forward_is_W_x():
    y, _ = ops.linear_forward(np.array([[1.0, 2.0]]), np.array([[1.0, 0.0], [3.0, -1.0], [0.0, 2.0]]),
                              np.array([0.0, 1.0, 0.0]))
    assert np.allclose(y, [[1.0, 2.0, 4.0]])


# ---------------------------------------------------------------------------------------------------------------
# position encoding

def test_paper_position_encoding_formula():
    x = np.array([[5, 6, 7, 0]])                          # J = 3 words, one pad
    d = 4
    l = ops.position_encoding(x, d, "paper")[0]           # (L, d)
    for j in range(1, 4):
        for k in range(1, d + 1):
            assert l[j - 1, k - 1] == pytest.approx((1 - j / 3) - (k / d) * (1 - 2 * j / 3))


def test_official_position_encoding_formula_uses_padded_length():
    x = np.array([[5, 6, 0, 0, 0]])
    d, L = 3, 5
    l = ops.position_encoding(x, d, "official")[0]
    for j in range(1, L + 1):
        for k in range(1, d + 1):
            assert l[j - 1, k - 1] == pytest.approx(1 + 4 * (k - (d + 1) / 2) * (j - (L + 1) / 2) / (d * L))


def test_no_position_encoding_is_ones_and_bad_kind_is_named():
    assert np.all(ops.position_encoding(np.ones((2, 3), int), 4, None) == 1)
    with pytest.raises(ValueError, match="position encoding must be one of"):
        ops.pe_factors(np.ones((2, 3), int), 4, "sinusoid")


# ---------------------------------------------------------------------------------------------------------------
# sentence embeddings: literal lookup vs weighted bags

@pytest.mark.parametrize("kind", [None, "paper", "official"])
def test_bag_embedding_equals_lookup_embedding(kind):
    r = rng_(3)
    V, d = 9, 6
    x = sentences(r, (4, 5, 7), V)
    A = r.standard_normal((V, d))
    l = None if kind is None else ops.position_encoding(x, d, kind)
    m_lookup, c1 = ops.embed_sentences_forward(x, A, l)
    bags = ops.encode_bags(x, V, d, kind)
    m_bag, c2 = ops.bag_embed_forward(bags, A)
    assert np.allclose(m_lookup, m_bag, atol=1e-12)
    dm = r.standard_normal(m_bag.shape)
    assert np.allclose(ops.embed_sentences_backward(dm, c1), ops.bag_embed_backward(dm, c2), atol=1e-12)


def test_lookup_embedding_by_hand_and_padding_ignored():
    A = np.arange(12, dtype=float).reshape(4, 3)          # row 0 nonzero on purpose: padding must still not count
    x = np.array([[1, 3, 0]])
    m, _ = ops.embed_sentences_forward(x, A)
    assert np.allclose(m, [A[1] + A[3]])


@pytest.mark.gradcheck
@pytest.mark.parametrize("kind", [None, "paper", "official"])
def test_embedding_gradients(kind):
    r = rng_(4)
    V, d = 8, 5
    x = sentences(r, (3, 4, 6), V)
    A = r.standard_normal((V, d))
    l = None if kind is None else ops.position_encoding(x, d, kind)
    errs = check_op(lambda A: ops.embed_sentences_forward(x, A, l), ops.embed_sentences_backward, {"A": A}, ["A"], r)
    assert errs["A"] < TOL
    bags = ops.encode_bags(x, V, d, kind)
    errs = check_op(lambda A: ops.bag_embed_forward(bags, A), ops.bag_embed_backward, {"A": A}, ["A"], r)
    assert errs["A"] < TOL


def test_padding_row_gets_no_gradient():
    r = rng_(5)
    x = sentences(r, (2, 3, 4), 6)
    bags = ops.encode_bags(x, 6, 3, "paper")
    _, cache = ops.bag_embed_forward(bags, r.standard_normal((6, 3)))
    dA = ops.bag_embed_backward(r.standard_normal((2, 3, 3)), cache)
    assert np.all(dA[0] == 0)


def test_bags_reject_out_of_range_ids():
    with pytest.raises(ValueError, match=r"word ids must lie in \[0, 5\)"):
        ops.encode_bags(np.array([[1, 7]]), 5, 3)


# ---------------------------------------------------------------------------------------------------------------
# temporal encoding

@pytest.mark.gradcheck
def test_temporal_gradients_and_forward():
    r = rng_(6)
    N, M, d, rows = 3, 4, 5, 6
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]], bool)
    age = r.integers(0, rows, size=(N, M))
    m = r.standard_normal((N, M, d))
    T = r.standard_normal((rows, d))
    ages = ops.encode_ages(age, mask, rows)
    out, _ = ops.temporal_forward(m, T, ages)
    assert np.allclose(out[0, 1], m[0, 1] + T[age[0, 1]]) and np.allclose(out[1, 3], m[1, 3])
    errs = check_op(lambda m, T: ops.temporal_forward(m, T, ages), ops.temporal_backward,
                    {"m": m, "T": T}, ["m", "T"], r)
    assert max(errs.values()) < TOL, errs


def test_temporal_rejects_ages_beyond_T():
    with pytest.raises(ValueError, match="ages must lie in"):
        ops.encode_ages(np.array([[0, 2]]), np.ones((1, 2), bool), 2)
    with pytest.raises(ValueError, match="T has 3"):
        ops.temporal_forward(np.zeros((1, 2, 3)), np.zeros((3, 3)), ops.encode_ages(np.array([[0, 1]]),
                                                                                    np.ones((1, 2), bool), 2))


# ---------------------------------------------------------------------------------------------------------------
# masked softmax and attention

def test_masked_softmax_gives_padding_exactly_zero_and_rows_sum_to_one():
    s = np.array([[1.0, 2.0, 3.0, 50.0], [1000.0, -1000.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0]], bool)
    p, _ = ops.masked_softmax_forward(s, mask)
    assert p[0, 3] == 0.0 and np.isclose(p[0].sum(), 1.0)
    e = np.exp([1.0, 2.0, 3.0])
    assert np.allclose(p[0, :3], e / e.sum())
    assert np.all(np.isfinite(p[1])) and np.isclose(p[1].sum(), 1.0)
    assert np.all(p[2] == 0.0), "a row with no memory attends to nothing"


@pytest.mark.gradcheck
def test_masked_softmax_gradient():
    r = rng_(7)
    s = r.standard_normal((3, 5))
    mask = r.random((3, 5)) < 0.7
    mask[:, 0] = True
    errs = check_op(lambda s: ops.masked_softmax_forward(s, mask), ops.masked_softmax_backward, {"s": s}, ["s"], r)
    assert errs["s"] < TOL


def test_attention_read_by_hand():
    u = np.array([[1.0, 0.0]])
    m = np.array([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])
    c = np.array([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = np.array([[True, True, False]])
    o, cache = ops.attention_read_forward(u, m, c, mask)
    p = np.exp([1.0, 0.0]) / np.exp([1.0, 0.0]).sum()
    assert np.allclose(cache.p, [[p[0], p[1], 0.0]])
    assert np.allclose(o, [p[0] * np.array([1.0, 2.0]) + p[1] * np.array([3.0, 4.0])])
    o_lin, cache = ops.attention_read_forward(u, m, c, mask, linear=True)
    assert np.allclose(cache.p, [[1.0, 0.0, 0.0]]) and np.allclose(o_lin, [[1.0, 2.0]])


@pytest.mark.gradcheck
@pytest.mark.parametrize("linear", [False, True])
def test_attention_read_gradients(linear):
    r = rng_(8)
    N, M, d = 3, 5, 4
    mask = np.ones((N, M), bool)
    mask[0, 3:] = False
    mask[2, 1:] = False
    inputs = {"u": r.standard_normal((N, d)), "m": r.standard_normal((N, M, d)), "c": r.standard_normal((N, M, d))}
    errs = check_op(lambda u, m, c: ops.attention_read_forward(u, m, c, mask, linear), ops.attention_read_backward,
                    inputs, ["u", "m", "c"], r)
    assert max(errs.values()) < TOL, errs


def test_padded_slots_receive_no_gradient():
    r = rng_(9)
    mask = np.array([[True, True, False]])
    o, cache = ops.attention_read_forward(r.standard_normal((1, 2)), r.standard_normal((1, 3, 2)),
                                          r.standard_normal((1, 3, 2)), mask)
    du, dm, dc = ops.attention_read_backward(r.standard_normal((1, 2)), cache)
    assert np.all(dm[0, 2] == 0) and np.all(dc[0, 2] == 0)


# ---------------------------------------------------------------------------------------------------------------
# softmax cross-entropy

def test_cross_entropy_by_hand_and_stable():
    logits = np.array([[0.0, np.log(3.0)], [1000.0, 0.0]])
    loss, cache = ops.softmax_cross_entropy_forward(logits, np.array([1, 0]))
    assert loss == pytest.approx(-np.log(0.75) + 0.0)
    assert np.allclose(cache.probs[0], [0.25, 0.75])
    mean, _ = ops.softmax_cross_entropy_forward(logits, np.array([1, 0]), reduction="mean")
    assert mean == pytest.approx(loss / 2)


@pytest.mark.gradcheck
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_cross_entropy_gradient(reduction):
    r = rng_(10)
    y = np.array([0, 3, 2, 3])
    errs = check_op(lambda z: ops.softmax_cross_entropy_forward(z, y, reduction),
                    lambda dl, c: ops.softmax_cross_entropy_backward(dl, c),
                    {"z": r.standard_normal((4, 5))}, ["z"], r)
    assert errs["z"] < TOL


def test_cross_entropy_bad_inputs():
    with pytest.raises(ValueError, match="reduction must be"):
        ops.softmax_cross_entropy_forward(np.zeros((2, 3)), np.zeros(2, int), "avg")
    with pytest.raises(ValueError, match=r"targets must have shape \(2,\)"):
        ops.softmax_cross_entropy_forward(np.zeros((2, 3)), np.zeros(3, int))


def test_ops_do_not_modify_inputs():
    r = rng_(11)
    u, m, c = r.standard_normal((2, 3)), r.standard_normal((2, 4, 3)), r.standard_normal((2, 4, 3))
    mask = np.ones((2, 4), bool)
    copies = [a.copy() for a in (u, m, c)]
    o, cache = ops.attention_read_forward(u, m, c, mask)
    do = r.standard_normal(o.shape)
    do0 = do.copy()
    ops.attention_read_backward(do, cache)
    assert all(np.array_equal(a, b) for a, b in zip((u, m, c), copies)) and np.array_equal(do, do0)


def test_official_position_encoding_with_a_given_J():
    x = np.array([[5, 6, 7]])                             # L = 3 words, J = 4: the time word is word 4
    d, J = 3, 4
    l = ops.position_encoding(x, d, "official", J=J)[0]
    for j in range(1, 4):
        for k in range(1, d + 1):
            assert l[j - 1, k - 1] == pytest.approx(1 + 4 * (k - (d + 1) / 2) * (j - (J + 1) / 2) / (d * J))
    col = ops.official_pe_column(d, J, J)
    assert col == pytest.approx([1 + 4 * (k - 2) * (4 - 2.5) / 12 for k in (1, 2, 3)])
    with pytest.raises(ValueError, match="J ≥ L"):
        ops.pe_factors(x, d, "official", J=2)


def test_lookup_by_hand_and_masked_positions_read_nothing():
    table = np.arange(8.0).reshape(4, 2)
    y, cache = ops.lookup_forward(table, np.array([[3, 0], [3, 1]]), np.array([[True, False], [True, True]]))
    assert np.array_equal(y, [[[6, 7], [0, 0]], [[6, 7], [2, 3]]])
    dt = ops.lookup_backward(np.ones((2, 2, 2)), cache)
    assert np.array_equal(dt, [[0, 0], [1, 1], [0, 0], [2, 2]])       # row 3 read twice, row 0 only where masked


@pytest.mark.gradcheck
@pytest.mark.parametrize("masked", [False, True])
def test_lookup_gradient(masked):
    r = rng_(6)
    table = r.standard_normal((5, 3))
    idx = r.integers(0, 5, size=(4, 6))
    mask = r.random((4, 6)) < 0.6 if masked else None
    errs = check_op(lambda t: ops.lookup_forward(t, idx, mask), ops.lookup_backward, {"table": table}, ["table"], r)
    assert errs["table"] < TOL


@pytest.mark.parametrize("linear", [False, True])
def test_factored_attention_backward_is_the_textbook_one(linear):
    r = rng_(7)
    N, M, d = 3, 5, 4
    u, m, c = r.standard_normal((N, d)), r.standard_normal((N, M, d)), r.standard_normal((N, M, d))
    mask = r.random((N, M)) < 0.7
    mask[:, 0] = True
    _, cache = ops.attention_read_forward(u, m, c, mask, linear)
    do = r.standard_normal((N, d))
    du, dm, dc = ops.attention_read_backward(do, cache)
    du2, (ds, uu), (p, do2) = ops.attention_read_backward_factored(do, cache)
    assert np.allclose(du, du2) and np.allclose(dm, ds[..., None] * uu[:, None, :])
    assert np.allclose(dc, p[..., None] * do2[:, None, :])


def test_per_row_sums_by_hand_and_as_a_scatter_of_outer_products():
    coef = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])       # N = 2 examples, M = 3 slots
    idx = np.array([[0, 2, 2], [1, 1, 0]])
    G = ops.per_row_sums(coef, idx, rows=3)
    assert np.array_equal(G, [[1, 0, 5], [6, 9, 0]])
    G = ops.per_row_sums(coef, idx, rows=3, mask=np.array([[True, False, True], [True, True, False]]))
    assert np.array_equal(G, [[1, 0, 3], [0, 9, 0]])
    r = rng_(8)                                               # Gᵀ v equals the scatter of dm_i = coef_i v_n
    coef, v, idx = r.standard_normal((2, 4, 6)), r.standard_normal((2, 4, 3)), r.integers(0, 5, (4, 6))
    dm = coef[..., None] * v[:, :, None, :]                   # (P, N, M, d)
    expected = sum(ops.lookup_backward(dm[k], ops.LookupCache(idx, 5)) for k in range(2))
    assert np.allclose(ops.per_row_sums(coef, idx, 5).T @ v.reshape(-1, 3), expected)
