"""MemNN's I and G, and its batches: what is fixed before a score is computed (see memnet_np/memnn.py).

    I   features: a sentence's bag of words, and with NG (Weston et al. 2015 appendix) its 2- and 3-grams hashed
        into `ngram_buckets` features after the |W| words.
    G   write_memory: each sentence into the next slot, oldest first; a capacity smaller than the story forgets
        the oldest sentences. With hashing (Config.hashing, the 2014 paper's §3 for huge memories) each sentence
        also goes into one bucket per word it contains (word_buckets), and O scores only the memories in a bucket
        of its input, the ones sharing a word with it (hashed_candidates).

A Batch carries, beside the words, everything random or data-given the margin loss needs, so that
memnn.loss_and_grads is a deterministic function of (params, batch): the supporting fact each hop is trained to
choose (hop_targets; with AM stop_targets, the facts and then the STOP memory), and how often each memory and
each word is a sampled negative (sample_negatives, drawn when the batch is made, as the paper samples them at each
SGD step; with negatives = 0 every candidate counts once).
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, NamedTuple, Optional

import numpy as np

if TYPE_CHECKING:
    from memnet_np.memnn import Config

NGRAM_PRIMES = (1, 1009, 1018081)   # NG: the n-gram (w_1, …, w_n) goes to bucket (7919·n + Σ_i w_i·p_i) mod B


def bag_of_words(x: np.ndarray, V: int, dtype=np.float64) -> np.ndarray:
    """Word counts (..., V) of sentences x (..., L); the null word 0 is not counted."""
    lead, L = x.shape[:-1], x.shape[-1]
    S = int(np.prod(lead))                                    # number of sentences
    flat = (np.arange(S)[:, None] * V + x.reshape(S, L))[x.reshape(S, L) != 0]   # (words,) flat index into (S, V)
    return np.bincount(flat, minlength=S * V).reshape(lead + (V,)).astype(dtype)


def feature_size(config: Config) -> int:
    """F: features of one copy, the |W| words and, with NG, the n-gram buckets."""
    return config.vocab_size + (config.ngram_buckets if config.ngrams > 1 else 0)


def features(x: np.ndarray, config: Config, dtype=np.float64) -> np.ndarray:
    """I: counts (..., F) of the words of sentences x (..., L) and, with NG, of their hashed 2- and 3-grams."""
    bags = bag_of_words(x, config.vocab_size, dtype)          # (..., V)
    if config.ngrams == 1:
        return bags
    B, L = config.ngram_buckets, x.shape[-1]
    grams = []
    for n in range(2, config.ngrams + 1):
        win = np.stack([x[..., i:L - n + 1 + i] for i in range(n)], -1)   # (..., L−n+1, n) consecutive words
        h = 7919 * n + (win * np.array(NGRAM_PRIMES[:n])).sum(-1)        # (..., L−n+1)
        grams.append(np.where((win != 0).all(-1), 1 + h % B, 0))         # bucket + 1; 0 = not an n-gram
    counts = bag_of_words(np.concatenate(grams, -1), B + 1, dtype)[..., 1:]   # (..., B)
    return np.concatenate([bags, counts], -1)                 # (..., V + B)


def write_memory(stories: np.ndarray, mask: np.ndarray, capacity: int):
    """G: the sentences of each story in slots oldest first; a story longer than `capacity` forgets its oldest.

    stories (N, M, L) with the n sentences of a story in slots 0..n−1. Returns (stories (N, C, L), mask (N, C),
    forgotten (N,)) with C = min(M, capacity): slot i of the result holds sentence i + forgotten.
    """
    N, M, _ = stories.shape
    n = mask.sum(1)                                           # (N,) sentences per story
    forgotten = np.maximum(n - capacity, 0)                   # (N,) oldest sentences that do not fit
    C = min(M, capacity)
    src = np.minimum(forgotten[:, None] + np.arange(C), M - 1)  # (N, C) slot each new slot is read from
    rows = np.arange(N)[:, None]
    return stories[rows, src], mask[rows, src] & (np.arange(C) < n[:, None] - forgotten[:, None]), forgotten


def word_buckets(x: np.ndarray, V: int) -> np.ndarray:
    """G with hashing (the 2014 paper's §3, "huge memories"): a sentence goes into one bucket per word it contains.
    x (..., L) word ids -> (..., V) bool, True for the buckets of x (the null word 0 is in none)."""
    return bag_of_words(x, V) > 0


def hashed_candidates(buckets: np.ndarray, mask: np.ndarray, inp: np.ndarray) -> np.ndarray:
    """The memories O scores with hashing: those in a bucket of the input, i.e. sharing a word with it; where no
    memory of a story does, every memory (the input then has nothing to hash to, and a hop must choose one).

    buckets (N, M, V) bool of the memories, mask (N, M), inp (N, V) bool the words of the hop's input
    [x, m_o1, …]. Returns (N, M) bool."""
    share = mask & (buckets & inp[:, None, :]).any(-1)        # (N, M)
    return np.where(share.any(1, keepdims=True), share, mask)


# ----------------------------------------------------------------------------------------------------------------
# Batches: the supporting facts of each hop, and the negatives, drawn here so that loss_and_grads is deterministic


class Batch(NamedTuple):
    stories: np.ndarray        # (N, M, L) int word ids, slots oldest first (slot index = write time)
    queries: np.ndarray        # (N, L) int
    answers: np.ndarray        # (N,) int
    mask: np.ndarray           # (N, M) bool, slot holds a sentence
    targets: np.ndarray        # (N, K) int slot of the supporting fact each hop is trained to choose
    weight: np.ndarray         # (N,) float 1, or 0 for a question whose supporting facts are not all in memory
    active: np.ndarray         # (N, K) float 1 where hop k is trained (AM: the facts and the STOP hop; else all)
    neg_memories: np.ndarray   # (N, K, M') float how often each slot is a negative f̄ of hop k; M' = M, or M + 1
                               # with AM: slot M is the STOP memory
    neg_answers: np.ndarray    # (N, V) float how often each word is a negative r̄; with answer_words > 1
                               # (N, J, V_R), per step of R, over R's words (response_size)
    words: Optional[np.ndarray] = None       # (N, J) with answer_words > 1: R's target at each step, the answer's
                                             # words then STOP; J = answer_words + 1. None: one-word answers
    responding: Optional[np.ndarray] = None  # (N, J) float 1 on the steps up to and with STOP


def _count_facts(order, hops, room, extra_facts, sources, what="hops"):
    """(N,) supporting facts per question (-1 pads); ValueError for none, or for more than `room`."""
    count = (order != -1).sum(1)                              # (N,)
    if len(count) and count.min() == 0:
        n = int(np.argmin(count))
        where = f" ({sources[n]})" if sources is not None else ""
        raise ValueError(f"question {n}{where} has no supporting fact; MemNN is trained with strong supervision "
                         "and needs the supporting facts of every question")
    if len(count) and count.max() > room and extra_facts == "error":
        n = int(np.argmax(count))
        where = f" ({sources[n]})" if sources is not None else ""
        raise ValueError(f"question {n}{where} has {count[n]} supporting facts but the model has only "
                         f"{hops} {what}; use hops >= {count.max() + hops - room} or extra_facts='first'")
    return np.minimum(count, room)


def stop_targets(order: np.ndarray, hops: int, stop: int, extra_facts: str = "error", sources=None):
    """AM: (targets (N, K), active (N, K), known (N,)): the facts in the file's order, then the STOP memory (slot
    `stop`) one hop later; the hops after STOP are not trained. Needs hops >= facts + 1."""
    N, S = order.shape
    count = _count_facts(order, hops, hops - 1, extra_facts, sources, "hops (STOP included)")   # (N,)
    k = np.arange(hops)
    padded = np.concatenate([order, np.full((N, hops), -1, order.dtype)], 1)[:, :hops]   # (N, K)
    targets = np.where(k < count[:, None], padded, stop)      # (N, K) facts, then STOP
    active = k <= count[:, None]                              # (N, K)
    known = ~((targets < 0) & active).any(1)                  # (N,) a fact was cut off
    return np.where(known[:, None], targets, 0), active, known


def hop_targets(order: np.ndarray, hops: int, extra_facts: str = "error", sources=None):
    """(targets (N, K), known (N,)) from supporting facts in slots, file order, padded with negatives.

    A question with fewer facts than K repeats its last one; one with more raises ValueError unless
    extra_facts = "first". `known` is False where a fact a hop needs is missing (cut off: a negative slot).
    """
    N, S = order.shape
    _count_facts(order, hops, hops, extra_facts, sources)
    order = np.concatenate([order, np.full((N, max(hops - S, 0)), -1, order.dtype)], 1)[:, :hops]   # (N, K)
    targets = order.copy()
    for k in range(1, hops):                                  # repeat the last fact on the hops that have none
        targets[:, k] = np.where(order[:, k] == -1, targets[:, k - 1], order[:, k])
    known = (targets >= 0).all(1)                             # (N,)
    return np.where(known[:, None], targets, 0), known


# ----------------------------------------------------------------------------------------------------------------
# Answers of several words (Config.answer_words > 1): R's words are the vocabulary, the answer words that are no
# vocabulary word (extra_words, ids V, V + 1, …) and STOP, the last id.


def answer_vocabulary(words) -> dict:
    """The Config fields R needs to say answers of several words: every comma answer of the vocabulary
    ("apple,milk") split into its words (answer_parts), with the words that are no vocabulary word (task 19's n, s,
    e, w) as extra_words; {} for a vocabulary without comma answers. `answer_words` (> 1) turns them on."""
    index = {w: i for i, w in enumerate(words)}
    extra = sorted({p for w in words if "," in w for p in w.split(",") if p not in index})
    index.update({w: len(words) + e for e, w in enumerate(extra)})
    parts = tuple((i, tuple(index[p] for p in w.split(","))) for i, w in enumerate(words) if "," in w)
    return dict(answer_parts=parts, extra_words=tuple(extra)) if parts else {}


def response_size(config: Config) -> int:
    """V_R, the words R ranks: the vocabulary, and with answer_words > 1 also extra_words and STOP (V_R − 1)."""
    return config.vocab_size + (len(config.extra_words) + 1 if config.answer_words > 1 else 0)


@functools.lru_cache(maxsize=16)
def answer_table(config: Config) -> np.ndarray:
    """(V, P) every vocabulary word as R says it: its words (answer_parts; else the word itself), then STOP to the
    end of the row, P = 1 + the most words of an answer or answer_words. Row 0, the null word, is −1. Built once
    per config (every batch and every inference reads it), so read-only."""
    parts = dict(config.answer_parts)
    P = 1 + max([len(ws) for ws in parts.values()] + [config.answer_words])
    table = np.full((config.vocab_size, P), response_size(config) - 1, np.int64)   # (V, P) STOP
    table[:, 0] = np.arange(config.vocab_size)
    for t, ws in parts.items():
        table[t, :len(ws)] = ws
    table[0] = -1
    table.flags.writeable = False
    return table


def response_targets(answers, config: Config, sources=None, check: bool = False):
    """(words (N, J), responding (N, J)) for answer ids (N,), J = answer_words + 1: R's target at each step, the
    answer's words then STOP, and 1 on the steps up to STOP. An answer of more than answer_words words keeps its
    first J words (it cannot be answered); check=True (training) raises ValueError for it instead."""
    J = config.answer_words + 1
    rows = answer_table(config)[answers]                      # (N, P)
    n = (rows != response_size(config) - 1).sum(1)            # (N,) words of each answer
    if check and len(n) and n.max() > config.answer_words:
        i = int(np.argmax(n))
        where = f" ({sources[i]})" if sources is not None else ""
        raise ValueError(f"question {i}{where} has an answer of {n[i]} words but the model answers with at most "
                         f"answer_words = {config.answer_words}; use answer_words >= {n.max()}")
    return rows[:, :J], (np.arange(J) <= n[:, None]).astype(float)


def sample_negatives(mask, targets, answers, V: int, negatives: int, rng: Optional[np.random.Generator],
                     stop: bool = False, candidates: Optional[np.ndarray] = None):
    """Counts of negative memories (N, K, M') and answer words (N, V) for answers (N,), or (N, J, V) for R's
    targets (N, J) at each step: every candidate once when negatives = 0 or
    rng is None, else `negatives` draws with replacement, uniform over the candidates other than the target.
    With stop=True the STOP memory, slot M' − 1 = M, is a candidate too. `candidates` (N, K, M) bool narrows each
    hop's memories (hashing: those sharing a word with the hop's input); by default every sentence in memory."""
    N, M = mask.shape
    K = targets.shape[1]
    if candidates is not None:
        return _sample_among(candidates, targets, answers, V, negatives, rng, stop)
    if negatives == 0 or rng is None:
        cand = np.concatenate([mask, np.ones((N, 1), bool)], 1) if stop else mask    # (N, M')
        neg_m = (cand[:, None, :] & (np.arange(M + stop) != targets[..., None])).astype(float)   # (N, K, M')
        return neg_m, _every_answer_but(answers, V)
    n = mask.sum(1)                                           # (N,) valid slots, a prefix of the memory
    n_c = n + stop                                            # (N,) candidates: the sentences (and STOP, as n)
    t = np.where(targets == M, n[:, None], targets) if stop else targets   # (N, K) target among the candidates
    j = np.floor(rng.random((N, K, negatives)) * (n_c[:, None, None] - 1)).astype(np.int64)  # (N, K, S) [0, n_c−1)
    j += j >= t[..., None]                                    # skip the target: uniform over the others
    if stop:
        j = np.where(j == n[:, None, None], M, j)             # candidate n is the STOP memory, slot M
    ok = np.broadcast_to((n_c > 1)[:, None, None], j.shape)   # a one-sentence story has no negative memory
    return _count_draws(j, ok, M + stop, answers, V, negatives, rng)


def _every_answer_but(answers, V: int) -> np.ndarray:
    """(N, V) every word once but the null word and the answer: the answer negatives when none are drawn."""
    neg_a = np.ones(answers.shape + (V,))                     # (N, [J,] V)
    neg_a[..., 0] = 0.0                                       # the null word is never an answer
    np.put_along_axis(neg_a, answers[..., None], 0.0, -1)
    return neg_a


def _count_draws(j, ok, slots: int, answers, V: int, negatives: int, rng):
    """The drawn memories j (N, K, S) where ok, counted per slot: (N, K, slots); then `negatives` answer words per
    question (or per step of R), drawn uniformly from the words other than the null word and the answer, counted:
    (N, [J,] V)."""
    N, K, _ = j.shape
    neg_m = np.zeros((N, K, slots))                           # (N, K, M')
    nn, kk, _ = np.indices(j.shape)
    np.add.at(neg_m, (nn[ok], kk[ok], j[ok]), 1.0)
    w = 1 + np.floor(rng.random(answers.shape + (negatives,)) * (V - 2)).astype(np.int64)   # (N, [J,] S) in [1, V−1)
    w += w >= answers[..., None]                              # skip the answer
    neg_a = np.zeros(answers.shape + (V,))                    # (N, [J,] V)
    np.add.at(neg_a.reshape(-1, V), (np.repeat(np.arange(answers.size), negatives), w.ravel()), 1.0)
    return neg_m, neg_a


def _sample_among(candidates, targets, answers, V: int, negatives: int, rng, stop: bool):
    """sample_negatives for candidate sets that need not be a prefix of the memory (N, K, M)."""
    N, K, M = candidates.shape
    cand = np.concatenate([candidates, np.ones((N, K, 1), bool)], -1) if stop else candidates   # (N, K, M')
    cand = cand & (np.arange(M + stop) != targets[..., None])  # (N, K, M') the target is never its own negative
    if negatives == 0 or rng is None:
        return cand.astype(float), _every_answer_but(answers, V)
    count = cand.sum(-1)                                      # (N, K) candidates to draw from
    r = np.floor(rng.random((N, K, negatives)) * count[..., None]).astype(np.int64)   # (N, K, S) in [0, count)
    j = (np.cumsum(cand, -1)[:, :, None, :] <= r[..., None]).sum(-1)                  # (N, K, S) the r-th candidate
    ok = np.broadcast_to(count[..., None] > 0, j.shape)
    return _count_draws(j, ok, M + stop, answers, V, negatives, rng)


def hop_candidates(stories, queries, mask, targets, V: int) -> np.ndarray:
    """With hashing, the memories each hop's loss ranks the true fact against: (N, K, M) bool, those sharing a word
    with the hop's input built from the TRUE facts, [x, f1, …, f(k−1)] (a STOP target, slot M, adds no words)."""
    N, M = mask.shape
    rows = np.arange(N)
    buckets = word_buckets(stories, V)                        # (N, M, V)
    inp = word_buckets(queries, V)                            # (N, V)
    out = []
    for k in range(targets.shape[1]):
        out.append(hashed_candidates(buckets, mask, inp))
        f = targets[:, k]                                     # (N,)
        inp = inp | (buckets[rows, np.minimum(f, M - 1)] & (f < M)[:, None])
    return np.stack(out, 1)                                   # (N, K, M)


