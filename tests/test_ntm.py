"""NTM: every addressing stage and memory op against finite differences, every parameter through time, the shift
convention, simplex and erase/add invariants, safe numerics, the per-sequence oracle, and bad inputs."""
import numpy as np
import pytest

from memnet_np import ntm
from memnet_np.gradcheck import check_gradients, check_op, format_report

OP_TOL = 1e-7
SHORT_COPY_SEQUENCES = 2400
MODEL_TOL = 1e-6


def simplex(rng, shape, scale=1.5):
    """Random non-uniform points of the simplex along the last axis."""
    z = rng.standard_normal(shape) * scale
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def setup(seed=0, scale=0.5, **kw):
    """A tiny model with parameters moved off their initial values (non-zero, non-symmetric), and a batch."""
    rng = np.random.default_rng(seed)
    config = ntm.Config.tiny(**kw)
    params = ntm.init_params(config, rng)
    for p in params.values():
        p += rng.standard_normal(p.shape) * scale
    return config, params, ntm.example_batch(config, rng)


# ---------------------------------------------------------------------------------------------------------------
# each stage alone

N, HH, M, D, S = 3, 2, 7, 4, 3


@pytest.mark.gradcheck
def test_content_addressing_gradients():
    r = np.random.default_rng(1)
    inputs = {"k": np.tanh(r.standard_normal((N, HH, D))), "beta": r.uniform(0.5, 4.0, (N, HH)),
              "mem": r.standard_normal((N, M, D))}
    errs = check_op(ntm.content_forward, ntm.content_backward, inputs, ["k", "beta", "mem"], r)
    assert max(errs.values()) < OP_TOL, errs


@pytest.mark.gradcheck
def test_content_addressing_gradient_at_a_zero_memory_row():
    """A zero row is smooth too (its norm is √ε = 1e-4), but curved on the scale of 1e-4: a smaller step."""
    r = np.random.default_rng(1)
    k, beta, mem = np.tanh(r.standard_normal((N, HH, D))), r.uniform(0.5, 4.0, (N, HH)), r.standard_normal((N, M, D))
    mem[0, 3] = 0.0
    errs = check_op(lambda mem: ntm.content_forward(k, beta, mem), lambda dw, c: ntm.content_backward(dw, c)[2],
                    {"mem": mem}, ["mem"], r, h=1e-8)
    assert errs["mem"] < 1e-6, errs


@pytest.mark.gradcheck
def test_interpolation_gradients():
    r = np.random.default_rng(2)
    inputs = {"wc": simplex(r, (N, HH, M)), "w_prev": simplex(r, (N, HH, M)), "g": r.uniform(0.1, 0.9, (N, HH))}
    errs = check_op(ntm.interpolate_forward, ntm.interpolate_backward, inputs, ["wc", "w_prev", "g"], r)
    assert max(errs.values()) < OP_TOL, errs


@pytest.mark.gradcheck
@pytest.mark.parametrize("shifts", [1, 3, 5])
def test_shift_gradients(shifts):
    r = np.random.default_rng(3)
    inputs = {"wg": simplex(r, (N, HH, M)), "s": simplex(r, (N, HH, shifts))}
    errs = check_op(ntm.shift_forward, ntm.shift_backward, inputs, ["wg", "s"], r)
    assert max(errs.values()) < OP_TOL, errs


@pytest.mark.gradcheck
def test_sharpening_gradients():
    r = np.random.default_rng(4)
    inputs = {"ws": simplex(r, (N, HH, M)), "gamma": r.uniform(1.0, 3.0, (N, HH))}
    errs = check_op(ntm.sharpen_forward, ntm.sharpen_backward, inputs, ["ws", "gamma"], r)
    assert max(errs.values()) < OP_TOL, errs


@pytest.mark.gradcheck
def test_read_gradients():
    r = np.random.default_rng(5)
    inputs = {"mem": r.standard_normal((N, M, D)), "w": simplex(r, (N, 2, M))}
    errs = check_op(ntm.read_forward, ntm.read_backward, inputs, ["mem", "w"], r)
    assert max(errs.values()) < OP_TOL, errs


@pytest.mark.gradcheck
@pytest.mark.parametrize("writers", [1, 2, 3])
def test_erase_gradients(writers):
    r = np.random.default_rng(6)
    inputs = {"mem": r.standard_normal((N, M, D)), "w": simplex(r, (N, writers, M), 2.0),
              "e": r.uniform(0.05, 0.95, (N, writers, D))}
    errs = check_op(ntm.erase_forward, ntm.erase_backward, inputs, ["mem", "w", "e"], r)
    assert max(errs.values()) < OP_TOL, errs


@pytest.mark.gradcheck
@pytest.mark.parametrize("writers", [1, 2])
def test_add_gradients(writers):
    r = np.random.default_rng(7)
    inputs = {"mem": r.standard_normal((N, M, D)), "w": simplex(r, (N, writers, M)),
              "a": np.tanh(r.standard_normal((N, writers, D)))}
    errs = check_op(ntm.add_forward, ntm.add_backward, inputs, ["mem", "w", "a"], r)
    assert max(errs.values()) < OP_TOL, errs


