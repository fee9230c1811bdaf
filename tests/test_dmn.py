"""The DMN and DMN+: the vectorised model against its one-example-at-a-time oracle, every gradient against finite
differences, each piece on its own, the padding rules, the supporting-fact targets and the front door."""
import numpy as np
import pytest

from memnet_np import dmn, ops
from memnet_np.data import babi
from memnet_np.gradcheck import check_gradients, check_op, format_report

TOL = 1e-7
VARIANTS = ["dmn", "dmn+"]


def model(variant, seed=0, N=5, F=4, L=5, **over):
    """A tiny model with non-zero, non-symmetric parameters (biases too) and a batch of ragged stories."""
    rng = np.random.default_rng(seed)
    config = dmn.Config.tiny(variant=variant, **over)
    params = dmn.init_params(config, rng)
    for k in params:
        if k != "E":
            params[k] = params[k] + rng.standard_normal(params[k].shape) * 0.3
    return config, params, dmn.example_batch(config, rng, N=N, F=F, L=L)


def gru_answers():
    """The tiny vocabulary's 10 words as answers of 1 to 3 decoder words, for answer_module="gru"."""
    words = ["<nil>", "a", "b", "c", "a,b", "b,c", "c,a", "x", "y", "z", "a,b,c"]
    answer_words, answer_table = dmn.decoder_vocabulary(words, words[1:])
    return dict(answer_module="gru", answer_words=answer_words, answer_table=answer_table)


# ---------------------------------------------------------------------------------------------------------------
# the oracle


@pytest.mark.parametrize("variant,extra", [("dmn", {}), ("dmn", {"eos": True}), ("dmn+", {}), ("dmn", "gru"),
                                           ("dmn", {"dropout": 0.4}), ("dmn+", {"dropout": 0.4}),
                                           ("dmn", "gru-dropout"), ("dmn", {"extra_passes": "end", "seed": 9}),
                                           ("dmn+", {"extra_passes": "end", "seed": 6}),
                                           ("dmn", {"extra_passes": "end", "seed": 9, "teacher": True}),
                                           ("dmn+", {"encoding": "official"})],
                         ids=["dmn", "dmn-eos", "dmn+", "dmn-gru-answer", "dmn-dropout", "dmn+-dropout",
                              "dmn-gru-dropout", "dmn-end-of-passes", "dmn+-end-of-passes",
                              "dmn-end-of-passes-training", "dmn+-official-position-encoding"])
def test_vectorised_forward_matches_the_naive_one(variant, extra):
    extra = {**gru_answers(), "dropout": 0.4 * (extra == "gru-dropout")} if str(extra).startswith("gru") else extra
    teacher = extra.pop("teacher", False) if isinstance(extra, dict) else False
    config, params, batch = model(variant, N=6, F=4, L=5, passes=3, **extra)
    if teacher:                                              # the training batch's moves, not the gates' choice
        batch = batch._replace(moves=np.array([[1, 1, 1], [1, 0, 0], [0, 0, 0], [1, 1, 0], [1, 1, 1], [0, 0, 0]],
                                              bool))
    assert batch.mask.sum(1).min() == 1 and batch.mask.sum(1).max() == 4      # ragged: padded facts in play
    assert (batch.fact_keep is None) == (config.dropout == 0)                 # masks drawn for a dropout model
    logits, cache = dmn.forward(params, batch, config)
    logits_naive, gates_naive = dmn.forward_naive(params, batch, config)
    if config.extra_passes == "end":                         # stories that stop after 0, 1, 2 passes and never
        moved = np.stack([p.moved for p in cache.passes], 1)
        assert set(moved.sum(1)) == {0, 1, 2, 3}
        if teacher:
            np.testing.assert_array_equal(moved, batch.moves)
    np.testing.assert_allclose(logits, logits_naive, atol=1e-12)
    np.testing.assert_allclose(dmn.gates_of(cache), gates_naive, atol=1e-12)


def test_naive_forward_does_not_call_the_vectorised_helpers(monkeypatch):
    models = [model("dmn"), model("dmn+")]

    def refuse(name):
        def call(*a, **k):
            raise AssertionError(f"forward_naive called {name}")
        return call
    for name in ("story_words", "gate_features_forward", "episode_forward", "input_module_forward"):
        monkeypatch.setattr(dmn, name, refuse(name))
    for name in ("gru_forward", "gru_sequence_forward", "lookup_forward", "encode_bags"):
        monkeypatch.setattr(ops, name, refuse(name))
    for config, params, batch in models:
        dmn.forward_naive(params, batch, config)


# ---------------------------------------------------------------------------------------------------------------
# gradients: the whole model, every parameter


@pytest.mark.gradcheck
@pytest.mark.parametrize("variant,supervised,extra", [
    ("dmn", True, {}), ("dmn", False, {}), ("dmn+", True, {}), ("dmn+", False, {}),
    ("dmn", True, {"eos": True, "gate_targets": "causal"}), ("dmn+", True, {"gate_targets": "causal"}),
    ("dmn", True, "gru"), ("dmn", True, {"dropout": 0.3}), ("dmn+", False, {"dropout": 0.3}),
    ("dmn", True, "gru-dropout"), ("dmn", True, {"extra_passes": "end", "seed": 22}),
    ("dmn+", True, {"extra_passes": "end", "gate_targets": "causal", "seed": 6}),
    ("dmn", True, {"extra_passes": "end", "seed": 22, "teacher": True})],
    ids=["dmn-supervised", "dmn", "dmn+-supervised", "dmn+", "dmn-eos-causal", "dmn+-causal", "dmn-gru-answer",
         "dmn-dropout", "dmn+-dropout", "dmn-gru-dropout", "dmn-end-of-passes", "dmn+-end-of-passes",
         "dmn-end-of-passes-training"])
