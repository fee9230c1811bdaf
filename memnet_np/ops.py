"""Differentiable pieces shared by the models: each an `*_forward` / `*_backward` pair.

The contract (cs231n `layers.py`):

    y, cache = op_forward(x, ...)        # pure: inputs are never modified
    dx, ...  = op_backward(dy, cache)    # gradients in the forward's argument order; dy is ∂loss/∂y

`cache` is a NamedTuple holding exactly what the backward needs, so a tutorial can print `cache.p`.
Shape letters: N batch, M memory slots, L words per sentence, d embedding, V vocabulary, T time steps, H hidden size, R rank of the
position-encoding weights (1 or 2).
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

# ----------------------------------------------------------------------------------------------------------------
# Elementwise nonlinearities


class ActCache(NamedTuple):
    y: np.ndarray  # (...) the op's output (all three backwards are cheapest written in terms of it)


def sigmoid_forward(x):
    """σ(x) = 1 / (1 + e^{−x}), computed without overflow for large |x|."""
    e = np.exp(-np.abs(x))                                    # (...) in (0, 1]
    y = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))      # (...)
    return y, ActCache(y)


def sigmoid_backward(dy, cache):
    return dy * cache.y * (1.0 - cache.y)                     # σ' = σ(1 − σ)


def tanh_forward(x):
    y = np.tanh(x)                                            # (...)
    return y, ActCache(y)


def tanh_backward(dy, cache):
    return dy * (1.0 - cache.y ** 2)                          # tanh' = 1 − tanh²


def relu_forward(x):
    y = np.maximum(x, 0.0)                                    # (...)
    return y, ActCache(y)


def relu_backward(dy, cache):
    return dy * (cache.y > 0)                                 # subgradient 0 at x = 0


# ----------------------------------------------------------------------------------------------------------------
# Linear map y = x Wᵀ + b   (W is (out, in), as the papers write W x)


class LinearCache(NamedTuple):
    x: np.ndarray  # (..., n_in)
    W: np.ndarray  # (n_out, n_in)
    has_bias: bool


def linear_forward(x, W, b=None):
    y = x @ W.T                                               # (..., n_out)
    if b is not None:
        y = y + b                                             # (..., n_out)
    return y, LinearCache(x, W, b is not None)


def linear_backward(dy, cache):
    x, W, has_bias = cache
    dx = dy @ W                                               # (..., n_in)
    dW = dy.reshape(-1, dy.shape[-1]).T @ x.reshape(-1, x.shape[-1])   # (n_out, n_in) summed over all leading axes
    db = dy.reshape(-1, dy.shape[-1]).sum(0) if has_bias else None     # (n_out,)
    return dx, dW, db


# ----------------------------------------------------------------------------------------------------------------
# Position encoding (Sukhbaatar et al. §4.1)
#
#   paper:     l_kj = (1 − j/J) − (k/d)(1 − 2j/J)          j = 1..J over the sentence's own J words, k = 1..d
#   official:  l_kj = 1 + 4 (k − (d+1)/2)(j − (J+1)/2) / (d J)   J = the padded sentence length (MATLAB code
#              `build_model.m`, with J = `config.max_words`; when temporal encoding is on, the official code
#              appends the time word as word J = L + 1 of every sentence, so J is one more than the padded length)
#
# Both are sums of two outer products  l_jk = Σ_r a_r(j) b_r(k),  which `pe_factors` returns. That low rank is
# what lets a sentence stay a weighted bag of words (see `encode_bags`).

PE_KINDS = (None, "paper", "official")


def _check_pe_kind(kind):
    if kind not in PE_KINDS:
        raise ValueError(f"position encoding must be one of {PE_KINDS}, got {kind!r}")


def pe_factors(x, d, kind="paper", J=None):
    """Rank factors of the position-encoding weights for the sentences x.

    x (..., L) word ids, 0 = padding. Returns a (R, ..., L) per-position factors and b (R, d) per-dimension
    factors with l[..., j, k] = Σ_r a[r, ..., j] · b[r, k]. kind None (plain bag of words) gives R = 1, a = b = 1.
    J: the official formula's sentence length (default L, the padded length; L + 1 with the official time word).
    """
    _check_pe_kind(kind)
    L = x.shape[-1]
    k = np.arange(1, d + 1, dtype=np.float64)                 # (d,) 1-based dimension index
    if kind is None:
        return np.ones((1,) + x.shape), np.ones((1, d))       # (1, ..., L), (1, d)
    j = np.arange(1, L + 1, dtype=np.float64)                 # (L,) 1-based position
    if kind == "paper":
        J = np.maximum((x != 0).sum(-1, keepdims=True), 1)    # (..., 1) each sentence's own word count
        a = np.stack([np.broadcast_to(1 - j / J, x.shape),    # (2, ..., L)
                      np.broadcast_to(1 - 2 * j / J, x.shape)])
        b = np.stack([np.ones(d), -k / d])                    # (2, d)
        return a, b
    J = L if J is None else J                                 # official code: J = padded length
    if J < L:
        raise ValueError(f"the official position encoding needs J ≥ L, got J={J} for sentences of length {L}")
    a = np.stack([np.ones(x.shape), np.broadcast_to(4 * (j - (J + 1) / 2) / J, x.shape)])  # (2, ..., L)
    b = np.stack([np.ones(d), (k - (d + 1) / 2) / d])         # (2, d)
    return a, b


def official_pe_column(d, j, J):
    """(d,) the official weights l_kj of position j in a sentence of length J: for the time word, j = J."""
    k = np.arange(1, d + 1, dtype=np.float64)                 # (d,)
    return 1 + 4 * (k - (d + 1) / 2) * (j - (J + 1) / 2) / (d * J)


def position_encoding(x, d, kind="paper", J=None):
    """The full weights l (..., L, d) for the sentences x (..., L); ones for kind None. For pictures and tests."""
    a, b = pe_factors(x, d, kind, J)
    return np.einsum("r...j,rk->...jk", a, b)                 # (..., L, d)


# ----------------------------------------------------------------------------------------------------------------
# Sentence embedding, literal form:  m_i = Σ_j l_j ⊙ A x_ij   (the padding word 0 contributes nothing)


class EmbedCache(NamedTuple):
    x: np.ndarray          # (..., L) word ids
    l: Optional[np.ndarray]  # (..., L, d) position weights, or None
    V: int


def embed_sentences_forward(x, A, l=None):
    """Bag-of-words sentence embedding by lookup. x (..., L) ints, A (V, d), l (L, d) / (..., L, d) / None."""
    e = A[x] * (x != 0)[..., None]                            # (..., L, d) word vectors, padding zeroed
    if l is not None:
        e = e * l                                             # (..., L, d)
    m = e.sum(-2)                                             # (..., d)
    return m, EmbedCache(x, l, A.shape[0])


def embed_sentences_backward(dm, cache):
    """dA: scatter-add of each word's share of dm into its row of A. Row 0 (padding) stays zero."""
    x, l, V = cache
    de = np.broadcast_to(dm[..., None, :], x.shape + dm.shape[-1:])  # (..., L, d) every word gets dm
    if l is not None:
        de = de * l                                           # (..., L, d)
    de = de * (x != 0)[..., None]                             # (..., L, d)
    d = dm.shape[-1]
    idx = x[..., None] * d + np.arange(d)                     # (..., L, d) flat index of A[x, k]
    dA = np.bincount(idx.ravel(), weights=de.ravel(), minlength=V * d).reshape(V, d)  # (V, d)
    return dA


