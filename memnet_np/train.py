"""The one training loop: epochs, learning-rate schedule, linear start, validation, progress, results.

A model module (e.g. memnet_np.memn2n) brings `init_params`, `make_batch`, `loss_and_grads`, `predict` and a
`Config` with the training settings; this file only orders the steps:

    for each epoch:  shuffle → for each batch: loss, grads → clip → SGD step → null word back to 0
                     → validation loss/error → progress line

Linear start (MemN2N §4.2): the first phase trains with every attention softmax removed (lr = ls_lr) for
ls_epochs epochs ("fixed", the official code and the default) or until the validation loss stops falling ("val",
the paper's words); then the softmax is put back and the normal schedule runs (`epochs` epochs, halving every
`decay_every`). "Stops falling" is read with patience: ls_patience epochs in a row without a new minimum (at most
ls_epochs in all); taken literally, the first uptick of a 100-question validation loss ends it after 2-3 epochs.
On the bAbI 1k suite the fixed reading gives the lower validation error (the README has the comparison).

Hooks a model module may offer: `make_optimizer(config)` (default: plain SGD at config.lr; the DMN: Adam),
`epoch_batches(arrays, config, rng)` (default: `shuffled_batches`; the DMN batches stories of similar length,
MemN2N with `sampling="official"` draws them with replacement, `drawn_batches`), `rate_halvings(config,
main_epochs_done)` (default: once after every `decay_every` main epochs), and a config field `patience` (early
stopping: after `patience` main epochs without a new lowest validation loss training stops, and the parameters of
that lowest validation loss are the result).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from memnet_np import optim


@dataclass
class EpochLog:
    epoch: int            # 1-based, counting linear-start epochs too
    phase: str            # "linear start" | "main"
    lr: float
    train_loss: float     # mean per example, over the epoch's batches (parameters changing meanwhile)
    train_error: float    # percent, same batches
    val_loss: float       # mean per example
    val_error: float      # percent
    seconds: float


@dataclass
class TrainResult:
    params: dict
    config: object
    history: list = field(default_factory=list)
    train_error: float = float("nan")   # percent, final model on the whole training split (no noise)
    val_error: float = float("nan")
    test_error: float = float("nan")
    test_error_by_task: dict = field(default_factory=dict)
    seconds: float = 0.0
    epochs: int = 0
    ls_epochs: int = 0

    def summary(self) -> dict:
        return {"train_error": self.train_error, "val_error": self.val_error, "test_error": self.test_error,
                "test_error_by_task": {str(k): v for k, v in self.test_error_by_task.items()},
                "epochs": self.epochs, "ls_epochs": self.ls_epochs, "seconds": self.seconds}


def evaluate(model, params, arrays, config, chunk: int = 512):
    """Summed loss, error (%) and predictions (N,) on a whole split, without noise, in large chunks."""
    n = len(arrays.answers)
    if n == 0:
        return 0.0, float("nan"), np.zeros(0, dtype=np.int64)
    preds, loss = [], 0.0
    for start in range(0, n, chunk):
        idx = np.arange(start, min(start + chunk, n))
        batch = model.make_batch(arrays, idx, config, rng=None, train=False)
        p, info = model.predict(params, batch, config)
        preds.append(p)
        loss += info["loss"]
    preds = np.concatenate(preds)
    return loss, 100.0 * float(np.mean(preds != arrays.answers)), preds


def error_by_task(arrays, preds) -> dict:
    """{task: error %} for a split holding one or several bAbI tasks."""
    out = {}
    for t in np.unique(arrays.tasks):
        sel = arrays.tasks == t
        out[int(t)] = 100.0 * float(np.mean(preds[sel] != arrays.answers[sel]))
    return out


class Progress:
    """One line per epoch with elapsed time and an ETA; quiet=True prints nothing."""

    def __init__(self, total_epochs: int, quiet: bool = False, stream=None, prefix: str = ""):
        self.total, self.quiet, self.prefix = total_epochs, quiet, prefix
        self.stream = sys.stdout if stream is None else stream
        self.t0 = time.perf_counter()

    def __call__(self, log: EpochLog, total: Optional[int] = None):
        if self.quiet:
            return
        total = self.total if total is None else total
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / log.epoch * max(total - log.epoch, 0)
        phase = "LS " if log.phase == "linear start" else ""
        print(f"{self.prefix}epoch {log.epoch:3d}/{total} {phase}lr {log.lr:.5f}  loss {log.train_loss:.3f}  "
              f"train err {log.train_error:5.1f}%  val loss {log.val_loss:.3f}  val err {log.val_error:5.1f}%  "
              f"{elapsed:6.1f}s  ETA {eta:5.1f}s", file=self.stream, flush=True)


def clip_gradients(model, grads: dict, config) -> dict:
    """The model's own clipping (a `clip_gradients(grads, config)` hook: MemN2N's official or Frobenius), else
    each matrix to config.max_grad_norm by its Frobenius norm."""
    if hasattr(model, "clip_gradients"):
        return model.clip_gradients(grads, config)[0]
    return optim.clip_by_norm_per_matrix(grads, config.max_grad_norm)[0]


def clip_and_step(model, params, grads, config, opt) -> None:
    """clip_gradients, then opt.step. Plain SGD after per-matrix Frobenius clipping (MemN2N's default, MemNN) runs
    as one pass, optim.sgd_step_per_matrix_clip: the same update to the last bit, faster on small tasks."""
    frobenius = not hasattr(model, "clip_gradients") or getattr(config, "clipping", None) == "frobenius"
    if frobenius and type(opt) is optim.SGD and opt.momentum == 0.0 and not opt.skip:
        optim.sgd_step_per_matrix_clip(params, grads, opt.lr, config.max_grad_norm)
    else:
        opt.step(params, clip_gradients(model, grads, config))


def run_epoch(model, params, arrays, config, rng, lr: float, opt: optim.SGD, own_batching: bool = True):
    """One pass over the training split in shuffled batches. Returns (mean loss, error %).
    own_batching=False ignores a model's own batching (bench: the DMN's epoch in plain shuffled batches)."""
    n = len(arrays.answers)
    if own_batching and hasattr(model, "epoch_batches"):      # a model's own batching (the DMN: by story length)
        batches = model.epoch_batches(arrays, config, rng)
    else:
        batches = shuffled_batches(n, config.batch_size, rng)
    seen = sum(len(idx) for idx in batches)                   # n, or ⌊n/B⌋·B drawn with replacement
    null_rows = model.embedding_names(config)
    opt.lr = lr
    total_loss, wrong = 0.0, 0
    for step, idx in enumerate(batches, start=1):
        batch = model.make_batch(arrays, idx, config, rng, train=True)
        try:
            loss, grads, info = model.loss_and_grads(params, batch, config)
        except optim.NonFiniteError as e:
            raise optim.NonFiniteError(f"step {step} of the epoch: {e} (lr {lr}); try a smaller learning rate") from None
        if not math.isfinite(loss):
            raise optim.NonFiniteError(f"step {step} of the epoch: the training loss became {loss} (lr {lr}); "
                                       f"try a smaller learning rate")
        clip_and_step(model, params, grads, config, opt)
        for name in null_rows:
            params[name][0] = 0.0                             # the null word stays at zero
        total_loss += loss
        wrong += int(np.sum(info["predictions"] != batch.answers))
    return total_loss / seen, 100.0 * wrong / seen


def shuffled_batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Every example once, in a random order, cut into consecutive batches (the last one may be smaller)."""
    order = rng.permutation(n)
    return [order[start:start + batch_size] for start in range(0, n, batch_size)]


