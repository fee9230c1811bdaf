"""Exercise 3: the backward of MemNN's margin ranking loss through s(x, y) = Φx(x)ᵀ Uᵀ U Φy(y) (Weston et al. 2014).

    s(a, b) = (U a)ᵀ (U b)                          ∂s/∂U = U (a bᵀ + b aᵀ) = (U a) bᵀ + (U b) aᵀ
    h_j     = γ − s(x, y) + s(x, ȳ_j)                one hinge per sampled negative ȳ_j
    ℓ       = Σ_j max(0, h_j)                        per question; only the active hinges (h_j > 0) have a slope

The learner writes score_backward (the identity above, batched) and margin_loss_backward (which hinges pass a
gradient, with which sign, to which score). Both get the cache of their own file's forward.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from memnet_np.exercises.attention import _matching
from memnet_np.exercises.grader import Exercise, forward_backward_target, register

GAP = 0.05      # no hinge of a case is closer than this to its kink, so finite differences never cross one


class _ScoreCache(NamedTuple):
    U: np.ndarray                 # (d, D)
    a: np.ndarray                 # (N, D) Φx of each question
    b: np.ndarray                 # (N, D) Φy of each candidate
    ea: np.ndarray                # (N, d) U a
    eb: np.ndarray                # (N, d) U b


def _score_forward(U, a, b):
    """s_n = (U a_n)ᵀ (U b_n) for a, b (N, D)."""
    ea = a @ U.T                                              # (N, d)
    eb = b @ U.T                                              # (N, d)
    return np.sum(ea * eb, -1), _ScoreCache(U, a, b, ea, eb)  # (N,)


def _score_backward(ds, cache):
    """dU = Σ_n ds_n ((U a_n) b_nᵀ + (U b_n) a_nᵀ)."""
    return ((ds[:, None] * cache.ea).T @ cache.b + (ds[:, None] * cache.eb).T @ cache.a,)   # (d, D)


class _MarginCache(NamedTuple):
    U: np.ndarray                 # (d, D)
    x: np.ndarray                 # (N, D) Φx of each question
    y: np.ndarray                 # (N, D) Φy of the true candidate
    y_neg: np.ndarray             # (N, S, D) Φy of the sampled negatives
    active: np.ndarray            # (N, S) bool, h_j > 0


def _margin_forward(U, x, y, y_neg, margin):
    """ℓ_n = Σ_j max(0, γ − s(x_n, y_n) + s(x_n, ȳ_nj))."""
    ex = x @ U.T                                              # (N, d)
    s_pos = np.sum(ex * (y @ U.T), -1)                        # (N,)
    s_neg = np.einsum("nd,nsd->ns", ex, y_neg @ U.T)          # (N, S)
    h = margin - s_pos[:, None] + s_neg                       # (N, S)
    return np.maximum(h, 0).sum(-1), _MarginCache(U, x, y, y_neg, h > 0)   # (N,)


def _margin_parts(dloss, cache, *, every_hinge=False, positive="per hinge", upstream=True):
    """(ds_pos (N,), ds_neg (N, S)) of the loss, right by default; the keywords make the usual wrong ones."""
    dl = dloss if upstream else np.ones_like(dloss)
    slope = np.ones(cache.active.shape) if every_hinge else cache.active.astype(float)   # (N, S)
    ds_neg = dl[:, None] * slope                              # (N, S) ∂ℓ/∂s(x, ȳ_j) = +1 on an active hinge
    count = {"per hinge": slope.sum(-1), "once": slope.any(-1).astype(float), "none": np.zeros(len(dl))}[positive]
    return -dl * count, ds_neg                                # ∂ℓ/∂s(x, y) = −1 per active hinge


def _margin_dU(dloss, cache, score=None, **wrong):
    """dU of the margin loss from its two score gradients, each score's dU by `score` (default the right one)."""
    score = score or (lambda ds, U, a, b: _score_backward(ds, _ScoreCache(U, a, b, a @ U.T, b @ U.T))[0])
    ds_pos, ds_neg = _margin_parts(dloss, cache, **wrong)
    N, S, D = cache.y_neg.shape
    x_rep = np.broadcast_to(cache.x[:, None, :], (N, S, D)).reshape(N * S, D)   # (N·S, D) x once per negative
    return (score(ds_pos, cache.U, cache.x, cache.y)
            + score(ds_neg.reshape(-1), cache.U, x_rep, cache.y_neg.reshape(N * S, D)))   # (d, D)


