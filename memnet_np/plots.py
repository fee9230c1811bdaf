"""Pictures: attention heatmaps, learning curves, the position-encoding matrix, and the NTM's sequences, weightings,
memory and learning curve.

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


# ----------------------------------------------------------------------------------------------------------------
# The NTM: one sequence over time (Graves et al. 2014, Figs. 4 and 6), its memory, its learning curve


def ntm_sequence(inputs, targets, outputs, path=None, title: str = "NTM: inputs, targets and outputs over time"):
    """Inputs (T, D), targets (T, Y) and outputs (T, Y) (probabilities) of one sequence, channels down, time across.

    Only the steps where targets are scored carry targets and outputs; pass the others as 0."""
    plt = _plt()
    inputs, targets, outputs = (np.asarray(a, dtype=float) for a in (inputs, targets, outputs))
    if not (inputs.ndim == targets.ndim == outputs.ndim == 2) or targets.shape != outputs.shape \
            or inputs.shape[0] != targets.shape[0]:
        raise ValueError(f"inputs (T, D), targets and outputs (T, Y) of the same T, got {inputs.shape}, "
                         f"{targets.shape}, {outputs.shape}")
    T = inputs.shape[0]
    fig, axes = plt.subplots(3, 1, figsize=(2 + 0.16 * T, 1.2 + 0.14 * (inputs.shape[1] + 2 * targets.shape[1])),
                             sharex=True, gridspec_kw={"height_ratios": [inputs.shape[1], targets.shape[1],
                                                                          targets.shape[1]]})
    for ax, a, name in zip(axes, (inputs, targets, outputs), ("inputs", "targets", "outputs")):
        ax.imshow(a.T, cmap="Greys", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        ax.set_ylabel(name, fontsize=9)
        ax.set_yticks([])
    axes[-1].set_xlabel("time step")
    axes[0].set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def ntm_weightings(read_w, write_w, path=None, title: str = "NTM: where the heads read and write over time"):
    """The location × time heatmaps of the paper: read_w and write_w (T, M), one head each, locations down."""
    plt = _plt()
    read_w, write_w = np.asarray(read_w, dtype=float), np.asarray(write_w, dtype=float)
    if read_w.ndim != 2 or read_w.shape != write_w.shape:
        raise ValueError(f"read and write weightings must both be (T, M), got {read_w.shape} and {write_w.shape}")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for ax, w, name in zip(axes, (write_w, read_w), ("write weightings", "read weightings")):
        im = ax.imshow(w.T, cmap="magma", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("time step")
    axes[0].set_ylabel("memory location")
    fig.colorbar(im, ax=axes, fraction=0.03)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def ntm_memory(memory, path=None, title: str = "NTM: memory contents after the sequence", rows=None):
    """The memory (M, d) as a picture, locations down, the d numbers of each across; `rows` picks locations."""
    plt = _plt()
    memory = np.asarray(memory, dtype=float)
    if memory.ndim != 2:
        raise ValueError(f"memory must be (M, d), got shape {memory.shape}")
    lo, hi = (0, memory.shape[0]) if rows is None else rows
    m = memory[lo:hi]
    fig, ax = plt.subplots(figsize=(5, 1.5 + 0.12 * m.shape[0]))
    lim = max(1e-9, float(np.abs(m).max()))
    im = ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest",
                   extent=(-0.5, m.shape[1] - 0.5, hi - 0.5, lo - 0.5))
    ax.set_xlabel("memory width")
    ax.set_ylabel("memory location")
    from matplotlib.ticker import MaxNLocator
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))   # locations are whole numbers
    fig.colorbar(im, ax=ax)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def ntm_learning_curve(history, path=None, title: str = "NTM copy task: learning curve"):
    """Cost in bits per sequence (the paper's measure) and bit errors per sequence against sequences seen:
    the training batches' running mean and the fixed held-out set (history records of ntm.train_task)."""
    plt = _plt()
    seen = [r["sequences"] for r in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    a1.plot(seen, [r["train_bits_per_sequence"] for r in history], label="training batches")
    a1.plot(seen, [r["bits_per_sequence"] for r in history], label="held-out")
    a1.set_ylabel("cost per sequence (bits)")
    a2.plot(seen, [r["train_bit_errors_per_sequence"] for r in history], label="training batches")
    a2.plot(seen, [r["bit_errors_per_sequence"] for r in history], label="held-out")
    a2.axhline(0.1, color="0.4", lw=0.8, ls="--", label="0.1 (converged)")
    a2.set_ylabel("bit errors per sequence")
    a1.set_yscale("log")
    a2.set_yscale("symlog", linthresh=0.1)                    # 0 bit errors is reached: linear below 0.1
    a2.set_ylim(bottom=0)
    for a in (a1, a2):
        a.set_xlabel("training sequences")
        a.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def ntm_addressing_stages(stages: dict, path=None, title: str = "one head's addressing, stage by stage"):
    """One bar chart per stage, left to right: stages maps a name ("content", ...) to a weighting (M,)."""
    plt = _plt()
    ws = {name: np.asarray(w, dtype=float) for name, w in stages.items()}
    if not ws or any(w.ndim != 1 for w in ws.values()) or len({w.shape for w in ws.values()}) != 1:
        raise ValueError(f"stages must map names to weightings of one shape (M,), got "
                         f"{ {k: v.shape for k, v in ws.items()} }")
    fig, axes = plt.subplots(1, len(ws), figsize=(2.6 * len(ws), 2.6), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, (name, w) in zip(axes, ws.items()):
        ax.bar(np.arange(len(w)), w, color="C0")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("memory location")
        ax.set_xticks(range(0, len(w), max(1, len(w) // 5)))
    axes[0].set_ylabel("weight")
    axes[0].set_ylim(0, 1)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def hop_scores_heatmap(sentences: Sequence[str], scores: np.ndarray, chosen: Sequence[int],
                       supporting: Sequence[int], question: str, predicted: str, answer: str, path=None,
                       title: Optional[str] = None, note: str = ""):
    """MemNN's hard hops: story sentences as rows, hops as columns, each cell the score s_O(x_k, m_i) of memory i
    at hop k (x_k = the question and the memories chosen before). The memory each hop chose is boxed; the true
    supporting facts are marked ★1, ★2, … on their rows, in the order the hops should find them.

    scores (K, n) for the n sentences; chosen (K,) row per hop (a row ≥ n, e.g. AM's STOP, is left unboxed);
    supporting: rows of the supporting facts in file order.
    """
    plt = _plt()
    from matplotlib.patches import Rectangle
    s = np.asarray(scores, dtype=float).T                     # (n, K)
    n, K = s.shape
    if n != len(sentences):
        raise ValueError(f"{len(sentences)} sentences but scores over {n} slots")
    if len(chosen) != K:
        raise ValueError(f"{K} hops of scores but {len(chosen)} chosen memories")
    fig, ax = plt.subplots(figsize=(2.4 + 1.0 * K + 0.06 * max(map(len, sentences), default=10),
                                    1.5 + 0.32 * n))
    lim = max(1e-9, float(np.abs(s).max()))
    ax.imshow(s, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    for i in range(n):
        for k in range(K):
            ax.text(k, i, f"{s[i, k]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if abs(s[i, k]) > 0.6 * lim else "black")
    for k, i in enumerate(chosen):
        if 0 <= int(i) < n:
            ax.add_patch(Rectangle((k - 0.5, int(i) - 0.5), 1, 1, fill=False, lw=2.2, ec="black"))
    marks = {}
    for order, i in enumerate(supporting):
        marks.setdefault(int(i), []).append(f"★{order + 1}")
    labels = [(" ".join(marks[i]) + " " if i in marks else "") + sent for i, sent in enumerate(sentences)]
    ax.set_yticks(range(n), labels, fontsize=9)
    ax.set_xticks(range(K), [f"hop {k + 1}" for k in range(K)])
    ax.xaxis.tick_top()
    ok = "✓" if predicted == answer else "✗"
    ax.set_title(title or f"{question}?\npredicted: {predicted} {ok}   true: {answer}\n"
                          f"□ memory chosen at each hop   ★k supporting fact of hop k{note}", fontsize=10, pad=24)
    return _save(fig, path)


def word_attention(words: Sequence[str], attention: np.ndarray, target: str, predicted: str, path=None,
                   title: Optional[str] = None):
    """A language model's attention: the previous words along the x axis (oldest left), one row per hop.

    attention (K, n) over the n words shown (the last n slots of the memory).
    """
    plt = _plt()
    att = np.asarray(attention, dtype=float)                  # (K, n)
    K, n = att.shape
    if n != len(words):
        raise ValueError(f"{len(words)} words but attention over {n} slots")
    fig, ax = plt.subplots(figsize=(1.5 + 0.32 * n, 1.2 + 0.38 * K))
    ax.imshow(att, cmap="Blues", vmin=0, vmax=max(1e-9, float(att.max())), aspect="auto")
    ax.set_xticks(range(n), words, rotation=90, fontsize=8)
    ax.set_yticks(range(K), [f"hop {k + 1}" for k in range(K)], fontsize=8)
    ok = "✓" if predicted == target else "✗"
    ax.set_title(title or f"next word: predicted {predicted!r} {ok}, true {target!r}", fontsize=10)
    return _save(fig, path)


def perplexity_curves(history, path=None, title: str = "perplexity per epoch", paper: Optional[float] = None,
                      baseline: Optional[float] = None, test: Optional[float] = None):
    """Training and validation perplexity per epoch (log scale), with the paper's and a baseline's test
    perplexity as horizontal lines when given, and the final test perplexity as a point."""
    plt = _plt()
    rows = [h if isinstance(h, dict) else h._asdict() for h in history]
    ep = [r["epoch"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(ep, [r["train_perplexity"] for r in rows], "o-", label="train")
    ax.plot(ep, [r["valid_perplexity"] for r in rows], "o-", label="validation")
    if test is not None and ep:
        ax.plot([ep[-1]], [test], "k*", markersize=10, label=f"test {test:.1f}")
    if paper is not None:
        ax.axhline(paper, color="0.3", ls="--", lw=1, label=f"paper (test) {paper:g}")
    if baseline is not None:
        ax.axhline(baseline, color="0.6", ls=":", lw=1, label=f"bigram (test) {baseline:g}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("perplexity")
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)
