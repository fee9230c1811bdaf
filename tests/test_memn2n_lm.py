"""MemN2N as a language model: gradients, the naive per-position oracle, the official schedule, the corpus loader,
and the command line."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from memnet_np import memn2n_lm as L
from memnet_np import ops, optim
from memnet_np.data import corpus as corpora
from memnet_np.data.babi import DataNotFoundError, UnknownWordError
from memnet_np.gradcheck import check_gradients, format_report

ROOT = Path(__file__).resolve().parents[1]
PTB = ROOT.parent / "shared" / "data" / "ptb"


def setup(seed=0, scale=0.5, **overrides):
    """Tiny float64 model with parameters far from zero and from each other (no symmetry hides a wrong index)."""
    rng = np.random.default_rng(seed)
    config = L.Config.tiny(**overrides)
    params = {k: rng.standard_normal(v.shape) * scale for k, v in L.init_params(config, rng).items()}
    return config, params, L.example_batch(config, rng, N=5), rng


# ----------------------------------------------------------------------------------------------------------------
# Gradients and the oracle


@pytest.mark.parametrize("overrides", [{}, {"linear_units": 0}, {"linear_units": 6}, {"hops": 1, "memory_size": 1}],
                         ids=["half-relu", "all-relu", "all-linear", "one-hop-one-word"])
def test_every_parameter_passes_the_float64_gradient_check(overrides):
    config, params, batch, _ = setup(1, **overrides)
    report = check_gradients(lambda p: L.loss_and_grads(p, batch, config), params, max_entries=None)
    assert set(report) == set(L.PARAM_NAMES)
    assert all(r.checked > 0 for r in report.values()), format_report(report)
    assert all(r.rel_error < 1e-7 for r in report.values()), format_report(report)
    assert not any(r.kinks for r in report.values()), format_report(report)


@pytest.mark.parametrize("overrides", [{}, {"linear_units": 0}, {"linear_units": 6}, {"hops": 4, "memory_size": 7}])
def test_vectorised_forward_matches_the_naive_per_position_forward(overrides):
    config, params, batch, _ = setup(2, **overrides)
    logits, cache = L.forward(params, batch, config)
    assert np.allclose(logits, L.forward_naive(params, batch, config), rtol=1e-12, atol=1e-12)
    p = L.attention_of(cache)                                  # (N, K, M)
    assert p.shape == (5, config.hops, config.memory_size) and np.allclose(p.sum(-1), 1.0)


def test_half_the_units_pass_a_relu_and_half_stay_linear():
    config, params, batch, _ = setup(3, d=8, hops=2)
    _, cache = L.forward(params, batch, config)
    u = cache.u_final
    assert (u[:, :4] < 0).any(), "the linear half keeps negative values"
    assert (u[:, 4:] >= 0).all() and (u[:, 4:] == 0).any(), "the ReLU half is clipped at zero"


def test_the_first_hop_reads_with_the_constant_query():
    config, params, batch, _ = setup(4)
    _, cache = L.forward(params, batch, config)
    assert np.all(cache.hops[0].u == config.init_u)


def test_next_word_loss_equals_the_shared_softmax_cross_entropy():
    rng = np.random.default_rng(5)
    logits, y = rng.standard_normal((6, 9)) * 3, rng.integers(0, 9, 6)
    loss, dlogits = L.next_word_loss(logits.copy(), y)
    ref, cache = ops.softmax_cross_entropy_forward(logits, y, reduction="sum")
    assert math.isclose(loss, ref, rel_tol=1e-12)
    assert np.allclose(dlogits, ops.softmax_cross_entropy_backward(1.0, cache), atol=1e-14)


def test_next_word_loss_leaves_its_input_alone():
    logits = np.arange(12.0).reshape(3, 4)
    before = logits.copy()
    L.next_word_loss(logits, np.array([0, 1, 3]))
    assert np.array_equal(logits, before)


def test_row_sums_is_a_loop_over_rows():
    rng = np.random.default_rng(6)
    idx, values = rng.integers(0, 7, 40), rng.standard_normal((40, 3))
    expected = np.zeros((7, 3))
    for i, v in zip(idx, values):
        expected[i] += v
    assert np.allclose(L.row_sums(idx, values, 7), expected)


@pytest.mark.parametrize("order", ["random", "shuffle", "streams"])
def test_an_epochs_positions_in_each_order(order):
    config = L.Config.tiny(memory_size=5, batch_size=4, order=order)
    n = 48                                                    # positions 5 … 47: 43, ten full batches and 3 left
    got = L.epoch_positions(n, config, np.random.default_rng(0))
    assert got.min() >= 5 and got.max() < n
    if order == "random":                                     # the official draw: ceil(n / N) batches
        assert got.shape == (12, 4)
        assert len(np.unique(got)) < got.size                 # with replacement: 48 draws of 43 repeat some
        return
    assert got.shape == (10, 4) and len(np.unique(got)) == 40   # each position at most once
    if order == "streams":                                    # stream b reads consecutive positions
        assert np.all(np.diff(got, axis=0) == 1)
        assert np.all(np.diff(got[0]) == 10)                  # the streams are the text cut in 4
    else:
        assert not np.all(np.diff(got, axis=0) == 1)


def test_orders_are_named_and_a_text_too_short_for_one_batch_is_an_error():
    with pytest.raises(ValueError, match="order must be one of 'random', 'shuffle', 'streams', got 'stream'"):
        L.Config.tiny(order="stream")
    with pytest.raises(ValueError, match="fewer than one batch of 4"):
        L.epoch_positions(8, L.Config.tiny(memory_size=5, batch_size=4, order="shuffle"), np.random.default_rng(0))


def test_perplexity_is_exp_of_the_mean_loss_over_every_position_with_a_full_memory():
    config, params, _, rng = setup(7)
    ids = rng.integers(0, config.vocab_size, 23)
    losses = []
    for t in range(config.memory_size, len(ids)):
        logit = L.forward_naive(params, L.Batch(ids[None, t - config.memory_size:t], ids[t:t + 1]), config)[0]
        losses.append(np.log(np.exp(logit - logit.max()).sum()) + logit.max() - logit[ids[t]])
    assert math.isclose(L.perplexity(params, ids, config, chunk=4), math.exp(np.mean(losses)), rel_tol=1e-10)


def test_make_batch_holds_the_previous_words_oldest_first():
    ids = np.arange(100, 120)
    b = L.make_batch(ids, np.array([3, 10]), 3)
    assert b.contexts.tolist() == [[100, 101, 102], [107, 108, 109]] and b.targets.tolist() == [103, 110]
    with pytest.raises(ValueError, match="positions must lie in"):
        L.make_batch(ids, np.array([2]), 3)
    with pytest.raises(ValueError, match="too short"):
        L.training_positions(5, L.Config.tiny(memory_size=5), np.random.default_rng(0))


# ----------------------------------------------------------------------------------------------------------------
# Bad input


def test_the_front_door_names_what_is_wrong():
    config, params, batch, _ = setup(8)
    with pytest.raises(ValueError, match="contexts must have shape"):
        L.forward(params, batch._replace(contexts=batch.contexts[:, 1:]), config)
    with pytest.raises(ValueError, match=r"batch.contexts holds word ids outside \[0, 13\)"):
        L.forward(params, batch._replace(contexts=batch.contexts + 13), config)
    with pytest.raises(TypeError, match="batch.targets must be an int numpy array"):
        L.forward(params, batch._replace(targets=batch.targets.astype(float)), config)
    with pytest.raises(ValueError, match=r"params\['H'\] must have shape \(6, 6\)"):
        L.forward({**params, "H": params["H"][:2]}, batch, config)
    with pytest.raises(optim.NonFiniteError, match="W"):
        L.forward({**params, "W": params["W"] * np.nan}, batch, config)


@pytest.mark.parametrize("bad, message", [({"linear_units": 7}, "linear_units must be in 0..d = 6"),
                                          ({"hops": 0}, "hops must be at least 1"),
                                          ({"lr_divisor": 1.0}, "lr_divisor must be above 1"),
                                          ({"dtype": "float16"}, "dtype must be"),
                                          ({"init_std": float("nan")}, "init_std must be a positive number"),
                                          ({"init_std": -0.05}, "invalid MemN2N language-model config: init_std")])
def test_an_impossible_config_is_named(bad, message):
    with pytest.raises(ValueError, match=message):
        L.Config.tiny(**bad)


# ----------------------------------------------------------------------------------------------------------------
# The official update and schedule


def test_clipped_sgd_step_is_clip_by_global_norm_then_sgd():
    rng = np.random.default_rng(9)
    params = {"a": rng.standard_normal((4, 3)), "b": rng.standard_normal(5)}
    grads = {"a": rng.standard_normal((4, 3)) * 30, "b": rng.standard_normal(5) * 30}
    clipped, norm = optim.clip_by_global_norm(grads, 5.0)
    expected = {k: params[k] - 0.1 * clipped[k] for k in params}
    got = {k: v.copy() for k, v in params.items()}
    assert math.isclose(optim.sgd_step_global_clip(got, {k: g.copy() for k, g in grads.items()}, 0.1, 5.0), norm)
    assert all(np.allclose(got[k], expected[k]) for k in params)
    small = {k: g / 1e3 for k, g in grads.items()}              # below the norm: not rescaled
    got = {k: v.copy() for k, v in params.items()}
    optim.sgd_step_global_clip(got, {k: g.copy() for k, g in small.items()}, 0.1, 5.0)
    assert all(np.allclose(got[k], params[k] - 0.1 * small[k]) for k in params)


def test_a_nan_gradient_stops_the_step_before_any_parameter_changes():
    params = {"a": np.ones(3), "b": np.ones(2)}
    with pytest.raises(optim.NonFiniteError, match="b"):
        optim.sgd_step_global_clip(params, {"a": np.ones(3), "b": np.array([1.0, np.nan])}, 0.1, 5.0)
    assert np.array_equal(params["a"], np.ones(3))


def test_training_on_generated_text_beats_a_bigram_model_and_follows_the_official_schedule():
    """The generated stories' answers ("where is mary ? kitchen") need the memory: a bigram model cannot know them,
    so beating the bigram's perplexity on validation text shows the memory at work."""
    text = corpora.generated_corpus(n_train=1000)
    config = L.Config.for_corpus(text, d=40, hops=2, memory_size=20, epochs=6, lr=0.01)
    out = L.train(text, config, np.random.default_rng(0))
    hist = out["history"]
    V = text.vocab_size
    counts = np.ones((V, V))                                  # add-one bigram from the training text
    np.add.at(counts, (text.train[:-1], text.train[1:]), 1)
    probs = counts / counts.sum(1, keepdims=True)
    valid = text.valid[config.memory_size - 1:]
    bigram = math.exp(-np.mean(np.log(probs[valid[:-1], valid[1:]])))
    assert hist[-1].valid_perplexity < 0.8 * bigram, (hist[-1], bigram)
    for before, after, nxt in zip(hist, hist[1:], hist[2:]):  # main.lua: divide by 1.5 when the cost stops falling
        worse = math.log(after.valid_perplexity) > math.log(before.valid_perplexity) * 0.9999
        assert math.isclose(nxt.lr, after.lr / 1.5 if worse else after.lr)