def test_every_parameter_passes_the_gradient_check(variant, supervised, extra):
    extra = {**gru_answers(), "dropout": 0.3 * (extra == "gru-dropout")} if str(extra).startswith("gru") else extra
    extra = {"seed": 1, **extra}
    teacher = extra.pop("teacher", False)
    config, params, batch = model(variant, passes=3, gate_supervision=0.7 if supervised else 0.0, l2=0.01, **extra)
    if teacher:                                              # a training batch: the passes as the support says
        support = batch.support.copy()
        support[0], support[1, 1:] = dmn.END, dmn.END          # c_end the target from pass 1, from pass 2
        batch = batch._replace(support=support, moves=dmn.teacher_moves(support))
    _, cache = dmn.forward(params, batch, config)
    if config.extra_passes == "end":                         # stories that stop at different passes, and not at all
        assert len(set(np.stack([p.moved for p in cache.passes], 1).sum(1))) >= (2 if teacher else 3)
        assert (batch.support == dmn.END).any()              # c_end's gate is supervised too
    for p in cache.passes:                                   # |c − q| and |c − m| of real facts away from 0 ...
        real = cache.mask[..., None] & np.ones_like(p.features.c, bool)
        # ... but where a dropped fact unit (0) meets a memory unit the DMN+'s ReLU shut (0): c − m stays 0 under
        # any small change of the parameters there, so |c − m| is flat and its gradient 0 (sign(0)) is right
        flat = real & (p.features.c == 0) & (p.features.m[:, None] == 0)
        assert not flat.any() or (config.dropout > 0 and variant == "dmn+")
        assert np.abs(p.features.sq[real]).min() == 1 and np.abs(p.features.sm[real & ~flat]).min() == 1
        diffs = np.concatenate([np.abs(p.features.c - p.features.q[:, None])[real],
                                np.abs(p.features.c - p.features.m[:, None])[real & ~flat]])
        assert diffs.min() > 1e-4
    report = check_gradients(lambda p: dmn.loss_and_grads(p, batch, config), params, max_entries=25)
    assert set(report) == set(dmn.param_names(config))
    assert all(r.checked > 0 and r.rel_error < TOL for r in report.values()), format_report(report)


# ---------------------------------------------------------------------------------------------------------------
# gradients: each piece


def facts(rng, N=3, F=4, H=3):
    return rng.standard_normal((N, F, H)), rng.standard_normal((N, H)), rng.standard_normal((N, H))


@pytest.mark.gradcheck
@pytest.mark.parametrize("bilinear", [True, False])
def test_gate_features_gradients(bilinear):
    rng = np.random.default_rng(2)
    c, m, q = facts(rng)
    inputs = {"c": c, "m": m, "q": q}
    wrt = ["c", "m", "q"]
    if bilinear:
        inputs["Wb"] = rng.standard_normal((3, 3))
        wrt.append("Wb")
        bwd = dmn.gate_features_backward
    else:
        bwd = lambda dz, cache: dmn.gate_features_backward(dz, cache)[:3]
    errs = check_op(dmn.gate_features_forward, bwd, inputs, wrt, rng)
    assert set(errs) == set(wrt) and max(errs.values()) < TOL, errs


def test_gate_features_are_the_nine_blocks_in_order():
    rng = np.random.default_rng(3)
    c, m, q = facts(rng, N=1, F=2, H=3)
    Wb = rng.standard_normal((3, 3))
    z, _ = dmn.gate_features_forward(c, m, q, Wb)
    assert z.shape == (1, 2, 7 * 3 + 2)
    cf, mm, qq = c[0, 1], m[0], q[0]
    want = np.concatenate([cf, mm, qq, cf * qq, cf * mm, np.abs(cf - qq), np.abs(cf - mm), [cf @ Wb @ qq],
                           [cf @ Wb @ mm]])
    np.testing.assert_allclose(z[0, 1], want, atol=1e-13)
    z_plus, _ = dmn.gate_features_forward(c, m, q)
    np.testing.assert_allclose(z_plus[0, 1], want[3 * 3:7 * 3], atol=1e-13)


GATE_NET_MASK = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 1, 0]], bool)   # row 3 with a hole


@pytest.mark.gradcheck
@pytest.mark.parametrize("with_b2,masked", [(True, False), (False, False), (True, True), (False, True)])
def test_gate_net_gradients(with_b2, masked):
    rng = np.random.default_rng(4)
    inputs = {"z": rng.standard_normal((3, 4, 6)), "W1": rng.standard_normal((5, 6)) * 0.5,
              "b1": rng.standard_normal(5), "w2": rng.standard_normal(5)}
    wrt = ["z", "W1", "b1", "w2"]
    if with_b2:
        inputs["b2"] = np.array([0.3])
        wrt.append("b2")
        bwd = dmn.gate_net_backward
    else:
        bwd = lambda ds, cache: dmn.gate_net_backward(ds, cache)[:4]
    masked = {"mask": GATE_NET_MASK} if masked else {}       # only the real facts scored; padded ones give b2
    errs = check_op(dmn.gate_net_forward, bwd, inputs, wrt, rng, **masked)
    assert set(errs) == set(wrt) and max(errs.values()) < TOL, errs


def test_gate_net_scores_the_real_facts_alone():
    rng = np.random.default_rng(14)
    z, W1, b1, w2, b2 = (rng.standard_normal((3, 4, 6)), rng.standard_normal((5, 6)), rng.standard_normal(5),
                         rng.standard_normal(5), np.array([0.7]))
    full, full_cache = dmn.gate_net_forward(z, W1, b1, w2, b2)
    part, cache = dmn.gate_net_forward(z, W1, b1, w2, b2, GATE_NET_MASK)
    np.testing.assert_allclose(part[GATE_NET_MASK], full[GATE_NET_MASK], atol=1e-13)
    assert np.all(part[~GATE_NET_MASK] == 0.7) and cache.z.shape == (GATE_NET_MASK.sum(), 6)
    ds = rng.standard_normal((3, 4)) * GATE_NET_MASK          # the gates give padded facts no gradient
    got, want = dmn.gate_net_backward(ds, cache), dmn.gate_net_backward(ds, full_cache)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-13)
    assert not got[0][~GATE_NET_MASK].any()                  # dz of a padded fact


