"""MemNN's hooks for the command line: `python -m memnet_np figures --model memnn` and `bench memnn`.

memnet_np/memnn.py offers them (the registry finds `figures`, `bench` and `format_bench` there); they live here so
that the model file reads as the model.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import numpy as np

from memnet_np.bench import median_seconds

FIGURE_TASK = 2          # two supporting facts: hop 1 must find where the object went, hop 2 where its holder is


def figures(out: Path, data_dir=None, quick: bool = False) -> tuple[list, dict]:
    """The basic MemNN (k = 2, write-time features) trained on bAbI 1k task 2 with seed 0 (from the real data when
    --data/MEMNET_DATA points at it, the built-in generator otherwise): every hop's scores over one test story,
    the memory each hop chose and the true supporting facts."""
    from memnet_np import data, memnn, plots
    from memnet_np import train as T
    try:
        ds = data.load_babi(FIGURE_TASK, data_dir=data_dir)
    except data.DataNotFoundError:
        ds = data.load_generated(FIGURE_TASK)
    print(f"MemNN figures from {ds.name} (seed 0)", flush=True)
    config = memnn.Config.for_data(ds, **memnn.PRESETS["basic"], **({"epochs": 5} if quick else {}))
    result = T.train(memnn, ds, config, np.random.default_rng(0))
    print(f"MemNN test error {result.test_error:.1f}% after {result.epochs} epochs ({result.seconds:.0f}s)")

    test = ds.test
    batch = memnn.make_batch(test, np.arange(len(test.answers)), config)
    pred, info = memnn.predict(result.params, batch, config)
    n = test.mask.sum(1)                                      # (N,) sentences in memory
    two = (batch.targets[:, 0] != batch.targets[:, 1])        # (N,) two different supporting facts
    hit = info["supporting_hit"].all(1) & (pred == test.answers) & two & (n >= 6) & (n <= 12)
    i = int(np.argmax(hit)) if hit.any() else 0
    q, k = test.questions[i], int(n[i])
    offset = len(q.story) - k                                 # statements the memory forgot
    sentences = [" ".join(s) for s in q.story[offset:]]
    supporting = [int(t) for t in batch.targets[i]]
    scores = info["hop_scores"][i][:, :k]                     # (K, n)
    path = plots.hop_scores_heatmap(sentences, scores, info["chosen"][i], supporting, " ".join(q.question),
                                    ds.vocab.words[int(pred[i])], q.answer_token, out / "memnn_hop_scores.png",
                                    note="\nscores s_O(x_k, m_i); the write-time winner loop picks the box")
    numbers = {"data": ds.name, "test_error": result.test_error, "question": Path(q.source).name,
               "hop_scores": np.round(scores, 6).tolist(), "chosen": [int(c) for c in info["chosen"][i]],
               "supporting": supporting, "predicted": ds.vocab.words[int(pred[i])], "answer": q.answer_token,
               "train_error": [round(h.train_error, 6) for h in result.history],
               "val_error": [round(h.val_error, 6) for h in result.history]}
    return [path], numbers


def _step_seconds(config, rng, N: int, M: int, repeats: int) -> float:
    """Seconds of one training step (the median of `repeats` timings of 10) (make_batch's negatives excluded: loss, gradients, update) on a random
    batch of N stories of M sentences, every question with supporting facts for all its hops."""
    from memnet_np import memnn, optim
    params = memnn.init_params(config, rng)
    batch = memnn.example_batch(config, rng, N=N, M=M, L=7)
    opt = optim.SGD(lr=config.lr)

    def steps():
        for _ in range(10):
            _, grads, _ = memnn.loss_and_grads(params, batch, config)
            opt.step(params, grads)
    return median_seconds(steps, repeats) / 10


def bench(task: int = 1, data=None, quick: bool = False, rng: Optional[np.random.Generator] = None) -> dict:
    """How fast the basic MemNN (k = 2, write-time features, d = 50, 10 negatives, batch 32) trains and answers, on
    one core as the caller sets it: seconds per training epoch on bAbI 1k task `task` from `data` (a folder, or
    MEMNET_DATA; the built-in generator without either), training and inference examples per second, and the time of a training step of 32
    questions as the memory size M and the hops k grow (random stories, k supporting facts each)."""
    from memnet_np import data as D
    from memnet_np import memnn, optim
    from memnet_np import train as T
    from memnet_np.experiments import UserError
    if not 1 <= task <= 20:
        raise UserError(f"--task must be 1..20, got {task}")
    rng = np.random.default_rng(0) if rng is None else rng
    repeats = 1 if quick else 5
    try:
        ds = D.load_babi(task, data_dir=data)
    except D.DataNotFoundError:
        if task not in D.GENERATED_TASKS:
            raise
        ds = D.load_generated(task, n_train=200 if quick else 1000)
    config = memnn.Config.for_data(ds, **memnn.PRESETS["basic"])
    params = memnn.init_params(config, rng)
    opt = optim.SGD(lr=config.lr)
    n_train = len(ds.train.answers)
    epoch = median_seconds(lambda: T.run_epoch(memnn, params, ds.train, config, rng, config.lr, opt), repeats)
    infer = median_seconds(lambda: T.evaluate(memnn, params, ds.test, config), repeats)
    out = {"model": "memnn", "data": ds.name, "task": task, "config": dataclasses.asdict(config),
           "training_questions": n_train, "seconds_per_epoch": epoch,
           "train_examples_per_second": n_train / epoch,
           "inference_examples_per_second": len(ds.test.answers) / infer}
    base = memnn.Config(vocab_size=40, memory_size=200, **memnn.PRESETS["basic"])
    sizes = (10, 50) if quick else (10, 25, 50, 100, 200)
    hops = (1, 2) if quick else (1, 2, 3, 4)
    out["scaling"] = {
        "batch": 32,
        "memory_size": {M: 1000 * _step_seconds(base, rng, 32, M, repeats) for M in sizes},
        "hops": {K: 1000 * _step_seconds(memnn.replace(base, hops=K), rng, 32, 50, repeats) for K in hops},
    }
    return out


def format_bench(r: dict) -> str:
    s = r["scaling"]
    return "\n".join([
        f"MemNN (basic: k = {r['config']['hops']}, write-time features, d = {r['config']['d']}, "
        f"{r['config']['negatives']} negatives, batch {r['config']['batch_size']}) on {r['data']}, one core:",
        f"  {r['seconds_per_epoch']:.2f} s per training epoch ({r['training_questions']} questions): "
        f"{r['train_examples_per_second']:.0f} training examples/s, "
        f"{r['inference_examples_per_second']:.0f} inference examples/s",
        f"  ms per training step of {s['batch']} questions, by memory size M (k = 2): "
        + ", ".join(f"{M}: {v:.1f}" for M, v in s["memory_size"].items()),
        f"  ms per training step of {s['batch']} questions, by hops k (M = 50): "
        + ", ".join(f"{K}: {v:.1f}" for K, v in s["hops"].items()),
    ])
