"""NTM training on a stream of fresh random sequences, evaluation, the speed bench, results files, and the command
line's hooks (`train ntm`, `bench ntm`).

Training (`train_task`): fresh random sequences of the task, Adam or the paper's RMSProp, each gradient component
clipped, a fixed held-out set scored every so often (convergence = ≤ 0.1 bit errors per sequence there); `bench`
measures training sequences per second. `Config.tuned(task)` holds the settings chosen on held-out sequences.
"""
from __future__ import annotations

import dataclasses
import json
import time
import zipfile
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from memnet_np import optim
from memnet_np import train as T
from memnet_np.ntm.config import (REPEATS, TASK_SEQUENCES, TASKS, Config, init_params, make_batch, replace,
                                  task_batch)
from memnet_np.ntm.model import forward, loss_and_grads, metrics

# ----------------------------------------------------------------------------------------------------------------
# Training: a stream of fresh random sequences, RMSProp or Adam, each gradient component clipped


def evaluation_set(config: Config, rng: np.random.Generator, sequences: int, min_len: Optional[int] = None,
                   max_len: Optional[int] = None, batch: int = 100) -> list:
    """Fixed held-out batches (lengths in [min_len, max_len], the training range by default)."""
    out, left = [], sequences
    while left > 0:
        n = min(batch, left)
        out.append(make_batch(task_batch(config, rng, n, min_len, max_len), config, rng))
        left -= n
    return out


def evaluate(params, config: Config, batches: list) -> dict:
    """Mean cost (bits) and bit errors per sequence over the batches."""
    bits, errors = [], []
    for b in batches:
        logits, _ = forward(params, b, config)
        m = metrics(logits, b)
        bits.append(m["bits"])
        errors.append(m["bit_errors"])
    return {"bits_per_sequence": float(np.concatenate(bits).mean()),
            "bit_errors_per_sequence": float(np.concatenate(errors).mean()), "sequences": int(sum(map(len, bits)))}


def make_optimizer(config: Config) -> optim.Optimizer:
    if config.optimizer == "adam":
        return optim.Adam(lr=config.lr)
    return optim.RMSProp(lr=config.lr, decay=config.decay, momentum=config.momentum, eps=config.rmsprop_eps)


def clip_gradients(grads: dict, config: Config) -> dict:
    """Each component clipped to ±config.clip (the paper), then, with clip_norm, all of them rescaled together to a
    global norm of at most clip_norm (Collier & Beel); a setting of 0 turns its clipping off."""
    if config.clip:
        grads = optim.clip_by_value(grads, config.clip)
    if config.clip_norm:
        grads, _ = optim.clip_by_global_norm(grads, config.clip_norm)
    return grads


