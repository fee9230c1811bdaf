"""`python -m memnet_np demo`: MemN2N learns generated single-supporting-fact stories, then shows where it looked.

No download: the stories come from the built-in generator. Paper settings (3 hops, d = 20, PE, TE, RN, linear
start, 100 epochs); it takes a few seconds on a laptop core.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def run(out_dir="memnet_demo", seed: int = 0, epochs=None, quiet: bool = False, task: int = 1) -> int:
    from memnet_np import data, memn2n, plots
    from memnet_np import train as T
    out = Path(out_dir)
    ds = data.load_generated(task, n_train=1000, n_test=1000, seed=seed)
    overrides = {} if epochs is None else {"epochs": epochs}
    config = memn2n.Config.for_data(ds, **overrides)
    print(f"MemN2N demo: {ds.name}, {len(ds.train.answers)} training / {len(ds.val.answers)} validation / "
          f"{len(ds.test.answers)} test questions, vocabulary {len(ds.vocab)}, memory {ds.memory_size} sentences")
    print(f"model: {config.hops} hops, d = {config.d}, position + temporal encoding, random noise, linear start",
          flush=True)
    result = T.train(memn2n, ds, config, np.random.default_rng(seed),
                     progress=T.Progress(config.epochs + config.ls_epochs, quiet=quiet))

    # one test story, drawn: where did each hop look?
    i = int(np.argmax(ds.test.mask.sum(1) >= 4))             # the first test question with at least 4 sentences
    batch = memn2n.make_batch(ds.test, np.array([i]), config)
    pred, info = memn2n.predict(result.params, batch, config)
    q = ds.test.questions[i]
    predicted = memn2n.answer_word(ds.vocab.words, int(pred[0]))
    heatmap = curves = None
    try:
        heatmap = plots.heatmap_for_example(q, info["attention"][0], batch.mask[0], predicted,
                                            out / "attention.png")
        curves = plots.learning_curves(result.history, out / "learning_curves.png", title="MemN2N demo")
    except ImportError as e:
        print(f"(no pictures: {e})")
    summary = {"model": "memn2n", "data": ds.name, **result.summary()}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")

    print("\n" + "=" * 72)
    print(f"test accuracy {100 - result.test_error:.1f}%  (train {100 - result.train_error:.1f}%, "
          f"validation {100 - result.val_error:.1f}%)  in {result.seconds:.1f}s, {result.epochs} epochs")
    print(f"example: {' '.join(q.question)}?  predicted {predicted!r}, true {q.answer_token!r}")
    hop_max = info["attention"][0].argmax(-1)
    n = int(batch.mask[0].sum())
    kept = q.story[len(q.story) - n:]
    for k, j in enumerate(hop_max):
        print(f"  hop {k + 1} looked hardest at: {' '.join(kept[j])}  ({info['attention'][0, k, j]:.2f})")
    if heatmap:
        print(f"attention heatmap: {heatmap}\nlearning curves:   {curves}")
    print(f"results:           {out / 'results.json'}")
    print("=" * 72)
    return 0
