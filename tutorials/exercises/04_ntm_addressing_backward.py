"""Exercise 4: the backward of an NTM head's addressing.

Each head of a Neural Turing Machine (Graves et al. 2014, §3.3) turns what its controller emits into a weighting
over the M memory slots in stages. Three of them have a backward worth writing:

    content     K(i) = k·M(i) / (‖k‖_ε ‖M(i)‖_ε)    ‖u‖_ε = √(u·u + ε)     K (N, Hh, M)         (6)
                w^c  = softmax_i(β K(i))                                   w^c (N, Hh, M)       (5)
    shift       w̃(i) = Σ_δ s(δ) w^g(i − δ mod M)     δ = −r..+r            w̃ (N, Hh, M)        (8)
    sharpening  w(i) = w̃(i)^γ / Σ_j w̃(j)^γ           γ ≥ 1                 w (N, Hh, M)         (9)

k (N, Hh, d) is each head's key, β (N, Hh) its key strength, M (N, M, d) the memory, w^g the weighting after
interpolation, s (N, Hh, S) a distribution over the S = 2r + 1 shifts (s[..., j] is the weight of δ = j − r; a
positive δ moves weight to HIGHER slot indices, wrapping around), γ (N, Hh) the sharpening exponent.
Shape letters: N batch, Hh heads, M memory slots, d memory width, S shifts.

Your job: write the three backward functions below, the ones that `raise NotImplementedError`. Each gets the
gradient of the loss with respect to its forward's output and the cache of the forward (given in full above it),
and returns the gradients with respect to the forward's inputs, in their order, each with the shape of the thing
it is the gradient of. Batched: no Python loops. Then check your work:

    python -m memnet_np check tutorials/exercises/04_ntm_addressing_backward.py

(or run this file). The checker compares your gradients with finite differences and with the library's own
backward (memnet_np.ntm.addressing) and names the usual mistakes: the shift's direction reversed, the
normalisation of sharpening forgotten, the cosine's norm terms dropped. See README.md next to this file.
"""
EXERCISE = "ntm_addressing_backward"

from typing import NamedTuple

import numpy as np

EPS = 1e-8   # ε in the norms: a zero memory row has K = 0, not 0/0


def softmax(z):
    """softmax over the last axis, max-subtracted."""
    e = np.exp(z - z.max(-1, keepdims=True))                  # (..., M)
    return e / e.sum(-1, keepdims=True)


def shift_index(M, S, sign=1):
    """(S, M) table idx[j, i] = (i − sign·δ_j) mod M with δ_j = j − r: w[..., idx] lines up w(i − δ) for every δ."""
    r = (S - 1) // 2
    delta = np.arange(S) - r                                  # (S,)
    return (np.arange(M)[None, :] - sign * delta[:, None]) % M   # (S, M)


# ----------------------------------------------------------------------------------------------------------------
# The forward passes, given in full: read them first, then write each backward as its forward upside down.
# (The checker runs these to get the caches your backwards receive; the library's copies compute the same.)


class ContentCache(NamedTuple):
    k: np.ndarray     # (N, Hh, d) keys
    mem: np.ndarray   # (N, M, d) memory
    nk: np.ndarray    # (N, Hh) ‖k‖_ε
    nm: np.ndarray    # (N, M) ‖M(i)‖_ε
    K: np.ndarray     # (N, Hh, M) cosine similarities
    beta: np.ndarray  # (N, Hh)
    w: np.ndarray     # (N, Hh, M) w^c


def content_forward(k, beta, mem):
    """k (N, Hh, d), beta (N, Hh) ≥ 0, mem (N, M, d) -> w^c (N, Hh, M) and the cache."""
    dot = np.einsum("nhd,nmd->nhm", k, mem)                   # (N, Hh, M) k·M(i)
    nk = np.sqrt((k * k).sum(-1) + EPS)                       # (N, Hh)
    nm = np.sqrt((mem * mem).sum(-1) + EPS)                   # (N, M)
    K = dot / (nk[:, :, None] * nm[:, None, :])               # (N, Hh, M)
    w = softmax(beta[:, :, None] * K)                         # (N, Hh, M)
    return w, ContentCache(k, mem, nk, nm, K, beta, w)


