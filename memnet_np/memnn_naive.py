"""The MemNN of memnet_np/memnn.py one example at a time, written from the paper: explicit 3|W| (+3) feature
vectors, s = aᵀUᵀUb, every hinge term of the margin ranking loss on its own, and the gradient of each active one
as U(abᵀ + baᵀ); hops by a plain argmax or the paper's pairwise-winner loop, over the memories that share a
word with the hop's input when G hashes by word.

It is the oracle of the vectorised code, so it calls none of its helpers: the features, the copies of the
vocabulary, the write-time features, the STOP memory and the n-gram hashing are all spelled out here again.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from memnet_np.memnn_data import NGRAM_PRIMES

if TYPE_CHECKING:
    from memnet_np.memnn import Config
    from memnet_np.memnn_data import Batch


class _Paper(NamedTuple):
    """The paper's feature space for one configuration: O's D = 3F (+1 STOP feature with AM, +3 write-time
    features), R's (1 + C)F + |W|, and U_Ot = [U_O | S_O | T_O] as one d × D matrix. F = |W| (+ n-gram buckets)."""
    V: int
    F: int
    ngrams: int
    D: int
    U: np.ndarray
    C: int                        # copies of R's input that hold the chosen memories
    D_R: int
    V_R: int                      # the words R says: |W|, and with answers of several words extra ones and STOP
    G: int                        # features of the words R has said (V_R with answers of several words, else 0)


def _paper(params, config: Config) -> _Paper:
    V, F = config.vocab_size, config.vocab_size + (config.ngram_buckets if config.ngrams > 1 else 0)
    blocks = [params["U_O"]] + ([params["S_O"]] if config.adaptive else []) + \
        ([params["T_O"]] if config.time_features else [])
    C = config.hops if config.answer_input == "ordered" else 1
    several = config.answer_words > 1
    V_R = V + (len(config.extra_words) + 1 if several else 0)
    G = V_R if several else 0
    return _Paper(V, F, config.ngrams, 3 * F + config.adaptive + 3 * config.time_features, np.hstack(blocks), C,
                  (1 + C) * F + G + V_R, V_R, G)


def _answer_words(answer, config: Config, P: _Paper) -> list:
    """What R must say for the vocabulary word `answer`: the word itself, or with answers of several words its
    words (answer_parts) and then STOP, id V_R − 1."""
    if config.answer_words == 1:
        return [int(answer)]
    return list(dict(config.answer_parts).get(int(answer), (int(answer),))) + [P.V_R - 1]


def _said(x_r, words, P: _Paper):
    """R's input with the words said so far in their own copy, after the memories' copies."""
    x_r = x_r.copy()
    for w in words:
        x_r[(1 + P.C) * P.F + w] += 1.0
    return x_r


def _word(w, P: _Paper):
    """Φy(w): the word w in the candidates' copy, the last V_R features."""
    b = np.zeros(P.D_R)
    b[P.D_R - P.V_R + w] = 1.0
    return b


def _phi(words, copy, size, P: _Paper, grams=True):
    """A sentence's bag of words (and, with NG and grams, of its 2- and 3-grams, each in its bucket after the |W|
    words) in copy 0, 1, 2, … of the F features, in a vector of `size` zeros."""
    v = np.zeros(size)
    words = [int(w) for w in np.ravel(words) if w != 0]      # padding comes last: the rest are consecutive
    for w in words:
        v[copy * P.F + w] += 1.0
    for n in range(2, P.ngrams + 1 if grams else 2):
        for j in range(len(words) - n + 1):
            h = 7919 * n + sum(w * p for w, p in zip(words[j:j + n], NGRAM_PRIMES))
            v[copy * P.F + P.V + h % (P.F - P.V)] += 1.0
    return v


def _words(sentence) -> set:
    """The words of a sentence (ids, padding 0 left out): with hashing, the buckets it is stored in."""
    return {int(w) for w in np.ravel(sentence) if w != 0}


def _phi_y(batch, n, i, P: _Paper, stop_slot):
    """Φy(m_i) of example n: its words in copy 3, or the STOP memory's own feature (column 3|W|)."""
    if i == stop_slot:
        v = np.zeros(P.D)
        v[3 * P.F] = 1.0
        return v
    return _phi(batch.stories[n, i], 2, P.D, P)


