"""Numerical gradients: the oracle every hand-written backward in this library is checked against.

The idea (cs231n `gradient_check.py`): nudge one entry of an input by ±h, re-run the forward pass, and take the
central difference

    df/dx_i  ≈  (f(x + h e_i) − f(x − h e_i)) / 2h          error O(h²) for smooth f

Compare it with the analytic gradient a by the normwise relative error

    rel_error(a, n) = ‖a − n‖ / (‖a‖ + ‖n‖)

In float64 with h ≈ 1e-5 a correct gradient gives ~1e-9 to 1e-11; anything above ~1e-7 is a bug (or a kink).
A halved gradient scores 1/3, a transposed or sign-flipped one far more. Why normwise and not entry by entry
(cs231n's max_i |a_i − n_i| / (|a_i| + |n_i|))? Each numerical entry carries a round-off error of about
ε·|f|/h ≈ 1e-11·|f| whatever its size, so an entry that is 1e-5 in size has a relative error of ~1e-6 even when
the analytic value is exact. `max_entry_error` (the elementwise form) is reported beside it to find *which*
entry is off. Always check in float64: float32 round-off (~1e-7 relative, divided by h) swamps the signal.

Kinks. Hard argmax selection and the hinge max(0, ·) are not differentiable everywhere. If x ± h straddles a
point where the slope jumps, the central difference averages two slopes and disagrees with either one-sided
derivative, although the analytic gradient is right. The checker tells the two cases apart: it compares the
one-sided slopes (f(x+h) − f(x))/h and (f(x) − f(x−h))/h. For smooth f they differ by ~h·f'', for a kink by the
jump in slope. A suspected kink is re-checked with smaller steps; if it persists, the entry is reported as a kink
(and whether the analytic value matches one of the one-sided slopes) instead of as a failure.
"""
from __future__ import annotations

from typing import Callable, Mapping, NamedTuple

import numpy as np

SMOOTH_TOLERANCE = 1e-7  # what a correct float64 gradient must beat (DESIGN.md: smooth ops rel_error < 1e-7)


def rel_error(x, y) -> float:
    """Normwise relative error ‖x − y‖ / (‖x‖ + ‖y‖); 0.0 when both are zero, NaN when there is nothing to compare
    (NaN fails every `< tolerance`: a check of zero entries must not pass)."""
    x, y = _pair(x, y)
    if x.size == 0:
        return float("nan")
    denom = np.linalg.norm(x) + np.linalg.norm(y)
    return 0.0 if denom == 0 else float(np.linalg.norm(x - y) / denom)


def max_entry_error(x, y, floor: float = 1e-8) -> float:
    """Largest elementwise relative error max |x−y| / max(|x|+|y|, floor) (cs231n's form): a diagnostic."""
    x, y = _pair(x, y)
    if x.size == 0:
        return 0.0
    return float(np.max(np.abs(x - y) / np.maximum(np.abs(x) + np.abs(y), floor)))


def _pair(x, y):
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"rel_error: shapes differ, {x.shape} vs {y.shape}")
    return x, y


def _require_float64(x: np.ndarray, what: str) -> None:
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        dtype = getattr(x, "dtype", type(x).__name__)
        raise TypeError(f"{what} must be a float64 numpy array for a gradient check, got {dtype}; "
                        "float32 round-off divided by h swamps the difference being measured")


def _on_either_side(f: Callable[[], float], x: np.ndarray, ix: tuple, h: float) -> tuple[float, float]:
    """(f() with x[ix] + h, f() with x[ix] − h); x[ix] is put back afterwards, whatever happens."""
    old = x[ix]
    try:
        x[ix] = old + h
        fp = float(f())
        x[ix] = old - h
        fm = float(f())
    finally:
        x[ix] = old
    return fp, fm


def eval_numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-5,
                            indices=None) -> np.ndarray:
    """Central-difference gradient of the scalar f() with respect to the array x.

    f takes no arguments: it reads x, which is changed in place one entry at a time and always restored.
    `indices` (an iterable of index tuples) limits the work to some entries; the others are left at 0.
    """
    _require_float64(x, "x")
    grad = np.zeros_like(x)                                    # same shape as x
    it = np.ndindex(*x.shape) if indices is None else indices
    for ix in it:
        fp, fm = _on_either_side(f, x, ix, h)
        grad[ix] = (fp - fm) / (2 * h)
    return grad