@pytest.mark.gradcheck
@pytest.mark.parametrize("variant", VARIANTS)
def test_gates_gradients_and_padded_facts_get_no_weight(variant):
    rng = np.random.default_rng(5)
    s = rng.standard_normal((3, 4)) * 2
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], bool)
    g, cache = dmn.gates_forward(s, mask, variant)
    assert not g[~mask].any() and (g[mask] > 0).all()
    if variant == "dmn+":
        np.testing.assert_allclose(g.sum(1), 1.0)             # a softmax over each story's own facts
        assert g[2, 0] == 1.0
    errs = check_op(lambda s: dmn.gates_forward(s, mask, variant),
                    lambda dg, c: dmn.gates_backward(dg, c, mask, variant), {"s": s}, ["s"], rng)
    assert errs["s"] < TOL, errs


@pytest.mark.gradcheck
@pytest.mark.parametrize("variant", VARIANTS)
def test_episode_gradients(variant):
    rng = np.random.default_rng(6)
    H, rows = 3, 3 if variant == "dmn" else 2
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], bool)
    g = rng.uniform(0.1, 0.9, size=mask.shape) * mask
    inputs = {"c": rng.standard_normal((3, 4, H)), "g": g,
              "W": None}
    W = (rng.standard_normal((rows * H, H)), rng.standard_normal((rows * H, H)), rng.standard_normal(rows * H))

    def fwd(c, g):
        return dmn.episode_forward(c, g, mask, W)
    errs = check_op(fwd, lambda de, cache: dmn.episode_backward(de, cache)[:2], {"c": inputs["c"], "g": g},
                    ["c", "g"], rng)
    assert max(errs.values()) < TOL, errs
    e, cache = fwd(inputs["c"], g)
    dc, dg, *_ = dmn.episode_backward(rng.standard_normal(e.shape), cache)
    assert not dc[~mask].any() and not dg[~mask].any()       # padded facts: no gradient


@pytest.mark.gradcheck
@pytest.mark.parametrize("variant", VARIANTS)
def test_memory_update_gradients(variant):
    rng = np.random.default_rng(7)
    H = 3
    e, m, q = rng.standard_normal((4, H)), rng.standard_normal((4, H)), rng.standard_normal((4, H))
    if variant == "dmn":
        W = {"Wx": rng.standard_normal((3 * H, H)), "Wh": rng.standard_normal((3 * H, H)),
             "b": rng.standard_normal(3 * H)}
        fwd = lambda e, m, Wx, Wh, b: dmn.memory_update_forward(e, m, q, (Wx, Wh, b))
        bwd = lambda dm, c: (lambda de, dmp, dq, dW: (de, dmp) + dW)(*dmn.memory_update_backward(dm, c))
        wrt = ["e", "m", "Wx", "Wh", "b"]
        inputs = {"e": e, "m": m, **W}
    else:
        W = {"W": rng.standard_normal((H, 3 * H)), "b": rng.standard_normal(H)}
        fwd = lambda e, m, q, W, b: dmn.memory_update_forward(e, m, q, (W, b))
        bwd = lambda dm, c: (lambda de, dmp, dq, dW: (de, dmp, dq) + dW)(*dmn.memory_update_backward(dm, c))
        wrt = ["e", "m", "q", "W", "b"]
        inputs = {"e": e, "m": m, "q": q, **W}
        pre = np.concatenate([m, e, q], 1) @ W["W"].T + W["b"]
        assert np.abs(pre).min() > 1e-4                       # away from the ReLU's kink
    errs = check_op(fwd, bwd, inputs, wrt, rng)
    assert set(errs) == set(wrt) and max(errs.values()) < TOL, errs


@pytest.mark.gradcheck
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("targets", dmn.GATE_TARGETS)
def test_supervision_loss_gradient(variant, targets):
    rng = np.random.default_rng(8)
    N, K, F = 3, 2, 4
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]], bool)
    support = np.array([[2, 0], [1, -1], [-1, 2]])

    def loss(s):
        g = np.stack([dmn.gates_forward(s[:, k], mask, variant)[0] for k in range(K)], 1)
        return dmn.supervision_loss_forward(s, g, support, mask, variant, 0.7, targets)
    s = rng.standard_normal((N, K, F))
    value, cache = loss(s)
    num = np.zeros_like(s)
    for ix in np.ndindex(s.shape):
        sp, sm = s.copy(), s.copy()
        sp[ix] += 1e-5
        sm[ix] -= 1e-5
        num[ix] = (loss(sp)[0] - loss(sm)[0]) / 2e-5
    assert np.abs(cache.ds - num).max() < 1e-8 and np.abs(num).max() > 0.1
    assert not cache.ds[1, 1].any() and not cache.ds[2, 0].any()   # unsupervised passes
    assert not cache.ds[~np.broadcast_to(mask[:, None], s.shape)].any()   # padded facts
    if targets != "all":                                      # facts before the supporting one get no gradient
        assert not cache.ds[0, 0, :2].any() and not cache.ds[2, 1, :2].any() and cache.ds[0, 0, 2:].all()


def test_supervision_loss_is_the_cross_entropy_of_the_gates():
    s = np.array([[[2.0, -1.0, 0.5]]])
    mask = np.ones((1, 3), bool)
    g = 1 / (1 + np.exp(-s))
    loss, _ = dmn.supervision_loss_forward(s, g, np.array([[1]]), mask, "dmn", 1.0)
    assert loss == pytest.approx(-(np.log(1 - g[0, 0, 0]) + np.log(g[0, 0, 1]) + np.log(1 - g[0, 0, 2])))
    p = np.exp(s) / np.exp(s).sum()
    loss, _ = dmn.supervision_loss_forward(s, p, np.array([[1]]), mask, "dmn+", 2.0)
    assert loss == pytest.approx(-2 * np.log(p[0, 0, 1]))


