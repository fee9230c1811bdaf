"""Memory Networks (Weston, Chopra, Bordes 2014), strongly supervised, forward and backward by hand.

A memory network has four components. On bAbI (Weston et al. 2015, the 2014 paper's §3):

    I   input feature map: a sentence becomes a bag of words; every feature vector lives in D = 3|W| dimensions,
        three copies of the vocabulary: Φx puts the question's words in copy 1 and the words of memories already
        chosen in copy 2; Φy puts a candidate's words (a memory, or one answer word) in copy 3.
    G   generalization: each sentence is written into the next free slot, m_1 … m_M oldest first. With a capacity
        (`memory_size`) smaller than the story, the oldest sentences are forgotten first.
    O   output: k hard-argmax hops (k = 2 by default)
            o1 = argmax_i s_O(x, m_i)
            o2 = argmax_i s_O([x, m_o1], m_i)
    R   response: rank every vocabulary word,  r = argmax_w s_R([x, m_o1, m_o2], w)

with the score of an input x against a candidate y

    s(x, y) = Φx(x)ᵀ Uᵀ U Φy(y)          U is d × D (the paper's n × D); U_O for O, U_R for R.

Write-time features (2014 §3.4), on by default: a bag of words cannot say which of two sentences came last, so O
compares memories in pairs,

    s_Ot(x, y, y') = Φx(x)ᵀ U_Otᵀ U_Ot (Φy(y) − Φy(y') + Φt(x, y, y'))

where Φt holds three 0/1 features: x older than y, x older than y', y older than y'. The paper grows every Φ by
these 3 dimensions; U_Ot = [U_O | T_O] keeps them as a separate (d, 3) parameter T_O, so that
s_Ot = (U_O Φx)ᵀ (U_O Φy(y) − U_O Φy(y') + T_O Φt). y beats y' when s_Ot(x, y, y') > 0, and the argmax becomes a
loop over the memories in the order they were written that keeps the winner: the winner so far is y, the next
memory is y'. The write time of x is the question's (after every memory) at hop 1 and that of the memory chosen
last at the later hops, so "x older than y" reads "y was written after the fact just found".

Training with strong supervision: the supporting facts f1, f2 of each question are given (in the data file's
order, which is the order of reasoning). The margin ranking loss, γ the margin, one term per hop plus one for the
answer,

    Σ_{f̄≠f1} max(0, γ − s_O(x, f1) + s_O(x, f̄))  +  Σ_{f̄≠f2} max(0, γ − s_O([x, f1], f2) + s_O([x, f1], f̄))
      + Σ_{r̄≠r} max(0, γ − s_R([x, f1, f2], r) + s_R([x, f1, f2], r̄))

and with write-time features each memory term becomes two, because s_Ot is not antisymmetric:
max(0, γ − s_Ot(x, f, f̄)) + max(0, γ + s_Ot(x, f̄, f)). Every input is built from the TRUE supporting facts,
so no gradient ever flows through an argmax. The negatives f̄, r̄ are sampled when the batch is made (the paper
samples them at each SGD step), `negatives` per term and hop, or with negatives = 0 every candidate is summed.
A question with fewer supporting facts than k repeats its last one (a later hop learns to stay on it).

Gradient of one score: for s = aᵀ Uᵀ U b,  ∂s/∂U = U(a bᵀ + b aᵀ) = (Ua) bᵀ + (Ub) aᵀ. The vectorised backward
below computes exactly this sum over all active hinge terms of a batch, grouped as two matrix products per copy
of the vocabulary; `loss_and_grads_naive` writes it term by term, one example at a time.

Where this differs from the 2014 paper, and why (each a Config option):
    answer_input  "ordered" (default) gives R one copy of the vocabulary per hop, (k + 2)|W|; "sum" is the paper's
                  3|W|, which cannot know which chosen memory came last (see `answer_copies`).
    extra_facts   a question with more supporting facts than k hops is an error; "first" trains the hops on the
                  first k facts (the only way a k = 2 model can train on tasks 3, 7, 8, 16).
Extensions of Weston et al. 2015 (appendix), off by default:
    AM  adaptive   a STOP memory (its own feature, U_O's column S_O) is trained as the target one hop after the last
                   supporting fact; at test time the hops end when O chooses it, at most `hops` of them.
    NG  ngrams     2- and 3-grams of each sentence, hashed into `ngram_buckets` features beside the words.
    NL  nonlinear  every embedding UΦ becomes W tanh(UΦ) (W_O, W_R are d × d); s_Ot keeps T_O Φt outside.

Shape letters: N batch, M memory slots, L words, V vocabulary (|W|, with the null word 0), F features of a sentence
(V, or V + ngram_buckets), d embedding, K hops.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np

from memnet_np import ops

EXTRA_FACTS = ("error", "first")
NGRAM_PRIMES = (1, 1009, 1018081)   # NG: the n-gram (w_1, …, w_n) goes to bucket (7919·n + Σ_i w_i·p_i) mod B
ANSWER_INPUTS = ("ordered", "sum")


@dataclass(frozen=True)
class Config:
    """Defaults for bAbI 1k, strong supervision. `vocab_size` comes from the data; see `Config.for_data`."""
    vocab_size: int = 0          # V = |W|, including the null word 0
    d: int = 50                  # embedding size (the paper's n: U is n × 3|W|)
    hops: int = 2                # k
    memory_size: int = 50        # G's capacity: a longer story forgets its oldest sentences
    time_features: bool = True   # write-time features and the pairwise-winner loop (2014 §3.4)
    ngrams: int = 1              # NG (2015 appendix): 2 or 3 adds each sentence's 2-grams (and 3-grams), hashed
    ngram_buckets: int = 128     # into this many features after the |W| word features
    nonlinear: bool = False      # NL (2015 appendix): every embedding UΦ becomes W tanh(UΦ), a two-layer tanh
                                 # network; W_O, W_R are d × d
    adaptive: bool = False       # AM (2015 appendix): a learned STOP memory ends the hops; `hops` is then the most
                                 # hops, STOP included (the paper allows 10)
    margin: float = 0.1          # γ
    negatives: int = 10          # negatives sampled per hinge term and hop when the batch is made; 0 = all of them
    extra_facts: str = "error"   # a question with more supporting facts than hops: "error", or "first" (train the
                                 # hops on the first k facts, as a k = 2 model must on tasks 3, 7, 8, 16)
    answer_input: str = "ordered"  # R's input [x, m_o1, …, m_ok]: "sum" (the paper's 3|W|: every chosen memory in
                                 # one copy) or "ordered" (each hop's memory in a copy of its own, (k+2)|W|); see
                                 # `answer_copies` for why the default is not the paper's
    init_std: float = 0.1        # U ~ N(0, init_std²)
    # training (used by memnet_np.train)
    epochs: int = 60             # these three: mean validation error over the 20 bAbI 1k tasks (28.2% against
    lr: float = 0.005            # 29.4% for 30 epochs at lr 0.01); test error was not looked at
    decay_every: int = 10        # halve the learning rate every this many epochs
    batch_size: int = 32         # loss summed over the batch
    max_grad_norm: float = 40.0  # each matrix's gradient clipped to this norm
    val_fraction: float = 0.1
    dtype: str = "float64"

    def __post_init__(self):
        problems = []
        for name in ("d", "hops", "memory_size", "batch_size", "epochs", "decay_every"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.ngrams not in (1, 2, 3):
            problems.append(f"ngrams must be 1, 2 or 3, got {self.ngrams}")
        if self.ngram_buckets < 1:
            problems.append(f"ngram_buckets must be at least 1, got {self.ngram_buckets}")
        if self.adaptive and self.hops < 2:
            problems.append(f"adaptive hops need hops >= 2 (a fact, then STOP), got {self.hops}")
        if self.negatives < 0:
            problems.append(f"negatives must be >= 0 (0 = sum over all candidates), got {self.negatives}")
        if not self.margin > 0:
            problems.append(f"margin must be > 0, got {self.margin}")
        if self.answer_input not in ANSWER_INPUTS:
            problems.append(f"answer_input must be one of {ANSWER_INPUTS}, got {self.answer_input!r}")
        if self.extra_facts not in EXTRA_FACTS:
            problems.append(f"extra_facts must be one of {EXTRA_FACTS}, got {self.extra_facts!r}")
        if self.dtype not in ("float64", "float32"):
            problems.append(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")
        if problems:
            raise ValueError("invalid MemNN config: " + "; ".join(problems))

    @classmethod
    def tiny(cls, **overrides) -> "Config":
        """Small sizes for tests, gradient checks and fast tutorials."""
        base = dict(vocab_size=11, d=6, hops=2, memory_size=6, negatives=3, epochs=3, batch_size=4)
        base.update(overrides)
        return cls(**base)

    @classmethod
    def for_data(cls, dataset, **overrides) -> "Config":
        base = dict(vocab_size=len(dataset.vocab), memory_size=dataset.memory_size)
        base.update(overrides)
        return cls(**base)


# The two configurations of Weston et al. 2015 Table 3, as Config overrides for bAbI 1k (Config.for_data(ds, **…)).
# hops = 4 fits every task's facts + STOP but those of tasks 7 and 8, which train on their first 3 facts; the
# extended model's lr 0.02 was chosen on validation error: 11.7% mean over the 20 bAbI 1k tasks, 15.8% at 0.005.
PRESETS = {
    "basic": dict(hops=2, time_features=True, extra_facts="first"),
    "extended": dict(hops=4, time_features=True, extra_facts="first", adaptive=True, ngrams=3, nonlinear=True,
                     lr=0.02),
}

# ----------------------------------------------------------------------------------------------------------------
# Parameters


def param_names(config: Config) -> list[str]:
    return (["U_O"] + (["S_O"] if config.adaptive else []) + (["T_O"] if config.time_features else [])
            + ["U_R"] + (["W_O", "W_R"] if config.nonlinear else []))


def answer_copies(config: Config) -> int:
    """Copies of the vocabulary that hold the chosen memories in R's input: 1 with answer_input="sum", else k.

    With one copy, R sees the bag of [x, m_o1, m_o2] and cannot know which memory came last: in bAbI task 11,
    "Mary went to the bathroom. Afterwards she moved to the bedroom." and the same two sentences with the rooms
    swapped give the same bag but different answers, so half of such questions must fail whatever U_R is (we
    measure ~50% on tasks 11 and 13 with "sum"). A copy per hop keeps the order the hops found; O is unchanged.
    """
    return config.hops if config.answer_input == "ordered" else 1


def embedding_names(config: Config) -> list[str]:
    """No (V, d) word matrix here: U's columns of the null word never get a gradient, as no bag counts it."""
    return []