def eval_numerical_gradient_array(f: Callable[[], np.ndarray], x: np.ndarray, dout: np.ndarray,
                                  h: float = 1e-5) -> np.ndarray:
    """Gradient of the scalar sum(f() * dout) with respect to x, for an op whose output is an array.

    This is what a backward(dout, cache) must return: the upstream gradient dout contracted with the Jacobian.
    """
    dout = np.asarray(dout, dtype=np.float64)
    return eval_numerical_gradient(lambda: float(np.sum(np.asarray(f()) * dout)), x, h)


class EntryCheck(NamedTuple):
    index: tuple          # which entry
    analytic: float
    numeric: float        # central difference with the step that was finally used
    step: float           # h, or a smaller step used to step off a kink
    kink: bool            # a slope jump lies within ±step: the central difference is meaningless here
    one_sided: tuple      # (left slope, right slope) at the final step


class ParamCheck(NamedTuple):
    name: str
    rel_error: float      # normwise, over the entries compared (those without a kink)
    max_entry_error: float  # elementwise worst of the same entries (diagnostic)
    checked: int          # entries compared
    kinks: int            # entries skipped because the finite difference stepped across a kink
    kink_matches: int     # of those, how many analytic values equal one of the one-sided slopes
    worst: EntryCheck | None

    @property
    def ok(self) -> bool:
        """Passed: at least one entry was compared, and the error is below the tolerance."""
        return self.checked > 0 and self.rel_error < SMOOTH_TOLERANCE


def check_entry(f: Callable[[], float], x: np.ndarray, ix: tuple, analytic: float, h: float = 1e-5,
                kink_tol: float = 1e-4, min_step: float = 1e-8, f0: float | None = None) -> EntryCheck:
    """Compare one analytic derivative with finite differences, guarding against kinks.

    One-sided slopes right = (f(x+h) − f(x))/h and left = (f(x) − f(x−h))/h differ by about h·f'' for a smooth
    f. If they differ by more than kink_tol·(1 + |left| + |right|), something non-smooth lies within ±h: the
    step is shrunk tenfold (a kink that is merely nearby drops out) until it passes or min_step is reached.
    f0, the unchanged f(x), may be passed in when many entries of one array are checked.
    """
    step = h
    f0 = float(f()) if f0 is None else f0
    while True:
        fp, fm = _on_either_side(f, x, ix, step)
        right, left = (fp - f0) / step, (f0 - fm) / step
        numeric = (fp - fm) / (2 * step)
        kink = abs(right - left) > kink_tol * (1 + abs(left) + abs(right))
        if not kink or step / 10 < min_step:
            return EntryCheck(ix, float(analytic), numeric, step, kink, (left, right))
        step /= 10


def _sample_indices(shape: tuple, max_entries: int | None, rng: np.random.Generator) -> list[tuple]:
    size = int(np.prod(shape))
    if max_entries is None or size <= max_entries:
        return list(np.ndindex(*shape))
    flat = rng.choice(size, size=max_entries, replace=False)
    return [tuple(int(i) for i in np.unravel_index(k, shape)) for k in flat]


def check_param(name: str, f: Callable[[], float], x: np.ndarray, analytic: np.ndarray, h: float = 1e-5,
                max_entries: int | None = None, rng: np.random.Generator | None = None,
                kink_tol: float = 1e-4) -> ParamCheck:
    """Check every entry of one array (or a random sample of max_entries of them)."""
    _require_float64(x, name)
    analytic = np.asarray(analytic, dtype=np.float64)
    if analytic.shape != x.shape:
        raise ValueError(f"gradient for {name!r} has shape {analytic.shape}, its parameter has {x.shape}")
    rng = np.random.default_rng(0) if rng is None else rng
    entries, kinks, matches = [], 0, 0
    f0 = float(f())                                           # f at the unchanged point, shared by every entry
    for ix in _sample_indices(x.shape, max_entries, rng):
        e = check_entry(f, x, ix, analytic[ix], h=h, kink_tol=kink_tol, f0=f0)
        if e.kink:
            kinks += 1
            left, right = e.one_sided
            scale = max(abs(left), abs(right), 1e-8)
            if min(abs(e.analytic - left), abs(e.analytic - right)) <= 1e-5 * scale:
                matches += 1
            continue
        entries.append(e)
    a = np.array([e.analytic for e in entries])
    n = np.array([e.numeric for e in entries])
    per_entry = [max_entry_error(e.analytic, e.numeric) for e in entries]
    worst = entries[int(np.argmax(per_entry))] if entries else None
    return ParamCheck(name, rel_error(a, n), max(per_entry, default=0.0), len(entries), kinks, matches, worst)


