"""Optimisers and gradient clipping, on `dict[str, np.ndarray]` parameters and gradients with the same keys.

Every model in this library hands back its gradients as a dict with the same keys as its parameters. This module
turns those gradients into parameter updates, and keeps clipping out of the backward passes (DESIGN.md).

Optimisers (each update is written below as the paper's equation, then as the code that computes it):

    SGD      w ← w − lr·g, optionally with momentum             MemN2N: lr 0.01 halved every 25 epochs
    Adam     Kingma & Ba 2015, with bias correction             DMN+: lr 1e-3
    RMSProp  Graves 2013 ("Generating sequences with RNNs",     NTM: lr 1e-4, ℵ 0.95, ι 0.9, ε 1e-4
             eqs 38–41), the centred form with momentum

An optimiser is a small object that owns its state in a plain dict attribute, `opt.state` (velocities, moments,
step count), so a tutorial can print it. `opt.step(params, grads)` updates `params` IN PLACE: that is the one
in-place operation in this module. Gradients are never modified. `opt.lr` is a plain attribute; the training loop
sets it each epoch (see `step_schedule`). `state_dict()` / `load_state_dict()` give and take a flat dict of
floats and arrays (keys like "lr", "t", "m/A") that `np.savez` can store and `np.load(allow_pickle=False)` can
read back.

Clipping functions are pure: they return a NEW dict (arrays that needed no change are shared, not copied; changed
ones are new arrays) and never touch their input:

    clip_by_norm_per_matrix   each matrix rescaled to norm ≤ max_norm on its own   MemN2N: 40 (Frobenius or, as
                              the official code, spectral; a matrix may be several arrays' row blocks)
    clip_by_global_norm       all arrays rescaled together so ‖all of g‖ ≤ max_norm
    clip_by_value             each entry clipped to [−limit, limit]                 NTM: 10

`check_finite` raises `NonFiniteError` (both a `FloatingPointError` and a `ValueError`) naming the first array
holding a NaN or an infinity; the optimisers and the clipping functions call it on every gradient they receive.
"""
from __future__ import annotations

import math
from typing import Collection, Mapping

import numpy as np

__all__ = [
    "NonFiniteError", "check_finite", "step_schedule",
    "Optimizer", "SGD", "Adam", "RMSProp",
    "clip_by_norm_per_matrix", "clip_by_global_norm", "clip_by_value",
    "sgd_step_per_matrix_clip", "sgd_step_global_clip",
]

# ----------------------------------------------------------------------------------------------------------------
# Argument checks


class NonFiniteError(FloatingPointError, ValueError):
    """A NaN or ±inf where only finite numbers make sense. Catch it as FloatingPointError or as ValueError."""


def check_finite(arrays: Mapping[str, np.ndarray], what: str = "gradient") -> None:
    """Raise NonFiniteError naming the first array (in dict order) that holds a NaN or an infinity.

    `what` says what the arrays are ("gradient", "parameter", ...), so the message reads e.g.
    "non-finite gradient in 'A' (2 NaN, 0 inf of 12 entries; first at index (0, 3))".
    """
    with np.errstate(over="ignore", invalid="ignore"):
        sums = {name: np.asarray(x).sum() for name, x in arrays.items() if np.asarray(x).dtype.kind in "fc"}
    for name, total in sums.items():
        if np.isfinite(total):                                # a NaN or inf in x makes its sum NaN or inf; a sum
            continue                                          # that overflowed from finite numbers is checked below
        x = np.asarray(arrays[name])
        finite = np.isfinite(x)                               # same shape as x
        if not finite.all():
            n_nan = int(np.isnan(x).sum())
            n_inf = int(np.isinf(x).sum())
            first = tuple(int(i) for i in np.argwhere(~finite)[0])
            raise NonFiniteError(f"non-finite {what} in {name!r} ({n_nan} NaN, {n_inf} inf of {x.size} entries; "
                                 f"first at index {first}); a smaller learning rate or gradient clipping may help")