def without_earlier_facts(candidates, targets) -> np.ndarray:
    """exclude_chosen: each hop's candidates (N, K, M) without the true facts of the hops before it (a STOP
    target, slot M, is no memory)."""
    N, K, M = candidates.shape
    facts = np.zeros((N, K, M + 1), bool)                     # (N, K, M + 1) the fact of hop k, one-hot
    facts[np.arange(N)[:, None], np.arange(K), np.clip(targets, 0, M)] = True
    earlier = np.cumsum(facts, 1) > facts                     # (N, K, M + 1) the facts of hops 1 … k − 1
    return candidates & ~earlier[..., :M]


def _batch(stories, queries, answers, mask, order, config: Config, rng, sources=None, train: bool = False) -> Batch:
    words = responding = None
    if config.answer_words > 1:                               # R answers word by word: a target per step
        words, responding = response_targets(answers, config, sources, check=train)
    stories, mask, forgotten = write_memory(stories, mask, config.memory_size)
    N, M = mask.shape
    active = np.ones((N, config.hops), bool)
    if order is None:                                         # no supporting facts: prediction only, no loss
        targets, known = np.zeros((N, config.hops), np.int64), np.zeros(N, bool)
    else:
        moved = order - forgotten[:, None]                                        # (N, S) slots after forgetting
        order = np.where(order >= 0, np.where(moved >= 0, moved, -2), order)      # a forgotten fact is cut off (-2)
        if config.adaptive:
            targets, active, known = stop_targets(order, config.hops, M, config.extra_facts, sources)
        else:
            targets, known = hop_targets(order, config.hops, config.extra_facts, sources)
    cand = hop_candidates(stories, queries, mask, targets, config.vocab_size) if config.hashing else None
    if config.exclude_chosen:                                 # a later hop ranks its fact against the others only
        every = np.broadcast_to(mask[:, None, :], (N, config.hops, M)) if cand is None else cand
        cand = without_earlier_facts(every, targets)          # (N, K, M)
    neg_m, neg_a = sample_negatives(mask, targets, answers if words is None else words, response_size(config),
                                    config.negatives, rng, config.adaptive, cand)
    if responding is not None:
        neg_a *= responding[..., None]                        # no negatives after STOP
    return Batch(stories, queries, answers, mask, targets, known.astype(float), active.astype(float), neg_m, neg_a,
                 words, responding)