def init_params(config: Config, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """U_O (d, 3F), S_O (d, 1) the STOP memory's column, T_O (d, 3), U_R (d, (1 + answer_copies)·F + V) with F the
    features of a sentence (|W|, plus the n-gram buckets with NG), every
    entry ~ N(0, init_std²); NL's second layers W_O, W_R (d, d) ~ N(0, 1/d)."""
    if config.vocab_size < 3:
        raise ValueError(f"vocab_size must be at least 3 (null word + two words), got {config.vocab_size}")
    V, F, dtype = config.vocab_size, feature_size(config), np.dtype(config.dtype)
    shapes = {"U_O": (config.d, 3 * F), "S_O": (config.d, 1), "T_O": (config.d, 3),
              "U_R": (config.d, (1 + answer_copies(config)) * F + V)}
    shapes.update(W_O=(config.d, config.d), W_R=(config.d, config.d))
    std = {"W_O": config.d ** -0.5, "W_R": config.d ** -0.5}
    return {name: (rng.standard_normal(shapes[name]) * std.get(name, config.init_std)).astype(dtype)
            for name in param_names(config)}


# ----------------------------------------------------------------------------------------------------------------
# I and G: bags of words, and the memory written slot after slot


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
    neg_answers: np.ndarray    # (N, V) float how often each word is a negative r̄


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


def sample_negatives(mask, targets, answers, V: int, negatives: int, rng: Optional[np.random.Generator],
                     stop: bool = False):
    """Counts of negative memories (N, K, M') and answer words (N, V): every candidate once when negatives = 0 or
    rng is None, else `negatives` draws with replacement, uniform over the candidates other than the target.
    With stop=True the STOP memory, slot M' − 1 = M, is a candidate too."""
    N, M = mask.shape
    K = targets.shape[1]
    if negatives == 0 or rng is None:
        cand = np.concatenate([mask, np.ones((N, 1), bool)], 1) if stop else mask    # (N, M')
        neg_m = (cand[:, None, :] & (np.arange(M + stop) != targets[..., None])).astype(float)   # (N, K, M')
        neg_a = np.ones((N, V))                                                            # (N, V)
        neg_a[:, 0] = 0.0                                     # the null word is never an answer
        neg_a[np.arange(N), answers] = 0.0
        return neg_m, neg_a
    n = mask.sum(1)                                           # (N,) valid slots, a prefix of the memory
    n_c = n + stop                                            # (N,) candidates: the sentences (and STOP, as n)
    t = np.where(targets == M, n[:, None], targets) if stop else targets   # (N, K) target among the candidates
    j = np.floor(rng.random((N, K, negatives)) * (n_c[:, None, None] - 1)).astype(np.int64)  # (N, K, S) [0, n_c−1)
    j += j >= t[..., None]                                    # skip the target: uniform over the others
    if stop:
        j = np.where(j == n[:, None, None], M, j)             # candidate n is the STOP memory, slot M
    ok = np.broadcast_to((n_c > 1)[:, None, None], j.shape)   # a one-sentence story has no negative memory
    neg_m = np.zeros((N, K, M + stop))
    nn, kk, _ = np.indices(j.shape)
    np.add.at(neg_m, (nn[ok], kk[ok], j[ok]), 1.0)
    w = 1 + np.floor(rng.random((N, negatives)) * (V - 2)).astype(np.int64)   # (N, S) words in [1, V−1)
    w += w >= answers[:, None]                                # skip the answer
    neg_a = np.zeros((N, V))
    np.add.at(neg_a, (np.repeat(np.arange(N), negatives), w.ravel()), 1.0)
    return neg_m, neg_a


def _batch(stories, queries, answers, mask, order, config: Config, rng, sources=None) -> Batch:
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
    neg_m, neg_a = sample_negatives(mask, targets, answers, config.vocab_size, config.negatives, rng,
                                    config.adaptive)
    return Batch(stories, queries, answers, mask, targets, known.astype(float), active.astype(float), neg_m, neg_a)


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
                  rng if train else None, sources)


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
    return _batch(stories, queries, answers, mask, order, config, rng)