def _positive(name: str, value) -> float:
    """`value` as a float if it is a finite number > 0, else ValueError naming the argument."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def _fraction(name: str, value) -> float:
    """`value` as a float if 0 <= value < 1 (a decay rate or a momentum), else ValueError naming the argument."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}") from None
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return v


def step_schedule(lr0: float, epoch: int, every: int, factor: float = 0.5) -> float:
    """The step-decay schedule lr = lr0 · factor^(epoch // every), for a 0-based epoch.

    MemN2N: lr0 = 0.01 halved every 25 epochs, so epochs 0–24 use 0.01, 25–49 use 0.005, 50–74 use 0.0025, ...
    """
    lr0 = _positive("lr0", lr0)
    factor = _positive("factor", factor)
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise ValueError(f"every must be an integer >= 1 (epochs between decays), got {every!r}")
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
        raise ValueError(f"epoch must be an integer >= 0 (0-based), got {epoch!r}")
    return lr0 * factor ** (int(epoch) // int(every))


# ----------------------------------------------------------------------------------------------------------------
# The optimisers


class Optimizer:
    """What every optimiser shares: argument checks, the loop over parameters, and (de)serialising the state.

    A subclass lists its hyperparameters in `hyperparameters`, creates `self.state` (per-parameter arrays live in
    sub-dicts such as state["m"][name]; scalars such as the step count state["t"] sit at the top level), and
    writes the update for one parameter in `_update(name, w, g)`.
    """

    hyperparameters: tuple[str, ...] = ("lr",)

    def __init__(self, lr: float, skip: Collection[str] = ()):
        self.lr = _positive("lr", lr)
        if isinstance(skip, str):                             # skip="A" would otherwise mean {"A"} → {"", "A"}...
            skip = (skip,)
        self.skip = frozenset(skip)                           # parameters that are never updated
        self.state: dict = {}

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.hyperparameters)
        skip = f", skip={sorted(self.skip)!r}" if self.skip else ""
        return f"{type(self).__name__}({hp}{skip})"

    def step(self, params: dict[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
        """Update every parameter not in `skip`, in place, from its gradient. `grads` is left untouched."""
        self.lr = _positive("lr", self.lr)                    # the training loop may have set it
        unknown_skip = self.skip - set(params)
        if unknown_skip:
            raise ValueError(f"skip names parameters that do not exist: {sorted(unknown_skip)}; "
                             f"parameters are {sorted(params)}")
        extra = set(grads) - set(params)
        if extra:
            raise ValueError(f"gradients for unknown parameters {sorted(extra)}; parameters are {sorted(params)}")
        todo = [name for name in params if name not in self.skip]
        missing = [name for name in todo if name not in grads]
        if missing:
            raise ValueError(f"no gradient for parameters {missing} (list them in skip= to leave them unchanged)")
        for name in todo:
            w, g = params[name], np.asarray(grads[name])
            if not isinstance(w, np.ndarray) or w.dtype.kind != "f":
                raise TypeError(f"parameter {name!r} must be a float numpy array to be updated in place, "
                                f"got {getattr(w, 'dtype', type(w).__name__)}")
            if g.shape != w.shape:
                raise ValueError(f"gradient {name!r} has shape {g.shape} but the parameter has shape {w.shape}")
        check_finite({name: grads[name] for name in todo}, "gradient")
        self._begin_step()
        for name in todo:
            self._update(name, params[name], np.asarray(grads[name]))

    def _begin_step(self) -> None:
        """Hook run once per step before the per-parameter updates (Adam counts steps here)."""

    def _update(self, name: str, w: np.ndarray, g: np.ndarray) -> None:
        raise NotImplementedError

    def _slot(self, slot: str, name: str, w: np.ndarray) -> np.ndarray:
        """The state array state[slot][name], created as zeros shaped and typed like w on first use."""
        d = self.state[slot]
        if name not in d:
            d[name] = np.zeros_like(w)                        # same shape and dtype as the parameter
        return d[name]

    # -- checkpoints ------------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """A flat dict of floats and array copies: hyperparameters, scalar state, and "slot/name" arrays."""
        out: dict = {k: float(getattr(self, k)) for k in self.hyperparameters}
        for key, value in self.state.items():
            if isinstance(value, dict):
                for name, arr in value.items():
                    out[f"{key}/{name}"] = arr.copy()
            else:
                out[key] = float(value)
        return out

    def load_state_dict(self, state: Mapping) -> None:
        """Restore what `state_dict()` returned (values may be 0-d arrays, as np.load gives them back)."""
        state = dict(state)
        missing = [k for k in self.hyperparameters if k not in state]
        if missing:
            raise ValueError(f"{type(self).__name__} state dict lacks hyperparameters {missing}")
        for k in self.hyperparameters:
            setattr(self, k, float(np.asarray(state.pop(k))))
        self._check_hyperparameters()
        fresh = {key: ({} if isinstance(v, dict) else v) for key, v in self.state.items()}
        for key, value in state.items():
            slot, sep, name = key.partition("/")
            if sep and isinstance(fresh.get(slot), dict):
                fresh[slot][name] = np.array(value)           # a copy: later in-place use cannot alias the input
            elif not sep and slot in fresh and not isinstance(fresh[slot], dict):
                v = np.asarray(value)
                if v.ndim != 0:
                    raise ValueError(f"state entry {key!r} should be a scalar, got shape {v.shape}")
                fresh[slot] = type(self.state[slot])(v.item())
            else:
                raise ValueError(f"unexpected entry {key!r} in a {type(self).__name__} state dict; "
                                 f"expected {list(self.hyperparameters)} and entries of {list(self.state)}")
        unset = [k for k, v in self.state.items() if not isinstance(v, dict) and k not in state]
        if unset:
            raise ValueError(f"{type(self).__name__} state dict lacks state entries {unset}")
        self.state = fresh

    def _check_hyperparameters(self) -> None:
        self.lr = _positive("lr", self.lr)


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (heavy-ball) momentum μ.

        v ← μ v − lr · g
        w ← w + v                 (μ = 0 gives plain w ← w − lr · g)

    state = {"velocity": {name: v}}; with μ = 0 no velocity is kept.
    """

    hyperparameters = ("lr", "momentum")

    def __init__(self, lr: float, momentum: float = 0.0, skip: Collection[str] = ()):
        super().__init__(lr, skip)
        self.momentum = _fraction("momentum", momentum)
        self.state = {"velocity": {}}

    def _check_hyperparameters(self) -> None:
        super()._check_hyperparameters()
        self.momentum = _fraction("momentum", self.momentum)

    def _update(self, name, w, g):
        if self.momentum == 0.0:
            w -= self.lr * g                                  # w ← w − lr·g            (in place, w's dtype)
            return
        v = self.momentum * self._slot("velocity", name, w) - self.lr * g   # v ← μ v − lr·g
        self.state["velocity"][name] = v.astype(w.dtype, copy=False)
        w += v                                                # w ← w + v


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015, Algorithm 1), with bias correction.

        t ← t + 1
        m ← β1 m + (1 − β1) g            first moment (mean of g)
        v ← β2 v + (1 − β2) g²           second moment (uncentred variance of g)
        m̂ = m / (1 − β1^t),  v̂ = v / (1 − β2^t)      undo the bias toward the zero initial values
        w ← w − lr · m̂ / (√v̂ + ε)

    At t = 1, m̂ = g and v̂ = g², so every entry moves by lr · g/(|g| + ε) ≈ lr · sign(g).
    state = {"t": steps taken, "m": {name: m}, "v": {name: v}}.
    """

    hyperparameters = ("lr", "beta1", "beta2", "eps")

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 skip: Collection[str] = ()):
        super().__init__(lr, skip)
        self.beta1 = _fraction("beta1", beta1)
        self.beta2 = _fraction("beta2", beta2)
        self.eps = _positive("eps", eps)
        self.state = {"t": 0, "m": {}, "v": {}}

    def _check_hyperparameters(self) -> None:
        super()._check_hyperparameters()
        self.beta1 = _fraction("beta1", self.beta1)
        self.beta2 = _fraction("beta2", self.beta2)
        self.eps = _positive("eps", self.eps)

    def _begin_step(self):
        self.state["t"] += 1                                  # t ← t + 1 (one count per step, shared by all)

    def _update(self, name, w, g):
        b1, b2, t = self.beta1, self.beta2, self.state["t"]
        m = b1 * self._slot("m", name, w) + (1.0 - b1) * g    # m ← β1 m + (1 − β1) g
        v = b2 * self._slot("v", name, w) + (1.0 - b2) * g * g  # v ← β2 v + (1 − β2) g²
        self.state["m"][name] = m.astype(w.dtype, copy=False)
        self.state["v"][name] = v.astype(w.dtype, copy=False)
        m_hat = m / (1.0 - b1 ** t)                           # m̂ = m / (1 − β1^t)
        v_hat = v / (1.0 - b2 ** t)                           # v̂ = v / (1 − β2^t)
        w -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)    # w ← w − lr · m̂ / (√v̂ + ε)


