"""The training loop, checkpoints and experiment plumbing, on generated data (seconds)."""
import json

import numpy as np
import pytest

from memnet_np import data, experiments, memn2n, optim
from memnet_np import train as T


@pytest.fixture(scope="module")
def tiny_data():
    return data.load_generated(1, n_train=1000, n_test=300, seed=0)


def test_training_learns_generated_task_1(tiny_data):
    config = memn2n.Config.for_data(tiny_data, epochs=40, ls_epochs=5)
    logs = []
    result = T.train(memn2n, tiny_data, config, np.random.default_rng(0), progress=lambda log, total: logs.append(log))
    assert result.epochs == len(result.history) == len(logs)
    assert result.ls_epochs == 5                                          # the default: a fixed linear start
    assert all(h.phase == "linear start" for h in result.history[:result.ls_epochs])
    assert result.history[-1].train_loss < result.history[0].train_loss
    # seeds 0-3 reach 0.7-1.0% test error in 1-2 s; chance is ~83%, and a model that cannot use its memory
    # (or reads the wrong sentence) stays far above 3%
    assert result.test_error < 3.0 and result.train_error < 1.0
    assert set(result.test_error_by_task) == {1}


def test_learning_rate_schedule_halves_every_decay_every(tiny_data):
    config = memn2n.Config.for_data(tiny_data, epochs=6, decay_every=2, linear_start=False, lr=0.008)
    result = T.train(memn2n, tiny_data, config, np.random.default_rng(0), evaluate_test=False)
    assert [h.lr for h in result.history] == [0.008, 0.008, 0.004, 0.004, 0.002, 0.002]


def test_official_sampling_draws_with_replacement_and_halves_one_epoch_sooner(tiny_data, monkeypatch):
    # MemN2N's train.m: floor(n/32) batches of randi(n, 32, 1), and the rate halved where mod(ep, step) == 0
    config = memn2n.Config.for_data(tiny_data, epochs=6, decay_every=2, linear_start=False, lr=0.008,
                                    sampling="official")
    n = len(tiny_data.train.answers)
    seen, real = [], memn2n.make_batch
    monkeypatch.setattr(memn2n, "make_batch", lambda arrays, idx, *a, **k: seen.append(idx) or real(arrays, idx,
                                                                                                     *a, **k))
    result = T.train(memn2n, tiny_data, config, np.random.default_rng(0), evaluate_test=False)
    assert [h.lr for h in result.history] == [0.008, 0.004, 0.004, 0.002, 0.002, 0.001]
    train_batches = [idx for idx in seen if len(idx) == config.batch_size][:n // 32]   # epoch 1's training batches
    assert len(train_batches) == n // 32 and n % 32 != 0
    drawn = np.concatenate(train_batches)
    assert len(np.unique(drawn)) < len(drawn)                 # some questions twice: drawn with replacement
    assert 0.55 < len(np.unique(drawn)) / n < 0.72            # ~1 − 1/e of them once or more
    small = T.drawn_batches(10, 4, np.random.default_rng(0))
    assert [len(b) for b in small] == [4, 4] and all(0 <= i < 10 for b in small for i in b)
    assert len(T.drawn_batches(3, 4, np.random.default_rng(0))) == 1   # a split smaller than a batch: one batch
    with pytest.raises(ValueError, match="sampling must be one of"):
        memn2n.Config.tiny(sampling="bootstrap")


def test_fixed_linear_start_runs_its_epochs_at_ls_lr(tiny_data):
    config = memn2n.Config.for_data(tiny_data, epochs=2, ls_mode="fixed", ls_epochs=3)
    result = T.train(memn2n, tiny_data, config, np.random.default_rng(0), evaluate_test=False)
    assert [h.phase for h in result.history] == ["linear start"] * 3 + ["main"] * 2
    assert all(h.lr == config.ls_lr for h in result.history)


def test_null_word_stays_zero_through_training(tiny_data):
    config = memn2n.Config.for_data(tiny_data, epochs=2, linear_start=False)
    result = T.train(memn2n, tiny_data, config, np.random.default_rng(1), evaluate_test=False)
    for name in memn2n.embedding_names(config):
        assert np.all(result.params[name][0] == 0)


def test_same_seed_same_result(tiny_data):
    config = memn2n.Config.for_data(tiny_data, epochs=2, ls_epochs=1)
    a = T.train(memn2n, tiny_data, config, np.random.default_rng(5))
    b = T.train(memn2n, tiny_data, config, np.random.default_rng(5))
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)


def test_divergence_is_reported_not_hidden(tiny_data):
    config = memn2n.Config.for_data(tiny_data, epochs=1, linear_start=False)
    params = memn2n.init_params(config, np.random.default_rng(0))
    params["C1"][3, 2] = np.inf                          # what a blown-up update leaves behind
    with pytest.raises(FloatingPointError, match=r"step 1 of the epoch: params\['C1'\] holds NaN or inf"):
        with np.errstate(all="ignore"):
            T.train(memn2n, tiny_data, config, np.random.default_rng(0), params=params)