# ----------------------------------------------------------------------------------------------------------------
# Sentence embedding, fast form: a sentence as weighted word counts.
#
#   m_i[k] = Σ_j l_jk A[x_ij, k] = Σ_r b_r[k] Σ_v (Σ_j a_r(j) [x_ij = v]) A[v, k] = Σ_r (W_r (A ⊙ b_r))[i, k]
#
# W_r (..., V) is the bag of sentence i with word v counted with weight a_r(j); scaling column k of A by b_r[k]
# moves the per-dimension factor inside the product. Side by side, the R bags make one matrix W = [W_1 … W_R]
# (..., R·V) and the R scaled copies of A one stack Ã = [A ⊙ b_1; …; A ⊙ b_R] (R·V, d), so
#
#   m = W Ã                    and its gradient     dÃ = Wᵀ dm,   dA = Σ_r dÃ_r ⊙ b_r
#
# The bags depend only on the data: they are built once per batch and shared by every embedding matrix.
# No lookup, no scatter-add: two matrix products.


class Bags(NamedTuple):
    W: np.ndarray  # (..., R·V) the R weighted bags of each sentence side by side (padding word columns are 0)
    b: np.ndarray  # (R, d) per-dimension position factors


def encode_bags(x, V, d, kind="paper", dtype=np.float64, J=None):
    """Turn sentences x (..., L) of word ids < V into weighted bags for `bag_embed_forward` (J: see pe_factors)."""
    if x.size and (x.min() < 0 or x.max() >= V):
        raise ValueError(f"word ids must lie in [0, {V}), got range [{x.min()}, {x.max()}]")
    a, b = pe_factors(x, d, kind, J)                             # (R, ..., L), (R, d)
    R, lead, L = a.shape[0], x.shape[:-1], x.shape[-1]
    S = int(np.prod(lead))                                    # number of sentences
    x2 = x.reshape(S, L)                                      # (S, L)
    keep = x2 != 0                                            # (S, L) real words
    col = np.arange(R)[:, None, None] * V + x2                # (R, S, L) column of word x in bag r
    flat = np.arange(S)[None, :, None] * (R * V) + col        # (R, S, L) flat index into W (S, R·V)
    W = np.bincount(flat[:, keep].ravel(), weights=a.reshape(R, S, L)[:, keep].ravel(),
                    minlength=S * R * V)                      # (S·R·V,)
    return Bags(W.reshape(lead + (R * V,)).astype(dtype, copy=False), b.astype(dtype))


class BagEmbedCache(NamedTuple):
    bags: Bags


def bag_embed_forward(bags, A):
    """m = W Ã with Ã = [A ⊙ b_1; …; A ⊙ b_R].  bags from `encode_bags`, A (V, d) -> m (..., d)."""
    A_stack = (A[None] * bags.b[:, None, :]).reshape(-1, A.shape[1])   # (R·V, d)
    W = bags.W
    m = (W.reshape(-1, W.shape[-1]) @ A_stack).reshape(W.shape[:-1] + (A.shape[1],))   # (..., d) one BLAS call
    return m, BagEmbedCache(bags)