class RMSProp(Optimizer):
    """RMSProp in the form of Graves 2013, "Generating Sequences With Recurrent Neural Networks", eqs 38–41.

        n    ← ℵ n + (1 − ℵ) g²                     running mean of g²             (38)
        ḡ    ← ℵ ḡ + (1 − ℵ) g                      running mean of g              (39)
        Δ    ← ι Δ − lr · g / √(n − ḡ² + ε)          momentum on the scaled step   (40)
        w    ← w + Δ                                                               (41)

    n − ḡ² estimates the variance of g (the "centred" variant), so the step is g divided by its recent standard
    deviation. ℵ = `decay`, ι = `momentum`; the NTM paper used ℵ = 0.95, ι = 0.9, lr = 1e-4, ε = 1e-4.
    state = {"n": {name: n}, "gbar": {name: ḡ}, "delta": {name: Δ}}.
    """

    hyperparameters = ("lr", "decay", "momentum", "eps")

    def __init__(self, lr: float = 1e-4, decay: float = 0.95, momentum: float = 0.9, eps: float = 1e-4,
                 skip: Collection[str] = ()):
        super().__init__(lr, skip)
        self.decay = _fraction("decay", decay)
        self.momentum = _fraction("momentum", momentum)
        self.eps = _positive("eps", eps)
        self.state = {"n": {}, "gbar": {}, "delta": {}}

    def _check_hyperparameters(self) -> None:
        super()._check_hyperparameters()
        self.decay = _fraction("decay", self.decay)
        self.momentum = _fraction("momentum", self.momentum)
        self.eps = _positive("eps", self.eps)

    def _update(self, name, w, g):
        a, i = self.decay, self.momentum                      # ℵ, ι
        n = a * self._slot("n", name, w) + (1.0 - a) * g * g              # (38) n ← ℵ n + (1 − ℵ) g²
        gbar = a * self._slot("gbar", name, w) + (1.0 - a) * g            # (39) ḡ ← ℵ ḡ + (1 − ℵ) g
        # n − ḡ² ≥ 0 in exact arithmetic (Cauchy–Schwarz on the two running means); ε keeps the root away from 0.
        delta = i * self._slot("delta", name, w) - self.lr * g / np.sqrt(n - gbar * gbar + self.eps)  # (40)
        self.state["n"][name] = n.astype(w.dtype, copy=False)
        self.state["gbar"][name] = gbar.astype(w.dtype, copy=False)
        self.state["delta"][name] = delta.astype(w.dtype, copy=False)
        w += delta                                                        # (41) w ← w + Δ


