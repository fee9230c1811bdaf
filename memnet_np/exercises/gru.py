"""Exercise 5: the DMN's two cells by hand — the backward of one GRU step with the episode gate
(h = a ⊙ h̃ + (1 − a) ⊙ h_prev, a = g u), and of the gate features z(c, m, q)."""
from __future__ import annotations

import numpy as np

from memnet_np import dmn, ops
from memnet_np.exercises.attention import _matching
from memnet_np.exercises.grader import Exercise, forward_backward_target, register

# ----------------------------------------------------------------------------------------------------------------
# Exercise 5: one GRU step in the convention of memnet_np.ops (the update gate u weights the candidate), with the
# outside gate g (N,) of the DMN's episodes:
#
#   r = σ(W_r x + U_r h_prev + b_r)     h̃ = tanh(W_h x + r ⊙ (U_h h_prev) + b_h)     u = σ(W_u x + U_u h_prev + b_u)
#   a = g u                              h = a ⊙ h̃ + (1 − a) ⊙ h_prev
#
# Stacked weights, rows [r, h̃, u]: Wx (3H, D), Wh (3H, H), b (3H,). The learner's gru_backward gets the cache of
# the learner's own gru_forward (the stub's) and may not call the library's GRU backwards.

GRU_FORBIDDEN = ("gru_backward", "gru_sequence_backward")


def _gru_cases(rng: np.random.Generator) -> list:
    """Three float64 cases. (N, D, H) non-square so a transposed gradient shows as a wrong shape, except case 2
    (D == H) where it shows only in the values. Weights of size ~0.5 keep the gates away from saturation (where
    σ' and tanh' vanish and a missing factor would hide); g in (0.1, 0.95), so neither a nor 1 − a is 0 or 1."""
    cases = []
    for N, D, H in [(3, 5, 4), (2, 4, 4), (4, 2, 3)]:
        cases.append(dict(
            x=rng.standard_normal((N, D)),                    # (N, D)
            h_prev=0.8 * rng.standard_normal((N, H)),         # (N, H)
            Wx=0.5 * rng.standard_normal((3 * H, D)),         # (3H, D)
            Wh=0.5 * rng.standard_normal((3 * H, H)),         # (3H, H)
            b=0.2 * rng.standard_normal(3 * H),               # (3H,)
            g=rng.uniform(0.1, 0.95, N),                      # (N,)
        ))
    return cases


def _describe_gru_case(case: dict) -> str:
    N, D = case["x"].shape
    return f"(N, D, H) = ({N}, {D}, {case['h_prev'].shape[1]})"


# The usual mistakes, each a whole backward of its own (written here from the equations above, not through
# memnet_np.ops), so the checker can say which one a wrong gradient is.
MISTAKES = {
    "reset": "the path through the reset gate is missing: h̃ = tanh(W_h x + r ⊙ (U_h h_prev) + b_h) depends on r, "
             "so the r rows get (dpre_h̃ ⊙ U_h h_prev) ⊙ r (1 − r), and they reach dx, dh_prev, dWx, dWh and db",
    "swap": "u and 1 − u are swapped: in this convention the update gate weights the candidate, "
            "h = a ⊙ h̃ + (1 − a) ⊙ h_prev with a = g u (Kumar et al. write z = 1 − u, on h_prev: the same cell "
            "the other way round), so dh̃ = a ⊙ dh and the direct share of dh_prev is (1 − a) ⊙ dh",
    "direct": "dh_prev is only the gates' share (the pre-activations' gradients times Wh): h = … + (1 − a) ⊙ h_prev "
              "also hands (1 − a) ⊙ dh straight to h_prev",
    "recurrent": "dh_prev has only the direct path (1 − a) ⊙ dh: h_prev also feeds every gate through U h_prev, so "
                 "add the pre-activations' gradients times Wh (with the factor r on the candidate's rows)",
    "tanh": "the derivative of tanh is 1 − h̃², not 1 − h̃",
    "sigmoid": "the derivative of σ is σ (1 − σ): here r (1 − r) and u (1 − u), not (1 − r) and (1 − u)",
    "candidate_r": "the candidate reads r ⊙ (U_h h_prev): the gradient reaching U_h h_prev, and so the h̃ rows of "
                   "dWh and that share of dh_prev, carries the factor r",
    "gate_g": "a = g u: the update gate's gradient is g ⊙ dh ⊙ (h̃ − h_prev), the factor g is missing",
    "dg_u": "a = g u: dg = Σ_k dh_k (h̃_k − h_prev,k) u_k, the factor u is missing",
    "dg_sign": "dg has the wrong sign: ∂h/∂a = h̃ − h_prev, not h_prev − h̃",
}


