"""Exercise 3, a reference solution: the backward pass of MemNN's margin ranking loss.

A Memory Network (Weston, Chopra, Bordes 2014) scores an input x against a candidate y, a memory or an answer word,

    s(x, y) = Φx(x)ᵀ Uᵀ U Φy(y)          U is d × D, D = 3|W|

Φx(x) and Φy(y) are bags of words in three copies of the vocabulary: the question's words in copy 1, the words of
the memory chosen at the hop before in copy 2 (Φx), the candidate's words in copy 3 (Φy). So with a = Φx(x) and
b = Φy(y), s = (U a)ᵀ (U b): U appears twice, once in each factor.

With strong supervision the true candidate y (the supporting fact of the hop, or the answer) is known, and the
model is trained with the margin ranking loss against S sampled negatives ȳ_1 … ȳ_S,

    h_j = γ − s(x, y) + s(x, ȳ_j)                   one hinge per negative                    h (N, S)
    ℓ   = Σ_j max(0, h_j)                           per question                              ℓ (N,)

which is zero once the true candidate beats every negative by the margin γ. (MemNN has one such loss per hop and
one for the answer; this is one of them. memnet_np/memnn.py computes all of them for a batch at once.)
Shape letters: N batch, S negatives per question, d embedding, D features (3|W|).

    python -m memnet_np check tutorials/exercises/solutions/03_memnn_margin_backward.py
"""
EXERCISE = "memnn_margin_backward"

from typing import NamedTuple

import numpy as np

# ----------------------------------------------------------------------------------------------------------------
# The forward pass, as in the stub


class ScoreCache(NamedTuple):
    U: np.ndarray      # (d, D)
    a: np.ndarray      # (N, D)  Φx of each input
    b: np.ndarray      # (N, D)  Φy of each candidate
    ea: np.ndarray     # (N, d)  U a
    eb: np.ndarray     # (N, d)  U b


def score_forward(U, a, b):
    """s_n = (U a_n)ᵀ (U b_n) = Φx(x_n)ᵀ Uᵀ U Φy(y_n).  U (d, D), a, b (N, D)  ->  s (N,), cache"""
    ea = a @ U.T                                                # (N, d) U a_n for every n
    eb = b @ U.T                                                # (N, d) U b_n
    s = np.sum(ea * eb, -1)                                     # (N,)
    return s, ScoreCache(U, a, b, ea, eb)


class MarginCache(NamedTuple):
    U: np.ndarray      # (d, D)
    x: np.ndarray      # (N, D)     Φx of each question
    y: np.ndarray      # (N, D)     Φy of the true candidate
    y_neg: np.ndarray  # (N, S, D)  Φy of the negatives
    active: np.ndarray  # (N, S)    bool: h_j > 0


def margin_loss_forward(U, x, y, y_neg, margin):
    """ℓ_n = Σ_j max(0, γ − s(x_n, y_n) + s(x_n, ȳ_nj)).  U (d, D), x, y (N, D), y_neg (N, S, D)  ->  ℓ (N,), cache"""
    ex = x @ U.T                                                # (N, d)    U Φx(x)
    s_pos = np.sum(ex * (y @ U.T), -1)                          # (N,)      s(x, y)
    s_neg = np.einsum("nd,nsd->ns", ex, y_neg @ U.T)            # (N, S)    s(x, ȳ_j)
    h = margin - s_pos[:, None] + s_neg                         # (N, S)
    loss = np.maximum(h, 0).sum(-1)                             # (N,)
    return loss, MarginCache(U, x, y, y_neg, h > 0)


# ----------------------------------------------------------------------------------------------------------------
# The backward pass


def score_backward(ds, cache):
    """dU (d, D) = Σ_n ds_n ∂s_n/∂U,  ∂s/∂U = U(a bᵀ + b aᵀ) = (U a) bᵀ + (U b) aᵀ: U is in both factors."""
    U, a, b, ea, eb = cache
    return (ds[:, None] * ea).T @ b + (ds[:, None] * eb).T @ a   # (d, D) Σ_n ds_n (U a_n) b_nᵀ + ds_n (U b_n) a_nᵀ


def margin_loss_backward(dloss, cache):
    """dU (d, D): only active hinges pass a gradient, +1 to s(x, ȳ_j) and −1 to s(x, y), each times dloss_n."""
    U, x, y, y_neg, active = cache
    N, S, D = y_neg.shape
    ds_neg = dloss[:, None] * active                            # (N, S)  ∂total/∂s(x, ȳ_j)
    ds_pos = -dloss * active.sum(-1)                            # (N,)    ∂total/∂s(x, y): one −1 per active hinge
    x_rep = np.repeat(x, S, axis=0)                             # (N·S, D) x once per negative, in y_neg's order
    return (score_backward(ds_pos, ScoreCache(U, x, y, x @ U.T, y @ U.T))
            + score_backward(ds_neg.reshape(-1), ScoreCache(U, x_rep, y_neg.reshape(N * S, D), x_rep @ U.T,
                                                            y_neg.reshape(N * S, D) @ U.T)))   # (d, D)


if __name__ == "__main__":
    import sys

    from memnet_np.exercises import ExerciseError, grade

    try:
        sys.exit(0 if grade(__file__) else 1)
    except ExerciseError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