def _check_batch(batch: Batch, config: Config) -> None:
    for name in batch._fields:
        value = getattr(batch, name)
        if value is not None and not isinstance(value, np.ndarray):
            raise ValueError(f"batch.{name} must be a numpy array, got {type(value).__name__}")
    if batch.stories.ndim != 3:
        raise ValueError(f"batch.stories must have shape (N, M, L), got {batch.stories.shape}")
    N, M, L = batch.stories.shape
    if (batch.queries.shape[0] != N or batch.answers.shape != (N,) or batch.mask.shape != (N, M)
            or batch.targets.shape != (N, config.hops) or batch.active.shape != (N, config.hops)
            or batch.neg_memories.shape != (N, config.hops, M + config.adaptive)
            or batch.neg_answers.shape != (N, config.vocab_size)):
        raise ValueError(f"inconsistent batch for {config.hops} hops and V = {config.vocab_size}: stories "
                         f"{batch.stories.shape}, queries {batch.queries.shape}, answers {batch.answers.shape}, "
                         f"mask {batch.mask.shape}, targets {batch.targets.shape}, neg_memories "
                         f"{batch.neg_memories.shape}, neg_answers {batch.neg_answers.shape}")
    for name in ("stories", "queries", "answers"):
        a = getattr(batch, name)
        if a.size and (a.min() < 0 or a.max() >= config.vocab_size):
            raise ValueError(f"batch.{name} holds word ids outside [0, {config.vocab_size}) "
                             f"(min {a.min()}, max {a.max()}): was the data encoded with another vocabulary?")
    if N and not batch.mask[:, 0].all():
        raise ValueError("every story needs at least one sentence in memory (slot 0 is empty for question "
                         f"{int(np.argmin(batch.mask[:, 0]))})")