@pytest.mark.gradcheck
def test_head_activation_gradients():
    config = ntm.Config.tiny()
    r = np.random.default_rng(8)
    P = r.standard_normal((N, ntm.head_layout(config)["a"].stop)) * 2
    def fwd(P):
        heads, cache = ntm.heads_forward(P, config)
        return np.concatenate([h.reshape(N, -1) for h in heads], 1), cache
    def bwd(dflat, cache):
        parts, start = [], 0
        for h in cache.heads:
            size = h[0].size
            parts.append(dflat[:, start:start + size].reshape(h.shape))
            start += size
        return ntm.heads_backward(ntm.Heads(*parts), cache, config)
    errs = check_op(fwd, bwd, {"P": P}, ["P"], r)
    assert errs["P"] < OP_TOL, errs


@pytest.mark.gradcheck
def test_whole_addressing_pipeline_gradients():
    """The four stages chained, as a step runs them, against finite differences of the chain."""
    r = np.random.default_rng(9)
    inputs = {"k": np.tanh(r.standard_normal((N, HH, D))), "beta": r.uniform(0.5, 4.0, (N, HH)),
              "g": r.uniform(0.1, 0.9, (N, HH)), "s": simplex(r, (N, HH, S)), "gamma": r.uniform(1.0, 3.0, (N, HH)),
              "w_prev": simplex(r, (N, HH, M)), "mem": r.standard_normal((N, M, D))}
    def fwd(k, beta, g, s, gamma, w_prev, mem):
        heads = ntm.Heads(k, beta, g, s, gamma, None, None)
        return ntm.address(heads, w_prev, mem)
    def bwd(dw, caches):
        cc, ic, sc, pc = caches
        dws, dgamma = ntm.sharpen_backward(dw, pc)
        dwg, ds = ntm.shift_backward(dws, sc)
        dwc, dw_prev, dg = ntm.interpolate_backward(dwg, ic)
        dk, dbeta, dmem = ntm.content_backward(dwc, cc)
        return dk, dbeta, dg, ds, dgamma, dw_prev, dmem
    errs = check_op(fwd, bwd, inputs, list(inputs), r)
    assert max(errs.values()) < OP_TOL, errs


# ---------------------------------------------------------------------------------------------------------------
# conventions, by hand


def test_shift_convention():
    """s[..., j] weighs the shift δ = j − r; δ = +1 moves the focus to the next slot up, wrapping around."""
    w = np.zeros((1, 1, 5))
    w[0, 0, 2] = 1.0
    plus, minus, stay = np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    assert np.array_equal(ntm.shift_forward(w, plus[None, None])[0][0, 0], [0, 0, 0, 1, 0])
    assert np.array_equal(ntm.shift_forward(w, minus[None, None])[0][0, 0], [0, 1, 0, 0, 0])
    assert np.array_equal(ntm.shift_forward(w, stay[None, None])[0][0, 0], [0, 0, 1, 0, 0])
    last = np.zeros((1, 1, 5))
    last[0, 0, 4] = 1.0
    assert np.array_equal(ntm.shift_forward(last, plus[None, None])[0][0, 0], [1, 0, 0, 0, 0])   # wraps to 0
    wide = np.zeros((1, 1, 5))
    wide[0, 0, 0] = 1.0
    assert np.array_equal(ntm.shift_forward(wide, np.eye(5)[None, None, 0])[0][0, 0], [0, 0, 0, 1, 0])  # δ = −2


def test_content_addressing_by_hand():
    k = np.array([[[1.0, 0.0]]])                            # (1, 1, 2)
    mem = np.array([[[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]]])   # cosines 1, 0, −1
    w, cache = ntm.content_forward(k, np.array([[2.0]]), mem)
    assert np.allclose(cache.K[0, 0], [1.0, 0.0, -1.0], atol=1e-7)
    e = np.exp([2.0, 0.0, -2.0])
    assert np.allclose(w[0, 0], e / e.sum(), atol=1e-7)


def test_sharpening_and_interpolation_by_hand():
    ws = np.array([[[0.5, 0.25, 0.25]]])
    w, _ = ntm.sharpen_forward(ws, np.array([[2.0]]))
    assert np.allclose(w[0, 0], np.array([0.25, 0.0625, 0.0625]) / 0.375)
    wg, _ = ntm.interpolate_forward(np.array([[[1.0, 0.0, 0.0]]]), np.array([[[0.0, 0.0, 1.0]]]), np.array([[0.25]]))
    assert np.allclose(wg[0, 0], [0.25, 0.0, 0.75])


def test_write_is_erase_then_add_by_hand():
    mem = np.array([[[1.0, 2.0], [3.0, 4.0]]])
    w = np.array([[[1.0, 0.0]]])
    e = np.array([[[1.0, 0.5]]])
    a = np.array([[[10.0, 20.0]]])
    erased, _ = ntm.erase_forward(mem, w, e)
    assert np.allclose(erased, [[[0.0, 1.0], [3.0, 4.0]]])
    written, _ = ntm.add_forward(erased, w, a)
    assert np.allclose(written, [[[10.0, 21.0], [3.0, 4.0]]])


# ---------------------------------------------------------------------------------------------------------------
# invariants