def check_gradients(loss_and_grads: Callable[[Mapping[str, np.ndarray]], tuple], params: dict[str, np.ndarray],
                    h: float = 1e-5, max_entries: int | None = 60, rng: np.random.Generator | None = None,
                    names=None, kink_tol: float = 1e-4) -> dict[str, ParamCheck]:
    """Per-parameter check of a model: loss_and_grads(params) -> (loss, grads, ...).

    For every parameter name (or `names`), up to max_entries entries are sampled and compared with central
    differences of the loss. Returns {name: ParamCheck}; see `format_report` to print it.
    """
    out = loss_and_grads(params)
    grads = out[1]
    missing = set(params) - set(grads)
    if missing:
        raise KeyError(f"loss_and_grads returned no gradient for {sorted(missing)}")
    rng = np.random.default_rng(0) if rng is None else rng
    loss = lambda: float(loss_and_grads(params)[0])
    report = {}
    for name in (params if names is None else names):
        report[name] = check_param(name, loss, params[name], grads[name], h=h, max_entries=max_entries,
                                   rng=rng, kink_tol=kink_tol)
    return report


def format_report(report: Mapping[str, ParamCheck], tolerance: float = SMOOTH_TOLERANCE) -> str:
    """One line per parameter: the error next to the size it should have, kinks, and PASS/FAIL."""
    lines = []
    width = max((len(n) for n in report), default=4)
    for name, r in report.items():
        verdict = "NOTHING CHECKED" if r.checked == 0 else "ok" if r.rel_error < tolerance else "WRONG"
        kink = f", {r.kinks} kink(s) crossed ({r.kink_matches} match a one-sided slope)" if r.kinks else ""
        lines.append(f"  {name:<{width}}  rel error {r.rel_error:.2e}  (should be < {tolerance:.0e})  "
                     f"worst entry {r.max_entry_error:.1e}  over {r.checked} entries{kink}  {verdict}")
    passed = bool(report) and all(r.checked > 0 and r.rel_error < tolerance for r in report.values())
    lines.append("PASS" if passed else "FAIL")
    return "\n".join(lines)


def check_op(forward: Callable, backward: Callable, inputs: Mapping[str, np.ndarray], wrt, rng=None,
             h: float = 1e-5, **kwargs) -> dict[str, float]:
    """Check an op pair against finite differences with a random upstream gradient.

    `inputs` are forward's positional arguments in order, by name; `kwargs` are passed through unchanged.
    `wrt` names the inputs whose gradients `backward(dout, cache)` returns, in that order (a single array
    counts as a 1-tuple; a returned None is skipped). Returns {name: rel_error}.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    args = dict(inputs)
    out, cache = forward(*args.values(), **kwargs)
    dout = rng.standard_normal(np.shape(out))                 # random upstream gradient, same shape as output
    grads = backward(dout, cache)
    if not isinstance(grads, tuple):
        grads = (grads,)
    if len(grads) != len(wrt):
        raise ValueError(f"backward returned {len(grads)} gradient(s) but wrt names {len(wrt)}: {list(wrt)}")
    errors = {}
    for name, g in zip(wrt, grads):
        if g is None:
            continue
        x = args[name]
        num = eval_numerical_gradient_array(lambda: forward(*args.values(), **kwargs)[0], x, dout, h)
        errors[name] = rel_error(g, num)
    return errors
