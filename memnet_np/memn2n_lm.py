"""MemN2N as a language model (Sukhbaatar, Szlam, Weston, Fergus 2015, §5), forward and backward by hand.

The same hops as the bAbI model (memn2n.hop_forward), with words as memories and no question:

    m_i = A x_i + T_A(i)              the previous M words, one word a slot (no position encoding), oldest first
    c_i = C x_i + T_C(i)
    u¹  = (0.1, …, 0.1)               a constant query
    p   = softmax(uᵏᵀ m_i)
    oᵏ  = Σ_i p_i c_i
    uᵏ⁺¹ = H uᵏ + oᵏ, then ReLU on the units from d_lin on     (layer-wise tying: one A, C, H on every hop)
    â   = softmax(W uᴷ⁺¹)                                     the next word; W is untied from A and C

The reference is the authors' Torch code, facebookarchive/MemNN `MemN2N-lang-model` (model.lua, main.lua), and
this file follows it: A and C are the two lookup tables of the memory (its `Ain`, `Bin`), T_A and T_C the lookup
tables of the slot index (slot 1 = the oldest word), H the `LinearNB` shared by the hops (no bias), W the output
`LinearNB` (no bias); the first `linear_units` (lindim 75 of edim 150) units stay linear, the rest pass a ReLU;
every weight starts N(0, 0.05); the loss is summed over the batch (`sizeAverage = false`); the gradient of all
parameters together is clipped to norm 50; SGD with lr 0.01, divided by 1.5 whenever the validation cost is not
below 0.9999 × the previous epoch's, and training stops when lr falls below 1e-5.

Where we differ from it, by name:
- training batches: the official code draws each of the 128 positions uniformly at random from the training text
  (not consecutive streams), ceil(n / 128) batches an epoch; we do the same, with positions M … n−1 (0-based; the
  official 1-based draw leaves out the first position with a full memory, an off-by-one we do not copy);
  `Config.order` offers two orders that predict every word once an epoch instead ("shuffle", "streams"); on the
  quick check's validation perplexity neither did better than the official draw (README), which stays the default;
- evaluation: every word that has M words before it is predicted exactly once (`evaluation_positions`); the
  official test loop also skips the first M words, and pads its last batch by wrapping around to the start, so
  a few words count twice there. On PTB's 73,760 validation words the two differ by a handful of words.

Shape letters: N batch, M memory (previous words), d state size, V vocabulary, K hops. Word ids are ints; the
vocabulary comes from memnet_np.data.corpus (`<eos>` is a word, added after every line).

How the vectorised code is organised: the memory of a batch is read by lookup, A[x] + T_A (N, M, d); the K hops
share it, so its gradient is one batched product Σ_k ds_k uᵏ (N, M, K)·(N, K, d), added into A's rows with
`row_sums` (each row of A collects the slots that hold its word). `forward_naive` at the end is the model
written position by position from the equations, and the tests hold the two equal.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional

import numpy as np

from memnet_np import checks, memn2n, ops, optim


ORDERS = ("random", "shuffle", "streams")


@dataclass(frozen=True)
class Config:
    """The official code's defaults (main.lua). `vocab_size` comes from the corpus; see `Config.for_corpus`."""
    vocab_size: int = 0          # V (PTB: 10,000)
    d: int = 150                 # edim, the state size
    linear_units: Optional[int] = None   # lindim: the first units stay linear, the rest pass a ReLU; None: d // 2
                                 # (official: 75 of 150; the paper: "150 = 75 + 75"). The official --lindim stays 75
                                 # at any d; at d = 100 that did no better on the quick check's validation (README)
    hops: int = 6                # nhop (the paper's best PTB model: 7 hops, memory 200)
    memory_size: int = 100       # memsize, the previous words in memory
    init_u: float = 0.1          # init_hid: every unit of the constant query u¹
    init_std: float = 0.05       # every weight ~ N(0, 0.05²)
    # training
    epochs: int = 100
    lr: float = 0.01             # sdt
    lr_divisor: float = 1.5      # lr /= 1.5 when the validation cost stops falling (is ≥ 0.9999 × the previous)
    min_lr: float = 1e-5         # stop once lr falls below this
    batch_size: int = 128        # the loss is summed over the batch, not averaged
    max_grad_norm: float = 50.0  # the gradient of all parameters together is clipped to this norm
    order: str = "random"        # which positions an epoch's batches predict (see `epoch_positions`):
                                 # "random" (official: drawn with replacement), "shuffle", "streams"
    dtype: str = "float32"       # training runs in float32 (about twice as fast); gradient checks use float64

    def __post_init__(self):
        problems = checks.below_one(self, ("d", "hops", "memory_size", "batch_size", "epochs"))
        if self.linear_units is not None and not 0 <= self.linear_units <= self.d:
            problems.append(f"linear_units must be in 0..d = {self.d}, got {self.linear_units}")
        for name in ("lr", "max_grad_norm", "min_lr"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be positive, got {getattr(self, name)}")
        if not self.lr_divisor > 1:
            problems.append(f"lr_divisor must be above 1, got {self.lr_divisor}")
        if self.order not in ORDERS:
            problems.append(f"order must be one of {', '.join(map(repr, ORDERS))}, got {self.order!r}")
        checks.raise_config_problems(self, "MemN2N language-model", problems)

    @classmethod
    def tiny(cls, **overrides) -> "Config":
        """Small sizes for tests, gradient checks and fast tutorials (half linear, half ReLU, as the default)."""
        base = dict(vocab_size=13, d=6, hops=3, memory_size=5, epochs=2, batch_size=4, dtype="float64")
        base.update(overrides)
        return cls(**base)

    @classmethod
    def for_corpus(cls, corpus, **overrides) -> "Config":
        return cls(**{"vocab_size": corpus.vocab_size, **overrides})

    @property
    def linear(self) -> int:
        """How many units stay linear: linear_units, or half of d."""
        return self.d // 2 if self.linear_units is None else self.linear_units

    @property
    def relu_from(self) -> Optional[int]:
        """The first unit that passes a ReLU, as memn2n.hop_forward takes it (None: every unit linear)."""
        return None if self.linear == self.d else self.linear


def replace(config: Config, **changes) -> Config:
    return dataclasses.replace(config, **changes)


# ----------------------------------------------------------------------------------------------------------------
# Parameters

PARAM_NAMES = ("A", "C", "TA", "TC", "H", "W")


def param_names(config: Config) -> list[str]:
    return list(PARAM_NAMES)


def param_shapes(config: Config) -> dict[str, tuple]:
    V, d, M = config.vocab_size, config.d, config.memory_size
    return {"A": (V, d), "C": (V, d), "TA": (M, d), "TC": (M, d), "H": (d, d), "W": (V, d)}


def init_params(config: Config, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every weight ~ N(0, init_std²), as the official `g_paramx:normal(0, init_std)` (H and W included)."""
    if config.vocab_size < 2:
        raise ValueError(f"vocab_size must be at least 2, got {config.vocab_size}")
    dtype = np.dtype(config.dtype)
    return {name: (rng.standard_normal(shape) * config.init_std).astype(dtype)
            for name, shape in param_shapes(config).items()}


def _check_params(params, config: Config) -> None:
    """Every parameter with its shape, and finite (memnet_np.checks, the bAbI models' check)."""
    checks.check_params(params, param_shapes(config))


# ----------------------------------------------------------------------------------------------------------------
# Batches: the M words before a position, and the word at it


class Batch(NamedTuple):
    contexts: np.ndarray  # (N, M) int, the M previous words, oldest first
    targets: np.ndarray   # (N,) int, the next word


def make_batch(ids: np.ndarray, positions: np.ndarray, memory_size: int) -> Batch:
    """Predict ids[t] from ids[t − M … t − 1] for every t in positions (each t ≥ M)."""
    positions = np.asarray(positions)
    if positions.size and (positions.min() < memory_size or positions.max() >= len(ids)):
        raise ValueError(f"positions must lie in [{memory_size}, {len(ids)}) for a memory of {memory_size} words "
                         f"in a text of {len(ids)}, got {positions.min()}..{positions.max()}")
    window = positions[:, None] - memory_size + np.arange(memory_size)   # (N, M) oldest first
    return Batch(ids[window], ids[positions])


def training_positions(n_words: int, config: Config, rng: np.random.Generator) -> np.ndarray:
    """One batch of positions drawn uniformly from M … n−1, as the official `math.random` draw (with replacement)."""
    if n_words <= config.memory_size:
        raise ValueError(f"a text of {n_words} words is too short for a memory of {config.memory_size} words")
    return rng.integers(config.memory_size, n_words, size=config.batch_size)   # (N,)


def epoch_positions(n_words: int, config: Config, rng: np.random.Generator) -> np.ndarray:
    """(steps, N) the positions every batch of one epoch predicts, in the order of `config.order`:

    - "random": the official draw, every batch `training_positions` (with replacement), ceil(n / N) batches, so
      an epoch sees about 1 − 1/e ≈ 63% of the positions, some of them more than once;
    - "shuffle": every position M … n−1 exactly once, in a random order (the last few positions that do not fill
      a batch are left to the next epoch's draw);
    - "streams": the positions cut into N consecutive streams read side by side: batch j predicts position
      s_b + j of every stream b (each exactly once, in text order within a stream).
    """
    if n_words <= config.memory_size:
        raise ValueError(f"a text of {n_words} words is too short for a memory of {config.memory_size} words")
    N = config.batch_size
    if config.order == "random":
        steps = math.ceil(n_words / N)
        return rng.integers(config.memory_size, n_words, size=(steps, N))           # (steps, N)
    positions = np.arange(config.memory_size, n_words)                             # (P,) every full-memory position
    steps = len(positions) // N
    if steps == 0:
        raise ValueError(f"a text of {n_words} words gives {len(positions)} positions, fewer than one batch of "
                         f"{N}: use order='random' or a smaller batch_size")
    if config.order == "shuffle":
        return rng.permutation(positions)[:steps * N].reshape(steps, N)           # (steps, N)
    start = rng.integers(0, len(positions) - steps * N + 1)                         # which remainder is left out
    return positions[start:start + steps * N].reshape(N, steps).T                  # (steps, N) column b: stream b


def evaluation_positions(n_words: int, config: Config) -> np.ndarray:
    """Every position with a full memory before it, once each."""
    if n_words <= config.memory_size:
        raise ValueError(f"a text of {n_words} words is too short for a memory of {config.memory_size} words")
    return np.arange(config.memory_size, n_words)


def example_batch(config: Config, rng: np.random.Generator, N: int = 4) -> Batch:
    """A small valid batch: windows of a random text, so neighbouring rows share words as real batches do."""
    ids = rng.integers(0, config.vocab_size, size=config.memory_size + 3 * N)
    return make_batch(ids, rng.integers(config.memory_size, len(ids), size=N), config.memory_size)


def _check_batch(batch: Batch, config: Config) -> None:
    for name in Batch._fields:
        a = getattr(batch, name)
        if not isinstance(a, np.ndarray) or a.dtype.kind not in "iu":
            raise TypeError(f"batch.{name} must be an int numpy array, got "
                            f"{type(a).__name__}{'' if not isinstance(a, np.ndarray) else ' of ' + str(a.dtype)}")
    N = batch.targets.shape[0] if batch.targets.ndim == 1 else -1
    if batch.contexts.shape != (N, config.memory_size) or batch.targets.ndim != 1:
        raise ValueError(f"batch.contexts must have shape (N, memory_size = {config.memory_size}) and batch.targets "
                         f"(N,), got contexts {batch.contexts.shape} and targets {batch.targets.shape}")
    for name in Batch._fields:
        a = getattr(batch, name)
        if a.size and (a.min() < 0 or a.max() >= config.vocab_size):
            raise ValueError(f"batch.{name} holds word ids outside [0, {config.vocab_size}) (min {a.min()}, max "
                             f"{a.max()}): was the text encoded with another vocabulary?")


# ----------------------------------------------------------------------------------------------------------------
# Forward


class Cache(NamedTuple):
    contexts: np.ndarray     # (N, M) the words in memory
    hops: list               # K memn2n.Hop caches (uᵏ, the attention, the ReLU)
    u_final: np.ndarray      # (N, d) uᴷ⁺¹


def forward(params, batch: Batch, config: Config, check_params: bool = True):
    """Returns (logits (N, V), cache). Training skips the parameter check (check_params=False): its gradient-norm
    check catches a NaN on every step anyway, and the check reads every weight."""
    _check_batch(batch, config)
    if check_params:
        _check_params(params, config)
    N, dtype = batch.targets.shape[0], params["A"].dtype
    m = params["A"][batch.contexts]                           # (N, M, d) A x_i
    m += params["TA"]                                         #           m_i = A x_i + T_A(i)
    c = params["C"][batch.contexts]                           # (N, M, d) C x_i
    c += params["TC"]                                         #           c_i = C x_i + T_C(i)
    u = np.full((N, config.d), config.init_u, dtype=dtype)    # (N, d) u¹, the constant query
    hops = []
    for _ in range(config.hops):
        u, hop = memn2n.hop_forward(u, m, c, params["H"], relu_from=config.relu_from)   # (N, d) uᵏ⁺¹
        hops.append(hop)
    logits = u @ params["W"].T                                # (N, V) W uᴷ⁺¹ (the softmax is in the loss)
    return logits, Cache(batch.contexts, hops, u)


# ----------------------------------------------------------------------------------------------------------------
# Backward: the forward read bottom to top


def row_sums(idx: np.ndarray, values: np.ndarray, rows: int) -> np.ndarray:
    """out[r] = Σ of values[j] over every j with idx[j] = r: (rows, d) from idx (P,) and values (P, d).

    The gradient of a lookup table. One np.add.at over flat element indices r·d + k: on a 128 × 100-word PTB batch
    this is 2–4× faster than np.add.at over rows, sorting with np.add.reduceat, or one np.bincount per column.
    """
    d = values.shape[1]
    out = np.zeros((rows, d), dtype=values.dtype)             # (rows, d)
    flat = (idx.astype(np.int64)[:, None] * d + np.arange(d)).ravel()   # (P·d,) element of out for each value
    np.add.at(out.reshape(-1), flat, values.reshape(-1))
    return out


def backward(dlogits, cache: Cache, params, config: Config) -> dict[str, np.ndarray]:
    grads = {}
    grads["W"] = dlogits.T @ cache.u_final                    # (V, d) ∂/∂W of u Wᵀ
    du = dlogits @ params["W"]                                # (N, d) ∂loss/∂uᴷ⁺¹
    grads["H"] = np.zeros_like(params["H"])                   # (d, d)
    keys, values = [], []
    for hop in reversed(cache.hops):
        du, dH, key, value = memn2n.hop_backward(du, hop, params["H"], config.relu_from)   # (N, d) ∂loss/∂uᵏ
        grads["H"] += dH
        keys.append(key)                                      # (ds (N, M), uᵏ (N, d)): ∂loss/∂m_i = ds_i uᵏ
        values.append(value)                                  # (p (N, M), doᵏ (N, d)): ∂loss/∂c_i = p_i doᵏ
    # every hop reads the same m and c: their gradients are the sums over hops, one batched product each
    dm = np.stack([ds for ds, _ in keys], 2) @ np.stack([u for _, u in keys], 1)        # (N, M, d) Σ_k ds_k uᵏ
    dc = np.stack([p for p, _ in values], 2) @ np.stack([do for _, do in values], 1)   # (N, M, d) Σ_k p_k doᵏ
    grads["TA"] = dm.sum(0)                                   # (M, d) m_i = A x_i + T_A(i)
    grads["TC"] = dc.sum(0)                                   # (M, d)
    V, d = config.vocab_size, config.d
    grads["A"] = row_sums(cache.contexts.ravel(), dm.reshape(-1, d), V)   # (V, d) each word's slots
    grads["C"] = row_sums(cache.contexts.ravel(), dc.reshape(-1, d), V)   # (V, d)
    return {name: grads[name] for name in PARAM_NAMES}


# ----------------------------------------------------------------------------------------------------------------
# The protocol's entry points


def attention_of(cache: Cache) -> np.ndarray:
    """(N, K, M) attention of every hop over the previous words (oldest first)."""
    return np.stack([h.attention.p for h in cache.hops], axis=1)


def next_word_loss(logits, targets):
    """(summed cross-entropy −Σ_n log softmax(logits_n)[targets_n], ∂loss/∂logits (N, V)) in one pass over the
    (N, V) array, which is made once and then changed in place: at V = 10,000 these passes are a step's largest
    costs after the output product. ops.softmax_cross_entropy_forward/backward compute the same (tests hold them
    equal) with a cache, one more exp and three more (N, V) arrays."""
    N = logits.shape[0]
    rows = np.arange(N)
    z = logits - logits.max(1, keepdims=True)                 # (N, V) shifted: exp never overflows
    z_target = z[rows, targets]                               # (N,)
    np.exp(z, out=z)                                          # (N, V) e^z
    total = z.sum(1)                                          # (N,) Σ_v e^z
    z /= total[:, None]                                       # (N, V) softmax â
    loss = float(np.sum(np.log(total, dtype=np.float64) - z_target))
    z[rows, targets] -= 1.0                                   # (N, V) ∂loss/∂logits = â − onehot(target)
    return loss, z


def loss_and_grads(params, batch: Batch, config: Config):
    """Summed cross-entropy of the next word over the batch, its gradients, and info (attention, predictions)."""
    logits, cache = forward(params, batch, config)
    loss, dlogits = next_word_loss(logits, batch.targets)    # (N, V)
    grads = backward(dlogits, cache, params, config)
    info = {"attention": attention_of(cache), "predictions": logits.argmax(1)}
    return loss, grads, info


def predict(params, batch: Batch, config: Config):
    """The most likely next word (N,) and info: attention (N, K, M), probabilities (N, V), loss (summed)."""
    logits, cache = forward(params, batch, config)
    loss, ce = ops.softmax_cross_entropy_forward(logits, batch.targets, reduction="sum")
    return logits.argmax(1), {"attention": attention_of(cache), "probs": ce.probs, "loss": loss}


# ----------------------------------------------------------------------------------------------------------------
# The same model one position at a time, from the equations: the oracle for the vectorised code. It calls none of
# the helpers above (no hop_forward, no relu_from, no lookup by fancy indexing).


def forward_naive(params, batch: Batch, config: Config) -> np.ndarray:
    """Logits (N, V), one position at a time, with plain loops over the memory slots."""
    A, C, TA, TC, H, W = (params[n] for n in ("A", "C", "TA", "TC", "H", "W"))
    n_linear = config.d // 2 if config.linear_units is None else config.linear_units   # units without ReLU
    logits = []
    for n in range(batch.contexts.shape[0]):
        words = batch.contexts[n]                             # the M previous words, oldest first
        m = [A[words[i]] + TA[i] for i in range(len(words))]  # m_i = A x_i + T_A(i)
        c = [C[words[i]] + TC[i] for i in range(len(words))]  # c_i = C x_i + T_C(i)
        u = np.full(config.d, config.init_u)                  # u¹ = 0.1
        for _ in range(config.hops):
            s = np.array([u @ m_i for m_i in m])              # uᵀ m_i
            p = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
            o = sum(p_i * c_i for p_i, c_i in zip(p, c))      # o = Σ p_i c_i
            u = H @ u + o                                     # H u + o
            u = np.array([u_j if j < n_linear else max(u_j, 0.0) for j, u_j in enumerate(u)])   # half ReLU
        logits.append(W @ u)
    return np.array(logits)


# ----------------------------------------------------------------------------------------------------------------
# Training: the official schedule (main.lua's train, test and run)


class EpochLog(NamedTuple):
    epoch: int
    lr: float
    train_perplexity: float
    valid_perplexity: float
    seconds: float            # this epoch's training and validation
    words_per_second: float   # training words (predictions) a second in this epoch


def perplexity(params, ids: np.ndarray, config: Config, chunk: int = 512) -> float:
    """exp(mean cross-entropy) over every position of `ids` that has a full memory before it."""
    positions = evaluation_positions(len(ids), config)
    total = 0.0
    for start in range(0, len(positions), chunk):
        batch = make_batch(ids, positions[start:start + chunk], config.memory_size)
        logits, _ = forward(params, batch, config)
        total += next_word_loss(logits, batch.targets)[0]
    return math.exp(total / len(positions))


def train_step(params, batch: Batch, config: Config, lr: float) -> float:
    """One SGD step on the summed loss, the gradient of all parameters clipped to norm max_grad_norm together."""
    with np.errstate(over="ignore", invalid="ignore"):       # a blow-up is reported by the norm check below
        logits, cache = forward(params, batch, config, check_params=False)
        loss, dlogits = next_word_loss(logits, batch.targets)    # (N, V)
        grads = backward(dlogits, cache, params, config)
    optim.sgd_step_global_clip(params, grads, lr, config.max_grad_norm)
    return loss


def train(corpus, config: Config, rng: np.random.Generator, params: Optional[dict] = None,
          progress: Optional[Callable] = None, time_budget: Optional[float] = None, epoch_callback=None) -> dict:
    """Train with the official schedule; returns {"params", "history" (EpochLogs), "stopped", "seconds"}.

    time_budget (seconds): do not start an epoch that would end after it (judged by the last epoch's time).
    progress(kind, dict) is called within epochs ("step") and after them ("epoch").
    """
    params = init_params(config, rng) if params is None else params
    ids = corpus.train
    lr, history, t0 = config.lr, [], time.perf_counter()
    stopped = "epochs"
    prev_cost = None
    for epoch in range(1, config.epochs + 1):
        if time_budget is not None and history and \
                time.perf_counter() - t0 + history[-1].seconds > time_budget:
            stopped = "time budget"
            break
        te, cost, last_report = time.perf_counter(), 0.0, time.perf_counter()
        order = epoch_positions(len(ids), config, rng)        # (steps, N)
        steps = len(order)
        for step in range(1, steps + 1):
            batch = make_batch(ids, order[step - 1], config.memory_size)
            try:
                cost += train_step(params, batch, config, lr)
            except optim.NonFiniteError as e:                 # the step changed nothing; the last epoch's
                raise optim.NonFiniteError(f"training blew up in epoch {epoch}, step {step}: {e}") from None
            if progress is not None and time.perf_counter() - last_report > 30:
                last_report = time.perf_counter()
                progress("step", {"epoch": epoch, "step": step, "steps": steps,
                                  "train_perplexity": math.exp(min(cost / (step * config.batch_size), 700.0)),
                                  "seconds": last_report - te})
        train_seconds = time.perf_counter() - te
        valid = perplexity(params, corpus.valid, config)
        log = EpochLog(epoch, lr, math.exp(min(cost / (steps * config.batch_size), 700.0)), valid,
                       time.perf_counter() - te, steps * config.batch_size / train_seconds)
        history.append(log)
        if progress is not None:
            progress("epoch", {**log._asdict(), "elapsed": time.perf_counter() - t0})
        if epoch_callback is not None:
            epoch_callback(params, history)
        if not math.isfinite(log.train_perplexity):
            raise optim.NonFiniteError(f"training blew up in epoch {epoch}: train perplexity {log.train_perplexity}")
        cost_valid = math.log(valid)
        if prev_cost is not None and cost_valid > prev_cost * 0.9999:   # main.lua's learning rate annealing
            lr /= config.lr_divisor
            if lr < config.min_lr:
                stopped = "learning rate below min_lr"
                break
        prev_cost = cost_valid
    return {"params": params, "history": history, "stopped": stopped, "seconds": time.perf_counter() - t0}


# ----------------------------------------------------------------------------------------------------------------
# The command line's hooks: `python -m memnet_np train memn2n-lm --data DIR`, `evaluate DIR`, `bench memn2n-lm`

PAPER = {"test_perplexity": 111.0, "setting": "d 150, 7 hops, memory 200 (Table 2)",
         "bigram_test_perplexity": 186.6, "unigram_test_perplexity": 639.0}


def load_text(data_dir: Optional[str]):
    from memnet_np.data import corpus as corpora
    return corpora.resolve_corpus(data_dir)


def _fmt_time(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def run(corpus, config: Config, seed: int = 0, time_budget: Optional[float] = None, out_dir: Optional[str] = None,
        quiet: bool = False, data_dir: Optional[str] = None, echo=print) -> dict:
    """Train, score the final model on validation and test text, write results.json and checkpoint.npz."""
    from memnet_np import train as T
    t0 = time.perf_counter()

    def show(kind, r):
        if quiet:
            return
        if kind == "step":
            rate = r["step"] * config.batch_size / r["seconds"]
            echo(f"  epoch {r['epoch']:3d}  {r['step']:5d}/{r['steps']} batches  train ppl {r['train_perplexity']:8.1f}"
                 f"  {rate:6.0f} words/s  epoch ETA {_fmt_time((r['steps'] - r['step']) * config.batch_size / rate)}")
        else:
            left = config.epochs - r["epoch"]
            eta = left * r["seconds"]
            if time_budget is not None:
                eta = min(eta, max(time_budget - r["elapsed"], 0))
            echo(f"epoch {r['epoch']:3d}/{config.epochs}  lr {r['lr']:.5f}  train ppl {r['train_perplexity']:8.2f}  "
                 f"valid ppl {r['valid_perplexity']:8.2f}  {r['words_per_second']:6.0f} words/s  "
                 f"epoch {_fmt_time(r['seconds'])}  elapsed {_fmt_time(r['elapsed'])}  ETA {_fmt_time(eta)}")

    def save(params, history):
        if out_dir is not None:
            T.save_checkpoint(os.path.join(out_dir, "checkpoint.npz"), "memn2n-lm", params, config, corpus.words,
                              meta={"data": corpus.name, "data_dir": data_dir, "seed": seed,
                                    "epochs_done": len(history)})

    out = train(corpus, config, np.random.default_rng(seed), progress=show, time_budget=time_budget,
                epoch_callback=save)
    params, history = out["params"], out["history"]
    valid = history[-1].valid_perplexity if history else perplexity(params, corpus.valid, config)
    test = perplexity(params, corpus.test, config)
    res = {"model": "memn2n-lm", "data": corpus.name, "data_dir": data_dir, "seed": seed,
           "config": dataclasses.asdict(config), "valid_perplexity": valid, "test_perplexity": test,
           "epochs": len(history), "stopped": out["stopped"], "time_budget": time_budget,
           "history": [h._asdict() for h in history], "training_seconds": out["seconds"],
           "words_per_second": float(np.mean([h.words_per_second for h in history])) if history else None,
           "seconds": time.perf_counter() - t0, "paper": PAPER,
           "evaluation": "every word with a full memory before it, once (official: the same words; its last batch "
                         "wraps around)"}
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        save(params, history)
        res["checkpoint"] = os.path.join(out_dir, "checkpoint.npz")
        with open(os.path.join(out_dir, "results.json"), "w") as f:
            json.dump(res, f, indent=2)
    res["params"] = params
    return res


CLI_SETTINGS = ("hops", "d", "epochs", "dtype", "init_std", "data")   # the bAbI models' options `train memn2n-lm`
#   takes (--hops, --dim, --epochs, --float32, --init-std, and --data for its corpus)
OWN_CLI_OPTIONS = ("memory", "order", "time_budget")   # the options of `train` that only the language model reads
CONFIG_FIELD = {"memory": "memory_size"}   # the options above whose Config field has another name
NOT_CONFIG = ("data", "time_budget")       # the options above that are no Config field (the corpus, the budget)


def config_from_args(args, corpus) -> Config:
    """The Config from the options `train memn2n-lm` reads (CLI_SETTINGS and OWN_CLI_OPTIONS), those given."""
    from memnet_np.experiments import UserError
    given = {CONFIG_FIELD.get(k, k): getattr(args, k, None) for k in CLI_SETTINGS + OWN_CLI_OPTIONS
             if k not in NOT_CONFIG}
    overrides = {k: v for k, v in given.items() if v is not None}
    try:
        return Config.for_corpus(corpus, **overrides)
    except ValueError as e:
        raise UserError(str(e)) from None


def train_command(args) -> int:
    """`train memn2n-lm [--data DIR] [--hops K] [--memory N] [--dim d] [--epochs E] [--time-budget S] [--out DIR]`"""
    from memnet_np.experiments import UserError
    budget = getattr(args, "time_budget", None)
    if budget is not None and budget <= 0:
        raise UserError(f"--time-budget must be positive seconds, got {budget}")
    if getattr(args, "task", None) is not None:              # (--joint, --tenk: the CLI refuses them)
        raise UserError("memn2n-lm trains on a text corpus: give --data DIR (a folder with ptb.train.txt, "
                        "ptb.valid.txt, ptb.test.txt), or nothing for generated text; --task is bAbI's")
    corpus = load_text(args.data)
    config = config_from_args(args, corpus)
    if len(corpus.valid) <= config.memory_size or len(corpus.test) <= config.memory_size:
        raise UserError(f"{corpus.name}: the validation and test texts must be longer than the memory "
                        f"({config.memory_size} words)")
    out_dir = args.out or os.path.join("runs", "memn2n-lm")
    print(f"training memn2n-lm on {corpus.name} ({len(corpus.train):,} training words, vocabulary "
          f"{corpus.vocab_size:,}): {config.hops} hops, memory {config.memory_size}, d {config.d} "
          f"({config.linear} linear + {config.d - config.linear} ReLU), {config.dtype}, batch {config.batch_size}, "
          f"lr {config.lr}, up to {config.epochs} epochs"
          f"{'' if budget is None else f' or {_fmt_time(budget)}'}; seed {args.seed}; results go to {out_dir}",
          flush=True)
    res = run(corpus, config, args.seed, budget, out_dir, args.quiet, args.data,
              echo=lambda line: print(line, flush=True))
    print("\n" + "=" * 72)
    print(f"memn2n-lm on {corpus.name}: {res['epochs']} epoch(s), stopped by {res['stopped']}, "
          f"{_fmt_time(res['seconds'])} wall")
    print(f"  valid perplexity {res['valid_perplexity']:.1f}   test perplexity {res['test_perplexity']:.1f}   "
          f"(paper {PAPER['test_perplexity']:.0f} with {PAPER['setting']}; bigram {PAPER['bigram_test_perplexity']})")
    print(f"wrote {os.path.join(out_dir, 'results.json')} and {res['checkpoint']}")
    print(f"score it again with: python -m memnet_np evaluate {out_dir}")
    print("=" * 72)
    return 0


def evaluate_command(args, ck, path) -> int:
    """`evaluate DIR` on a memn2n-lm checkpoint: validation and test perplexity, on the text it was trained on
    (or --data DIR), encoded with the checkpoint's vocabulary."""
    from memnet_np.data import corpus as corpora
    from memnet_np.train import CheckpointError
    try:
        config = Config(**ck.config)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: not a memn2n-lm config ({e})") from None
    if len(ck.vocab) != config.vocab_size:
        raise CheckpointError(f"{path}: {len(ck.vocab)} vocabulary words for a model of {config.vocab_size}")
    try:
        _check_params(ck.params, config)
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from None
    data_dir = args.data or ck.meta.get("data_dir")
    if data_dir is None:                                      # trained on the generated text: score on it
        text = corpora.generated_corpus()
        if list(text.words) != list(ck.vocab):
            raise CheckpointError(f"{path}: its vocabulary is not the generated text's; give --data DIR")
        ids = {"valid": text.valid, "test": text.test}
        where = {s: f"generated {s} text" for s in ids}
    else:
        files = corpora.corpus_files(data_dir)
        where = {s: str(files[s]) for s in ("valid", "test")}
        ids = {s: corpora.encode(corpora.read_lines(files[s]), ck.vocab, where[s]) for s in where}
    print(f"memn2n-lm checkpoint {path} ({config.hops} hops, memory {config.memory_size}, d {config.d})")
    for split in ("valid", "test"):
        if len(ids[split]) <= config.memory_size:
            raise CheckpointError(f"{where[split]}: {len(ids[split])} words, not more than the memory "
                                  f"({config.memory_size})")
        print(f"  {split:5s} perplexity {perplexity(ck.params, ids[split], config):8.2f}  ({where[split]}, "
              f"{len(ids[split]) - config.memory_size:,} words scored)")
    return 0


def zipf_text(n_words: int, vocab_size: int, rng: np.random.Generator) -> np.ndarray:
    """(n_words,) ids with Zipf-like frequencies (p ∝ 1/rank), for timing without data: a step's cost depends on
    the sizes and on how many distinct words a batch holds, not on which."""
    p = 1.0 / np.arange(1, vocab_size + 1)                    # (V,)
    return rng.choice(vocab_size, size=n_words, p=p / p.sum()).astype(np.int32)


def output_products(u, W, dlogits):
    """The output layer's three products, alone: logits = u Wᵀ, ∂W = ∂logitsᵀ u, ∂u = ∂logits W."""
    return u @ W.T, dlogits.T @ u, dlogits @ W


def _step_parts(params, batch: Batch, config: Config) -> dict:
    """Seconds spent in each part of one training step (the work of train_step, timed piece by piece, lr 0)."""
    clock, t = {}, time.perf_counter()

    def lap(name):
        nonlocal t
        now = time.perf_counter()
        clock[name] = clock.get(name, 0.0) + now - t
        t = now
    m = params["A"][batch.contexts]                           # (N, M, d)
    m += params["TA"]
    c = params["C"][batch.contexts]                           # (N, M, d)
    c += params["TC"]
    u = np.full((batch.targets.shape[0], config.d), config.init_u, dtype=m.dtype)   # (N, d)
    lap("memory lookup")
    hops = []
    for _ in range(config.hops):
        u, hop = memn2n.hop_forward(u, m, c, params["H"], relu_from=config.relu_from)  # (N, d)
        hops.append(hop)
    lap("hops forward")
    logits = u @ params["W"].T                                # (N, V)
    lap("output products")
    _, dlogits = next_word_loss(logits, batch.targets)        # (N, V)
    lap("softmax and loss")
    dW = dlogits.T @ u                                        # (V, d)
    du = dlogits @ params["W"]                                # (N, d)
    lap("output products")
    keys, values = [], []
    for hop in reversed(hops):
        du, _, key, value = memn2n.hop_backward(du, hop, params["H"], config.relu_from)   # (N, d)
        keys.append(key)
        values.append(value)
    dm = np.stack([ds for ds, _ in keys], 2) @ np.stack([v for _, v in keys], 1)          # (N, M, d)
    dc = np.stack([p for p, _ in values], 2) @ np.stack([v for _, v in values], 1)        # (N, M, d)
    lap("hops backward")
    grads = {"A": row_sums(batch.contexts.ravel(), dm.reshape(-1, config.d), config.vocab_size),
             "C": row_sums(batch.contexts.ravel(), dc.reshape(-1, config.d), config.vocab_size)}
    lap("memory gradients (row sums)")
    grads.update(TA=dm.sum(0), TC=dc.sum(0), H=np.zeros_like(params["H"]), W=dW)
    optim.sgd_step_global_clip(_scratch(params), grads, 1e-30, config.max_grad_norm)
    lap("clip and update")
    return clock


_SCRATCH: dict = {}


def _scratch(params) -> dict:
    """Copies of the parameters, made once, for timing updates without changing the real ones."""
    key = tuple((k, v.shape, v.dtype.str) for k, v in params.items())
    if key not in _SCRATCH:
        _SCRATCH.clear()
        _SCRATCH[key] = {k: v.copy() for k, v in params.items()}
    return _SCRATCH[key]


def bench(quick: bool = False, config: Optional[Config] = None, epoch_words: int = 929_589, seed: int = 0) -> dict:
    """Training speed at PTB's sizes (V 10,000, the default 6 hops, memory 100, d 150, batch 128, float32).

    The floor: a step's three output products (`output_products`, 3 · 2·N·d·V flops) timed alone at the same
    sizes. Steps and products alternate, so a machine shared with other work slows both alike; each time is the
    median over the repeats. An epoch is ceil(929,589 / 128) = 7,263 steps (PTB's training text).
    """
    config = Config(vocab_size=10_000) if config is None else config
    rng = np.random.default_rng(seed)
    repeats = 5 if quick else 40
    ids = zipf_text(200_000, config.vocab_size, rng)
    params = init_params(config, rng)
    dtype = params["W"].dtype
    u = rng.standard_normal((config.batch_size, config.d)).astype(dtype)
    dlogits = rng.standard_normal((config.batch_size, config.vocab_size)).astype(dtype)
    step_times, floor_times, part_times = [], [], []
    for r in range(repeats + 1):
        batch = make_batch(ids, training_positions(len(ids), config, rng), config.memory_size)
        t = time.perf_counter()
        train_step(params, batch, config, 1e-6)
        step = time.perf_counter() - t
        t = time.perf_counter()
        output_products(u, params["W"], dlogits)
        floor = time.perf_counter() - t
        part = _step_parts(params, batch, config)
        if r:                                                 # the first of each warms caches and allocators
            step_times.append(step)
            floor_times.append(floor)
            part_times.append(part)
    step, floor = float(np.median(step_times)), float(np.median(floor_times))
    parts = {name: float(np.median([p[name] for p in part_times])) * 1e3 for name in part_times[0]}
    flops = 3 * 2 * config.batch_size * config.d * config.vocab_size
    steps = math.ceil(epoch_words / config.batch_size)
    return {"model": "memn2n-lm", "config": {k: getattr(config, k) for k in
                                             ("vocab_size", "d", "hops", "memory_size", "batch_size", "dtype")},
            "words_per_second": config.batch_size / step, "step_ms": step * 1e3,
            "output_product_ms": floor * 1e3, "output_product_gflops": flops / floor / 1e9,
            "step_over_floor": step / floor, "parts_ms": parts, "epoch_seconds": steps * step, "epoch_floor_seconds": steps * floor,
            "repeats": repeats, "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "unset"),
            "note": "medians of alternating steps and output products; on a shared machine both vary with its load"}


def format_bench(r: dict) -> str:
    c = r["config"]
    return "\n".join([
        f"memn2n-lm training, {c['hops']} hops, memory {c['memory_size']}, d {c['d']}, V {c['vocab_size']:,}, "
        f"batch {c['batch_size']}, {c['dtype']} (BLAS threads: {r['blas_threads']})",
        f"  {r['words_per_second']:8.0f} words/s   ({r['step_ms']:.1f} ms a step)",
        f"  output product alone: {r['output_product_ms']:.1f} ms a step = {r['output_product_gflops']:.1f} GFLOP/s",
        f"  a PTB epoch: {_fmt_time(r['epoch_seconds'])} against the output product's floor of "
        f"{_fmt_time(r['epoch_floor_seconds'])}: {r['step_over_floor']:.2f}x",
        "  a step's parts (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in r["parts_ms"].items()),
        f"  ({r['note']})"])


# ----------------------------------------------------------------------------------------------------------------
# Figures: attention over the previous words, perplexity per epoch


def attention_example(params, ids: np.ndarray, words, config: Config, shown: int = 20, min_words: int = 8):
    """The first test sentence (a line ending in <eos>) of at least min_words words with a full memory before
    it; for its last word, the attention of every hop over the `shown` previous words.

    Returns {"words" (shown,), "attention" (K, shown), "target", "predicted", "position", "sentence"}.
    """
    eos = list(words).index("<eos>")
    ends = np.flatnonzero(ids == eos)                        # positions of <eos>
    for start, end in zip(ends[:-1] + 1, ends[1:]):
        if end - start >= min_words and start - 1 >= config.memory_size:
            t = end - 1                                       # predict the sentence's last word
            batch = make_batch(ids, np.array([t]), config.memory_size)
            pred, info = predict(params, batch, config)
            shown = min(shown, config.memory_size)
            return {"words": [words[i] for i in batch.contexts[0, -shown:]],
                    "attention": info["attention"][0, :, -shown:], "target": words[batch.targets[0]],
                    "predicted": words[pred[0]], "position": int(t),
                    "sentence": " ".join(words[i] for i in ids[start:end])}
    raise ValueError(f"no sentence of {min_words}+ words with {config.memory_size} words before it in the text")


def figures(out_dir, data_dir: Optional[str] = None, quick: bool = False, run_dir: Optional[str] = None,
            seed: int = 0):
    """Draw memn2n_lm_attention.png and memn2n_lm_perplexity.png into out_dir; return (paths, numbers).

    From a finished run (run_dir: the folder `train memn2n-lm` wrote) when given; else train afresh: on PTB when
    data_dir is given (2 hops, memory 50, d 100; 3 epochs, 1 with quick), else on the generated text.
    """
    from pathlib import Path

    from memnet_np import plots, train as T
    out = Path(out_dir)
    if run_dir is not None:
        res = json.loads((Path(run_dir) / "results.json").read_text())
        ck = T.load_checkpoint(Path(run_dir) / "checkpoint.npz", "memn2n-lm")
        corpus = load_text(data_dir or res.get("data_dir"))
        if list(corpus.words) != list(ck.vocab):
            raise ValueError(f"{run_dir}: the checkpoint's vocabulary is not that of {corpus.name}")
        config, params, history = Config(**ck.config), ck.params, res["history"]
        test, valid = res["test_perplexity"], res["valid_perplexity"]
    else:
        corpus = load_text(data_dir)
        if data_dir is None:
            config = Config.for_corpus(corpus, d=40, hops=3, memory_size=30, epochs=4 if quick else 20)
        else:
            config = Config.for_corpus(corpus, d=100, hops=2, memory_size=50, epochs=1 if quick else 3)
        res = run(corpus, config, seed, quiet=True)
        params, history = res["params"], res["history"]
        test, valid = res["test_perplexity"], res["valid_perplexity"]
    ptb = corpus.vocab_size == 10_000
    ex = attention_example(params, corpus.test, corpus.words, config, min_words=8 if ptb else 5)
    paths = [plots.word_attention(ex["words"], ex["attention"], ex["target"], ex["predicted"],
                                  path=out / "memn2n_lm_attention.png",
                                  title=f"{corpus.name}: attention of each hop over the previous words\n"
                                        f"next word: predicted {ex['predicted']!r}, true {ex['target']!r}"),
             plots.perplexity_curves(history, path=out / "memn2n_lm_perplexity.png",
                                     title=f"memn2n-lm on {corpus.name}: {config.hops} hops, memory "
                                           f"{config.memory_size}, d {config.d}",
                                     paper=PAPER["test_perplexity"] if ptb else None,
                                     baseline=PAPER["bigram_test_perplexity"] if ptb else None, test=test)]
    numbers = {"data": corpus.name, "valid_perplexity": valid, "test_perplexity": test, "epochs": len(history),
               "sentence": ex["sentence"], "target": ex["target"], "predicted": ex["predicted"],
               "config": {k: getattr(config, k) for k in ("hops", "memory_size", "d")},
               "attention": np.round(np.asarray(ex["attention"], dtype=float), 6).tolist(),
               "valid_perplexity_per_epoch": [round(float(h["valid_perplexity"]), 4) for h in history]}
    return paths, numbers
