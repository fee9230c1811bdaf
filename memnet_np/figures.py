"""`python -m memnet_np figures [--model NAME]`: regenerate the README's pictures from fixed seeds.

Each model draws its own pictures: a function here (`BUILDERS`) or a `figures(out_dir, data_dir, quick)` hook in
the model's module, returning the paths it wrote and the numbers behind them. Every number behind a picture comes
from seed 0 and is written to `figures/<model>.json` beside the pictures, so a test can check that the committed
pictures are what this draws today (by their numbers, not their pixels).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import numpy as np


def numbers_file(model: str) -> str:
    return f"{model}.json"


def memn2n_figures(out: Path, data_dir=None, quick: bool = False) -> tuple[list, dict]:
    """MemN2N on bAbI task 2 (two supporting facts: the hops have to look at two different sentences) — from the
    real data when --data/MEMNET_DATA points at it, from the built-in generator otherwise — plus the
    position-encoding weights of the default model."""
    from memnet_np import data, memn2n, ops, plots
    from memnet_np import train as T
    written = []
    try:
        ds = data.load_babi(2, data_dir=data_dir)
    except data.DataNotFoundError:
        ds = data.load_generated(2)
    print(f"MemN2N figures from {ds.name} (seed 0)", flush=True)
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
    numbers = {"data": ds.name, "test_error": result.test_error,
               "attention_question": Path(q.source).name, "attention": np.round(info["attention"][i], 6).tolist(),
               "train_error": [round(h.train_error, 6) for h in result.history],
               "val_error": [round(h.val_error, 6) for h in result.history],
               "position_encoding": np.round(l, 6).tolist()}
    return written, numbers


def dmn_figures(out: Path, data_dir=None, quick: bool = False) -> tuple[list, dict]:
    """The DMN on bAbI task 1 with its gates supervised by the supporting facts: every pass's gates over a test
    story in which the person asked about moved more than once (answered right), and the learning curves. (Task 1,
    not task 2 like the other models' pictures: our DMN answers only ~80% of task 2; see the README.)"""
    from memnet_np import data, dmn, plots
    from memnet_np import train as T
    try:
        ds = data.load_babi(1, data_dir=data_dir, memory_size=dmn.data_memory_size(1))
    except data.DataNotFoundError:
        ds = data.load_generated(1)
    print(f"DMN figures from {ds.name} (seed 0)", flush=True)
    config = dmn.Config.for_data(ds, **({"epochs": 3, "d": 16, "hidden": 16, "gate_hidden": 16} if quick else {}))
    result = T.train(dmn, ds, config, np.random.default_rng(0))
    print(f"DMN test error {result.test_error:.1f}% after {result.epochs} epochs ({result.seconds:.0f}s)")

    _, _, preds = T.evaluate(dmn, result.params, ds.test, config)
    qs = ds.test.questions
    ok = [i for i, q in enumerate(qs) if preds[i] == ds.test.answers[i] and 6 <= len(q.story) <= 10
          and sum(q.question[-1] in s for s in q.story) >= 2]
    i = ok[0] if ok else 0
    batch = dmn.make_batch(ds.test, np.array([i]), config)
    pred, info = dmn.predict(result.params, batch, config)
    gates = info["gates"][0]                                  # (K, F)
    written = [plots.gate_heatmap(qs[i], gates, batch.mask[0], ds.vocab.words[int(pred[0])],
                                  out / "dmn_gates.png"),
               plots.learning_curves(result.history, out / "dmn_learning_curves.png", title=f"DMN on {ds.name}")]
    numbers = {"data": ds.name, "test_error": result.test_error, "gates_question": Path(qs[i].source).name,
               "gates": np.round(gates, 6).tolist(),
               "train_error": [round(h.train_error, 6) for h in result.history],
               "val_error": [round(h.val_error, 6) for h in result.history]}
    return written, numbers


def _ptb_folder(data_dir=None) -> Optional[str]:
    """Penn Treebank for the language model's pictures: $MEMNET_PTB, else a `ptb` folder beside (or inside) the bAbI
    folder given, else shared/data/ptb next to this checkout; None: the generated text."""
    candidates = [Path(os.environ["MEMNET_PTB"])] if os.environ.get("MEMNET_PTB") else []
    for base in ([Path(data_dir)] if data_dir else []) + ([Path(os.environ["MEMNET_DATA"])]
                                                          if os.environ.get("MEMNET_DATA") else []):
        candidates += [base / "ptb", base.parent / "ptb", base.parent.parent / "ptb"]
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data" / "ptb")
    return next((str(c) for c in candidates if (c / "ptb.train.txt").is_file()), None)


def memn2n_lm_figures(out: Path, data_dir=None, quick: bool = False) -> tuple[list, dict]:
    """MemN2N as a language model (2 hops, memory 50, d 100, 3 epochs on Penn Treebank; the generated text without
    it, or with --quick): where each hop looks among the previous words of a test sentence, and perplexity per
    epoch."""
    from memnet_np import memn2n_lm
    ptb = None if quick else _ptb_folder(data_dir)           # quick (for tests): the generated text, in seconds
    print(f"MemN2N-LM figures from {ptb or 'the generated text'} (seed 0)", flush=True)
    return memn2n_lm.figures(out, ptb, quick)


BUILDERS = {"memn2n": memn2n_figures, "dmn": dmn_figures, "memn2n-lm": memn2n_lm_figures}       # models whose pictures are drawn here rather than by a module hook


def builders() -> dict:
    """model name -> function(out, data_dir, quick) -> (paths written, numbers), in registry order."""
    from memnet_np import experiments
    found = {}
    for name in experiments.MODELS:
        if name in BUILDERS:
            found[name] = BUILDERS[name]
        else:
            hook = getattr(experiments.get_model(name), "figures", None)
            if hook is not None:
                found[name] = hook
    return found


def main(out_dir="figures", data_dir=None, quick: bool = False, models: Optional[list] = None) -> int:
    from memnet_np.experiments import UserError
    out = Path(out_dir)
    available = builders()
    chosen = list(available) if not models else list(models)
    unknown = [m for m in chosen if m not in available]
    if unknown:
        raise UserError(f"no figures for {', '.join(unknown)}; models with figures: {', '.join(available)}")
    out.mkdir(parents=True, exist_ok=True)
    for name in chosen:
        written, numbers = available[name](out, data_dir, quick)
        numbers = {"model": name, "quick": quick, **numbers}
        path = out / numbers_file(name)
        path.write_text(json.dumps(numbers, indent=1) + "\n")
        for p in [*written, path]:
            print(f"wrote {p}")
    return 0
