"""Gradient-check exercises: you write a backward pass, the grader checks it.

An exercise is a stub file in tutorials/exercises/ that starts by saying which exercise it is,

    EXERCISE = "softmax_attention_backward"

gives the forward pass in full, and leaves the backward functions as `raise NotImplementedError("fill me in")`.
Fill them in, then run

    python -m memnet_np check tutorials/exercises/01_softmax_attention_backward.py

`grade` loads the file, calls your functions on a few random float64 cases (seeded, so every run is the same;
non-symmetric shapes; memories with padded slots) and compares every gradient you return

  (a) with central finite differences of the library's forward pass  (memnet_np.gradcheck.check_op), and
  (b) with the library's own backward in memnet_np.ops,

printing each relative error next to the size it should have, then PASS or FAIL. A wrong gradient is named, with
the entry where it is furthest off and, where it can tell, what kind of mistake it looks like (all zeros, wrong
sign, off by a constant factor, non-zero on padded slots). An exception in your code is reported with your line
number. A file that cannot be graded at all (missing, a syntax error, no EXERCISE line, a missing function) raises
`ExerciseError` instead: the CLI prints its one-line message and exits with status 2.

Adding an exercise means adding an `Exercise` to `EXERCISES`: the functions the learner writes (`Target`s), how
to call each from an upstream gradient and the library forward's cache, and a case generator.
"""
from __future__ import annotations

import itertools
import os
import re
import sys
import traceback
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, TextIO

import numpy as np

from memnet_np import gradcheck as gc
from memnet_np import ops

FD_TOLERANCE = gc.SMOOTH_TOLERANCE   # 1e-7: a correct gradient beats this against central differences
REFERENCE_TOLERANCE = 1e-9           # two exact formulas for the same gradient agree to round-off (~1e-15)
FD_STEP = 1e-5                       # h of the central differences
SEED = 0                             # the cases are drawn from default_rng(SEED): every run grades the same cases


class ExerciseError(Exception):
    """The file cannot be graded at all: missing, unreadable, a syntax error, no or an unknown EXERCISE,
    or a function the exercise asks for is not defined. (A wrong or unfinished gradient is a FAIL, not this.)"""


# ----------------------------------------------------------------------------------------------------------------
# What an exercise is


@dataclass(frozen=True)
class Target:
    """One function the learner writes, and how to check it.

    The grader runs the library `forward(*inputs)` on a case, draws a random upstream gradient `dout` of the
    output's shape, calls the learner's function with `arguments(dout, cache)` (in that order, as copies) and
    compares what it returns, named `grads`, with the gradients of the forward inputs named `wrt`.
    """
    function: str                                   # the learner's function, e.g. "attention_read_backward"
    grads: tuple                                    # names of what it returns, in order: ("du", "dm", "dc")
    wrt: tuple                                      # the forward inputs they are gradients of: ("u", "m", "c")
    forward: Callable                               # library forward(*inputs) -> (out, cache)
    inputs: Callable[[dict], dict]                  # case -> forward's positional inputs, by name
    arguments: Callable[[np.ndarray, Any], dict]    # (dout, cache) -> the learner's arguments, by name
    reference: Callable[[np.ndarray, Any], tuple]   # (dout, cache) -> the library's gradients, in `grads` order
    slot_grads: frozenset = frozenset()             # grads whose axis 1 runs over memory slots (mask-checked)


@dataclass(frozen=True)
class Exercise:
    name: str                                       # what the stub's EXERCISE line says
    title: str
    stub: str                                       # the file a learner fills in (relative to the repository)
    solution: str                                   # a reference solution (same)
    targets: tuple                                  # Target per function the learner writes, in grading order
    make_cases: Callable[[np.random.Generator], list]   # rng -> list of case dicts (each with a "mask")
    describe_case: Callable[[dict], str]            # case -> "(N, M, d) = (2, 5, 3)"
    seed: int = SEED

    @property
    def functions(self) -> tuple:
        return tuple(t.function for t in self.targets)

    def check(self, module, stream: Optional[TextIO] = None, seed: Optional[int] = None) -> bool:
        """Grade the learner's functions in `module` (already loaded): print the report, return PASS/FAIL."""
        return _check(self, module, sys.stdout if stream is None else stream, self.seed if seed is None else seed)


# ----------------------------------------------------------------------------------------------------------------
# Exercise 1: the backward of soft attention,  p = masked softmax(uᵀ m_i),  o = Σ_i p_i c_i


