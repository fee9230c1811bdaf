"""Exercise 2, a reference solution: the backward pass of one whole MemN2N hop.

    python -m memnet_np check tutorials/exercises/solutions/02_memn2n_hop_backward.py

The forward (Sukhbaatar et al. 2015, §2.1, §4.1), shapes N batch, M slots, d embedding, V vocabulary, R bags per
sentence, rows of the temporal tables:

    m = Σ_r W_r (A ⊙ b_r) + E T_A      the keys     (N, M, d)
    c = Σ_r W_r (C ⊙ b_r) + E T_C      the values   (N, M, d)
    p = softmax(uᵀ m_i) over the real slots         (N, M), exactly 0 on padded slots
    o = Σ_i p_i c_i                                 (N, d)
    u_next = u + o                                  (N, d)

The backward below walks it upside down, with no library backward: the same maths as composing
ops.attention_read_backward, ops.temporal_backward and ops.bag_embed_backward, written out.
"""
EXERCISE = "memn2n_hop_backward"

from typing import NamedTuple

import numpy as np

from memnet_np.ops import Ages, Bags   # the types of two inputs, made by ops.encode_bags and ops.encode_ages

# ----------------------------------------------------------------------------------------------------------------
# The forward pass, as in the stub


class HopCache(NamedTuple):
    """What hop_backward gets: exactly what the backward needs. (It needs neither A nor C: m and c are linear.)"""
    u: np.ndarray      # (N, d)        the state the hop reads with
    bags: Bags         # bags.W (N, M, R·V) the sentences as R weighted bags side by side, bags.b (R, d)
    ages: Ages         # ages.E (N, M, rows) one-hot age of each real slot, all 0 on padded slots
    m: np.ndarray      # (N, M, d)     the keys
    c: np.ndarray      # (N, M, d)     the values
    p: np.ndarray      # (N, M)        the attention, 0 on padded slots


def softmax_forward(s, mask):
    """p = softmax of the scores s over the slots (last axis), counting only real slots; 0 on padded ones."""
    s_max = np.where(mask, s, -np.inf).max(-1, keepdims=True)    # (N, 1) largest real score: exp never overflows
    e = np.exp(np.where(mask, s - s_max, -np.inf))              # (N, M) exp(-inf) = 0 on padded slots
    return e / e.sum(-1, keepdims=True)                         # (N, M)


def embed(bags, X):
    """Σ_r W_r (X ⊙ b_r): the R bags of every slot times X with column k scaled by b_r[k].  X (V, d) -> (N, M, d)"""
    R, d = bags.b.shape
    X_stack = (X[None] * bags.b[:, None, :]).reshape(-1, d)     # (R·V, d) [X ⊙ b_1; …; X ⊙ b_R], row r·V + v
    return bags.W @ X_stack                                     # (N, M, d) one matrix product for all R bags


def hop_forward(u, bags, ages, A, C, TA, TC, mask):
    """One hop.  u (N, d), bags, ages, A, C (V, d), TA, TC (rows, d), mask (N, M) bool  ->  u_next (N, d), cache"""
    m = embed(bags, A) + ages.E @ TA                            # (N, M, d) m_i = Σ_j l_j ⊙ A x_ij + T_A(age_i)
    c = embed(bags, C) + ages.E @ TC                            # (N, M, d) c_i = Σ_j l_j ⊙ C x_ij + T_C(age_i)
    s = np.einsum("nd,nmd->nm", u, m)                           # (N, M)    s_i = uᵀ m_i
    p = softmax_forward(s, mask)                                # (N, M)
    o = np.einsum("nm,nmd->nd", p, c)                           # (N, d)    o = Σ_i p_i c_i
    u_next = u + o                                              # (N, d)
    return u_next, HopCache(u, bags, ages, m, c, p)


# ----------------------------------------------------------------------------------------------------------------
# The backward pass


def embed_backward(dm, bags):
    """dX (V, d) of m = Σ_r W_r (X ⊙ b_r), from dm (N, M, d).

    Per bag, m = W_r Y_r with Y_r = X ⊙ b_r a matrix product with a constant W_r: dY_r = W_rᵀ dm, summed over
    every slot of every example. Y_r[v, k] = X[v, k] b_r[k], so dX[v, k] gets dY_r[v, k] b_r[k] from each bag.
    The null word's columns of W are 0: row 0 of dX comes out 0 by itself.
    """
    R, d = bags.b.shape
    V = bags.W.shape[-1] // R
    W = bags.W.reshape(-1, R, V)                                # (N·M, R, V) bag r of every slot
    dY = np.einsum("srv,sd->rvd", W, dm.reshape(-1, d))         # (R, V, d)  dY_r = W_rᵀ dm
    return (dY * bags.b[:, None, :]).sum(0)                     # (V, d)     Σ_r dY_r ⊙ b_r


def hop_backward(du_next, cache):
    """du (N, d), dA (V, d), dC (V, d), dTA (rows, d), dTC (rows, d) from du_next (N, d) and the HopCache."""
    u, bags, ages, m, c, p = cache
    # u_next = u + o:  both get du_next whole
    do = du_next                                                # (N, d)
    # o = Σ_i p_i c_i:  ∂o/∂c_i = p_i I  and  ∂o/∂p_i = c_i
    dc = p[..., None] * do[:, None, :]                          # (N, M, d) dc_i = p_i do (0 on padded slots)
    dp = np.einsum("nmd,nd->nm", c, do)                         # (N, M)    dp_i = c_iᵀ do
    # p = softmax(s) over the real slots:  ∂p_j/∂s_i = p_j (δ_ij − p_i)
    ds = p * (dp - (p * dp).sum(-1, keepdims=True))             # (N, M)    0 on padded slots
    # s_i = uᵀ m_i:  u is used by every slot, and also passed straight on by the residual
    du = du_next + np.einsum("nm,nmd->nd", ds, m)               # (N, d)    du = du_next + Σ_i ds_i m_i
    dm = ds[..., None] * u[:, None, :]                          # (N, M, d) dm_i = ds_i u
    # m = Σ_r W_r (A ⊙ b_r) + E T_A  and  c = Σ_r W_r (C ⊙ b_r) + E T_C
    dA = embed_backward(dm, bags)                               # (V, d)
    dC = embed_backward(dc, bags)                               # (V, d)
    dTA = np.einsum("nmt,nmd->td", ages.E, dm)                  # (rows, d) dT_A = Eᵀ dm: each slot to its age's row
    dTC = np.einsum("nmt,nmd->td", ages.E, dc)                  # (rows, d)
    return du, dA, dC, dTA, dTC


if __name__ == "__main__":
    import sys

    from memnet_np.exercises import ExerciseError, grade

    try:
        sys.exit(0 if grade(__file__) else 1)
    except ExerciseError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