def _margin_backward(dloss, cache):
    return (_margin_dU(dloss, cache),)


def _one_term_scores():
    """The usual wrong ∂s/∂U, as (function (ds, U, a, b) -> dU, what is wrong with it)."""
    return [
        (lambda ds, U, a, b: (ds[:, None] * (a @ U.T)).T @ b,
         "it has only the term U a bᵀ = (U a) bᵀ of ∂s/∂U = U(a bᵀ + b aᵀ): U appears twice in s = (U a)ᵀ(U b), "
         "once in each factor, and (U b) aᵀ is missing (it lands on the columns of Φx, the question's and the "
         "chosen memory's words, which yours leaves at 0)"),
        (lambda ds, U, a, b: (ds[:, None] * (b @ U.T)).T @ a,
         "it has only the term U b aᵀ = (U b) aᵀ of ∂s/∂U = U(a bᵀ + b aᵀ): U appears twice in s = (U a)ᵀ(U b), "
         "once in each factor, and (U a) bᵀ is missing (it lands on the columns of Φy, the candidate's words, which "
         "yours leaves at 0)"),
        (lambda ds, U, a, b: 2 * (ds[:, None] * (a @ U.T)).T @ b,
         "it is 2 U a bᵀ: the derivative of uᵀu, 2u, does not apply, because s = (U a)ᵀ(U b) multiplies two "
         "different vectors; ∂s/∂U = U a bᵀ + U b aᵀ"),
        (lambda ds, U, a, b: 2 * (ds[:, None] * (b @ U.T)).T @ a,
         "it is 2 U b aᵀ: the derivative of uᵀu, 2u, does not apply, because s = (U a)ᵀ(U b) multiplies two "
         "different vectors; ∂s/∂U = U a bᵀ + U b aᵀ"),
    ]


def _score_notes(gname, yours, expected, ds, cache, case) -> list:
    return [f"yours looks like a known mistake: {why}" for why in _matching(yours, expected, [
        (score(ds, cache.U, cache.a, cache.b), why) for score, why in _one_term_scores()])]


def _margin_notes(gname, yours, expected, dloss, cache, case) -> list:
    active, total = int(cache.active.sum()), cache.active.size
    hinge = [
        (dict(every_hinge=True),
         f"it passes a gradient through every hinge, but only {active} of the {total} are active (h > 0): "
         "max(0, h) is flat where h ≤ 0, so an inactive hinge gives no gradient at all"),
        (dict(positive="none"),
         "it has only the negatives' scores s(x, ȳ_j): each active hinge γ − s(x, y) + s(x, ȳ_j) also pulls the "
         "true candidate's score up, ∂ℓ/∂s(x, y) = −(number of active hinges)"),
        (dict(positive="once"),
         "it counts the true candidate's score once per question: it appears in every hinge, so "
         "∂ℓ/∂s(x, y) = −(number of active hinges), not −1"),
        (dict(upstream=False),
         "it ignores dloss: each question's gradient is dloss_n times its hinges' slopes"),
    ]
    candidates = [(_margin_dU(dloss, cache, **kw), why) for kw, why in hinge]
    candidates += [(_margin_dU(dloss, cache, score), f"{why}; margin_loss_backward has the same mistake (through "
                                                      "score_backward?)") for score, why in _one_term_scores()]
    notes = [f"yours looks like a known mistake: {why}" for why in _matching(yours, expected, candidates)]
    if not notes and np.allclose(yours, -expected):
        notes.append("the hinge γ − s(x, y) + s(x, ȳ) grows with the negative's score and shrinks with the true "
                     "one's: ∂ℓ/∂s(x, ȳ_j) = +1 and ∂ℓ/∂s(x, y) = −1 per active hinge")
    return notes


