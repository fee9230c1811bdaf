"""Pictures, the benchmark and the figures command, in quick modes writing into tmp_path."""
import json
import os

import numpy as np
import pytest

pytest.importorskip("matplotlib")
os.environ.setdefault("MPLBACKEND", "Agg")

from cli_runs import check_committed_figures, run_cli, run_figures  # noqa: E402
from memnet_np import data, ops, plots  # noqa: E402


def _is_png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000


def test_attention_heatmap_writes_a_png_and_checks_shapes(tmp_path):
    p = plots.attention_heatmap(["a b", "c d", "e f"], np.array([[0.1, 0.8, 0.1], [0.2, 0.2, 0.6]]),
                                "where is x", "garden", "garden", supporting=[1], path=tmp_path / "h.png")
    assert _is_png(p)
    with pytest.raises(ValueError, match="3 sentences but attention over 2 slots"):
        plots.attention_heatmap(["a", "b", "c"], np.ones((2, 2)), "q", "x", "x")


def test_heatmap_for_a_truncated_story_marks_the_right_rows(tmp_path):
    lines = [f"{i} Mary went to the office." for i in range(1, 8)] + ["8 Where is Mary? \toffice\t7 2"]
    q = data.parse_babi(lines, task=1, source="t")[0]
    vocab = data.build_vocab([q])
    arr = data.vectorize([q], vocab, memory_size=4)
    p = plots.heatmap_for_example(q, np.full((2, 4), 0.25), arr.mask[0], "office", tmp_path / "t.png")
    assert _is_png(p)


def test_learning_curves_and_position_encoding(tmp_path):
    hist = [{"epoch": e, "phase": "linear start" if e < 3 else "main", "train_error": 50 / e, "val_error": 60 / e,
             "train_loss": 2 / e, "val_loss": 2.5 / e} for e in range(1, 8)]
    assert _is_png(plots.learning_curves(hist, tmp_path / "c.png"))
    l = ops.position_encoding(np.ones((1, 6), int), 20)[0]
    assert _is_png(plots.position_encoding_matrix(l, tmp_path / "pe.png"))


def test_bench_json_has_seconds_per_epoch(tmp_path):
    r = run_cli("bench", "memn2n", "--json", "--quick")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert 0 < out["seconds_per_epoch"] < 5 and out["task"] == 1
    assert out["seconds_per_question"] == pytest.approx(out["seconds_per_epoch"] / out["training_questions"])
    step = out["step"]
    assert step["c_calls"] > 50 and step["python_calls"] > 50 and step["trivial_numpy_call_seconds"] > 0
    assert set(step["seconds_by_batch_size"]) == {"16", "32", "64"}
    assert all(t > 0 for t in step["seconds_by_batch_size"].values())
    # the fit a + b·N is noisy with --quick's few repeats (its parts may even come out negative); it must still be
    # the least-squares line through the three timings
    t = {int(n): v for n, v in step["seconds_by_batch_size"].items()}
    fitted = [step["fixed_seconds"] + step["seconds_per_question"] * n for n in (16, 32, 64)]
    assert sum(fitted) == pytest.approx(sum(t.values()), rel=1e-6)
    assert set(out["scaling"]) == {"memory_size", "hops", "batch_size"}
    assert list(out["scaling"]["memory_size"]) == ["10", "50", "100", "200"]


def test_figures_quick(tmp_path):
    r = run_figures("memn2n", tmp_path, "--quick")
    assert r.returncode == 0, r.stderr
    for name in ("memn2n_attention.png", "memn2n_learning_curves.png", "position_encoding.png"):
        assert _is_png(tmp_path / name)
    assert json.loads((tmp_path / "memn2n.json").read_text())["quick"] is True


def test_figures_of_an_unknown_model_is_a_one_line_error(tmp_path):
    r = run_figures("lstm", tmp_path, timeout=60)
    assert r.returncode == 2 and "no figures for lstm; models with figures: " in r.stderr and "memn2n" in r.stderr
    assert "Traceback" not in r.stderr


def test_bench_task_option(tmp_path):
    r = run_cli("bench", "memn2n", "--task", "21", timeout=60)
    assert r.returncode == 2 and "--task must be 1..20" in r.stderr