# ----------------------------------------------------------------------------------------------------------------
# Scores. U (d, 3V) is read as three blocks, one per copy of the vocabulary: U Φx(x) = U₁ q + U₂ c and
# U Φy(y) = U₃ y, with q, c, y the word counts of the question, the chosen memories, the candidate.


def embed_input(U, q, c):
    """U Φx([x, chosen memories]) for counts q (N, V), c (N, V). (N, d)"""
    V = q.shape[-1]
    return q @ U[:, :V].T + c @ U[:, V:2 * V].T


def embed_candidates(U, y):
    """U Φy(y) for counts y (..., V), the last copy of the vocabulary. (..., d)"""
    V = y.shape[-1]
    return y @ U[:, -V:].T


def embed_answer_input(U, q, memories):
    """U_R Φx([x, m_o1, …]) with the question in copy 1 and memories[c] (N, F) in copy c + 2. (N, d)"""
    F = q.shape[-1]
    return q @ U[:, :F].T + sum(m @ U[:, (1 + c) * F:(2 + c) * F].T for c, m in enumerate(memories))


def answer_memories(facts: list, config: Config) -> list:
    """R's memory copies from the K chosen memories' counts: [their sum] ("sum") or the K of them ("ordered")."""
    return list(facts) if config.answer_input == "ordered" else [sum(facts)]


def embed_input_backward(dex, q, c, dU):
    """Accumulate ∂loss/∂U from dex = ∂loss/∂(U Φx) (N, d) into dU (d, 3V)."""
    V = q.shape[-1]
    dU[:, :V] += dex.T @ q
    dU[:, V:2 * V] += dex.T @ c


def embed_candidates_backward(dey, y, dU):
    """Accumulate ∂loss/∂U from dey = ∂loss/∂(U Φy) (..., d) into dU's last copy."""
    V = y.shape[-1]
    dU[:, -V:] += dey.reshape(-1, dey.shape[-1]).T @ y.reshape(-1, V)


def embed_answer_input_backward(der, q, memories, dU):
    F = q.shape[-1]
    dU[:, :F] += der.T @ q
    for c, m in enumerate(memories):
        dU[:, (1 + c) * F:(2 + c) * F] += der.T @ m


def nonlinear_forward(pre, W):
    """NL: e = W tanh(pre) for pre = UΦ (..., d). Without NL (W is None) e = pre. Returns (e, cache)."""
    if W is None:
        return pre, None
    h, act = ops.tanh_forward(pre)                            # (..., d)
    return h @ W.T, act


def nonlinear_backward(de, cache, W, dW):
    """∂loss/∂pre from ∂loss/∂e; accumulates ∂loss/∂W into dW."""
    if W is None:
        return de
    dW += de.reshape(-1, de.shape[-1]).T @ cache.y.reshape(-1, cache.y.shape[-1])   # (d, d)
    return ops.tanh_backward(de @ W, cache)                   # (..., d)


