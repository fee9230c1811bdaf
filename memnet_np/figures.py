"""`python -m memnet_np figures`: regenerate the README's pictures from fixed seeds.

MemN2N on bAbI task 2 (two supporting facts: the hops have to look at two different sentences) — from the real
data when --data/MEMNET_DATA points at it, from the built-in generator otherwise — plus the position-encoding
weights of the default model. Every number behind a picture comes from seed 0 and is also written to
`figures.json` beside the pictures, so a test can check that the committed pictures are what this draws today
(by their numbers, not their pixels).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

NUMBERS = "figures.json"


def main(out_dir="figures", data_dir=None, quick: bool = False) -> int:
    from memnet_np import data, memn2n, ops, plots
    from memnet_np import train as T
    out = Path(out_dir)
    written = []
    try:
        ds = data.load_babi(2, data_dir=data_dir)
    except data.DataNotFoundError:
        ds = data.load_generated(2)
    print(f"figures from {ds.name} (seed 0)", flush=True)
    config = memn2n.Config.for_data(ds, **({"epochs": 5, "ls_epochs": 2} if quick else {}))
    result = T.train(memn2n, ds, config, np.random.default_rng(0))
    print(f"MemN2N test error {result.test_error:.1f}% after {result.epochs} epochs ({result.seconds:.0f}s)")

    # a test story with both supporting facts in memory, answered correctly if any is
    batch = memn2n.make_batch(ds.test, np.arange(len(ds.test.answers)), config)
    pred, info = memn2n.predict(result.params, batch, config)
    n = ds.test.mask.sum(1)
    ok = (pred == ds.test.answers) & (n >= 5) & (n <= 12)
    i = int(np.argmax(ok)) if ok.any() else 0
    q = ds.test.questions[i]
    written.append(plots.heatmap_for_example(q, info["attention"][i], ds.test.mask[i],
                                             ds.vocab.words[int(pred[i])], out / "memn2n_attention.png"))
    written.append(plots.learning_curves(result.history, out / "memn2n_learning_curves.png",
                                         title=f"MemN2N on {ds.name}"))
    words, L = 7, 7                                          # a 7-word sentence padded to 7, the official time word
    J = memn2n.time_word_J(config, L)
    l = ops.position_encoding(np.ones((1, L), int), config.d, config.encoding, J)[0]
    written.append(plots.position_encoding_matrix(l, out / "position_encoding.png",
                                                  title=f"position encoding l_kj ({config.encoding} formula), "
                                                        f"a {words}-word sentence, J = {J}, d = {config.d}"))
    numbers = {"data": ds.name, "quick": quick, "test_error": result.test_error,
               "attention_question": Path(q.source).name, "attention": np.round(info["attention"][i], 6).tolist(),
               "train_error": [round(h.train_error, 6) for h in result.history],
               "val_error": [round(h.val_error, 6) for h in result.history],
               "position_encoding": np.round(l, 6).tolist()}
    out.mkdir(parents=True, exist_ok=True)
    (out / NUMBERS).write_text(json.dumps(numbers, indent=1) + "\n")
    written.append(out / NUMBERS)
    for p in written:
        print(f"wrote {p}")
    return 0
