"""Exercise 5: the backward pass of one GRU step, with the Dynamic Memory Network's episode gate.

A Dynamic Memory Network (Kumar et al. 2015) reads everything with GRUs: the story word by word, the question,
and, in its episodic memory, the facts one at a time, where a gate g (one number per example and fact) decides how
much of each fact gets in:  h_t = g_t GRU(c_t, h_{t−1}) + (1 − g_t) h_{t−1}.  That is one GRU step whose update
gate is scaled by g. In memnet_np's convention (the update gate u weights the *candidate*; see memnet_np/ops.py):

    r  = σ(W_r x + U_r h_prev + b_r)                 reset gate                  (N, H)
    h̃  = tanh(W_h x + r ⊙ (U_h h_prev) + b_h)        candidate state             (N, H)
    u  = σ(W_u x + U_u h_prev + b_u)                 update gate                 (N, H)
    a  = g u                                         g (N,) the episode gate     (N, H)
    h  = a ⊙ h̃ + (1 − a) ⊙ h_prev                    the new state               (N, H)

With g = 1 this is a plain GRU. The weights are stacked, rows in the order [r, h̃, u]: Wx (3H, D) holds W_r, W_h,
W_u; Wh (3H, H) holds U_r, U_h, U_u; b (3H,). Shape letters: N batch, D input size, H state size.

You write `gru_backward`: from dh = ∂loss/∂h (N, H), the gradients with respect to all six inputs of the forward.

Part 2 is the other piece only the DMN has: the features its gates look at for a fact c, given the memory m and
the question q,

    z(c, m, q) = [c, m, q, c∘q, c∘m, |c−q|, |c−m|, cᵀW_b q, cᵀW_b m]

and you write `gate_features_backward`: from dz, the gradients with respect to c, m, q and W_b.

The rules:
  - no Python loops (for, while, comprehensions) in gru_backward or the helpers it calls. The checker looks, and
    fails a file with one (after grading it);
  - leave the arguments as they are (no `x -= ...` on them, nor on the cache's arrays);
  - do NOT call the library's memnet_np.ops.gru_backward, gru_sequence_backward or
    memnet_np.dmn.gate_features_backward: the checker notices, and fails the file. Reading ops.py and dmn.py is
    fine; writing the same maths yourself is the exercise.

Then check your work:

    python -m memnet_np check tutorials/exercises/05_gru_backward.py

(or run this file). The checker runs this file's gru_forward to make the cache it hands you, and compares your
gradients with finite differences of the forward and with the library's backward, on three random cases.
You can check part 1 before writing part 2: a function that still raises NotImplementedError is reported as
"not implemented yet" and the other is graded.
"""
EXERCISE = "gru_backward"

from typing import NamedTuple

import numpy as np

# ----------------------------------------------------------------------------------------------------------------
# The forward pass, given in full: read it first, then write the backward as this, upside down.
# (The checker makes sure it still computes what memnet_np.ops.gru_forward does; add fields to the cache if you
# like.)


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
    return 0.5 + 0.5 * np.tanh(0.5 * s)                   # = 1 / (1 + e^−s), without overflow for large −s


def gru_forward(x, h_prev, Wx, Wh, b, g):
    """x (N, D), h_prev (N, H), Wx (3H, D), Wh (3H, H), b (3H,), g (N,)  ->  h (N, H), cache."""
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
# The backward pass: your turn.


def gru_backward(dh, cache):
    """Gradients of one gated GRU step, from dh (N, H) = ∂loss/∂h and the forward's cache (a GRUCache).

    returns dx (N, D), dh_prev (N, H), dWx (3H, D), dWh (3H, H), db (3H,), dg (N,)   in the forward's order

    Walk gru_forward from its last line to its first:
      1. h = a ⊙ h̃ + (1 − a) ⊙ h_prev     dh̃, da, and the direct share of dh_prev
      2. a = g u                           dg and du
      3. u = σ(·), h̃ = tanh(·), r = σ(·)  the gradients of the three pre-activations
      4. pre_h̃ = W_h x + r ⊙ (U_h h_prev) + b_h                   where the reset gate's gradient comes from
      5. xw = W x + b, hw = U h_prev       dx, dWx, db, dWh, and the gates' share of dh_prev
    Every gradient has the shape of what it is the gradient of. Hints at the bottom of the file.
    """
    raise NotImplementedError("fill me in")


def gate_features_backward(dz, cache):
    """Gradients of z(c, m, q), from dz (N, F, 7H + 2) = ∂loss/∂z and the forward's cache (a FeatureCache).

    returns dc (N, F, H), dm (N, H), dq (N, H), dWb (H, H)   in the forward's order

    Take dz apart into its nine blocks, then each block's gradient to c, m, q and W_b, and add up. Remember
    that m and q were broadcast over the F facts, and what |x| does to a gradient. Hints at the bottom.
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
# 1. h = a ⊙ h̃ + (1 − a) ⊙ h_prev = h_prev + a ⊙ (h̃ − h_prev): dh̃ = a ⊙ dh, da = (h̃ − h_prev) ⊙ dh, and
#    h_prev gets (1 − a) ⊙ dh straight away. It gets more later: h_prev also feeds every gate through U h_prev.
# 2. a = g u with g one number per example: du = g ⊙ da (broadcast g[:, None]), dg = Σ_k da_k u_k per example.
# 3. σ'(s) = σ(s) (1 − σ(s)) and tanh'(s) = 1 − tanh(s)², both written with the forward's outputs r, u, h̃.
# 4. pre_h̃ has r ⊙ (U_h h_prev): the reset gate gets dpre_h̃ ⊙ U_h h_prev (then times r (1 − r)), and
#    U_h h_prev gets dpre_h̃ ⊙ r. Forget the first and the reset gate never learns; forget the factor r in the
#    second and dWh's middle rows and dh_prev come out wrong.
# 5. Stack the pre-activation gradients in the forward's row order [r, h̃, u]: dxw (N, 3H) for xw = x Wxᵀ + b,
#    and dhw (N, 3H) for hw = h_prev Whᵀ, the same except the middle block is dpre_h̃ ⊙ r. Then dx = dxw Wx,
#    dWx = dxwᵀ x, db = Σ_n dxw, dWh = dhwᵀ h_prev, and dh_prev += dhw Wh.
# 6. Part 2. z is a concatenation: its gradient is dz cut back into the pieces, dz[..., i·H:(i+1)·H] for block i
#    and dz[..., 7H] and dz[..., 7H + 1] for the two numbers. Then one block at a time:
#    c∘q gives dc += d ⊙ q and dq += Σ_f d ⊙ c;  |c − q| gives dc += d ⊙ sign(c − q) and dq −= Σ_f d ⊙ sign(c − q)
#    (the sum over f because q was broadcast to every fact);  cᵀ W_b q (one number per fact, call its gradient
#    β_f) gives dc_f += β_f W_b q, and W_b q gets Σ_f β_f c_f =: γ, so dq += W_bᵀ γ (γ @ W_b for a row vector) and
#    dW_b += γ qᵀ. The same with m for the last one. Blocks c, m, q themselves pass dz straight through.


if __name__ == "__main__":
    import sys

    from memnet_np.exercises import ExerciseError, grade

    try:
        sys.exit(0 if grade(__file__) else 1)
    except ExerciseError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