def test_erase_zero_and_add_zero_leave_memory_unchanged():
    r = np.random.default_rng(10)
    mem = r.standard_normal((N, M, D))
    w = simplex(r, (N, 2, M))
    erased, _ = ntm.erase_forward(mem, w, np.zeros((N, 2, D)))
    added, _ = ntm.add_forward(mem, w, np.zeros((N, 2, D)))
    assert np.array_equal(erased, mem) and np.array_equal(added, mem)


def test_full_erase_clears_the_addressed_slot_only():
    r = np.random.default_rng(11)
    mem = r.standard_normal((1, M, D))
    w = np.zeros((1, 1, M))
    w[0, 0, 4] = 1.0
    erased, _ = ntm.erase_forward(mem, w, np.ones((1, 1, D)))
    assert np.all(erased[0, 4] == 0) and np.array_equal(np.delete(erased[0], 4, 0), np.delete(mem[0], 4, 0))


@pytest.mark.parametrize("scale", [0.5, 5.0])
def test_every_weighting_stays_on_the_simplex(scale):
    config, params, batch = setup(12, scale=scale)
    logits, cache = ntm.forward(params, batch, config)
    for step in cache.steps:
        wg, _ = ntm.interpolate_forward(*step.interpolate)
        for w in (step.content.w, wg, step.sharpen.ws, step.sharpen.w):
            assert np.all(w >= 0) and np.allclose(w.sum(-1), 1.0, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# safe numerics: zero memory, huge β and γ, exact zeros in w̃


def test_zero_memory_gives_uniform_content_weights_and_finite_gradients():
    r = np.random.default_rng(13)
    k, beta, mem = np.tanh(r.standard_normal((N, HH, D))), np.full((N, HH), 3.0), np.zeros((N, M, D))
    w, cache = ntm.content_forward(k, beta, mem)
    assert np.allclose(w, 1.0 / M)
    grads = ntm.content_backward(r.standard_normal(w.shape), cache)
    assert all(np.all(np.isfinite(g)) for g in grads)


def test_huge_beta_and_gamma_give_one_hot_weights_without_nan():
    r = np.random.default_rng(14)
    k, mem = np.tanh(r.standard_normal((N, HH, D))), r.standard_normal((N, M, D))
    w, cache = ntm.content_forward(k, np.full((N, HH), 1e12), mem)
    assert np.all(np.isfinite(w)) and np.allclose(w.max(-1), 1.0)
    assert all(np.all(np.isfinite(g)) for g in ntm.content_backward(r.standard_normal(w.shape), cache))
    ws = simplex(r, (N, HH, M))
    ws[0, 0, 2] = 0.0                                       # an exact zero: 0^γ and log 0 must not appear
    ws[1, 1, :] = 0.0
    ws[1, 1, 5] = 1.0                                       # one-hot
    for gamma in (1.0, 1e3, 1e12):
        w, cache = ntm.sharpen_forward(ws, np.full((N, HH), gamma))
        assert np.all(np.isfinite(w)) and np.allclose(w.sum(-1), 1.0)
        dws, dgamma = ntm.sharpen_backward(r.standard_normal(w.shape), cache)
        assert np.all(np.isfinite(dws)) and np.all(np.isfinite(dgamma))
    assert np.allclose(w.max(-1), 1.0) and w[1, 1, 5] == 1.0


@pytest.mark.parametrize("memory_init,value", [("constant", 0.0), ("constant", 1e-6)])
def test_model_with_zero_memory_and_extreme_parameters_stays_finite(memory_init, value):
    config, params, batch = setup(15, scale=30.0, memory_init=memory_init, memory_init_value=value)
    loss, grads, info = ntm.loss_and_grads(params, batch, config)
    assert np.isfinite(loss)
    assert all(np.all(np.isfinite(g)) for g in grads.values())


# ---------------------------------------------------------------------------------------------------------------
# the whole model: every parameter through several time steps, and the per-sequence oracle

MODEL_CASES = [dict(memory_init="learned"),
               dict(controller="feedforward", memory_init="random"),
               dict(memory_init="constant"),
               dict(memory_init="learned", read_heads=1, write_heads=1, shift_range=2)]


@pytest.mark.gradcheck
@pytest.mark.parametrize("kw", MODEL_CASES)
def test_every_parameter_gradient_through_time(kw):
    config, params, batch = setup(16, **kw)
    assert ntm.steps_to_run(batch) >= 5                     # several steps of backpropagation through time
    report = check_gradients(lambda p: ntm.loss_and_grads(p, batch, config), params, max_entries=25)
    assert set(report) == set(ntm.param_names(config))
    assert all(r.checked > 0 and r.kinks == 0 for r in report.values())
    assert all(r.rel_error < MODEL_TOL for r in report.values()), format_report(report, MODEL_TOL)


@pytest.mark.parametrize("kw", MODEL_CASES + [dict(controller="feedforward", read_heads=3, write_heads=1)])
def test_batched_forward_equals_the_per_sequence_oracle(kw):
    config, params, batch = setup(17, scale=1.0, **kw)
    logits, _ = ntm.forward(params, batch, config)
    assert np.allclose(logits, ntm.forward_naive(params, batch, config), atol=1e-10, rtol=0)


def test_loss_is_the_bit_cross_entropy_of_the_oracle_over_scored_steps():
    config, params, batch = setup(18, scale=1.0, memory_init="learned")
    loss, _, info = ntm.loss_and_grads(params, batch, config)
    z = ntm.forward_naive(params, batch, config)
    p = 1 / (1 + np.exp(-z))
    y = batch.targets
    ce = -(y * np.log(p) + (1 - y) * np.log(1 - p)) * batch.target_mask[..., None]
    assert loss == pytest.approx(ce.sum((1, 2)).mean(), rel=1e-10)
    assert np.allclose(info["bits_per_sequence"], ce.sum((1, 2)) / np.log(2))
    assert np.array_equal(info["bit_errors_per_sequence"], (((p > 0.5) != (y > 0.5)) & batch.target_mask[..., None])
                          .sum((1, 2)))


def test_protocol_shapes_determinism_and_dtype():
    config, params, batch = setup(19, memory_init="random")
    l1, g1, info = ntm.loss_and_grads(params, batch, config)
    l2, g2, _ = ntm.loss_and_grads(params, batch, config)
    assert l1 == l2 and all(np.array_equal(g1[k], g2[k]) for k in g1)
    assert set(g1) == set(params) and all(g1[k].shape == params[k].shape for k in params)
    T = ntm.steps_to_run(batch)
    assert info["read_weightings"].shape == (3, T, 2, config.memory_slots)
    assert info["write_weightings"].shape == (3, T, 2, config.memory_slots)
    bits, pinfo = ntm.predict(params, batch, config)
    assert bits.shape == batch.targets.shape and pinfo["memory"].shape == (3, 7, 4)
    c32 = ntm.replace(config, dtype="float32")
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    l32, g32, _ = ntm.loss_and_grads(p32, batch, c32)
    assert all(g.dtype == np.float32 for g in g32.values()) and l32 == pytest.approx(l1, rel=1e-4)


def test_params_follow_the_config():
    assert "Wh" not in ntm.param_names(ntm.Config.tiny(controller="feedforward"))
    assert "M0" in ntm.param_names(ntm.Config.tiny(memory_init="learned"))
    assert "M0" not in ntm.param_names(ntm.Config.tiny())
    shapes = ntm.param_shapes(ntm.Config())
    assert shapes["Wx"] == (400, 9 + 20) and shapes["W_heads"] == (2 * (20 + 1 + 1 + 3 + 1) + 2 * 20, 100)
    assert shapes["W_out"] == (8, 100 + 20)


# ---------------------------------------------------------------------------------------------------------------
# bad input


def test_bad_batches_name_the_field():
    config, params, batch = setup(20)
    cases = {
        "batch.inputs": batch._replace(inputs=batch.inputs[..., :-1]),
        "batch.targets": batch._replace(targets=batch.targets[:, :-1]),
        "batch.target_mask": batch._replace(target_mask=batch.target_mask.astype(int)),
        "batch.lengths": batch._replace(lengths=batch.lengths[:-1]),
        "batch.memory0": batch._replace(memory0=np.zeros((3, 7, 4))),
    }
    nan = batch.inputs.copy()
    nan[0, 0, 0] = np.nan
    cases["batch.inputs holds NaN"] = batch._replace(inputs=nan)
    for field, bad in cases.items():
        with pytest.raises(ValueError, match=field.replace(".", r"\.")):
            ntm.forward(params, bad, config)
    with pytest.raises(ValueError, match=r"batch\.memory0"):
        rnd = ntm.replace(config, memory_init="random")
        ntm.forward(params, batch, rnd)
    with pytest.raises(ValueError, match="batch.targets must be bits"):
        ntm.forward(params, batch._replace(targets=batch.targets * 2), config)


def test_bad_params_name_the_parameter():
    config, params, batch = setup(21)
    with pytest.raises(ValueError, match=r"params\['W_heads'\] must have shape"):
        ntm.forward({**params, "W_heads": params["W_heads"][:-1]}, batch, config)
    without = dict(params)
    del without["r0"]
    with pytest.raises(ValueError, match="params lack 'r0'"):
        ntm.forward(without, batch, config)


@pytest.mark.parametrize("field,value", [("controller", "gru"), ("memory_init", "zeros"), ("shift_range", 4),
                                         ("shift_range", -1), ("read_heads", 0), ("memory_width", 2.5),
                                         ("task", "sort"), ("optimizer", "sgd"), ("dtype", "float16"),
                                         ("lr", float("nan")), ("min_len", 5)])
def test_bad_configs_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        ntm.Config.tiny(**{field: value})


def test_random_memory_needs_an_rng():
    config = ntm.Config.tiny(memory_init="random")
    seq = ntm.task_batch(ntm.replace(config, task="copy", input_width=4, output_width=3), np.random.default_rng(0), 2)
    with pytest.raises(ValueError, match="rng"):
        ntm.make_batch(seq, config)


# ---------------------------------------------------------------------------------------------------------------
# training and speed


def small_copy(**kw):
    base = dict(input_width=4, output_width=3, memory_slots=8, memory_width=6, controller_size=16, min_len=1,
                max_len=3, optimizer="adam", lr=1e-2, batch_size=8)
    base.update(kw)
    return ntm.Config.for_task("copy", **base)


def test_training_learns_short_copies_through_the_memory():
    """A feedforward controller has no state of its own: only the memory can carry a vector to its recall step.
    Guessing makes 3 bit errors per sequence (half of 3 bits × 2 vectors on average); the model must get below a
    tenth of that, and cut its cost fourfold, which a model with wrong gradients does not do."""
    config = small_copy(controller="feedforward")
    records = []
    out = ntm.train_task(config=config, rng=np.random.default_rng(0), sequences=SHORT_COPY_SEQUENCES,
                         eval_every=400, eval_sequences=100, progress=records.append)
    first, last = out["history"][0], out["history"][-1]
    assert records == out["history"] and last["sequences"] == SHORT_COPY_SEQUENCES
    assert last["bit_errors_per_sequence"] < 0.3 and last["bits_per_sequence"] < first["bits_per_sequence"] / 4
    assert out["converged_at"] is not None and out["converged_at"]["sequences"] <= SHORT_COPY_SEQUENCES


def test_train_task_checks_its_arguments():
    with pytest.raises(ValueError, match="rng"):
        ntm.train_task(config=small_copy(), rng=0)
    with pytest.raises(ValueError, match="sequences"):
        ntm.train_task(config=small_copy(), rng=np.random.default_rng(0), sequences=0)


def test_train_task_switches_the_widths_with_the_task():
    out = ntm.train_task("associative-recall", config=ntm.Config.tiny(), rng=np.random.default_rng(0), sequences=2,
                         batch=2, eval_every=2, eval_sequences=2)
    assert out["config"].task == "associative-recall" and out["config"].input_width == 8
    assert out["config"].output_width == 6 and out["config"].batch_size == 2


def test_bench_reports_sequences_per_second_by_batch():
    r = ntm.bench(ntm.Config.tiny(dtype="float32"), np.random.default_rng(0), quick=True)
    assert set(r["sequences_per_second"]) == {1, 16} and all(v > 0 for v in r["sequences_per_second"].values())
    assert set(r["memory_slots"]) == {32, 128} and "batch  16" in ntm.format_bench(r)


@pytest.mark.slow
def test_copy_converges_within_30k_sequences_and_generalises_to_length_40():
    """The tuned settings on the paper's model (memory 128 × 20, LSTM 100): seed 0 reaches ≤ 0.1 bit errors per
    sequence on held-out lengths 1–20 within 30k sequences (about a minute on one core)."""
    config = ntm.Config.tuned("copy")
    out = ntm.train_task(config=config, rng=np.random.default_rng(0), sequences=30_000, eval_every=1000)
    assert out["converged_at"] is not None and out["converged_at"]["sequences"] <= 30_000
    report = ntm.test_report(out["best_params"], config, np.random.default_rng(10_000))
    assert report["bit_errors_per_sequence"] <= 0.1
    assert report["generalisation"]["bit_errors_per_sequence"] <= 1.0


def test_results_hold_the_issue_fields_and_score_the_best_parameters():
    config = small_copy(controller="feedforward")
    out = ntm.train_task(config=config, rng=np.random.default_rng(1), sequences=64, eval_every=32, eval_sequences=20)
    r = ntm.results(out, np.random.default_rng(2), sequences=20, generalisation_sequences=10)
    assert r["generalisation"]["length"] == 40 and r["task"] == "copy" and r["sequences"] == 64
    again = ntm.test_report(out["best_params"], config, np.random.default_rng(2), 20, 40, 10)
    assert r["bits_per_sequence"] == again["bits_per_sequence"]
    assert r["bit_errors_per_sequence"] == again["bit_errors_per_sequence"]
    import json
    json.dumps(r)                                            # plain numbers only: it can be written as JSON


def test_curriculum_lengthens_the_training_sequences_as_they_are_mastered():
    config = small_copy(controller="feedforward", curriculum=1)
    out = ntm.train_task(config=config, rng=np.random.default_rng(0), sequences=SHORT_COPY_SEQUENCES,
                         eval_every=200, eval_sequences=50)
    tops = [h["max_len"] for h in out["history"]]
    assert tops == sorted(tops) and tops[0] < 3 and tops[-1] == 3
    assert ntm.train_task(config=small_copy(), rng=np.random.default_rng(0), sequences=16,
                          eval_every=16, eval_sequences=4)["history"][0]["max_len"] == 3   # off: the full range
    with pytest.raises(ValueError, match="curriculum"):
        small_copy(curriculum=-1)


def _repeats(seq):
    """(R, the count input) of each repeat-copy sequence: lengths = (R + 1) L + 3, the count at step L + 1."""
    L = seq.target_mask.argmax(1) - 2                                            # (N,) first target step is L + 2
    R = (seq.lengths - 3) // L - 1                                               # (N,)
    return R, seq.inputs[np.arange(len(L)), L + 1, -1]                           # (N,), (N,)


def test_repeat_copy_curriculum_grows_the_repeats_and_keeps_the_count_scale():
    config = ntm.Config.for_task("repeat-copy", memory_slots=8, memory_width=6, controller_size=32, max_len=1,
                                 optimizer="adam", lr=1e-2, batch_size=8, curriculum=1)
    R, count = _repeats(ntm.task_batch(config, np.random.default_rng(0), 200, max_len=3, max_repeats=2))
    assert set(R.tolist()) == {1, 2}
    R10, count10 = _repeats(ntm.task_batch(config, np.random.default_rng(1), 400, max_len=3))
    assert set(R10.tolist()) == set(range(1, 11))                               # the default: all of REPEATS
    for r in (1, 2):                                                             # the same count for the same R
        assert np.allclose(count[R == r], count10[R10 == r][0])
    assert count10[R10 == 1][0] < 0 < count10[R10 == 10][0]
    seen = []
    real = ntm.training.task_batch

    def spy(*args, **kw):
        seq = real(*args, **kw)
        seen.append(int(_repeats(seq)[0].max()))
        return seq
    import memnet_np.ntm.training as training
    training.task_batch, saved = spy, training.task_batch
    try:
        out = ntm.train_task(config=config, rng=np.random.default_rng(0), sequences=8 * 400, eval_every=400,
                             eval_sequences=8)
    finally:
        training.task_batch = saved
    tops = [h["max_repeats"] for h in out["history"]]
    assert tops == sorted(tops) and tops[0] < 10 and tops[-1] > tops[0], tops
    assert all(h["max_len"] == 1 for h in out["history"])                       # the lengths are left alone
    assert seen[1] == 1 and max(seen) > 1                                        # seen[0]: the held-out set


def test_backtracking_waits_for_a_curriculum_to_train_on_the_full_range(monkeypatch):
    """A held-out cost above twice its best (+1) sends training back to the best parameters at half the learning rate;
    not while a curriculum still trains on easier sequences than the held-out ones (their cost means nothing then)."""
    import memnet_np.ntm.training as training

    def backtracks(**kw):
        costs = iter([10.0] + [100.0] * 20)                  # one good evaluation, then each far above it
        monkeypatch.setattr(training, "evaluate", lambda params, config, batches: {
            "bits_per_sequence": next(costs), "bit_errors_per_sequence": 5.0, "sequences": len(batches)})
        out = ntm.train_task(config=small_copy(backtrack=True, lr=1e-12, **kw), rng=np.random.default_rng(0),
                             sequences=8 * 4, eval_every=8, eval_sequences=8)
        assert [h["max_len"] for h in out["history"]] == [kw.get("curriculum") or 3] * 4   # lr ~0: nothing mastered
        return [h.get("backtracked_to") for h in out["history"]]
    assert backtracks() == [None, 8, 8, 8]                   # no curriculum
    assert backtracks(curriculum=3) == [None, 8, 8, 8]       # a curriculum that starts at the full range
    assert backtracks(curriculum=1) == [None] * 4            # one still on length 1, scored on lengths 1-3


def test_train_task_defaults_to_the_tuned_settings():
    out = ntm.train_task("copy", rng=np.random.default_rng(0), sequences=16, eval_every=16, eval_sequences=4)
    assert out["config"] == ntm.Config.tuned("copy")
    assert out["config"].memory_slots == 128 and out["config"].memory_width == 20
    assert out["config"].controller_size == 100 and out["params"]["Wx"].dtype == np.float32



def test_each_task_has_its_tuned_settings_and_budget(monkeypatch, tmp_path):
    """Copy keeps TUNED; repeat copy adds a curriculum over the repeats from one; associative recall uses the
    feed-forward controller with the paper's RMSProp at lr 1e-4 and batch 1 but ε = 1e-2 (chosen on held-out
    sequences); `train ntm` without --sequences trains for the task's budget, with those settings."""
    assert ntm.Config.tuned("copy") == ntm.Config.for_task("copy", **ntm.TUNED)
    assert ntm.Config.tuned("repeat-copy") == ntm.Config.for_task("repeat-copy", **ntm.TUNED, curriculum=1)
    ar = ntm.Config.tuned("associative-recall")
    assert ar.controller == "feedforward" and ar.lr == 1e-4 and ar.optimizer == "rmsprop" and ar.batch_size == 1
    assert ar.rmsprop_eps == 1e-2 and ntm.Config().rmsprop_eps == 1e-4               # the paper's ε elsewhere
    from memnet_np.ntm.training import make_optimizer
    assert make_optimizer(ar).eps == 1e-2 and make_optimizer(ntm.Config()).eps == 1e-4   # it reaches the optimiser
    for bad in (float("nan"), 0.0, -1e-3):                  # one message each, saying what ε must be
        with pytest.raises(ValueError, match="rmsprop_eps must be a finite number above 0") as e:
            ntm.Config(rmsprop_eps=bad)
        assert str(e.value).count("rmsprop_eps") == 1
    assert ar.input_width == 8 and ar.output_width == 6 and ar.memory_slots == 128
    assert ntm.Config.tuned("associative-recall", lr=0.5).lr == 0.5                # an override still wins
    with pytest.raises(ValueError, match="task must be one of"):
        ntm.Config.tuned("sort")
    from memnet_np import cli
    from memnet_np.ntm import training
    seen = {}

    def fake_train_task(task, config, rng, sequences, **kw):
        seen.update(task=task, config=config, sequences=sequences)
        raise RuntimeError("stop here")
    monkeypatch.setattr(training, "train_task", fake_train_task)
    for task in ntm.TASKS:
        with pytest.raises(RuntimeError, match="stop here"):
            cli.main(["train", "ntm", "--task", task, "--quiet", "--out", str(tmp_path)])
        assert seen == {"task": task, "config": ntm.Config.tuned(task), "sequences": ntm.TASK_SEQUENCES[task]}
    assert ntm.TASK_SEQUENCES["associative-recall"] > ntm.TASK_SEQUENCES["copy"]


def test_progress_line_says_when_training_went_back_after_a_blow_up(monkeypatch, tmp_path, capsys):
    from memnet_np import cli
    from memnet_np.ntm import training
    record = {"sequences": 3000, "seconds": 2.0, "train_bits_per_sequence": 9.0, "bits_per_sequence": 30.0,
              "bit_errors_per_sequence": 8.0, "sequences_per_second": 1500.0}

    def fake_train_task(task, config, rng, sequences, progress=None, **kw):
        progress(dict(record))
        progress({**record, "sequences": 4000, "backtracked_to": 2000, "lr": 5e-5})
        raise RuntimeError("stop here")
    monkeypatch.setattr(training, "train_task", fake_train_task)
    with pytest.raises(RuntimeError, match="stop here"):
        cli.main(["train", "ntm", "--task", "copy", "--out", str(tmp_path)])
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "sequences  train" in ln]
    assert len(lines) == 2 and "blow-up" not in lines[0]
    assert lines[1].endswith("(a blow-up: back to the parameters of 2000, lr 5e-05)")


