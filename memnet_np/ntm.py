"""Neural Turing Machine (Graves, Wayne, Danihelka 2014), forward and backward through time by hand.

At every step t a controller (LSTM or feedforward) reads the input x_t and the previous read vectors, and emits,
through one linear layer, the parameters of every head. Each head turns them into a weighting over the M memory
slots in four stages (§3.3), each an op pair below:

    content        w^c(i) = softmax_i(β · K(k, M(i)))    K(u, v) = u·v / (‖u‖_ε ‖v‖_ε)  ‖u‖_ε = √(u·u + ε)   (5, 6)
    interpolation  w^g    = g w^c + (1 − g) w_{t−1}                                                  (7)
    shift          w̃(i)  = Σ_δ s(δ) w^g(i − δ mod M)       δ ∈ {−r, …, +r}, s a softmax over the 2r+1 shifts  (8)
    sharpening     w(i)   = w̃(i)^γ / Σ_j w̃(j)^γ           γ ≥ 1                                         (9)

with k = tanh(·), β = softplus(·), g = σ(·), γ = 1 + softplus(·) (Collier & Beel 2018's choices). Then

    read           r = Σ_i w(i) M(i)                                                                 (2)
    write          M̃(i) = M(i) ⊙ Π_h (1 − w_h(i) e_h),  M(i) = M̃(i) + Σ_h w_h(i) a_h    e = σ(·), a = tanh(·) (3, 4)
    output         y_t = σ(W_out [h_t, r_t] + b_out)        sigmoid bits

All heads address the memory M_{t−1} left by the previous step; the read heads read it, then the write heads
erase (all of them) and add (all of them). The read vectors r_t feed the output at t and the controller at t + 1.

Shift convention. s[..., j] is the weight of the shift δ = j − r, and a positive δ moves the focus to HIGHER
slot indices: a weighting one-hot at slot i, shifted with s one-hot at δ = +1, is one-hot at slot i + 1 (mod M).
(Implementations differ here; `test_shift_convention` pins this one.)

Numerics. The norms in K carry ε, so a zero memory row has K = 0, not 0/0. Sharpening is computed as a softmax of
γ · log max(w̃, 10⁻³⁰): no 0^γ, no log 0, and an arbitrarily large γ or β only makes a weighting one-hot.

Loss: the bit cross-entropy Σ softplus(z) − y z (nats) over the scored (target) steps and output channels, averaged
over the sequences of the batch. `info` reports it per sequence in bits (the paper's "cost per sequence").

Training (`train_task`): fresh random sequences of the task, Adam or the paper's RMSProp, each gradient component
clipped, a fixed held-out set scored every so often (convergence = ≤ 0.1 bit errors per sequence there); `bench`
measures training sequences per second. `Config.tuned(task)` holds the settings chosen on held-out sequences.

Shape letters: N batch, T time steps, M memory slots, d memory width, H controller size, S = 2r + 1 shifts,
R read heads, Wh write heads, Hh = R + Wh heads in all (read heads first). D input width, Y output width.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import time
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional

import numpy as np

from memnet_np import ops, optim
from memnet_np.data import algorithmic

CONTROLLERS = ("lstm", "feedforward")
MEMORY_INITS = ("constant", "learned", "random")
TASKS = ("copy", "repeat-copy", "associative-recall")
COSINE_EPS = 1e-8        # ε in ‖u‖_ε = √(u·u + ε)
SHARPEN_FLOOR = 1e-30    # w̃ is floored here before the log (a normal number in float32 too)


# ----------------------------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class Config:
    """The paper's copy-task settings (§4.1): memory 128 × 20, one read and one write head, LSTM of 100 units."""
    input_width: int = 9             # D: 8 bits + the delimiter channel (copy)
    output_width: int = 8            # Y
    memory_slots: int = 128          # M
    memory_width: int = 20           # d
    controller: str = "lstm"         # "lstm" | "feedforward"
    controller_size: int = 100       # H
    read_heads: int = 1              # R
    write_heads: int = 1             # Wh
    shift_range: int = 1             # r: shifts −r..+r
    memory_init: str = "constant"    # "constant" (fixed value, fastest per Collier & Beel 2018), "learned", "random"
    memory_init_value: float = 1e-6  # the constant
    memory_init_std: float = 0.5     # "random": each batch draws its memory ~ N(0, std²) (see make_batch)
    init_weighting_std: float = 0.2  # learned initial weightings start as softmax(N(0, std²)): a near-uniform but
                                     # asymmetric start (a uniform one would stay uniform over a constant memory)
    dtype: str = "float64"           # "float32" trains faster; gradient checks need float64
    # training (train_task)
    task: str = "copy"
    optimizer: str = "rmsprop"       # "rmsprop" (Graves 2013 form) | "adam"
    lr: float = 1e-4
    momentum: float = 0.9            # RMSProp ι
    decay: float = 0.95              # RMSProp ℵ
    clip: float = 10.0               # each gradient component clipped to (−clip, clip)
    curriculum: int = 0              # 0: off; else training lengths start at min_len..curriculum and the top grows by
                                     # one each time the last 10 batches average < 1 bit error per sequence
    backtrack: bool = False          # when the held-out cost jumps above twice its best (+1 bit), go back to the best
                                     # parameters, halve lr and restart the optimiser (train_task)
    batch_size: int = 1
    min_len: int = 1                 # training sequence lengths (copy: 1–20)
    max_len: int = 20

    def __post_init__(self):
        problems = []
        for name in ("input_width", "output_width", "memory_slots", "memory_width", "controller_size",
                     "read_heads", "write_heads", "batch_size", "min_len", "max_len"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                problems.append(f"{name} must be an integer >= 1, got {v!r}")
        if isinstance(self.shift_range, bool) or not isinstance(self.shift_range, (int, np.integer)) \
                or self.shift_range < 0:
            problems.append(f"shift_range must be an integer >= 0, got {self.shift_range!r}")
        elif isinstance(self.memory_slots, (int, np.integer)) and 2 * self.shift_range + 1 > self.memory_slots:
            problems.append(f"shift_range {self.shift_range} gives {2 * self.shift_range + 1} shifts, more than "
                            f"memory_slots ({self.memory_slots})")
        if self.controller not in CONTROLLERS:
            problems.append(f"controller must be one of {CONTROLLERS}, got {self.controller!r}")
        if self.memory_init not in MEMORY_INITS:
            problems.append(f"memory_init must be one of {MEMORY_INITS}, got {self.memory_init!r}")
        if self.task not in TASKS:
            problems.append(f"task must be one of {TASKS}, got {self.task!r}")
        if self.optimizer not in ("rmsprop", "adam"):
            problems.append(f"optimizer must be 'rmsprop' or 'adam', got {self.optimizer!r}")
        if self.dtype not in ("float64", "float32"):
            problems.append(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")
        for name in ("memory_init_value", "memory_init_std", "init_weighting_std", "lr", "clip", "momentum",
                     "decay"):
            v = getattr(self, name)
            if not isinstance(v, (int, float, np.floating)) or not math.isfinite(v) or v < 0:
                problems.append(f"{name} must be a finite number >= 0, got {v!r}")
        if isinstance(self.min_len, int) and isinstance(self.max_len, int) and self.min_len > self.max_len:
            problems.append(f"min_len ({self.min_len}) must not exceed max_len ({self.max_len})")
        if isinstance(self.curriculum, bool) or not isinstance(self.curriculum, (int, np.integer)) \
                or self.curriculum < 0:
            problems.append(f"curriculum must be an integer >= 0 (0 = off), got {self.curriculum!r}")
        if problems:
            raise ValueError("invalid NTM config: " + "; ".join(problems))

    @classmethod
    def tiny(cls, **overrides) -> "Config":
        """Small sizes for tests and gradient checks: two heads of each kind, shifts −1..+1 over 7 slots."""
        base = dict(input_width=4, output_width=3, memory_slots=7, memory_width=4, controller_size=5,
                    read_heads=2, write_heads=2, min_len=1, max_len=3)
        base.update(overrides)
        return cls(**base)

    @classmethod
    def for_task(cls, task: str, **overrides) -> "Config":
        """The widths a task needs (copy 9 → 8, repeat copy 9 → 9, associative recall 8 → 6) and its lengths."""
        widths = {"copy": dict(input_width=9, output_width=8, min_len=1, max_len=20),
                  "repeat-copy": dict(input_width=9, output_width=9, min_len=1, max_len=10),
                  "associative-recall": dict(input_width=8, output_width=6, min_len=2, max_len=6)}
        if task not in widths:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        base = dict(widths[task], task=task)
        base.update(overrides)
        return cls(**base)

    @classmethod
    def tuned(cls, task: str = "copy", **overrides) -> "Config":
        """for_task with the training settings chosen on held-out sequences (see TUNED): Adam 1e-2, batch 16,
        a learned initial memory, float32."""
        return cls.for_task(task, **{**TUNED, **overrides})

    @property
    def heads(self) -> int:
        return self.read_heads + self.write_heads

    @property
    def shifts(self) -> int:
        return 2 * self.shift_range + 1


# Training settings chosen on held-out copy sequences (lengths 1-20, a validation set drawn from its own generator):
# with the paper's RMSProp (lr 1e-4, batch 1) the validation cost was still 40 bits after 30k sequences; Adam 1e-2 at
# batch 16 with a constant (fixed) memory 44 bits after 16k; the same with a learned initial memory (M0 ~ N(0, 0.1²),
# rows distinct from the start, so content addressing can focus at once) reached 0.01 bit errors after 10k.
# Over seeds 0-9 with these settings 7 of 10 reached <= 0.1 bit errors within 30k sequences (after 7k-19k, median
# 13.5k); seeds 4, 6 and 9 did not (1.4, 14 and 0.6 bit errors). Batch 8 with lr 5e-3 rescued seed 4 (19k) but not
# 6 or 9; a length curriculum made seed 4 slower. Backtracking recovers from the blow-ups Adam at 1e-2 sometimes has.
TUNED = dict(optimizer="adam", lr=1e-2, batch_size=16, memory_init="learned", dtype="float32", backtrack=True)


def replace(config: Config, **changes) -> Config:
    return dataclasses.replace(config, **changes)


# ----------------------------------------------------------------------------------------------------------------
# Parameters


@functools.lru_cache(maxsize=64)
def head_layout(config: Config) -> dict[str, slice]:
    """Columns of the head layer's output P for each head parameter, all heads of a kind side by side.

    k (Hh·d), β (Hh), g (Hh), s (Hh·S), γ (Hh) for every head, then e (Wh·d), a (Wh·d) for the write heads.
    """
    Hh, Wh, d, S = config.heads, config.write_heads, config.memory_width, config.shifts
    sizes = [("k", Hh * d), ("beta", Hh), ("g", Hh), ("s", Hh * S), ("gamma", Hh), ("e", Wh * d), ("a", Wh * d)]
    out, start = {}, 0
    for name, size in sizes:
        out[name] = slice(start, start + size)
        start += size
    return out


def param_shapes(config: Config) -> dict[str, tuple]:
    H, d, R, M = config.controller_size, config.memory_width, config.read_heads, config.memory_slots
    n_in = config.input_width + R * d                         # controller input [x_t, r_{t−1}]
    P = head_layout(config)["a"].stop
    shapes = {}
    if config.controller == "lstm":
        shapes.update(Wx=(4 * H, n_in), Wh=(4 * H, H), b=(4 * H,), h0=(H,), c0=(H,))
    else:
        shapes.update(Wx=(H, n_in), b=(H,))
    shapes.update(W_heads=(P, H), b_heads=(P,), W_out=(config.output_width, H + R * d), b_out=(config.output_width,),
                  r0=(R, d), w0=(config.heads, M))
    if config.memory_init == "learned":
        shapes["M0"] = (M, d)
    return shapes


def param_names(config: Config) -> list[str]:
    return list(param_shapes(config))


def init_params(config: Config, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Weights ~ U(−1/√fan_in, 1/√fan_in); LSTM forget-gate bias 1; w0 holds the LOGITS of the initial weightings."""
    dtype = np.dtype(config.dtype)
    params = {}
    for name, shape in param_shapes(config).items():
        if name.startswith("W"):
            bound = 1.0 / math.sqrt(shape[1])
            p = rng.uniform(-bound, bound, size=shape)
        elif name == "w0":
            p = rng.standard_normal(shape) * config.init_weighting_std
        elif name in ("r0", "h0", "c0", "M0"):
            p = rng.standard_normal(shape) * 0.1
        else:
            p = np.zeros(shape)
        params[name] = p.astype(dtype)
    if config.controller == "lstm":
        H = config.controller_size
        params["b"][H:2 * H] = 1.0                            # forget gate open at the start
    return params


def _check_params(params, config: Config) -> None:
    for name, shape in param_shapes(config).items():
        if name not in params:
            raise ValueError(f"params lack {name!r} (an NTM with this config needs {param_names(config)})")
        p = params[name]
        if not isinstance(p, np.ndarray) or p.shape != shape:
            raise ValueError(f"params[{name!r}] must have shape {shape}, got {getattr(p, 'shape', type(p).__name__)}")


# ----------------------------------------------------------------------------------------------------------------
# Batches


class Batch(NamedTuple):
    inputs: np.ndarray        # (N, T, D) float
    targets: np.ndarray       # (N, T, Y) float 0/1
    target_mask: np.ndarray   # (N, T) bool, scored steps
    lengths: np.ndarray       # (N,) int, steps in use
    memory0: Optional[np.ndarray] = None  # (N, M, d) the initial memory, with memory_init="random" only


TASK_FUNCTIONS = {"copy": algorithmic.copy_task, "repeat-copy": algorithmic.repeat_copy_task,
                  "associative-recall": algorithmic.associative_recall_task}


def task_batch(config: Config, rng: np.random.Generator, N: int, min_len: Optional[int] = None,
               max_len: Optional[int] = None) -> algorithmic.SequenceBatch:
    """N sequences of the config's task; lengths (items for associative recall) in [min_len, max_len]."""
    lo = config.min_len if min_len is None else min_len
    hi = config.max_len if max_len is None else max_len
    if config.task == "copy":
        return algorithmic.copy_task(rng, N, bits=config.output_width, min_len=lo, max_len=hi)
    if config.task == "repeat-copy":
        return algorithmic.repeat_copy_task(rng, N, bits=config.output_width - 1, min_len=lo, max_len=hi)
    return algorithmic.associative_recall_task(rng, N, bits=config.output_width, min_items=lo, max_items=hi)


def make_batch(seq: algorithmic.SequenceBatch, config: Config, rng: Optional[np.random.Generator] = None) -> Batch:
    """A model batch from a task's SequenceBatch; memory_init="random" draws the initial memories here, with rng."""
    memory0 = None
    if config.memory_init == "random":
        if rng is None:
            raise ValueError("memory_init='random' needs an rng to draw the initial memories (make_batch(..., rng))")
        N = seq.inputs.shape[0]
        memory0 = rng.standard_normal((N, config.memory_slots, config.memory_width)) * config.memory_init_std
    return Batch(seq.inputs, seq.targets, seq.target_mask, seq.lengths, memory0)


def example_batch(config: Config, rng: np.random.Generator, N: int = 3) -> Batch:
    """A small valid batch of random sequences of different lengths (random input and target bits)."""
    lengths = rng.integers(config.min_len, config.max_len + 1, size=N)   # (N,) input steps
    lengths[0] = config.max_len
    T = 2 * int(lengths.max()) + 1
    t = np.arange(T)
    inputs = rng.integers(0, 2, size=(N, T, config.input_width)).astype(float)      # (N, T, D)
    inputs[t[None, :] >= lengths[:, None]] = 0.0                                   # nothing during recall
    targets = rng.integers(0, 2, size=(N, T, config.output_width)).astype(float)    # (N, T, Y)
    mask = (t[None, :] > lengths[:, None]) & (t[None, :] <= 2 * lengths[:, None])  # (N, T)
    targets *= mask[..., None]
    seq = algorithmic.SequenceBatch(inputs, targets, mask, (2 * lengths + 1).astype(np.int64))
    return make_batch(seq, config, rng)


def _check_batch(batch: Batch, config: Config) -> None:
    if not isinstance(batch, Batch):
        raise ValueError(f"batch must be an ntm.Batch (see make_batch), got {type(batch).__name__}")
    x = batch.inputs
    if not isinstance(x, np.ndarray) or x.ndim != 3 or x.shape[2] != config.input_width:
        raise ValueError(f"batch.inputs must have shape (N, T, {config.input_width}), "
                         f"got {getattr(x, 'shape', type(x).__name__)}")
    N, T, _ = x.shape
    if N == 0 or T == 0:
        raise ValueError(f"batch.inputs is empty: shape {x.shape}")
    y = batch.targets
    if not isinstance(y, np.ndarray) or y.shape != (N, T, config.output_width):
        raise ValueError(f"batch.targets must have shape {(N, T, config.output_width)}, "
                         f"got {getattr(y, 'shape', type(y).__name__)}")
    m = batch.target_mask
    if not isinstance(m, np.ndarray) or m.shape != (N, T) or m.dtype != bool:
        raise ValueError(f"batch.target_mask must be a bool array of shape {(N, T)}, got "
                         f"{getattr(m, 'dtype', type(m).__name__)} {getattr(m, 'shape', '')}")
    if not isinstance(batch.lengths, np.ndarray) or batch.lengths.shape != (N,):
        raise ValueError(f"batch.lengths must have shape ({N},), got {getattr(batch.lengths, 'shape', None)}")
    for name in ("inputs", "targets"):
        a = getattr(batch, name)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"batch.{name} holds NaN or infinity")
    if np.any((y != 0) & (y != 1)):
        raise ValueError("batch.targets must be bits (0 or 1)")
    if config.memory_init == "random":
        shape = (N, config.memory_slots, config.memory_width)
        if batch.memory0 is None or batch.memory0.shape != shape:
            raise ValueError(f"batch.memory0 must have shape {shape} with memory_init='random' "
                             f"(make_batch draws it), got {None if batch.memory0 is None else batch.memory0.shape}")
    elif batch.memory0 is not None:
        raise ValueError(f"batch.memory0 is only used with memory_init='random', not {config.memory_init!r}")


# ----------------------------------------------------------------------------------------------------------------
# Small pieces used by every stage: a softmax over the last axis and its backward, the logistic function


def softmax(z):
    """softmax over the last axis, max-subtracted (exp never overflows; any β or γ is safe)."""
    e = np.exp(z - z.max(-1, keepdims=True))                  # (..., M) in (0, 1]
    return e / e.sum(-1, keepdims=True)


def softmax_backward(dp, p):
    return p * (dp - (p * dp).sum(-1, keepdims=True))         # (..., M) Jacobian diag(p) − p pᵀ applied to dp


def sigmoid(x):
    return 0.5 + 0.5 * np.tanh(0.5 * x)                       # σ(x) = (1 + tanh(x/2)) / 2, no overflow for any x


def outer_sum(u, v):
    """Σ_k u_k v_kᵀ per example: u (N, K, M), v (N, K, d) -> (N, M, d); the same as uᵀ v.

    With few heads K, K broadcast outer products are several times faster than a batched matmul of inner size K.
    """
    out = u[:, 0, :, None] * v[:, 0, None, :]                 # (N, M, d)
    for k in range(1, u.shape[1]):
        out = out + u[:, k, :, None] * v[:, k, None, :]
    return out


# ----------------------------------------------------------------------------------------------------------------
# Addressing, stage 1: content.  K = u·v / (‖u‖_ε ‖v‖_ε),  w^c = softmax(β K)


class ContentCache(NamedTuple):
    k: np.ndarray     # (N, Hh, d) keys
    mem: np.ndarray   # (N, M, d) memory
    nk: np.ndarray    # (N, Hh) ‖k‖_ε
    nm: np.ndarray    # (N, M) ‖M(i)‖_ε
    K: np.ndarray     # (N, Hh, M) cosine similarities
    beta: np.ndarray  # (N, Hh)
    w: np.ndarray     # (N, Hh, M)


def content_forward(k, beta, mem):
    """k (N, Hh, d), beta (N, Hh) ≥ 0, mem (N, M, d) -> w^c (N, Hh, M)."""
    dot = k @ mem.transpose(0, 2, 1)                          # (N, Hh, M) k·M(i)
    nk = np.sqrt((k * k).sum(-1) + COSINE_EPS)                # (N, Hh)
    nm = np.sqrt((mem * mem).sum(-1) + COSINE_EPS)            # (N, M) a zero row has norm √ε, not 0
    K = dot / (nk[:, :, None] * nm[:, None, :])               # (N, Hh, M)
    w = softmax(beta[:, :, None] * K)                         # (N, Hh, M)
    return w, ContentCache(k, mem, nk, nm, K, beta, w)


def content_backward(dw, cache):
    k, mem, nk, nm, K, beta, w = cache
    dz = softmax_backward(dw, w)                              # (N, Hh, M) ∂/∂(βK)
    dbeta = (dz * K).sum(-1)                                  # (N, Hh)
    dK = dz * beta[:, :, None]                                # (N, Hh, M)
    ddot = dK / (nk[:, :, None] * nm[:, None, :])             # (N, Hh, M) K = dot / (nk nm)
    dnk = -(dK * K).sum(-1) / nk                              # (N, Hh)  ∂K/∂nk = −K/nk
    dnm = -(dK * K).sum(1) / nm                               # (N, M)
    dk = ddot @ mem + (dnk / nk)[:, :, None] * k              # (N, Hh, d)  ∂nk/∂k = k/nk
    dmem = outer_sum(ddot, k) + (dnm / nm)[:, :, None] * mem  # (N, M, d)
    return dk, dbeta, dmem


# ----------------------------------------------------------------------------------------------------------------
# Stage 2: interpolation with the previous weighting.  w^g = g w^c + (1 − g) w_{t−1}


class InterpolateCache(NamedTuple):
    wc: np.ndarray      # (N, Hh, M)
    w_prev: np.ndarray  # (N, Hh, M)
    g: np.ndarray       # (N, Hh)


def interpolate_forward(wc, w_prev, g):
    wg = g[:, :, None] * wc + (1.0 - g)[:, :, None] * w_prev  # (N, Hh, M)
    return wg, InterpolateCache(wc, w_prev, g)


def interpolate_backward(dwg, cache):
    wc, w_prev, g = cache
    dwc = g[:, :, None] * dwg                                 # (N, Hh, M)
    dw_prev = (1.0 - g)[:, :, None] * dwg                     # (N, Hh, M)
    dg = (dwg * (wc - w_prev)).sum(-1)                        # (N, Hh)
    return dwc, dw_prev, dg


# ----------------------------------------------------------------------------------------------------------------
# Stage 3: circular shift.  w̃(i) = Σ_δ s(δ) w^g(i − δ mod M),  s[..., j] the weight of δ = j − r


@functools.lru_cache(maxsize=64)
def shift_index(M: int, S: int, sign: int = 1) -> np.ndarray:
    """(S, M) table idx[j, i] = (i − sign·δ_j) mod M with δ_j = j − r: w^g[..., idx] lines up w^g(i − δ) for every δ."""
    r = (S - 1) // 2
    delta = np.arange(S) - r                                  # (S,)
    idx = (np.arange(M)[None, :] - sign * delta[:, None]) % M   # (S, M)
    idx.flags.writeable = False                               # shared between calls (cached)
    return idx


class ShiftCache(NamedTuple):
    s: np.ndarray        # (N, Hh, S)
    shifted: np.ndarray  # (N, Hh, S, M) w^g moved by each δ


def shift_forward(wg, s):
    """wg (N, Hh, M), s (N, Hh, S) -> w̃ (N, Hh, M). A positive δ moves weight to higher slot indices."""
    M, S = wg.shape[-1], s.shape[-1]
    shifted = wg[..., shift_index(M, S)]                      # (N, Hh, S, M) shifted[.., j, i] = w^g(i − δ_j)
    ws = (s[:, :, None, :] @ shifted)[:, :, 0, :]             # (N, Hh, M) Σ_j s_j shifted_j
    return ws, ShiftCache(s, shifted)


def shift_backward(dws, cache):
    s, shifted = cache
    M, S = dws.shape[-1], s.shape[-1]
    ds = (shifted @ dws[..., None])[..., 0]                   # (N, Hh, S)
    back = dws[..., shift_index(M, S, sign=-1)]               # (N, Hh, S, M) back[.., j, i] = dw̃(i + δ_j)
    dwg = (s[:, :, None, :] @ back)[:, :, 0, :]               # (N, Hh, M) w^g(i) reached w̃(i + δ) with weight s(δ)
    return dwg, ds


# ----------------------------------------------------------------------------------------------------------------
# Stage 4: sharpening.  w = w̃^γ / Σ w̃^γ = softmax(γ log w̃)   (w̃ floored at 10⁻³⁰ before the log)


class SharpenCache(NamedTuple):
    ws: np.ndarray     # (N, Hh, M) w̃
    lw: np.ndarray     # (N, Hh, M) log max(w̃, floor)
    gamma: np.ndarray  # (N, Hh)
    w: np.ndarray      # (N, Hh, M)


def sharpen_forward(ws, gamma):
    """ws (N, Hh, M) on the simplex, gamma (N, Hh) ≥ 1 -> w (N, Hh, M)."""
    lw = np.log(np.maximum(ws, SHARPEN_FLOOR))                # (N, Hh, M) finite even where w̃ = 0
    w = softmax(gamma[:, :, None] * lw)                       # (N, Hh, M)
    return w, SharpenCache(ws, lw, gamma, w)


def sharpen_backward(dw, cache):
    ws, lw, gamma, w = cache
    dz = softmax_backward(dw, w)                              # (N, Hh, M) ∂/∂(γ log w̃)
    dgamma = (dz * lw).sum(-1)                                # (N, Hh)
    above = ws > SHARPEN_FLOOR                                # (N, Hh, M) below the floor the slope is 0
    dws = np.where(above, gamma[:, :, None] * dz / np.maximum(ws, SHARPEN_FLOOR), 0.0)   # (N, Hh, M)
    return dws, dgamma


# ----------------------------------------------------------------------------------------------------------------
# Read and write


class ReadCache(NamedTuple):
    mem: np.ndarray  # (N, M, d)
    w: np.ndarray    # (N, R, M)


def read_forward(mem, w):
    """r = Σ_i w(i) M(i): mem (N, M, d), w (N, R, M) -> r (N, R, d)."""
    return w @ mem, ReadCache(mem, w)                         # (N, R, d)


def read_backward(dr, cache):
    mem, w = cache
    dmem = outer_sum(w, dr)                                   # (N, M, d) wᵀ dr
    dw = dr @ mem.transpose(0, 2, 1)                          # (N, R, M)
    return dmem, dw


class EraseCache(NamedTuple):
    mem: np.ndarray   # (N, M, d) before
    w: np.ndarray     # (N, Wh, M)
    e: np.ndarray     # (N, Wh, d)
    F: np.ndarray     # (N, Wh, M, d) each head's factor 1 − w_h(i) e_h
    keep: np.ndarray  # (N, M, d) Π_h F_h


def erase_forward(mem, w, e):
    """M̃ = M ⊙ Π_h (1 − w_h eₕᵀ): mem (N, M, d), w (N, Wh, M), e (N, Wh, d) in [0, 1] -> (N, M, d)."""
    F = 1.0 - w[:, :, :, None] * e[:, :, None, :]             # (N, Wh, M, d)
    keep = F[:, 0] if F.shape[1] == 1 else F.prod(1)          # (N, M, d)
    return mem * keep, EraseCache(mem, w, e, F, keep)


def erase_backward(dout, cache):
    mem, w, e, F, keep = cache
    dmem = dout * keep                                        # (N, M, d)
    dkeep = dout * mem                                        # (N, M, d)
    Wh = F.shape[1]
    if Wh == 1:
        dF = dkeep[:, None]                                   # (N, 1, M, d)
    else:                                                     # Π over the other heads, without dividing by F_h
        before = np.cumprod(np.concatenate([np.ones_like(F[:, :1]), F[:, :-1]], 1), axis=1)   # (N, Wh, M, d)
        after = np.cumprod(np.concatenate([np.ones_like(F[:, :1]), F[:, :0:-1]], 1), axis=1)[:, ::-1]
        dF = dkeep[:, None] * before * after                  # (N, Wh, M, d)
    dw = -(dF @ e[:, :, :, None])[..., 0]                     # (N, Wh, M)   F = 1 − w e
    de = -(w[:, :, None, :] @ dF)[:, :, 0, :]                 # (N, Wh, d)
    return dmem, dw, de


class AddCache(NamedTuple):
    w: np.ndarray  # (N, Wh, M)
    a: np.ndarray  # (N, Wh, d)


def add_forward(mem, w, a):
    """M + Σ_h w_h aₕᵀ: mem (N, M, d), w (N, Wh, M), a (N, Wh, d) -> (N, M, d)."""
    return mem + outer_sum(w, a), AddCache(w, a)             # (N, M, d) M + wᵀ a


def add_backward(dout, cache):
    w, a = cache
    dw = a @ dout.transpose(0, 2, 1)                          # (N, Wh, M)
    da = w @ dout                                             # (N, Wh, d)
    return dout, dw, da


# ----------------------------------------------------------------------------------------------------------------
# Head parameters from the controller: P (N, ·) -> k, β, g, s, γ, e, a


class Heads(NamedTuple):
    k: np.ndarray      # (N, Hh, d)   tanh
    beta: np.ndarray   # (N, Hh)      softplus
    g: np.ndarray      # (N, Hh)      σ
    s: np.ndarray      # (N, Hh, S)   softmax over the shifts
    gamma: np.ndarray  # (N, Hh)      1 + softplus
    e: np.ndarray      # (N, Wh, d)   σ
    a: np.ndarray      # (N, Wh, d)   tanh


class HeadsCache(NamedTuple):
    heads: Heads
    raw_beta: np.ndarray   # (N, Hh) before softplus
    raw_gamma: np.ndarray  # (N, Hh)


def softplus(x):
    return np.logaddexp(0.0, x)                               # log(1 + eˣ) without overflow


def heads_forward(P, config: Config):
    lay, N = head_layout(config), P.shape[0]
    Hh, Wh, d, S = config.heads, config.write_heads, config.memory_width, config.shifts
    k = np.tanh(P[:, lay["k"]]).reshape(N, Hh, d)             # (N, Hh, d)
    raw_beta, raw_gamma = P[:, lay["beta"]], P[:, lay["gamma"]]   # (N, Hh)
    beta = softplus(raw_beta)                                 # (N, Hh)
    g = sigmoid(P[:, lay["g"]])                               # (N, Hh)
    s = softmax(P[:, lay["s"]].reshape(N, Hh, S))             # (N, Hh, S)
    gamma = 1.0 + softplus(raw_gamma)                         # (N, Hh)
    e = sigmoid(P[:, lay["e"]].reshape(N, Wh, d))             # (N, Wh, d)
    a = np.tanh(P[:, lay["a"]]).reshape(N, Wh, d)             # (N, Wh, d)
    heads = Heads(k, beta, g, s, gamma, e, a)
    return heads, HeadsCache(heads, raw_beta, raw_gamma)


def heads_backward(dheads: Heads, cache: HeadsCache, config: Config):
    """dheads: a Heads of gradients (None where a part got none) -> dP (N, ·)."""
    h, lay = cache.heads, head_layout(config)
    N = h.k.shape[0]
    dP = np.zeros((N, lay["a"].stop), dtype=h.k.dtype)        # (N, P)
    def put(name, value):
        dP[:, lay[name]] = value.reshape(N, -1)
    if dheads.k is not None:
        put("k", dheads.k * (1.0 - h.k * h.k))
    if dheads.beta is not None:
        put("beta", dheads.beta * sigmoid(cache.raw_beta))      # softplus' = σ
    if dheads.g is not None:
        put("g", dheads.g * h.g * (1.0 - h.g))
    if dheads.s is not None:
        put("s", softmax_backward(dheads.s, h.s))
    if dheads.gamma is not None:
        put("gamma", dheads.gamma * sigmoid(cache.raw_gamma))
    if dheads.e is not None:
        put("e", dheads.e * h.e * (1.0 - h.e))
    if dheads.a is not None:
        put("a", dheads.a * (1.0 - h.a * h.a))
    return dP


# ----------------------------------------------------------------------------------------------------------------
# One time step


class StepCache(NamedTuple):
    xin: np.ndarray                  # (N, D + R·d) controller input [x_t, r_{t−1}]
    controller: object               # ops.LSTMCache, or (h,) for the feedforward controller
    h: np.ndarray                    # (N, H) controller output
    heads: HeadsCache
    content: ContentCache
    interpolate: InterpolateCache
    shift: ShiftCache
    sharpen: SharpenCache
    read: ReadCache
    erase: EraseCache
    add: AddCache


def address(heads: Heads, w_prev, mem):
    """The four stages for all heads at once -> w (N, Hh, M) and the four caches."""
    wc, cc = content_forward(heads.k, heads.beta, mem)        # (N, Hh, M)
    wg, ic = interpolate_forward(wc, w_prev, heads.g)         # (N, Hh, M)
    ws, sc = shift_forward(wg, heads.s)                       # (N, Hh, M)
    w, pc = sharpen_forward(ws, heads.gamma)                  # (N, Hh, M)
    return w, (cc, ic, sc, pc)


def step_forward(params, config: Config, x, state):
    """x (N, D); state = (h, c, r (N, R, d), w (N, Hh, M), mem (N, M, d)) -> (new state, cache)."""
    h, c, r, w_prev, mem = state
    N, R = x.shape[0], config.read_heads
    xin = np.concatenate([x, r.reshape(N, -1)], axis=1)       # (N, D + R·d)
    if config.controller == "lstm":
        (h, c), ctrl = ops.lstm_forward(xin, h, c, params["Wx"], params["Wh"], params["b"])   # (N, H)
    else:
        h = np.tanh(xin @ params["Wx"].T + params["b"])       # (N, H)
        ctrl = None
    P = h @ params["W_heads"].T + params["b_heads"]           # (N, P) every head's raw parameters
    heads, hc = heads_forward(P, config)
    w, (cc, ic, sc, pc) = address(heads, w_prev, mem)         # (N, Hh, M) all heads address M_{t−1}
    r, rc = read_forward(mem, w[:, :R])                       # (N, R, d)
    mem_e, ec = erase_forward(mem, w[:, R:], heads.e)         # (N, M, d) all erasures ...
    mem_new, ac = add_forward(mem_e, w[:, R:], heads.a)       # (N, M, d) ... then all additions
    return (h, c, r, w, mem_new), StepCache(xin, ctrl, h, hc, cc, ic, sc, pc, rc, ec, ac)


def step_backward(params, config: Config, dstate, dh_out, dr_out, cache: StepCache):
    """dstate = gradients of the state this step returned; dh_out (N, H), dr_out (N, R, d) from the output layer.

    Returns the gradients of the state the step received, and the gradients of the step's two pre-activations,
    dP (N, P) of the head layer and dz (N, 4H or H) of the controller: `backward` forms the weight gradients
    Σ_t dP_tᵀ h_t and Σ_t dz_tᵀ [x_t, r_{t−1}] from them once, as single matrix products.
    """
    dh, dc, dr, dw, dmem = dstate
    R = config.read_heads
    dmem_e, dw_add, da = add_backward(dmem, cache.add)        # (N, M, d), (N, Wh, M), (N, Wh, d)
    dmem_prev, dw_erase, de = erase_backward(dmem_e, cache.erase)
    dmem_read, dw_read = read_backward(dr + dr_out, cache.read)
    dmem_prev = dmem_prev + dmem_read                         # (N, M, d)
    dw = dw + np.concatenate([dw_read, dw_add + dw_erase], axis=1)   # (N, Hh, M)
    dws, dgamma = sharpen_backward(dw, cache.sharpen)
    dwg, ds = shift_backward(dws, cache.shift)
    dwc, dw_prev, dg = interpolate_backward(dwg, cache.interpolate)
    dk, dbeta, dmem_c = content_backward(dwc, cache.content)
    dmem_prev = dmem_prev + dmem_c                            # (N, M, d)
    dP = heads_backward(Heads(dk, dbeta, dg, ds, dgamma, de, da), cache.heads, config)   # (N, P)
    dh = dh_out + dP @ params["W_heads"] + (0.0 if dh is None else dh)   # (N, H)
    if config.controller == "lstm":
        dz, dc_prev = ops.lstm_preactivation_backward(dh, dc, cache.controller)   # (N, 4H), (N, H)
        dh_prev = dz @ params["Wh"]                           # (N, H)
    else:
        dz = dh * (1.0 - cache.h * cache.h)                   # (N, H) tanh'
        dh_prev = dc_prev = None
    N, D = dz.shape[0], config.input_width
    dr_prev = (dz @ params["Wx"][:, D:]).reshape(N, R, -1)    # (N, R, d) r_{t−1} was part of the input (x_t is data)
    return (dh_prev, dc_prev, dr_prev, dw_prev, dmem_prev), dP, dz


# ----------------------------------------------------------------------------------------------------------------
# Forward and backward through time


class Cache(NamedTuple):
    steps: list                 # T StepCaches
    hr: np.ndarray              # (N, T, H + R·d) output layer input [h_t, r_t]
    w0: np.ndarray              # (Hh, M) softmax(params["w0"])
    N: int


def initial_state(params, config: Config, batch: Batch):
    """(h0, c0, r0, w0, M0) broadcast over the batch."""
    N, dtype = batch.inputs.shape[0], params["Wx"].dtype
    H, M, d = config.controller_size, config.memory_slots, config.memory_width
    if config.controller == "lstm":
        h = np.broadcast_to(params["h0"], (N, H))
        c = np.broadcast_to(params["c0"], (N, H))
    else:
        h = c = None
    r = np.broadcast_to(params["r0"], (N,) + params["r0"].shape)        # (N, R, d)
    w0 = softmax(params["w0"])                                         # (Hh, M)
    w = np.broadcast_to(w0, (N,) + w0.shape)                            # (N, Hh, M)
    if config.memory_init == "constant":
        mem = np.full((N, M, d), config.memory_init_value, dtype=dtype)
    elif config.memory_init == "learned":
        mem = np.broadcast_to(params["M0"], (N, M, d))
    else:
        mem = batch.memory0.astype(dtype, copy=False)
    return (h, c, r, w, mem), w0


def steps_to_run(batch: Batch) -> int:
    """Steps up to the last scored one: what comes after cannot change the loss."""
    scored = np.flatnonzero(batch.target_mask.any(0))
    return int(scored[-1]) + 1 if scored.size else batch.inputs.shape[1]


def forward(params, batch: Batch, config: Config):
    """Returns (logits (N, T, Y), cache); steps after the last scored one are not run and get logits 0."""
    _check_batch(batch, config)
    _check_params(params, config)
    dtype = params["Wx"].dtype
    x = batch.inputs.astype(dtype, copy=False)                # (N, T, D)
    N, T_all, _ = x.shape
    state, w0 = initial_state(params, config, batch)
    steps, hs, rs = [], [], []
    for t in range(steps_to_run(batch)):
        state, cache = step_forward(params, config, x[:, t], state)
        steps.append(cache)
        hs.append(state[0])
        rs.append(state[2].reshape(N, -1))
    hr = np.concatenate([np.stack(hs, 1), np.stack(rs, 1)], axis=2)     # (N, T, H + R·d)
    logits = np.zeros((N, T_all, config.output_width), dtype=dtype)     # (N, T, Y)
    logits[:, :len(steps)] = hr @ params["W_out"].T + params["b_out"]
    return logits, Cache(steps, hr, w0, N)


def backward(dlogits, cache: Cache, params, config: Config) -> dict[str, np.ndarray]:
    grads = {name: np.zeros_like(p) for name, p in params.items()}
    T, N, H, R = len(cache.steps), cache.N, config.controller_size, config.read_heads
    dl = dlogits[:, :T]                                       # (N, T, Y)
    Y = dl.shape[-1]
    grads["W_out"] += dl.reshape(-1, Y).T @ cache.hr.reshape(N * T, -1)   # (Y, H + R·d)
    grads["b_out"] += dl.reshape(-1, Y).sum(0)
    dhr = dl @ params["W_out"]                                # (N, T, H + R·d)
    M, d, dtype = config.memory_slots, config.memory_width, dl.dtype
    lstm = config.controller == "lstm"
    dstate = (np.zeros((N, H), dtype) if lstm else None, np.zeros((N, H), dtype) if lstm else None,
              np.zeros((N, R, d), dtype), np.zeros((N, config.heads, M), dtype), np.zeros((N, M, d), dtype))
    dPs, dzs = [None] * T, [None] * T
    for t in reversed(range(T)):
        dstate, dPs[t], dzs[t] = step_backward(params, config, dstate, dhr[:, t, :H],
                                               dhr[:, t, H:].reshape(N, R, -1), cache.steps[t])
    dP = np.concatenate(dPs)                                  # (T·N, P) step by step, as the stacks below
    dz = np.concatenate(dzs)                                  # (T·N, 4H)
    grads["W_heads"] += dP.T @ np.concatenate([s.h for s in cache.steps])       # (P, H)
    grads["b_heads"] += dP.sum(0)
    grads["Wx"] += dz.T @ np.concatenate([s.xin for s in cache.steps])          # (4H, D + R·d)
    grads["b"] += dz.sum(0)
    if config.controller == "lstm":
        grads["Wh"] += dz.T @ np.concatenate([s.controller.h_prev for s in cache.steps])   # (4H, H)
    dh, dc, dr, dw, dmem = dstate
    if config.controller == "lstm":
        grads["h0"] += dh.sum(0)                              # (H,) the same h0 for every sequence
        grads["c0"] += dc.sum(0)
    grads["r0"] += dr.sum(0)                                  # (R, d)
    grads["w0"] += softmax_backward(dw.sum(0), cache.w0)    # (Hh, M)
    if config.memory_init == "learned":
        grads["M0"] += dmem.sum(0)                            # (M, d)
    return grads


# ----------------------------------------------------------------------------------------------------------------
# Loss, metrics and the protocol's entry points

LN2 = math.log(2.0)


def bit_cross_entropy(logits, batch: Batch):
    """Per-sequence cross-entropy (nats) summed over scored steps and channels, and dlogits of its batch mean."""
    y = batch.targets.astype(logits.dtype, copy=False)
    mask = batch.target_mask[:, :, None]                      # (N, T, 1)
    ce = (softplus(logits) - y * logits) * mask               # (N, T, Y) −[y log σ(z) + (1−y) log(1−σ(z))]
    per_seq = ce.sum((1, 2))                                  # (N,)
    N = logits.shape[0]
    dlogits = (sigmoid(logits) - y) * mask / N                # (N, T, Y) ∂(mean over sequences)/∂z
    return per_seq, dlogits


def metrics(logits, batch: Batch) -> dict:
    """Per-sequence cost in bits and bit errors (outputs thresholded at 0.5), over the scored steps."""
    per_seq, _ = bit_cross_entropy(logits, batch)
    wrong = ((logits > 0) != (batch.targets > 0.5)) & batch.target_mask[:, :, None]   # (N, T, Y)
    return {"bits": per_seq / LN2, "bit_errors": wrong.sum((1, 2))}


def weightings_of(cache: Cache, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """Read (N, T, R, M) and write (N, T, Wh, M) weightings of every step."""
    w = np.stack([s.sharpen.w for s in cache.steps], axis=1)  # (N, T, Hh, M)
    return w[:, :, :config.read_heads], w[:, :, config.read_heads:]


def loss_and_grads(params, batch: Batch, config: Config):
    """Mean over sequences of the summed bit cross-entropy (nats), its gradients, and info."""
    logits, cache = forward(params, batch, config)
    per_seq, dlogits = bit_cross_entropy(logits, batch)
    grads = backward(dlogits, cache, params, config)
    read_w, write_w = weightings_of(cache, config)
    m = metrics(logits, batch)
    info = {"bits_per_sequence": m["bits"], "bit_errors_per_sequence": m["bit_errors"],
            "read_weightings": read_w, "write_weightings": write_w}
    return float(per_seq.mean()), grads, info


def predict(params, batch: Batch, config: Config):
    """Output bits (N, T, Y) (0 where unscored) and info: probabilities, per-sequence bits and bit errors,
    read/write weightings (N, T, heads, M), the final memory (N, M, d)."""
    logits, cache = forward(params, batch, config)
    probs = sigmoid(logits)                                   # (N, T, Y)
    m = metrics(logits, batch)
    read_w, write_w = weightings_of(cache, config)
    last = cache.steps[-1]
    memory = add_forward(erase_forward(last.read.mem, last.erase.w, last.erase.e)[0], last.add.w, last.add.a)[0]
    bits = (probs > 0.5) & batch.target_mask[:, :, None]
    info = {"probs": probs, "bits_per_sequence": m["bits"], "bit_errors_per_sequence": m["bit_errors"],
            "read_weightings": read_w, "write_weightings": write_w, "memory": memory}
    return bits.astype(np.int8), info


# ----------------------------------------------------------------------------------------------------------------
# The same model one sequence at a time, written from the paper's equations: the oracle for the code above


def forward_naive(params, batch: Batch, config: Config) -> np.ndarray:
    """Logits (N, T, Y), example by example, slot by slot, head by head, with plain loops and formulas."""
    d, M, H, S, r_ = config.memory_width, config.memory_slots, config.controller_size, config.shifts, \
        config.shift_range
    R, Wr = config.read_heads, config.write_heads
    Hh = R + Wr
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))
    softplus_ = lambda z: np.log1p(np.exp(z))
    def softmax(z):
        e = np.exp(z - np.max(z))
        return e / e.sum()
    # the documented column layout of the head layer: k, β, g, s, γ of every head, then e and a of the writers
    off_k, off_beta = 0, Hh * d
    off_g, off_s = off_beta + Hh, off_beta + 2 * Hh
    off_gamma = off_s + Hh * S
    off_e = off_gamma + Hh
    off_a = off_e + Wr * d
    scored = np.flatnonzero(batch.target_mask.any(0))
    T = int(scored[-1]) + 1 if scored.size else batch.inputs.shape[1]
    out = np.zeros(batch.targets.shape)
    for n in range(batch.inputs.shape[0]):
        if config.memory_init == "constant":
            mem = np.full((M, d), config.memory_init_value)
        elif config.memory_init == "learned":
            mem = params["M0"].copy()
        else:
            mem = batch.memory0[n].copy()
        h = params["h0"].copy() if config.controller == "lstm" else np.zeros(H)
        c = params["c0"].copy() if config.controller == "lstm" else None
        reads = [params["r0"][i].copy() for i in range(R)]
        w_prev = [softmax(params["w0"][j]) for j in range(Hh)]
        for t in range(T):
            xin = np.concatenate([batch.inputs[n, t]] + reads)
            if config.controller == "lstm":
                z = params["Wx"] @ xin + params["Wh"] @ h + params["b"]
                i_g, f_g, o_g, g_g = sig(z[:H]), sig(z[H:2 * H]), sig(z[2 * H:3 * H]), np.tanh(z[3 * H:])
                c = f_g * c + i_g * g_g
                h = o_g * np.tanh(c)
            else:
                h = np.tanh(params["Wx"] @ xin + params["b"])
            p = params["W_heads"] @ h + params["b_heads"]
            weightings = []
            for j in range(Hh):
                k = np.tanh(p[off_k + j * d: off_k + (j + 1) * d])
                beta = softplus_(p[off_beta + j])
                g = sig(p[off_g + j])
                s = softmax(p[off_s + j * S: off_s + (j + 1) * S])
                gamma = 1.0 + softplus_(p[off_gamma + j])
                K = np.array([k @ mem[i] / (np.sqrt(k @ k + COSINE_EPS) * np.sqrt(mem[i] @ mem[i] + COSINE_EPS))
                              for i in range(M)])                             # (6) cosine similarity
                wc = softmax(beta * K)                                        # (5)
                wg = g * wc + (1 - g) * w_prev[j]                             # (7)
                ws = np.zeros(M)                                              # (8) w̃(i) = Σ_j w^g(j) s(i − j)
                for i in range(M):
                    for jj in range(M):
                        delta = (i - jj) % M
                        if delta <= r_:
                            ws[i] += wg[jj] * s[r_ + delta]
                        elif delta >= M - r_:
                            ws[i] += wg[jj] * s[r_ + delta - M]
                wp = ws ** gamma                                              # (9)
                weightings.append(wp / wp.sum())
            reads = [sum(weightings[j][i] * mem[i] for i in range(M)) for j in range(R)]   # (2)
            new = mem.copy()
            for j in range(Wr):                                               # (3) every erasure first
                e = sig(p[off_e + j * d: off_e + (j + 1) * d])
                for i in range(M):
                    new[i] = new[i] * (1 - weightings[R + j][i] * e)
            for j in range(Wr):                                               # (4) then every addition
                a = np.tanh(p[off_a + j * d: off_a + (j + 1) * d])
                for i in range(M):
                    new[i] = new[i] + weightings[R + j][i] * a
            mem = new
            w_prev = weightings
            out[n, t] = params["W_out"] @ np.concatenate([h] + reads) + params["b_out"]
    return out


# ----------------------------------------------------------------------------------------------------------------
# Training: a stream of fresh random sequences, RMSProp or Adam, each gradient component clipped


def evaluation_set(config: Config, rng: np.random.Generator, sequences: int, min_len: Optional[int] = None,
                   max_len: Optional[int] = None, batch: int = 100) -> list:
    """Fixed held-out batches (lengths in [min_len, max_len], the training range by default)."""
    out, left = [], sequences
    while left > 0:
        n = min(batch, left)
        out.append(make_batch(task_batch(config, rng, n, min_len, max_len), config, rng))
        left -= n
    return out


def evaluate(params, config: Config, batches: list) -> dict:
    """Mean cost (bits) and bit errors per sequence over the batches."""
    bits, errors = [], []
    for b in batches:
        logits, _ = forward(params, b, config)
        m = metrics(logits, b)
        bits.append(m["bits"])
        errors.append(m["bit_errors"])
    return {"bits_per_sequence": float(np.concatenate(bits).mean()),
            "bit_errors_per_sequence": float(np.concatenate(errors).mean()), "sequences": int(sum(map(len, bits)))}


def make_optimizer(config: Config) -> optim.Optimizer:
    if config.optimizer == "adam":
        return optim.Adam(lr=config.lr)
    return optim.RMSProp(lr=config.lr, decay=config.decay, momentum=config.momentum)


def train_task(task: Optional[str] = None, config: Optional[Config] = None, rng: Optional[np.random.Generator] = None,
               sequences: int = 30_000, batch: Optional[int] = None, progress: Optional[Callable] = None,
               eval_every: int = 1000, eval_sequences: int = 200, target: float = 0.1,
               stop_when_converged: bool = False, params: Optional[dict] = None) -> dict:
    """Train on `sequences` fresh random sequences of the task, in batches of `batch` (config.batch_size).

    Without a config, Config.tuned(task); Config.for_task(task) gives the paper's optimiser settings instead.

    Every `eval_every` sequences the model is scored on a fixed held-out set of `eval_sequences` sequences of the
    training lengths (drawn from its own generator, never trained on); `converged_at` is the first such point with
    at most `target` bit errors per sequence. `progress(record)` is called with each evaluation record. Seconds are
    training time, evaluations excluded. Returns params (the last), config, history, converged_at, final (the last
    record), best (the record with the fewest held-out bit errors, then bits) and best_params (a copy, taken then).
    """
    if config is None:
        config = Config.tuned(task or "copy")                 # the settings chosen on held-out sequences
    elif task is not None and task != config.task:
        config = replace(config, task=task, **{k: v for k, v in dataclasses.asdict(Config.for_task(task)).items()
                                               if k in ("input_width", "output_width", "min_len", "max_len")})
    if batch is not None:
        config = replace(config, batch_size=batch)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    for name, v in (("sequences", sequences), ("eval_every", eval_every), ("eval_sequences", eval_sequences)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    train_rng, eval_rng = rng.spawn(2)
    held_out = evaluation_set(config, eval_rng, eval_sequences)
    params = init_params(config, train_rng) if params is None else params
    opt = make_optimizer(config)
    lr = config.lr
    B = config.batch_size
    seen, seconds, history, converged_at, best, best_params = 0, 0.0, [], None, None, None
    run_bits, run_errors, run_n = 0.0, 0.0, 0
    next_eval = eval_every
    top = min(max(config.curriculum, config.min_len), config.max_len) if config.curriculum else config.max_len
    recent = []                                               # bit errors per sequence of the last batches
    while seen < sequences:
        t0 = time.perf_counter()
        b = make_batch(task_batch(config, train_rng, B, config.min_len, top), config, train_rng)
        _, grads, info = loss_and_grads(params, b, config)
        opt.step(params, optim.clip_by_value(grads, config.clip))
        seconds += time.perf_counter() - t0
        seen += B
        if top < config.max_len:                              # curriculum: longer sequences once these are mastered
            recent = (recent + [float(info["bit_errors_per_sequence"].mean())])[-10:]
            if len(recent) == 10 and sum(recent) / 10 < 1.0:
                top, recent = top + 1, []
        run_bits += float(info["bits_per_sequence"].sum())
        run_errors += float(info["bit_errors_per_sequence"].sum())
        run_n += B
        if seen >= next_eval or seen >= sequences:
            next_eval += eval_every
            ev = evaluate(params, config, held_out)
            record = {"sequences": seen, "seconds": seconds, "train_bits_per_sequence": run_bits / run_n,
                      "train_bit_errors_per_sequence": run_errors / run_n,
                      "bits_per_sequence": ev["bits_per_sequence"],
                      "bit_errors_per_sequence": ev["bit_errors_per_sequence"],
                      "sequences_per_second": seen / max(seconds, 1e-9), "max_len": top}
            run_bits = run_errors = 0.0
            run_n = 0
            history.append(record)
            if best is None or (ev["bit_errors_per_sequence"], ev["bits_per_sequence"]) < \
                    (best["bit_errors_per_sequence"], best["bits_per_sequence"]):
                best, best_params = record, {k: v.copy() for k, v in params.items()}
            elif config.backtrack and ev["bits_per_sequence"] > 2 * best["bits_per_sequence"] + 1:
                params = {k: v.copy() for k, v in best_params.items()}   # a blow-up: back to the best point
                opt = make_optimizer(config)
                opt.lr = lr = lr / 2
                record["backtracked_to"] = best["sequences"]
                record["lr"] = lr
            if progress is not None:
                progress(record)
            if converged_at is None and ev["bit_errors_per_sequence"] <= target:
                converged_at = {"sequences": seen, "seconds": seconds}
                if stop_when_converged:
                    break
    return {"params": params, "config": config, "history": history, "converged_at": converged_at,
            "final": history[-1] if history else None, "best": best, "best_params": best_params}


def test_report(params, config: Config, rng: np.random.Generator, sequences: int = 500,
                generalisation_len: int = 40, generalisation_sequences: int = 100) -> dict:
    """Cost and bit errors per sequence on fresh sequences of the training lengths, and on longer ones.

    Copy: `generalisation_len` is the sequence length (all of one length); repeat copy: the length, with the
    training repeats; associative recall: the number of items.
    """
    test_rng, gen_rng = rng.spawn(2)
    out = evaluate(params, config, evaluation_set(config, test_rng, sequences))
    L = generalisation_len
    gen = evaluate(params, config, evaluation_set(config, gen_rng, generalisation_sequences, L, L,
                                                  batch=min(50, generalisation_sequences)))
    out["generalisation"] = dict(gen, length=L)
    return out


# ----------------------------------------------------------------------------------------------------------------
# Speed


def _train_steps_per_second(config: Config, rng: np.random.Generator, batch: int, sequences: int,
                            min_len: Optional[int] = None, max_len: Optional[int] = None) -> float:
    """Training sequences per second: fresh batches, loss and gradients, clipping, an optimiser step."""
    params = init_params(config, rng)
    opt = make_optimizer(config)
    steps = max(1, sequences // batch)
    b = make_batch(task_batch(config, rng, batch, min_len, max_len), config, rng)
    opt.step(params, optim.clip_by_value(loss_and_grads(params, b, config)[1], config.clip))   # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        b = make_batch(task_batch(config, rng, batch, min_len, max_len), config, rng)
        _, grads, _ = loss_and_grads(params, b, config)
        opt.step(params, optim.clip_by_value(grads, config.clip))
    return steps * batch / (time.perf_counter() - t0)


def bench(config: Optional[Config] = None, rng: Optional[np.random.Generator] = None, batches=(1, 16),
          sequences: int = 400, scaling: bool = True, quick: bool = False) -> dict:
    """Training speed on the copy task (float32, one core as the caller sets it): sequences per second at each
    batch size, and, with scaling, how the time per sequence grows with memory size M and sequence length.

    Returns {"sequences_per_second": {B: rate}, "memory_slots": {M: ms per sequence}, "length": {L: ms}}.
    """
    config = Config.for_task("copy", dtype="float32") if config is None else config
    rng = np.random.default_rng(0) if rng is None else rng
    if quick:
        sequences = 32
    out = {"config": dataclasses.asdict(config),
           "sequences_per_second": {int(B): _train_steps_per_second(config, rng, int(B), max(sequences, int(B)))
                                    for B in batches}}
    if scaling:
        n = max(sequences // 4, 16)
        out["memory_slots"] = {M: 1000.0 / _train_steps_per_second(replace(config, memory_slots=M), rng, 16, n)
                               for M in ((32, 128) if quick else (32, 64, 128, 256, 512))}
        out["length"] = {L: 1000.0 / _train_steps_per_second(config, rng, 16, n, L, L)
                         for L in ((5, 10) if quick else (5, 10, 20, 40))}
    return out


def format_bench(r: dict) -> str:
    lines = ["NTM training speed (copy task, float32, sequences per second):"]
    lines += [f"  batch {B:>3}: {v:7.1f} seq/s" for B, v in r["sequences_per_second"].items()]
    if "memory_slots" in r:
        lines.append("  ms per sequence at batch 16, by memory size M (lengths 1-20): " +
                     ", ".join(f"{M}: {v:.2f}" for M, v in r["memory_slots"].items()))
        lines.append("  ms per sequence at batch 16, by sequence length L (M = %d): " % r["config"]["memory_slots"] +
                     ", ".join(f"{L}: {v:.2f}" for L, v in r["length"].items()))
    return "\n".join(lines)


GENERALISATION = {"copy": 40, "repeat-copy": 20, "associative-recall": 12}   # twice the longest training length


def results(out: dict, rng: np.random.Generator, sequences: int = 500, generalisation_len: Optional[int] = None,
            generalisation_sequences: int = 100) -> dict:
    """What a results file holds for a train_task run: the best parameters (by held-out error) scored on fresh
    sequences of the training lengths (`bits_per_sequence`: cross-entropy in bits, the paper's cost;
    `bit_errors_per_sequence`) and on longer ones (`generalisation`), the run's convergence point and curve.
    The parameters themselves are left to the caller's checkpoint."""
    config = out["config"]
    L = GENERALISATION[config.task] if generalisation_len is None else generalisation_len
    params = out["best_params"] if out.get("best_params") is not None else out["params"]
    report = test_report(params, config, rng, sequences, L, generalisation_sequences)
    final = out["final"] or {}
    return {"model": "ntm", "task": config.task, "config": dataclasses.asdict(config),
            "bits_per_sequence": report["bits_per_sequence"],
            "bit_errors_per_sequence": report["bit_errors_per_sequence"], "test_sequences": report["sequences"],
            "generalisation": report["generalisation"], "converged_at": out["converged_at"],
            "selected_at": (out["best"] or {}).get("sequences"), "sequences": final.get("sequences", 0),
            "seconds": final.get("seconds", 0.0), "history": out["history"]}


# ----------------------------------------------------------------------------------------------------------------
# The command line's hooks: `python -m memnet_np train ntm --task copy`, `bench ntm`


def train_command(args) -> int:
    """`train ntm --task TASK [--sequences N] [--batch B] [--seed S] [--out DIR]`: train with the tuned settings,
    print progress at every held-out evaluation, write results.json and checkpoint.npz, print a summary."""
    import json
    import os
    from memnet_np import train as T
    from memnet_np.experiments import UserError
    if args.task not in TASKS:
        raise UserError(f"--task must be one of {', '.join(TASKS)} for ntm, got {args.task!r}")
    sequences = 30_000 if args.sequences is None else args.sequences
    if sequences < 1 or (args.batch is not None and args.batch < 1):
        raise UserError("--sequences and --batch must be at least 1")
    overrides = {} if args.batch is None else {"batch_size": args.batch}
    config = Config.tuned(args.task, **overrides)
    out_dir = args.out or os.path.join("runs", f"ntm-{args.task}")
    print(f"training ntm on {args.task}: {sequences} sequences in batches of {config.batch_size}, seed {args.seed}; "
          f"results go to {out_dir}", flush=True)

    def show(r):
        if not args.quiet:
            eta = r["seconds"] / r["sequences"] * max(sequences - r["sequences"], 0)
            print(f"  {r['sequences']:6d}/{sequences} sequences  train {r['train_bits_per_sequence']:7.2f} bits  "
                  f"held-out {r['bits_per_sequence']:7.2f} bits, {r['bit_errors_per_sequence']:6.2f} bit errors  "
                  f"{r['sequences_per_second']:6.1f} seq/s  {r['seconds']:6.1f}s  ETA {eta:5.0f}s", flush=True)
    rng = np.random.default_rng(args.seed)
    out = train_task(args.task, config=config, rng=rng, sequences=sequences, progress=show)
    res = results(out, rng)
    params = out["best_params"] if out.get("best_params") is not None else out["params"]
    ckpt = T.save_checkpoint(os.path.join(out_dir, "checkpoint.npz"), "ntm", params, config, [],
                             meta={"task": args.task, "seed": args.seed})
    res["checkpoint"] = str(ckpt)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(res, f, indent=2, default=float)
    g = res["generalisation"]
    print(f"\nntm on {args.task}: {res['bits_per_sequence']:.3f} bits and {res['bit_errors_per_sequence']:.3f} bit "
          f"errors per sequence on {res['test_sequences']} fresh sequences; converged at {res['converged_at']} "
          f"sequences; longer sequences: {g}")
    print(f"wrote {os.path.join(out_dir, 'results.json')} and {ckpt}")
    return 0