def gru_backward_variant(dh, cache: ops.GRUCache, mistake=None) -> tuple:
    """(dx, dh_prev, dWx, dWh, db, dg) of one gated GRU step, right (mistake None) or with one of MISTAKES."""
    x, h_prev, Wx, Wh, g, r, hh, u, a, Uh = cache
    if mistake == "swap":                                     # as if h = (1 − a) h̃ + a h_prev
        dhh, dh_direct, da = dh * (1 - a), dh * a, dh * (h_prev - hh)
    else:
        dhh, dh_direct, da = dh * a, dh * (1 - a), dh * (hh - h_prev)
    if mistake == "dg_sign":
        dg = -(da * u).sum(-1)
    else:
        dg = (da.sum(-1) if mistake == "dg_u" else (da * u).sum(-1))   # (N,)
    dpre_h = dhh * ((1 - hh) if mistake == "tanh" else (1 - hh ** 2))  # (N, H)
    dr = dpre_h * Uh                                          # (N, H)
    sig = (lambda s: 1 - s) if mistake == "sigmoid" else (lambda s: s * (1 - s))
    dpre_r = np.zeros_like(dr) if mistake == "reset" else dr * sig(r)   # (N, H)
    du = da if mistake == "gate_g" else da * g[:, None]       # (N, H)
    dpre_u = du * sig(u)                                      # (N, H)
    dUh = dpre_h if mistake == "candidate_r" else dpre_h * r  # (N, H)
    dxw = np.concatenate([dpre_r, dpre_h, dpre_u], axis=1)    # (N, 3H)
    dhw = np.concatenate([dpre_r, dUh, dpre_u], axis=1)       # (N, 3H)
    dh_prev = (dh_direct if mistake != "direct" else 0 * dh_direct) + \
        (dhw @ Wh if mistake != "recurrent" else 0)           # (N, H)
    return dxw @ Wx, dh_prev, dxw.T @ x, dhw.T @ h_prev, dxw.sum(0), dg


def _known_mistakes(variant, mistakes: dict, wrt: tuple):
    """A Target's notes: the mistakes (name: why) for which variant(dout, cache, name), a backward returning the
    gradients of `wrt` in order, gives the learner's gradient."""
    def notes(gname, yours, expected, dout, cache, case) -> list:
        k = wrt.index(gname[1:])                              # "dh_prev" -> "h_prev"
        found = _matching(yours, expected, [(variant(dout, cache, m)[k], m) for m in mistakes])
        return [f"yours looks like a known mistake: {mistakes[m]}" for m in found]
    return notes


GRU_WRT = ("x", "h_prev", "Wx", "Wh", "b", "g")
_GRU_BACKWARD = forward_backward_target("gru", "dh", ops.gru_forward, lambda dh, cache: ops.gru_backward(dh, cache),
                                        wrt=GRU_WRT, forbidden=GRU_FORBIDDEN,
                                        notes=_known_mistakes(gru_backward_variant, MISTAKES, GRU_WRT))


# ----------------------------------------------------------------------------------------------------------------
# Part 2: the features the DMN's gates look at (memnet_np.dmn.gate_features_forward, with W_b)
#
#   z(c, m, q) = [c, m, q, c∘q, c∘m, |c−q|, |c−m|, cᵀW_b q, cᵀW_b m]      c (N, F, H) facts; m, q (N, H)


def _feature_cases(rng: np.random.Generator) -> list:
    """c, m, q drawn apart so no |c − q| or |c − m| entry sits near its kink at 0 (the checker's finite
    differences would straddle it): every entry of c − q and c − m is at least 0.05 away from 0."""
    cases = []
    for N, F, H in [(2, 3, 4), (3, 4, 4), (1, 5, 2)]:
        q = rng.standard_normal((N, H))                       # (N, H)
        m = rng.standard_normal((N, H))                       # (N, H)
        c = rng.standard_normal((N, F, H))                    # (N, F, H)
        for ref in (q, m):
            near = np.abs(c - ref[:, None, :]) < 0.05
            c = np.where(near, c + 0.1, c)                    # nudged off the kink (checked again below)
        assert (np.abs(c - q[:, None, :]) > 0.04).all() and (np.abs(c - m[:, None, :]) > 0.04).all()
        cases.append(dict(c=c, m=m, q=q, Wb=rng.standard_normal((H, H))))
    return cases


def _describe_feature_case(case: dict) -> str:
    N, F, H = case["c"].shape
    return f"(N, F, H) = ({N}, {F}, {H})"