# ---------------------------------------------------------------------------------------------------------------
# resuming a killed run


def _small_copy_config():
    return ntm.Config.for_task("copy", memory_slots=12, memory_width=6, controller_size=12, max_len=4,
                               batch_size=4, optimizer="adam", lr=1e-2, backtrack=True)


def _same_records(a, b):
    """History records equal in everything but the measured time."""
    timeless = lambda r: {k: v for k, v in r.items() if k not in ("seconds", "sequences_per_second")}
    return [timeless(r) for r in a] == [timeless(r) for r in b]


def test_training_interrupted_and_resumed_ends_where_one_run_ends_bit_for_bit(tmp_path):
    config, kw = _small_copy_config(), dict(sequences=480, eval_every=80, eval_sequences=16)
    whole = ntm.train_task(config=config, rng=np.random.default_rng(5), **kw)

    def stop_at_240(record):
        if record["sequences"] == 240:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        ntm.train_task(config=config, rng=np.random.default_rng(5), progress=stop_at_240,
                       state_path=tmp_path / "s.npz", **kw)
    seen = []
    again = ntm.train_task(config=config, rng=np.random.default_rng(5), state_path=tmp_path / "s.npz", resume=True,
                           progress=lambda r: seen.append(r["sequences"]), **kw)
    assert seen == [320, 400, 480]                       # it went on from 240, not from the start
    for key in ("params", "best_params"):
        assert all(np.array_equal(whole[key][k], again[key][k]) for k in whole[key]), key
    assert _same_records(whole["history"], again["history"])
    assert whole["best"]["sequences"] == again["best"]["sequences"]
    assert (whole["converged_at"] or {}).get("sequences") == (again["converged_at"] or {}).get("sequences")