class Scores(NamedTuple):
    memory: np.ndarray            # (N, K, M) s_O(x_k, m_i): x_k = [x, f1, …, f(k−1)] built from the TRUE facts
    time: Optional[np.ndarray]    # (N, K, 3) (U_O Φx_k)ᵀ T_O: the weight of each write-time feature at hop k
    answer: np.ndarray            # (N, V) s_R([x, f1, …, fK], w) for every word w


class Cache(NamedTuple):
    q: np.ndarray                 # (N, V) question counts
    bags: np.ndarray              # (N, M', V) memory counts (AM: slot M is STOP, no words)
    chosen: list                  # K × (N, V) counts of the facts already chosen, before each hop
    ex: list                      # K × (N, d) U_O Φx at each hop (NL: W_O tanh(U_O Φx))
    ex_nl: list                   # K × NL caches (None without NL)
    ey: np.ndarray                # (N, M', d) U_O Φy(m_i) (AM: slot M is S_O)
    ey_nl: Optional[ops.ActCache]
    r_memories: list              # R's memory copies: [Σ_k f_k] or [f_1, …, f_K], each (N, V) counts
    er: np.ndarray                # (N, d) U_R Φx([x, f1, …, fK])
    er_nl: Optional[ops.ActCache]
    ew: np.ndarray                # (V, d) U_R Φy(w) of every word w
    ew_nl: Optional[ops.ActCache]


def memory_candidates(params, batch: Batch, config: Config):
    """Counts (N, M', V), U_O Φy (N, M', d) and its NL cache for every memory; with AM one more, the STOP memory:
    no words, its own feature, whose column of U_O is S_O."""
    bags = features(batch.stories, config, params["U_O"].dtype)  # (N, M, F)
    ey = embed_candidates(params["U_O"], bags)                # (N, M, d)
    if config.adaptive:
        N, _, d = ey.shape
        bags = np.concatenate([bags, np.zeros((N, 1, bags.shape[-1]), bags.dtype)], 1)      # (N, M + 1, F)
        ey = np.concatenate([ey, np.broadcast_to(params["S_O"][:, 0], (N, 1, d))], 1)      # (N, M + 1, d)
    ey, nl = nonlinear_forward(ey, params.get("W_O"))         # (N, M', d)
    return bags, ey, nl


def answer_embeddings(params, q, facts, config: Config):
    """R's input U_R Φx([x, m_o1, …]) (N, d) and every word's U_R Φy(w) (V, d), with their NL caches."""
    V = config.vocab_size
    er, er_nl = nonlinear_forward(embed_answer_input(params["U_R"], q, answer_memories(facts, config)),
                                  params.get("W_R"))         # (N, d)
    ew, ew_nl = nonlinear_forward(params["U_R"][:, -V:].T, params.get("W_R"))   # (V, d) Φy(w) is one-hot
    return er, er_nl, ew, ew_nl


def forward(params, batch: Batch, config: Config):
    """The scores the loss needs, with every hop's input built from the supporting facts. Returns (Scores, Cache)."""
    _check_batch(batch, config)
    V, K = config.vocab_size, config.hops
    dtype = params["U_O"].dtype
    N = batch.answers.shape[0]
    rows = np.arange(N)
    q = features(batch.queries, config, dtype)                # (N, F)
    bags, ey, ey_nl = memory_candidates(params, batch, config)   # (N, M', F), (N, M', d)
    c = np.zeros_like(q)                                      # (N, F) no memory chosen yet
    chosen, exs, ex_nls, s_mem, s_time, facts = [], [], [], [], [], []
    for k in range(K):
        ex, ex_nl = nonlinear_forward(embed_input(params["U_O"], q, c), params.get("W_O"))   # (N, d)
        ex_nls.append(ex_nl)
        s_mem.append(np.einsum("nd,nmd->nm", ex, ey))         # (N, M) s_O(x_k, m_i)
        if config.time_features:
            s_time.append(ex @ params["T_O"])                 # (N, 3)
        chosen.append(c)
        exs.append(ex)
        facts.append(bags[rows, batch.targets[:, k]])         # (N, V) the true fact f_k
        c = c + facts[-1]
    er, er_nl, ew, ew_nl = answer_embeddings(params, q, facts, config)   # (N, d), (V, d)
    s_ans = er @ ew.T                                         # (N, V) s_R(x, w) = (U_R Φx)ᵀ U_R Φy(w)
    scores = Scores(np.stack(s_mem, 1), np.stack(s_time, 1) if s_time else None, s_ans)
    return scores, Cache(q, bags, chosen, exs, ex_nls, ey, ey_nl, answer_memories(facts, config), er, er_nl, ew,
                         ew_nl)