def test_the_time_budget_stops_before_an_epoch_that_would_overrun():
    text = corpora.generated_corpus(n_train=200)
    config = L.Config.for_corpus(text, d=8, hops=1, memory_size=5, epochs=50)
    out = L.train(text, config, np.random.default_rng(0), time_budget=1e-9)
    assert out["stopped"] == "time budget" and len(out["history"]) == 1


def test_a_blow_up_names_its_epoch_and_step_and_leaves_the_parameters_as_they_were():
    text = corpora.generated_corpus(n_train=100)
    config = L.Config.for_corpus(text, d=8, hops=1, memory_size=5, epochs=2)
    params = L.init_params(config, np.random.default_rng(0))
    params["W"][3, 2] = np.inf                                  # the first step's gradient is not finite
    before = {k: v.copy() for k, v in params.items()}
    with pytest.raises(optim.NonFiniteError, match="training blew up in epoch 1, step 1"):
        L.train(text, config, np.random.default_rng(0), params=params)
    assert all(np.array_equal(params[k], before[k]) for k in params)


def test_training_stops_when_the_learning_rate_falls_below_its_floor():
    text = corpora.generated_corpus(n_train=100)
    config = L.Config.for_corpus(text, d=8, hops=1, memory_size=5, epochs=40, lr=2e-5, lr_divisor=10.0)
    out = L.train(text, config, np.random.default_rng(0))
    assert out["stopped"] == "learning rate below min_lr" and out["history"][-1].lr < 1e-4
    assert len(out["history"]) < 40