def test_a_finished_run_resumed_with_a_larger_budget_ends_where_one_run_of_that_budget_ends(tmp_path):
    """Going on from a finished run's state to a larger --sequences is the same run as that budget from scratch (the
    smaller budget ends on an evaluation, so the held-out schedule is the same)."""
    config, kw = _small_copy_config(), dict(eval_every=80, eval_sequences=16)
    whole = ntm.train_task(config=config, rng=np.random.default_rng(7), sequences=480, **kw)
    short = ntm.train_task(config=config, rng=np.random.default_rng(7), sequences=240, state_path=tmp_path / "s.npz",
                           **kw)
    assert [r["sequences"] for r in short["history"]] == [80, 160, 240]
    seen = []
    longer = ntm.train_task(config=config, rng=np.random.default_rng(7), sequences=480, state_path=tmp_path / "s.npz",
                            resume=True, progress=lambda r: seen.append(r["sequences"]), **kw)
    assert seen == [320, 400, 480]
    assert not all(np.array_equal(short["params"][k], longer["params"][k]) for k in short["params"])
    for key in ("params", "best_params"):
        assert all(np.array_equal(whole[key][k], longer[key][k]) for k in whole[key]), key
    assert _same_records(whole["history"], longer["history"])
    assert whole["best"]["sequences"] == longer["best"]["sequences"]
    assert (whole["converged_at"] or {}).get("sequences") == (longer["converged_at"] or {}).get("sequences")


