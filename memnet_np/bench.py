"""`python -m memnet_np bench memn2n`: how fast MemN2N trains and answers, and how that scales.

Measures, on one core: seconds per training epoch on bAbI task 1 (1k, batch 32, d = 20, K = 3, PE + TE, the
paper's setting), training and inference examples per second, and time per training batch as memory size,
hops and batch size grow. Each number is the median of several repeats.
"""
from __future__ import annotations

import json
import time

import numpy as np


def _median_time(fn, repeats: int) -> float:
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


def measure(data_dir=None, quick: bool = False) -> dict:
    from memnet_np import data, memn2n, optim
    from memnet_np import train as T
    rng = np.random.default_rng(0)
    repeats = 3 if quick else 10
    try:
        ds = data.load_babi(1, data_dir=data_dir)
        source = ds.name
    except data.DataNotFoundError:
        ds = data.load_generated(1)
        source = ds.name + " (no bAbI data found: set --data or MEMNET_DATA for the real task 1)"
    config = memn2n.Config.for_data(ds)
    params = memn2n.init_params(config, rng)
    opt = optim.SGD(config.lr)
    n_train = len(ds.train.answers)
    epoch = _median_time(lambda: T.run_epoch(memn2n, params, ds.train, config, rng, config.lr, opt), repeats)
    infer = _median_time(lambda: T.evaluate(memn2n, params, ds.test, config), repeats)
    out = {"data": source, "config": {"d": config.d, "hops": config.hops, "batch_size": config.batch_size,
                                      "encoding": config.encoding, "temporal": config.temporal},
           "seconds_per_epoch": epoch, "train_examples_per_second": n_train / epoch,
           "inference_examples_per_second": len(ds.test.answers) / infer,
           "epoch_float32": None, "scaling": {}}
    cfg32 = memn2n.replace(config, dtype="float32")
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    out["epoch_float32"] = _median_time(lambda: T.run_epoch(memn2n, p32, ds.train, cfg32, rng, config.lr, opt),
                                        repeats)

    def batch_time(cfg, N, M):
        p = memn2n.init_params(cfg, rng)
        b = _synthetic_batch(memn2n, cfg, rng, N, M)
        return _median_time(lambda: memn2n.loss_and_grads(p, b, cfg), repeats * 3)
    big = memn2n.replace(config, memory_size=200)
    out["scaling"]["memory_size"] = {M: batch_time(big, 32, M) for M in (10, 50, 100, 200)}
    out["scaling"]["hops"] = {K: batch_time(memn2n.replace(config, hops=K), 32, 10) for K in (1, 2, 3, 4, 5)}
    out["scaling"]["batch_size"] = {N: batch_time(config, N, 10) for N in (8, 32, 128, 512)}
    return out


def format_report(r: dict) -> str:
    lines = [f"MemN2N speed on {r['data']}",
             f"  one training epoch:      {r['seconds_per_epoch'] * 1e3:8.1f} ms  (float32: "
             f"{r['epoch_float32'] * 1e3:.1f} ms)",
             f"  training:                {r['train_examples_per_second']:8.0f} examples/s",
             f"  inference:               {r['inference_examples_per_second']:8.0f} examples/s",
             "  one training batch (forward + backward), by memory size M (N = 32, K = 3):"]
    lines += [f"    M = {m:4d}: {t * 1e3:7.2f} ms" for m, t in r["scaling"]["memory_size"].items()]
    lines.append("  by hops K (N = 32, M = 10):")
    lines += [f"    K = {k:4d}: {t * 1e3:7.2f} ms" for k, t in r["scaling"]["hops"].items()]
    lines.append("  by batch size N (M = 10, K = 3):")
    lines += [f"    N = {n:4d}: {t * 1e3:7.2f} ms  ({n / t:8.0f} examples/s)" for n, t in r["scaling"]["batch_size"].items()]
    return "\n".join(lines)


def main(args) -> int:
    r = measure(args.data, quick=args.quick)
    if args.json:
        print(json.dumps(r))
    else:
        print(format_report(r))
    return 0