def bag_embed_backward(dm, cache):
    W, b = cache.bags
    R, d = b.shape
    dA_stack = W.reshape(-1, W.shape[-1]).T @ dm.reshape(-1, d)         # (R·V, d)
    return (dA_stack.reshape(R, -1, d) * b[:, None, :]).sum(0)          # (V, d)


# ----------------------------------------------------------------------------------------------------------------
# Row lookup:  y[...] = table[idx[...]]   (an embedding lookup; its backward is a scatter-add)
#
# MemN2N uses it twice: a story's slots read the embeddings of the batch's distinct sentences (each sentence is
# embedded once however many stories hold it), and T(age) reads a row of a temporal matrix.


class LookupCache(NamedTuple):
    idx: np.ndarray  # (...) int, the row read at each position; `rows` (a zero row) where the mask was False
    rows: int        # rows of the table


def lookup_forward(table, idx, mask=None):
    """table (rows, d), idx (...) ints in [0, rows) -> y (..., d); where mask is False, y is 0."""
    rows, d = table.shape
    if mask is not None:                                      # masked positions read an extra zero row
        table = np.concatenate([table, np.zeros((1, d), table.dtype)])   # (rows + 1, d)
        idx = np.where(mask, idx, rows)                       # (...)
    y = np.take(table, idx, axis=0)                           # (..., d)
    return y, LookupCache(idx, rows)


def lookup_backward(dy, cache):
    """dtable[r] = Σ of dy over the positions that read row r: a scatter-add, as one bincount."""
    idx, rows = cache
    d = dy.shape[-1]
    flat = (idx.reshape(-1, 1) * d + np.arange(d)).ravel()    # (n·d,) flat index of table[idx, k]
    dtable = np.bincount(flat, weights=dy.reshape(-1), minlength=(rows + 1) * d)[:rows * d]   # the zero row dropped
    return dtable.reshape(rows, d).astype(dy.dtype, copy=False)


# ----------------------------------------------------------------------------------------------------------------
# Temporal encoding:  m_i ← m_i + T(i), with i the age of the sentence (0 = newest)
#
# Like the words, the ages are encoded once per batch, as a one-hot matrix E (..., rows) with E[i, age_i] = 1 on
# real slots: then T(age) = E T and dT = Eᵀ dm.  (The official code does the same by giving every age a "time
# word" of its own in the vocabulary.)


class Ages(NamedTuple):
    E: np.ndarray  # (N, M, rows) one-hot age of each real slot; all zero on padded slots


def encode_ages(age, mask, rows, dtype=np.float64):
    """age (N, M) ints in [0, rows), mask (N, M) -> Ages."""
    if age.size and (age[mask].min(initial=0) < 0 or age[mask].max(initial=0) >= rows):
        raise ValueError(f"ages must lie in [0, {rows}) (rows of T), got up to {age[mask].max()}")
    E = np.zeros(age.shape + (rows,), dtype=dtype)            # (N, M, rows)
    E.reshape(-1, rows)[np.arange(age.size), np.where(mask, age, 0).ravel()] = mask.ravel()
    return Ages(E)


class TemporalCache(NamedTuple):
    ages: Ages


def temporal_forward(m, T, ages):
    """m (N, M, d) + T(age) on real slots; padded slots are left untouched."""
    if ages.E.shape[-1] != T.shape[0]:
        raise ValueError(f"ages were encoded for {ages.E.shape[-1]} rows but T has {T.shape[0]}")
    E = ages.E
    out = m + (E.reshape(-1, E.shape[-1]) @ T).reshape(m.shape)   # (N, M, d) one BLAS call, not N small ones
    return out, TemporalCache(ages)


def temporal_backward(dout, cache):
    E = cache.ages.E
    dT = E.reshape(-1, E.shape[-1]).T @ dout.reshape(-1, dout.shape[-1])   # (rows, d)
    return dout, dT


# ----------------------------------------------------------------------------------------------------------------
# Masked softmax over memory slots: padded slots get exactly zero weight


class SoftmaxCache(NamedTuple):
    p: np.ndarray  # (..., M) the probabilities


def masked_softmax_forward(s, mask=None):
    """p_i = exp(s_i) / Σ_{valid j} exp(s_j) on valid slots, exactly 0 elsewhere; a row with no valid slot is 0.

    mask None: every slot is valid (the plain softmax, without the masking work)."""
    if mask is None:
        e = np.exp(s - s.max(-1, keepdims=True))              # (..., M) ≤ 1, never overflows
        p = e / e.sum(-1, keepdims=True)                      # (..., M)
        return p, SoftmaxCache(p)
    z = np.where(mask, s, -np.inf)                            # (..., M)
    zmax = z.max(-1, keepdims=True)                           # (..., 1)
    zmax = np.where(np.isfinite(zmax), zmax, 0.0)             # an all-padded row has no max
    e = np.where(mask, np.exp(np.where(mask, s - zmax, 0.0)), 0.0)  # (..., M) ≤ 1, never overflows
    total = e.sum(-1, keepdims=True)                          # (..., 1)
    p = e / np.where(total > 0, total, 1.0)                   # (..., M)
    return p, SoftmaxCache(p)


