"""`python -m memnet_np bench memn2n [--task N]`: how fast MemN2N trains and answers, where a step's time goes,
and how that scales.

Measures, on one core: seconds per training epoch on a bAbI task (1k, batch 32, d = 20, K = 3, PE + TE, the
paper's setting; the memory has min(50, longest training story) slots, as the official code sizes it), the same
per training question, training and inference examples per second, and time per training batch as memory size,
hops and batch size grow. Each number is the median of several repeats.

Where a step's time goes. One training step (batch, forward, backward, clipping, update) costs about
a + b·N for a batch of N questions: a is the fixed cost of the step's array operations (each numpy call costs
microseconds however small its arrays), b the work per question. Both are fitted from steps at N = 16, 32 and 64
on the task's real stories (larger batches leave the caches and cost more per question), and reported with the
step's number of calls. b·32 is the floor for a batch of 32: what a step would cost if the operations themselves
were free.

For a side-by-side speed ratio, time a peer doing the same work (same memory size, batch, questions) in the
same sitting on the same machine, and divide per training question.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np


def median_seconds(fn, repeats: int) -> float:
    """The median of `repeats` timings of fn(), after one untimed warm-up call (every bench times this way)."""
    fn()                                                      # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def _synthetic_batch(memn2n, config, rng, N, M, L=7):
    stories = rng.integers(1, config.vocab_size, size=(N, M, L))
    mask = np.ones((N, M), bool)
    queries = rng.integers(1, config.vocab_size, size=(N, L))
    answers = rng.integers(1, config.vocab_size, size=N)
    return memn2n.Batch(stories, queries, answers, mask, memn2n.story_ages(mask, config.memory_size))


def count_calls(fn) -> tuple[int, int]:
    """(C-level calls, Python-level calls) made while fn() runs: numpy operations are the C-level ones."""
    counts = {"c_call": 0, "call": 0}

    def hook(frame, event, arg):
        if event in counts:
            counts[event] += 1
    sys.setprofile(hook)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return counts["c_call"], counts["call"]


def step_profile(model, params, arrays, config, rng, opt, repeats: int) -> dict:
    """Time per training step for N = 16, 32, 64 on real data, the fit a + b·N, and the calls of a 32-step."""
    from memnet_np import train as T
    null_rows = model.embedding_names(config)

    def step(idx):
        batch = model.make_batch(arrays, idx, config, rng, train=True)
        _, grads, _ = model.loss_and_grads(params, batch, config)
        T.clip_and_step(model, params, grads, config, opt)
        for name in null_rows:
            params[name][0] = 0.0
    sizes = [n for n in (16, 32, 64) if n <= len(arrays.answers)]
    times = {}
    for n in sizes:
        batches = [rng.permutation(len(arrays.answers))[:n] for _ in range(8)]
        times[n] = median_seconds(lambda: [step(b) for b in batches], repeats) / len(batches)
    b, a = np.polyfit(sizes, [times[n] for n in sizes], 1) if len(sizes) > 1 else (0.0, times[sizes[0]])
    c_calls, py_calls = count_calls(lambda: step(rng.permutation(len(arrays.answers))[:32]))
    one = np.ones(3)
    trivial = median_seconds(lambda: [np.add(one, one) for _ in range(1000)], repeats) / 1000
    return {"seconds_by_batch_size": {str(n): t for n, t in times.items()},
            "fixed_seconds": float(a), "seconds_per_question": float(b), "floor_seconds_batch_32": float(32 * b),
            "c_calls": c_calls, "python_calls": py_calls, "trivial_numpy_call_seconds": trivial}


def measure(data_dir=None, quick: bool = False, task: int = 1) -> dict:
    from memnet_np import data, memn2n, optim
    from memnet_np import train as T
    rng = np.random.default_rng(0)
    repeats = 3 if quick else 10
    try:
        ds = data.load_babi(task, data_dir=data_dir)
        source = ds.name
    except data.DataNotFoundError:
        from memnet_np.data import GENERATED_TASKS
        gen = task if task in GENERATED_TASKS else 1
        ds = data.load_generated(gen)
        source = ds.name + f" (no bAbI data found: set --data or MEMNET_DATA for the real task {task})"
    config = memn2n.Config.for_data(ds)
    params = memn2n.init_params(config, rng)
    opt = optim.SGD(config.lr)
    n_train = len(ds.train.answers)
    epoch = median_seconds(lambda: T.run_epoch(memn2n, params, ds.train, config, rng, config.lr, opt), repeats)
    infer = median_seconds(lambda: T.evaluate(memn2n, params, ds.test, config), repeats)
    out = {"data": source, "task": task,
           "config": {"d": config.d, "hops": config.hops, "batch_size": config.batch_size, "memory_size":
                      config.memory_size, "encoding": config.encoding, "temporal": config.temporal},
           "seconds_per_epoch": epoch, "training_questions": n_train, "seconds_per_question": epoch / n_train,
           "train_examples_per_second": n_train / epoch,
           "inference_examples_per_second": len(ds.test.answers) / infer,
           "epoch_float32": None, "step": None, "scaling": {}}
    cfg32 = memn2n.replace(config, dtype="float32")
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    out["epoch_float32"] = median_seconds(lambda: T.run_epoch(memn2n, p32, ds.train, cfg32, rng, config.lr, opt),
                                        repeats)
    out["step"] = step_profile(memn2n, params, ds.train, config, rng, opt, max(2, repeats // 2))

    def batch_time(cfg, N, M):
        p = memn2n.init_params(cfg, rng)
        b = _synthetic_batch(memn2n, cfg, rng, N, M)
        return median_seconds(lambda: memn2n.loss_and_grads(p, b, cfg), repeats * 3)
    big = memn2n.replace(config, memory_size=200)
    out["scaling"]["memory_size"] = {M: batch_time(big, 32, M) for M in (10, 50, 100, 200)}
    out["scaling"]["hops"] = {K: batch_time(memn2n.replace(config, hops=K), 32, 10) for K in (1, 2, 3, 4, 5)}
    out["scaling"]["batch_size"] = {N: batch_time(config, N, 10) for N in (8, 32, 128, 512)}
    return out


def format_report(r: dict) -> str:
    s = r["step"]
    lines = [f"MemN2N speed on {r['data']} ({r['config']['memory_size']} memory slots)",
             f"  one training epoch:      {r['seconds_per_epoch'] * 1e3:8.1f} ms  (float32: "
             f"{r['epoch_float32'] * 1e3:.1f} ms) for {r['training_questions']} questions",
             f"  per training question:   {r['seconds_per_question'] * 1e6:8.1f} µs",
             f"  training:                {r['train_examples_per_second']:8.0f} examples/s",
             f"  inference:               {r['inference_examples_per_second']:8.0f} examples/s",
             "  one training step (batch, forward, backward, clipping, update) ≈ a + b·N:",
             "    " + "  ".join(f"N = {n}: {t * 1e3:.2f} ms" for n, t in s["seconds_by_batch_size"].items()),
             f"    a = {s['fixed_seconds'] * 1e6:.0f} µs fixed per step ({s['c_calls']} numpy-level calls, "
             f"{s['python_calls']} Python calls; a trivial numpy call takes {s['trivial_numpy_call_seconds'] * 1e6:.2f} µs)",
             f"    b = {s['seconds_per_question'] * 1e6:.1f} µs per question: the floor for a batch of 32 is "
             f"{s['floor_seconds_batch_32'] * 1e6:.0f} µs",
             "  one training batch (forward + backward), by memory size M (N = 32, K = 3):"]
    lines += [f"    M = {m:4d}: {t * 1e3:7.2f} ms" for m, t in r["scaling"]["memory_size"].items()]
    lines.append("  by hops K (N = 32, M = 10):")
    lines += [f"    K = {k:4d}: {t * 1e3:7.2f} ms" for k, t in r["scaling"]["hops"].items()]
    lines.append("  by batch size N (M = 10, K = 3):")
    lines += [f"    N = {n:4d}: {t * 1e3:7.2f} ms  ({n / t:8.0f} examples/s)" for n, t in r["scaling"]["batch_size"].items()]
    return "\n".join(lines)


def main(args) -> int:
    from memnet_np.experiments import UserError
    if not 1 <= args.task <= 20:
        raise UserError(f"--task must be 1..20, got {args.task}")
    r = measure(args.data, quick=args.quick, task=args.task)
    if args.json:
        print(json.dumps(r))
    else:
        print(format_report(r))
    return 0
