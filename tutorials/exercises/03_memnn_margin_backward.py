"""Exercise 3: the backward pass of MemNN's margin ranking loss.

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

You write two backward functions:

    score_backward(ds, cache)          ∂loss/∂U from ds (N,) = ∂loss/∂s of a batch of scores s_n = (U a_n)ᵀ(U b_n)
    margin_loss_backward(dloss, cache) ∂loss/∂U from dloss (N,) = ∂(total)/∂ℓ_n

Each gets the cache of its forward in this file, score_forward and margin_loss_forward below (the checker runs
them and makes sure they still compute what the library's do; you may add fields to the caches). The rules:
  - no Python loops (for, while, comprehensions) in what you write: matrix products, einsum, broadcasting (the
    checker looks, and fails a file with one, after grading it);
  - leave the arguments as they are (no `x -= ...` on them, nor on the cache's arrays);
  - margin_loss_backward may call your score_backward (that is the neat way).

Then check your work:

    python -m memnet_np check tutorials/exercises/03_memnn_margin_backward.py

(or run this file). The checker compares your dU with finite differences of the forward and with the library's
backward on random cases built like MemNN's features, where some hinges are active and some not (none is near its
kink, where the loss has no derivative: see tutorials/01_memnn.py for what the gradient checker does there).
"""
EXERCISE = "memnn_margin_backward"

from typing import NamedTuple

import numpy as np

# ----------------------------------------------------------------------------------------------------------------
# The forward pass, given in full: read it first, then write the backward as this, upside down.


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
# The backward pass: your turn.


def score_backward(ds, cache):
    """dU (d, D) from ds (N,) = ∂loss/∂s_n and score_forward's cache: Σ_n ds_n ∂s_n/∂U.

    s_n = (U a_n)ᵀ (U b_n). Write s = Σ_k (U a)_k (U b)_k and differentiate with respect to U_kl: both factors
    depend on U. Hints at the bottom of the file.
    """
    raise NotImplementedError("fill me in")


def margin_loss_backward(dloss, cache):
    """dU (d, D) from dloss (N,) = ∂total/∂ℓ_n and margin_loss_forward's cache.

    Walk the forward upside down: which hinges pass a gradient, with which sign does each reach s(x, y) and
    s(x, ȳ_j), and then each score's dU (your score_backward). Hints at the bottom of the file.
    """
    raise NotImplementedError("fill me in")


# ----------------------------------------------------------------------------------------------------------------
# Hints (scroll down only if you are stuck)
#
#
#
#
#
#
#
# 1. ∂s/∂U for s = (U a)ᵀ (U b). With u = U a and v = U b, s = uᵀ v, ∂s/∂u = v and ∂s/∂v = u. u = U a is linear
#    in U: a gradient g on u gives g aᵀ on U (an outer product, d × D). So ∂s/∂U = v aᵀ + u bᵀ = U(b aᵀ + a bᵀ).
#    Both terms: U is in both factors. Not 2 U a bᵀ: that would be the derivative of (U a)ᵀ(U a), where a = b.
#    Batched: Σ_n ds_n u_n b_nᵀ = (ds[:, None] * ea).T @ b, and likewise the other term.
# 2. The hinge. max(0, h) has slope 1 where h > 0 and 0 where h ≤ 0 (the cache's `active`). An inactive hinge
#    passes no gradient to anything, however large its scores.
# 3. The signs. h_j = γ − s(x, y) + s(x, ȳ_j): ∂h_j/∂s(x, ȳ_j) = +1 and ∂h_j/∂s(x, y) = −1. The true candidate's
#    score is in every hinge of its question: ∂ℓ_n/∂s(x_n, y_n) = −(number of active hinges of question n).
#    Multiply both by dloss_n.
# 4. Then dU is score_backward of the true candidates' scores (a = x, b = y, ds (N,)) plus score_backward of the
#    negatives' scores: flatten them to N·S scores, with x repeated once per negative
#    (np.repeat(x, S, axis=0), or broadcast to (N, S, D) and reshape) and ȳ reshaped to (N·S, D).
#    Note that U Φx(x) gets a gradient from both: s(x, y) and every s(x, ȳ_j) share it.


if __name__ == "__main__":
    import sys

    from memnet_np.exercises import ExerciseError, grade

    try:
        sys.exit(0 if grade(__file__) else 1)
    except ExerciseError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
