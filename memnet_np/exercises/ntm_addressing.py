"""Exercise 4: the backward of an NTM head's addressing — content (cosine similarity with key strength β),
circular shift, sharpening (Graves et al. 2014 §3.3, eqs. 5, 6, 8, 9)."""
from __future__ import annotations

import numpy as np

from memnet_np.exercises.attention import _matching
from memnet_np.exercises.grader import Exercise, forward_backward_target, register
from memnet_np.ntm import addressing as A

# ----------------------------------------------------------------------------------------------------------------
# Exercise 4: the three addressing stages with a backward worth writing (interpolation is a weighted sum)
#
#   content     K(i) = k·M(i) / (‖k‖_ε ‖M(i)‖_ε)     w^c = softmax(β K)
#   shift       w̃(i) = Σ_δ s(δ) w^g(i − δ mod M)      a positive δ moves weight to higher slots
#   sharpening  w(i) = w̃(i)^γ / Σ_j w̃(j)^γ
#
# Each backward gets the cache of the learner's own forward (the stub's). The library's versions are
# memnet_np.ntm.addressing.*_forward / *_backward.


def _addressing_cases(rng: np.random.Generator) -> list:
    """Three float64 cases: (N, Hh, M, d, r) non-square, shift ranges 1 and 2, keys tanh-squashed as the model's,
    β in [0.5, 4], memories with rows of different norms, weightings strictly inside the simplex and far from
    uniform (w̃ at least 0.3 / M everywhere), γ in [1, 3]. Everything is smooth there: finite differences see the same function as the backward."""
    def simplex(shape, scale=1.2):
        z = rng.standard_normal(shape) * scale
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)                     # (..., M) positive, rows sum to 1
    cases = []
    for N, Hh, M, d, r in [(2, 1, 7, 3, 1), (3, 2, 6, 4, 2), (2, 3, 9, 5, 1)]:
        S = 2 * r + 1
        mem = rng.standard_normal((N, M, d)) * rng.uniform(0.3, 2.0, (N, M, 1))   # (N, M, d)
        cases.append(dict(
            mask=None, r=r,
            k=np.tanh(rng.standard_normal((N, Hh, d))),         # (N, Hh, d)
            beta=rng.uniform(0.5, 4.0, (N, Hh)),                # (N, Hh)
            mem=mem,
            wg=simplex((N, Hh, M)),                             # (N, Hh, M)
            s=simplex((N, Hh, S), scale=1.0),                   # (N, Hh, S)
            ws=0.7 * simplex((N, Hh, M)) + 0.3 / M,             # (N, Hh, M) no entry tiny: log w̃ is curved there
            gamma=rng.uniform(1.0, 3.0, (N, Hh)),               # (N, Hh)
        ))
    return cases


def _describe(case: dict) -> str:
    N, Hh, d = case["k"].shape
    M, S = case["mem"].shape[1], case["s"].shape[-1]
    return f"(N, Hh, M, d) = ({N}, {Hh}, {M}, {d}), shifts −{case['r']}..+{case['r']} (S = {S})"


# ---------------------------------------------------------------------------------------------------------------
# The usual mistakes, each a wrong formula the grader computes too


def _content_notes(gname, yours, expected, dw, cache, case) -> list:
    k, mem, nk, nm, K, beta, w = cache
    dz = w * (dw - (w * dw).sum(-1, keepdims=True))             # (N, Hh, M) through the softmax
    dK = dz * beta[:, :, None]                                  # (N, Hh, M)
    ddot = dK / (nk[:, :, None] * nm[:, None, :])               # (N, Hh, M)
    why_norms = ("the cosine's norm terms are missing: ‖k‖ and ‖M(i)‖ depend on k and M(i) too, so besides "
                 "∂(k·M(i))/∂k / (‖k‖‖M(i)‖) there is −K(i) k / ‖k‖² (and −K(i) M(i) / ‖M(i)‖² for dmem)")
    why_dot = ("it differentiates K as the plain dot product k·M(i): K = k·M(i) / (‖k‖ ‖M(i)‖) divides by both "
               "norms, and the norms depend on k and M(i) as well")
    if gname == "dk":
        candidates = [(ddot @ mem, why_norms), (dK @ mem, why_dot)]
    elif gname == "dmem":
        candidates = [(np.einsum("nhm,nhd->nmd", ddot, k), why_norms), (np.einsum("nhm,nhd->nmd", dK, k), why_dot)]
    elif gname == "dbeta":
        candidates = [((w * dw * K).sum(-1), "the softmax's second term is missing: ∂w^c_j/∂z_i = w_j (δ_ij − w_i), "
                                             "so dz = w ⊙ (dw − Σ_j w_j dw_j)")]
    else:
        candidates = []
    return [f"yours looks like a known mistake: {why}" for why in _matching(yours, expected, candidates)]