def test_resume_without_a_state_starts_afresh_and_refuses_a_state_of_other_settings(tmp_path):
    config, kw = _small_copy_config(), dict(sequences=80, eval_every=40, eval_sequences=8)
    fresh = ntm.train_task(config=config, rng=np.random.default_rng(1), **kw)
    first = ntm.train_task(config=config, rng=np.random.default_rng(1), state_path=tmp_path / "s.npz", resume=True,
                           **kw)
    assert all(np.array_equal(fresh["params"][k], first["params"][k]) for k in fresh["params"])
    from memnet_np.train import CheckpointError
    with pytest.raises(CheckpointError, match=r"saved by a run with other settings \(lr\)"):
        ntm.train_task(config=ntm.replace(config, lr=1e-3), rng=np.random.default_rng(1),
                       state_path=tmp_path / "s.npz", resume=True, **kw)
    with pytest.raises(CheckpointError, match=r"other settings \(eval_every\)"):
        ntm.train_task(config=config, rng=np.random.default_rng(1), state_path=tmp_path / "s.npz", resume=True,
                       **dict(kw, eval_every=20))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="not a readable NTM training state"):
        ntm.train_task(config=config, rng=np.random.default_rng(1), state_path=tmp_path / "junk.npz", resume=True,
                       **kw)