def masked_softmax_backward(dp, cache):
    p = cache.p
    return p * (dp - (p * dp).sum(-1, keepdims=True))         # (..., M) Jacobian diag(p) − p pᵀ applied to dp


# ----------------------------------------------------------------------------------------------------------------
# Soft attention read (one memory hop):  p = softmax(uᵀ m_i),  o = Σ_i p_i c_i


class AttentionCache(NamedTuple):
    u: np.ndarray     # (N, d) controller state
    m: np.ndarray     # (N, M, d) input memory (keys)
    c: np.ndarray     # (N, M, d) output memory (values)
    mask: Optional[np.ndarray]  # (N, M) bool, real slots (None: every slot)
    p: np.ndarray     # (N, M) attention
    linear: bool      # linear start: p = masked scores, no softmax


def attention_read_forward(u, m, c, mask, linear=False):
    """o = Σ_i p_i c_i with p = masked softmax(uᵀ m_i); with linear=True (linear start) p = masked uᵀ m_i.

    mask (N, M) bool, or None when every slot may be attended."""
    s = (m @ u[..., None])[..., 0]                            # (N, M) scores uᵀ m_i
    if linear:
        p = s if mask is None else s * mask                   # (N, M)
    else:
        p, _ = masked_softmax_forward(s, mask)                # (N, M)
    o = (p[:, None, :] @ c)[:, 0, :]                          # (N, d)
    return o, AttentionCache(u, m, c, mask, p, linear)


def attention_read_backward(do, cache):
    u, m, c, mask, p, linear = cache
    dp = (c @ do[..., None])[..., 0]                          # (N, M) ∂o/∂p_i = c_i
    dc = p[..., None] * do[:, None, :]                        # (N, M, d)
    if linear:
        ds = dp if mask is None else dp * mask                # (N, M)
    else:
        ds = masked_softmax_backward(dp, SoftmaxCache(p))     # (N, M)
    du = (ds[:, None, :] @ m)[:, 0, :]                        # (N, d)
    dm = ds[..., None] * u[:, None, :]                        # (N, M, d)
    return du, dm, dc


def attention_read_backward_factored(do, cache):
    """attention_read_backward with dm and dc left as the outer products they are: dm_i = ds_i u, dc_i = p_i do.

    Returns du (N, d), (ds (N, M), u (N, d)) and (p (N, M), do (N, d)); the (N, M, d) gradients are never built.
    A memory made of embedded sentences can then sum its gradient per sentence as one small matrix product
    (`per_row_sums`), instead of writing out and scattering N·M·d numbers.
    """
    u, m, c, mask, p, linear = cache
    dp = (c @ do[..., None])[..., 0]                          # (N, M) ∂o/∂p_i = c_i
    if linear:
        ds = dp if mask is None else dp * mask                # (N, M)
    else:
        ds = masked_softmax_backward(dp, SoftmaxCache(p))     # (N, M)
    du = (ds[:, None, :] @ m)[:, 0, :]                        # (N, d)
    return du, (ds, u), (p, do)


def per_row_sums(coef, idx, rows, mask=None):
    """G (N, rows) with G[n, r] = Σ_i coef[n, i] over the slots i of example n that read row r (and are in mask).

    For a memory m_i = table[idx_i] with gradient dm_i = coef_i · v_n (an outer product, see
    `attention_read_backward_factored`), the table's gradient is Gᵀ v: one (rows, N) × (N, d) product.
    coef and idx (N, M); a stack of several uses (P, N, M) gives G (P·N, rows), to be multiplied by the P
    vectors stacked (P·N, d).
    """
    N, M = idx.shape
    coef = coef.reshape(-1, N, M)                             # (P, N, M)
    if mask is not None:
        coef = coef * mask                                    # (P, N, M) masked slots read nothing
    flat = np.arange(coef.shape[0] * N).reshape(-1, N, 1) * rows + idx          # (P, N, M) flat index into G
    G = np.bincount(flat.ravel(), weights=coef.ravel(), minlength=coef.shape[0] * N * rows)   # (P·N·rows,)
    return G.reshape(-1, rows).astype(coef.dtype, copy=False)                   # (P·N, rows)


# ----------------------------------------------------------------------------------------------------------------
# Softmax cross-entropy over classes (the answer softmax â = softmax(W(o + u)))


class CrossEntropyCache(NamedTuple):
    probs: np.ndarray  # (N, V)
    y: np.ndarray      # (N,) target classes
    scale: float       # 1 for a summed loss, 1/N for a mean


def softmax_cross_entropy_forward(logits, y, reduction="sum"):
    """loss = −Σ_n log softmax(logits_n)[y_n] (or its mean). Returns (loss, cache); cache.probs is â."""
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    N = logits.shape[0]
    if y.shape != (N,):
        raise ValueError(f"targets must have shape ({N},), got {y.shape}")
    z = logits - logits.max(-1, keepdims=True)                # (N, V) shifted: exp never overflows
    logsum = np.log(np.exp(z).sum(-1, keepdims=True))         # (N, 1)
    logp = z - logsum                                         # (N, V) log-softmax
    scale = 1.0 if reduction == "sum" else 1.0 / max(N, 1)
    loss = -float(logp[np.arange(N), y].sum()) * scale
    return loss, CrossEntropyCache(np.exp(logp), y, scale)


