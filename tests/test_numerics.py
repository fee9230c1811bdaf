"""Numerical faults, as property tests over many random draws: huge and tiny scores, zero and huge memories, rows
with one real slot. Every output stays finite, every attention row sums to 1, masked slots get exactly 0."""
import numpy as np

from memnet_np import memn2n, ops

DRAWS = 10_000


def scales(rng, shape):
    """Magnitudes from 1e-150 to 1e150 (log-uniform), so differences of scores stay finite floats."""
    return 10.0 ** rng.uniform(-150, 150, size=shape)


def test_masked_softmax_over_extreme_scores():
    rng = np.random.default_rng(0)
    M = 7
    s = rng.standard_normal((DRAWS, M)) * scales(rng, (DRAWS, 1))            # (DRAWS, M) one scale per row
    s[rng.random((DRAWS, M)) < 0.05] = 0.0
    mask = rng.random((DRAWS, M)) < 0.6
    mask[np.arange(DRAWS), rng.integers(0, M, DRAWS)] = True                 # at least one real slot per row
    p, cache = ops.masked_softmax_forward(s, mask)
    assert np.isfinite(p).all() and np.all(p[~mask] == 0.0)
    assert np.allclose(p.sum(-1), 1.0, atol=1e-12)
    dp = rng.standard_normal((DRAWS, M)) * scales(rng, (DRAWS, 1)) * 1e-150   # gradients up to 1
    ds = ops.masked_softmax_backward(dp, cache)
    assert np.isfinite(ds).all() and np.all(ds[~mask] == 0.0)
    one = mask.sum(-1) == 1                                                   # one real slot: p = 1, ds = 0
    assert np.all(p[one][mask[one]] == 1.0) and np.allclose(ds[one], 0.0)
    p_all, _ = ops.masked_softmax_forward(s, None)                            # no mask: the plain softmax
    assert np.isfinite(p_all).all() and np.allclose(p_all.sum(-1), 1.0, atol=1e-12)


def test_attention_read_with_zero_and_huge_memories():
    rng = np.random.default_rng(1)
    N, M, d = DRAWS, 5, 4
    u = rng.standard_normal((N, d)) * scales(rng, (N, 1)) ** 0.5              # scores up to ~1e150
    m = rng.standard_normal((N, M, d)) * scales(rng, (N, 1, 1)) ** 0.5
    c = rng.standard_normal((N, M, d))
    m[rng.random((N, M)) < 0.2] = 0.0                                         # empty memories: zero vectors
    mask = rng.random((N, M)) < 0.7
    mask[:, 0] = True
    for attend in (mask, None):
        o, cache = ops.attention_read_forward(u, m, c, attend)
        assert np.isfinite(o).all() and np.allclose(cache.p.sum(-1), 1.0, atol=1e-12)
        du, dm, dc = ops.attention_read_backward(rng.standard_normal((N, d)), cache)
        assert np.isfinite(dc).all() and np.isfinite(du[np.abs(u).max(-1) < 1e60]).all()


def test_cross_entropy_over_extreme_logits():
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((DRAWS, 9)) * scales(rng, (DRAWS, 1))
    y = rng.integers(0, 9, DRAWS)
    loss, cache = ops.softmax_cross_entropy_forward(logits, y)
    assert np.isfinite(loss) and loss >= 0
    assert np.isfinite(cache.probs).all() and np.allclose(cache.probs.sum(-1), 1.0, atol=1e-12)
    assert np.isfinite(ops.softmax_cross_entropy_backward(1.0, cache)).all()


def test_memn2n_stays_finite_and_normalised_over_random_models():
    """10,000 random (question, memory) draws through the whole model, weights from tiny to large."""
    rng = np.random.default_rng(3)
    config = memn2n.Config.tiny(hops=3)
    finite = total = 0
    for _ in range(50):                                                       # 50 batches × 200 examples
        params = memn2n.init_params(config, rng)
        scale = 10.0 ** rng.uniform(-6, 1)
        params = {k: v * scale / config.init_std for k, v in params.items()}
        batch = memn2n.example_batch(config, rng, N=200)
        logits, cache = memn2n.forward(params, batch, config)
        att = memn2n.attention_of(cache)
        assert np.allclose(att.sum(-1), 1.0, atol=1e-12)
        finite += int(np.isfinite(logits).all(1).sum())
        total += logits.shape[0]
    assert total == DRAWS and finite == DRAWS