def drawn_batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """The official MemN2N code's epoch (train.m: `for k = 1:floor(length(train_range)/batch_size)`, `batch =
    train_range(randi(length(train_range), batch_size, 1))`): ⌊n/B⌋ batches of B questions drawn with replacement,
    so an epoch sees about 63% of the questions, some twice. A split smaller than a batch gives one batch."""
    return list(rng.integers(0, n, size=(max(n // batch_size, 1), batch_size)))


def halvings(model, config, main_epochs_done: int) -> int:
    """How many times the rate is halved in the next main epoch: the model's `rate_halvings` hook, or once after
    every decay_every main epochs."""
    if hasattr(model, "rate_halvings"):
        return model.rate_halvings(config, main_epochs_done)
    return main_epochs_done // config.decay_every


def train(model, dataset, config, rng: np.random.Generator, params: Optional[dict] = None,
          progress: Optional[Callable] = None, evaluate_test: bool = True, state_path=None,
          resume: bool = False) -> TrainResult:
    """Train `model` on dataset.train, validate on dataset.val each epoch, score the final model on all splits.

    state_path: after every epoch the whole training state (parameters, optimizer, the random generator,
    history, linear-start progress) is written there atomically. resume=True continues from that file when it
    exists, and gives the same parameters and results, bit for bit, as a run that was never interrupted.
    """
    t0 = time.perf_counter()
    # a model may bring its own optimizer (the DMN: Adam); the default is the papers' plain SGD
    opt = model.make_optimizer(config) if hasattr(model, "make_optimizer") else optim.SGD(lr=config.lr)
    patience = getattr(config, "patience", None)             # early stopping on validation loss (None: off)
    ls = getattr(config, "linear_start", False)
    lin = dataclasses.replace(config, attention="linear") if ls else None
    lr0 = config.ls_lr if ls else config.lr
    # where training stands: linear-start epochs done (and whether that phase is over), main epochs done
    st = {"ls_done": 0, "ls_over": not ls, "best": math.inf, "since_best": 0, "main_done": 0,
          "val_best": math.inf, "val_since": 0}
    history: list[EpochLog] = []
    if resume and state_path is not None and Path(state_path).is_file():
        params, st, history = load_training_state(state_path, config, rng, opt)
    elif params is None:
        params = model.init_params(config, rng)
    progress = progress or Progress(config.epochs + (config.ls_epochs if ls else 0), quiet=True)

    def one_epoch(cfg, lr, phase):
        e0 = time.perf_counter()
        tr_loss, tr_err = run_epoch(model, params, dataset.train, cfg, rng, lr, opt)
        v_loss, v_err, _ = evaluate(model, params, dataset.val, cfg)
        nval = max(len(dataset.val.answers), 1)
        log = EpochLog(len(history) + 1, phase, lr, tr_loss, tr_err, v_loss / nval, v_err, time.perf_counter() - e0)
        history.append(log)
        return log

    try:                                                      # linear start until it is over, then the schedule
        while True:
            if not st["ls_over"]:                                 # linear start: the softmax removed, lr = ls_lr
                log = one_epoch(lin, config.ls_lr, "linear start")
                st["ls_done"] += 1
                if log.val_loss < st["best"]:
                    st["best"], st["since_best"] = log.val_loss, 0
                else:
                    st["since_best"] += 1
                stopped = config.ls_mode == "val" and st["since_best"] >= config.ls_patience   # the loss stopped falling
                st["ls_over"] = stopped or st["ls_done"] >= config.ls_epochs
                progress(log, config.epochs + config.ls_epochs)
            elif st["main_done"] < config.epochs:
                lr = lr0 * 0.5 ** halvings(model, config, st["main_done"])
                log = one_epoch(config, lr, "main")
                st["main_done"] += 1
                progress(log, config.epochs + st["ls_done"])
                if patience is not None:                      # keep the parameters of the lowest validation loss
                    if log.val_loss < st.get("val_best", math.inf):
                        st["val_best"], st["val_since"] = log.val_loss, 0
                        st["best_params"] = {k: v.copy() for k, v in params.items()}
                    else:
                        st["val_since"] = st.get("val_since", 0) + 1
                    if st["val_since"] >= patience:
                        st["main_done"] = config.epochs       # stopped early
            else:
                break
            if state_path is not None:
                save_training_state(state_path, params, opt, rng, st, history, config)
    except optim.NonFiniteError as e:
        if state_path is not None and Path(state_path).is_file():
            raise optim.NonFiniteError(f"epoch {len(history) + 1}, {e}; the last good state (after epoch "
                                       f"{len(history)}) is kept in {state_path}") from None
        raise

    if st.get("best_params") is not None:
        params = st["best_params"]                            # selected on validation loss
    result = TrainResult(params, config, history, epochs=len(history), ls_epochs=st["ls_done"])
    _, result.train_error, _ = evaluate(model, params, dataset.train, config)
    _, result.val_error, _ = evaluate(model, params, dataset.val, config)
    if evaluate_test:
        _, result.test_error, preds = evaluate(model, params, dataset.test, config)
        result.test_error_by_task = error_by_task(dataset.test, preds)
    result.seconds = time.perf_counter() - t0
    return result


# ----------------------------------------------------------------------------------------------------------------
# The training state, saved after every epoch so an interrupted run can go on: parameters, optimizer state, the
# random generator's state, the history and where training stands, in one .npz with a JSON header.

STATE_VERSION = 1


def save_training_state(path, params, opt, rng, st, history, config) -> None:
    header = {"format": "memnet_np training state", "version": STATE_VERSION,
              "config": dataclasses.asdict(config), "progress": {k: v for k, v in st.items() if k != "best_params"},
              "rng": rng.bit_generator.state, "history": [dataclasses.asdict(h) for h in history]}
    arrays = {f"param/{k}": v for k, v in params.items()}
    arrays.update({f"best/{k}": v for k, v in (st.get("best_params") or {}).items()})
    arrays.update({f"opt/{k}": np.asarray(v) for k, v in opt.state_dict().items()})
    arrays["header"] = np.array(json.dumps(header))
    _write_npz_atomically(Path(path), arrays)


def load_training_state(path, config, rng, opt):
    """(params, progress, history) from a saved state; the generator and optimizer are restored in place."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            params = {k[len("param/"):]: z[k] for k in z.files if k.startswith("param/")}
            opt_state = {k[len("opt/"):]: z[k] for k in z.files if k.startswith("opt/")}
            best = {k[len("best/"):]: z[k] for k in z.files if k.startswith("best/")}
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError) as e:
        raise CheckpointError(f"{path}: not a readable training state ({type(e).__name__}: {e})") from None
    if header.get("format") != "memnet_np training state" or header.get("version") != STATE_VERSION:
        raise CheckpointError(f"{path}: not a memnet_np training state of version {STATE_VERSION}")
    if header["config"] != json.loads(json.dumps(dataclasses.asdict(config))):
        changed = sorted(k for k, v in dataclasses.asdict(config).items() if header["config"].get(k) != v)
        raise CheckpointError(f"{path}: saved by a run with other settings ({', '.join(changed)}); resume with the "
                              f"same arguments, or start afresh without --resume")
    rng.bit_generator.state = header["rng"]
    opt.load_state_dict(opt_state)
    st = header["progress"]
    st["best"] = float(st["best"])
    if best:
        st["best_params"] = best
    return params, st, [EpochLog(**h) for h in header["history"]]


def _write_npz_atomically(path: Path, arrays: dict) -> Path:
    """Write to a temporary file, flush it to disk, then rename: a crash leaves the old file or none, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


# ----------------------------------------------------------------------------------------------------------------
# Checkpoints: one .npz with the parameters and a JSON header (model, config, vocabulary, results), written
# atomically, read with allow_pickle=False.

CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, corrupt, from another version, or for another model."""


@dataclass
class Checkpoint:
    model: str
    config: dict
    params: dict
    vocab: list
    meta: dict


def save_checkpoint(path, model_name: str, params: dict, config, vocab_words, meta: Optional[dict] = None):
    """Write params + JSON header to `path` (.npz) atomically: a crash leaves the old file or none, never half."""
    path = Path(path)
    header = {"format": "memnet_np checkpoint", "version": CHECKPOINT_VERSION, "model": model_name,
              "config": dataclasses.asdict(config), "vocab": list(vocab_words), "meta": meta or {}}
    arrays = {f"param/{k}": v for k, v in params.items()}
    arrays["header"] = np.array(json.dumps(header))
    return _write_npz_atomically(path, arrays)


def load_checkpoint(path, model_name: Optional[str] = None) -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not an .npz checkpoint (corrupt, truncated, or another kind of file)")
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            params = {k[len("param/"):]: z[k] for k in z.files if k.startswith("param/")}
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError) as e:
        raise CheckpointError(f"{path}: not a readable memnet_np checkpoint ({type(e).__name__}: {e})") from None
    if header.get("format") != "memnet_np checkpoint":
        raise CheckpointError(f"{path}: not a memnet_np checkpoint")
    if header.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {header.get('version')}, this memnet_np reads "
                              f"version {CHECKPOINT_VERSION}")
    if model_name is not None and header["model"] != model_name:
        raise CheckpointError(f"{path}: a {header['model']} checkpoint, not {model_name}")
    return Checkpoint(header["model"], header["config"], params, header["vocab"], header.get("meta", {}))