def _attention_cases(rng: np.random.Generator) -> list:
    """Three cases, all float64, every row with at least one real slot and values drawn at random.

    Shapes are non-square so a transposed gradient shows as a wrong shape, except case 2 (M == d) where it can
    only show in the values. Padded slots hold random m and c (not zeros): they must still get zero gradient.
    """
    masks = [
        np.array([[1, 1, 1, 0, 0],
                  [1, 1, 1, 1, 1]], bool),               # (N, M) = (2, 5): padding at the end of row 0
        np.array([[1, 0, 1, 1],
                  [1, 1, 1, 1],
                  [0, 1, 1, 0]], bool),                  # (3, 4): holes anywhere, M == d
        np.array([[1, 0, 0, 0, 0, 0],
                  [1, 1, 1, 1, 1, 1],
                  [1, 1, 1, 1, 0, 0],
                  [0, 0, 1, 1, 0, 0]], bool),            # (4, 6): a row with one real slot (p = 1, ds = 0)
    ]
    dims = [3, 4, 2]
    cases = []
    for mask, d in zip(masks, dims):
        N, M = mask.shape
        cases.append(dict(
            mask=mask,
            u=rng.standard_normal((N, d)),                # (N, d)
            m=rng.standard_normal((N, M, d)),             # (N, M, d)
            c=rng.standard_normal((N, M, d)),             # (N, M, d)
            s=1.5 * rng.standard_normal((N, M)),          # (N, M) scores for checking the softmax on its own
        ))
    return cases


def _describe_attention_case(case: dict) -> str:
    N, M, d = case["m"].shape
    padded = int((~case["mask"]).sum())
    return f"(N, M, d) = ({N}, {M}, {d}), {padded} padded slot{'s' if padded != 1 else ''}"


_SOFTMAX_BACKWARD = Target(
    function="softmax_backward",
    grads=("ds",),
    wrt=("s",),
    forward=ops.masked_softmax_forward,
    inputs=lambda case: {"s": case["s"], "mask": case["mask"]},
    arguments=lambda dp, cache: {"dp": dp, "p": cache.p},
    reference=lambda dp, cache: (ops.masked_softmax_backward(dp, cache),),
    slot_grads=frozenset({"ds"}),
)

_ATTENTION_READ_BACKWARD = Target(
    function="attention_read_backward",
    grads=("du", "dm", "dc"),
    wrt=("u", "m", "c"),
    forward=ops.attention_read_forward,
    inputs=lambda case: {"u": case["u"], "m": case["m"], "c": case["c"], "mask": case["mask"]},
    arguments=lambda do, cache: {"do": do, "u": cache.u, "m": cache.m, "c": cache.c, "p": cache.p},
    reference=lambda do, cache: ops.attention_read_backward(do, cache),
    slot_grads=frozenset({"dm", "dc"}),
)

EXERCISES: dict = {
    "softmax_attention_backward": Exercise(
        name="softmax_attention_backward",
        title="the backward pass of soft attention (a masked softmax, then a weighted sum of memories)",
        stub="tutorials/exercises/01_softmax_attention_backward.py",
        solution="tutorials/exercises/solutions/01_softmax_attention_backward.py",
        targets=(_SOFTMAX_BACKWARD, _ATTENTION_READ_BACKWARD),
        make_cases=_attention_cases,
        describe_case=_describe_attention_case,
    ),
}


# ----------------------------------------------------------------------------------------------------------------
# Loading a learner's file


_loads = itertools.count()