def train_task(task: Optional[str] = None, config: Optional[Config] = None, rng: Optional[np.random.Generator] = None,
               sequences: int = 30_000, batch: Optional[int] = None, progress: Optional[Callable] = None,
               eval_every: int = 1000, eval_sequences: int = 200, target: float = 0.1,
               stop_when_converged: bool = False, params: Optional[dict] = None, state_path=None,
               resume: bool = False) -> dict:
    """Train on `sequences` fresh random sequences of the task, in batches of `batch` (config.batch_size).

    Without a config, Config.tuned(task); Config.for_task(task) gives the paper's optimiser settings instead.

    Every `eval_every` sequences the model is scored on a fixed held-out set of `eval_sequences` sequences of the
    training lengths (drawn from its own generator, never trained on); `converged_at` is the first such point with
    at most `target` bit errors per sequence. `progress(record)` is called with each evaluation record. Seconds are
    training time, evaluations excluded. Returns params (the last), config, history, converged_at, final (the last
    record), best (the record with the fewest held-out bit errors, then bits) and best_params (a copy, taken then).

    state_path: after every evaluation the whole training state (parameters, the best ones, the optimiser, the
    training generator, history, learning rate, curriculum) is written there atomically. resume=True continues from
    that file when it exists (with the same rng seed and arguments), and ends with the same parameters and records,
    bit for bit, as a run that was never interrupted (only the measured seconds differ).
    """
    if config is None:
        config = Config.tuned(task or "copy")                 # the settings chosen on held-out sequences
    elif task is not None and task != config.task:
        config = replace(config, task=task, **{k: v for k, v in dataclasses.asdict(Config.for_task(task)).items()
                                               if k in ("input_width", "output_width", "min_len", "max_len")})
    if batch is not None:
        config = replace(config, batch_size=batch)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    for name, v in (("sequences", sequences), ("eval_every", eval_every), ("eval_sequences", eval_sequences)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    train_rng, eval_rng = rng.spawn(2)
    held_out = evaluation_set(config, eval_rng, eval_sequences)
    params = init_params(config, train_rng) if params is None else params
    opt = make_optimizer(config)
    lr = config.lr
    B = config.batch_size
    seen, seconds, history, converged_at, best, best_params = 0, 0.0, [], None, None, None
    run_bits, run_errors, run_n = 0.0, 0.0, 0
    next_eval = eval_every
    repeats = config.task == "repeat-copy"                   # its curriculum is over the repeats, not the length
    lowest, highest = REPEATS if repeats else (config.min_len, config.max_len)
    top = min(max(config.curriculum, lowest), highest) if config.curriculum else highest
    stopped = False
    evaluation = {"eval_every": eval_every, "eval_sequences": eval_sequences, "target": target}
    if resume and state_path is not None and Path(state_path).is_file():
        params, best_params, st = load_state(state_path, config, evaluation, train_rng, opt)
        lr, seen, seconds, next_eval, top, stopped = (st[k] for k in ("lr", "seen", "seconds", "next_eval", "top",
                                                                     "stopped"))
        history, converged_at = st["history"], st["converged_at"]
        best = None if st["best"] is None else history[st["best"]]
    while seen < sequences and not stopped:
        t0 = time.perf_counter()
        b = make_batch(task_batch(config, train_rng, B, config.min_len, config.max_len if repeats else top,
                                  top if repeats else None), config, train_rng)
        _, grads, info = loss_and_grads(params, b, config)
        opt.step(params, clip_gradients(grads, config))
        seconds += time.perf_counter() - t0
        seen += B
        run_bits += float(info["bits_per_sequence"].sum())
        run_errors += float(info["bit_errors_per_sequence"].sum())
        run_n += B
        if seen >= next_eval or seen >= sequences:
            next_eval += eval_every
            ev = evaluate(params, config, held_out)
            record = {"sequences": seen, "seconds": seconds, "train_bits_per_sequence": run_bits / run_n,
                      "train_bit_errors_per_sequence": run_errors / run_n,
                      "bits_per_sequence": ev["bits_per_sequence"],
                      "bit_errors_per_sequence": ev["bit_errors_per_sequence"],
                      "sequences_per_second": seen / max(seconds, 1e-9),
                      **({"max_len": config.max_len, "max_repeats": top} if repeats else {"max_len": top})}
            run_bits = run_errors = 0.0
            run_n = 0
            history.append(record)
            if best is None or (ev["bit_errors_per_sequence"], ev["bits_per_sequence"]) < \
                    (best["bit_errors_per_sequence"], best["bits_per_sequence"]):
                best, best_params = record, {k: v.copy() for k, v in params.items()}
            elif config.backtrack and top == highest and ev["bits_per_sequence"] > 2 * best["bits_per_sequence"] + 1:
                # a blow-up: back to the best point (not while a curriculum trains on easier sequences than the
                # held-out ones, whose cost then swings without anything having gone wrong)
                params = {k: v.copy() for k, v in best_params.items()}
                opt = make_optimizer(config)
                opt.lr = lr = lr / 2
                record["backtracked_to"] = best["sequences"]
                record["lr"] = lr
            if converged_at is None and ev["bit_errors_per_sequence"] <= target:
                converged_at = {"sequences": seen, "seconds": seconds}
                stopped = stop_when_converged
            if top < highest and record["train_bit_errors_per_sequence"] < 1.0:
                top += 1                                      # curriculum: these are mastered, one step harder
            if state_path is not None:
                save_state(state_path, config, evaluation, params, best_params, opt, train_rng,
                           {"lr": lr, "seen": seen, "seconds": seconds, "next_eval": next_eval, "top": top,
                            "stopped": stopped, "history": history, "converged_at": converged_at,
                            "best": next(i for i, h in enumerate(history) if h is best)})
            if progress is not None:
                progress(record)
    return {"params": params, "config": config, "history": history, "converged_at": converged_at,
            "final": history[-1] if history else None, "best": best, "best_params": best_params}


# The training state, saved after every evaluation so a killed run can go on: the parameters (the last and the best),
# the optimiser's state, the training generator's state, and where training stands, in one .npz with a JSON header.

STATE_VERSION = 1
STATE_FORMAT = "memnet_np ntm training state"


def save_state(path, config: Config, evaluation: dict, params, best_params, opt, rng, progress: dict) -> None:
    header = {"format": STATE_FORMAT, "version": STATE_VERSION, "config": dataclasses.asdict(config),
              "evaluation": evaluation, "rng": rng.bit_generator.state, "progress": progress}
    arrays = {f"param/{k}": v for k, v in params.items()}
    arrays.update({f"best/{k}": v for k, v in best_params.items()})
    arrays.update({f"opt/{k}": np.asarray(v) for k, v in opt.state_dict().items()})
    arrays["header"] = np.array(json.dumps(header))
    T._write_npz_atomically(Path(path), arrays)


def load_state(path, config: Config, evaluation: dict, rng, opt):
    """(params, best_params, progress) from a saved state; the generator and the optimiser are restored in place.
    A state saved with other settings, or a file that is not a state, is refused with train.CheckpointError."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            parts = {part: {k[len(part) + 1:]: z[k] for k in z.files if k.startswith(part + "/")}
                     for part in ("param", "best", "opt")}
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError) as e:
        raise T.CheckpointError(f"{path}: not a readable NTM training state ({type(e).__name__}: {e})") from None
    if header.get("format") != STATE_FORMAT or header.get("version") != STATE_VERSION:
        raise T.CheckpointError(f"{path}: not an NTM training state of version {STATE_VERSION}")
    saved = {**header["config"], **header["evaluation"]}
    now = json.loads(json.dumps({**dataclasses.asdict(config), **evaluation}))
    if saved != now:
        changed = sorted(k for k in now if saved.get(k) != now[k])
        raise T.CheckpointError(f"{path}: saved by a run with other settings ({', '.join(changed)}); resume with "
                                f"the same arguments, or start afresh without --resume")
    rng.bit_generator.state = header["rng"]
    opt.load_state_dict(parts["opt"])
    return parts["param"], parts["best"], header["progress"]


def test_report(params, config: Config, rng: np.random.Generator, sequences: int = 500,
                generalisation_len: int = 40, generalisation_sequences: int = 100) -> dict:
    """Cost and bit errors per sequence on fresh sequences of the training lengths, and on longer ones.

    Copy: `generalisation_len` is the sequence length (all of one length); repeat copy: the length, with the
    training repeats; associative recall: the number of items.
    """
    test_rng, gen_rng = rng.spawn(2)
    out = evaluate(params, config, evaluation_set(config, test_rng, sequences))
    L = generalisation_len
    gen = evaluate(params, config, evaluation_set(config, gen_rng, generalisation_sequences, L, L,
                                                  batch=min(50, generalisation_sequences)))
    out["generalisation"] = dict(gen, length=L)
    return out


# ----------------------------------------------------------------------------------------------------------------
# Speed


def _train_steps_per_second(config: Config, rng: np.random.Generator, batch: int, sequences: int,
                            min_len: Optional[int] = None, max_len: Optional[int] = None) -> float:
    """Training sequences per second: fresh batches, loss and gradients, clipping, an optimiser step."""
    params = init_params(config, rng)
    opt = make_optimizer(config)
    steps = max(1, sequences // batch)
    b = make_batch(task_batch(config, rng, batch, min_len, max_len), config, rng)
    opt.step(params, clip_gradients(loss_and_grads(params, b, config)[1], config))   # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        b = make_batch(task_batch(config, rng, batch, min_len, max_len), config, rng)
        _, grads, _ = loss_and_grads(params, b, config)
        opt.step(params, clip_gradients(grads, config))
    return steps * batch / (time.perf_counter() - t0)


def bench(config: Optional[Config] = None, rng: Optional[np.random.Generator] = None, batches=(1, 16),
          sequences: int = 400, scaling: bool = True, quick: bool = False) -> dict:
    """Training speed on the copy task (float32, one core as the caller sets it): sequences per second at each
    batch size, and, with scaling, how the time per sequence grows with memory size M and sequence length.

    Returns {"sequences_per_second": {B: rate}, "memory_slots": {M: ms per sequence}, "length": {L: ms}}.
    """
    config = Config.for_task("copy", dtype="float32") if config is None else config
    rng = np.random.default_rng(0) if rng is None else rng
    if quick:
        sequences = 32
    out = {"config": dataclasses.asdict(config),
           "sequences_per_second": {int(B): _train_steps_per_second(config, rng, int(B), max(sequences, int(B)))
                                    for B in batches}}
    if scaling:
        n = max(sequences // 4, 16)
        out["memory_slots"] = {M: 1000.0 / _train_steps_per_second(replace(config, memory_slots=M), rng, 16, n)
                               for M in ((32, 128) if quick else (32, 64, 128, 256, 512))}
        out["length"] = {L: 1000.0 / _train_steps_per_second(config, rng, 16, n, L, L)
                         for L in ((5, 10) if quick else (5, 10, 20, 40))}
    return out


def format_bench(r: dict) -> str:
    lines = ["NTM training speed (copy task, float32, sequences per second):"]
    lines += [f"  batch {B:>3}: {v:7.1f} seq/s" for B, v in r["sequences_per_second"].items()]
    if "memory_slots" in r:
        lines.append("  ms per sequence at batch 16, by memory size M (lengths 1-20): " +
                     ", ".join(f"{M}: {v:.2f}" for M, v in r["memory_slots"].items()))
        lines.append("  ms per sequence at batch 16, by sequence length L (M = %d): " % r["config"]["memory_slots"] +
                     ", ".join(f"{L}: {v:.2f}" for L, v in r["length"].items()))
    return "\n".join(lines)


GENERALISATION = {"copy": 40, "repeat-copy": 20, "associative-recall": 12}   # twice the longest training length


def results(out: dict, rng: np.random.Generator, sequences: int = 500, generalisation_len: Optional[int] = None,
            generalisation_sequences: int = 100) -> dict:
    """What a results file holds for a train_task run: the best parameters (by held-out error) scored on fresh
    sequences of the training lengths (`bits_per_sequence`: cross-entropy in bits, the paper's cost;
    `bit_errors_per_sequence`) and on longer ones (`generalisation`), the run's convergence point and curve.
    The parameters themselves are left to the caller's checkpoint."""
    config = out["config"]
    L = GENERALISATION[config.task] if generalisation_len is None else generalisation_len
    params = out["best_params"] if out.get("best_params") is not None else out["params"]
    report = test_report(params, config, rng, sequences, L, generalisation_sequences)
    final = out["final"] or {}
    return {"model": "ntm", "task": config.task, "config": dataclasses.asdict(config),
            "bits_per_sequence": report["bits_per_sequence"],
            "bit_errors_per_sequence": report["bit_errors_per_sequence"], "test_sequences": report["sequences"],
            "generalisation": report["generalisation"], "converged_at": out["converged_at"],
            "selected_at": (out["best"] or {}).get("sequences"), "sequences": final.get("sequences", 0),
            "seconds": final.get("seconds", 0.0), "history": out["history"]}


# ----------------------------------------------------------------------------------------------------------------
# The command line's hooks: `python -m memnet_np train ntm --task copy`, `bench ntm`


CLI_SETTINGS = ()   # the bAbI models' options (--epochs, --l2, --data, ...) that `train ntm` takes: none (it makes
#   its own sequences)
OWN_CLI_OPTIONS = ("sequences", "batch")   # the options of `train` that only the NTM reads


def train_command(args) -> int:
    """`train ntm --task TASK [--sequences N] [--batch B] [--seed S] [--out DIR] [--resume]`: train with the task's
    tuned settings (Config.tuned) for its budget (TASK_SEQUENCES) unless --sequences is given, print progress at every held-out evaluation, write results.json and checkpoint.npz, print a summary.
    The training state is saved in DIR/state.npz at every evaluation; --resume continues a killed run from it."""
    import json
    import os
    from memnet_np import train as T
    from memnet_np.experiments import UserError
    if args.task not in TASKS:
        raise UserError(f"--task must be one of {', '.join(TASKS)} for ntm, got {args.task!r}")
    sequences = TASK_SEQUENCES[args.task] if args.sequences is None else args.sequences
    if sequences < 1 or (args.batch is not None and args.batch < 1):
        raise UserError("--sequences and --batch must be at least 1")
    overrides = {} if args.batch is None else {"batch_size": args.batch}
    config = Config.tuned(args.task, **overrides)
    out_dir = args.out or os.path.join("runs", f"ntm-{args.task}")
    print(f"training ntm on {args.task}: {sequences} sequences in batches of {config.batch_size}, seed {args.seed}; "
          f"results go to {out_dir}", flush=True)

    def show(r):
        if not args.quiet:
            eta = r["seconds"] / r["sequences"] * max(sequences - r["sequences"], 0)
            print(f"  {r['sequences']:6d}/{sequences} sequences  train {r['train_bits_per_sequence']:7.2f} bits  "
                  f"held-out {r['bits_per_sequence']:7.2f} bits, {r['bit_errors_per_sequence']:6.2f} bit errors  "
                  f"{r['sequences_per_second']:6.1f} seq/s  {r['seconds']:6.1f}s  ETA {eta:5.0f}s"
                  + (f"  (a blow-up: back to the parameters of {r['backtracked_to']}, lr {r['lr']:g})"
                     if "backtracked_to" in r else ""), flush=True)
    state = os.path.join(out_dir, "state.npz")              # written at every evaluation; --resume goes on from it
    if getattr(args, "resume", False):
        print(f"resuming from state.npz in {out_dir}" if os.path.isfile(state) else
              f"nothing to resume in {out_dir}: starting afresh", flush=True)
    rng = np.random.default_rng(args.seed)
    out = train_task(args.task, config=config, rng=rng, sequences=sequences, progress=show, state_path=state,
                     resume=getattr(args, "resume", False))
    res = results(out, rng)
    params = out["best_params"] if out.get("best_params") is not None else out["params"]
    ckpt = T.save_checkpoint(os.path.join(out_dir, "checkpoint.npz"), "ntm", params, config, [],
                             meta={"task": args.task, "seed": args.seed})
    res["checkpoint"] = str(ckpt)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(res, f, indent=2, default=float)
    g = res["generalisation"]
    print(f"\nntm on {args.task}: {res['bits_per_sequence']:.3f} bits and {res['bit_errors_per_sequence']:.3f} bit "
          f"errors per sequence on {res['test_sequences']} fresh sequences; converged at {res['converged_at']} "
          f"sequences; longer sequences: {g}")
    print(f"wrote {os.path.join(out_dir, 'results.json')} and {ckpt}")
    return 0


# ----------------------------------------------------------------------------------------------------------------
# `python -m memnet_np figures --model ntm`: the copy task's pictures (memnet_np.figures finds this hook)

FIGURE_SEQUENCES = 20_000   # seed 0 with the tuned settings converges at about 14k sequences


def figures(out, data_dir=None, quick: bool = False) -> tuple[list, dict]:
    """Train on the copy task (tuned settings, seed 0), then draw a length-20 sequence: inputs, targets and
    outputs over time, the read and write weightings over time (the paper's Fig. 6), the memory after it, and the
    learning curve. Returns the paths written and the numbers behind them. data_dir is unused (no data files)."""
    from pathlib import Path
    from memnet_np import plots
    from memnet_np.ntm.model import predict
    out = Path(out)
    config = Config.tuned("copy")
    sequences = 800 if quick else FIGURE_SEQUENCES
    print(f"NTM figures: copy task, {sequences} training sequences, seed 0", flush=True)
    run = train_task(config=config, rng=np.random.default_rng(0), sequences=sequences, eval_every=500)
    params = run["best_params"]
    report = test_report(params, config, np.random.default_rng(1))
    print(f"NTM copy: converged at {run['converged_at']}; {report['bit_errors_per_sequence']:.3f} bit errors per "
          f"sequence on lengths 1-20, {report['generalisation']['bit_errors_per_sequence']:.3f} on length 40")

    L = 20
    b = make_batch(task_batch(config, np.random.default_rng(2), 1, L, L), config)
    bits, info = predict(params, b, config)
    T = 2 * L + 1
    probs = info["probs"][0, :T] * b.target_mask[0, :T, None]                # (T, Y) only the scored steps
    read_w, write_w = info["read_weightings"][0, :T, 0], info["write_weightings"][0, :T, 0]   # (T, M) each
    written = write_w[:L + 1].argmax(1)                                      # (L + 1,) where each input went
    lo, hi = int(written.min()), int(written.max()) + 1
    if hi - lo > 40:                                                         # focus wrapped around: show it all
        lo, hi = 0, config.memory_slots
    paths = [
        plots.ntm_sequence(b.inputs[0, :T], b.targets[0, :T], probs, out / "ntm_copy_sequence.png",
                           title=f"NTM copy, a length-{L} sequence: inputs, targets, outputs "
                                 f"({int(info['bit_errors_per_sequence'][0])} bit errors)"),
        plots.ntm_weightings(read_w, write_w, out / "ntm_copy_weightings.png",
                             title=f"NTM copy, a length-{L} sequence: write then read, location × time"),
        plots.ntm_memory(info["memory"][0], out / "ntm_copy_memory.png", rows=(lo, hi),
                         title=f"NTM copy: memory locations {lo}-{hi - 1} after the sequence"),
        plots.ntm_learning_curve(run["history"], out / "ntm_copy_learning_curve.png",
                                 title="NTM copy task (tuned settings, seed 0): learning curve"),
    ]
    r6 = lambda a: np.round(np.asarray(a, dtype=float), 6).tolist()
    numbers = {
        "task": "copy", "seed": 0, "training_sequences": sequences,
        "converged_at": (run["converged_at"] or {}).get("sequences"), "selected_at": run["best"]["sequences"],
        "bit_errors_per_sequence": round(report["bit_errors_per_sequence"], 6),
        "bits_per_sequence": round(report["bits_per_sequence"], 6),
        "generalisation_length": report["generalisation"]["length"],
        "generalisation_bit_errors_per_sequence": round(report["generalisation"]["bit_errors_per_sequence"], 6),
        "curve_sequences": [r["sequences"] for r in run["history"]],
        "curve_bits_per_sequence": r6([r["bits_per_sequence"] for r in run["history"]]),
        "curve_bit_errors_per_sequence": r6([r["bit_errors_per_sequence"] for r in run["history"]]),
        "example_bit_errors": int(info["bit_errors_per_sequence"][0]),
        "example_write_focus": write_w.argmax(1).tolist(), "example_read_focus": read_w.argmax(1).tolist(),
        "example_write_peak": r6(write_w.max(1)), "example_read_peak": r6(read_w.max(1)),
        "memory_rows_shown": [lo, hi],
    }
    return paths, numbers