def test_causal_gate_targets_leave_the_facts_before_the_supporting_one_free():
    """Fact 1 supports: fact 0 (before it) is not scored, fact 2 (after it) is pushed shut; the softmax of DMN+
    is taken over facts 1 and 2 alone."""
    s = np.array([[[2.0, -1.0, 0.5]]])
    mask = np.ones((1, 3), bool)
    g = 1 / (1 + np.exp(-s))
    loss, _ = dmn.supervision_loss_forward(s, g, np.array([[1]]), mask, "dmn", 1.0, "causal")
    assert loss == pytest.approx(-(np.log(g[0, 0, 1]) + np.log(1 - g[0, 0, 2])))
    p = np.exp(s) / np.exp(s).sum()
    loss, _ = dmn.supervision_loss_forward(s, p, np.array([[1]]), mask, "dmn+", 2.0, "causal")
    assert loss == pytest.approx(-2 * np.log(np.exp(-1.0) / (np.exp(-1.0) + np.exp(0.5))))
    with pytest.raises(ValueError, match="gate_targets must be one of"):
        dmn.Config.tiny(gate_targets="later")


def for_data(dataset, **overrides):                           # a stand-in dataset has no questions for the
    return dmn.Config.for_data(dataset, **{"answer_module": "softmax", **overrides})   # decoder's words


def stand_in(source, tasks):
    """A dataset as Config.for_data reads it: its source ("bAbI 1k", "bAbI 10k", "generated") and tasks."""
    from types import SimpleNamespace
    tasks = (tasks,) if isinstance(tasks, int) else tasks
    return SimpleNamespace(vocab=list(range(9)), memory_size=7, name=f"{source} tasks {tasks}", source=source,
                           tasks=tasks)


def test_gate_targets_per_babi_1k_task_and_the_user_overrides_them():
    assert for_data(stand_in("bAbI 1k", 2)).gate_targets == "causal-new"
    assert for_data(stand_in("bAbI 1k", 3)).gate_targets == "causal"
    assert for_data(stand_in("bAbI 1k", 1)).gate_targets == "causal-new"
    assert for_data(stand_in("bAbI 1k", 4)).gate_targets == "all"
    assert for_data(stand_in("bAbI 10k", 2)).gate_targets == "all"   # chosen on 1k only
    assert for_data(stand_in("generated", 2)).gate_targets == "all"
    assert for_data(stand_in("bAbI 1k", tuple(range(1, 21)))).gate_targets == "all"
    assert for_data(stand_in("bAbI 1k", 2), gate_targets="all").gate_targets == "all"
    renamed = stand_in("generated", 2)
    renamed.name = "bAbI 1k task 2"                           # the source decides, not the name
    assert for_data(renamed).gate_targets == "all"


def test_the_dmn_regularises_the_babi_1k_tasks_chosen_on_held_out_questions_and_no_other():
    regularised = lambda c: (c.l2, c.dropout, c.init_std)
    assert dmn.REGULARISED_TASKS == (5, 6, 7, 8, 9, 10, 14, 18, 19)
    for task in range(1, 21):
        got = regularised(for_data(stand_in("bAbI 1k", task)))
        assert got == ((1e-3, 0.1, 1.0) if task in dmn.REGULARISED_TASKS else (0.0, 0.0, 0.3)), task
    assert regularised(for_data(stand_in("bAbI 10k", 10))) == (0.0, 0.0, 0.3)             # 1k only
    assert regularised(for_data(stand_in("generated", 6))) == (0.0, 0.0, 0.3)
    assert regularised(dmn.Config.for_data(stand_in("bAbI 1k", 10), variant="dmn+")) == (0.0, 0.0, 0.3)
    assert regularised(for_data(stand_in("bAbI 1k", 10), l2=0.0, dropout=0.0)) == (0.0, 0.0, 1.0)   # the user's


def test_the_dmn_trains_longer_on_the_babi_1k_tasks_chosen_on_held_out_questions_and_no_other():
    schedule = lambda c: (c.epochs, c.decay_every, c.patience)
    assert dmn.LONG_SCHEDULE_TASKS == (2, 8, 9, 13, 19)
    for task in range(1, 21):
        got = schedule(for_data(stand_in("bAbI 1k", task)))
        assert got == ((100, 25, 20) if task in dmn.LONG_SCHEDULE_TASKS else (60, 10, 10)), task
    assert schedule(for_data(stand_in("bAbI 10k", 9))) == (60, 10, 10)                    # 1k only
    assert schedule(for_data(stand_in("generated", 9))) == (60, 10, 10)
    assert schedule(dmn.Config.for_data(stand_in("bAbI 1k", 9), variant="dmn+")) == (60, 10, 10)
    assert schedule(for_data(stand_in("bAbI 1k", 9), epochs=30)) == (30, 25, 20)          # the user's flag wins
    nine = for_data(stand_in("bAbI 1k", 9))                   # a task can take both per-task settings
    assert (nine.l2, nine.dropout, nine.init_std) == (1e-3, 0.1, 1.0)


def test_the_dmn_trains_in_smaller_batches_on_the_babi_1k_tasks_chosen_on_held_out_questions_and_no_other():
    assert dmn.SMALL_BATCH_TASKS == (2, 13)
    for task in range(1, 21):
        got = for_data(stand_in("bAbI 1k", task)).batch_size
        assert got == (16 if task in dmn.SMALL_BATCH_TASKS else 32), task
    assert for_data(stand_in("bAbI 10k", 13)).batch_size == 32                            # 1k only
    assert for_data(stand_in("generated", 13)).batch_size == 32
    assert dmn.Config.for_data(stand_in("bAbI 1k", 13), variant="dmn+").batch_size == 128
    assert for_data(stand_in("bAbI 1k", 13), batch_size=64).batch_size == 64              # the user's flag wins
    thirteen = for_data(stand_in("bAbI 1k", 13))                # with its long schedule
    assert (thirteen.epochs, thirteen.decay_every, thirteen.patience) == (100, 25, 20)