# ----------------------------------------------------------------------------------------------------------------
# Corpora


def write_corpus(folder, train="a b c\nb c a\n", valid="a b\nc\n", test="c a b\n", prefix="ptb."):
    folder.mkdir(parents=True, exist_ok=True)
    for split, text in (("train", train), ("valid", valid), ("test", test)):
        (folder / f"{prefix}{split}.txt").write_text(text, encoding="utf-8")
    return folder


def test_a_corpus_adds_eos_per_line_and_takes_its_vocabulary_from_training_text(tmp_path):
    c = corpora.load_corpus(write_corpus(tmp_path / "c", prefix=""))
    assert c.words == ("<eos>", "a", "b", "c")
    assert c.text(c.train) == "a b c <eos> b c a <eos>".split() and c.text(c.valid) == "a b <eos> c <eos>".split()


def test_an_empty_file_is_named(tmp_path):
    folder = write_corpus(tmp_path / "c", train="\n  \n")
    with pytest.raises(corpora.CorpusError, match=r"ptb.train.txt: no words in this file"):
        corpora.load_corpus(folder)


def test_a_word_outside_the_training_vocabulary_is_named_with_its_file_and_line(tmp_path):
    folder = write_corpus(tmp_path / "c", test="a b\nc zebra a\n")
    with pytest.raises(UnknownWordError, match=r"ptb.test.txt, line 2: the word 'zebra' is not in the vocabulary"):
        corpora.load_corpus(folder)


