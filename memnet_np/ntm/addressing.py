"""NTM addressing and memory access (Graves et al. 2014 §3), each stage a forward/backward op pair.

    content        w^c(i) = softmax_i(β · K(k, M(i)))    K(u, v) = u·v / (‖u‖_ε ‖v‖_ε)  ‖u‖_ε = √(u·u + ε)   (5, 6)
    interpolation  w^g    = g w^c + (1 − g) w_{t−1}                                                  (7)
    shift          w̃(i)  = Σ_δ s(δ) w^g(i − δ mod M)       δ ∈ {−r, …, +r}, s a softmax over the 2r+1 shifts  (8)
    sharpening     w(i)   = w̃(i)^γ / Σ_j w̃(j)^γ           γ ≥ 1                                         (9)
    read           r = Σ_i w(i) M(i)                                                                 (2)
    erase, add     M̃(i) = M(i) ⊙ Π_h (1 − w_h(i) e_h),  M(i) = M̃(i) + Σ_h w_h(i) a_h                  (3, 4)

`address` runs the four stages in order for all heads at once. The ops know nothing of the controller or of a
Config: they take arrays and return arrays (and a NamedTuple cache), vectorised over the batch N and the heads Hh.

Shift convention. s[..., j] is the weight of the shift δ = j − r, and a positive δ moves the focus to HIGHER
slot indices: a weighting one-hot at slot i, shifted with s one-hot at δ = +1, is one-hot at slot i + 1 (mod M).
(Implementations differ here; `test_shift_convention` pins this one.)

Numerics. The norms in K carry ε, so a zero memory row has K = 0, not 0/0. Sharpening is computed as a softmax of
γ · log max(w̃, 10⁻³⁰): no 0^γ, no log 0, and an arbitrarily large γ or β only makes a weighting one-hot.

Shape letters: N batch, M memory slots, d memory width, S = 2r + 1 shifts, Hh heads, R read heads, Wh write heads.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

COSINE_EPS = 1e-8        # ε in ‖u‖_ε = √(u·u + ε)
SHARPEN_FLOOR = 1e-30    # w̃ is floored here before the log (a normal number in float32 too)


# ----------------------------------------------------------------------------------------------------------------
# Small pieces used by every stage: a softmax over the last axis and its backward, the logistic function


def softmax(z):
    """softmax over the last axis, max-subtracted (exp never overflows; any β or γ is safe)."""
    e = np.exp(z - z.max(-1, keepdims=True))                  # (..., M) in (0, 1]
    return e / e.sum(-1, keepdims=True)


def softmax_backward(dp, p):
    return p * (dp - (p * dp).sum(-1, keepdims=True))         # (..., M) Jacobian diag(p) − p pᵀ applied to dp


def sigmoid(x):
    return 0.5 + 0.5 * np.tanh(0.5 * x)                       # σ(x) = (1 + tanh(x/2)) / 2, no overflow for any x


def outer_sum(u, v):
    """Σ_k u_k v_kᵀ per example: u (N, K, M), v (N, K, d) -> (N, M, d); the same as uᵀ v.

    With few heads K, K broadcast outer products are several times faster than a batched matmul of inner size K.
    """
    out = u[:, 0, :, None] * v[:, 0, None, :]                 # (N, M, d)
    for k in range(1, u.shape[1]):
        out = out + u[:, k, :, None] * v[:, k, None, :]
    return out


def softplus(x):
    return np.logaddexp(0.0, x)                               # log(1 + eˣ) without overflow


# ----------------------------------------------------------------------------------------------------------------
# Addressing, stage 1: content.  K = u·v / (‖u‖_ε ‖v‖_ε),  w^c = softmax(β K)


class ContentCache(NamedTuple):
    k: np.ndarray     # (N, Hh, d) keys
    mem: np.ndarray   # (N, M, d) memory
    nk: np.ndarray    # (N, Hh) ‖k‖_ε
    nm: np.ndarray    # (N, M) ‖M(i)‖_ε
    K: np.ndarray     # (N, Hh, M) cosine similarities
    beta: np.ndarray  # (N, Hh)
    w: np.ndarray     # (N, Hh, M)


def content_forward(k, beta, mem):
    """k (N, Hh, d), beta (N, Hh) ≥ 0, mem (N, M, d) -> w^c (N, Hh, M)."""
    dot = k @ mem.transpose(0, 2, 1)                          # (N, Hh, M) k·M(i)
    nk = np.sqrt((k * k).sum(-1) + COSINE_EPS)                # (N, Hh)
    nm = np.sqrt((mem * mem).sum(-1) + COSINE_EPS)            # (N, M) a zero row has norm √ε, not 0
    K = dot / (nk[:, :, None] * nm[:, None, :])               # (N, Hh, M)
    w = softmax(beta[:, :, None] * K)                         # (N, Hh, M)
    return w, ContentCache(k, mem, nk, nm, K, beta, w)


def content_backward(dw, cache):
    k, mem, nk, nm, K, beta, w = cache
    dz = softmax_backward(dw, w)                              # (N, Hh, M) ∂/∂(βK)
    dbeta = (dz * K).sum(-1)                                  # (N, Hh)
    dK = dz * beta[:, :, None]                                # (N, Hh, M)
    ddot = dK / (nk[:, :, None] * nm[:, None, :])             # (N, Hh, M) K = dot / (nk nm)
    dnk = -(dK * K).sum(-1) / nk                              # (N, Hh)  ∂K/∂nk = −K/nk
    dnm = -(dK * K).sum(1) / nm                               # (N, M)
    dk = ddot @ mem + (dnk / nk)[:, :, None] * k              # (N, Hh, d)  ∂nk/∂k = k/nk
    dmem = outer_sum(ddot, k) + (dnm / nm)[:, :, None] * mem  # (N, M, d)
    return dk, dbeta, dmem


# ----------------------------------------------------------------------------------------------------------------
# Stage 2: interpolation with the previous weighting.  w^g = g w^c + (1 − g) w_{t−1}


class InterpolateCache(NamedTuple):
    wc: np.ndarray      # (N, Hh, M)
    w_prev: np.ndarray  # (N, Hh, M)
    g: np.ndarray       # (N, Hh)


def interpolate_forward(wc, w_prev, g):
    wg = g[:, :, None] * wc + (1.0 - g)[:, :, None] * w_prev  # (N, Hh, M)
    return wg, InterpolateCache(wc, w_prev, g)


def interpolate_backward(dwg, cache):
    wc, w_prev, g = cache
    dwc = g[:, :, None] * dwg                                 # (N, Hh, M)
    dw_prev = (1.0 - g)[:, :, None] * dwg                     # (N, Hh, M)
    dg = (dwg * (wc - w_prev)).sum(-1)                        # (N, Hh)
    return dwc, dw_prev, dg


# ----------------------------------------------------------------------------------------------------------------
# Stage 3: circular shift.  w̃(i) = Σ_δ s(δ) w^g(i − δ mod M),  s[..., j] the weight of δ = j − r


@functools.lru_cache(maxsize=64)
def shift_index(M: int, S: int, sign: int = 1) -> np.ndarray:
    """(S, M) table idx[j, i] = (i − sign·δ_j) mod M with δ_j = j − r: w^g[..., idx] lines up w^g(i − δ) for every δ."""
    r = (S - 1) // 2
    delta = np.arange(S) - r                                  # (S,)
    idx = (np.arange(M)[None, :] - sign * delta[:, None]) % M   # (S, M)
    idx.flags.writeable = False                               # shared between calls (cached)
    return idx


class ShiftCache(NamedTuple):
    s: np.ndarray        # (N, Hh, S)
    shifted: np.ndarray  # (N, Hh, S, M) w^g moved by each δ


def shift_forward(wg, s):
    """wg (N, Hh, M), s (N, Hh, S) -> w̃ (N, Hh, M). A positive δ moves weight to higher slot indices."""
    M, S = wg.shape[-1], s.shape[-1]
    shifted = wg[..., shift_index(M, S)]                      # (N, Hh, S, M) shifted[.., j, i] = w^g(i − δ_j)
    ws = (s[:, :, None, :] @ shifted)[:, :, 0, :]             # (N, Hh, M) Σ_j s_j shifted_j
    return ws, ShiftCache(s, shifted)


def shift_backward(dws, cache):
    s, shifted = cache
    M, S = dws.shape[-1], s.shape[-1]
    ds = (shifted @ dws[..., None])[..., 0]                   # (N, Hh, S)
    back = dws[..., shift_index(M, S, sign=-1)]               # (N, Hh, S, M) back[.., j, i] = dw̃(i + δ_j)
    dwg = (s[:, :, None, :] @ back)[:, :, 0, :]               # (N, Hh, M) w^g(i) reached w̃(i + δ) with weight s(δ)
    return dwg, ds


# ----------------------------------------------------------------------------------------------------------------
# Stage 4: sharpening.  w = w̃^γ / Σ w̃^γ = softmax(γ log w̃)   (w̃ floored at 10⁻³⁰ before the log)


class SharpenCache(NamedTuple):
    ws: np.ndarray     # (N, Hh, M) w̃
    lw: np.ndarray     # (N, Hh, M) log max(w̃, floor)
    gamma: np.ndarray  # (N, Hh)
    w: np.ndarray      # (N, Hh, M)


def sharpen_forward(ws, gamma):
    """ws (N, Hh, M) on the simplex, gamma (N, Hh) ≥ 1 -> w (N, Hh, M)."""
    lw = np.log(np.maximum(ws, SHARPEN_FLOOR))                # (N, Hh, M) finite even where w̃ = 0
    w = softmax(gamma[:, :, None] * lw)                       # (N, Hh, M)
    return w, SharpenCache(ws, lw, gamma, w)


def sharpen_backward(dw, cache):
    ws, lw, gamma, w = cache
    dz = softmax_backward(dw, w)                              # (N, Hh, M) ∂/∂(γ log w̃)
    dgamma = (dz * lw).sum(-1)                                # (N, Hh)
    above = ws > SHARPEN_FLOOR                                # (N, Hh, M) below the floor the slope is 0
    dws = np.where(above, gamma[:, :, None] * dz / np.maximum(ws, SHARPEN_FLOOR), 0.0)   # (N, Hh, M)
    return dws, dgamma


# ----------------------------------------------------------------------------------------------------------------
# Read and write


class ReadCache(NamedTuple):
    mem: np.ndarray  # (N, M, d)
    w: np.ndarray    # (N, R, M)


def read_forward(mem, w):
    """r = Σ_i w(i) M(i): mem (N, M, d), w (N, R, M) -> r (N, R, d)."""
    return w @ mem, ReadCache(mem, w)                         # (N, R, d)


def read_backward(dr, cache):
    mem, w = cache
    dmem = outer_sum(w, dr)                                   # (N, M, d) wᵀ dr
    dw = dr @ mem.transpose(0, 2, 1)                          # (N, R, M)
    return dmem, dw


class EraseCache(NamedTuple):
    mem: np.ndarray   # (N, M, d) before
    w: np.ndarray     # (N, Wh, M)
    e: np.ndarray     # (N, Wh, d)
    F: np.ndarray     # (N, Wh, M, d) each head's factor 1 − w_h(i) e_h
    keep: np.ndarray  # (N, M, d) Π_h F_h


def erase_forward(mem, w, e):
    """M̃ = M ⊙ Π_h (1 − w_h eₕᵀ): mem (N, M, d), w (N, Wh, M), e (N, Wh, d) in [0, 1] -> (N, M, d)."""
    F = 1.0 - w[:, :, :, None] * e[:, :, None, :]             # (N, Wh, M, d)
    keep = F[:, 0] if F.shape[1] == 1 else F.prod(1)          # (N, M, d)
    return mem * keep, EraseCache(mem, w, e, F, keep)


def erase_backward(dout, cache):
    mem, w, e, F, keep = cache
    dmem = dout * keep                                        # (N, M, d)
    dkeep = dout * mem                                        # (N, M, d)
    Wh = F.shape[1]
    if Wh == 1:
        dF = dkeep[:, None]                                   # (N, 1, M, d)
    else:                                                     # Π over the other heads, without dividing by F_h
        before = np.cumprod(np.concatenate([np.ones_like(F[:, :1]), F[:, :-1]], 1), axis=1)   # (N, Wh, M, d)
        after = np.cumprod(np.concatenate([np.ones_like(F[:, :1]), F[:, :0:-1]], 1), axis=1)[:, ::-1]
        dF = dkeep[:, None] * before * after                  # (N, Wh, M, d)
    dw = -(dF @ e[:, :, :, None])[..., 0]                     # (N, Wh, M)   F = 1 − w e
    de = -(w[:, :, None, :] @ dF)[:, :, 0, :]                 # (N, Wh, d)
    return dmem, dw, de


class AddCache(NamedTuple):
    w: np.ndarray  # (N, Wh, M)
    a: np.ndarray  # (N, Wh, d)


def add_forward(mem, w, a):
    """M + Σ_h w_h aₕᵀ: mem (N, M, d), w (N, Wh, M), a (N, Wh, d) -> (N, M, d)."""
    return mem + outer_sum(w, a), AddCache(w, a)             # (N, M, d) M + wᵀ a


def add_backward(dout, cache):
    w, a = cache
    dw = a @ dout.transpose(0, 2, 1)                          # (N, Wh, M)
    da = w @ dout                                             # (N, Wh, d)
    return dout, dw, da


# ----------------------------------------------------------------------------------------------------------------
# The whole pipeline


def address(heads, w_prev, mem):
    """The four stages for all heads at once -> w (N, Hh, M) and the four caches.

    heads: anything with k (N, Hh, d), beta (N, Hh), g (N, Hh), s (N, Hh, S), gamma (N, Hh) (a model.Heads).
    """
    wc, cc = content_forward(heads.k, heads.beta, mem)        # (N, Hh, M)
    wg, ic = interpolate_forward(wc, w_prev, heads.g)         # (N, Hh, M)
    ws, sc = shift_forward(wg, heads.s)                       # (N, Hh, M)
    w, pc = sharpen_forward(ws, heads.gamma)                  # (N, Hh, M)
    return w, (cc, ic, sc, pc)