def test_checkpoint_round_trip_and_errors(tmp_path, tiny_data):
    config = memn2n.Config.tiny(vocab_size=len(tiny_data.vocab), memory_size=tiny_data.memory_size)
    params = memn2n.init_params(config, np.random.default_rng(0))
    path = T.save_checkpoint(tmp_path / "m.npz", "memn2n", params, config, tiny_data.vocab.to_list(), {"task": 1})
    assert not list(tmp_path.glob("*.tmp")), "the atomic write leaves no temporary file behind"
    ck = T.load_checkpoint(path, "memn2n")
    assert memn2n.Config(**ck.config) == config and ck.vocab == tiny_data.vocab.to_list() and ck.meta == {"task": 1}
    assert all(np.array_equal(ck.params[k], params[k]) for k in params)
    with pytest.raises(T.CheckpointError, match="a memn2n checkpoint, not dmn"):
        T.load_checkpoint(path, "dmn")
    with pytest.raises(T.CheckpointError, match="no such checkpoint"):
        T.load_checkpoint(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(T.CheckpointError, match="not an .npz checkpoint"):
        T.load_checkpoint(tmp_path / "junk.npz")
    (tmp_path / "cut.npz").write_bytes(path.read_bytes()[:200])
    with pytest.raises(T.CheckpointError):
        T.load_checkpoint(tmp_path / "cut.npz")
    np.savez(tmp_path / "other.npz", header=np.array(json.dumps({"format": "memnet_np checkpoint", "version": 99})))
    with pytest.raises(T.CheckpointError, match="version 99"):
        T.load_checkpoint(tmp_path / "other.npz")


def test_selection_follows_the_paper_and_reports_validation_choice():
    runs = [experiments.RunResult(0, {"train_error": 1.0, "val_error": 2.0, "test_error": 9.0}),
            experiments.RunResult(1, {"train_error": 0.0, "val_error": 5.0, "test_error": 7.0}),
            experiments.RunResult(2, {"train_error": 3.0, "val_error": 1.0, "test_error": 3.0})]
    by_train, by_val = experiments.select(runs)
    assert by_train.seed == 1 and by_val.seed == 2


def test_train_runs_in_parallel_processes_match_sequential():
    spec = experiments.DataSpec(1, generated=True, n_train=200, n_test=100)
    over = {"epochs": 2, "ls_epochs": 1}
    seq = experiments.train_runs("memn2n", spec, runs=2, overrides=over, verbose=False, echo=lambda *a: None)
    par = experiments.train_runs("memn2n", spec, runs=2, jobs=2, overrides=over, verbose=False, echo=lambda *a: None)
    assert [r["test_error"] for r in seq["results"]["runs"]] == [r["test_error"] for r in par["results"]["runs"]]


def test_unknown_and_planned_models_are_named(monkeypatch):
    monkeypatch.setattr(experiments, "PLANNED", ("lstm-mann",))
    with pytest.raises(experiments.UserError, match="not implemented yet"):
        experiments.get_model("lstm-mann")
    with pytest.raises(experiments.UserError, match="unknown model 'lstm'"):
        experiments.get_model("lstm")


@pytest.mark.parametrize("val_losses,patience,expected_ls", [
    ([5, 4, 4.5, 3, 3.1, 3.2, 3.3, 3.4, 3.5, 9, 9], 5, 9),   # new minimum at epoch 4, then 5 without one
    ([5, 4, 4.5, 3, 3.1, 3.2, 3.3, 3.4, 3.5, 9, 9], 1, 3),   # the literal reading: the first uptick ends it
    ([5, 4, 3, 2, 1, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05], 2, 10),  # still falling: runs to the ls_epochs cap
])
def test_linear_start_ends_when_validation_loss_stops_falling(monkeypatch, tiny_data, val_losses, patience,
                                                               expected_ls):
    scripted = iter(val_losses * 3)
    real = T.evaluate

    def fake_evaluate(model, params, arrays, config, chunk=512):
        loss, err, preds = real(model, params, arrays, config, chunk)
        if arrays is tiny_data.val and config.attention == "linear":
            return next(scripted) * len(arrays.answers), err, preds
        return loss, err, preds
    monkeypatch.setattr(T, "evaluate", fake_evaluate)
    monkeypatch.setattr(T, "run_epoch", lambda *a, **k: (1.0, 50.0))
    config = memn2n.Config.for_data(tiny_data, epochs=1, ls_epochs=10, ls_patience=patience, ls_mode="val")
    result = T.train(memn2n, tiny_data, config, np.random.default_rng(0), evaluate_test=False)
    assert result.ls_epochs == expected_ls


def test_a_killed_run_resumes_to_the_same_result_bit_for_bit(tmp_path):
    """SIGKILL a training process mid-run, resume it, and get what an uninterrupted run gets."""
    from cli_runs import killed_and_resumed
    args = ["train", "memn2n", "--task", "1", "--generated", "--epochs", "12", "--quiet"]
    saved, ra, rb = killed_and_resumed(args, tmp_path, "state-seed0.npz", _epochs_saved, enough=5, timeout=300)
    assert 5 <= saved < 32, saved                        # 20 linear-start + 12 main epochs in all
    for key in ("train_error", "val_error", "test_error", "epochs", "ls_epochs"):
        assert ra[key] == rb[key], key


def _epochs_saved(path):
    try:
        with np.load(path, allow_pickle=False) as z:
            return len(json.loads(str(z["header"]))["history"])
    except Exception:                                    # being replaced this very moment: try again
        return 0


def test_resume_refuses_a_state_saved_with_other_settings(tmp_path, tiny_data):
    config = memn2n.Config.for_data(tiny_data, epochs=2, ls_epochs=1)
    T.train(memn2n, tiny_data, config, np.random.default_rng(0), state_path=tmp_path / "s.npz", evaluate_test=False)
    other = memn2n.replace(config, epochs=3)
    with pytest.raises(T.CheckpointError, match=r"saved by a run with other settings \(epochs\)"):
        T.train(memn2n, tiny_data, other, np.random.default_rng(0), state_path=tmp_path / "s.npz", resume=True)
    (tmp_path / "bad.npz").write_bytes(b"junk")
    with pytest.raises(T.CheckpointError, match="not a readable training state"):
        T.train(memn2n, tiny_data, config, np.random.default_rng(0), state_path=tmp_path / "bad.npz", resume=True)


def test_resuming_in_process_equals_one_run(tmp_path, tiny_data):
    config = memn2n.Config.for_data(tiny_data, epochs=3, ls_epochs=2)
    whole = T.train(memn2n, tiny_data, config, np.random.default_rng(3))
    part = memn2n.replace(config)
    calls = []

    def stop_after_three(log, total):
        calls.append(log.epoch)
        if log.epoch == 3:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        T.train(memn2n, tiny_data, part, np.random.default_rng(3), progress=stop_after_three,
                state_path=tmp_path / "s.npz")
    again = T.train(memn2n, tiny_data, part, np.random.default_rng(3), state_path=tmp_path / "s.npz", resume=True)
    assert all(np.array_equal(whole.params[k], again.params[k]) for k in whole.params)
    assert (whole.test_error, whole.epochs) == (again.test_error, again.epochs)


def test_a_blow_up_names_the_epoch_and_keeps_the_last_good_state(tmp_path, tiny_data, monkeypatch):
    config = memn2n.Config.for_data(tiny_data, epochs=3, ls_epochs=1)
    real = T.run_epoch
    calls = []

    def blow_up_in_the_third(model, params, *a, **k):
        calls.append(1)
        if len(calls) == 3:
            params["C1"][2, 1] = np.nan
        return real(model, params, *a, **k)
    monkeypatch.setattr(T, "run_epoch", blow_up_in_the_third)
    with pytest.raises(FloatingPointError, match=r"epoch 3, step 1 of the epoch: params\['C1'\] holds NaN or inf.*"
                                                 r"the last good state \(after epoch 2\) is kept in"):
        with np.errstate(all="ignore"):
            T.train(memn2n, tiny_data, config, np.random.default_rng(0), state_path=tmp_path / "s.npz")
    params, st, history = T.load_training_state(tmp_path / "s.npz", config, np.random.default_rng(0),
                                                T.optim.SGD(0.01))
    assert len(history) == 2 and all(np.isfinite(v).all() for v in params.values())


def test_the_one_pass_update_trains_exactly_as_clipping_then_sgd():
    """run_epoch updates plain SGD after per-matrix Frobenius clipping in one pass (optim.sgd_step_per_matrix_clip);
    any other optimizer (here a subclass of SGD, which the fast path does not take) clips, then steps. The same
    parameters to the last bit, with clipping firing on most steps (max_grad_norm 0.5)."""
    class ByParts(optim.SGD):
        pass

    ds = data.load_generated(1, n_train=200, n_test=10, seed=0)
    config = memn2n.Config.for_data(ds, d=8, max_grad_norm=0.5)
    out = []
    for opt in (optim.SGD(0.05), ByParts(0.05)):
        rng = np.random.default_rng(0)
        params = memn2n.init_params(config, rng)
        logs = [T.run_epoch(memn2n, params, ds.train, config, rng, 0.05, opt) for _ in range(2)]
        out.append((params, logs))
    (p1, l1), (p2, l2) = out
    assert l1 == l2 and all(np.array_equal(p1[k], p2[k]) for k in p1)
    assert not np.array_equal(p1["A"], memn2n.init_params(config, np.random.default_rng(0))["A"])   # it trained