def load_exercise_file(path) -> types.ModuleType:
    """Run the file at `path` as a fresh module (a new, unique module name on every call) and return it.

    Nothing is written next to the file (no __pycache__). Any problem becomes an ExerciseError naming the file
    and line.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ExerciseError(f"no such file: {path} (the exercise stubs are in tutorials/exercises/)")
    if not os.path.isfile(path):
        raise ExerciseError(f"{path} is not a file; give the path of the exercise's .py file")
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ExerciseError(f"cannot read {path}: {e}") from None
    full = os.path.abspath(path)
    try:
        code = compile(source, full, "exec")
    except SyntaxError as e:                      # also IndentationError, TabError
        text = f": {e.text.strip()}" if e.text and e.text.strip() else ""
        raise ExerciseError(f"{path}, line {e.lineno}: {type(e).__name__}: {e.msg}{text}") from None
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    name = f"memnet_exercise_{next(_loads)}_{stem}"
    module = types.ModuleType(name)
    module.__file__ = full
    sys.modules[name] = module                   # for code that looks itself up while loading (dataclasses do)
    try:
        exec(code, module.__dict__)
    except (Exception, SystemExit) as e:
        raise ExerciseError(f"{path} raised {type(e).__name__} while loading{_where(e, full)}: "
                            f"{_first_line(e)}") from None
    finally:
        sys.modules.pop(name, None)
    return module


def exercise_for(module) -> Exercise:
    """The Exercise a loaded module declares with its EXERCISE line, after checking it defines every function."""
    filename = getattr(module, "__file__", None)
    where = _display_path(filename) if filename else getattr(module, "__name__", "the module")
    known = ", ".join(sorted(EXERCISES))
    if not hasattr(module, "EXERCISE"):
        raise ExerciseError(f"{where} does not say which exercise it is: add a line "
                            f'EXERCISE = "<name>" at the top (known exercises: {known})')
    name = module.EXERCISE
    if not isinstance(name, str) or name not in EXERCISES:
        raise ExerciseError(f"{where}: unknown exercise EXERCISE = {name!r}; known exercises: {known}")
    ex = EXERCISES[name]
    missing = [f for f in ex.functions if not callable(getattr(module, f, None))]
    if missing:
        raise ExerciseError(f"{where} does not define {', '.join(missing)}, which exercise {name!r} asks for "
                            f"(start from the stub {ex.stub})")
    return ex


def grade_module(module, stream: Optional[TextIO] = None, seed: Optional[int] = None) -> bool:
    """Grade an already-loaded module (or any object with EXERCISE and the functions as attributes)."""
    return exercise_for(module).check(module, stream, seed)


def grade(path, stream: Optional[TextIO] = None, seed: Optional[int] = None) -> bool:
    """Grade the exercise file at `path`: print the report to `stream` (default stdout), return True on PASS.

    Raises ExerciseError when the file cannot be graded at all (the CLI's exit status 2).
    """
    module = load_exercise_file(path)
    return exercise_for(module).check(module, stream, seed)


# ----------------------------------------------------------------------------------------------------------------
# Running and comparing


class _LearnerFailure(Exception):
    """The learner's function could not be graded: it raised, or returned something that is not the gradients."""

    def __init__(self, message: str, not_implemented: bool = False):
        super().__init__(message)
        self.not_implemented = not_implemented


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else "(no message)"


def _learner_frame(e: BaseException, filename: Optional[str]):
    """(line, function) of the innermost traceback frame in the learner's file, or None."""
    if not filename:
        return None
    frames = [fr for fr in traceback.extract_tb(e.__traceback__) if fr.filename == filename]
    return (frames[-1].lineno, frames[-1].name) if frames else None


def _where(e: BaseException, filename: Optional[str]) -> str:
    fr = _learner_frame(e, filename)
    if fr is None:
        return ""
    line, func = fr
    return f" (your line {line})" if func == "<module>" else f" (your line {line}, in {func})"


def _shape(shape) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _call_learner(fn: Callable, target: Target, dout, cache, filename, expected_shapes: dict):
    """Call the learner's function on copies of its arguments; return ({grad: array or None}, {grad: problem})."""
    named = target.arguments(dout, cache)
    copies = {k: np.array(v, copy=True) for k, v in named.items()}
    try:
        with np.errstate(all="ignore"):           # a 0/0 shows up below as "contains NaN", the same everywhere
            result = fn(*copies.values())
    except NotImplementedError as e:
        fr = _learner_frame(e, filename)
        if fr is not None and fr[1] not in (target.function, "<module>"):
            raise _LearnerFailure(f"not implemented yet: {fr[1]} (your line {fr[0]}), which {target.function} "
                                  "calls", not_implemented=True) from None
        raise _LearnerFailure(f"not implemented yet: {target.function}", not_implemented=True) from None
    except Exception as e:
        raise _LearnerFailure(f"{target.function} raised {type(e).__name__}{_where(e, filename)}: "
                              f"{_first_line(e)}") from None

    mutated = [k for k in named if not np.array_equal(copies[k], named[k], equal_nan=True)]
    if mutated:
        raise _LearnerFailure(f"{target.function} changed its argument{'s' if len(mutated) > 1 else ''} "
                              f"{', '.join(mutated)} in place; a backward must leave its inputs as they are "
                              f"(write `x = x - ...`, not `x -= ...`)")

    n = len(target.grads)
    wanted = f"({', '.join(target.grads)})" if n > 1 else target.grads[0]
    if result is None:
        raise _LearnerFailure(f"{target.function} returned None: did you forget `return {wanted}`?")
    if n == 1:
        result = result[0] if isinstance(result, tuple) and len(result) == 1 else result
        values = (result,)
    elif not isinstance(result, (tuple, list)) or len(result) != n:
        got = f"{len(result)} values" if isinstance(result, (tuple, list)) else f"one {type(result).__name__}"
        raise _LearnerFailure(f"{target.function} returned {got}; it must return {n}: {wanted}")
    else:
        values = tuple(result)

    grads, problems = {}, {}
    for gname, wname, value in zip(target.grads, target.wrt, values):
        want = expected_shapes[wname]
        try:
            g = np.asarray(value, dtype=np.float64)
        except Exception:
            grads[gname] = None
            problems[gname] = f"is a {type(value).__name__}, not an array of numbers"
            continue
        if g.shape != want:
            hint = " (transposed?)" if sorted(g.shape) == sorted(want) and g.ndim > 1 else ""
            grads[gname], problems[gname] = None, f"has shape {_shape(g.shape)}, not {_shape(want)} like {wname}{hint}"
        elif not np.all(np.isfinite(g)):
            grads[gname], problems[gname] = None, "contains NaN or inf"
        else:
            grads[gname] = g
    return grads, problems


def _diagnose(yours: np.ndarray, expected: np.ndarray, mask: Optional[np.ndarray]) -> list:
    """A few words on what kind of mistake a wrong gradient looks like, where one is recognisable."""
    notes = []
    if not np.any(yours):
        notes.append("yours is all zeros")
    elif gc.rel_error(yours, -expected) < FD_TOLERANCE:
        notes.append("yours has the wrong sign")
    elif np.any(expected):
        k = float(np.vdot(yours, expected) / np.vdot(expected, expected))   # best scale: yours ≈ k · expected
        if gc.rel_error(yours, k * expected) < FD_TOLERANCE:
            notes.append(f"yours is {k:.3g} times the right one")
    if mask is not None:
        padded = ~np.broadcast_to(mask.reshape(mask.shape + (1,) * (yours.ndim - 2)), yours.shape)
        if np.any(yours[padded] != 0) and not np.any(expected[padded]):
            notes.append("yours is non-zero on padded memory slots; they take no part in the forward pass, "
                         "so their gradient is exactly 0 (does a factor p_i go missing?)")
    return notes


@dataclass
class _Result:
    """The worst case seen so far for one gradient."""
    label: str
    fd: float = 0.0
    ref: float = 0.0
    ref_case: int = -1
    yours: Optional[np.ndarray] = None
    expected: Optional[np.ndarray] = None
    mask: Optional[np.ndarray] = None
    problem: Optional[str] = None
    problem_case: int = -1

    @property
    def ok(self) -> bool:
        return self.problem is None and self.fd < FD_TOLERANCE and self.ref < REFERENCE_TOLERANCE


@dataclass
class _FunctionResult:
    target: Target
    grads: dict = field(default_factory=dict)   # grad name -> _Result
    failure: Optional[str] = None               # it raised / returned the wrong thing
    not_implemented: bool = False


def _check_target(target: Target, fn: Callable, cases: list, rng: np.random.Generator, filename) -> _FunctionResult:
    res = _FunctionResult(target, {g: _Result(f"{target.function}: {g}") for g in target.grads})
    for k, case in enumerate(cases):
        inputs = target.inputs(case)
        shapes = {w: np.shape(inputs[w]) for w in target.wrt}
        seen = {}

        def backward(dout, cache):
            grads, problems = _call_learner(fn, target, dout, cache, filename, shapes)
            seen.update(dout=dout, cache=cache, grads=grads, problems=problems)
            return tuple(grads[g] for g in target.grads)              # None is skipped by check_op

        try:
            fd = gc.check_op(target.forward, backward, inputs, wrt=list(target.wrt), rng=rng, h=FD_STEP)
        except _LearnerFailure as e:
            res.failure, res.not_implemented = str(e), e.not_implemented
            return res
        reference = target.reference(seen["dout"], seen["cache"])
        for gname, wname, expected in zip(target.grads, target.wrt, reference):
            r = res.grads[gname]
            if gname in seen["problems"]:
                if r.problem is None:
                    r.problem, r.problem_case = seen["problems"][gname], k
                continue
            yours = seen["grads"][gname]
            r.fd = max(r.fd, fd[wname])
            err = gc.rel_error(yours, expected)
            if r.ref_case < 0 or err > r.ref:
                r.ref, r.ref_case, r.yours, r.expected = err, k, yours, np.asarray(expected)
                r.mask = case["mask"] if gname in target.slot_grads else None
    return res


def _display_path(path: str) -> str:
    """The path relative to the working directory when it lies below it, else as it is."""
    rel = os.path.relpath(path) if os.path.splitdrive(path)[0] == os.path.splitdrive(os.getcwd())[0] else path
    return path if rel.startswith(os.pardir) else rel


def _verdict(ok: bool) -> str:
    return "ok" if ok else "WRONG"


def _check(ex: Exercise, module, out: TextIO, seed: int) -> bool:
    say = lambda s="": print(s, file=out)
    rng = np.random.default_rng(seed)
    cases = ex.make_cases(rng)
    filename = getattr(module, "__file__", None)
    say(f"Exercise {ex.name}: {ex.title}")
    if filename:
        say(f"File: {_display_path(filename)}")
    say(f"{len(cases)} random float64 cases (seed {seed}):")
    for k, case in enumerate(cases):
        say(f"  case {k + 1}  {ex.describe_case(case)}")

    results = [_check_target(t, getattr(module, t.function), cases, rng, filename) for t in ex.targets]
    width = max(len(r.label) for fr in results for r in fr.grads.values())

    failed = [fr for fr in results if fr.failure]
    graded = [fr for fr in results if not fr.failure]
    say()
    for fr in failed:
        say(f"  {fr.failure}")
    if failed and graded:
        say()
    if graded:
        say(f"Your gradients against finite differences (central, h = {FD_STEP:.0e}), worst case:")
    for fr in graded:
        for r in fr.grads.values():
            if r.problem:
                say(f"  {r.label:<{width}}  {r.problem}  WRONG")
            else:
                say(f"  {r.label:<{width}}  rel error {r.fd:.1e}  (should be < {FD_TOLERANCE:.0e})  "
                    f"{_verdict(r.fd < FD_TOLERANCE)}")
    if any(r.problem is None for fr in graded for r in fr.grads.values()):
        say("Your gradients against the library's own backward (memnet_np.ops), same cases:")
        for fr in graded:
            for r in fr.grads.values():
                if r.problem is None:
                    say(f"  {r.label:<{width}}  rel error {r.ref:.1e}  (should be < {REFERENCE_TOLERANCE:.0e})  "
                        f"{_verdict(r.ref < REFERENCE_TOLERANCE)}")

    wrong = [r for fr in graded for r in fr.grads.values() if not r.ok]
    if wrong:
        say()
        say("What went wrong:")
        for r in wrong:
            k = r.problem_case if r.problem else r.ref_case
            say(f"  {r.label}: worst in case {k + 1} of {len(cases)}, {ex.describe_case(cases[k])}")
            if r.problem:
                say(f"      it {r.problem}")
                continue
            diff = np.abs(r.yours - r.expected)
            ix = np.unravel_index(int(np.argmax(diff)), diff.shape)
            say(f"      furthest off at {list(int(i) for i in ix)}: yours {r.yours[ix] + 0.0:.6g}, "
                f"expected {r.expected[ix] + 0.0:.6g}")
            for note in _diagnose(r.yours, r.expected, r.mask):
                say(f"      {note}")

    say()
    missing = [fr.target.function for fr in failed if fr.not_implemented]
    broken = [fr.target.function for fr in failed if not fr.not_implemented]
    if not (wrong or missing or broken):
        n = sum(len(fr.grads) for fr in results)
        say(f"PASS  (all {n} gradients right on all {len(cases)} cases)")
        return True
    if missing:
        say("Fill in the functions that still raise NotImplementedError, then check again.")
    why = []
    if missing:
        why.append(f"not implemented yet: {', '.join(missing)}")
    if broken:
        why.append(f"{', '.join(broken)}: see above")
    if wrong:
        why.append(f"wrong: {', '.join(r.label for r in wrong)}")
    say(f"FAIL  ({'; '.join(why)})")
    return False
