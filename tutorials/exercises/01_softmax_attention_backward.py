"""Exercise 1: the backward pass of soft attention.

One hop of an End-To-End Memory Network (Sukhbaatar et al. 2015, §2.1) reads its memory like this:

    s_i = uᵀ m_i                      a score for every memory slot i          s (N, M)
    p   = softmax(s) over real slots  padded slots get p_i = 0 exactly         p (N, M)
    o   = Σ_i p_i c_i                 the read: a p-weighted sum of the c_i    o (N, d)

u (N, d) is the question (the controller state), m (N, M, d) the memories as keys, c (N, M, d) the same memories
as values, and mask (N, M) says which of the M slots are real (True) and which are padding (False).
Shape letters: N batch, M memory slots, d embedding size.

Your job: write the two backward functions below, the ones that `raise NotImplementedError`. A backward takes the
gradient of the loss with respect to the forward's output (dp, do) and returns the gradients with respect to the
forward's inputs (ds; du, dm, dc), each with the shape of the thing it is the gradient of. Everything is batched:
no Python loops (for, while, comprehensions) in what you write; the checker looks, and fails a file with one,
after grading its gradients. Then check your work:

    python -m memnet_np check tutorials/exercises/01_softmax_attention_backward.py

(or run this file). The checker compares your gradients with finite differences and with the library's own
backward, on random cases with padded slots, and tells you which gradient is wrong. See README.md next to this
file for what its numbers mean.
"""
EXERCISE = "softmax_attention_backward"

import numpy as np

# ----------------------------------------------------------------------------------------------------------------
# The forward pass, given in full: read it first, then write the backward as this, upside down.
# (The checker uses the library's copy of it, memnet_np.ops.attention_read_forward, which computes the same.)


def softmax_forward(s, mask):
    """p = softmax of the scores s over the memory slots (last axis), counting only real slots.

    s (N, M) float, mask (N, M) bool with at least one True per row  ->  p (N, M), rows sum to 1, 0 on padding.
    """
    s_max = np.where(mask, s, -np.inf).max(-1, keepdims=True)    # (N, 1) largest real score: exp never overflows
    e = np.exp(np.where(mask, s - s_max, -np.inf))              # (N, M) exp(-inf) = 0 on padded slots
    p = e / e.sum(-1, keepdims=True)                            # (N, M)
    return p


def attention_read_forward(u, m, c, mask):
    """o = Σ_i p_i c_i with p = softmax(uᵀ m_i) over the real slots.

    u (N, d), m (N, M, d), c (N, M, d), mask (N, M) bool  ->  o (N, d) and the attention p (N, M), which the
    backward needs.
    """
    s = np.einsum("nd,nmd->nm", u, m)                           # (N, M) s_i = uᵀ m_i
    p = softmax_forward(s, mask)                                # (N, M)
    o = np.einsum("nm,nmd->nd", p, c)                           # (N, d) o = Σ_i p_i c_i
    return o, p


# ----------------------------------------------------------------------------------------------------------------
# The backward pass: your turn.


def softmax_backward(dp, p):
    """Gradient through the masked softmax: ds from dp.

    dp (N, M)  ∂loss/∂p, the upstream gradient
    p  (N, M)  the softmax's output (0 on padded slots)
    returns ds (N, M)  ∂loss/∂s

    Each row is independent. On padded slots p_i = 0 whatever s_i is, so ds_i must be exactly 0 there; the mask
    is not passed in: p already knows it. Do not build the (M, M) Jacobian: contract it with dp in closed form.
    Hints at the bottom of the file, if you want them.
    """
    raise NotImplementedError("fill me in")


def attention_read_backward(do, u, m, c, p):
    """Gradient of one attention read, o = Σ_i p_i c_i with p = softmax(uᵀ m_i).

    do (N, d)     ∂loss/∂o, the upstream gradient
    u  (N, d)     the controller state
    m  (N, M, d)  the memory keys
    c  (N, M, d)  the memory values
    p  (N, M)     the attention from the forward pass (0 on padded slots)
    returns du (N, d), dm (N, M, d), dc (N, M, d)   in the forward's argument order

    Go backwards through the forward, one line at a time: first o = Σ_i p_i c_i (which gives dc and dp), then the
    softmax (call your softmax_backward), then s_i = uᵀ m_i (which gives du and dm).
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
# 1. Softmax. For one row, ∂p_j/∂s_i = p_j (δ_ij − p_i). Multiply by dp_j and sum over j: the δ term keeps one
#    entry, the other gives the same number Σ_j p_j dp_j for every i. Both terms carry a factor p_i, which is
#    why padded slots get 0.
# 2. o = Σ_i p_i c_i:  ∂o/∂c_i = p_i (a scalar times the identity) and ∂o/∂p_i = c_i. So dc_i = p_i do and
#    dp_i = c_iᵀ do. Broadcasting: p[..., None] is (N, M, 1), do[:, None, :] is (N, 1, d).
# 3. s_i = uᵀ m_i:  ds flows to u summed over the slots (u was used by every slot), and to m_i as ds_i u.
# 4. Shapes are your first test: every gradient has exactly the shape of what it is the gradient of.


if __name__ == "__main__":
    import sys

    from memnet_np.exercises import ExerciseError, grade

    try:
        sys.exit(0 if grade(__file__) else 1)
    except ExerciseError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
