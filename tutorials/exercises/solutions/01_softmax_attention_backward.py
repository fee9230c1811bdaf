"""Exercise 1, a reference solution: the backward pass of soft attention.

    python -m memnet_np check tutorials/exercises/solutions/01_softmax_attention_backward.py

The forward (Sukhbaatar et al. 2015, §2.1), shapes N batch, M memory slots, d embedding size:

    s_i = uᵀ m_i                      s (N, M)
    p   = softmax(s) over real slots  p (N, M), exactly 0 on padded slots
    o   = Σ_i p_i c_i                 o (N, d)

The backward below walks it upside down: o first, then the softmax, then the scores.
It is the same maths as memnet_np.ops.attention_read_backward, written with einsum where that reads more clearly.
"""
EXERCISE = "softmax_attention_backward"

import numpy as np

# ----------------------------------------------------------------------------------------------------------------
# The forward pass, as in the stub


def softmax_forward(s, mask):
    """p = softmax of the scores s over the memory slots (last axis), counting only real slots.

    s (N, M) float, mask (N, M) bool with at least one True per row  ->  p (N, M), rows sum to 1, 0 on padding.
    """
    s_max = np.where(mask, s, -np.inf).max(-1, keepdims=True)    # (N, 1) largest real score: exp never overflows
    e = np.exp(np.where(mask, s - s_max, -np.inf))              # (N, M) exp(-inf) = 0 on padded slots
    p = e / e.sum(-1, keepdims=True)                            # (N, M)
    return p


def attention_read_forward(u, m, c, mask):
    """o = Σ_i p_i c_i with p = softmax(uᵀ m_i) over the real slots. Returns o (N, d) and p (N, M)."""
    s = np.einsum("nd,nmd->nm", u, m)                           # (N, M) s_i = uᵀ m_i
    p = softmax_forward(s, mask)                                # (N, M)
    o = np.einsum("nm,nmd->nd", p, c)                           # (N, d) o = Σ_i p_i c_i
    return o, p


# ----------------------------------------------------------------------------------------------------------------
# The backward pass


def softmax_backward(dp, p):
    """ds (N, M) from dp (N, M) and the softmax output p (N, M).

    For one row, ∂p_j/∂s_i = p_j (δ_ij − p_i), so

        ds_i = Σ_j dp_j p_j (δ_ij − p_i) = p_i dp_i − p_i Σ_j p_j dp_j = p_i (dp_i − Σ_j p_j dp_j)

    The (M, M) Jacobian diag(p) − p pᵀ is never built. Every term carries p_i, so padded slots (p_i = 0) get
    ds_i = 0 without looking at the mask: moving a padded score does not move p.
    """
    return p * (dp - (p * dp).sum(-1, keepdims=True))     # (N, M)


def attention_read_backward(do, u, m, c, p):
    """du (N, d), dm (N, M, d), dc (N, M, d) from do (N, d) and the forward's u, m, c, p."""
    # o = Σ_i p_i c_i:  ∂o/∂c_i = p_i I  and  ∂o/∂p_i = c_i
    dc = p[..., None] * do[:, None, :]                    # (N, M, d) dc_i = p_i do
    dp = np.einsum("nmd,nd->nm", c, do)                   # (N, M)    dp_i = c_iᵀ do
    # p = softmax(s) over the real slots
    ds = softmax_backward(dp, p)                          # (N, M)
    # s_i = uᵀ m_i:  u is used by every slot, so its gradient sums over them
    du = np.einsum("nm,nmd->nd", ds, m)                   # (N, d)    du = Σ_i ds_i m_i
    dm = ds[..., None] * u[:, None, :]                    # (N, M, d) dm_i = ds_i u
    return du, dm, dc


if __name__ == "__main__":
    import sys

    from memnet_np.exercises import ExerciseError, grade

    try:
        sys.exit(0 if grade(__file__) else 1)
    except ExerciseError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