def backward(dscores: Scores, cache: Cache, params, config: Config) -> dict[str, np.ndarray]:
    """∂loss/∂params from ∂loss/∂scores: each score aᵀUᵀUb sends (Ub)·ds to Ua and (Ua)·ds to Ub, which is
    ∂s/∂U = U(abᵀ + baᵀ) summed over the batch."""
    grads = {name: np.zeros_like(p) for name, p in params.items()}
    V = config.vocab_size
    dey = np.zeros_like(cache.ey)                             # (N, M, d)
    for k in reversed(range(config.hops)):
        ds = dscores.memory[:, k]                             # (N, M)
        dex = np.einsum("nm,nmd->nd", ds, cache.ey)           # (N, d) ∂/∂(U_O Φx) of Σ_i ds_i (U_O Φx)ᵀ(U_O Φy(m_i))
        dey += ds[..., None] * cache.ex[k][:, None, :]        # (N, M, d)
        if config.time_features:
            grads["T_O"] += cache.ex[k].T @ dscores.time[:, k]      # (d, 3)
            dex += dscores.time[:, k] @ params["T_O"].T             # (N, d)
        dex = nonlinear_backward(dex, cache.ex_nl[k], params.get("W_O"), grads.get("W_O"))
        embed_input_backward(dex, cache.q, cache.chosen[k], grads["U_O"])
    dey = nonlinear_backward(dey, cache.ey_nl, params.get("W_O"), grads.get("W_O"))   # (N, M', d)
    if config.adaptive:
        grads["S_O"] += dey[:, -1].sum(0)[:, None]            # (d, 1) the STOP memory's column
        dey, bags = dey[:, :-1], cache.bags[:, :-1]
    else:
        bags = cache.bags
    embed_candidates_backward(dey, bags, grads["U_O"])
    dans = dscores.answer                                     # (N, V)
    dew = nonlinear_backward(dans.T @ cache.er, cache.ew_nl, params.get("W_R"), grads.get("W_R"))   # (V, d)
    grads["U_R"][:, -V:] += dew.T                             # (d, V) the answer words' side
    der = nonlinear_backward(dans @ cache.ew, cache.er_nl, params.get("W_R"), grads.get("W_R"))    # (N, d)
    embed_answer_input_backward(der, cache.q, cache.r_memories, grads["U_R"])
    return grads


# ----------------------------------------------------------------------------------------------------------------
# The margin ranking loss on the scores


class MarginCache(NamedTuple):
    targets: np.ndarray           # (N, K)
    grad: Scores                  # ∂loss/∂scores, computed with the loss (each hinge's slope is 0 or ±count)


def _older_than_features(t_x, targets_k, M):
    """0/1 features of the pairs (f, j) and (j, f): x older than j (N, M), x older than f (N,), f older than j,
    j older than f (N, M). Write time = slot index; t_x (N,) the write time of x."""
    slot = np.arange(M)
    x_j = (t_x[:, None] < slot).astype(float)                 # (N, M)
    x_f = (t_x < targets_k).astype(float)                     # (N,)
    f_j = (targets_k[:, None] < slot).astype(float)           # (N, M)
    j_f = (slot < targets_k[:, None]).astype(float)           # (N, M)
    return x_j, x_f, f_j, j_f


