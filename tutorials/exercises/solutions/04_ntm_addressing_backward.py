"""Exercise 4, a reference solution: the backward of an NTM head's addressing.

    python -m memnet_np check tutorials/exercises/solutions/04_ntm_addressing_backward.py

The forward (Graves et al. 2014 §3.3), shapes N batch, Hh heads, M memory slots, d memory width, S = 2r + 1 shifts:

    K(i)   = k·M(i) / (‖k‖_ε ‖M(i)‖_ε)      ‖u‖_ε = √(u·u + ε)        K (N, Hh, M)      (6)
    w^c    = softmax(β K)                                              w^c (N, Hh, M)    (5)
    w̃(i)  = Σ_δ s(δ) w^g(i − δ mod M)       δ = −r..+r                w̃ (N, Hh, M)     (8)
    w(i)   = w̃(i)^γ / Σ_j w̃(j)^γ  = softmax(γ log w̃)                w (N, Hh, M)      (9)

Each backward walks its forward upside down. It is the same maths as memnet_np.ntm.addressing.
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
# The forward passes, as in the stub


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
# The backward passes


def content_backward(dw, cache):
    """dw (N, Hh, M) -> dk (N, Hh, d), dbeta (N, Hh), dmem (N, M, d)."""
    k, mem, nk, nm, K, beta, w = cache
    dz = w * (dw - (w * dw).sum(-1, keepdims=True))           # (N, Hh, M) through the softmax, z = βK
    dbeta = (dz * K).sum(-1)                                  # (N, Hh)
    dK = dz * beta[:, :, None]                                # (N, Hh, M)
    ddot = dK / (nk[:, :, None] * nm[:, None, :])             # (N, Hh, M) K = dot / (nk nm)
    dnk = -(dK * K).sum(-1) / nk                              # (N, Hh)  ∂K/∂nk = −K / nk
    dnm = -(dK * K).sum(1) / nm                               # (N, M)   ∂K/∂nm = −K / nm
    dk = np.einsum("nhm,nmd->nhd", ddot, mem) + (dnk / nk)[:, :, None] * k       # (N, Hh, d) ∂nk/∂k = k / nk
    dmem = np.einsum("nhm,nhd->nmd", ddot, k) + (dnm / nm)[:, :, None] * mem     # (N, M, d)  ∂nm/∂M(i) = M(i) / nm
    return dk, dbeta, dmem


def shift_backward(dws, cache):
    """dws (N, Hh, M) -> dwg (N, Hh, M), ds (N, Hh, S)."""
    s, shifted = cache
    M, S = dws.shape[-1], s.shape[-1]
    ds = np.einsum("nhsm,nhm->nhs", shifted, dws)             # (N, Hh, S) ds(δ) = Σ_i dw̃(i) w^g(i − δ)
    back = dws[..., shift_index(M, S, sign=-1)]               # (N, Hh, S, M) back[.., j, i] = dw̃(i + δ_j)
    dwg = np.einsum("nhs,nhsm->nhm", s, back)                 # (N, Hh, M) w^g(i) reached w̃(i + δ) with weight s(δ)
    return dwg, ds


def sharpen_backward(dw, cache):
    """dw (N, Hh, M) -> dws (N, Hh, M), dgamma (N, Hh)."""
    ws, lw, gamma, w = cache
    dz = w * (dw - (w * dw).sum(-1, keepdims=True))           # (N, Hh, M) through the softmax, z = γ log w̃
    dgamma = (dz * lw).sum(-1)                                # (N, Hh)
    dws = gamma[:, :, None] * dz / ws                         # (N, Hh, M) ∂(γ log w̃)/∂w̃ = γ / w̃
    return dws, dgamma


if __name__ == "__main__":
    import sys

    from memnet_np.exercises import ExerciseError, grade

    try:
        sys.exit(0 if grade(__file__) else 1)
    except ExerciseError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
