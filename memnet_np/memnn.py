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
        An answer of several words (bAbI task 8's lists "apple,milk", task 19's paths "n,w") is said a word at a
        time (Weston et al. 2015): r_j = argmax_w s_R([x, m_o1, m_o2, r_1, …, r_(j−1)], w), the words said so far
        in a copy of the vocabulary of their own, until R ranks a STOP word first (see `respond`).

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
    answer_words  the most words R says (the 2015 paper's way: 3 on task 8, 2 on task 19). Each step of R is
                  trained like a hop, on the TRUE words before it: one margin term per step toward its word, and
                  toward STOP after the last. The default 1 makes a comma answer one class, as the data layer does.
Extensions of Weston et al. 2015 (appendix), off by default:
    AM  adaptive   a STOP memory (its own feature, U_O's column S_O) is trained as the target one hop after the last
                   supporting fact; at test time the hops end when O chooses it, at most `hops` of them.
    NG  ngrams     2- and 3-grams of each sentence, hashed into `ngram_buckets` features beside the words.
                   With chosen_ngrams=False (our option, the extended preset's) a memory O has chosen joins the
                   input of its later hops by its words only. With its n-grams too, task 3's third hop (John's
                   move BEFORE "john went to the bathroom") missed 184 of 1,000 test questions whose first two hops
                   were right, 56 of them for an earlier sentence worded exactly like the fact just found; without
                   them 82 and 30.
    NL  nonlinear  every embedding UΦ becomes W tanh(UΦ) (W_O, W_R are d × d); s_Ot keeps T_O Φt outside.
    exclude_chosen (our option, with AM; the extended preset's) a memory O has chosen is no candidate at the later
                   hops. Without it, on task 3 the third hop chose the second hop's fact again for 30 of its 82 test
                   misses: that fact's words are in the hop's input, so it scores high, and training had to push it
                   down with copy-2 words that also have to pull the right fact up.

Shape letters: N batch, M memory slots, L words, V vocabulary (|W|, with the null word 0), F features of a sentence
(V, or V + ngram_buckets), d embedding, K hops.

This file is the model as the paper reads: the configuration, the scores of O and R (forward and backward), the
margin ranking loss, the hops at test time. I, G and the making of batches are in memnet_np/memnn_data.py; the
same model one example at a time, its oracle, in memnet_np/memnn_naive.py; the command line's `figures` and
`bench` in memnet_np/memnn_cli.py. Every public name of them is importable from here.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np

from memnet_np import checks, ops
# I and G, and the batches (targets and negatives drawn when a batch is made), live in memnn_data; the paper's
# model one example at a time, the oracle for this file, in memnn_naive. Their public names are this module's too.
from memnet_np.memnn_data import (NGRAM_PRIMES, Batch, _check_batch, answer_table, answer_vocabulary,  # noqa: F401
                                  bag_of_words, example_batch, feature_size, features, hashed_candidates,
                                  hop_candidates, hop_targets, make_batch, response_size, response_targets,
                                  sample_negatives, stop_targets, without_earlier_facts, word_buckets, write_memory)
from memnet_np.memnn_naive import loss_and_grads_naive, predict_naive  # noqa: F401
from memnet_np.memnn_cli import bench, figures, format_bench  # noqa: F401  (the command line's hooks)

EXTRA_FACTS = ("error", "first")
ANSWER_INPUTS = ("ordered", "sum")


@dataclass(frozen=True)
class Config:
    """Defaults for bAbI 1k, strong supervision. `vocab_size` comes from the data; see `Config.for_data`."""
    vocab_size: int = 0          # V = |W|, including the null word 0
    d: int = 50                  # embedding size (the paper's n: U is n × 3|W|)
    hops: int = 2                # k
    memory_size: int = 50        # G's capacity: a longer story forgets its oldest sentences
    hashing: bool = False        # G by hashing (2014 §3, huge memories): a bucket per word; O scores only the memories
                                 # that share a word with its input [x, m_o1, …] (all of them where none does), and
                                 # the loss ranks each true fact against those of the TRUE input only
    time_features: bool = True   # write-time features and the pairwise-winner loop (2014 §3.4)
    ngrams: int = 1              # NG (2015 appendix): 2 or 3 adds each sentence's 2-grams (and 3-grams), hashed
    ngram_buckets: int = 128     # into this many features after the |W| word features
    chosen_ngrams: bool = True   # NG: a chosen memory joins O's input [x, m_o1, …] with its n-grams; False: with its
                                 # words only (our option; the extended preset's, see PRESETS)
    nonlinear: bool = False      # NL (2015 appendix): every embedding UΦ becomes W tanh(UΦ), a two-layer tanh
                                 # network; W_O, W_R are d × d
    adaptive: bool = False       # AM (2015 appendix): a learned STOP memory ends the hops; `hops` is then the most
                                 # hops, STOP included (the paper allows 10)
    exclude_chosen: bool = False  # AM: a memory O has chosen is no candidate at its later hops, in training (no
                                 # negative) and at test time (our option; no bAbI question names a supporting fact
                                 # twice, and with AM a hop after the last fact chooses STOP, not that fact again)
    margin: float = 0.1          # γ
    answer_margin: float = 0.0   # γ_R of R's terms; 0: γ, the paper's one margin for every term
    negatives: int = 10          # negatives sampled per hinge term and hop when the batch is made; 0 = all of them
    extra_facts: str = "error"   # a question with more supporting facts than hops: "error", or "first" (train the
                                 # hops on the first k facts, as a k = 2 model must on tasks 3, 7, 8, 16)
    answer_input: str = "ordered"  # R's input [x, m_o1, …, m_ok]: "sum" (the paper's 3|W|: every chosen memory in
                                 # one copy) or "ordered" (each hop's memory in a copy of its own, (k+2)|W|); see
                                 # `answer_copies` for why the default is not the paper's
    answer_words: int = 1        # the most words of an answer. 1: a comma answer ("apple,milk") is one word of the
                                 # vocabulary, ranked like the others. > 1 (Weston et al. 2015, tasks 8 and 19: 3
                                 # and 2): R is iterated, each step ranks the answer words and a STOP word with the
                                 # words said so far in an input copy of their own, until STOP (see `respond`).
                                 # 1 is the default: it did as well on tasks 8 and 19's validation questions (README)
    answer_parts: tuple = ()     # with answer_words > 1, the words of each comma answer of the vocabulary:
                                 # ((its vocabulary id, (its words' ids, …)), …); a word id < V is a vocabulary
                                 # word, V + e the e-th of extra_words. Config.for_data fills both in.
    extra_words: tuple = ()      # answer words that are no vocabulary word (task 19's n, s, e, w)
    init_std: float = 0.1        # U ~ N(0, init_std²)
    # training (used by memnet_np.train)
    epochs: int = 60             # epochs and decay: mean validation error over the 20 bAbI 1k tasks (28.2% against
    lr: float = 0.01             # 29.4% for 30 epochs at lr 0.01). lr: mean error on 3,000 held-out questions of each
                                 # of 19 tasks (data.heldout_questions; seeds 0-3): 25.64% at 0.01, 25.65% at 0.02,
                                 # 25.87% at 0.005 (lower in every seed). Test error was not looked at
    decay_every: int = 10        # halve the learning rate every this many epochs
    batch_size: int = 32         # loss summed over the batch
    max_grad_norm: float = 40.0  # each matrix's gradient clipped to this norm
    val_fraction: float = 0.1
    dtype: str = "float64"

    def __post_init__(self):
        # a checkpoint's JSON gives lists: keep the tuples that make a Config hashable
        object.__setattr__(self, "answer_parts", tuple((int(t), tuple(int(w) for w in ws))
                                                       for t, ws in self.answer_parts))
        object.__setattr__(self, "extra_words", tuple(str(w) for w in self.extra_words))
        problems = checks.below_one(self, ("d", "hops", "memory_size", "batch_size", "epochs", "decay_every",
                                           "answer_words"))
        R = self.vocab_size + len(self.extra_words)           # the answer words' ids, STOP not among them
        for t, ws in self.answer_parts:
            if not (0 < t < self.vocab_size and ws and all(0 < w < R for w in ws)):
                problems.append(f"answer_parts entry {(t, ws)} must be (a word id in [1, {self.vocab_size}), "
                                f"word ids in [1, {R}))")
                break
        if self.ngrams not in (1, 2, 3):
            problems.append(f"ngrams must be 1, 2 or 3, got {self.ngrams}")
        if self.ngram_buckets < 1:
            problems.append(f"ngram_buckets must be at least 1, got {self.ngram_buckets}")
        if self.adaptive and self.hops < 2:
            problems.append(f"adaptive hops need hops >= 2 (a fact, then STOP), got {self.hops}")
        if self.exclude_chosen and not self.adaptive:
            problems.append("exclude_chosen needs adaptive=True: without the STOP memory a question with fewer "
                            "supporting facts than hops repeats its last fact, which would then be no candidate")
        if self.negatives < 0:
            problems.append(f"negatives must be >= 0 (0 = sum over all candidates), got {self.negatives}")
        if not self.margin > 0:
            problems.append(f"margin must be > 0, got {self.margin}")
        if not self.answer_margin >= 0:
            problems.append(f"answer_margin must be >= 0 (0: the same as margin), got {self.answer_margin}")
        if self.answer_input not in ANSWER_INPUTS:
            problems.append(f"answer_input must be one of {ANSWER_INPUTS}, got {self.answer_input!r}")
        if self.extra_facts not in EXTRA_FACTS:
            problems.append(f"extra_facts must be one of {EXTRA_FACTS}, got {self.extra_facts!r}")
        checks.raise_config_problems(self, "MemNN", problems)

    @classmethod
    def tiny(cls, **overrides) -> "Config":
        """Small sizes for tests, gradient checks and fast tutorials."""
        base = dict(vocab_size=11, d=6, hops=2, memory_size=6, negatives=3, epochs=3, batch_size=4)
        base.update(overrides)
        return cls(**base)

    @classmethod
    def for_data(cls, dataset, **overrides) -> "Config":
        """V and the memory from the data, and the words of its comma answers, which R says one at a time with
        answer_words > 1 (see `answer_vocabulary`)."""
        base = dict(vocab_size=len(dataset.vocab), memory_size=dataset.memory_size)
        base.update(answer_vocabulary(dataset.vocab.words))
        base.update(overrides)
        return cls(**base)


# The two configurations of Weston et al. 2015 Table 3, as Config overrides for bAbI 1k (Config.for_data(ds, **…)).
# The extended model's hops = 10 is the paper's limit for AM: it fits every bAbI task's facts + STOP (tasks 7 and 8
# name up to 8 facts; with 4 hops they trained on their first 3, then STOP). Its lr 0.02, 100 epochs and R's margin
# γ_R = 1 were chosen at 4 hops on validation error, the mean over the 20
# bAbI 1k tasks (seed 0): 11.1% at lr 0.02 for 100 epochs, 11.7% for 60, and for 60 epochs 13.7% at 0.01, 13.9% at
# 0.04, 15.8% at 0.005; then at 100 epochs 8.25% with γ_R = 1, 8.8% with γ_R = 0.5 or 2, 9.0% with γ = 1 for every
# term, 9.3% with γ = 0.5 (R's yes/no tasks 6, 9, 10 need its tanh layer out of its linear range: a wider margin
# grows U_R; O's hops do better at the small one); then 7.65% when the chosen memories join O's input without their
# n-grams (chosen_ngrams=False; task 3 8% instead of 19%), 8.95% when they also join R's input so; then, over seeds
# 0–4 (100 runs), 7.81% against 8.13% when no memory is chosen twice (exclude_chosen; task 3 6.2% against 9.8%);
# then 7.39% with 10 hops instead of 4 (tasks 7 and 8: 3.8% and 9.2% against 11.2% and 15.6%).
# The basic defaults (Config's) were re-checked the same way: 28.15%, and 28.15–29.2% for every negative summed,
# 30 sampled, d = 100, γ = 1; then its rate on 3,000 held-out questions a task (Config.lr): 0.01 instead of 0.005.
PRESETS = {
    "basic": dict(hops=2, time_features=True, extra_facts="first"),
    "extended": dict(hops=10, time_features=True, extra_facts="first", adaptive=True, ngrams=3, nonlinear=True,
                     lr=0.02, epochs=100, answer_margin=1.0, chosen_ngrams=False, exclude_chosen=True),
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


def given_words_size(config: Config) -> int:
    """Columns of U_R for the words R has already given: V_R with answers of several words, else none."""
    return response_size(config) if config.answer_words > 1 else 0


def init_params(config: Config, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """U_O (d, 3F), S_O (d, 1) the STOP memory's column, T_O (d, 3), U_R (d, (1 + answer_copies)·F + V_R) with F
    the features of a sentence (|W|, plus the n-gram buckets with NG) and V_R R's words (response_size; with
    answers of several words U_R has V_R more columns, for the words already given), every
    entry ~ N(0, init_std²); NL's second layers W_O, W_R (d, d) ~ N(0, 1/d)."""
    checks.vocab_size_at_least(config, 3, "null word + two words")
    F, dtype = feature_size(config), np.dtype(config.dtype)
    shapes = {"U_O": (config.d, 3 * F), "S_O": (config.d, 1), "T_O": (config.d, 3),
              "U_R": (config.d, (1 + answer_copies(config)) * F + given_words_size(config) + response_size(config))}
    shapes.update(W_O=(config.d, config.d), W_R=(config.d, config.d))
    std = {"W_O": config.d ** -0.5, "W_R": config.d ** -0.5}
    return {name: (rng.standard_normal(shapes[name]) * std.get(name, config.init_std)).astype(dtype)
            for name in param_names(config)}


# ----------------------------------------------------------------------------------------------------------------
# I and G (features, write_memory) and the batches (make_batch, example_batch): memnet_np/memnn_data.py


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


def given_columns(U, V_R: int):
    """The columns of U_R (a view) that embed the words R has said so far: the copy before the candidates' V_R."""
    return U[:, -2 * V_R:-V_R]


def embed_answer_input(U, q, memories, given=None):
    """U_R Φx([x, m_o1, …]) with the question in copy 1 and memories[c] (N, F) in copy c + 2: (N, d). With
    answers of several words, given (N, J, V_R) counts the words said before each step of R, in the copy before
    the candidates': (N, J, d)."""
    F = q.shape[-1]
    e = q @ U[:, :F].T + sum(m @ U[:, (1 + c) * F:(2 + c) * F].T for c, m in enumerate(memories))   # (N, d)
    if given is None:
        return e
    V_R = given.shape[-1]
    return e[:, None, :] + given @ given_columns(U, V_R).T    # (N, J, d)


def input_memory(f, config: Config):
    """A chosen memory's counts f (N, F) as they join O's input: all of them, or with chosen_ngrams=False its words
    only (the n-gram buckets of copy 2 stay empty)."""
    if config.ngrams == 1 or config.chosen_ngrams:
        return f
    words = f.copy()
    words[:, config.vocab_size:] = 0
    return words


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


def embed_answer_input_backward(der, q, memories, dU, given=None):
    F = q.shape[-1]
    if given is not None:                                     # der (N, J, d): every step of R
        V_R, d = given.shape[-1], der.shape[-1]
        given_columns(dU, V_R)[...] += der.reshape(-1, d).T @ given.reshape(-1, V_R)
        der = der.sum(1)                                      # (N, d) the steps share x and the memories
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
    answer: np.ndarray            # (N, V) s_R([x, f1, …, fK], w) for every word w; with answer_words > 1
                                  # (N, J, V_R), step j's input holding the true answer words before j too


class Cache(NamedTuple):
    q: np.ndarray                 # (N, V) question counts
    bags: np.ndarray              # (N, M', V) memory counts (AM: slot M is STOP, no words)
    chosen: list                  # K × (N, V) counts of the facts already chosen, before each hop
    ex: list                      # K × (N, d) U_O Φx at each hop (NL: W_O tanh(U_O Φx))
    ex_nl: list                   # K × NL caches (None without NL)
    ey: np.ndarray                # (N, M', d) U_O Φy(m_i) (AM: slot M is S_O)
    ey_nl: Optional[ops.ActCache]
    r_memories: list              # R's memory copies: [Σ_k f_k] or [f_1, …, f_K], each (N, V) counts
    er: np.ndarray                # (N, d) U_R Φx([x, f1, …, fK]); (N, J, d) with answer_words > 1
    er_nl: Optional[ops.ActCache]
    ew: np.ndarray                # (V_R, d) U_R Φy(w) of every word w
    ew_nl: Optional[ops.ActCache]
    given: Optional[np.ndarray] = None   # (N, J, V_R) the true answer words before each step of R


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


def answer_embeddings(params, q, facts, config: Config, given=None):
    """R's input U_R Φx([x, m_o1, …]) (N, d) (with given words (N, J, V_R): (N, J, d)) and every word's U_R Φy(w)
    (V_R, d), with their NL caches."""
    V_R = response_size(config)
    er, er_nl = nonlinear_forward(embed_answer_input(params["U_R"], q, answer_memories(facts, config), given),
                                  params.get("W_R"))         # (N, [J,] d)
    ew, ew_nl = nonlinear_forward(params["U_R"][:, -V_R:].T, params.get("W_R"))   # (V_R, d) Φy(w) is one-hot
    return er, er_nl, ew, ew_nl


def given_words(words, V_R: int):
    """Counts (N, J, V_R) of the answer words before each step, from R's targets words (N, J)."""
    said = np.zeros(words.shape + (V_R,))                     # (N, J, V_R) one-hot of each step's word
    np.put_along_axis(said, words[..., None], 1.0, -1)
    return np.cumsum(said, 1) - said                          # (N, J, V_R) the words of the steps before


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
        c = c + input_memory(facts[-1], config)
    given = None if batch.words is None else given_words(batch.words, response_size(config)).astype(dtype)
    er, er_nl, ew, ew_nl = answer_embeddings(params, q, facts, config, given)   # (N, [J,] d), (V_R, d)
    s_ans = er @ ew.T                                         # (N, [J,] V_R) s_R(x, w) = (U_R Φx)ᵀ U_R Φy(w)
    scores = Scores(np.stack(s_mem, 1), np.stack(s_time, 1) if s_time else None, s_ans)
    return scores, Cache(q, bags, chosen, exs, ex_nls, ey, ey_nl, answer_memories(facts, config), er, er_nl, ew,
                         ew_nl, given)


def backward(dscores: Scores, cache: Cache, params, config: Config) -> dict[str, np.ndarray]:
    """∂loss/∂params from ∂loss/∂scores: each score aᵀUᵀUb sends (Ub)·ds to Ua and (Ua)·ds to Ub, which is
    ∂s/∂U = U(abᵀ + baᵀ) summed over the batch."""
    grads = {name: np.zeros_like(p) for name, p in params.items()}
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
    dans = dscores.answer                                     # (N, [J,] V_R)
    V_R, d = dans.shape[-1], cache.er.shape[-1]
    dew = nonlinear_backward(dans.reshape(-1, V_R).T @ cache.er.reshape(-1, d), cache.ew_nl, params.get("W_R"),
                             grads.get("W_R"))               # (V_R, d)
    grads["U_R"][:, -V_R:] += dew.T                           # (d, V_R) the answer words' side
    der = nonlinear_backward(dans @ cache.ew, cache.er_nl, params.get("W_R"), grads.get("W_R"))    # (N, [J,] d)
    embed_answer_input_backward(der, cache.q, cache.r_memories, grads["U_R"], cache.given)
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
    # the answer: one ranking of the words, or with answer_words > 1 one per step of R (J of them)
    V_R = scores.answer.shape[-1]
    s_a = scores.answer.reshape(N, -1, V_R)                   # (N, J, V_R); J = 1 for one-word answers
    if batch.words is None:
        r, on = batch.answers[:, None], np.ones((N, 1))      # (N, 1)
    else:
        r, on = batch.words, batch.responding                 # (N, J) the true word (or STOP) of each step
    s_r = np.take_along_axis(s_a, r[..., None], -1)           # (N, J, 1)
    cnt = batch.neg_answers.reshape(s_a.shape) * (batch.weight[:, None] * on)[..., None]   # (N, J, V_R)
    h = (config.answer_margin or g) - s_r + s_a               # (N, J, V_R) γ_R − s_R(x, r) + s_R(x, r̄)
    act = cnt * (h > 0)
    loss += float(np.sum(cnt * np.maximum(h, 0)))
    d_ans = act.copy()                                        # (N, J, V_R)
    np.put_along_axis(d_ans, r[..., None], -act.sum(-1, keepdims=True), -1)   # the true word: cnt there is 0
    return loss, MarginCache(batch.targets, Scores(d_mem, d_time, d_ans.reshape(scores.answer.shape)))


def margin_loss_backward(dloss: float, cache: MarginCache) -> Scores:
    d = cache.grad
    return Scores(dloss * d.memory, None if d.time is None else dloss * d.time, dloss * d.answer)


# ----------------------------------------------------------------------------------------------------------------
# Inference: hard argmax hops (or the pairwise-winner loop), then the best-ranked word


def winner_loop(s, tau, t_x, mask):
    """The argmax of O with write-time features: memories in write order, the winner so far y against the next
    one y'; y stays when s_Ot(x, y, y') > 0. Loops over slots, vectorised over the batch. Returns (N,) slots.

    s (N, M) s_O(x, m_i); tau (N, 3) (U_O Φx)ᵀ T_O; t_x (N,) write time of x; mask (N, M) the candidates, at
    least one per row."""
    N, M = s.shape
    rows = np.arange(N)
    after = t_x[:, None] < np.arange(M)                       # (N, M) x older than m_i
    w = np.argmax(mask, 1)                                    # (N,) the oldest candidate (slot 0 without hashing)
    for i in range(1, M):
        s_ot = s[rows, w] - s[:, i] + tau[:, 0] * after[rows, w] + tau[:, 1] * after[:, i] + tau[:, 2]  # y older
        w = np.where(mask[:, i] & (i > w) & ~(s_ot > 0), i, w)   # (N,) the newcomer wins unless the winner beats it
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
    c = np.zeros_like(q)
    t_x = np.full(N, M + config.adaptive)                     # the question comes after every memory
    stopped = np.zeros(N, bool)
    taken = np.zeros((N, M), bool)                            # (N, M) the memories chosen so far
    chosen, hop_scores, facts = [], [], []
    if config.hashing:
        buckets, inp = word_buckets(batch.stories, V), word_buckets(batch.queries, V)   # (N, M, V), (N, V)
    for _ in range(K):
        cand = hashed_candidates(buckets, batch.mask, inp) if config.hashing else batch.mask   # (N, M)
        if config.exclude_chosen:
            cand = cand & ~taken                              # (N, M) no memory twice (STOP stays a candidate)
        mask = np.concatenate([cand, np.ones((N, 1), bool)], 1) if config.adaptive else cand   # (N, M') + STOP
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
        if config.exclude_chosen:
            taken[rows[o < M], o[o < M]] = True
        hop_scores.append(s)
        facts.append(bags[rows, o])                           # (N, V)
        c = c + input_memory(facts[-1], config)
        t_x = o
        if config.hashing:                                    # the chosen memory's words join the input's buckets
            inp = inp | (buckets[rows, np.minimum(o, M - 1)] & (o < M)[:, None])
    if config.answer_words > 1:
        answers, s_ans = respond(params, q, facts, config)
    else:
        er, _, ew, _ = answer_embeddings(params, q, facts, config)   # (N, d), (V, d)
        s_ans = er @ ew.T                                     # (N, V)
        answers = 1 + np.argmax(s_ans[:, 1:], 1)              # the null word is never an answer
    return answers, np.stack(chosen, 1), np.stack(hop_scores, 1), s_ans


def respond(params, q, facts, config: Config):
    """R for answers of several words (Weston et al. 2015, tasks 8 and 19): r_1 = argmax_w s_R([x, m_o1, …], w),
    r_2 = argmax_w s_R([x, m_o1, …, r_1], w), … with the words said so far in an input copy of their own, until R
    ranks STOP first (not at the first step: an answer has a word) or has said answer_words words.

    Returns (answers (N,), scores (N, answer_words, V_R)): the vocabulary word whose words R said in that order
    (answer_table), or 0, the null word, for a sequence that is no answer of the vocabulary."""
    N, V_R = q.shape[0], response_size(config)
    stop, rows = V_R - 1, np.arange(N)
    W = params.get("W_R")
    base = embed_answer_input(params["U_R"], q, answer_memories(facts, config))   # (N, d) x and the memories
    ew, _ = nonlinear_forward(params["U_R"][:, -V_R:].T, W)  # (V_R, d)
    said = np.full((N, config.answer_words + 1), stop)       # (N, J) the words, then STOP
    given = np.zeros((N, V_R), q.dtype)                       # (N, V_R) the words said so far
    done = np.zeros(N, bool)
    steps = []
    for j in range(config.answer_words):
        er, _ = nonlinear_forward(base + given @ given_columns(params["U_R"], V_R).T, W)   # (N, d)
        s = er @ ew.T                                         # (N, V_R)
        steps.append(s)
        s = s.copy()
        s[:, 0] = -np.inf                                     # the null word is never said
        if j == 0:
            s[:, stop] = -np.inf
        w = np.where(done, stop, np.argmax(s, 1))             # (N,)
        done |= w == stop
        said[:, j] = w
        given[rows, w] += ~done
    table = answer_table(config)[:, :config.answer_words + 1]   # (V, J)
    match = (said[:, None, :] == table[None]).all(-1)        # (N, V) the answer R said
    return np.where(match.any(1), np.argmax(match, 1), 0), np.stack(steps, 1)


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



def replace(config: Config, **changes) -> Config:
    return dataclasses.replace(config, **changes)