def softmax_cross_entropy_backward(dloss, cache):
    probs, y, scale = cache
    dlogits = probs.copy()                                    # (N, V) ∂/∂logits = â − onehot(y)
    dlogits[np.arange(len(y)), y] -= 1.0
    return dlogits * (scale * dloss)                          # (N, V)


# ----------------------------------------------------------------------------------------------------------------
# LSTM cell (one time step), gates in the order i, f, o, g (Hochreiter & Schmidhuber 1997, with forget gate):
#
#   z = x Wxᵀ + h_prev Whᵀ + b            (N, 4H)   Wx (4H, D), Wh (4H, H): (out, in), as linear_forward
#   i = σ(z_i)  f = σ(z_f)  o = σ(z_o)  g = tanh(z_g)
#   c = f ⊙ c_prev + i ⊙ g                (N, H)
#   h = o ⊙ tanh(c)                       (N, H)
#
# Backward, the same lines upside down: dc gathers the direct gradient and the one through h; each gate's
# pre-activation gradient is its output gradient times its activation's derivative; then three matrix products.


class LSTMCache(NamedTuple):
    x: np.ndarray       # (N, D) input
    h_prev: np.ndarray  # (N, H)
    c_prev: np.ndarray  # (N, H)
    Wx: np.ndarray      # (4H, D)
    Wh: np.ndarray      # (4H, H)
    gates: np.ndarray   # (N, 4H) [i, f, o, g] after their activations
    tc: np.ndarray      # (N, H) tanh(c)


def lstm_forward(x, h_prev, c_prev, Wx, Wh, b):
    """One LSTM step. x (N, D), h_prev and c_prev (N, H), Wx (4H, D), Wh (4H, H), b (4H,) -> ((h, c), cache)."""
    H = h_prev.shape[-1]
    if Wx.shape != (4 * H, x.shape[-1]) or Wh.shape != (4 * H, H) or b.shape != (4 * H,):
        raise ValueError(f"LSTM weights must be Wx (4H, D) = {(4 * H, x.shape[-1])}, Wh (4H, H) = {(4 * H, H)}, "
                         f"b (4H,); got Wx {Wx.shape}, Wh {Wh.shape}, b {b.shape}")
    z = x @ Wx.T + h_prev @ Wh.T + b                          # (N, 4H) pre-activations
    gates = np.empty_like(z)                                  # (N, 4H)
    gates[:, :3 * H] = 0.5 + 0.5 * np.tanh(0.5 * z[:, :3 * H])   # i, f, o: σ(z) = (1 + tanh(z/2)) / 2, never overflows
    gates[:, 3 * H:] = np.tanh(z[:, 3 * H:])                  # g
    i, f, o, g = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    c = f * c_prev + i * g                                    # (N, H)
    tc = np.tanh(c)                                           # (N, H)
    h = o * tc                                                # (N, H)
    return (h, c), LSTMCache(x, h_prev, c_prev, Wx, Wh, gates, tc)


def lstm_backward(dh, dc, cache):
    """dh, dc (N, H): gradients of h and c (dc may be None) -> dx, dh_prev, dc_prev, dWx, dWh, db."""
    dz, dc_prev = lstm_preactivation_backward(dh, dc, cache)   # (N, 4H), (N, H)
    x, h_prev, Wx, Wh = cache.x, cache.h_prev, cache.Wx, cache.Wh
    dx = dz @ Wx                                              # (N, D)
    dh_prev = dz @ Wh                                         # (N, H)
    dWx = dz.T @ x                                            # (4H, D)
    dWh = dz.T @ h_prev                                       # (4H, H)
    db = dz.sum(0)                                            # (4H,)
    return dx, dh_prev, dc_prev, dWx, dWh, db


def lstm_preactivation_backward(dh, dc, cache):
    """The first half of lstm_backward: dz (N, 4H), the gradient of the pre-activations, and dc_prev (N, H).

    A recurrent model can keep dz of every step and form the weight gradients Σ_t dz_tᵀ x_t once, as one product.
    """
    x, h_prev, c_prev, Wx, Wh, gates, tc = cache
    H = h_prev.shape[-1]
    i, f, o, g = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    dc = dh * o * (1.0 - tc * tc) + (0.0 if dc is None else dc)   # (N, H) h = o ⊙ tanh(c), plus the direct path
    dgates = np.empty_like(gates)                             # (N, 4H) gradients of the gate outputs ...
    dgates[:, :H] = dc * g                                    # di
    dgates[:, H:2 * H] = dc * c_prev                          # df
    dgates[:, 2 * H:3 * H] = dh * tc                          # do
    dgates[:, 3 * H:] = dc * i                                # dg
    dz = np.empty_like(gates)                                 # (N, 4H) ... and of the pre-activations
    dz[:, :3 * H] = dgates[:, :3 * H] * gates[:, :3 * H] * (1.0 - gates[:, :3 * H])   # σ' = σ(1 − σ)
    dz[:, 3 * H:] = dgates[:, 3 * H:] * (1.0 - g * g)         # tanh' = 1 − tanh²
    dc_prev = dc * f                                          # (N, H)
    return dz, dc_prev