def test_dmn_plus_on_babi_10k_takes_the_public_codes_settings_and_the_user_overrides_them():
    schedule = lambda c: (c.epochs, c.decay_every, c.patience, c.batch_size, c.gate_supervision)
    regularised = lambda c: (c.l2, c.dropout, c.init_std, c.gate_bias)
    tenk = dmn.Config.for_data(stand_in("bAbI 10k", 2), variant="dmn+")
    assert schedule(tenk) == (256, 256, 20, 128, 0.0) and regularised(tenk) == (1e-3, 0.1, 1.0, 1.0)
    onek = dmn.Config.for_data(stand_in("bAbI 1k", 2), variant="dmn+")
    assert schedule(onek) == (60, 10, 10, 128, 0.0) and regularised(onek) == (0.0, 0.0, 0.3, 0.0)
    assert schedule(for_data(stand_in("bAbI 10k", 2))) == (60, 10, 10, 32, 1.0)   # the DMN keeps its own
    assert regularised(for_data(stand_in("bAbI 10k", 2))) == (0.0, 0.0, 0.3, 0.0)
    mine = dmn.Config.for_data(stand_in("bAbI 10k", 2), variant="dmn+", epochs=30, decay_every=10, patience=10,
                               l2=0.0, dropout=0.0, init_std=0.3, gate_bias=0.0)
    assert schedule(mine) == (30, 10, 10, 128, 0.0) and regularised(mine) == (0.0, 0.0, 0.3, 0.0)


@pytest.mark.parametrize("variant", ["dmn", "dmn+"])
def test_gate_bias_starts_each_grus_reset_gate_open_and_update_gate_shut_as_the_gru_op_reads_them(variant):
    config = dmn.Config.tiny(variant=variant, gate_bias=1.5)
    params = dmn.init_params(config, np.random.default_rng(0))
    H = config.hidden
    grus = [n[:-2] for n, s in dmn._shapes(config).items() if n.endswith("_b") and s == (3 * H,)]
    assert grus == (["in", "ep", "mem"] if variant == "dmn" else ["q", "fw", "bw"])
    sigmoid = lambda v: 1 / (1 + np.exp(-v))
    for g in grus:      # from a zero input and state only the biases act: r = σ(1.5), u = σ(−1.5)
        Wx, Wh, b = params[g + "_Wx"], params[g + "_Wh"], params[g + "_b"]
        _, cache = ops.gru_forward(np.zeros((2, Wx.shape[1])), np.zeros((2, H)), Wx, Wh, b)
        np.testing.assert_allclose(cache.r, sigmoid(1.5))
        np.testing.assert_allclose(cache.u, sigmoid(-1.5))
        np.testing.assert_array_equal(b[H:2 * H], 0.0)          # the candidate's bias stays 0
    if variant == "dmn+":
        np.testing.assert_array_equal(params["att_b"], 0.0)     # TensorFlow's attention GRU starts its gate at 0
    plain = dmn.init_params(dmn.Config.tiny(variant=variant), np.random.default_rng(0))
    for name in plain:                                          # nothing else moves, and no extra random draw
        if not any(name == g + "_b" for g in grus):
            np.testing.assert_array_equal(plain[name], params[name])
    with pytest.raises(ValueError, match="gate_bias must be a finite number"):
        dmn.Config.tiny(gate_bias=float("nan"))


def test_the_dmn_on_data_answers_with_the_papers_gru_decoder_and_dmn_plus_with_one_softmax():
    from memnet_np.data import load_generated
    ds = load_generated(8, n_train=50, n_test=10, seed=0, memory_size=70)
    config = dmn.Config.for_data(ds)
    assert config.answer_module == dmn.DMN_ANSWER_MODULE == "gru" and len(config.answer_table) == config.vocab_size
    assert dmn.Config.for_data(ds, answer_module="softmax").answer_module == "softmax"
    assert dmn.Config.for_data(ds, variant="dmn+").answer_module == "softmax"
    assert dmn.Config().answer_module == "softmax"            # the bare model, as the tutorial builds it by hand


def test_causal_new_scores_every_fact_in_a_pass_that_repeats_the_one_before():
    s = np.array([[[2.0, -1.0, 0.5]] * 3])                   # (1, 3 passes, 3 facts)
    g = 1 / (1 + np.exp(-s))
    support = np.array([[2, 1, 1]])                           # pass 3 repeats pass 2's fact
    mask = np.ones((1, 3), bool)
    _, causal = dmn.supervision_loss_forward(s, g, support, mask, "dmn", 1.0, "causal")
    _, new = dmn.supervision_loss_forward(s, g, support, mask, "dmn", 1.0, "causal-new")
    _, every = dmn.supervision_loss_forward(s, g, support, mask, "dmn", 1.0, "all")
    np.testing.assert_array_equal(new.ds[0, :2], causal.ds[0, :2])   # passes 1 and 2 find new facts
    np.testing.assert_array_equal(new.ds[0, 2], every.ds[0, 2])      # pass 3 is scored on every fact
    assert causal.ds[0, 2, 0] == 0 and new.ds[0, 2, 0] != 0


# ---------------------------------------------------------------------------------------------------------------
# the input module and the batch


def test_facts_are_the_input_gru_states_at_sentence_ends():
    config, params, batch = model("dmn")
    c, _ = dmn.input_module_forward(params, batch, config)
    for n in range(batch.stories.shape[0]):
        words = [w for f in range(batch.stories.shape[1]) if batch.mask[n, f] for w in batch.stories[n, f] if w]
        x = params["E"][words][None]                          # (1, T, d)
        hs, _ = ops.gru_sequence_forward(x, np.zeros((1, config.hidden)), params["in_Wx"], params["in_Wh"],
                                         params["in_b"])
        ends = np.cumsum([np.count_nonzero(batch.stories[n, f]) for f in range(batch.mask[n].sum())]) - 1
        np.testing.assert_allclose(c[n, :len(ends)], hs[0, ends], atol=1e-13)
        assert not c[n, len(ends):].any()                     # padded facts are zero


