"""Pictures: attention heatmaps, learning curves, the position-encoding matrix.

matplotlib is an optional extra (`pip install memnet_np[plot]`): it is imported inside each function, with the
Agg backend when no display is set, so the library imports without it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np


def _plt():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'memnet_np[plot]'") from None
    if not os.environ.get("DISPLAY") and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path):
    if path is None:
        return fig
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    _plt().close(fig)
    return path


def attention_heatmap(sentences: Sequence[str], attention: np.ndarray, question: str, predicted: str, answer: str,
                      supporting: Sequence[int] = (), path=None, title: Optional[str] = None,
                      column_label: str = "hop"):
    """Story sentences as rows (reading order), hops as columns, one cell per attention weight.

    attention (K, n) for the n sentences; supporting: row indices of the supporting facts (marked with ★).
    """
    plt = _plt()
    att = np.asarray(attention, dtype=float).T                 # (n, K)
    n, K = att.shape
    if n != len(sentences):
        raise ValueError(f"{len(sentences)} sentences but attention over {n} slots")
    fig, ax = plt.subplots(figsize=(2.2 + 1.0 * K + 0.06 * max(map(len, sentences), default=10),
                                    1.4 + 0.32 * n))
    ax.imshow(att, cmap="Blues", vmin=0, vmax=max(1e-9, float(att.max())), aspect="auto")
    for i in range(n):
        for k in range(K):
            ax.text(k, i, f"{att[i, k]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if att[i, k] > 0.6 * att.max() else "black")
    labels = [("★ " if i in set(supporting) else "") + s for i, s in enumerate(sentences)]
    ax.set_yticks(range(n), labels, fontsize=9)
    ax.set_xticks(range(K), [f"{column_label} {k + 1}" for k in range(K)])
    ax.xaxis.tick_top()
    ok = "✓" if predicted == answer else "✗"
    ax.set_title(title or f"{question}?\npredicted: {predicted} {ok}   true: {answer}   (★ supporting fact)",
                 fontsize=10, pad=24)
    return _save(fig, path)


def heatmap_for_example(question, attention_row, mask_row, predicted: str, path=None, title=None):
    """Heatmap for one vectorised example: `question` is a memnet_np.data.Question, attention_row (K, M)."""
    n = int(np.sum(mask_row))
    kept = question.story[len(question.story) - n:] if n else ()
    offset = len(question.story) - n                          # statements cut off by the memory limit
    sentences = [" ".join(s) for s in kept]
    supporting = [s - offset for s in question.supporting if s >= offset]
    return attention_heatmap(sentences, np.asarray(attention_row)[:, :n], " ".join(question.question), predicted,
                             question.answer_token, supporting, path, title)


def gate_heatmap(question, gates, mask_row, predicted: str, path=None, title=None):
    """The DMN's gates for one vectorised example: facts as rows, passes as columns, supporting facts marked with ★,
    question, prediction and answer in the title. `question` is a memnet_np.data.Question; gates (K, F) from
    info["gates"][n] of dmn.predict (the story's last F sentences, oldest first); mask_row (F,) its real facts."""
    gates = np.asarray(gates)
    if gates.ndim != 2:
        raise ValueError(f"gates must be (passes, facts) for one example, got shape {gates.shape}")
    n = int(np.sum(np.asarray(mask_row)[:gates.shape[1]]))
    offset = len(question.story) - n                          # statements cut off by the fact window
    sentences = [" ".join(s) for s in question.story[offset:]]
    supporting = [s - offset for s in question.supporting if s >= offset]
    return attention_heatmap(sentences, gates[:, :n], " ".join(question.question), predicted, question.answer_token,
                             supporting, path, title, column_label="pass")


def learning_curves(history, path=None, title: str = "learning curves"):
    """Train and validation error (and loss) per epoch; the linear-start phase is shaded."""
    plt = _plt()
    rows = [h if isinstance(h, dict) else h.__dict__ for h in history]
    ep = [r["epoch"] for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    a1.plot(ep, [r["train_error"] for r in rows], label="train")
    a1.plot(ep, [r["val_error"] for r in rows], label="validation")
    a1.set_ylabel("error (%)")
    a2.plot(ep, [r["train_loss"] for r in rows], label="train")
    a2.plot(ep, [r["val_loss"] for r in rows], label="validation")
    a2.set_ylabel("loss per question")
    a2.set_yscale("log")
    ls = [r["epoch"] for r in rows if r["phase"] == "linear start"]
    for a in (a1, a2):
        if ls:
            a.axvspan(min(ls) - 0.5, max(ls) + 0.5, color="0.9", label="linear start")
        a.set_xlabel("epoch")
        a.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def position_encoding_matrix(l: np.ndarray, path=None, title: str = "position encoding l_kj"):
    """The (J, d) weights as a picture: words down, embedding dimensions across."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 1.2 + 0.35 * l.shape[0]))
    im = ax.imshow(l, cmap="RdBu_r", aspect="auto")
    ax.set_xlabel("dimension k")
    ax.set_ylabel("word position j")
    ax.set_yticks(range(l.shape[0]), range(1, l.shape[0] + 1))
    ticks = [k for k in range(l.shape[1]) if k % 4 == 0 or k == l.shape[1] - 1]
    ax.set_xticks(ticks, [k + 1 for k in ticks])
    fig.colorbar(im, ax=ax)
    ax.set_title(title)
    return _save(fig, path)


def per_task_errors(ours: dict, paper: dict, path=None, title: str = "test error per bAbI task"):
    """Bars: our test error per task beside one or more of the paper's columns."""
    plt = _plt()
    tasks = sorted(ours)
    cols = {"memnet_np": [ours[t] for t in tasks]}
    for name, vals in paper.items():
        cols[name] = [vals[t - 1] if vals[t - 1] is not None else np.nan for t in tasks]
    width = 0.8 / len(cols)
    fig, ax = plt.subplots(figsize=(12, 3.6))
    x = np.arange(len(tasks))
    for i, (name, vals) in enumerate(cols.items()):
        ax.bar(x + (i - (len(cols) - 1) / 2) * width, vals, width, label=name)
    ax.axhline(5, color="0.4", lw=0.8, ls="--")
    ax.set_xticks(x, tasks)
    ax.set_xlabel("task")
    ax.set_ylabel("test error (%)")
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)