def _features(rng, n, V, copies, words=(1, 4)):
    """n bags of words (counts) in `copies` of the 3V-dimensional feature space: (n, 3V)."""
    out = np.zeros((n, 3 * V))
    for copy in copies:
        k = rng.integers(words[0], words[1], size=n)            # words per sentence
        for i in range(n):
            np.add.at(out[i], copy * V + rng.integers(1, V, size=k[i]), 1.0)
    return out


def _margin_cases(rng: np.random.Generator) -> list:
    """Three float64 cases built like MemNN's hop 2: Φx has the question's words in copy 1 and the chosen memory's
    in copy 2 (none in one question of case 3, as at hop 1), every Φy its candidate's words in copy 3, so the two
    terms of ∂s/∂U land on different columns of U. The margin is chosen so that some hinges are active and some
    not in every case, no hinge within GAP of its kink, with one question whose hinges are all inactive."""
    specs = [(3, 4, 3, 7), (4, 3, 5, 6), (5, 5, 2, 5)]      # (N, S, d, V): non-square
    cases = []
    for N, S, d, V in specs:
        while True:
            U = 0.6 * rng.standard_normal((d, 3 * V))          # (d, D) columns of the null word too
            x = _features(rng, N, V, (0, 1))                   # (N, D)
            if N == 5:
                x[2, V:2 * V] = 0.0                            # no memory chosen yet
            y = _features(rng, N, V, (2,))                     # (N, D)
            y_neg = _features(rng, N * S, V, (2,)).reshape(N, S, 3 * V)   # (N, S, D)
            ex = x @ U.T
            g = np.einsum("nd,nsd->ns", ex, y_neg @ U.T) - np.sum(ex * (y @ U.T), -1)[:, None]   # (N, S) h − γ
            for margin in np.linspace(0.1, 3.0, 59):
                h = margin + g
                act = h > 0
                if (np.abs(h).min() > GAP and 0.3 < act.mean() < 0.8 and (~act.any(-1)).any()
                        and act.sum(-1).max() >= 2):
                    break
            else:
                continue
            break
        cases.append(dict(U=U, x=x, y=y, y_neg=y_neg, margin=float(margin), a=x, b=y))
    return cases


def _describe_margin_case(case: dict) -> str:
    N, S, D = case["y_neg"].shape
    d = case["U"].shape[0]
    _, cache = _margin_forward(case["U"], case["x"], case["y"], case["y_neg"], case["margin"])
    return (f"(N, S, d, D) = ({N}, {S}, {d}, {D}), γ = {case['margin']:.2f}, {int(cache.active.sum())} of "
            f"{cache.active.size} hinges active")


_SCORE_BACKWARD = forward_backward_target("score", "ds", _score_forward, _score_backward, wrt=("U",),
                                          inputs=("U", "a", "b"), notes=_score_notes)
_MARGIN_BACKWARD = forward_backward_target("margin_loss", "dloss", _margin_forward, _margin_backward, wrt=("U",),
                                           inputs=("U", "x", "y", "y_neg", "margin"), notes=_margin_notes)

EXERCISE = register(Exercise(
    name="memnn_margin_backward",
    title="the backward pass of MemNN's margin ranking loss through s(x, y) = Φx(x)ᵀ Uᵀ U Φy(y)",
    stub="tutorials/exercises/03_memnn_margin_backward.py",
    solution="tutorials/exercises/solutions/03_memnn_margin_backward.py",
    targets=(_SCORE_BACKWARD, _MARGIN_BACKWARD),
    make_cases=_margin_cases,
    describe_case=_describe_margin_case,
    shared=(({"score_backward: dU", "margin_loss_backward: dU"},
             "margin_loss_backward gets every score's dU from your score_backward, so fix score_backward first"),),
))
