"""Exercise 2: the backward of one whole MemN2N hop (embeddings with position and temporal encoding, attention,
the residual u + o)."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from memnet_np import ops
from memnet_np.exercises.grader import Exercise, forward_backward_target, register

from memnet_np.exercises.attention import _matching, _softmax_mistakes, _wrong_ds_notes  # shared diagnosis

# ----------------------------------------------------------------------------------------------------------------
# Exercise 2: the backward of one full MemN2N hop (adjacent tying, position and temporal encoding)
#
#   m = Σ_r W_r (A ⊙ b_r) + E T_A      c = Σ_r W_r (C ⊙ b_r) + E T_C      (ops.bag_embed / ops.temporal)
#   p = masked softmax(uᵀ m_i)          o = Σ_i p_i c_i                    u_next = u + o
#
# The learner's hop_backward gets the cache of the learner's own hop_forward (the stub's), and may not call the
# library's backward of any of these pieces.

HOP_FORBIDDEN = ("attention_read_backward", "masked_softmax_backward", "bag_embed_backward", "temporal_backward",
                 "embed_sentences_backward")


class _HopCache(NamedTuple):
    bags: ops.Bags                # W (N, M, R·V), b (R, d)
    ages: ops.Ages                # E (N, M, rows)
    attention: ops.AttentionCache


def _hop_forward(u, bags, ages, A, C, TA, TC, mask):
    """The library's hop, composed of ops forwards: u_next (N, d) and the cache its backward needs."""
    m, _ = ops.bag_embed_forward(bags, A)                     # (N, M, d) keys
    m, _ = ops.temporal_forward(m, TA, ages)                  # (N, M, d)
    c, _ = ops.bag_embed_forward(bags, C)                     # (N, M, d) values
    c, _ = ops.temporal_forward(c, TC, ages)                  # (N, M, d)
    o, att = ops.attention_read_forward(u, m, c, mask)        # (N, d)
    return u + o, _HopCache(bags, ages, att)                  # (N, d) u_next = u + o


def _hop_backward(du_next, cache):
    """The library's gradients (du, dA, dC, dTA, dTC), composed of ops backwards."""
    du_att, dm, dc = ops.attention_read_backward(du_next, cache.attention)   # do = du_next
    emb, tmp = ops.BagEmbedCache(cache.bags), ops.TemporalCache(cache.ages)
    return (du_next + du_att,                                 # (N, d) residual share + attention share
            ops.bag_embed_backward(dm, emb), ops.bag_embed_backward(dc, emb),               # (V, d) each
            ops.temporal_backward(dm, tmp)[1], ops.temporal_backward(dc, tmp)[1])           # (rows, d) each


def _hop_cases(rng: np.random.Generator) -> list:
    """Three float64 cases made the way the model makes its batches (ops.encode_bags, ops.encode_ages).

    Sentences have random lengths and end in padding words (0). Padded memory slots are not all empty: some hold
    a sentence, and the two largest word ids appear only there, so a gradient that leaks out of a padded slot
    shows on rows of dA / dC that must be 0. Real slots' ages are distinct and decreasing from the oldest, drawn
    so that at least the last row of T_A, T_C is used by no slot. The null word's row of A and C is not zero (it
    must still get no gradient). Shapes are non-square; two encodings (R = 2 bags each).
    """
    specs = [   # mask (N, M), L, d, V, rows of T, position encoding
        (np.array([[1, 1, 1, 0, 0],
                   [1, 1, 1, 1, 1]], bool), 4, 3, 9, 7, "paper"),
        (np.array([[1, 0, 1, 1],
                   [1, 1, 1, 1],
                   [0, 1, 1, 0]], bool), 3, 4, 10, 6, "official"),
        (np.array([[1, 0, 0, 0, 0, 0],
                   [1, 1, 1, 1, 1, 1],
                   [1, 1, 1, 1, 0, 0],
                   [0, 0, 1, 1, 0, 0]], bool), 5, 2, 8, 8, "paper"),   # a row with one real slot (p = 1)
    ]
    cases = []
    for mask, L, d, V, rows, encoding in specs:
        N, M = mask.shape
        x = rng.integers(1, V - 2, size=(N, M, L))             # (N, M, L) real slots: words 1 .. V−3
        x[~mask] = rng.integers(1, V, size=(int((~mask).sum()), L))   # padded slots: any word 1 .. V−1
        length = rng.integers(1, L + 1, size=(N, M))            # (N, M) words per sentence
        x[np.arange(L) >= length[..., None]] = 0                # (N, M, L) padding words at the end
        empty = ~mask & (rng.random((N, M)) < 0.5)              # (N, M) some padded slots hold nothing at all
        first = np.argwhere(~mask)[0]                           # ... but the first one holds word V − 1
        empty[tuple(first)] = False
        x[tuple(first) + (0,)] = V - 1
        x[empty] = 0
        age = rng.integers(0, rows, size=(N, M))                # (N, M) padded slots: any age (E ignores it)
        for n in range(N):                                      # real slots: distinct, oldest first
            age[n, mask[n]] = np.sort(rng.choice(rows - 1, int(mask[n].sum()), replace=False))[::-1]
        cases.append(dict(
            mask=mask, stories=x, age=age, encoding=encoding,
            bags=ops.encode_bags(x, V, d, encoding),            # W (N, M, R·V), b (R, d)
            ages=ops.encode_ages(age, mask, rows),              # E (N, M, rows)
            u=rng.standard_normal((N, d)),                      # (N, d)
            A=0.5 * rng.standard_normal((V, d)),                # (V, d) row 0 (null word) not zero
            C=0.5 * rng.standard_normal((V, d)),                # (V, d)
            TA=0.5 * rng.standard_normal((rows, d)),            # (rows, d)
            TC=0.5 * rng.standard_normal((rows, d)),            # (rows, d)
        ))
    return cases


