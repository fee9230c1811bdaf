"""Exercise 1: the backward of soft attention (a masked softmax, then a weighted sum of memories)."""
from __future__ import annotations

import numpy as np

from memnet_np import gradcheck as gc
from memnet_np import ops
from memnet_np.exercises.grader import FD_TOLERANCE, Exercise, Target, register

# ----------------------------------------------------------------------------------------------------------------
# Exercise 1: the backward of soft attention,  p = masked softmax(uᵀ m_i),  o = Σ_i p_i c_i


def _attention_cases(rng: np.random.Generator) -> list:
    """Three cases, all float64, every row with at least one real slot and values drawn at random.

    Shapes are non-square so a transposed gradient shows as a wrong shape, except case 2 (M == d) where it can
    only show in the values. Padded slots hold random m and c (not zeros): they must still get zero gradient.
    """
    masks = [
        np.array([[1, 1, 1, 0, 0],
                  [1, 1, 1, 1, 1]], bool),               # (N, M) = (2, 5): padding at the end of row 0
        np.array([[1, 0, 1, 1],
                  [1, 1, 1, 1],
                  [0, 1, 1, 0]], bool),                  # (3, 4): holes anywhere, M == d
        np.array([[1, 0, 0, 0, 0, 0],
                  [1, 1, 1, 1, 1, 1],
                  [1, 1, 1, 1, 0, 0],
                  [0, 0, 1, 1, 0, 0]], bool),            # (4, 6): a row with one real slot (p = 1, ds = 0)
    ]
    dims = [3, 4, 2]
    cases = []
    for mask, d in zip(masks, dims):
        N, M = mask.shape
        cases.append(dict(
            mask=mask,
            u=rng.standard_normal((N, d)),                # (N, d)
            m=rng.standard_normal((N, M, d)),             # (N, M, d)
            c=rng.standard_normal((N, M, d)),             # (N, M, d)
            s=1.5 * rng.standard_normal((N, M)),          # (N, M) scores for checking the softmax on its own
        ))
    return cases


def _describe_attention_case(case: dict) -> str:
    N, M, d = case["m"].shape
    padded = int((~case["mask"]).sum())
    return f"(N, M, d) = ({N}, {M}, {d}), {padded} padded slot{'s' if padded != 1 else ''}"


def _softmax_mistakes(dp: np.ndarray, p: np.ndarray) -> list:
    """The usual wrong softmax backwards, as (ds (N, M), its name, why it is wrong): the grader computes each."""
    right = "ds_i = p_i (dp_i − Σ_j p_j dp_j)"
    return [
        (p * dp, "ds = p ⊙ dp", f"the term −p_i Σ_j p_j dp_j is missing: ∂p_j/∂s_i = p_j (δ_ij − p_i) has two "
                                f"terms, so {right}. A row with one real slot shows it: p = 1 there whatever the "
                                f"score, so ds = 0, but p ⊙ dp is not"),
        (p * (dp - (p * dp).sum(0, keepdims=True)), "Σ_j p_j dp_j summed over axis 0",
         "axis 0 is the batch; the sum runs over the slots of one row: .sum(-1, keepdims=True)"),
        (p * (dp - (p * dp).sum()), "Σ_j p_j dp_j summed over the whole batch",
         "the sum runs over the slots of one row: .sum(-1, keepdims=True)"),
        (p * (dp - dp.sum(-1, keepdims=True)), "Σ_j dp_j in place of Σ_j p_j dp_j", f"the weights p_j are missing: {right}"),
        (dp - (p * dp).sum(-1, keepdims=True), "no factor p_i in front", f"{right}"),
    ]


def _matching(yours: np.ndarray, expected: np.ndarray, candidates) -> list:
    """The descriptions of the candidates (wrong, why) that yours equals, among those that are really wrong."""
    return [why for wrong, why in candidates
            if np.shape(wrong) == yours.shape and gc.rel_error(yours, wrong) < FD_TOLERANCE
            and gc.rel_error(wrong, expected) >= FD_TOLERANCE]