# ----------------------------------------------------------------------------------------------------------------
# Gradient clipping: pure functions returning a new dict


def _norm(x: np.ndarray) -> float:
    """Frobenius norm ‖x‖ = √(Σ x²), accumulated in float64."""
    x = np.asarray(x, dtype=np.float64).ravel()               # (size,)
    return float(np.sqrt(np.dot(x, x)))


def spectral_norm(*blocks: np.ndarray) -> float:
    """‖x‖₂, the largest singular value of the matrix x (MATLAB's `norm(X)`); for a vector, its length.

    Given several arrays, x is them stacked as row blocks (same number of columns). Computed as √(largest
    eigenvalue of a Gram matrix): xᵀx = Σ_b x_bᵀx_b when x has at least as many rows as columns (for the word
    matrices here d × d, a far smaller problem than the SVD of x), else x xᵀ. Accumulated in float64.
    """
    x = [np.asarray(b, dtype=np.float64) for b in blocks]
    if len(x) == 1 and x[0].ndim < 2:
        return _norm(x[0])
    x = [b.reshape(b.shape[0], -1) for b in x]                # (rows_b, cols) each
    if sum(b.shape[0] for b in x) >= x[0].shape[1]:
        gram = sum(b.T @ b for b in x)                        # (cols, cols)
    else:
        stacked = np.concatenate(x)                           # (rows, cols)
        gram = stacked @ stacked.T                            # (rows, rows)
    return math.sqrt(max(float(np.linalg.eigvalsh(gram)[-1]), 0.0))