# ----------------------------------------------------------------------------------------------------------------
# GRU cell (Cho et al. 2014), in the convention of the DMN+ paper (Xiong et al. 2016, eqs 1–4):
#
#   r  = σ(W_r x + U_r h_prev + b_r)              reset gate
#   h̃  = tanh(W_h x + r ⊙ (U_h h_prev) + b_h)     candidate
#   u  = σ(W_u x + U_u h_prev + b_u)              update gate
#   h  = a ⊙ h̃ + (1 − a) ⊙ h_prev                 with a = u          THE UPDATE GATE WEIGHTS THE CANDIDATE
#
# Kumar et al. write the same cell with z = 1 − u weighting the old state; we keep u on the candidate everywhere.
# Stacked weights, rows in the order [r, h̃, u]: Wx (3H, D), Wh (3H, H), b (3H,), as linear_forward (out, in).
#
# Two gated forms share the cell through an outside gate g (N,), one number per example:
#   DMN episode    h = g GRU(x, h_prev) + (1 − g) h_prev   =  the cell with a = g u          (3H weights)
#   attention GRU  h = g h̃ + (1 − g) h_prev              =  the cell with a = g, no u     (2H weights [r, h̃])
# The number of weight rows says which: 3H has an update gate, 2H has none (then g is required).
# A sequence's padded steps multiply g by 0: a = 0, so h = h_prev exactly and no gradient flows into that step.


class GRUCache(NamedTuple):
    x: np.ndarray            # (N, D) input
    h_prev: np.ndarray       # (N, H)
    Wx: np.ndarray           # (3H or 2H, D)
    Wh: np.ndarray           # (3H or 2H, H)
    g: Optional[np.ndarray]  # (N,) outside gate, or None
    r: np.ndarray            # (N, H) reset gate
    hh: np.ndarray           # (N, H) candidate h̃
    u: Optional[np.ndarray]  # (N, H) update gate, None for the attention GRU
    a: np.ndarray            # (N, H) the weight of the candidate
    Uh: np.ndarray           # (N, H) U_h h_prev (what the reset gate scales)


def _gru_check(x, h_prev, Wx, Wh, b, g):
    H = h_prev.shape[-1]
    if Wh.shape not in ((3 * H, H), (2 * H, H)) or Wx.shape != (Wh.shape[0], x.shape[-1]) or b.shape != (Wh.shape[0],):
        raise ValueError(f"GRU weights must be Wx (3H, D), Wh (3H, H), b (3H,) (or 2H rows for the attention GRU) "
                         f"with H = {H}, D = {x.shape[-1]}; got Wx {Wx.shape}, Wh {Wh.shape}, b {b.shape}")
    _gate_check(Wh, H, g)


def _gate_check(Wh, H, g):
    if Wh.shape[0] == 2 * H and g is None:
        raise ValueError("a GRU without update-gate weights (2H rows) is the attention GRU: it needs the gate g")


def _gru_step(xw, h_prev, Wh, g):
    """The cell from the input projection xw = x Wxᵀ + b (N, 3H or 2H). Returns (h, pieces for the cache)."""
    H = h_prev.shape[-1]
    hw = h_prev @ Wh.T                                        # (N, 3H or 2H) U h_prev, all gates at once
    r = 0.5 + 0.5 * np.tanh(0.5 * (xw[:, :H] + hw[:, :H]))   # (N, H) σ, written so it never overflows
    Uh = hw[:, H:2 * H]                                       # (N, H)
    hh = np.tanh(xw[:, H:2 * H] + r * Uh)                     # (N, H) candidate h̃
    u = None
    if Wh.shape[0] == 3 * H:
        u = 0.5 + 0.5 * np.tanh(0.5 * (xw[:, 2 * H:] + hw[:, 2 * H:]))   # (N, H) update gate
        a = u if g is None else g[:, None] * u                # (N, H)
    else:
        a = np.broadcast_to(g[:, None], h_prev.shape)         # (N, H) attention GRU: a = g
    h = h_prev + a * (hh - h_prev)                            # (N, H) = a h̃ + (1 − a) h_prev
    return h, (r, hh, u, a, Uh)


def _gru_step_backward(dh, h_prev, Wh, g, r, hh, u, a, Uh):
    """dh (N, H) -> dxw (N, 3H or 2H) (the gradient of x Wxᵀ + b), dh_prev (N, H) without the U path, dhw, dg."""
    H = h_prev.shape[-1]
    dhh = dh * a                                              # (N, H) h = h_prev + a (h̃ − h_prev)
    da = dh * (hh - h_prev)                                   # (N, H)
    dh_prev = dh - dh * a                                     # (N, H) the direct path (1 − a)
    dxw = np.empty((dh.shape[0], Wh.shape[0]), dh.dtype)      # (N, 3H or 2H)
    dhw = np.empty_like(dxw)                                  # (N, 3H or 2H)
    dc = dhh * (1.0 - hh * hh)                                # (N, H) through tanh
    dxw[:, H:2 * H] = dc
    dhw[:, H:2 * H] = dc * r                                  # h̃ = tanh(… + r ⊙ U_h h_prev)
    dxw[:, :H] = dhw[:, :H] = dc * Uh * r * (1.0 - r)         # through r = σ(·)
    if u is not None:
        du = da if g is None else da * g[:, None]             # (N, H) a = g u
        dxw[:, 2 * H:] = dhw[:, 2 * H:] = du * u * (1.0 - u)  # through u = σ(·)
        dg = None if g is None else (da * u).sum(-1)          # (N,)
    else:
        dg = da.sum(-1)                                       # (N,) a = g on every unit
    return dxw, dh_prev, dhw, dg


