"""MemN2N: gradients of every parameter under every option, agreement with the per-example loop, invariants."""
import itertools

import numpy as np
import pytest

from memnet_np import memn2n
from memnet_np.gradcheck import check_gradients, format_report, rel_error

COMBOS = list(itertools.product(["adjacent", "layerwise"], [None, "paper", "official"], ["softmax", "linear"],
                                [False, True]))


def setup(seed=0, **kw):
    rng = np.random.default_rng(seed)
    config = memn2n.Config.tiny(**kw)
    params = memn2n.init_params(config, rng)
    if "H" in params:                                  # away from the identity-like start: non-symmetric, non-zero
        params["H"] += np.eye(config.d) * 0.5
    batch = memn2n.example_batch(config, rng)
    return config, params, batch


@pytest.mark.gradcheck
@pytest.mark.parametrize("tying,encoding,attention,mask_empty", COMBOS)
def test_every_parameter_gradient(tying, encoding, attention, mask_empty):
    config, params, batch = setup(1, tying=tying, encoding=encoding, attention=attention, mask_empty=mask_empty)
    report = check_gradients(lambda p: memn2n.loss_and_grads(p, batch, config), params, max_entries=40)
    assert set(report) == set(memn2n.param_names(config))
    for r in report.values():
        assert r.checked > 0 and r.kinks == 0
    assert all(r.rel_error < 1e-7 for r in report.values()), format_report(report)


@pytest.mark.gradcheck
@pytest.mark.parametrize("tying", ["adjacent", "layerwise"])
def test_gradients_with_relu_and_without_temporal(tying):
    config, params, batch = setup(2, tying=tying, relu=True, temporal=False, init_std=0.5)
    report = check_gradients(lambda p: memn2n.loss_and_grads(p, batch, config), params, max_entries=40)
    assert all(r.rel_error < 1e-7 for r in report.values()), format_report(report)


def test_parameter_names_follow_the_tying():
    assert memn2n.param_names(memn2n.Config.tiny(hops=3)) == ["A", "C1", "C2", "C3", "TA", "TC1", "TC2", "TC3"]
    assert memn2n.param_names(memn2n.Config.tiny(tying="layerwise", temporal=False)) == ["A", "C", "B", "W", "H"]
    assert memn2n.roles(memn2n.Config.tiny(hops=3), 2) == ("C1", "C2", "TC1", "TC2")


@pytest.mark.parametrize("tying,encoding,attention,mask_empty", COMBOS)
def test_vectorised_forward_equals_the_per_example_loop(tying, encoding, attention, mask_empty):
    config, params, batch = setup(3, tying=tying, encoding=encoding, attention=attention, relu=True,
                                  mask_empty=mask_empty)
    logits, _ = memn2n.forward(params, batch, config)
    assert np.allclose(logits, memn2n.forward_naive(params, batch, config), atol=1e-12)


@pytest.mark.gradcheck
@pytest.mark.parametrize("mask_empty", [False, True])
def test_vectorised_backward_matches_finite_differences_of_the_loop(mask_empty):
    from memnet_np.gradcheck import eval_numerical_gradient
    from memnet_np.ops import softmax_cross_entropy_forward
    config, params, batch = setup(4, tying="adjacent", encoding="paper", mask_empty=mask_empty)
    _, grads, _ = memn2n.loss_and_grads(params, batch, config)
    naive_loss = lambda: softmax_cross_entropy_forward(memn2n.forward_naive(params, batch, config), batch.answers)[0]
    for name in ("A", "C2", "TC1"):
        assert rel_error(grads[name], eval_numerical_gradient(naive_loss, params[name])) < 1e-7


def test_masked_empty_slots_get_exactly_zero_attention_and_rows_sum_to_one():
    config, params, batch = setup(5, mask_empty=True)
    _, _, info = memn2n.loss_and_grads(params, batch, config)
    att = info["attention"]                            # (N, K, M)
    assert np.all(att[~np.broadcast_to(batch.mask[:, None, :], att.shape)] == 0.0)
    assert np.allclose(att.sum(-1), 1.0)


def test_empty_memories_score_zero_and_add_nothing_to_o():
    config, params, batch = setup(5)                   # default: empty slots take part, as in the official code
    logits, cache = memn2n.forward(params, batch, config)
    for hop in cache.hops:
        empty = ~batch.mask
        assert np.all(hop.attention.m[empty] == 0) and np.all(hop.attention.c[empty] == 0)
        s = (hop.attention.m @ hop.attention.u[..., None])[..., 0]
        assert np.all(s[empty] == 0)
        assert np.allclose(hop.attention.p.sum(-1), 1.0) and np.all(hop.attention.p[empty] > 0)
    masked = memn2n.forward(params, batch, memn2n.replace(config, mask_empty=True))[0]
    full = batch.mask.all(1)                           # a story that fills the memory is the same either way
    assert np.allclose(logits[full], masked[full]) and not np.allclose(logits[~full], masked[~full])


def test_null_word_row_starts_zero_and_only_the_answer_softmax_touches_it():
    config, params, batch = setup(6)                  # 2 hops: C2 is also W, the answer matrix
    _, grads, _ = memn2n.loss_and_grads(params, batch, config)
    assert all(np.all(params[name][0] == 0) for name in memn2n.embedding_names(config))
    assert np.all(grads["A"][0] == 0) and np.all(grads["C1"][0] == 0)
    assert np.any(grads["C2"][0] != 0), "the null word is a class of the answer softmax: its logit has a gradient"


def test_loss_is_summed_over_the_batch():
    config, params, batch = setup(7)
    loss, _, _ = memn2n.loss_and_grads(params, batch, config)
    parts = [memn2n.loss_and_grads(params, memn2n.Batch(*(a[i:i + 1] for a in batch)), config)[0]
             for i in range(len(batch.answers))]
    assert loss == pytest.approx(sum(parts))


def test_ages_without_noise_count_back_from_the_newest():
    mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0]], bool)
    assert memn2n.story_ages(mask, 50).tolist() == [[2, 1, 0, 0], [0, 0, 0, 0]]
    assert memn2n.story_ages(mask, 2).tolist() == [[1, 1, 0, 0], [0, 0, 0, 0]]   # capped at memory_size − 1


def test_random_noise_inserts_gaps_but_keeps_order():
    rng = np.random.default_rng(0)
    mask = np.ones((2000, 30), bool)
    age = memn2n.story_ages(mask, 50, rng, noise=0.1)
    assert np.all(np.diff(age, axis=1) < 0), "strictly decreasing from oldest to newest"
    assert age.max() <= 30 + 3 - 1 and age.min() >= 0
    gaps = (age[:, 0] - 29)                             # how many empty memories were inserted before the oldest
    assert 0 < gaps.mean() < 3 and (gaps > 0).mean() > 0.5
    assert np.array_equal(memn2n.story_ages(mask[:3], 50, np.random.default_rng(1), 0.1),
                          memn2n.story_ages(mask[:3], 50, np.random.default_rng(1), 0.1))


def test_bad_configs_and_batches_say_what_is_wrong():
    with pytest.raises(ValueError, match="tying must be one of"):
        memn2n.Config(tying="global")
    with pytest.raises(ValueError, match="hops must be at least 1"):
        memn2n.Config(hops=0)
    with pytest.raises(ValueError, match="vocab_size must be at least 2"):
        memn2n.init_params(memn2n.Config(), np.random.default_rng(0))
    config, params, batch = setup(8)
    bad = batch._replace(queries=batch.queries + config.vocab_size)
    with pytest.raises(ValueError, match="word ids outside"):
        memn2n.forward(params, bad, config)