def _describe_hop_case(case: dict) -> str:
    N, M, L = case["stories"].shape
    V, d = case["A"].shape
    rows = case["TA"].shape[0]
    padded = ~case["mask"]
    holding = int((padded & case["stories"].any(-1)).sum())
    unused = int((case["ages"].E.sum((0, 1)) == 0).sum())
    return (f"(N, M, L, d, V) = ({N}, {M}, {L}, {d}, {V}), {case['encoding']!r} position encoding, "
            f"{int(padded.sum())} padded slots ({holding} holding words), T {rows} rows ({unused} unused)")


def _rows(ix) -> str:
    ix = [int(i) for i in ix]
    return f"row {ix[0]}" if len(ix) == 1 else "rows " + ", ".join(map(str, ix))


def _hop_notes(gname, yours, expected, du_next, cache, case) -> list:
    """Recognise the usual mistakes of a hop backward: each is a wrong formula the grader can compute too."""
    du_att, dm, dc = ops.attention_read_backward(du_next, cache.attention)   # (N, d), (N, M, d), (N, M, d)
    W, b = cache.bags
    E = cache.ages.E                                          # (N, M, rows)
    R, d = b.shape
    V = W.shape[-1] // R
    mask = case["mask"]

    def emb(g, factor=True, bags=R):                          # Σ_r (W_rᵀ g) (⊙ b_r), over the first `bags` bags
        per = np.einsum("srv,sd->rvd", W.reshape(-1, R, V)[:, :bags], g.reshape(-1, d))   # (bags, V, d)
        return (per * b[:bags, None, :] if factor else per).sum(0)                        # (V, d)

    def table(g):                                             # Eᵀ g
        return np.einsum("nmt,nmd->td", E, g)                 # (rows, d)

    def by_slot(g):                                           # slot i's gradient into row i
        t = np.zeros((E.shape[-1], d))                        # (rows, d)
        t[:g.shape[1]] = g.sum(0)
        return t

    do_everywhere = np.broadcast_to(du_next[:, None, :], dc.shape)   # (N, M, d) dc without the weights p_i
    key, value = (dm, dc) if gname in ("dA", "dTA") else (dc, dm)
    mat = "A" if gname in ("dA", "dTA") else "C"
    other = "dC" if mat == "A" else "dA"
    role = "the keys m (the scores)" if mat == "A" else "the values c (the read)"
    candidates = []
    if gname == "du":
        candidates = [
            (du_att, "it is the gradient through the attention alone: u_next = u + o also hands du_next straight "
                     "to u (the residual), so du = du_next + Σ_i ds_i m_i"),
            (du_next, "it is du_next alone, the residual's share: u also reaches u_next through the scores "
                      "s_i = uᵀ m_i, so du = du_next + Σ_i ds_i m_i"),
        ]
    elif gname in ("dA", "dC"):
        candidates = [
            (emb(key, factor=False), f"it is Σ_r W_rᵀ d{'m' if mat == 'A' else 'c'} without the factor b_r: bag r "
                                     f"scales column k of {mat} by b_r[k] ({'m' if mat == 'A' else 'c'} = "
                                     f"Σ_r W_r ({mat} ⊙ b_r)), so {gname} = Σ_r (W_rᵀ d"
                                     f"{'m' if mat == 'A' else 'c'}) ⊙ b_r"),
            (emb(key, bags=1), f"it uses only the first bag: with position encoding bags.W holds R = {R} bags "
                               f"side by side (V = {V} columns each), and {gname} sums over all of them"),
            (emb(value), f"it is what {other} should be: {mat} makes {role}; are dm and dc swapped?"),
        ]
        if mat == "C":
            candidates.append((emb(do_everywhere), "it takes dc_i = du_next on every slot, padded ones included: "
                                                   "o = Σ_i p_i c_i gives dc_i = p_i do (0 on padded slots)"))
    elif gname in ("dTA", "dTC"):
        t = "T_A" if mat == "A" else "T_C"
        candidates = [
            (by_slot(key), f"it adds slot i's gradient into row i of {t}: the row a slot uses is its age (the "
                           f"one-hot ages.E), not its position, so {gname} = Eᵀ d{'m' if mat == 'A' else 'c'}"),
            (table(value), f"it is what d{'TC' if mat == 'A' else 'TA'} should be: {t} makes {role}; are dm and "
                           "dc swapped?"),
        ]
        if mat == "C":
            candidates.append((table(do_everywhere), "it takes dc_i = du_next on every slot: o = Σ_i p_i c_i gives "
                                                     "dc_i = p_i do"))
    wrong_ds = []
    if gname in ("du", "dA", "dTA"):                          # everything the scores reach: a wrong ds
        att = cache.attention
        dp = np.einsum("nmd,nd->nm", att.c, du_next)          # (N, M)
        for ds, name, why in _softmax_mistakes(dp, att.p):
            dm_wrong = ds[..., None] * att.u[:, None, :]      # (N, M, d)
            wrong = {"du": du_next + np.einsum("nm,nmd->nd", ds, att.m), "dA": emb(dm_wrong),
                     "dTA": table(dm_wrong)}[gname]
            wrong_ds.append((wrong, name, why))
    notes = [f"yours looks like a known mistake: {why}" for why in _matching(yours, expected, candidates)]
    notes += _wrong_ds_notes(yours, expected, wrong_ds)

    if gname != "du":                                         # rows that take no part in the forward pass
        bad = np.flatnonzero(~expected.any(1) & yours.any(1))
        if gname in ("dA", "dC") and bad.size:
            present = (W.reshape(W.shape[:2] + (R, V)) != 0).any(2)   # (N, M, V) word v in slot i's sentence
            padded_only = present[~mask].any(0) & ~present[mask].any(0)   # (V,)
            parts = []
            if 0 in bad:
                parts.append("row 0 (the null word, which pads sentences and is in no bag)")
            if padded_only[bad].any():
                parts.append(f"{_rows(bad[padded_only[bad]])} (words that appear only in padded memory slots: "
                             "does a factor p_i go missing?)")
            rest = bad[(bad != 0) & ~padded_only[bad]]
            if rest.size:
                parts.append(f"{_rows(rest)} (words in no sentence)")
            notes.append(f"yours is non-zero where {mat} takes no part in the forward pass: {'; '.join(parts)}; "
                         "the gradient there is exactly 0")
        elif bad.size:
            t = "T_A" if mat == "A" else "T_C"
            notes.append(f"yours is non-zero on {_rows(bad)} of {t}, which no real slot's age selects: {t}(age) is "
                         f"added on real slots only (ages.E is all 0 on padded slots), so {gname} = Eᵀ "
                         f"d{'m' if mat == 'A' else 'c'} is 0 there")
    return notes