def _evaluations_saved(path):
    import json
    try:
        with np.load(path, allow_pickle=False) as z:
            return len(json.loads(str(z["header"]))["progress"]["history"])
    except Exception:                                    # being replaced this very moment: try again
        return 0


@pytest.mark.slow
def test_a_killed_train_ntm_resumes_to_the_same_result_bit_for_bit(tmp_path):
    """SIGKILL `train ntm` mid-run, run it again with --resume, and get what an uninterrupted run gets."""
    from cli_runs import killed_and_resumed
    args = ["train", "ntm", "--task", "copy", "--sequences", "4000", "--batch", "8", "--quiet"]
    saved, ra, rb = killed_and_resumed(args, tmp_path, "state.npz", _evaluations_saved, enough=2, timeout=600)
    assert 2 <= saved < 4, saved
    for key in ("bits_per_sequence", "bit_errors_per_sequence", "generalisation", "selected_at", "sequences"):
        assert ra[key] == rb[key], key
    assert _same_records(ra["history"], rb["history"])


# ---------------------------------------------------------------------------------------------------------------
# clipping the controller's outputs (Collier & Beel's clip_value)


@pytest.mark.gradcheck
def test_clipped_controller_outputs_gradients_and_oracle():
    """With clip_controller the head layer's outputs and the logits are clipped: a clipped entry passes no gradient
    (checked against finite differences away from the clip's kinks) and the per-sequence oracle clips too."""
    config, params, batch = setup(21, scale=1.5, clip_controller=1.0)
    logits, cache = ntm.forward(params, batch, config)
    inside = np.concatenate([s.inside for s in cache.steps])
    assert 0.2 < inside.mean() < 0.8 and 0.2 < cache.inside.mean() < 0.8   # both sides of the clip are exercised
    assert np.abs(logits).max() <= 1.0
    assert np.allclose(logits, ntm.forward_naive(params, batch, config), atol=1e-10)
    report = check_gradients(lambda p: ntm.loss_and_grads(p, batch, config), params, max_entries=25)
    assert all(r.checked > 0 for r in report.values())
    assert all(r.rel_error < MODEL_TOL for r in report.values()), format_report(report, MODEL_TOL)
    unclipped = ntm.loss_and_grads(params, batch, ntm.replace(config, clip_controller=0.0))[1]
    assert not np.allclose(unclipped["W_heads"], ntm.loss_and_grads(params, batch, config)[1]["W_heads"])