def test_story_words_runs_the_sentences_together():
    stories = np.array([[[3, 4, 0], [5, 0, 0], [0, 0, 0]], [[6, 7, 8], [9, 2, 0], [1, 0, 0]]])
    mask = np.array([[True, True, False], [True, True, True]])
    words, word_mask, ends = dmn.story_words(stories, mask)
    assert words.tolist() == [[3, 4, 5, 0, 0, 0], [6, 7, 8, 9, 2, 1]]
    assert word_mask.sum(1).tolist() == [3, 6]
    assert ends.tolist() == [[1, 2, 0], [2, 4, 5]]
    words, word_mask, ends = dmn.story_words(stories, mask, eos=10)   # the end-of-sentence word after each
    assert words.tolist() == [[3, 4, 10, 5, 10, 0, 0, 0, 0], [6, 7, 8, 10, 9, 2, 10, 1, 10]]
    assert word_mask.sum(1).tolist() == [5, 9]
    assert ends.tolist() == [[2, 4, 0], [3, 6, 8]]            # the facts are read at the end-of-sentence words


def test_end_of_sentence_word_is_row_v_of_the_embedding_and_the_facts_are_read_there():
    config, params, batch = model("dmn", eos=True)
    V = config.vocab_size
    assert params["E"].shape == (V + 1, config.d) and (batch.words == V).sum() == batch.mask.sum()
    c, _ = dmn.input_module_forward(params, batch, config)
    for n in range(batch.stories.shape[0]):
        words = [w for f in range(batch.stories.shape[1]) if batch.mask[n, f]
                 for w in [*batch.stories[n, f][batch.stories[n, f] != 0], V]]
        hs, _ = ops.gru_sequence_forward(params["E"][words][None], np.zeros((1, config.hidden)), params["in_Wx"],
                                         params["in_Wh"], params["in_b"])   # (1, T, H)
        np.testing.assert_allclose(c[n, :batch.mask[n].sum()], hs[0, np.flatnonzero(np.array(words) == V)],
                                   atol=1e-13)
    with pytest.raises(ValueError, match="eos is the DMN's input module"):
        dmn.Config.tiny(variant="dmn+", eos=True)
    with pytest.raises(ValueError, match=r"params\['E'\] must have shape"):    # a model saved without it
        dmn.forward({**params, "E": params["E"][:V]}, batch, config)


def test_pass_targets_follow_the_file_order_and_skip_cut_off_facts():
    order = np.array([[4, 1, babi.NO_FACT], [babi.CUT_OFF, 2, babi.NO_FACT], [0, babi.NO_FACT, babi.NO_FACT]])
    assert dmn.pass_targets(order, 3, 3, "free").tolist() == [[4, 1, -1], [-1, 2, -1], [0, -1, -1]]
    assert dmn.pass_targets(order, 3, 3, "last").tolist() == [[4, 1, 1], [-1, 2, 2], [0, 0, 0]]
    assert dmn.pass_targets(order, 3, 3, "end").tolist() == [[4, 1, -2], [-1, 2, -2], [0, -2, -2]]
    assert dmn.pass_targets(order, 1, 3).tolist() == [[4], [-1], [0]]
    assert dmn.pass_targets(None, 2, 1).tolist() == [[-1, -1]]
    cut_last = np.array([[1, babi.CUT_OFF]])
    assert dmn.pass_targets(cut_last, 3, 1, "last").tolist() == [[1, -1, -1]]


def test_make_batch_on_babi_arrays_supervises_the_supporting_facts():
    qs = babi.parse_babi(["1 Mary went to the kitchen.", "2 John went to the garden.",
                          "3 Where is Mary?\tkitchen\t1", "4 Mary went to the hallway.",
                          "5 Where is Mary?\thallway\t4"], task=1)
    vocab = babi.build_vocab(qs)
    arrays = babi.vectorize(qs, vocab, memory_size=70)
    config = dmn.Config(vocab_size=len(vocab), memory_size=arrays.mask.shape[1])
    batch = dmn.make_batch(arrays, np.arange(2), config)
    assert batch.support.tolist() == [[0, 0, 0], [2, 2, 2]]
    assert batch.ends.tolist()[1] == [4, 9, 14]              # "mary went to the kitchen" ends at word 4
    with pytest.raises(ValueError, match="memory_size"):
        dmn.make_batch(arrays, np.arange(2), dmn.replace(config, memory_size=2))


def test_epoch_batches_see_every_example_once_and_group_similar_lengths():
    from memnet_np.data.babi import random_story_arrays
    rng = np.random.default_rng(11)
    stories, queries, answers, mask = random_story_arrays(rng, 403, 12, 5, 20)
    arrays = babi.BabiArrays(stories, queries, answers, mask, mask & False, np.ones(403, int), [None] * 403,
                             stories.reshape(-1, 5), np.arange(403 * 12).reshape(403, 12))
    config = dmn.Config.tiny(batch_size=10)
    batches = dmn.epoch_batches(arrays, config, rng)
    assert sorted(np.concatenate(batches).tolist()) == list(range(403))
    assert sorted(len(b) for b in batches)[-1] == 10 and len(batches) == 41
    length = (stories != 0).sum((1, 2))
    spread = np.mean([np.ptp(length[b]) for b in batches])
    random_spread = np.mean([np.ptp(length[b]) for b in np.array_split(rng.permutation(403), 41)])
    assert spread < random_spread / 2                         # neighbours in length share a batch
    assert dmn.epoch_batches(arrays, config, np.random.default_rng(0))[0].tolist() != \
        dmn.epoch_batches(arrays, config, np.random.default_rng(1))[0].tolist()


def test_run_epoch_uses_the_dmn_batching_unless_told_not_to(monkeypatch):
    """bench times the DMN's epoch both ways: its length-bucketed batches, and the plain shuffled ones."""
    from memnet_np import train
    from memnet_np.data import load_generated
    ds = load_generated(1, n_train=60, n_test=10, seed=0, memory_size=70)
    config = dmn.Config.for_data(ds, d=6, hidden=6, gate_hidden=6, batch_size=16)
    calls = []
    real = dmn.epoch_batches
    monkeypatch.setattr(dmn, "epoch_batches", lambda *a: calls.append(1) or real(*a))
    for own in (True, False):
        rng = np.random.default_rng(0)
        params = dmn.init_params(config, rng)
        loss, err = train.run_epoch(dmn, params, ds.train, config, rng, config.lr, dmn.make_optimizer(config),
                                    own_batching=own)
        assert np.isfinite(loss) and 0 <= err <= 100
        assert len(calls) == 1                                  # called for the first epoch only