_HOP_BACKWARD = forward_backward_target("hop", "du_next", _hop_forward, _hop_backward,
                                        wrt=("u", "A", "C", "TA", "TC"),
                                        inputs=("u", "bags", "ages", "A", "C", "TA", "TC", "mask"),
                                        forbidden=HOP_FORBIDDEN, notes=_hop_notes)

EXERCISE = register(Exercise(
    name="memn2n_hop_backward",
    title="the backward pass of one whole MemN2N hop (embeddings with position and temporal encoding, "
          "attention, the residual u + o)",
    stub="tutorials/exercises/02_memn2n_hop_backward.py",
    solution="tutorials/exercises/solutions/02_memn2n_hop_backward.py",
    targets=(_HOP_BACKWARD,),
    make_cases=_hop_cases,
    describe_case=_describe_hop_case,
    shared=tuple(({f"hop_backward: {g}" for g in grads}, where) for grads, where in [
        (("du", "dA", "dTA"), "look at the softmax step (ds_i = p_i (dp_i − Σ_j p_j dp_j)) and at dp before it: "
                              "everything the scores reach is wrong, everything else right"),
        (("dA", "dTA"), "what they share is dm (dm_i = ds_i u); du is right, so ds is"),
        (("dC", "dTC"), "what they share is dc (dc_i = p_i do)"),
        (("dA", "dC"), "what they share is the embedding step, dX = Σ_r (W_rᵀ dY) ⊙ b_r"),
        (("dTA", "dTC"), "what they share is the temporal step, dT = Eᵀ dY"),
    ]),
))