def margin_loss_forward(scores: Scores, batch: Batch, config: Config):
    """Summed margin ranking loss over the batch (one term per hop per negative, plus the answer terms).

    Returns (loss, cache). The hinge slopes are found here; margin_loss_backward hands them out."""
    g = config.margin
    N, K, M = scores.memory.shape
    rows = np.arange(N)
    loss = 0.0
    d_mem = np.zeros_like(scores.memory)                      # (N, K, M)
    d_time = None if scores.time is None else np.zeros_like(scores.time)   # (N, K, 3)
    t_x = np.full(N, M)                                       # the question is written after every memory
    for k in range(K):
        f = batch.targets[:, k]                               # (N,)
        s = scores.memory[:, k]                               # (N, M)
        s_f = s[rows, f]                                      # (N,)
        cnt = batch.neg_memories[:, k] * (batch.weight * batch.active[:, k])[:, None]   # (N, M') negatives' counts
        if scores.time is None:
            h = g - s_f[:, None] + s                          # (N, M) γ − s_O(x, f) + s_O(x, f̄)
            act = cnt * (h > 0)                               # (N, M) slope of each active hinge
            loss += float(np.sum(cnt * np.maximum(h, 0)))
            ds = act                                          # ∂/∂s_O(x, f̄)
        else:
            tau = scores.time[:, k]                           # (N, 3)
            x_j, x_f, f_j, j_f = _older_than_features(t_x, f, M)
            a = s_f[:, None] - s + tau[:, :1] * x_f[:, None] + tau[:, 1:2] * x_j + tau[:, 2:] * f_j  # s_Ot(x, f, f̄)
            b = s - s_f[:, None] + tau[:, :1] * x_j + tau[:, 1:2] * x_f[:, None] + tau[:, 2:] * j_f  # s_Ot(x, f̄, f)
            act_a = cnt * (g - a > 0)                         # (N, M) max(0, γ − s_Ot(x, f, f̄)) active
            act_b = cnt * (g + b > 0)                         # (N, M) max(0, γ + s_Ot(x, f̄, f)) active
            loss += float(np.sum(cnt * (np.maximum(g - a, 0) + np.maximum(g + b, 0))))
            ds = act_a + act_b                                # ∂/∂s_O(x, f̄) through a (−1·−1) and b (+1)
            d_time[:, k, 0] = np.sum(-act_a * x_f[:, None] + act_b * x_j, 1)
            d_time[:, k, 1] = np.sum(-act_a * x_j + act_b * x_f[:, None], 1)
            d_time[:, k, 2] = np.sum(-act_a * f_j + act_b * j_f, 1)
        d_mem[:, k] += ds
        d_mem[rows, k, f] -= ds.sum(1)                        # ∂/∂s_O(x, f): every term that involves f
        t_x = f
    s_r = scores.answer[rows, batch.answers]                  # (N,)
    cnt = batch.neg_answers * batch.weight[:, None]           # (N, V)
    h = g - s_r[:, None] + scores.answer                      # (N, V) γ − s_R(x, r) + s_R(x, r̄)
    act = cnt * (h > 0)
    loss += float(np.sum(cnt * np.maximum(h, 0)))
    d_ans = act.copy()                                        # (N, V)
    d_ans[rows, batch.answers] -= act.sum(1)
    return loss, MarginCache(batch.targets, Scores(d_mem, d_time, d_ans))


def margin_loss_backward(dloss: float, cache: MarginCache) -> Scores:
    d = cache.grad
    return Scores(dloss * d.memory, None if d.time is None else dloss * d.time, dloss * d.answer)


# ----------------------------------------------------------------------------------------------------------------
# Inference: hard argmax hops (or the pairwise-winner loop), then the best-ranked word


def winner_loop(s, tau, t_x, mask):
    """The argmax of O with write-time features: memories in write order, the winner so far y against the next
    one y'; y stays when s_Ot(x, y, y') > 0. Loops over slots, vectorised over the batch. Returns (N,) slots.

    s (N, M) s_O(x, m_i); tau (N, 3) (U_O Φx)ᵀ T_O; t_x (N,) write time of x; mask (N, M)."""
    N, M = s.shape
    rows = np.arange(N)
    after = t_x[:, None] < np.arange(M)                       # (N, M) x older than m_i
    w = np.zeros(N, dtype=np.int64)                           # slot 0 holds a sentence in every story
    for i in range(1, M):
        s_ot = s[rows, w] - s[:, i] + tau[:, 0] * after[rows, w] + tau[:, 1] * after[:, i] + tau[:, 2]  # y older
        w = np.where(mask[:, i] & ~(s_ot > 0), i, w)          # (N,) the newcomer wins unless the winner beats it
    return w


def infer(params, batch: Batch, config: Config):
    """(answers (N,), chosen (N, K) slots, scores (N, K, M') of each hop at the chosen inputs, answer scores (N, V)).
    With AM a hop that chooses STOP (slot M) ends the example's hops: the later ones repeat STOP, add nothing."""
    _check_batch(batch, config)
    V, K = config.vocab_size, config.hops
    dtype = params["U_O"].dtype
    N, M = batch.mask.shape
    rows = np.arange(N)
    q = features(batch.queries, config, dtype)                # (N, F)
    bags, ey, _ = memory_candidates(params, batch, config)    # (N, M', F), (N, M', d)
    mask = np.concatenate([batch.mask, np.ones((N, 1), bool)], 1) if config.adaptive else batch.mask   # (N, M')
    c = np.zeros_like(q)
    t_x = np.full(N, mask.shape[1])                           # the question comes after every memory
    stopped = np.zeros(N, bool)
    chosen, hop_scores, facts = [], [], []
    for _ in range(K):
        ex, _ = nonlinear_forward(embed_input(params["U_O"], q, c), params.get("W_O"))   # (N, d)
        s = np.einsum("nd,nmd->nm", ex, ey)                   # (N, M')
        if config.time_features:
            o = winner_loop(s, ex @ params["T_O"], t_x, mask)
        else:
            o = np.argmax(np.where(mask, s, -np.inf), 1)      # (N,) o_k = argmax_i s_O(x_k, m_i)
        if config.adaptive:
            o = np.where(stopped, M, o)                       # (N,) once stopped, stay stopped
            stopped |= o == M
        chosen.append(o)
        hop_scores.append(s)
        facts.append(bags[rows, o])                           # (N, V)
        c = c + facts[-1]
        t_x = o
    er, _, ew, _ = answer_embeddings(params, q, facts, config)   # (N, d), (V, d)
    s_ans = er @ ew.T                                         # (N, V)
    answers = 1 + np.argmax(s_ans[:, 1:], 1)                  # the null word is never an answer
    return answers, np.stack(chosen, 1), np.stack(hop_scores, 1), s_ans