def test_clip_controller_must_be_a_number_at_least_0():
    with pytest.raises(ValueError, match=r"clip_controller must be a finite number >= 0, got -1"):
        ntm.Config.tiny(clip_controller=-1)


# ---------------------------------------------------------------------------------------------------------------
# gradient clipping in training: each component (the paper), the global norm (Collier & Beel), or both


def test_clip_gradients_by_value_then_global_norm():
    g = {"a": np.array([30.0, -4.0]), "b": np.array([[3.0]])}
    by_value = ntm.clip_gradients(g, ntm.Config.tiny(clip=10.0))
    np.testing.assert_array_equal(by_value["a"], [10.0, -4.0])
    both = ntm.clip_gradients(g, ntm.Config.tiny(clip=10.0, clip_norm=5.0))      # ‖(10, −4, 3)‖ = 11.18 -> 5
    scale = 5.0 / np.sqrt(125.0)
    np.testing.assert_allclose(both["a"], [10.0 * scale, -4.0 * scale])
    np.testing.assert_allclose(both["b"], [[3.0 * scale]])
    by_norm = ntm.clip_gradients(g, ntm.Config.tiny(clip=0.0, clip_norm=50.0))  # ‖g‖ = 30.4 < 50: unchanged
    np.testing.assert_array_equal(by_norm["a"], g["a"])
    off = ntm.clip_gradients(g, ntm.Config.tiny(clip=0.0))
    assert off["a"] is g["a"]
    np.testing.assert_array_equal(g["a"], [30.0, -4.0])                         # the input is left alone


def test_clip_norm_must_be_a_number_at_least_0():
    with pytest.raises(ValueError, match=r"clip_norm must be a finite number >= 0, got -1"):
        ntm.Config.tiny(clip_norm=-1)