class ShiftCache(NamedTuple):
    s: np.ndarray        # (N, Hh, S)
    shifted: np.ndarray  # (N, Hh, S, M) w^g moved by each δ: shifted[.., j, i] = w^g(i − δ_j)


def shift_forward(wg, s):
    """wg (N, Hh, M), s (N, Hh, S) -> w̃ (N, Hh, M). A positive δ moves weight to higher slot indices."""
    M, S = wg.shape[-1], s.shape[-1]
    shifted = wg[..., shift_index(M, S)]                      # (N, Hh, S, M)
    ws = np.einsum("nhs,nhsm->nhm", s, shifted)               # (N, Hh, M) Σ_δ s(δ) w^g(i − δ)
    return ws, ShiftCache(s, shifted)


class SharpenCache(NamedTuple):
    ws: np.ndarray     # (N, Hh, M) w̃
    lw: np.ndarray     # (N, Hh, M) log w̃
    gamma: np.ndarray  # (N, Hh)
    w: np.ndarray      # (N, Hh, M)


def sharpen_forward(ws, gamma):
    """ws (N, Hh, M) on the simplex, gamma (N, Hh) ≥ 1 -> w (N, Hh, M)."""
    lw = np.log(np.maximum(ws, 1e-30))                        # (N, Hh, M) no log 0
    w = softmax(gamma[:, :, None] * lw)                       # (N, Hh, M)
    return w, SharpenCache(ws, lw, gamma, w)


# ----------------------------------------------------------------------------------------------------------------
# The backward passes: your turn.


def content_backward(dw, cache):
    """dw (N, Hh, M) -> dk (N, Hh, d), dbeta (N, Hh), dmem (N, M, d).

    Backwards through z = βK (a softmax over the slots), then K = dot / (nk nm): the dot product AND both norms
    depend on k and on M(i). The cache holds everything the forward computed.
    """
    raise NotImplementedError("fill me in")


def shift_backward(dws, cache):
    """dws (N, Hh, M) -> dwg (N, Hh, M), ds (N, Hh, S).

    The shift is linear in w^g and in s. Ask, for each slot j of w^g, which slots of w̃ it reached, and with which
    weight; then for each δ, which products s(δ) w^g(·) it took part in.
    """
    raise NotImplementedError("fill me in")


def sharpen_backward(dw, cache):
    """dw (N, Hh, M) -> dws (N, Hh, M), dgamma (N, Hh).

    The sum in the denominator depends on every w̃(j) and on γ. Writing w = softmax(γ log w̃) (the forward does)
    turns this into a softmax backward followed by the derivative of γ log w̃.
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
# 1. Softmax, w = softmax(z) over the last axis: dz = w ⊙ (dw − Σ_j w_j dw_j). Both stages with a softmax
#    (content, sharpening) start with this; dropping the second term is the "forgotten normalisation".
# 2. Cosine: K = dot / (nk nm) with nk = √(k·k + ε). ∂K/∂dot = 1 / (nk nm), ∂K/∂nk = −K / nk, ∂nk/∂k = k / nk;
#    the same for nm and M(i). dk collects the dot's share (Σ_i ddot(i) M(i)) and the norm's share; so does dmem,
#    summed over the heads.
# 3. Shift: w̃(i) = Σ_δ s(δ) w^g(i − δ). So w^g(j) appears in w̃(j + δ) with weight s(δ):
#    dw^g(j) = Σ_δ s(δ) dw̃(j + δ), the shift the OTHER way (shift_index(M, S, sign=-1) lines that up).
#    ds(δ) = Σ_i dw̃(i) w^g(i − δ): the cache's `shifted` already holds w^g(i − δ) for every δ.
# 4. Sharpening: z = γ log w̃, so dγ = Σ_i dz(i) log w̃(i) and dw̃(i) = γ dz(i) / w̃(i).


if __name__ == "__main__":
    import sys

    from memnet_np.exercises import ExerciseError, grade

    try:
        sys.exit(0 if grade(__file__) else 1)
    except ExerciseError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