def _shift_notes(gname, yours, expected, dws, cache, case) -> list:
    s, shifted = cache
    M, S = dws.shape[-1], s.shape[-1]
    forward_idx, back_idx = A.shift_index(M, S, 1), A.shift_index(M, S, -1)   # (S, M) each
    wg = shifted[:, :, (S - 1) // 2]                            # (N, Hh, M) the unshifted w^g (δ = 0)
    why = ("the shift runs the wrong way: w̃(i) = Σ_δ s(δ) w^g(i − δ), so w^g(j) reaches w̃(j + δ), and "
           "dw^g(j) = Σ_δ s(δ) dw̃(j + δ) (the backward of a shift is the shift the other way)")
    if gname == "dwg":
        candidates = [((s[:, :, None, :] @ dws[..., forward_idx])[:, :, 0, :], why)]   # dw̃(j − δ): reversed
    elif gname == "ds":
        candidates = [((wg[..., back_idx] @ dws[..., None])[..., 0],
                       "ds(δ) pairs dw̃ with w^g moved the wrong way: ds(δ) = Σ_i dw̃(i) w^g(i − δ)")]
    else:
        candidates = []
    return [f"yours looks like a known mistake: {w}" for w in _matching(yours, expected, candidates)]


def _sharpen_notes(gname, yours, expected, dw, cache, case) -> list:
    ws, lw, gamma, w = cache
    g = gamma[:, :, None]                                       # (N, Hh, 1)
    dz_kept = w * dw                                            # (N, Hh, M) the normalisation's term dropped
    why_z = ("the normalisation is forgotten: Σ_j w̃(j)^γ depends on every w̃(j) and on γ, so w = softmax(γ log w̃) "
             "and dz = w ⊙ (dw − Σ_j w_j dw_j), not w ⊙ dw")
    why_pow = ("it differentiates w̃^γ alone, as if there were no division by Σ_j w̃(j)^γ: the normalisation "
               "contributes to every w̃(j) and to γ")
    if gname == "dws":
        candidates = [(g * dz_kept / ws, why_z), (g * ws ** (g - 1) * dw, why_pow)]
    elif gname == "dgamma":
        candidates = [((dz_kept * lw).sum(-1), why_z), ((ws ** g * lw * dw).sum(-1), why_pow)]
    else:
        candidates = []
    return [f"yours looks like a known mistake: {why}" for why in _matching(yours, expected, candidates)]


# the learner's <stage>_backward(d<output>, cache) -> d<input> for each input, on its own <stage>_forward's cache
_CONTENT = forward_backward_target("content", "dw", A.content_forward, A.content_backward, wrt=("k", "beta", "mem"),
                                   notes=_content_notes)
_SHIFT = forward_backward_target("shift", "dws", A.shift_forward, A.shift_backward, wrt=("wg", "s"),
                                 notes=_shift_notes)
_SHARPEN = forward_backward_target("sharpen", "dw", A.sharpen_forward, A.sharpen_backward, wrt=("ws", "gamma"),
                                   notes=_sharpen_notes)

EXERCISE = register(Exercise(
    name="ntm_addressing_backward",
    title="the backward of an NTM head's addressing: content (cosine similarity, key strength β), circular "
          "shift, sharpening",
    stub="tutorials/exercises/04_ntm_addressing_backward.py",
    solution="tutorials/exercises/solutions/04_ntm_addressing_backward.py",
    targets=(_CONTENT, _SHIFT, _SHARPEN),
    make_cases=_addressing_cases,
    describe_case=_describe,
))