FEATURE_MISTAKES = {
    "abs": "the derivative of |x| is sign(x), not 1: |c − q| passes dz on with the sign of c − q",
    "abs_q_sign": "|c − q| depends on q with a minus sign: dq gets −sign(c − q) ⊙ dz, dc gets +sign(c − q) ⊙ dz",
    "no_sum": "q and m are shared by all F facts (broadcast in the forward): their gradients sum over the facts",
    "direct": "z also holds c, m and q themselves (its first three blocks): their dz adds to dc, dm, dq directly",
    "bilinear_transpose": "cᵀ W_b q = (W_b q)ᵀ c: the gradient reaching q is W_bᵀ (Σ_f dz_f c_f), i.e. "
                          "(Σ_f dz_f c_f) @ W_b for row vectors, not @ W_bᵀ",
    "bilinear_m": "W_b appears twice, in cᵀ W_b q and in cᵀ W_b m: dW_b is the sum of both outer products",
}


def feature_backward_variant(dz, cache: "dmn.FeatureCache", mistake=None) -> tuple:
    """(dc, dm, dq, dWb) of z(c, m, q), right (mistake None) or with one of FEATURE_MISTAKES; written here from
    the equation, not through memnet_np.dmn."""
    c, m, q = cache.c, cache.m, cache.q
    Wb = cache.Wb
    H = c.shape[-1]
    d = [dz[..., i * H:(i + 1) * H] for i in range(7)]       # 7 × (N, F, H): c, m, q, c∘q, c∘m, |c−q|, |c−m|
    dcq_b, dcm_b = dz[..., 7 * H], dz[..., 7 * H + 1]         # (N, F) the two bilinear terms
    sq = np.sign(c - q[:, None, :])                           # (N, F, H)
    sm = np.sign(c - m[:, None, :])
    if mistake == "abs":
        sq, sm = np.ones_like(sq), np.ones_like(sm)
    Wq, Wm = q @ Wb.T, m @ Wb.T                               # (N, H) W_b q, W_b m
    dc = d[3] * q[:, None, :] + d[4] * m[:, None, :] + d[5] * sq + d[6] * sm \
        + dcq_b[..., None] * Wq[:, None, :] + dcm_b[..., None] * Wm[:, None, :]     # (N, F, H)
    per_q = d[3] * c - (d[5] * sq if mistake != "abs_q_sign" else -d[5] * sq)       # (N, F, H)
    per_m = d[4] * c - d[6] * sm
    if mistake != "direct":
        dc = dc + d[0]
        per_q, per_m = per_q + d[2], per_m + d[1]
    sum_f = (lambda x: x[:, 0]) if mistake == "no_sum" else (lambda x: x.sum(1))
    gq = sum_f(dcq_b[..., None] * c)                          # (N, H) ∂/∂(W_b q)
    gm = sum_f(dcm_b[..., None] * c)                          # (N, H) ∂/∂(W_b m)
    Wt = Wb.T if mistake == "bilinear_transpose" else Wb
    dq = sum_f(per_q) + gq @ Wt                               # (N, H)
    dm = sum_f(per_m) + gm @ Wb                               # (N, H)
    dWb = gq.T @ q + (0 if mistake == "bilinear_m" else gm.T @ m)   # (H, H)
    return dc, dm, dq, dWb


FEATURE_WRT = ("c", "m", "q", "Wb")
_FEATURES_BACKWARD = forward_backward_target(
    "gate_features", "dz", dmn.gate_features_forward, lambda dz, cache: dmn.gate_features_backward(dz, cache),
    wrt=FEATURE_WRT, forbidden=("dmn.gate_features_backward",),
    notes=_known_mistakes(feature_backward_variant, FEATURE_MISTAKES, FEATURE_WRT))


def _shared(labels, where):
    return ({f"gru_backward: {g}" for g in labels}, where)


EXERCISE = register(Exercise(
    name="gru_backward",
    title="the DMN's two cells: one GRU step with the episode gate (h = g u ⊙ h̃ + (1 − g u) ⊙ h_prev) and the "
          "gate features z(c, m, q)",
    stub="tutorials/exercises/05_gru_backward.py",
    solution="tutorials/exercises/solutions/05_gru_backward.py",
    targets=(_GRU_BACKWARD, _FEATURES_BACKWARD),
    make_cases=lambda rng: [{**a, **b} for a, b in zip(_gru_cases(rng), _feature_cases(rng))],
    describe_case=lambda case: f"{_describe_gru_case(case)}, {_describe_feature_case(case)}",
    shared=(
        _shared(("dx", "dh_prev", "dWx", "dWh", "db"),
                "everything the pre-activations reach is wrong and dg is right: look at the gates' derivatives "
                "(tanh' = 1 − h̃², σ' = σ (1 − σ)) and at the reset gate's path"),
        _shared(("dh_prev", "dWh"), "what they share is the gradient reaching U_h h_prev (dpre_h̃ ⊙ r)"),
        _shared(("dx", "dh_prev", "dWx", "dWh", "db", "dg"),
                "every gradient starts from dh ⊙ a (the candidate's share) and dh ⊙ (h̃ − h_prev) (the gate's): "
                "look at the first lines of the backward"),
    ),
))
