"""End-To-End Memory Network (Sukhbaatar, Szlam, Weston, Fergus 2015), forward and backward by hand.

A story is a set of sentences x_1..x_M, a question q, an answer a. With K hops:

    m_i = Σ_j l_j ⊙ A x_ij + T_A(i)        memory keys    (l: position encoding, T_A: temporal encoding)
    c_i = Σ_j l_j ⊙ C x_ij + T_C(i)        memory values
    u¹  = Σ_j l_j ⊙ B q_j                  the question
    p   = softmax(uᵏᵀ m_i)                 attention over the memory (hop k uses Aᵏ, Cᵏ)
    oᵏ  = Σ_i p_i c_i
    uᵏ⁺¹ = uᵏ + oᵏ                          (layer-wise tying: uᵏ⁺¹ = H uᵏ + oᵏ; optional ReLU)
    â   = softmax(W uᴷ⁺¹)                  the answer, one word of the vocabulary

Weight tying (§2.2):
    adjacent    Aᵏ⁺¹ = Cᵏ,  B = A¹,  Wᵀ = Cᴷ       params: A, C1..CK, TA, TC1..TCK
    layer-wise  A¹ = … = Aᴷ = A,  C¹ = … = Cᴷ = C   params: A, C, B, W, H, TA, TC (and TW: answer_time_words)

A tied matrix is ONE array in `params`; the backward accumulates every use of it into one gradient.

Conventions: embeddings are stored row-wise, A is (V, d) and A[w] is word w's vector (the paper writes
A as d×V); W is (V, d) too, so logits = u Wᵀ. Word 0 is the null (padding) word: its row starts at zero; no
sentence counts it, so only W's row (the null word's logit in the answer softmax) ever gets a gradient, and
training puts every null row back to zero after each step, as the official code does.

Position encoding "official" is the formula of the authors' MATLAB code (`build_model.m`), which differs from the
paper's §4.1 (see ops.pe_factors). That code implements T_A(i) as a "time word" appended to every sentence as word
J = L + 1 (L the padded length), so with temporal encoding the PE is built for J = L + 1, the question uses its
first L columns, and T_A(i) is weighted elementwise by the PE weights of position J; `encoding="official"` does
exactly that. There the time words also sit in Cᴷ = Wᵀ, so its answer softmax ranges over the memory_size time
words too (their rows of Cᴷ, T_Cᴷ, without the PE weights: `LinearNB(out_dim, voc_sz)` shares Cᴷ's whole table);
ours ranges over the vocabulary only, unless `answer_time_words=True`, which does what that code does.

The memory has a fixed number of slots (`memory_size`, the last 50 sentences or fewer when no training story is
that long), oldest first; `age` (0 = newest) selects the row of T_A, T_C. A slot without a sentence is an empty
memory: zero vectors, score 0. By default it takes part in the softmax as in the official code that produced
the paper's tables (on bAbI 1k task 6 this is 7% test error against 22% with empty slots masked out);
`mask_empty=True` gives such slots exactly zero attention. Shape letters: N batch, M slots, L words, d embedding, V vocabulary, K hops.

How the vectorised code is organised (what makes a bAbI step fast; `forward_naive` at the end is the same model
written one example at a time, by lookup, and the tests hold the two equal):
- a batch's distinct sentences (U of them) are embedded once, and each slot reads its sentence's row;
- every distinct memory the hops use, (A, T_A), (C1, T_C1), …, is embedded in one product, side by side;
- the memory gradients are outer products, ∂loss/∂m_i = ds_i uᵏ and ∂loss/∂c_i = p_i ∂loss/∂oᵏ: they are summed
  per distinct sentence as one small product (ops.per_row_sums), never written out as N·M·d numbers.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np

from memnet_np import checks, ops, optim
from memnet_np import train as train_loop

TYINGS = ("adjacent", "layerwise")
CLIPPINGS = ("frobenius", "official")
SAMPLINGS = ("shuffle", "official")


@dataclass(frozen=True)
class Config:
    """Paper defaults (§4.2). `vocab_size` comes from the data; see `Config.for_data`."""
    vocab_size: int = 0          # V, including the null word 0
    d: int = 20                  # embedding size (joint training: 50)
    hops: int = 3                # K
    memory_size: int = 50        # sentences kept; rows of T_A, T_C
    tying: str = "adjacent"      # "adjacent" | "layerwise"
    encoding: Optional[str] = "official"  # position encoding: "official" (MATLAB code, J = padded length; what the
                                 # paper's tables were made with), "paper" (§4.1, J = the sentence's length), None = BoW
    temporal: bool = True        # TE
    random_noise: float = 0.1    # RN: fraction of empty memories added to the time index in training (0 = off)
    relu: bool = False           # ReLU on u after each hop (the paper's best 10k model)
    answer_time_words: bool = False  # the answer softmax over the vocabulary and the memory_size time words, as the
                                 # official code's (a time word is never the answer, so only training pushes it down):
                                 # adjacent tying scores them with T_Cᴷ's rows, layer-wise with W's own rows TW
    mask_empty: bool = False     # False (official code, and what RN's "empty memories" presume): a slot without a
                                 # sentence is an empty memory, zero vectors that take part in the softmax with
                                 # score 0. True: such slots get exactly zero attention, as pure padding.
    attention: str = "softmax"   # "softmax", or "linear" while linear start is on (training sets this)
    init_std: float = 0.1        # weights ~ N(0, 0.1)
    # training (used by memnet_np.train)
    epochs: int = 100
    lr: float = 0.01
    decay_every: int = 25        # halve the learning rate every this many epochs
    batch_size: int = 32         # loss summed, not averaged, over the batch
    sampling: str = "shuffle"    # "shuffle": every question once an epoch, in shuffled batches, the rate halved after
                                 # epochs 25, 50, 75; "official": as the MATLAB code's train.m, ⌊n/32⌋ batches drawn
                                 # with replacement and the rate halved before epochs 25, 50, 75 and 100
    max_grad_norm: float = 40.0  # each matrix's gradient clipped to this norm
    clipping: str = "frobenius"  # "frobenius": each array by its Frobenius norm; "official": as the MATLAB code,
                                 # each word matrix with its time rows as one matrix, by its spectral norm
    linear_start: bool = True    # LS
    ls_mode: str = "fixed"       # "fixed": ls_epochs epochs (the official code); "val": until the validation loss
                                 # stops falling. Chosen on validation error over the bAbI 1k suite (10 runs per task:
                                 # mean validation error 14.6% fixed, 16.1% val); see the README
    ls_epochs: int = 20          # fixed-mode length (official: 20, joint 30), and the longest a "val" start may run
    ls_patience: int = 5         # "val": the loss has stopped falling after this many epochs without a new minimum
    ls_lr: float = 0.005         # the paper's learning rate with LS (the official code keeps it after LS too)
    val_fraction: float = 0.1
    dtype: str = "float64"       # "float32" trains faster; gradient checks need float64

    def __post_init__(self):
        problems = []
        if self.tying not in TYINGS:
            problems.append(f"tying must be one of {TYINGS}, got {self.tying!r}")
        if self.encoding not in ops.PE_KINDS:
            problems.append(f"encoding must be one of {ops.PE_KINDS}, got {self.encoding!r}")
        if self.attention not in ("softmax", "linear"):
            problems.append(f"attention must be 'softmax' or 'linear', got {self.attention!r}")
        if self.clipping not in CLIPPINGS:
            problems.append(f"clipping must be one of {CLIPPINGS}, got {self.clipping!r}")
        if self.answer_time_words and not self.temporal:
            problems.append("answer_time_words needs temporal encoding (temporal=True): without it there are no "
                            "time words")
        if self.sampling not in SAMPLINGS:
            problems.append(f"sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
        if self.ls_mode not in ("val", "fixed"):
            problems.append(f"ls_mode must be 'val' or 'fixed', got {self.ls_mode!r}")
        problems += checks.below_one(self, ("d", "hops", "memory_size", "batch_size", "epochs", "decay_every"))
        if not 0 <= self.random_noise < 1:
            problems.append(f"random_noise must be in [0, 1), got {self.random_noise}")
        checks.raise_config_problems(self, "MemN2N", problems)

    @classmethod
    def tiny(cls, **overrides) -> "Config":
        """Small sizes for tests, gradient checks and fast tutorials."""
        base = dict(vocab_size=11, d=6, hops=2, memory_size=6, epochs=3, batch_size=4)
        base.update(overrides)
        return cls(**base)

    @classmethod
    def for_data(cls, dataset, **overrides) -> "Config":
        """Paper settings for a loaded bAbI dataset (joint training: d = 50, 60 epochs, halved every 15)."""
        base = dict(vocab_size=len(dataset.vocab), memory_size=dataset.memory_size)
        if len(dataset.tasks) > 1:
            base.update(d=50, epochs=60, decay_every=15, ls_epochs=30)
        base.update(overrides)
        return cls(**base)


# ----------------------------------------------------------------------------------------------------------------
# Parameters


def param_names(config: Config) -> list[str]:
    K = config.hops
    if config.tying == "adjacent":
        names = ["A"] + [f"C{k}" for k in range(1, K + 1)]
        if config.temporal:
            names += ["TA"] + [f"TC{k}" for k in range(1, K + 1)]
    else:
        names = ["A", "C", "B", "W", "H"]
        if config.temporal:
            names += ["TA", "TC"]
        if config.answer_time_words:
            names += ["TW"]                                   # W's rows for the time words (the official code's
    return names                                              # answer matrix has voc_sz = V + memory_size rows)


@functools.lru_cache(maxsize=64)                              # a Config is frozen: the same config, the same shapes
def _shapes(config: Config) -> tuple:
    return tuple(param_shapes(config).items())


def param_shapes(config: Config) -> dict[str, tuple]:
    """name: shape, in param_names order: temporal matrices (memory_size, d), H (d, d), embeddings (V, d)."""
    V, d, rows = config.vocab_size, config.d, config.memory_size
    return {name: (rows, d) if name.startswith("T") else (d, d) if name == "H" else (V, d)
            for name in param_names(config)}


def roles(config: Config, k: int) -> tuple[str, str, Optional[str], Optional[str]]:
    """Names of (Aᵏ, Cᵏ, T_Aᵏ, T_Cᵏ) for hop k = 1..K under the config's weight tying."""
    if config.tying == "adjacent":
        A, C = ("A" if k == 1 else f"C{k - 1}"), f"C{k}"
        TA, TC = ("TA" if k == 1 else f"TC{k - 1}"), f"TC{k}"
    else:
        A, C, TA, TC = "A", "C", "TA", "TC"
    if not config.temporal:
        TA = TC = None
    return A, C, TA, TC