def make_batch(arrays, idx, config: Config, rng: Optional[np.random.Generator] = None,
               train: bool = False) -> Batch:
    """Rows idx of a vectorised split (memnet_np.data.BabiArrays). Negatives are sampled in training only;
    otherwise every candidate is a negative, so the validation loss is deterministic."""
    order = getattr(arrays, "supporting_order", None)
    if order is None or (len(arrays.answers) and (order[:, 0] == -1).all()):
        if train:
            raise ValueError("MemNN is trained with strong supervision, but this data has no supporting facts "
                             "(BabiArrays.supporting_order is missing or empty)")
        order = None
    else:
        order = order[idx]
    sources = [arrays.questions[i].source for i in np.atleast_1d(idx)] if getattr(arrays, "questions", None) \
        else None
    return _batch(arrays.stories[idx], arrays.queries[idx], arrays.answers[idx], arrays.mask[idx], order, config,
                  rng if train else None, sources, train)


def example_batch(config: Config, rng: np.random.Generator, N: int = 4, M: Optional[int] = None,
                  L: int = 5) -> Batch:
    """A small random valid batch: stories of different lengths (one with a single sentence), padded words,
    questions with one or two supporting facts."""
    from memnet_np.data.babi import random_story_arrays
    M = min(config.memory_size, 5) if M is None else M
    stories, queries, answers, mask = random_story_arrays(rng, N, M, L, config.vocab_size, min_sentences=2)
    n = mask.sum(1)                                           # (N,) sentences per story
    order = np.full((N, config.hops), -1, np.int64)
    for k in range(config.hops):
        order[:, k] = np.floor(rng.random(N) * n).astype(np.int64)
    order[::2, 1:] = -1                                       # every other question has a single fact
    if config.adaptive:
        order[:, config.hops - 1:] = -1                       # room for the STOP hop
    if config.answer_words > 1 and config.answer_parts:       # every other answer one of several words
        several = np.array([t for t, ws in config.answer_parts if len(ws) <= config.answer_words])
        answers[::2] = several[np.floor(rng.random(len(answers[::2])) * len(several)).astype(np.int64)]
    return _batch(stories, queries, answers, mask, order, config, rng)