def test_dropout_masks_are_drawn_for_training_batches_only():
    """make_batch(train=True) draws each unit's factor, 0 with probability p, else 1/(1 − p); evaluation batches and
    a model without dropout get none; the same generator state gives the same masks."""
    from memnet_np.data import load_generated
    ds = load_generated(1, n_train=200, n_test=10, seed=0, memory_size=70)
    config = dmn.Config.for_data(ds, dropout=0.25, hidden=16)
    idx = np.arange(64)
    batch = dmn.make_batch(ds.train, idx, config, np.random.default_rng(3), train=True)
    N, F = batch.mask.shape
    assert batch.fact_keep.shape == (N, F, 16) and batch.memory_keep.shape == (N, 16)
    for keep in (batch.fact_keep, batch.memory_keep):
        assert set(np.unique(keep).tolist()) == {0.0, np.float32(1 / 0.75)}
    dropped = np.mean(np.concatenate([batch.fact_keep.ravel(), batch.memory_keep.ravel()]) == 0)
    assert 0.23 < dropped < 0.27                              # ~20,000 units
    again = dmn.make_batch(ds.train, idx, config, np.random.default_rng(3), train=True)
    assert np.array_equal(again.fact_keep, batch.fact_keep)
    assert dmn.make_batch(ds.train, idx, config, np.random.default_rng(3)).fact_keep is None   # evaluation
    off = dmn.make_batch(ds.train, idx, dmn.replace(config, dropout=0.0), np.random.default_rng(3), train=True)
    assert off.fact_keep is None and off.memory_keep is None
    with pytest.raises(ValueError, match="dropout needs a random generator"):
        dmn.make_batch(ds.train, idx, config, None, train=True)


def test_dropout_acts_on_the_facts_and_the_answer_input_only():
    """Masks of ones change nothing; a dropped fact unit reaches neither the gates nor the episode, so its input
    module gradient through that unit is zero; the answer sees mᴷ times its mask."""
    config, params, batch = model("dmn", seed=4, dropout=0.5, passes=2)
    plain = batch._replace(fact_keep=None, memory_keep=None)
    ones = batch._replace(fact_keep=np.ones_like(batch.fact_keep), memory_keep=np.ones_like(batch.memory_keep))
    np.testing.assert_array_equal(dmn.forward(params, ones, config)[0], dmn.forward(params, plain, config)[0])
    _, cache = dmn.forward(params, batch, config)
    assert np.all(cache.c[batch.fact_keep == 0] == 0)         # the facts the passes read, after dropout
    memory_all_dropped = batch._replace(memory_keep=np.zeros_like(batch.memory_keep))
    logits, _ = dmn.forward(params, memory_all_dropped, config)
    np.testing.assert_allclose(logits, np.broadcast_to(params["ba"], logits.shape))   # â = softmax(W_a·0 + b_a)
    config, params, batch = model("dmn+", seed=4, dropout=0.5, passes=2)    # DMN+: [mᴷ; q], q is not dropped
    logits, cache = dmn.forward(params, batch._replace(memory_keep=np.zeros_like(batch.memory_keep)), config)
    np.testing.assert_allclose(logits, cache.q @ params["Wa"][:, config.hidden:].T + params["ba"], atol=1e-12)
    with pytest.raises(ValueError, match="dropout must be in"):
        dmn.Config.tiny(dropout=1.0)


def test_data_window_is_70_facts_and_130_for_task_3():
    assert dmn.data_memory_size(1) == 70 and dmn.data_memory_size(3) == 130 and dmn.data_memory_size("joint") == 130


# ---------------------------------------------------------------------------------------------------------------
# the front door


@pytest.mark.parametrize("field,change,message", [
    ("support", lambda b: b.support[:, :1], "batch.support must have shape"),
    ("support", lambda b: np.where(b.support >= 0, 3, b.support), "support must name a real fact"),
    ("words", lambda b: b.words + 100, "batch.words holds word ids outside"),
    ("mask", lambda b: b.mask.astype(int), "batch.mask must be boolean"),
    ("ends", lambda b: b.ends + 1000, "batch.ends must point into batch.words"),
    ("answers", lambda b: b.answers.astype(float), "batch.answers must hold integers"),
    ("fact_keep", lambda b: np.ones(b.stories.shape), r"batch.fact_keep must be a float array of shape \(5, 4, 4\)"),
    ("memory_keep", lambda b: np.ones((5, 4), int), "batch.memory_keep must be a float array"),
])
def test_bad_batches_are_named(field, change, message):
    config, params, batch = model("dmn")
    if field == "support":
        assert (batch.mask.sum(1) < 4).any()
    with pytest.raises(ValueError, match=message):
        dmn.forward(params, batch._replace(**{field: change(batch)}), config)


def test_bad_params_and_configs_are_named():
    config, params, batch = model("dmn+")
    with pytest.raises(ValueError, match="params has no 'mem2_W'"):
        dmn.forward({k: v for k, v in params.items() if k != "mem2_W"}, batch, config)
    with pytest.raises(ValueError, match=r"params\['Wa'\] must have shape"):
        dmn.forward({**params, "Wa": params["Wa"][:, :3]}, batch, config)
    bad = {**params, "W1": params["W1"].copy()}
    bad["W1"][0, 0] = np.nan
    with pytest.raises(ValueError, match="W1.*NaN"):
        dmn.forward(bad, batch, config)
    with pytest.raises(ValueError, match="variant must be one of"):
        dmn.Config.tiny(variant="dmn++")
    with pytest.raises(ValueError, match="passes must be at least 1"):
        dmn.Config.tiny(passes=0)
    with pytest.raises(ValueError, match=r"encoding must be 'paper' or 'official' \(DMN\+ has no bag-of-words"):
        dmn.Config.tiny(variant="dmn+", encoding=None)
    with pytest.raises(ValueError, match="vocab_size must be at least 2"):
        dmn.init_params(dmn.Config.tiny(vocab_size=1), np.random.default_rng(0))