def question_and_answer_names(config: Config) -> tuple[str, str]:
    """(B, W): adjacent tying uses B = A¹ and Wᵀ = Cᴷ."""
    return ("A", f"C{config.hops}") if config.tying == "adjacent" else ("B", "W")


def answer_time_rows(config: Config) -> Optional[str]:
    """With answer_time_words, the (memory_size, d) rows that score the time words in the answer softmax: T_Cᴷ
    under adjacent tying (Wᵀ = Cᴷ, time words included), layer-wise W's own TW. None without the option."""
    if not config.answer_time_words:
        return None
    return f"TC{config.hops}" if config.tying == "adjacent" else "TW"


def answer_word(words, i: int) -> str:
    """The word of answer class i: a vocabulary word, or with answer_time_words the time word V + t."""
    return words[i] if i < len(words) else f"<time word {i - len(words)}>"


def embedding_names(config: Config) -> list[str]:
    """The (V, d) word matrices, whose row 0 (the null word) training keeps at zero after every step."""
    return [n for n in param_names(config) if not n.startswith("T") and n != "H"]


def init_params(config: Config, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every weight ~ N(0, init_std²) (H included); the null word's row is zero."""
    checks.vocab_size_at_least(config, 2, "null word + one word")
    dtype = np.dtype(config.dtype)
    params = {}
    for name, shape in param_shapes(config).items():
        params[name] = (rng.standard_normal(shape) * config.init_std).astype(dtype)
        if name in embedding_names(config):
            params[name][0] = 0.0                             # null word
    return params


# ----------------------------------------------------------------------------------------------------------------
# Batches


class Batch(NamedTuple):
    stories: np.ndarray  # (N, M, L) int word ids, slots oldest first, empty slots all 0
    queries: np.ndarray  # (N, L) int
    answers: np.ndarray  # (N,) int
    mask: np.ndarray     # (N, M) bool, slot holds a sentence
    age: np.ndarray      # (N, M) int, row of T_A/T_C for each slot (0 = newest); 0 on empty slots
    # Optional, for speed: the batch's distinct sentences, so each is embedded once (stories == sentences[slots]).
    # make_batch fills them in; without them every slot counts as a sentence of its own.
    sentences: Optional[np.ndarray] = None   # (U, L) int
    slots: Optional[np.ndarray] = None       # (N, M) int row of `sentences` in each slot
    # Optional, for speed: the weighted bags (ops.encode_bags) of `sentences` (U, R·V) and of `queries` (N, R·V),
    # which depend only on the data; make_batch takes them from a table made once per split (`split_bags`).
    bags: Optional[ops.Bags] = None
    qbags: Optional[ops.Bags] = None


def sentence_table(batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    """(sentences (U, L), slots (N, M)) with batch.stories == sentences[slots]."""
    if batch.sentences is not None:
        return batch.sentences, batch.slots
    N, M, L = batch.stories.shape
    return batch.stories.reshape(N * M, L), np.arange(N * M).reshape(N, M)


def story_ages(mask: np.ndarray, memory_size: int, rng: Optional[np.random.Generator] = None,
               noise: float = 0.0) -> np.ndarray:
    """Time index of each slot: n−1 … 0 from oldest to newest (n sentences in the story).

    Random noise (RN, §4.1): pretend there are `nblank` empty memories, uniform in 0..⌈noise·n⌉ (both ends
    included: the official `nblank = randi([0, ceil(size(d,2) * randomize_time)])`, so a story of 1–10
    sentences gets a gap half of the time), and give the n sentences n distinct random indices out of
    n + nblank, in decreasing order from the oldest (`sort(rt(1:n), 'descend')`). Indices are capped at
    memory_size − 1.
    """
    N, M = mask.shape
    n = mask.sum(1)                                           # (N,) sentences per story
    slot = np.arange(M)                                       # (M,)
    if rng is None or noise <= 0:
        age = n[:, None] - 1 - slot                           # (N, M)
    else:
        most = np.ceil(n * noise).astype(int)                 # (N,) the largest number of empty memories
        nblank = rng.integers(0, most + 1)                    # (N,) uniform in 0..most, both included
        total = n + nblank                                    # (N,) indices to choose from
        width = max(int(total.max(initial=0)), M)
        keys = rng.random((N, width))                         # (N, width) random order of the candidates
        keys[np.arange(width) >= total[:, None]] = 2.0        # candidates beyond n + nblank come last
        chosen = np.argsort(keys, axis=1)[:, :M]              # (N, M) a random subset, first n used
        chosen = np.where(slot < n[:, None], chosen, -1)      # (N, M)
        age = -np.sort(-chosen, axis=1)                       # (N, M) decreasing: the oldest gets the largest
    age = np.where(mask, np.minimum(age, memory_size - 1), 0)  # (N, M)
    return age.astype(np.int64)


def make_batch(arrays, idx, config: Config, rng: Optional[np.random.Generator] = None,
               train: bool = False) -> Batch:
    """Rows idx of a vectorised split (memnet_np.data.BabiArrays). Random noise is drawn here, in training only."""
    mask = arrays.mask[idx]
    if mask.shape[1] > config.memory_size:
        raise ValueError(f"the data has {mask.shape[1]} memory slots but the model's memory_size is "
                         f"{config.memory_size}")
    noise = config.random_noise if (train and config.temporal) else 0.0
    age = story_ages(mask, config.memory_size, rng, noise)
    rows = arrays.slots[idx]                                  # (N, M) rows of arrays.sentences
    present = np.zeros(len(arrays.sentences), bool)           # (S,) which of the split's sentences the batch holds
    present[rows] = True
    used = np.flatnonzero(present)                            # (U,) the batch's distinct sentences, in row order
    slots = (np.cumsum(present) - 1)[rows]                    # (N, M) row of `used` in each slot
    table = split_bags(arrays, config)
    bags = table.sentences._replace(W=table.sentences.W[used])                   # (U, R·V)
    qbags = table.questions._replace(W=table.questions.W[table.question_row[idx]])   # (N, R·V)
    return Batch(arrays.stories[idx], arrays.queries[idx], arrays.answers[idx], mask, age,
                 arrays.sentences[used], slots, bags, qbags)


class SplitBags(NamedTuple):
    sentences: ops.Bags      # (S, R·V) every distinct sentence of the split (rows of arrays.sentences)
    questions: ops.Bags      # (Q, R·V) every distinct question
    question_row: np.ndarray  # (n,) row of `questions` for each question of the split


_SPLIT_BAGS: dict = {}       # a few splits' tables, keyed by the arrays' identity and the config's encoding


def split_bags(arrays, config: Config) -> SplitBags:
    """The weighted bags of a split's distinct sentences and questions, made once and then reused: they depend
    only on the data and on (V, d, encoding, J, dtype), and making them per batch cost a tenth of a small task's
    training step. A table is kept for the arrays it was made from (by identity: a split's arrays are never
    written after loading), so another split gets its own. Word ids outside the vocabulary raise here."""
    S, L = arrays.sentences.shape
    key = (id(arrays.sentences), id(arrays.queries), config.vocab_size, config.d, config.encoding,
           time_word_J(config, L), config.dtype)
    hit = _SPLIT_BAGS.get(key)
    if hit is not None and hit[0] is arrays.sentences and hit[1] is arrays.queries:
        return hit[2]
    for name in ("sentences", "queries", "answers"):
        _check_word_ids(getattr(arrays, name), config.vocab_size, f"the split's {name} hold")
    questions, question_row = np.unique(arrays.queries, axis=0, return_inverse=True)   # (Q, L), (n,)
    both = ops.encode_bags(np.concatenate([arrays.sentences, questions]), config.vocab_size, config.d,
                           config.encoding, np.dtype(config.dtype), time_word_J(config, L))   # (S + Q, R·V)
    table = SplitBags(both._replace(W=both.W[:S]), both._replace(W=both.W[S:]), question_row.reshape(-1))
    while len(_SPLIT_BAGS) >= 8:                              # keep the newest few
        _SPLIT_BAGS.pop(next(iter(_SPLIT_BAGS)))
    _SPLIT_BAGS[key] = (arrays.sentences, arrays.queries, table)   # the arrays held: their ids stay theirs
    return table


def example_batch(config: Config, rng: np.random.Generator, N: int = 4, M: Optional[int] = None,
                  L: int = 5) -> Batch:
    """A small random valid batch: stories of different lengths (one with a single sentence), padded words."""
    from memnet_np.data.babi import random_story_arrays
    M = min(config.memory_size, 4) if M is None else M
    stories, queries, answers, mask = random_story_arrays(rng, N, M, L, config.vocab_size)
    noise = config.random_noise if config.temporal else 0.0
    return Batch(stories, queries, answers, mask, story_ages(mask, config.memory_size, rng, noise))


def _check_batch(batch: Batch, config: Config) -> None:
    """The model's front door: every field of the batch, by name, with the shape and type it must have."""
    arrays = {name: getattr(batch, name) for name in ("stories", "queries", "answers", "mask", "age")}
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray):
            raise ValueError(f"batch.{name} must be a numpy array, got {type(a).__name__}")
    stories = batch.stories
    if stories.ndim != 3 or 0 in stories.shape:
        raise ValueError(f"batch.stories must have shape (N, M, L) with N, M, L ≥ 1 (questions, memory slots, "
                         f"words), got {stories.shape}")
    N, M, L = stories.shape
    expected = {"queries": (N, L), "answers": (N,), "mask": (N, M), "age": (N, M)}
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise ValueError(f"batch.{name} must have shape {shape} to go with batch.stories {stories.shape}, "
                             f"got {arrays[name].shape}")
    for name in ("stories", "queries", "answers", "age"):
        if arrays[name].dtype.kind not in "iu":
            raise ValueError(f"batch.{name} must hold integers (word ids, ages), got dtype {arrays[name].dtype}")
    if batch.mask.dtype != bool:
        raise ValueError(f"batch.mask must be boolean (True: the slot holds a sentence), got dtype {batch.mask.dtype}")
    if M > config.memory_size:
        raise ValueError(f"batch.stories has {M} memory slots but the model's memory_size is {config.memory_size}")
    empty = ~batch.mask.any(1)
    if empty.any():
        raise ValueError(f"batch.mask: example {int(np.argmax(empty))} has no sentence in its memory (an empty "
                         f"story); a memory network needs at least one")
    ages = batch.age[batch.mask]                              # (real slots,)
    if ages.min() < 0 or ages.max() >= config.memory_size:
        raise ValueError(f"batch.age must lie in [0, {config.memory_size}) on real slots (rows of T_A, T_C), got "
                         f"[{ages.min()}, {ages.max()}]")
    if batch.sentences is not None and (batch.slots is None or batch.slots.shape != (N, M)
                                        or batch.sentences.shape[1:] != (L,)):
        raise ValueError(f"inconsistent batch: sentences {batch.sentences.shape} and slots "
                         f"{None if batch.slots is None else batch.slots.shape} for stories {batch.stories.shape}")
    if batch.bags is not None:
        R = batch.bags.b.shape[0]
        RV = R * config.vocab_size                            # R weighted bags side by side
        if (batch.sentences is None or batch.qbags is None or batch.bags.W.shape != (len(batch.sentences), RV)
                or batch.qbags.W.shape != (N, RV) or batch.bags.b.shape != (R, config.d)):
            raise ValueError("inconsistent batch: its bags were not made for these sentences and this config "
                             "(leave bags=None and forward encodes the sentences itself)")
    for name in ("sentences" if batch.sentences is not None else "stories", "queries", "answers"):
        _check_word_ids(getattr(batch, name), config.vocab_size, f"batch.{name} holds")


def _check_word_ids(a, V: int, what: str) -> None:
    """The ids in `a` are words of a vocabulary of V; `what` names the array in the message."""
    if a.size and (a.min() < 0 or a.max() >= V):
        raise ValueError(f"{what} word ids outside [0, {V}) (min {a.min()}, max {a.max()}): was the data encoded "
                         f"with another vocabulary?")


# ----------------------------------------------------------------------------------------------------------------
# Forward


class Hop(NamedTuple):
    u: np.ndarray            # (N, d) uᵏ, the state read with
    attention: ops.AttentionCache
    relu: Optional[ops.ActCache]   # of the units relu_from … d − 1, or None


def hop_forward(u, m, c, H=None, attend=None, linear=False, relu_from=None):
    """One hop, shared by every MemN2N here (bAbI and the language model, memn2n_lm):

        oᵏ = Σ_i p_i c_i,  p = softmax(uᵏᵀ m_i)     (linear=True: p = uᵏᵀ m_i, linear start)
        uᵏ⁺¹ = H uᵏ + oᵏ                           (H None: uᵏ + oᵏ)
        then ReLU on units relu_from … d − 1       (None: no ReLU; 0: all of them, the bAbI 10k model;
                                                    d/2: the language model's half linear, half ReLU)
    u (N, d), m and c (N, M, d), attend (N, M) bool or None. Returns uᵏ⁺¹ (N, d) and a Hop cache.
    """
    o, att = ops.attention_read_forward(u, m, c, attend, linear)   # (N, d)
    u_next = (u if H is None else u @ H.T) + o                # (N, d)
    act = None
    if relu_from == 0:
        u_next, act = ops.relu_forward(u_next)                # (N, d)
    elif relu_from is not None:
        r, act = ops.relu_forward(u_next[:, relu_from:])      # (N, d − relu_from)
        u_next[:, relu_from:] = r                             # u_next is this function's own array
    return u_next, Hop(u, att, act)


def hop_backward(du_next, hop, H=None, relu_from=None):
    """hop_forward read backward. `hop` is a Hop (or anything with its fields u, attention, relu).

    Returns du (N, d), dH (d, d) or None, and the attention's memory gradients as the outer products they are,
    (ds (N, M), uᵏ (N, d)) for the keys (∂loss/∂m_i = ds_i uᵏ) and (p (N, M), doᵏ (N, d)) for the values
    (∂loss/∂c_i = p_i doᵏ): each memory sums them in whatever way suits its layout.
    """
    if relu_from == 0:
        du_next = ops.relu_backward(du_next, hop.relu)        # (N, d)
    elif relu_from is not None:
        du_next = du_next.copy()                              # (N, d) never write into the caller's array
        du_next[:, relu_from:] = ops.relu_backward(du_next[:, relu_from:], hop.relu)
    do = du_next                                              # uᵏ⁺¹ = H uᵏ + oᵏ: ∂loss/∂oᵏ = ∂loss/∂uᵏ⁺¹
    dH = None if H is None else du_next.T @ hop.u             # (d, d)
    du = du_next if H is None else du_next @ H                # (N, d) through H uᵏ
    du_att, keys, values = ops.attention_read_backward_factored(do, hop.attention)
    return du + du_att, dH, keys, values                      # du (N, d) ∂loss/∂uᵏ


class HopCache(NamedTuple):
    A: str                   # names of the arrays used as Aᵏ, Cᵏ (and T_Aᵏ, T_Cᵏ) in this hop
    C: str
    TA: Optional[str]
    TC: Optional[str]
    u: np.ndarray            # (N, d) uᵏ, the state read with
    attention: ops.AttentionCache
    relu: Optional[ops.ActCache]


class Cache(NamedTuple):
    bags: ops.Bags           # the batch's distinct sentences as weighted bags (U, R·V)
    qbags: ops.Bags          # the question (N, R·V)
    memories: list           # the distinct (word matrix, T) pairs, in the order of `memory` below
    embedding: tuple         # caches of embed_memories: the bag product, slot → sentence, slot → age
    time_weight: Optional[np.ndarray]  # (d,) PE weights of the official time word, or None
    batch: Batch
    hops: list               # K HopCaches
    u_final: np.ndarray      # (N, d) uᴷ⁺¹


def time_word_J(config: Config, L: int) -> Optional[int]:
    """The official code's J when its time word is word L + 1 of every sentence; None: J is the padded length L."""
    return L + 1 if (config.encoding == "official" and config.temporal) else None


def distinct_memories(config: Config) -> list[tuple[str, Optional[str]]]:
    """The (word matrix, T) pairs the K hops read, each once, in order of first use: adjacent tying reads
    (A, T_A), (C1, T_C1), …, (CK, T_CK); layer-wise (A, T_A), (C, T_C)."""
    keys = []
    for k in range(1, config.hops + 1):
        A, C, TA, TC = roles(config, k)
        keys += [key for key in ((A, TA), (C, TC)) if key not in keys]
    return keys


@functools.lru_cache(maxsize=64)
def _time_weight(d: int, J: int, dtype) -> np.ndarray:
    w = ops.official_pe_column(d, J, J).astype(dtype)         # (d,)
    w.flags.writeable = False                                 # shared by every batch
    return w


def embed_memories(params, bags, slots, batch, keys, time_weight):
    """m = Σ_j l_j ⊙ A x_ij (+ T_A(age)) for every (A, T_A) in keys, all in one product.

    Side by side, the n word matrices [A | C1 | …] (V, n·d) embed the distinct sentences in one bag product, and
    the n temporal matrices [T_A | T_C1 | …] (memory_size, n·d) are read with one lookup; memory j is columns
    j·d … (j+1)·d − 1 of the result. Returns that (N, M, n·d) and the caches of the bag product and the two
    lookups.
    """
    words = np.concatenate([params[A] for A, _ in keys], axis=1)               # (V, n·d)
    bags = bags._replace(b=np.concatenate([bags.b] * len(keys), axis=1))   # (R, n·d) each memory's dimension k alike
    m_sent, emb = ops.bag_embed_forward(bags, words)          # (U, n·d) each distinct sentence once
    m, at_slot = ops.lookup_forward(m_sent, slots)            # (N, M, n·d) the sentence in each slot
    at_age = None
    if keys[0][1] is not None:
        T = np.concatenate([params[TA] for _, TA in keys], axis=1)             # (memory_size, n·d)
        if time_weight is not None:
            T = T * np.concatenate([time_weight] * len(keys))   # official: T(i) ⊙ l_J, the time word's weights
        t, at_age = ops.lookup_forward(T, batch.age, batch.mask)   # (N, M, n·d) T(age), 0 on empty slots
        m += t
    return m, (emb, at_slot, at_age)


def forward(params, batch: Batch, config: Config):
    """Returns (logits (N, V), cache)."""
    _check_batch(batch, config)
    checks.check_params(params, dict(_shapes(config)))
    V, d, K = config.vocab_size, config.d, config.hops
    dtype = params["A"].dtype
    sentences, slots = sentence_table(batch)                  # (U, L), (N, M)
    J = time_word_J(config, sentences.shape[1])
    U = sentences.shape[0]
    if batch.bags is not None and batch.bags.W.dtype == dtype:   # made once per split by make_batch
        bags, qbags = batch.bags, batch.qbags                 # (U, R·V) sentences, (N, R·V) questions
    else:
        both = ops.encode_bags(np.concatenate([sentences, batch.queries]), V, d, config.encoding, dtype, J)
        bags, qbags = both._replace(W=both.W[:U]), both._replace(W=both.W[U:])   # (U, R·V), (N, R·V)
    time_weight = None if J is None else _time_weight(d, J, dtype)   # (d,) l_J
    B, W = question_and_answer_names(config)
    u, _ = ops.bag_embed_forward(qbags, params[B])            # (N, d) u¹ = Σ_j l_j ⊙ B q_j
    keys = distinct_memories(config)
    mem, embedding = embed_memories(params, bags, slots, batch, keys, time_weight)   # (N, M, n·d)
    memory = {key: mem[..., j * d:(j + 1) * d] for j, key in enumerate(keys)}     # (N, M, d) each
    attend = batch.mask if config.mask_empty else None        # (N, M) slots attention may use (None: all)
    hops = []
    for k in range(1, K + 1):
        A, C, TA, TC = roles(config, k)
        m, c = memory[(A, TA)], memory[(C, TC)]               # (N, M, d) keys and values
        H = params["H"] if config.tying == "layerwise" else None
        u, hop = hop_forward(u, m, c, H, attend, config.attention == "linear", 0 if config.relu else None)  # (N, d)
        hops.append(HopCache(A, C, TA, TC, *hop))
    logits = u @ params[W].T                                  # (N, V) W uᴷ⁺¹ (the softmax is in the loss)
    TW = answer_time_rows(config)
    if TW is not None:                                        # (N, V + memory_size) the time words' scores after
        logits = np.concatenate([logits, u @ params[TW].T], axis=1)   # the words', rows without PE weights
    return logits, Cache(bags, qbags, keys, embedding, time_weight, batch, hops, u)


# ----------------------------------------------------------------------------------------------------------------
# Backward: the forward read bottom to top


def backward(dlogits, cache: Cache, params, config: Config) -> dict[str, np.ndarray]:
    grads = {}

    def add(name, g):                                         # a tied matrix sums the gradients of all its uses
        grads[name] = grads[name] + g if name in grads else g
    B, W = question_and_answer_names(config)
    TW = answer_time_rows(config)
    if TW is not None:                                        # the time words' columns of the answer
        dlogits, dtime = dlogits[:, :config.vocab_size], dlogits[:, config.vocab_size:]   # (N, V), (N, rows)
    add(W, dlogits.T @ cache.u_final)                         # (V, d) ∂/∂W of u Wᵀ
    du = dlogits @ params[W]                                  # (N, d) ∂loss/∂uᴷ⁺¹
    if TW is not None:
        add(TW, dtime.T @ cache.u_final)                      # (rows, d)
        du = du + dtime @ params[TW]                          # (N, d)
    # ∂loss/∂m_i = ds_i uᵏ where hop k reads m as keys, ∂loss/∂c_i = p_i ∂loss/∂oᵏ where it reads c as values:
    # each memory's gradient is a sum of such outer products, kept as (memory, coefficient (N, M), vector (N, d))
    d = config.d
    column = {key: slice(j * d, (j + 1) * d) for j, key in enumerate(cache.memories)}
    uses = []
    for hop in reversed(cache.hops):
        H = params["H"] if config.tying == "layerwise" else None
        du, dH, (ds, u_k), (p, do_k) = hop_backward(du, hop, H, 0 if config.relu else None)   # (N, d) ∂loss/∂uᵏ
        if dH is not None:
            add("H", dH)                                      # (d, d)
        uses += [(column[(hop.A, hop.TA)], ds, u_k), (column[(hop.C, hop.TC)], p, do_k)]
    # embed_memories read backward. A distinct sentence's gradient is the sum over the slots that hold it,
    # Σ_i coef_i v_n = Gᵀ v (G from per_row_sums); then the bag product gives every word matrix's gradient at once,
    # and T's rows collect the same sums by age
    emb, at_slot, at_age = cache.embedding
    coef = np.stack([c for _, c, _ in uses])                 # (P, N, M) the P = 2K uses
    width = len(column) * d

    def table_gradient(idx, rows, mask=None):                 # (rows, n·d): Σ over uses of G_pᵀ v_p, per memory
        G = ops.per_row_sums(coef, idx, rows, mask).reshape(len(uses), -1, rows)   # (P, N, rows)
        out = np.zeros((rows, width), dtype=du.dtype)
        for (cols, _, v), G_p in zip(uses, G):
            out[:, cols] += G_p.T @ v                         # (rows, d)
        return out
    dm_sent = table_gradient(at_slot.idx, cache.bags.W.shape[0])              # (U, n·d) per distinct sentence
    dwords = ops.bag_embed_backward(dm_sent, emb)             # (V, n·d) every word matrix at once
    if at_age is not None:
        dT = table_gradient(cache.batch.age, config.memory_size, cache.batch.mask)   # (memory_size, n·d)
    for (A, TA), cols in column.items():
        add(A, dwords[:, cols])                               # (V, d)
        if TA is not None:
            add(TA, dT[:, cols] if cache.time_weight is None else dT[:, cols] * cache.time_weight)   # (rows, d)
    add(B, ops.bag_embed_backward(du, ops.BagEmbedCache(cache.qbags)))            # (V, d) u¹ = Σ l ⊙ B q
    # every parameter's gradient its own contiguous array (the column blocks above are views of one product)
    return {name: np.ascontiguousarray(grads[name]) if name in grads else np.zeros_like(p)
            for name, p in params.items()}


# ----------------------------------------------------------------------------------------------------------------
# The training loop's hooks (memnet_np.train): which questions an epoch sees, and when the rate is halved


def epoch_batches(arrays, config: Config, rng: np.random.Generator) -> list[np.ndarray]:
    """sampling="shuffle": every question once, in shuffled batches; "official": the MATLAB train.m's ⌊n/32⌋
    batches drawn with replacement (train.drawn_batches)."""
    n = len(arrays.answers)
    if config.sampling == "official":
        return train_loop.drawn_batches(n, config.batch_size, rng)
    return train_loop.shuffled_batches(n, config.batch_size, rng)


def rate_halvings(config: Config, main_epochs_done: int) -> int:
    """How many times the rate is halved in the next main epoch: after every decay_every epochs, or with the
    official sampling as train.m does (`if mod(ep, lrate_decay_step) == 0` at the start of epoch ep), one epoch
    sooner."""
    if config.sampling == "official":
        return (main_epochs_done + 1) // config.decay_every
    return main_epochs_done // config.decay_every


# ----------------------------------------------------------------------------------------------------------------
# Gradient clipping


def clip_gradients(grads: dict, config: Config) -> tuple[dict, dict]:
    """Each weight matrix's gradient rescaled to norm ≤ max_norm (40). Returns (clipped, norms before clipping).

    "frobenius": every array alone, by its Frobenius norm. "official", as the MATLAB code (nn/Weight.m: `if
    norm(grad) > max_grad_norm, grad = grad * max_grad_norm / norm(grad)`): there the time words are words of the
    vocabulary, so a word matrix and its temporal rows (A and T_A, Cᵏ and T_Cᵏ) are one matrix, and MATLAB's
    `norm` of a matrix is its spectral norm, the largest singular value (never above the Frobenius norm, so the
    official code clips less).
    """
    if config.clipping == "frobenius":
        return optim.clip_by_norm_per_matrix(grads, config.max_grad_norm)
    groups = [(A, TA) for A, TA in distinct_memories(config) if TA is not None]
    if answer_time_rows(config) == "TW":                      # layer-wise W's table holds the time words' rows too
        groups.append(("W", "TW"))
    return optim.clip_by_norm_per_matrix(grads, config.max_grad_norm, norm="spectral", groups=groups)


# ----------------------------------------------------------------------------------------------------------------
# The protocol's entry points


def attention_of(cache: Cache) -> np.ndarray:
    """(N, K, M) attention of every hop."""
    return np.stack([h.attention.p for h in cache.hops], axis=1)


def loss_and_grads(params, batch: Batch, config: Config):
    """Summed softmax cross-entropy over the batch, its gradients, and info (attention, predictions)."""
    logits, cache = forward(params, batch, config)
    loss, ce = ops.softmax_cross_entropy_forward(logits, batch.answers, reduction="sum")
    dlogits = ops.softmax_cross_entropy_backward(1.0, ce)    # (N, V)
    grads = backward(dlogits, cache, params, config)
    info = {"attention": attention_of(cache), "predictions": logits.argmax(1), "probs": ce.probs}
    return loss, grads, info


def predict(params, batch: Batch, config: Config):
    """Answers (N,) and info: attention (N, K, M), answer probabilities (N, V), loss (summed)."""
    logits, cache = forward(params, batch, config)
    loss, ce = ops.softmax_cross_entropy_forward(logits, batch.answers, reduction="sum")
    return logits.argmax(1), {"attention": attention_of(cache), "probs": ce.probs, "loss": loss}


# ----------------------------------------------------------------------------------------------------------------
# The same model one example at a time, by lookup: the oracle for the vectorised code above. It writes the tying,
# the position weights and the time word out from the paper and the official code; it calls none of the helpers
# (roles, question_and_answer_names, ops.pe_factors, ...) that decide those things for the vectorised model.


def naive_tying(config: Config) -> dict:
    """Per hop k = 1..K the names of Aᵏ, Cᵏ, T_Aᵏ, T_Cᵏ, and of B and W, as §2.2 states them."""
    K = config.hops
    if config.tying == "adjacent":                            # Aᵏ⁺¹ = Cᵏ, B = A¹, Wᵀ = Cᴷ; T_A, T_C likewise
        A = {1: "A"} | {k: f"C{k - 1}" for k in range(2, K + 1)}
        TA = {1: "TA"} | {k: f"TC{k - 1}" for k in range(2, K + 1)}
        C, TC = {k: f"C{k}" for k in range(1, K + 1)}, {k: f"TC{k}" for k in range(1, K + 1)}
        return {"A": A, "C": C, "TA": TA, "TC": TC, "B": "A", "W": f"C{K}", "TW": f"TC{K}"}   # Wᵀ = Cᴷ, time rows too
    every = lambda name: {k: name for k in range(1, K + 1)}   # layer-wise: one A, one C on every hop, and H
    return {"A": every("A"), "C": every("C"), "TA": every("TA"), "TC": every("TC"), "B": "B", "W": "W", "TW": "TW"}


def forward_naive(params, batch: Batch, config: Config) -> np.ndarray:
    """Logits (N, V), or (N, V + memory_size) with answer_time_words, computed per example with literal lookups,
    position weights and a plain softmax."""
    d, K, kind = config.d, config.hops, config.encoding
    names = naive_tying(config)
    L = batch.stories.shape[2]
    time_word = kind == "official" and config.temporal       # the official time word is word L + 1
    J_padded = L + 1 if time_word else L

    def l(j, k, n_words):                                     # position weight of word j, dimension k (1-based)
        if kind is None:
            return 1.0
        if kind == "paper":                                   # §4.1, J = the sentence's own length
            return (1 - j / n_words) - (k / d) * (1 - 2 * j / n_words)
        return 1 + 4 * (k - (d + 1) / 2) * (j - (J_padded + 1) / 2) / (d * J_padded)   # MATLAB build_model.m

    def sentence(E, words):                                   # Σ_j l_j ⊙ E x_j
        n_words = int(np.count_nonzero(words))
        out = np.zeros(d)
        for j, w in enumerate(words, start=1):
            if w != 0:
                out += np.array([l(j, k, n_words) for k in range(1, d + 1)]) * params[E][w]
        return out

    time_l = np.array([l(J_padded, k, 0) for k in range(1, d + 1)]) if time_word else np.ones(d)
    logits = []
    for n in range(batch.stories.shape[0]):
        slots = range(batch.stories.shape[1])
        real = [i for i in slots if batch.mask[n, i]]
        u = sentence(names["B"], batch.queries[n])            # u¹ = Σ_j l_j ⊙ B q_j

        def memory(E, T):                                     # one vector per slot; an empty slot is zero
            vecs = {}
            for i in slots:
                if i in real:
                    v = sentence(E, batch.stories[n, i])
                    if config.temporal:
                        v = v + time_l * params[T][batch.age[n, i]]
                    vecs[i] = v
                elif not config.mask_empty:
                    vecs[i] = np.zeros(d)
            return vecs

        for k in range(1, K + 1):
            m = memory(names["A"][k], names["TA"][k])
            c = memory(names["C"][k], names["TC"][k])
            s = np.array([m[i] @ u for i in m])               # scores of the slots attention sees
            p = s if config.attention == "linear" else np.exp(s - s.max()) / np.exp(s - s.max()).sum()
            o = sum(p_i * c[i] for p_i, i in zip(p, m))
            u = (params["H"] @ u if config.tying == "layerwise" else u) + o
            if config.relu:
                u = np.maximum(u, 0)
        scores = params[names["W"]] @ u                       # (V,) the vocabulary's words
        if config.answer_time_words:                          # the official answer matrix's time-word rows, raw
            scores = np.concatenate([scores, params[names["TW"]] @ u])
        logits.append(scores)
    return np.array(logits)


def replace(config: Config, **changes) -> Config:
    return dataclasses.replace(config, **changes)