def gru_forward(x, h_prev, Wx, Wh, b, g=None):
    """One GRU step (convention above). x (N, D), h_prev (N, H), g (N,) or None -> (h (N, H), cache)."""
    _gru_check(x, h_prev, Wx, Wh, b, g)
    xw = x @ Wx.T + b                                         # (N, 3H or 2H)
    h, (r, hh, u, a, Uh) = _gru_step(xw, h_prev, Wh, g)
    return h, GRUCache(x, h_prev, Wx, Wh, g, r, hh, u, a, Uh)


def gru_backward(dh, cache):
    """-> dx (N, D), dh_prev (N, H), dWx, dWh, db, dg (N,) (None when the forward had no g)."""
    x, h_prev, Wx, Wh, g, r, hh, u, a, Uh = cache
    dxw, dh_prev, dhw, dg = _gru_step_backward(dh, h_prev, Wh, g, r, hh, u, a, Uh)
    dh_prev = dh_prev + dhw @ Wh                              # (N, H) through U h_prev
    return dxw @ Wx, dh_prev, dxw.T @ x, dhw.T @ h_prev, dxw.sum(0), dg


# A GRU over a padded batch of sequences: x (N, T, D), mask (N, T) True on real steps, in two halves. The input
# projection x Wxᵀ + b of every step is one product (gru_projection_*); the recurrence (gru_recurrence_*) then
# runs step by step, where only U h_prev is per step, and its weight gradient is one product after the loop.
# A caller that runs several recurrences over the same inputs and weights (the DMN's passes over the facts)
# projects once and sums the projection's gradients before one backward product. Padded steps (anywhere: a
# reversed left-aligned batch starts with them) leave the state unchanged. Inside, arrays are time-major
# (T, N, ·), so that each step reads and writes one contiguous block.


class GRUProjectionCache(NamedTuple):
    x: np.ndarray            # (N, T, D)
    Wx: np.ndarray           # (3H or 2H, D)
    mask: Optional[np.ndarray]  # (N, T) bool, the steps projected (None: all)


def gru_projection_forward(x, Wx, b, mask=None):
    """(xw, cache): xw (T, N, 3H or 2H) = x Wxᵀ + b for every step at once, time-major. x (N, T, D).

    With mask (N, T) only the real steps are projected and a padded step's xw is 0: the recurrence never lets a
    padded step touch the state or pass a gradient, so what xw holds there does not matter, and skipping it
    spares the products their padded rows."""
    if x.ndim != 3 or Wx.ndim != 2 or Wx.shape[1] != x.shape[-1] or b.shape != (Wx.shape[0],):
        raise ValueError(f"GRU input projection needs x (N, T, D), Wx (rows, D), b (rows,); got x {x.shape}, "
                         f"Wx {Wx.shape}, b {b.shape}")
    xt = x.transpose(1, 0, 2)                                 # (T, N, D) time-major view
    if mask is None:
        return xt @ Wx.T + b, GRUProjectionCache(x, Wx, None)   # (T, N, rows)
    if mask.shape != x.shape[:2]:
        raise ValueError(f"GRU mask must have shape {x.shape[:2]}, got {mask.shape}")
    on = mask.T                                               # (T, N)
    xw = np.zeros(on.shape + (Wx.shape[0],), np.result_type(x, Wx))   # (T, N, rows)
    xw[on] = xt[on] @ Wx.T + b                                # (R, rows) the real steps
    return xw, GRUProjectionCache(x, Wx, mask)


def gru_projection_backward(dxw, cache: GRUProjectionCache):
    """dxw (T, N, rows), the gradient of xw -> dx (N, T, D), dWx (rows, D), db (rows,). With the forward's mask,
    the padded steps (whose dxw the recurrence leaves at 0) are skipped, and their dx is 0."""
    x, Wx, mask = cache
    rows = dxw.shape[-1]
    if mask is None:
        dx = (dxw @ Wx).transpose(1, 0, 2)                    # (N, T, D)
        dWx = dxw.reshape(-1, rows).T @ x.transpose(1, 0, 2).reshape(-1, x.shape[-1])   # (rows, D)
        return dx, dWx, dxw.reshape(-1, rows).sum(0)
    on = mask.T                                               # (T, N)
    dxr = dxw[on]                                             # (R, rows)
    dxt = np.zeros(on.shape + (x.shape[-1],), dxr.dtype)      # (T, N, D)
    dxt[on] = dxr @ Wx
    return dxt.transpose(1, 0, 2), dxr.T @ x.transpose(1, 0, 2)[on], dxr.sum(0)


