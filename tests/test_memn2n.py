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
    parts = [memn2n.loss_and_grads(params, memn2n.Batch(*(a[i:i + 1] for a in batch[:5])), config)[0]
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


def test_random_noise_reaches_short_stories_as_the_official_code_does():
    # official: nblank = randi([0, ceil(0.1 n)]) includes the top, so a 5-sentence story gets one empty memory
    # half of the time, and then its ages differ from 4..0 unless the blank took the oldest index (1 in 6):
    # 1/2 · 5/6 = 41.7% of such stories change.
    rng = np.random.default_rng(0)
    mask = np.zeros((20000, 10), bool)
    mask[:, :5] = True
    age = memn2n.story_ages(mask, 50, rng, noise=0.1)
    plain = memn2n.story_ages(mask, 50)
    changed = np.any(age != plain, axis=1).mean()
    assert abs(changed - 0.5 * 5 / 6) < 0.015, changed
    assert set(np.unique(age[:, 0])) == {4, 5}              # the oldest sits at 4 (no gap) or 5 (one gap)
    one = np.ones((4000, 1), bool)                          # even a one-sentence story: ceil(0.1) = 1
    assert set(np.unique(memn2n.story_ages(one, 50, rng, noise=0.1)[:, 0])) == {0, 1}


def test_random_noise_changes_bAbI_task_1_training_stories(tiny_task1):
    rng = np.random.default_rng(0)
    arrays = tiny_task1.train
    config = memn2n.Config.for_data(tiny_task1)
    idx = np.arange(len(arrays))
    noisy = memn2n.make_batch(arrays, idx, config, rng, train=True).age
    plain = memn2n.make_batch(arrays, idx, config, None, train=False).age
    assert 0.3 < np.any(noisy != plain, axis=1).mean() < 0.5


@pytest.fixture(scope="module")
def tiny_task1():
    from memnet_np import data
    return data.load_generated(1, n_train=500, n_test=10, seed=0)


def test_official_position_encoding_with_the_time_word_by_hand():
    # d = 2, L = 2 words; the official time word is word J = L + 1 = 3 of every sentence, so
    # l_kj = 1 + 4 (k − 3/2)(j − 2) / (2·3):  k=1: j=1,2,3 -> 4/3, 1, 2/3;   k=2: 2/3, 1, 4/3
    config = memn2n.Config(vocab_size=3, d=2, hops=1, memory_size=2, encoding="official", temporal=True)
    A = np.array([[0.0, 0.0], [1.0, 2.0], [3.0, 4.0]])
    params = {"A": A, "C1": np.zeros((3, 2)), "TA": np.array([[5.0, 6.0], [7.0, 8.0]]), "TC1": np.zeros((2, 2))}
    batch = memn2n.Batch(stories=np.array([[[1, 2], [0, 0]]]), queries=np.array([[1, 2]]), answers=np.array([1]),
                         mask=np.array([[True, False]]), age=np.array([[0, 0]]))
    _, cache = memn2n.forward(params, batch, config)
    hop = cache.hops[0].attention
    m = (4 / 3 * 1 + 1 * 3 + 2 / 3 * 5, 2 / 3 * 2 + 1 * 4 + 4 / 3 * 6)     # A x_1 l_1 + A x_2 l_2 + T(0) ⊙ l_3
    assert np.allclose(hop.m[0, 0], m) and np.allclose(hop.m[0, 1], 0)
    assert np.allclose(hop.u[0], (4 / 3 * 1 + 1 * 3, 2 / 3 * 2 + 1 * 4))    # the question: J = 3, words 1..2
    assert np.allclose(memn2n.forward_naive(params, batch, config), memn2n.forward(params, batch, config)[0])
    # without temporal encoding there is no time word: J = L = 2, l_kj = 1 + (k − 3/2)(j − 3/2)
    _, cache = memn2n.forward(params, batch, memn2n.replace(config, temporal=False))
    assert np.allclose(cache.hops[0].attention.m[0, 0], (1.25 * 1 + 0.75 * 3, 0.75 * 2 + 1.25 * 4))


def test_tying_names_are_the_papers():
    t = memn2n.naive_tying(memn2n.Config.tiny(hops=3))
    assert [t["A"][k] for k in (1, 2, 3)] == ["A", "C1", "C2"] and [t["C"][k] for k in (1, 2, 3)] == ["C1", "C2", "C3"]
    assert (t["B"], t["W"]) == ("A", "C3") and [t["TA"][k] for k in (1, 2, 3)] == ["TA", "TC1", "TC2"]
    assert [memn2n.roles(memn2n.Config.tiny(hops=3), k) for k in (1, 2, 3)] == [
        ("A", "C1", "TA", "TC1"), ("C1", "C2", "TC1", "TC2"), ("C2", "C3", "TC2", "TC3")]
    assert memn2n.question_and_answer_names(memn2n.Config.tiny(hops=3)) == ("A", "C3")
    assert memn2n.question_and_answer_names(memn2n.Config.tiny(tying="layerwise")) == ("B", "W")


@pytest.mark.parametrize("wrong", ["B = C1", "W = A", "A2 = C2", "TA2 = TA"])
def test_the_oracle_catches_wrong_tying(monkeypatch, wrong):
    config, params, batch = setup(9, hops=3)
    good = memn2n.forward(params, batch, config)[0]
    assert np.allclose(good, memn2n.forward_naive(params, batch, config), atol=1e-12)
    roles, qa = memn2n.roles, memn2n.question_and_answer_names
    if wrong == "B = C1":
        monkeypatch.setattr(memn2n, "question_and_answer_names", lambda c: ("C1", qa(c)[1]))
    elif wrong == "W = A":
        monkeypatch.setattr(memn2n, "question_and_answer_names", lambda c: (qa(c)[0], "A"))
    elif wrong == "A2 = C2":
        monkeypatch.setattr(memn2n, "roles", lambda c, k: ("C2",) + roles(c, k)[1:] if k == 2 else roles(c, k))
    else:
        monkeypatch.setattr(memn2n, "roles", lambda c, k: roles(c, k)[:2] + ("TA",) + roles(c, k)[3:]
                            if k == 2 else roles(c, k))
    bad = memn2n.forward(params, batch, config)[0]
    assert not np.allclose(bad, memn2n.forward_naive(params, batch, config), atol=1e-6)


def test_distinct_sentence_table_gives_the_same_model(tiny_task1):
    config = memn2n.Config.tiny(vocab_size=len(tiny_task1.vocab), memory_size=tiny_task1.memory_size, hops=3)
    params = memn2n.init_params(config, np.random.default_rng(0))
    batch = memn2n.make_batch(tiny_task1.train, np.arange(40), config)
    assert batch.sentences.shape[0] < 40 * tiny_task1.memory_size      # sentences repeat across stories
    assert np.array_equal(batch.sentences[batch.slots], batch.stories)
    plain = batch._replace(sentences=None, slots=None, bags=None, qbags=None)
    l1, g1, _ = memn2n.loss_and_grads(params, batch, config)
    l2, g2, _ = memn2n.loss_and_grads(params, plain, config)
    assert l1 == pytest.approx(l2, rel=1e-12) and all(np.allclose(g1[k], g2[k], atol=1e-12) for k in g1)


def test_bags_made_once_per_split_are_the_bags_of_the_batch(tiny_task1):
    """make_batch takes the weighted bags from a table made once per split (split_bags); forward, given a batch
    without them, encodes its sentences itself: the same numbers, bit for bit."""
    config = memn2n.Config.tiny(vocab_size=len(tiny_task1.vocab), memory_size=tiny_task1.memory_size, hops=3)
    params = memn2n.init_params(config, np.random.default_rng(0))
    batch = memn2n.make_batch(tiny_task1.train, np.arange(7, 47), config, np.random.default_rng(1), train=True)
    assert batch.bags is not None and batch.qbags.W.shape == (40, 2 * config.vocab_size)
    own = batch._replace(bags=None, qbags=None)
    l1, g1, _ = memn2n.loss_and_grads(params, batch, config)
    l2, g2, _ = memn2n.loss_and_grads(params, own, config)
    assert l1 == l2 and all(np.array_equal(g1[k], g2[k]) for k in g1)
    assert memn2n.split_bags(tiny_task1.train, config) is memn2n.split_bags(tiny_task1.train, config)   # made once
    other = memn2n.replace(config, d=4)                       # another config: a table of its own
    assert memn2n.split_bags(tiny_task1.train, other).sentences.b.shape == (2, 4)
    with pytest.raises(ValueError, match="its bags were not made for these sentences"):
        memn2n.forward(params, batch._replace(bags=memn2n.split_bags(tiny_task1.train, other).sentences), config)


def test_a_split_from_another_vocabulary_is_named_when_its_bags_are_made(tiny_task1):
    config = memn2n.Config.tiny(vocab_size=len(tiny_task1.vocab) - 3, memory_size=tiny_task1.memory_size)
    with pytest.raises(ValueError, match=r"word ids outside \[0, \d+\).*another vocabulary"):
        memn2n.make_batch(tiny_task1.train, np.arange(4), config)


def test_temporal_lookup_equals_the_one_hot_product_the_tutorial_teaches():
    from memnet_np import ops
    rng = np.random.default_rng(10)
    age = rng.integers(0, 6, size=(3, 4))
    mask = rng.random((3, 4)) < 0.7
    T = rng.standard_normal((6, 5))
    by_lookup, _ = ops.lookup_forward(T, age, mask)
    by_product, _ = ops.temporal_forward(np.zeros((3, 4, 5)), T, ops.encode_ages(age, mask, 6))
    assert np.allclose(by_lookup, by_product)
    dout = rng.standard_normal((3, 4, 5))
    _, dT = ops.temporal_backward(dout, ops.TemporalCache(ops.encode_ages(age, mask, 6)))
    assert np.allclose(ops.lookup_backward(dout, ops.lookup_forward(T, age, mask)[1]), dT)


@pytest.mark.parametrize("change,message", [
    (lambda b: b._replace(stories=b.stories[0]), r"batch.stories must have shape \(N, M, L\)"),
    (lambda b: b._replace(queries=b.queries[:, :-1]), r"batch.queries must have shape \(4, 5\)"),
    (lambda b: b._replace(answers=b.answers[:, None]), r"batch.answers must have shape \(4,\)"),
    (lambda b: b._replace(mask=b.mask[:, :2]), r"batch.mask must have shape \(4, 4\)"),
    (lambda b: b._replace(stories=b.stories.astype(float)), "batch.stories must hold integers"),
    (lambda b: b._replace(mask=b.mask.astype(int)), "batch.mask must be boolean"),
    (lambda b: b._replace(stories=list(b.stories)), "batch.stories must be a numpy array"),
    (lambda b: b._replace(mask=np.zeros_like(b.mask)), "example 0 has no sentence in its memory"),
    (lambda b: b._replace(age=b.age + 50), r"batch.age must lie in \[0, 6\)"),
    (lambda b: b._replace(stories=np.concatenate([b.stories] * 2, 1), mask=np.concatenate([b.mask] * 2, 1),
                          age=np.concatenate([b.age] * 2, 1)), "8 memory slots but the model's memory_size is 6"),
    (lambda b: b._replace(queries=-b.queries), "batch.queries holds word ids outside"),
])
def test_bad_batches_are_named_at_the_front_door(change, message):
    config, params, batch = setup(11)
    with pytest.raises(ValueError, match=message):
        memn2n.forward(params, change(batch), config)


def test_bad_params_are_named_at_the_front_door():
    config, params, batch = setup(12)
    for bad, message in [({**params, "C1": params["C1"][:, :3]}, r"params\['C1'\] must have shape \(11, 6\)"),
                         ({k: v for k, v in params.items() if k != "TA"}, "params has no 'TA'"),
                         ({**params, "A": np.where(params["A"] > 0, np.nan, params["A"])},
                          r"params\['A'\] holds NaN or inf")]:
        with pytest.raises(ValueError, match=message):
            memn2n.forward(bad, batch, config)


# ----------------------------------------------------------------------------------------------------------------
# Clipping: the official code's (each word matrix with its time rows, spectral norm) or Frobenius per array


def test_official_clipping_is_matlabs_norm_of_each_word_matrix_with_its_time_rows():
    config = memn2n.Config.tiny(clipping="official", max_grad_norm=0.5)
    rng = np.random.default_rng(4)
    grads = {k: rng.standard_normal(v.shape) for k, v in memn2n.init_params(config, rng).items()}
    got, norms = memn2n.clip_gradients(grads, config)
    # written out from nn/Weight.m: the MATLAB Weight of A holds the word rows and the time words' rows
    for words, time in (("A", "TA"), ("C1", "TC1"), ("C2", "TC2")):
        matrix = np.concatenate([grads[words], grads[time]])
        sigma = np.linalg.svd(matrix, compute_uv=False)[0]    # MATLAB norm(X) of a matrix
        assert norms[words] == norms[time] == pytest.approx(sigma, rel=1e-12)
        expected = matrix * (0.5 / sigma)
        assert np.allclose(np.concatenate([got[words], got[time]]), expected, rtol=1e-12)
    frob, norms = memn2n.clip_gradients(grads, memn2n.Config.tiny(max_grad_norm=0.5))
    assert norms["A"] == pytest.approx(np.linalg.norm(grads["A"]))
    assert np.allclose(frob["TA"], grads["TA"] * 0.5 / np.linalg.norm(grads["TA"]))
    with pytest.raises(ValueError, match="clipping must be one of"):
        memn2n.Config.tiny(clipping="spectral")


@pytest.mark.gradcheck
@pytest.mark.parametrize("tying", ["adjacent", "layerwise"])
def test_the_answer_over_the_time_words_as_the_official_code(tying):
    # the official answer matrix is Cᴷ's whole table, time words included (layer-wise: W's own time rows, TW)
    config, params, batch = setup(5, tying=tying, encoding="official", answer_time_words=True, hops=3)
    V, rows = config.vocab_size, config.memory_size
    logits, _ = memn2n.forward(params, batch, config)
    assert logits.shape == (len(batch.answers), V + rows)
    assert np.allclose(logits, memn2n.forward_naive(params, batch, config), atol=1e-12)
    time_rows = "TC3" if tying == "adjacent" else "TW"
    assert memn2n.answer_time_rows(config) == time_rows and params[time_rows].shape == (rows, config.d)
    # the time words' scores use the raw rows: uᴷ⁺¹ · T_Cᴷ[t], no PE weight of the time-word position
    u = memn2n.forward(params, batch, config)[1].u_final
    assert np.allclose(logits[:, V:], u @ params[time_rows].T, atol=1e-12)
    plain = memn2n.replace(config, answer_time_words=False)
    if tying == "adjacent":                                   # the vocabulary's columns are unchanged
        assert np.array_equal(logits[:, :V], memn2n.forward(params, batch, plain)[0])
    report = check_gradients(lambda p: memn2n.loss_and_grads(p, batch, config), params, max_entries=40)
    assert set(report) == set(memn2n.param_names(config)) and all(r.checked > 0 for r in report.values())
    assert all(r.rel_error < 1e-7 for r in report.values()), format_report(report)
    # the time rows' gradient includes the answer's: without the option T_Cᴷ's differs (adjacent), TW has none
    g_with = memn2n.loss_and_grads(params, batch, config)[1][time_rows]
    if tying == "adjacent":
        assert not np.allclose(g_with, memn2n.loss_and_grads(params, batch, plain)[1][time_rows])
    else:
        assert "TW" not in memn2n.param_names(plain) and np.abs(g_with).max() > 0
    # official clipping treats layer-wise W with its time rows as one matrix
    grads = {k: np.ones_like(v) for k, v in params.items()}
    _, norms = memn2n.clip_gradients(grads, memn2n.replace(config, clipping="official", max_grad_norm=0.5))
    W = "C3" if tying == "adjacent" else "W"
    assert norms[W] == norms[time_rows] == pytest.approx(np.sqrt((V + rows) * config.d))   # ones: σ = √(rows·cols)
    assert memn2n.answer_word(["<nil>", "a"], 1) == "a" and memn2n.answer_word(["<nil>", "a"], 3) == "<time word 1>"
    with pytest.raises(ValueError, match="answer_time_words needs temporal encoding"):
        memn2n.Config.tiny(answer_time_words=True, temporal=False)