# ----------------------------------------------------------------------------------------------------------------
# The protocol's entry points


def loss_and_grads(params, batch: Batch, config: Config):
    """Summed margin ranking loss, its gradients, and info (predictions, chosen memories)."""
    scores, cache = forward(params, batch, config)
    loss, mcache = margin_loss_forward(scores, batch, config)
    grads = backward(margin_loss_backward(1.0, mcache), cache, params, config)
    answers, chosen, hop_scores, _ = infer(params, batch, config)
    return loss, grads, {"predictions": answers, "chosen": chosen, "hop_scores": hop_scores}


def predict(params, batch: Batch, config: Config):
    """Answers (N,) and info: chosen memories (N, K), each hop's scores (N, K, M), answer scores (N, V), the
    loss (summed, with the batch's negatives) and whether each hop chose its supporting fact (N, K)."""
    answers, chosen, hop_scores, s_ans = infer(params, batch, config)
    scores, _ = forward(params, batch, config)
    loss, _ = margin_loss_forward(scores, batch, config)
    hit = np.where((batch.weight[:, None] > 0) & (batch.active > 0), chosen == batch.targets, False)
    return answers, {"chosen": chosen, "hop_scores": hop_scores, "answer_scores": s_ans, "loss": loss,
                     "supporting_hit": hit}


# ----------------------------------------------------------------------------------------------------------------
# The same model one example at a time, from the paper: explicit 3|W| (+3) feature vectors, s = aᵀUᵀUb, and the
# gradient of every active hinge term as U(abᵀ + baᵀ). The oracle for everything above.


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


def _paper(params, config: Config) -> _Paper:
    V, F = config.vocab_size, config.vocab_size + (config.ngram_buckets if config.ngrams > 1 else 0)
    blocks = [params["U_O"]] + ([params["S_O"]] if config.adaptive else []) + \
        ([params["T_O"]] if config.time_features else [])
    C = config.hops if config.answer_input == "ordered" else 1
    return _Paper(V, F, config.ngrams, 3 * F + config.adaptive + 3 * config.time_features, np.hstack(blocks), C,
                  (1 + C) * F + V)


def _phi(words, copy, size, P: _Paper):
    """A sentence's bag of words (and, with NG, of its 2- and 3-grams, each in its bucket after the |W| words) in
    copy 0, 1, 2, … of the F features, in a vector of `size` zeros."""
    v = np.zeros(size)
    words = [int(w) for w in np.ravel(words) if w != 0]      # padding comes last: the rest are consecutive
    for w in words:
        v[copy * P.F + w] += 1.0
    for n in range(2, P.ngrams + 1):
        for j in range(len(words) - n + 1):
            h = 7919 * n + sum(w * p for w, p in zip(words[j:j + n], NGRAM_PRIMES))
            v[copy * P.F + P.V + h % (P.F - P.V)] += 1.0
    return v


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
                x = x + _phi(batch.stories[n, f], 1, P.D, P)          # [x, f_k]: the fact's words in copy 2
                x_r = x_r + _phi(batch.stories[n, f], 1 + min(k, P.C - 1), P.D_R, P)   # R: copy 2, or k + 2
            t_x = f
        r = batch.answers[n]
        for w in range(1, V):
            c = batch.neg_answers[n, w]
            if w == r or c == 0:
                continue
            b_r, b_w = np.zeros(P.D_R), np.zeros(P.D_R)
            b_r[(1 + P.C) * P.F + r] = b_w[(1 + P.C) * P.F + w] = 1.0
            h = g - s(U_R, x_r, b_r) + s(U_R, x_r, b_w)
            if h > 0:
                loss += c * h
                dU_R += c * (ds_dU(U_R, x_r, b_w) - ds_dU(U_R, x_r, b_r))
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
        candidates = [i for i in range(M) if batch.mask[n, i]] + ([stop_slot] if config.adaptive else [])
        t_x, picks = M + config.adaptive, []
        for k in range(K):
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
            x = x + _phi(batch.stories[n, best], 1, P.D, P)
            x_r = x_r + _phi(batch.stories[n, best], 1 + min(k, P.C - 1), P.D_R, P)
            t_x = best
        word_scores = []
        for w in range(1, V):
            b_w = np.zeros(P.D_R)
            b_w[(1 + P.C) * P.F + w] = 1.0
            word_scores.append(s(U_R, x_r, b_w))
        answers.append(1 + int(np.argmax(word_scores)))
        chosen.append(picks)
    return np.array(answers), np.array(chosen)


def replace(config: Config, **changes) -> Config:
    return dataclasses.replace(config, **changes)