def test_gru_decoder_words_targets_and_greedy_answers():
    words = ["<nil>", "e", "n,n", "s,e", "garden"]
    answer_words, table = dmn.decoder_vocabulary(words, ["s,e", "n,n", "e"])
    assert answer_words == ("<end>", "e", "n", "s")
    assert table == ((-1, -1, -1), (1, 0, -1), (2, 2, 0), (3, 1, 0), (-1, -1, -1))   # "garden" is no answer
    config = dmn.Config.tiny(vocab_size=5, answer_module="gru", answer_words=answer_words, answer_table=table)
    assert dmn.answer_targets(np.array([3, 1]), config).tolist() == [[3, 1, 0], [1, 0, -1]]
    with pytest.raises(ValueError, match="answer id 4 is not an answer the GRU decoder knows"):
        dmn.answer_targets(np.array([3, 4]), config)
    logits = np.full((4, 3, 4), -5.0)                         # (N, T, A): the greedy words of each answer
    for n, ws in enumerate([[3, 1, 0], [1, 0, 2], [2, 2, 2], [0, 1, 1]]):
        logits[n, np.arange(3), ws] = 5.0
    assert dmn.decode(logits, config).tolist() == [3, 1, -1, -1]  # after the end word nothing counts; without an
    #                                                          end word, or with nothing before it, no answer
    loss, dlogits, p = dmn.sequence_cross_entropy(logits[:2], np.array([[3, 1, 0], [1, 0, -1]]))
    assert loss == pytest.approx(-np.log(p[0, [0, 1, 2], [3, 1, 0]]).sum() - np.log(p[1, [0, 1], [1, 0]]).sum())
    assert not dlogits[1, 2].any()                            # no word after the end


def test_gru_decoder_needs_its_table_and_the_dmn():
    with pytest.raises(ValueError, match=r"Config.for_data\(dataset, answer_module='gru'\)"):
        dmn.Config.tiny(answer_module="gru")
    with pytest.raises(ValueError, match="answer_module='gru' is the DMN's decoder"):
        dmn.Config.tiny(variant="dmn+", **gru_answers())
    with pytest.raises(ValueError, match="answer_module must be 'softmax' or 'gru'"):
        dmn.Config.tiny(answer_module="seq2seq")


def test_dmn_plus_has_untied_memory_updates_and_no_gate_bias():
    config = dmn.Config.tiny(variant="dmn+", passes=3)
    names = dmn.param_names(config)
    assert {"mem1_W", "mem2_W", "mem3_W"} <= set(names) and "b2" not in names and "Wb" not in names
    assert "b2" in dmn.param_names(dmn.Config.tiny())


# ---------------------------------------------------------------------------------------------------------------
# learning


def test_dmn_learns_generated_task_1_with_gate_supervision():
    """A few epochs on the built-in generator's single-supporting-fact stories: far below chance (~83% error)."""
    from memnet_np import data, train
    ds = data.load_generated(1, n_train=500, n_test=200, seed=0, memory_size=70)
    config = dmn.Config.for_data(ds, d=16, hidden=16, gate_hidden=16, epochs=10, patience=None, lr=0.01,
                                 batch_size=16)
    result = train.train(dmn, ds, config, np.random.default_rng(0))
    assert result.test_error < 10, result.test_error


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_end_of_passes_fact_stops_the_memory_at_the_first_pass_whose_largest_gate_is_its(variant):
    config, params, batch = model(variant, seed=9 if variant == "dmn" else 6, N=6, F=4, L=5, passes=3,
                                  extra_passes="end")
    _, cache = dmn.forward(params, batch, config)
    F = batch.mask.shape[1]
    assert cache.c.shape[1] == F + 1 and np.array_equal(cache.c[:, F], np.broadcast_to(params["c_end"], (6, 4)))
    assert dmn.gates_of(cache).shape == (6, 3, F)             # the story's facts; c_end's gate stays inside
    chose_end = np.stack([p.g.argmax(1) == F for p in cache.passes], 1)   # (N, K)
    moved = np.stack([p.moved for p in cache.passes], 1)      # (N, K)
    np.testing.assert_array_equal(moved, np.cumsum(chose_end, 1) == 0)   # moving until the first choice of c_end
    with pytest.raises(ValueError, match="batch.support must name a real fact of the story \\(or −1\\)"):
        dmn.forward(params, batch, dmn.replace(config, extra_passes="last"))   # END without c_end
    with pytest.raises(ValueError, match="extra_passes must be one of"):
        dmn.Config.tiny(extra_passes="stop")


def test_a_training_batch_moves_the_memory_until_the_pass_sent_to_the_end_of_passes_fact():
    from memnet_np.data import load_generated
    ds = load_generated(2, n_train=40, n_test=10, seed=0, memory_size=70)
    config = dmn.Config.for_data(ds, extra_passes="end", passes=4)
    rng = np.random.default_rng(0)
    train_batch = dmn.make_batch(ds.train, np.arange(8), config, rng, train=True)
    test_batch = dmn.make_batch(ds.train, np.arange(8), config)
    assert test_batch.moves is None                           # at test time the gates decide
    unsupervised = dmn.replace(config, gate_supervision=0.0)   # and without supervision: no supporting facts read
    assert dmn.make_batch(ds.train, np.arange(8), unsupervised, rng, train=True).moves is None
    assert train_batch.support[:, :2].min() >= 0 and (train_batch.support[:, 2:] == dmn.END).all()   # 2 facts
    np.testing.assert_array_equal(train_batch.moves, np.tile([True, True, False, False], (8, 1)))
    assert dmn.teacher_moves(np.array([[-1, -1, -1]])).all()   # no supporting facts: every pass moves
    with pytest.raises(ValueError, match="batch.moves must be None or"):
        dmn.forward(dmn.init_params(config, rng), train_batch._replace(moves=train_batch.moves[:, :2]), config)
