"""Exercise 5, a solution: the backward pass of one GRU step with the DMN's episode gate.

The forward is the stub's, unchanged; the backward walks it from its last line to its first.
"""
EXERCISE = "gru_backward"

from typing import NamedTuple

import numpy as np


# ----------------------------------------------------------------------------------------------------------------
# The forward pass (as in the stub)


class GRUCache(NamedTuple):
    x: np.ndarray        # (N, D) input
    h_prev: np.ndarray   # (N, H) previous state
    Wx: np.ndarray       # (3H, D) input weights, rows [r, h̃, u]
    Wh: np.ndarray       # (3H, H) recurrent weights U, rows [r, h̃, u]
    g: np.ndarray        # (N,) the episode gate
    r: np.ndarray        # (N, H) reset gate
    hh: np.ndarray       # (N, H) candidate h̃
    u: np.ndarray        # (N, H) update gate
    a: np.ndarray        # (N, H) a = g u, the weight of the candidate
    Uh: np.ndarray       # (N, H) U_h h_prev, what the reset gate scales


def sigmoid(s):
    return 0.5 + 0.5 * np.tanh(0.5 * s)


def gru_forward(x, h_prev, Wx, Wh, b, g):
    H = h_prev.shape[1]
    xw = x @ Wx.T + b                                     # (N, 3H) W x + b, all three rows at once
    hw = h_prev @ Wh.T                                    # (N, 3H) U h_prev
    r = sigmoid(xw[:, :H] + hw[:, :H])                    # (N, H)
    Uh = hw[:, H:2 * H]                                   # (N, H)
    hh = np.tanh(xw[:, H:2 * H] + r * Uh)                 # (N, H)
    u = sigmoid(xw[:, 2 * H:] + hw[:, 2 * H:])            # (N, H)
    a = g[:, None] * u                                    # (N, H)
    h = a * hh + (1 - a) * h_prev                         # (N, H)
    return h, GRUCache(x, h_prev, Wx, Wh, g, r, hh, u, a, Uh)


# ----------------------------------------------------------------------------------------------------------------
# Part 2, the forward: the features the DMN's gates look at (memnet_np.dmn.gate_features_forward).
#
#     z(c, m, q) = [c, m, q, c∘q, c∘m, |c−q|, |c−m|, cᵀW_b q, cᵀW_b m]       (N, F, 7H + 2)
#
# c (N, F, H) the facts; m (N, H) the memory and q (N, H) the question, the same for all F facts of a story;
# W_b (H, H). The blocks of z are H wide, in this order, then the two bilinear numbers.


class FeatureCache(NamedTuple):
    c: np.ndarray        # (N, F, H)
    m: np.ndarray        # (N, H)
    q: np.ndarray        # (N, H)
    Wb: np.ndarray       # (H, H)


def gate_features_forward(c, m, q, Wb):
    """c (N, F, H), m (N, H), q (N, H), Wb (H, H)  ->  z (N, F, 7H + 2), cache."""
    qf, mf = q[:, None, :], m[:, None, :]                 # (N, 1, H): broadcast over the facts
    cWq = (c * (q @ Wb.T)[:, None, :]).sum(-1, keepdims=True)   # (N, F, 1) cᵀ W_b q
    cWm = (c * (m @ Wb.T)[:, None, :]).sum(-1, keepdims=True)   # (N, F, 1) cᵀ W_b m
    parts = [c, np.broadcast_to(mf, c.shape), np.broadcast_to(qf, c.shape), c * qf, c * mf,
             np.abs(c - qf), np.abs(c - mf), cWq, cWm]
    z = np.concatenate(parts, axis=-1)                    # (N, F, 7H + 2)
    return z, FeatureCache(c, m, q, Wb)


# ----------------------------------------------------------------------------------------------------------------
# The backward pass


def gru_backward(dh, cache):
    """dx, dh_prev, dWx, dWh, db, dg from dh (N, H) and the forward's cache."""
    x, h_prev, Wx, Wh, g, r, hh, u, a, Uh = cache
    # h = a ⊙ h̃ + (1 − a) ⊙ h_prev
    dhh = a * dh                                          # (N, H)
    da = (hh - h_prev) * dh                               # (N, H)
    dh_prev = (1 - a) * dh                                # (N, H) the direct path; the gates' share comes last
    # a = g u
    dg = (da * u).sum(1)                                  # (N,)
    du = g[:, None] * da                                  # (N, H)
    # u = σ(pre_u),  h̃ = tanh(pre_h̃),  r = σ(pre_r)
    dpre_u = du * u * (1 - u)                             # (N, H)
    dpre_h = dhh * (1 - hh ** 2)                          # (N, H)
    # pre_h̃ = W_h x + r ⊙ (U_h h_prev) + b_h: r and U_h h_prev each get the other as a factor
    dpre_r = dpre_h * Uh * r * (1 - r)                    # (N, H)
    dUh = dpre_h * r                                      # (N, H)
    # xw = W x + b (rows [r, h̃, u]) and hw = U h_prev: the h̃ rows of hw carry the factor r
    dxw = np.concatenate([dpre_r, dpre_h, dpre_u], 1)     # (N, 3H)
    dhw = np.concatenate([dpre_r, dUh, dpre_u], 1)        # (N, 3H)
    dx = dxw @ Wx                                         # (N, D)
    dWx = dxw.T @ x                                       # (3H, D)
    db = dxw.sum(0)                                       # (3H,)
    dWh = dhw.T @ h_prev                                  # (3H, H)
    dh_prev = dh_prev + dhw @ Wh                          # (N, H) the direct path plus every gate's
    return dx, dh_prev, dWx, dWh, db, dg


def gate_features_backward(dz, cache):
    """dc, dm, dq, dWb from dz (N, F, 7H + 2) and the forward's cache."""
    c, m, q, Wb = cache
    H = c.shape[-1]
    d_c, d_m, d_q, d_cq, d_cm, d_aq, d_am = np.split(dz[..., :7 * H], 7, axis=-1)   # (N, F, H) each, z's order
    d_bq, d_bm = dz[..., 7 * H:7 * H + 1], dz[..., 7 * H + 1:]          # (N, F, 1) the bilinear numbers
    qf, mf = q[:, None, :], m[:, None, :]                 # (N, 1, H)
    sq, sm = np.sign(c - qf), np.sign(c - mf)             # (N, F, H) |x|' = sign(x)
    Wq, Wm = q @ Wb.T, m @ Wb.T                           # (N, H) W_b q, W_b m
    # c takes part in every block
    dc = d_c + d_cq * qf + d_cm * mf + d_aq * sq + d_am * sm + d_bq * Wq[:, None, :] + d_bm * Wm[:, None, :]
    # q and m were broadcast over the facts: their gradients sum over them; |c − q| gives q a minus sign
    gq = (d_bq * c).sum(1)                                # (N, H) ∂loss/∂(W_b q)
    gm = (d_bm * c).sum(1)                                # (N, H) ∂loss/∂(W_b m)
    dq = (d_q + d_cq * c - d_aq * sq).sum(1) + gq @ Wb    # (N, H)
    dm = (d_m + d_cm * c - d_am * sm).sum(1) + gm @ Wb    # (N, H)
    dWb = gq.T @ q + gm.T @ m                             # (H, H) both bilinear terms
    return dc, dm, dq, dWb


if __name__ == "__main__":
    import sys

    from memnet_np.exercises import ExerciseError, grade

    try:
        sys.exit(0 if grade(__file__) else 1)
    except ExerciseError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