def _one_slot_rows(yours: np.ndarray, expected: np.ndarray, mask: np.ndarray, gname: str) -> list:
    """A note when yours is non-zero on a row with one real slot, where the softmax makes every ds (and so dm) 0."""
    single = mask.sum(-1) == 1                                          # (N,)
    bad = single & yours.reshape(len(mask), -1).any(-1) & ~expected.reshape(len(mask), -1).any(-1)
    if not bad.any():
        return []
    n = int(np.flatnonzero(bad)[0])
    return [f"yours is non-zero in row {n}, which has one real slot: p = 1 there whatever the score, so ds = 0 "
            f"{'' if gname == 'ds' else f'and {gname} = 0 '}there (the −p_i Σ_j p_j dp_j term cancels p_i dp_i)"]


def _softmax_notes(gname, yours, expected, dp, cache, case) -> list:
    notes = [f"yours looks like a known mistake: {name}; {why}" for name, why in
             _matching(yours, expected, [(ds, (name, why)) for ds, name, why in _softmax_mistakes(dp, cache.p)])]
    return notes + _one_slot_rows(yours, expected, case["mask"], gname)


def _wrong_ds_notes(yours, expected, candidates) -> list:
    """Notes for a gradient computed from a wrong ds: candidates are (the gradient it gives, name, why)."""
    found = _matching(yours, expected, [(g, (name, why)) for g, name, why in candidates])
    return [f"yours is what {name} gives, a mistake in the softmax step; {why}" for name, why in found]


def _attention_notes(gname, yours, expected, do, cache, case) -> list:
    """du and dm made from a wrong ds (the softmax step), recognised by recomputing them from each wrong ds."""
    if gname not in ("du", "dm"):
        return []
    dp = np.einsum("nmd,nd->nm", cache.c, do)                             # (N, M)
    notes = _wrong_ds_notes(yours, expected, [
        (np.einsum("nm,nmd->nd", ds, cache.m) if gname == "du" else ds[..., None] * cache.u[:, None, :], name, why)
        for ds, name, why in _softmax_mistakes(dp, cache.p)])
    return notes or (_one_slot_rows(yours, expected, case["mask"], gname) if gname == "dm" else [])


_SOFTMAX_BACKWARD = Target(
    function="softmax_backward",
    grads=("ds",),
    wrt=("s",),
    forward=ops.masked_softmax_forward,
    inputs=lambda case: {"s": case["s"], "mask": case["mask"]},
    arguments=lambda dp, cache: {"dp": dp, "p": cache.p},
    reference=lambda dp, cache: (ops.masked_softmax_backward(dp, cache),),
    slot_grads=frozenset({"ds"}),
    notes=_softmax_notes,
)

_ATTENTION_READ_BACKWARD = Target(
    function="attention_read_backward",
    grads=("du", "dm", "dc"),
    wrt=("u", "m", "c"),
    forward=ops.attention_read_forward,
    inputs=lambda case: {"u": case["u"], "m": case["m"], "c": case["c"], "mask": case["mask"]},
    arguments=lambda do, cache: {"do": do, "u": cache.u, "m": cache.m, "c": cache.c, "p": cache.p},
    reference=lambda do, cache: ops.attention_read_backward(do, cache),
    slot_grads=frozenset({"dm", "dc"}),
    notes=_attention_notes,
)


EXERCISE = register(Exercise(
    name="softmax_attention_backward",
    title="the backward pass of soft attention (a masked softmax, then a weighted sum of memories)",
    stub="tutorials/exercises/01_softmax_attention_backward.py",
    solution="tutorials/exercises/solutions/01_softmax_attention_backward.py",
    targets=(_SOFTMAX_BACKWARD, _ATTENTION_READ_BACKWARD),
    make_cases=_attention_cases,
    describe_case=_describe_attention_case,
    shared=(
        ({"softmax_backward: ds", "attention_read_backward: du", "attention_read_backward: dm"},
         "du and dm are made from your softmax_backward's ds, so fix softmax_backward first"),
        ({"attention_read_backward: du", "attention_read_backward: dm"},
         "what they share is ds, and softmax_backward is right on its own: look at the dp you hand it "
         "(dp_i = c_iᵀ do)"),
    ),
))
