"""Exercise 2: the backward pass of one whole MemN2N hop.

Exercise 1 was the attention read on its own. Here it sits inside a hop of an End-To-End Memory Network
(Sukhbaatar et al. 2015, §2.1, §4.1), with the memories built from the sentences:

    m_i = Σ_j l_j ⊙ A x_ij + T_A(age_i)      the keys:   embedding A, position encoding l, temporal encoding T_A
    c_i = Σ_j l_j ⊙ C x_ij + T_C(age_i)      the values: embedding C, the same l, temporal encoding T_C
    p   = softmax over the real slots of uᵀ m_i
    o   = Σ_i p_i c_i
    u_next = u + o                           the state the next hop reads with (adjacent tying: no H)

You write `hop_backward`: from du_next = ∂loss/∂u_next, the gradients of the loss with respect to the state u, the
embedding matrices A and C, and the temporal tables T_A and T_C. Shape letters: N batch, M memory slots, L words
per sentence, d embedding, V vocabulary (word 0 is the null word that pads sentences), R bags per sentence (2 with
position encoding), rows = rows of T_A and T_C (the largest age + 1 or more).

How the sentences come in (the library does the same, see memnet_np/ops.py, the comment "Sentence embedding, fast
form" above `bag_embed_forward`): position encoding weights word j of a sentence by l_jk = Σ_r a_r(j) b_r(k), a
sum of R outer products. So a sentence is R *weighted bags of words*: bags.W (N, M, R·V) holds, for each slot,
the R bags side by side (bag r in columns r·V .. r·V + V − 1, word v counted with weight Σ_j a_r(j) [x_ij = v];
the null word's columns are 0), and bags.b (R, d) the per-dimension factors. Then

    m = Σ_r W_r (A ⊙ b_r)        with W_r (N, M, V) the r-th bag and A ⊙ b_r column k of A scaled by b_r[k]

The ages come in one-hot: ages.E (N, M, rows) has E[n, i, age] = 1 on a real slot and is all 0 on a padded slot,
so T_A(age) = E T_A. Both are made once per batch, from the data alone, by ops.encode_bags and ops.encode_ages.

The rules:
  - no Python loops (for, while, comprehensions) in hop_backward or the helpers it calls: it is all matrix
    products, einsum and broadcasting. The checker looks, and fails a file with one (after grading it);
  - leave the arguments as they are (no `x -= ...` on them, nor on the cache's arrays);
  - do NOT call the library's backward of any of the pieces: memnet_np.ops.attention_read_backward,
    masked_softmax_backward, bag_embed_backward, temporal_backward or embed_sentences_backward (or
    memnet_np.memn2n.backward, which calls them). The checker notices, and fails the file. Reading ops.py's
    comments and formulas is fine; writing the same maths yourself is the exercise. Helper functions of your own
    are welcome, and so is your softmax_backward from exercise 1.

Then check your work:

    python -m memnet_np check tutorials/exercises/02_memn2n_hop_backward.py

(or run this file). The checker runs this file's hop_forward to make the cache it hands you, and compares your
gradients with finite differences of the forward and with the library's backward, on random cases with padding
words, padded memory slots (some still holding a sentence) and unused rows of T.
"""
EXERCISE = "memn2n_hop_backward"

from typing import NamedTuple

import numpy as np

from memnet_np.ops import Ages, Bags   # the types of two inputs, made by ops.encode_bags and ops.encode_ages

# ----------------------------------------------------------------------------------------------------------------
# The forward pass, given in full: read it first, then write the backward as this, upside down.
# (The checker makes sure it still computes what the library's ops do; add fields to the cache if you like.)


class HopCache(NamedTuple):
    """What hop_backward gets: exactly what the backward needs. (It needs neither A nor C: see why below.)"""
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
# The backward pass: your turn.


def hop_backward(du_next, cache):
    """Gradients of one hop, from du_next (N, d) = ∂loss/∂u_next and the forward's cache (a HopCache).

    returns du  (N, d)       ∂loss/∂u
            dA  (V, d)       ∂loss/∂A
            dC  (V, d)       ∂loss/∂C
            dTA (rows, d)    ∂loss/∂T_A
            dTC (rows, d)    ∂loss/∂T_C

    Walk hop_forward from its last line to its first:
      1. u_next = u + o               what reaches o, and what reaches u directly?
      2. o = Σ_i p_i c_i              dc and dp (exercise 1)
      3. p = softmax(s) over the real slots                       ds
      4. s_i = uᵀ m_i                 du (another share) and dm
      5. m = Σ_r W_r (A ⊙ b_r) + E T_A,  c likewise with C, T_C   dA, dTA, dC, dTC
    Every gradient has the shape of what it is the gradient of. Hints at the bottom of the file.
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
# 1. The residual. u_next = u + o: ∂u_next/∂o = I and ∂u_next/∂u = I. So do = du_next, and du starts as du_next
#    *before* the attention adds its own share (u is also used in the scores s_i = uᵀ m_i). Both shares add up.
# 2. Steps 2 to 4 are exercise 1 with do = du_next: dc_i = p_i do, dp_i = c_iᵀ do,
#    ds_i = p_i (dp_i − Σ_j p_j dp_j), du += Σ_i ds_i m_i, dm_i = ds_i u. Padded slots have p_i = 0, so their
#    dc_i, ds_i and dm_i are exactly 0. That matters here: a padded slot may still hold a sentence, and whatever
#    leaks out of it lands on the rows of dA and dC of its words.
# 3. The temporal tables. T(age) = E T is a matrix product with a constant one-hot E (N, M, rows): dT = Eᵀ dm,
#    summed over the batch and the slots, e.g. np.einsum("nmt,nmd->td", E, dm). Each real slot's dm goes to the
#    row of its age (not to row i for slot i); rows no real slot uses get 0, and padded slots (E all 0) add nothing.
# 4. The embeddings. Per bag, m = W_r (A ⊙ b_r) is again a matrix product with a constant W_r, so
#    d(A ⊙ b_r) = W_rᵀ dm (summed over all N·M slots: reshape W to (N·M, R, V) and dm to (N·M, d)). Then
#    A ⊙ b_r multiplies column k by b_r[k], so the gradient gets the same factor: dA = Σ_r (W_rᵀ dm) ⊙ b_r.
#    Do not forget the factor b_r, nor the bags after the first. The same function gives dC from dc.
#    (That is why the cache needs neither A nor C: m and c are linear in them.)
# 5. The null word: its columns of bags.W are 0, so row 0 of dA and dC comes out 0 by itself. If yours is not
#    0 there, the gradient did not go through the bags.


if __name__ == "__main__":
    import sys

    from memnet_np.exercises import ExerciseError, grade

    try:
        sys.exit(0 if grade(__file__) else 1)
    except ExerciseError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
