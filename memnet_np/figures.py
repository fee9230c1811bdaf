"""`python -m memnet_np figures`: regenerate the README's pictures from fixed seeds.

MemN2N on bAbI task 2 (two supporting facts: the hops have to look at two different sentences) — from the real
data when --data/MEMNET_DATA points at it, from the built-in generator otherwise — plus the position-encoding
weights. Every number behind a picture comes from seed 0.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


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
    x = np.array([[1] * 7])
    written.append(plots.position_encoding_matrix(ops.position_encoding(x, 20, "paper")[0],
                                                  out / "position_encoding.png",
                                                  title="position encoding l_kj, a 7-word sentence, d = 20"))
    for p in written:
        print(f"wrote {p}")
    return 0