class GRURecurrenceCache(NamedTuple):
    Wh: np.ndarray           # (3H or 2H, H)
    gm: Optional[np.ndarray]  # (T, N) the outside gate times the mask (None: neither)
    hs: np.ndarray           # (T + 1, N, H) h_0 … h_T, time-major
    r: np.ndarray            # (T, N, H)
    hh: np.ndarray           # (T, N, H)
    u: Optional[np.ndarray]  # (T, N, H)
    a: np.ndarray            # (T, N, H)
    Uh: np.ndarray           # (T, N, H)
    has_g: bool
    mask: Optional[np.ndarray]  # (N, T) bool, or None


def gru_recurrence_forward(xw, h0, Wh, mask=None, g=None):
    """hs (N, T, H): the state after every step, from the input projection xw (T, N, 3H or 2H)."""
    T, N, rows = xw.shape
    H = h0.shape[-1]
    if Wh.shape not in ((3 * H, H), (2 * H, H)) or rows != Wh.shape[0] or h0.shape != (N, H):
        raise ValueError(f"GRU recurrence needs xw (T, N, rows), h0 (N, H), Wh (rows, H) with rows 3H or 2H; got "
                         f"xw {xw.shape}, h0 {h0.shape}, Wh {Wh.shape}")
    _gate_check(Wh, H, g)
    if mask is not None and mask.shape != (N, T):
        raise ValueError(f"GRU mask must have shape {(N, T)}, got {mask.shape}")
    if g is not None and g.shape != (N, T):
        raise ValueError(f"GRU gate g must have shape {(N, T)}, got {g.shape}")
    gm = None if g is None else g.T                           # (T, N)
    if mask is not None:
        gm = mask.T.astype(xw.dtype) if g is None else (g * mask).T   # (T, N) padded steps: a = 0
    if gm is not None:
        gm = np.ascontiguousarray(gm)
    hs = np.empty((T + 1, N, H), dtype=np.result_type(xw, h0, Wh))   # (T + 1, N, H)
    hs[0] = h0
    parts = [np.empty((T, N, H), hs.dtype) for _ in range(5)]  # r, h̃, u, a, U_h h_prev per step
    for t in range(T):
        h, pieces = _gru_step(xw[t], hs[t], Wh, None if gm is None else gm[t])
        hs[t + 1] = h
        for store, p in zip(parts, pieces):
            if p is not None:
                store[t] = p
    r, hh, u, a, Uh = parts
    u = u if Wh.shape[0] == 3 * H else None
    return hs[1:].transpose(1, 0, 2), GRURecurrenceCache(Wh, gm, hs, r, hh, u, a, Uh, g is not None, mask)


def gru_recurrence_backward(dhs, cache):
    """dhs (N, T, H): the gradient of every step's state. -> dxw (T, N, rows), dh0, dWh, dg (N, T) or None."""
    Wh, gm, hs, r, hh, u, a, Uh, has_g, mask = cache
    N, T, H = dhs.shape
    dhs = np.ascontiguousarray(dhs.transpose(1, 0, 2))        # (T, N, H)
    dxw = np.empty((T, N, Wh.shape[0]), dhs.dtype)            # (T, N, 3H or 2H)
    dhw = np.empty_like(dxw)                                  # (T, N, 3H or 2H)
    dg = np.zeros((T, N), dhs.dtype) if has_g else None       # (T, N) (2H rows always have g)
    dh = np.zeros((N, H), dhs.dtype)                          # (N, H) from the later steps
    for t in reversed(range(T)):
        dh = dh + dhs[t]
        dxw[t], dh_prev, dhw[t], dg_t = _gru_step_backward(
            dh, hs[t], Wh, None if gm is None else gm[t], r[t], hh[t], None if u is None else u[t], a[t], Uh[t])
        dh = dh_prev + dhw[t] @ Wh                            # (N, H)
        if dg is not None and dg_t is not None:
            dg[t] = dg_t
    if dg is not None:
        dg = dg.T if mask is None else dg.T * mask            # (N, T) gm = g · mask
    if mask is None:
        dWh = dhw.reshape(-1, dhw.shape[-1]).T @ hs[:-1].reshape(-1, H)   # (3H, H)
    else:                                                     # padded steps' dhw is 0: the real ones alone
        dWh = dhw[mask.T].T @ hs[:-1][mask.T]                 # (3H, H)
    return dxw, dh, dWh, dg


class GRUSequenceCache(NamedTuple):
    projection: GRUProjectionCache
    recurrence: GRURecurrenceCache


def gru_sequence_forward(x, h0, Wx, Wh, b, mask=None, g=None):
    """hs (N, T, H): the state after every step. mask (N, T) bool (None: every step real), g (N, T) or None."""
    _gru_check(x, h0, Wx, Wh, b, g)
    xw, proj = gru_projection_forward(x, Wx, b, mask)         # (T, N, rows); checks the mask's shape
    hs, rec = gru_recurrence_forward(xw, h0, Wh, mask, g)
    return hs, GRUSequenceCache(proj, rec)


def gru_sequence_backward(dhs, cache):
    """dhs (N, T, H): the gradient of every step's state. -> dx, dh0, dWx, dWh, db, dg (N, T) or None."""
    dxw, dh0, dWh, dg = gru_recurrence_backward(dhs, cache.recurrence)
    dx, dWx, db = gru_projection_backward(dxw, cache.projection)
    return dx, dh0, dWx, dWh, db, dg