def test_a_missing_folder_or_file_is_named(tmp_path):
    with pytest.raises(DataNotFoundError, match="no such folder"):
        corpora.load_corpus(tmp_path / "nowhere")
    folder = write_corpus(tmp_path / "c")
    (folder / "ptb.valid.txt").unlink()
    with pytest.raises(DataNotFoundError, match="no ptb.valid.txt"):
        corpora.load_corpus(folder)


def test_a_binary_file_is_named(tmp_path):
    folder = write_corpus(tmp_path / "c")
    (folder / "ptb.train.txt").write_bytes(b"\xff\xfe\x00 words")
    with pytest.raises(corpora.CorpusError, match="not UTF-8"):
        corpora.load_corpus(folder)


def test_generated_text_reads_as_stories_with_answers():
    c = corpora.generated_corpus(n_train=20, n_valid=5, n_test=5)
    words = c.text(c.train)
    q = words.index("?")
    assert words[q - 3] == "where" and words[q + 2] == "<eos>" and words[q + 1] in c.words
    again = corpora.generated_corpus(n_train=20, n_valid=5, n_test=5)   # a deterministic function of its seed
    assert again.words == c.words and np.array_equal(again.train, c.train)
    assert not np.array_equal(corpora.generated_corpus(n_train=20, n_valid=5, n_test=5, seed=1).train[:200],
                              c.train[:200])


@pytest.mark.skipif(not PTB.is_dir(), reason="Penn Treebank not present at ../shared/data/ptb")
def test_penn_treebank_loads_with_the_documented_sizes():
    c = corpora.load_corpus(PTB)
    assert c.vocab_size == 10_000 and c.words[0] == "<eos>"
    assert (len(c.train), len(c.valid), len(c.test)) == (929_589, 73_760, 82_430)