@pytest.mark.slow
def test_committed_memn2n_figures_are_what_figures_draws_today(tmp_path):
    check_committed_figures("memn2n", tmp_path, same=("data", "attention_question"),
                            close=("attention", "train_error", "val_error", "position_encoding"),
                            pictures=("memn2n_attention.png", "memn2n_learning_curves.png", "position_encoding.png"),
                            timeout=900)


# ----------------------------------------------------------------------------------------------------------------
# The NTM's pictures


def test_ntm_plots_write_pngs_and_check_shapes(tmp_path):
    rng = np.random.default_rng(0)
    T, M = 9, 16
    w = rng.dirichlet(np.ones(M), size=T)                     # (T, M)
    assert _is_png(plots.ntm_sequence(rng.integers(0, 2, (T, 9)), rng.integers(0, 2, (T, 8)), rng.random((T, 8)),
                                      tmp_path / "s.png"))
    assert _is_png(plots.ntm_weightings(w, w[::-1], tmp_path / "w.png"))
    assert _is_png(plots.ntm_memory(rng.standard_normal((M, 5)), tmp_path / "m.png", rows=(2, 9)))
    hist = [{"sequences": 100 * i, "train_bits_per_sequence": 80 / i, "bits_per_sequence": 85 / i,
             "train_bit_errors_per_sequence": 30 / i, "bit_errors_per_sequence": 32 / i} for i in range(1, 9)]
    assert _is_png(plots.ntm_learning_curve(hist, tmp_path / "c.png"))
    with pytest.raises(ValueError, match=r"read and write weightings must both be \(T, M\), got \(9, 16\) and "
                                         r"\(9, 15\)"):
        plots.ntm_weightings(w, w[:, :15])
    with pytest.raises(ValueError, match="inputs"):
        plots.ntm_sequence(np.zeros((T, 9)), np.zeros((T, 8)), np.zeros((T + 1, 8)))
    with pytest.raises(ValueError, match=r"memory must be \(M, d\)"):
        plots.ntm_memory(np.zeros(5))
    assert _is_png(plots.ntm_addressing_stages({"content": w[0], "shift": w[1]}, tmp_path / "a.png"))
    with pytest.raises(ValueError, match="weightings of one shape"):
        plots.ntm_addressing_stages({"content": w[0], "shift": w[1, :5]})


def test_ntm_figures_quick(tmp_path):
    r = run_figures("ntm", tmp_path, "--quick")
    assert r.returncode == 0, r.stderr
    for name in ("ntm_copy_sequence.png", "ntm_copy_weightings.png", "ntm_copy_memory.png",
                 "ntm_copy_learning_curve.png"):
        assert _is_png(tmp_path / name)
    numbers = json.loads((tmp_path / "ntm.json").read_text())
    assert numbers["quick"] is True and numbers["training_sequences"] == 800
    assert len(numbers["example_write_focus"]) == 41 and len(numbers["curve_sequences"]) == 2


@pytest.mark.slow
def test_committed_ntm_figures_are_what_figures_draws_today(tmp_path):
    """The same training run, the same sequence, the same focus of the heads."""
    check_committed_figures("ntm", tmp_path,
                            same=("training_sequences", "converged_at", "selected_at", "curve_sequences",
                                  "example_write_focus", "example_read_focus", "memory_rows_shown",
                                  "example_bit_errors", "generalisation_length"),
                            close=("curve_bits_per_sequence", "curve_bit_errors_per_sequence", "example_write_peak",
                                   "example_read_peak", "bit_errors_per_sequence", "bits_per_sequence",
                                   "generalisation_bit_errors_per_sequence"),
                            pictures=("ntm_copy_sequence.png", "ntm_copy_weightings.png", "ntm_copy_memory.png",
                                      "ntm_copy_learning_curve.png"), timeout=1800)


# ----------------------------------------------------------------------------------------------------------------
# MemNN: the hop-score heatmap, `bench memnn`, `figures --model memnn`


def test_hop_scores_heatmap_writes_a_png_and_checks_shapes(tmp_path):
    p = plots.hop_scores_heatmap(["a b", "c d", "e f"], np.array([[0.3, -1.2, 0.8], [1.0, 0.1, -0.4]]), [2, 0],
                                 [2, 0], "where is x", "garden", "garden", tmp_path / "s.png")
    assert _is_png(p)
    with pytest.raises(ValueError, match="3 sentences but scores over 2 slots"):
        plots.hop_scores_heatmap(["a", "b", "c"], np.ones((2, 2)), [0, 1], [0], "q", "x", "x")
    with pytest.raises(ValueError, match="2 hops of scores but 1 chosen memories"):
        plots.hop_scores_heatmap(["a", "b"], np.ones((2, 2)), [0], [0], "q", "x", "x")