def _paper_scores(params, config: Config, P: _Paper):
    """s(U, a, b) = aᵀUᵀUb, and s_Ot(x, Φy(y), Φy(y'), Φy(y) − Φy(y') + Φt) = Φxᵀ U_Otᵀ U_Ot (…); with NL
    e(v) = W tanh(Uv) replaces Uv: s = e(a)ᵀe(b) and s_Ot = e(x)ᵀ(e(y) − e(y') + T_O Φt)."""
    W = {id(P.U): params.get("W_O"), id(params["U_R"]): params.get("W_R")}

    def e(U, v):
        return U @ v if W[id(U)] is None else W[id(U)] @ np.tanh(U @ v)

    def s(U, a, b):
        return e(U, a) @ e(U, b)

    def s_ot(x, b_y, b_y2, b):
        if W[id(P.U)] is None:
            return s(P.U, x, b)
        return e(P.U, x) @ (e(P.U, b_y) - e(P.U, b_y2) + params["T_O"] @ b[P.D - 3:])

    return s, s_ot


def loss_and_grads_naive(params, batch: Batch, config: Config):
    """The loss and its gradients one example and one hinge at a time, each active term adding ± U(abᵀ + baᵀ).

    With NL the score is e(a)ᵀe(b), e(v) = W tanh(Uv) (and s_Ot = e(x)ᵀ(e(y) − e(y') + T_O Φt)); the naive
    gradient is the linear model's only, so the NL gradients are checked against differences of this loss."""
    P = _paper(params, config)
    V, K, g, time = P.V, config.hops, config.margin, config.time_features
    U_O, U_R = P.U, params["U_R"]
    dU_O, dU_R = np.zeros_like(U_O), np.zeros_like(U_R)
    s, s_ot = _paper_scores(params, config, P)

    def ds_dU(U, a, b):
        return U @ (np.outer(a, b) + np.outer(b, a))

    M = batch.mask.shape[1]
    stop_slot = M if config.adaptive else None
    loss = 0.0
    for n in range(len(batch.answers)):
        if batch.weight[n] == 0:
            continue
        x = _phi(batch.queries[n], 0, P.D, P)
        x_r = _phi(batch.queries[n], 0, P.D_R, P)
        candidates = [i for i in range(M) if batch.mask[n, i]] + ([stop_slot] if config.adaptive else [])
        t_x = M + config.adaptive                             # the question: after every memory (and STOP)
        for k in range(K):
            if not batch.active[n, k]:
                break
            f = batch.targets[n, k]
            for j in candidates:
                c = batch.neg_memories[n, k, j]
                if j == f or c == 0:
                    continue
                if not time:
                    b_f, b_j = _phi_y(batch, n, f, P, stop_slot), _phi_y(batch, n, j, P, stop_slot)
                    h = g - s(U_O, x, b_f) + s(U_O, x, b_j)
                    if h > 0:
                        loss += c * h
                        dU_O += c * (ds_dU(U_O, x, b_j) - ds_dU(U_O, x, b_f))
                    continue
                for y, y2, sign in ((f, j, -1.0), (j, f, +1.0)):     # γ − s_Ot(x, f, f̄), γ + s_Ot(x, f̄, f)
                    b_y, b_y2 = _phi_y(batch, n, y, P, stop_slot), _phi_y(batch, n, y2, P, stop_slot)
                    b = b_y - b_y2
                    b[P.D - 3:] = [t_x < y, t_x < y2, y < y2]        # Φt(x, y, y')
                    h = g + sign * s_ot(x, b_y, b_y2, b)
                    if h > 0:
                        loss += c * h
                        dU_O += c * sign * ds_dU(U_O, x, b)
            if f != stop_slot:
                x = x + _phi(batch.stories[n, f], 1, P.D, P, config.chosen_ngrams)   # [x, f_k]: f_k in copy 2
                x_r = x_r + _phi(batch.stories[n, f], 1 + min(k, P.C - 1), P.D_R, P)   # R: copy 2, or k + 2
            t_x = f
        say = _answer_words(batch.answers[n], config, P)       # the answer's words (then STOP)
        for j, r in enumerate(say[:config.answer_words + 1]):   # step j of R: the words before j are in its input
            x_rj = _said(x_r, say[:j], P)
            for w in range(1, P.V_R):
                c = batch.neg_answers[n, w] if config.answer_words == 1 else batch.neg_answers[n, j, w]
                if w == r or c == 0:
                    continue
                b_r, b_w = _word(r, P), _word(w, P)
                h = (config.answer_margin or g) - s(U_R, x_rj, b_r) + s(U_R, x_rj, b_w)   # γ_R
                if h > 0:
                    loss += c * h
                    dU_R += c * (ds_dU(U_R, x_rj, b_w) - ds_dU(U_R, x_rj, b_r))
    if config.nonlinear:
        return loss, None
    grads = {"U_O": dU_O[:, :3 * P.F], "U_R": dU_R}
    if config.adaptive:
        grads["S_O"] = dU_O[:, 3 * P.F:3 * P.F + 1]
    if time:
        grads["T_O"] = dU_O[:, P.D - 3:]
    return loss, grads