NORMS = {"frobenius": _norm, "spectral": spectral_norm}


def clip_by_norm_per_matrix(grads: Mapping[str, np.ndarray], max_norm: float, norm: str = "frobenius",
                            groups: Collection[tuple[str, ...]] = ()) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Rescale each gradient matrix on its own so that its norm is at most max_norm.

        g ← g · min(1, max_norm / ‖g‖)          for each matrix separately

    norm: "frobenius" (√Σg²) or "spectral" (the largest singular value, MATLAB's `norm` of a matrix).
    groups: names whose arrays are the row blocks of one matrix, clipped as one: its norm is that of the
    arrays stacked (they must have the same number of columns), and each is rescaled by the same factor. A name
    in no group is a matrix of its own.

    MemN2N clips each weight matrix's gradient to norm 40. Returns (clipped, norms) where norms[name] is the
    norm BEFORE clipping (of the name's group), so a training loop can log how often clipping fired.
    """
    max_norm = _positive("max_norm", max_norm)
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(map(repr, NORMS))}, got {norm!r}")
    check_finite(grads, "gradient")
    grouped = {name for group in groups for name in group}
    unknown = sorted(grouped - set(grads))
    if unknown:
        raise ValueError(f"clipping groups name {unknown}, which are not among the gradients {sorted(grads)}")
    matrices = [tuple(group) for group in groups] + [(name,) for name in grads if name not in grouped]
    clipped: dict[str, np.ndarray] = {}
    norms: dict[str, float] = {}
    for names in matrices:
        arrays = [np.asarray(grads[name]) for name in names]
        if len(arrays) == 1:
            size = NORMS[norm](arrays[0])
        elif norm == "frobenius":
            size = math.sqrt(sum(_norm(a) ** 2 for a in arrays))
        else:                                                 # one matrix of stacked row blocks
            size = spectral_norm(*arrays)
        for name, g in zip(names, arrays):
            norms[name] = size
            if size > max_norm:
                clipped[name] = (g * (max_norm / size)).astype(g.dtype, copy=False)   # new array
            else:
                clipped[name] = grads[name]                   # unchanged: shared, not copied
    return {name: clipped[name] for name in grads}, {name: norms[name] for name in grads}


def clip_by_global_norm(grads: Mapping[str, np.ndarray], max_norm: float
                        ) -> tuple[dict[str, np.ndarray], float]:
    """Rescale all gradients by one common factor so that the norm of all of them together is at most max_norm.

        ‖g‖_global = √(Σ_name ‖g_name‖²)
        g_name ← g_name · min(1, max_norm / ‖g‖_global)      for every name, the same factor

    Unlike per-matrix clipping this keeps the direction of the whole update. Returns (clipped, global norm
    before clipping).
    """
    max_norm = _positive("max_norm", max_norm)
    check_finite(grads, "gradient")
    total = math.sqrt(sum(_norm(g) ** 2 for g in grads.values()))
    if total <= max_norm:
        return dict(grads), total                             # a new dict sharing the unchanged arrays
    scale = max_norm / total
    return {name: (g * scale).astype(np.asarray(g).dtype, copy=False) for name, g in grads.items()}, total


def clip_by_value(grads: Mapping[str, np.ndarray], limit: float) -> dict[str, np.ndarray]:
    """Clip every gradient entry to [−limit, limit] (the NTM paper clips each component to (−10, 10))."""
    limit = _positive("limit", limit)
    check_finite(grads, "gradient")
    return {name: np.clip(g, -limit, limit) for name, g in grads.items()}   # new arrays, same shapes


def sgd_step_per_matrix_clip(params: dict[str, np.ndarray], grads: Mapping[str, np.ndarray], lr: float,
                             max_norm: float) -> None:
    """clip_by_norm_per_matrix (Frobenius) then SGD(lr).step, in one pass over the parameters: the same update
    to the last bit, without the dicts and the second finiteness check in between (on a small bAbI task they were
    a tenth of a training step). Each array's norm is computed once; a NaN or inf gradient (a non-finite norm)
    raises NonFiniteError naming the array, before any parameter changes.

        g ← g · min(1, max_norm / ‖g‖),   w ← w − lr · g        for each matrix separately
    """
    lr, max_norm = _positive("lr", lr), _positive("max_norm", max_norm)
    if grads.keys() != params.keys():
        raise ValueError(f"gradients for {sorted(grads)} but parameters {sorted(params)}")
    for name, g in grads.items():
        if g.shape != params[name].shape:
            raise ValueError(f"gradient {name!r} has shape {g.shape} but the parameter has shape {params[name].shape}")
    norms = [_norm(g) for g in grads.values()]
    if not all(map(math.isfinite, norms)):
        check_finite(grads, "gradient")                       # names the array
    for (name, g), size in zip(grads.items(), norms):
        if size > max_norm:
            g = (g * (max_norm / size)).astype(g.dtype, copy=False)   # as clip_by_norm_per_matrix
        params[name] -= lr * g                                # as SGD: w ← w − lr·g, in w's dtype


def sgd_step_global_clip(params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float,
                         max_norm: float) -> float:
    """Plain SGD after clip_by_global_norm, in place and without copies (the MemN2N language model's update):

        w ← w − lr · min(1, max_norm / ‖g‖_global) · g        for every parameter

    The gradients are scaled in place (the caller gives them up); each array's ‖g‖² is its own dot product, in its
    own dtype (float32 training: a float32 sum over 1.5M entries, far more precise than clipping needs). Returns
    the global norm before clipping; a NaN or inf gradient raises NonFiniteError before any parameter changes.
    """
    lr, max_norm = _positive("lr", lr), _positive("max_norm", max_norm)
    total = math.sqrt(sum(float(np.dot(g.ravel(), g.ravel())) for g in grads.values()))
    if not math.isfinite(total):
        check_finite(grads, "gradient")                       # names the array
        raise NonFiniteError(f"the gradient's norm is {total}")
    scale = -lr * min(1.0, max_norm / total) if total > 0 else -lr
    for name, g in grads.items():
        g *= scale                                            # (shape of w) in place
        params[name] += g
    return total