def _check_batch(batch: Batch, config: Config) -> None:
    for name in batch._fields:
        value = getattr(batch, name)
        if value is not None and not isinstance(value, np.ndarray):
            raise ValueError(f"batch.{name} must be a numpy array, got {type(value).__name__}")
    if batch.stories.ndim != 3:
        raise ValueError(f"batch.stories must have shape (N, M, L), got {batch.stories.shape}")
    N, M, L = batch.stories.shape
    several = config.answer_words > 1                         # R answers word by word: targets per step
    J = config.answer_words + 1
    steps = (N, J) if several else None                       # the shape of words and responding
    if (batch.queries.shape[0] != N or batch.answers.shape != (N,) or batch.mask.shape != (N, M)
            or batch.targets.shape != (N, config.hops) or batch.active.shape != (N, config.hops)
            or batch.neg_memories.shape != (N, config.hops, M + config.adaptive)
            or batch.neg_answers.shape != (N,) + (J,) * several + (response_size(config),)
            or several != (batch.words is not None)
            or (several and not (batch.words.shape == steps and getattr(batch.responding, "shape", None) == steps))):
        raise ValueError(f"inconsistent batch for {config.hops} hops and V = {config.vocab_size}: stories "
                         f"{batch.stories.shape}, queries {batch.queries.shape}, answers {batch.answers.shape}, "
                         f"mask {batch.mask.shape}, targets {batch.targets.shape}, neg_memories "
                         f"{batch.neg_memories.shape}, neg_answers {batch.neg_answers.shape}"
                         + ("" if batch.words is None else f", words {batch.words.shape}")
                         + (f" (answer_words = {config.answer_words}: R's targets, batch.words, are "
                            f"{'missing' if batch.words is None else 'not expected'})"
                            if several != (batch.words is not None) else ""))
    for name in ("stories", "queries", "answers"):
        a = getattr(batch, name)
        if a.size and (a.min() < 0 or a.max() >= config.vocab_size):
            raise ValueError(f"batch.{name} holds word ids outside [0, {config.vocab_size}) "
                             f"(min {a.min()}, max {a.max()}): was the data encoded with another vocabulary?")
    if batch.words is not None and batch.words.size and (batch.words.min() < 1
                                                        or batch.words.max() >= response_size(config)):
        raise ValueError(f"batch.words holds ids outside R's words [1, {response_size(config)}) (min "
                         f"{batch.words.min()}, max {batch.words.max()})")
    if N and not batch.mask[:, 0].all():
        raise ValueError("every story needs at least one sentence in memory (slot 0 is empty for question "
                         f"{int(np.argmin(batch.mask[:, 0]))})")