def predict_naive(params, batch: Batch, config: Config):
    """(answers (N,), chosen (N, K)): argmax hops, or the winner loop with write-time features, one example at a
    time with explicit feature vectors; with AM the hops end at STOP."""
    P = _paper(params, config)
    V, K, time = P.V, config.hops, config.time_features
    U_O, U_R = P.U, params["U_R"]
    s, s_ot = _paper_scores(params, config, P)
    M = batch.mask.shape[1]
    stop_slot = M if config.adaptive else None
    answers, chosen = [], []
    for n in range(len(batch.answers)):
        x = _phi(batch.queries[n], 0, P.D, P)
        x_r = _phi(batch.queries[n], 0, P.D_R, P)
        memories = [i for i in range(M) if batch.mask[n, i]]
        heard = _words(batch.queries[n])                      # the input's words: its buckets with hashing
        t_x, picks = M + config.adaptive, []
        for k in range(K):
            shared = [i for i in memories if _words(batch.stories[n, i]) & heard]
            candidates = (shared or memories if config.hashing else memories) + ([stop_slot] if config.adaptive else [])
            if config.exclude_chosen:                         # no memory chosen twice (STOP is never in picks here)
                candidates = [i for i in candidates if i not in picks]
            if time:
                best = candidates[0]
                for i in candidates[1:]:                      # y = the winner so far, y' = the next memory
                    b_y, b_y2 = _phi_y(batch, n, best, P, stop_slot), _phi_y(batch, n, i, P, stop_slot)
                    b = b_y - b_y2
                    b[P.D - 3:] = [t_x < best, t_x < i, best < i]
                    if not s_ot(x, b_y, b_y2, b) > 0:
                        best = i
            else:
                scores = [s(U_O, x, _phi_y(batch, n, i, P, stop_slot)) for i in candidates]
                best = candidates[int(np.argmax(scores))]
            picks.append(best)
            if best == stop_slot:                             # STOP: the remaining hops do nothing
                picks += [stop_slot] * (K - 1 - k)
                break
            x = x + _phi(batch.stories[n, best], 1, P.D, P, config.chosen_ngrams)
            x_r = x_r + _phi(batch.stories[n, best], 1 + min(k, P.C - 1), P.D_R, P)
            t_x = best
            heard |= _words(batch.stories[n, best])
        said = []                                             # R: a word at a time, until STOP
        for j in range(config.answer_words):
            stop = P.V_R - 1 if config.answer_words > 1 else None
            words = [w for w in range(1, P.V_R) if not (w == stop and j == 0)]   # an answer has a first word
            word_scores = [s(U_R, _said(x_r, said, P), _word(w, P)) for w in words]
            w = words[int(np.argmax(word_scores))]
            if w == stop:
                break
            said.append(w)
        answers.append(_answer_of(said, config))
        chosen.append(picks)
    return np.array(answers), np.array(chosen)


def _answer_of(said: list, config: Config) -> int:
    """The vocabulary word R said: several words are the comma answer made of them in that order, one word is
    itself if it is a vocabulary word and no comma answer; else 0 (the null word), no answer."""
    parts = {tuple(ws): t for t, ws in config.answer_parts}
    if tuple(said) in parts:
        return parts[tuple(said)]
    one = len(said) == 1 and said[0] < config.vocab_size and said[0] not in dict(config.answer_parts)
    return said[0] if one else 0