# ----------------------------------------------------------------------------------------------------------------
# Command line


def memnet(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "memnet_np", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_train_and_evaluate_on_a_corpus_folder(tmp_path):
    text = corpora.generated_corpus(n_train=300, n_valid=60, n_test=60)
    folder = tmp_path / "text"
    files = {}
    for split in ("train", "valid", "test"):
        lines = " ".join(text.text(getattr(text, split))).split(" <eos>")
        files[split] = "\n".join(w.strip() for w in lines if w.strip()) + "\n"
    write_corpus(folder, **files)
    r = memnet("train", "memn2n-lm", "--data", str(folder), "--hops", "2", "--memory", "10", "--dim", "16",
               "--epochs", "2", "--init-std", "0.1", "--out", "run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "words/s" in r.stdout and "valid ppl" in r.stdout and "ETA" in r.stdout
    res = json.loads((tmp_path / "run/results.json").read_text())
    assert {"valid_perplexity", "test_perplexity", "history", "seconds"} <= set(res)
    assert len(res["history"]) == 2 and res["config"]["memory_size"] == 10 and res["config"]["init_std"] == 0.1
    r = memnet("evaluate", "run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    reported = float(r.stdout.split("test  perplexity")[1].split()[0])
    assert math.isclose(reported, res["test_perplexity"], rel_tol=1e-3)


@pytest.mark.parametrize("args, message", [
    (["--data", "nowhere"], "nowhere: no such folder"),
    (["--task", "1"], "memn2n-lm trains on a text corpus"),
    (["--dim", "0"], "d must be at least 1"),
    (["--time-budget", "-1"], "--time-budget must be positive"),
])
def test_train_usage_mistakes_are_one_line(tmp_path, args, message):
    r = memnet("train", "memn2n-lm", *args, cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_an_empty_training_file_is_one_line(tmp_path):
    write_corpus(tmp_path / "c", train="")
    r = memnet("train", "memn2n-lm", "--data", "c", cwd=tmp_path)
    assert r.returncode == 2 and "no words in this file" in r.stderr and "Traceback" not in r.stderr


# ----------------------------------------------------------------------------------------------------------------
# Figures


@pytest.mark.slow
def test_figures_draw_attention_and_perplexity_from_a_fresh_run(tmp_path):
    pytest.importorskip("matplotlib")
    paths, numbers = L.figures(tmp_path, quick=True)
    assert [p.name for p in paths] == ["memn2n_lm_attention.png", "memn2n_lm_perplexity.png"]
    assert all(p.stat().st_size > 0 for p in paths)
    assert numbers["sentence"].endswith(numbers["target"]) and numbers["epochs"] == 4
    assert numbers["test_perplexity"] < 3.0                   # a broken model sits near the unigram's ~10


def test_figures_read_a_finished_run(tmp_path):
    pytest.importorskip("matplotlib")
    text = corpora.generated_corpus()
    config = L.Config.for_corpus(text, d=16, hops=2, memory_size=10, epochs=1)
    res = L.run(text, config, out_dir=str(tmp_path / "run"), quiet=True)
    paths, numbers = L.figures(tmp_path / "figs", run_dir=tmp_path / "run")
    assert numbers["test_perplexity"] == res["test_perplexity"] and numbers["config"]["memory_size"] == 10
    assert all(p.stat().st_size > 0 for p in paths)


def test_word_attention_refuses_a_mismatch():
    pytest.importorskip("matplotlib")
    from memnet_np import plots
    with pytest.raises(ValueError, match="3 words but attention over 4 slots"):
        plots.word_attention(["a", "b", "c"], np.ones((2, 4)) / 4, "a", "b")


def test_bench_reports_words_per_second_against_the_output_product():
    r = L.bench(quick=True, config=L.Config(vocab_size=500, d=16, hops=2, memory_size=10, batch_size=32))
    assert r["words_per_second"] > 0 and r["output_product_gflops"] > 0
    assert math.isclose(r["step_over_floor"], r["step_ms"] / r["output_product_ms"])
    assert r["step_over_floor"] > 1                           # a step includes the products it is compared with