def test_bench_memnn_json(tmp_path):
    from conftest import DEFAULT_BABI
    if not DEFAULT_BABI.is_dir():
        pytest.skip("no bAbI data")
    r = run_cli("bench", "memnn", "--json", "--quick", "--task", "2", "--data", str(DEFAULT_BABI))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["model"] == "memnn" and out["data"] == "bAbI 1k task 2" and out["training_questions"] == 900
    assert 0 < out["seconds_per_epoch"] < 30
    assert out["train_examples_per_second"] == pytest.approx(900 / out["seconds_per_epoch"])
    assert out["inference_examples_per_second"] > 0 and out["config"]["hops"] == 2
    assert list(out["scaling"]["memory_size"]) == ["10", "50"] and list(out["scaling"]["hops"]) == ["1", "2"]
    assert all(v > 0 for part in ("memory_size", "hops") for v in out["scaling"][part].values())
    r = run_cli("bench", "memnn", "--task", "21", timeout=60)
    assert r.returncode == 2 and "--task must be 1..20" in r.stderr


def test_figures_memnn_quick(tmp_path):
    r = run_figures("memnn", tmp_path, "--quick")
    assert r.returncode == 0, r.stderr
    assert _is_png(tmp_path / "memnn_hop_scores.png")
    numbers = json.loads((tmp_path / "memnn.json").read_text())
    assert numbers["quick"] is True and len(numbers["chosen"]) == len(numbers["hop_scores"]) == 2


@pytest.mark.slow
def test_committed_memnn_figures_are_what_figures_draws_today(tmp_path):
    committed, _ = check_committed_figures(
        "memnn", tmp_path, same=("data", "question", "chosen", "supporting", "predicted", "answer", "test_error"),
        close=("hop_scores", "train_error", "val_error"), pictures=("memnn_hop_scores.png",), timeout=900)
    assert committed["data"] == "bAbI 1k task 2"
    assert committed["chosen"] == committed["supporting"]      # the picture shows both hops finding their fact
def test_gate_heatmap_shows_the_facts_in_the_window_and_the_passes(tmp_path):
    pytest.importorskip("matplotlib")
    from memnet_np import dmn
    from memnet_np.data import babi
    qs = babi.parse_babi(["1 Mary went to the kitchen.", "2 John went to the garden.", "3 Mary went to the hall.",
                          "4 Where is Mary?\thall\t3"], task=1)
    vocab = babi.build_vocab(qs)
    arrays = babi.vectorize(qs, vocab, memory_size=2)         # the first sentence falls out of the window
    config = dmn.Config.tiny(vocab_size=len(vocab), memory_size=2, d=6)
    params = dmn.init_params(config, np.random.default_rng(0))
    pred, info = dmn.predict(params, dmn.make_batch(arrays, np.arange(1), config), config)
    assert info["gates"].shape == (1, config.passes, 2)
    p = plots.gate_heatmap(qs[0], info["gates"][0], arrays.mask[0], vocab.decode([pred[0]])[0], tmp_path / "g.png")
    assert p.stat().st_size > 1000
    with pytest.raises(ValueError, match="gates must be"):
        plots.gate_heatmap(qs[0], info["gates"], arrays.mask[0], "x")


@pytest.mark.slow
def test_bench_dmn_reports_both_variants_and_the_growth_with_facts():
    from memnet_np import dmn
    r = dmn.bench(quick=True)
    for variant in ("dmn", "dmn+"):
        v = r[variant]
        assert v["examples_per_second"] > 0 and v["epoch_seconds"] > 0
        assert v["plain_batches"]["examples_per_second"] > 0 and v["plain_batches"]["examples"] == v["examples"]
        assert list(v["ms_per_example_by_facts"]) == [10, 50] and list(v["ms_per_example_by_hidden"]) == [40, 80]
        assert v["ms_per_example_by_facts"][50] > v["ms_per_example_by_facts"][10]   # 5x the facts costs more
    text = dmn.format_bench(r)
    assert "examples/s" in text and "PyTorch" in text and text.count("plain shuffled batches") == 2
