"""The grader behind `python -m memnet_np check`: load a learner's file, run it on seeded cases, compare every
gradient with finite differences and with the library's backward, and say what is wrong (see the package
docstring, memnet_np/exercises/__init__.py, for what a learner sees).
"""
from __future__ import annotations

import ast
import contextlib
import copy
import importlib
import inspect
import itertools
import os
import re
import signal
import sys
import textwrap
import threading
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
TIME_LIMIT = 10.0                    # seconds one call of a learner's function may take (a right one takes ms)


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
    learner_forward: Optional[str] = None           # a forward in the learner's file, run on copies of the same
    #                                                 inputs; its output must match the library's, and its cache
    #                                                 (not the library's) is what `arguments` gets
    forbidden: tuple = ()                           # names of memnet_np.ops functions the learner may not call
    notes: Optional[Callable] = None                # (grad, yours, expected, dout, library cache, case) -> [str]:
    #                                                 what a wrong gradient looks like, beyond the generic notes


def forward_backward_target(name: str, dout: str, forward: Callable, reference: Callable, wrt: tuple,
                            inputs: Optional[tuple] = None, **more) -> Target:
    """The Target of a pair the learner's file holds, `<name>_forward(*inputs) -> (out, cache)` given in the stub and
    `<name>_backward(<dout>, cache)` to write, returning d<w> for each w in `wrt`; checked against the library's
    `forward` and `reference` on the cache the learner's own forward makes. `inputs` (the case's keys, in the
    forward's order) defaults to `wrt`; `more` are the other Target fields (notes, forbidden)."""
    keys = wrt if inputs is None else inputs
    return Target(function=f"{name}_backward", grads=tuple(f"d{w}" for w in wrt), wrt=wrt, forward=forward,
                  inputs=lambda case: {k: case[k] for k in keys}, arguments=lambda d, cache: {dout: d, "cache": cache},
                  reference=reference, learner_forward=f"{name}_forward", **more)


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
    shared: tuple = ()                              # (labels, where to look): when exactly the gradients `labels`
    #                                                 are wrong, the step of the backward they all come from

    @property
    def functions(self) -> tuple:
        """The functions the learner writes."""
        return tuple(t.function for t in self.targets)

    @property
    def required(self) -> tuple:
        """Every function the file must define: the ones the learner writes and the forwards they are fed by."""
        names = self.functions + tuple(t.learner_forward for t in self.targets if t.learner_forward)
        return tuple(dict.fromkeys(names))

    def check(self, module, stream: Optional[TextIO] = None, seed: Optional[int] = None,
              time_limit: Optional[float] = None) -> bool:
        """Grade the learner's functions in `module` (already loaded): print the report, return PASS/FAIL."""
        return _check(self, module, sys.stdout if stream is None else stream, self.seed if seed is None else seed,
                      TIME_LIMIT if time_limit is None else time_limit)



EXERCISES: dict = {}                  # name -> Exercise, filled by register()


def register(exercise: "Exercise") -> "Exercise":
    """Add an exercise to the registry (each exercise module calls this once, at import)."""
    if exercise.name in EXERCISES:
        raise ValueError(f"two exercises named {exercise.name!r}")
    EXERCISES[exercise.name] = exercise
    return exercise


# ----------------------------------------------------------------------------------------------------------------
# Loading a learner's file


_loads = itertools.count()


def load_exercise_file(path, time_limit: Optional[float] = None) -> types.ModuleType:
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
    limit = TIME_LIMIT if time_limit is None else time_limit
    try:
        with _time_limit(limit):
            exec(code, module.__dict__)
    except _OutOfTime as e:
        raise ExerciseError(f"{path} was stopped after {limit:g} s while loading{_where(e, full)}: an endless "
                            "loop at the top level of the file?") from None
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
    missing = [f for f in ex.required if not callable(getattr(module, f, None))]
    if missing:
        raise ExerciseError(f"{where} does not define {', '.join(missing)}, which exercise {name!r} asks for "
                            f"(start from the stub {ex.stub})")
    return ex


def grade_module(module, stream: Optional[TextIO] = None, seed: Optional[int] = None,
                 time_limit: Optional[float] = None) -> bool:
    """Grade an already-loaded module (or any object with EXERCISE and the functions as attributes)."""
    return exercise_for(module).check(module, stream, seed, time_limit)


def grade(path, stream: Optional[TextIO] = None, seed: Optional[int] = None,
          time_limit: Optional[float] = None) -> bool:
    """Grade the exercise file at `path`: print the report to `stream` (default stdout), return True on PASS.

    Each call of a learner's function (and loading the file) may take `time_limit` seconds (default TIME_LIMIT);
    one that takes longer is stopped and named, with the line it was at. Raises ExerciseError when the file
    cannot be graded at all (the CLI's exit status 2).
    """
    module = load_exercise_file(path, time_limit)
    return exercise_for(module).check(module, stream, seed, time_limit)


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


def _assigned_at(frame, var: str, before: int) -> Optional[int]:
    """The last line of frame's function before line `before` that assigns `var` (`var = ...`, `a, var = ...`)."""
    try:
        lines, start = inspect.getsourcelines(frame.f_code)
    except (OSError, TypeError):
        return None
    pattern = re.compile(rf"^\s*(\w+\s*,\s*)*{re.escape(var)}\s*(,\s*\w+\s*)*([-+*/@]?=)(?!=)")
    hits = [start + i for i, text in enumerate(lines) if start + i < before and pattern.match(text)]
    return hits[-1] if hits else None


def _wrong_shape(e: BaseException, filename: Optional[str]) -> str:
    """When the learner's code failed on an array of the wrong shape, which array, and where it was made.

    By the naming convention a gradient dX has the shape of X. The learner's frames of the traceback, outermost
    first, are searched for a dX whose X is there too with another shape; the function that made dX (the one
    where it is not an argument) is the one to blame, which need not be the one that raised (a right
    softmax_backward fails on the wrong-shaped dp its caller hands it).
    """
    if not filename:
        return ""
    tbs = []
    tb = e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            tbs.append(tb)
        tb = tb.tb_next
    for tb in reversed(tbs):                                   # the innermost frame first: what it was given
        frame = tb.tb_frame
        names = dict(frame.f_locals)
        for var, value in names.items():
            base = names.get(var[1:]) if var.startswith("d") else None
            if not (isinstance(value, np.ndarray) and isinstance(base, np.ndarray) and value.shape != base.shape):
                continue
            maker, line, made_as = frame, tb.tb_lineno, var    # follow the array out to where it was made
            args = frame.f_code.co_varnames[:frame.f_code.co_argcount]
            for outer in reversed(tbs[:tbs.index(tb)]):
                if made_as not in args:
                    break
                held = [k for k, v in outer.tb_frame.f_locals.items() if v is value]
                if not held:
                    break
                maker, line, made_as = outer.tb_frame, outer.tb_lineno, held[0]
                args = maker.f_code.co_varnames[:maker.f_code.co_argcount]
            at = _assigned_at(maker, made_as, line)
            made = f" ({made_as} is made at your line {at})" if at else ""
            wrong = f"{_shape(value.shape)}, not {_shape(base.shape)} like {var[1:]}"
            if maker is frame:
                return f"\n      {var} has shape {wrong}{made}"
            return (f"\n      the mistake is in {maker.f_code.co_name}, not in {frame.f_code.co_name}: it passes "
                    f"{frame.f_code.co_name} a {var} of shape {wrong}{made}")
    return ""


def _shape(shape) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _copy(value):
    """A copy the learner may scribble on: arrays copied, NamedTuples / tuples / lists / dicts copied inside."""
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(_copy(v) for v in value))
    if isinstance(value, (tuple, list)):
        return type(value)(_copy(v) for v in value)
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, (np.ndarray, np.generic, int, float)):
        return np.array(value, copy=True)
    return copy.deepcopy(value)


def _changed(name: str, before, after) -> list:
    """Names of the parts of an argument that differ between the grader's copy and the learner's, e.g. cache.p."""
    if isinstance(before, tuple) and hasattr(before, "_fields"):
        return [c for f, b, a in zip(before._fields, before, after) for c in _changed(f"{name}.{f}", b, a)]
    if isinstance(before, (tuple, list)):
        return [c for i, (b, a) in enumerate(zip(before, after)) for c in _changed(f"{name}[{i}]", b, a)]
    if isinstance(before, dict):
        return [c for k in before for c in _changed(f"{name}[{k!r}]", before[k], after.get(k))]
    if isinstance(before, (np.ndarray, np.generic)):
        same = isinstance(after, (np.ndarray, np.generic)) and np.shape(after) == np.shape(before) and \
            np.array_equal(before, after, equal_nan=before.dtype.kind in "fc")
        return [] if same else [name]
    try:
        return [] if bool(before == after) else [name]
    except Exception:
        return [name]


def _run(fn: Callable, name: str, args: dict, filename, limit: float):
    """fn(*args), with whatever it raises turned into a _LearnerFailure that names `name` and the learner's line;
    stopped after `limit` seconds."""
    try:
        with np.errstate(all="ignore"), _time_limit(limit):   # a 0/0 shows up below as "contains NaN"
            return fn(*args.values())
    except _OutOfTime as e:
        raise _LearnerFailure(f"{name} was stopped after {limit:g} s{_where(e, filename)}; a right answer takes "
                              "milliseconds: an endless loop?") from None
    except NotImplementedError as e:
        fr = _learner_frame(e, filename)
        if fr is not None and fr[1] not in (name, "<module>"):
            raise _LearnerFailure(f"not implemented yet: {fr[1]} (your line {fr[0]}), which {name} "
                                  "calls", not_implemented=True) from None
        raise _LearnerFailure(f"not implemented yet: {name}", not_implemented=True) from None
    except Exception as e:
        raise _LearnerFailure(f"{name} raised {type(e).__name__}{_where(e, filename)}: "
                              f"{_first_line(e)}{_wrong_shape(e, filename)}") from None


class _OutOfTime(BaseException):
    """Raised inside the learner's code when its time is up (a BaseException: `except Exception` lets it pass)."""


@contextlib.contextmanager
def _time_limit(seconds: float):
    """Stop the code inside after `seconds` with _OutOfTime, raised where it is at that moment.

    A timer signal (SIGALRM) does it, so it works where that exists and only in the main thread; elsewhere the
    code runs unlimited. The alarm repeats every 0.1 s until the code is out, in case one is caught, and is
    never raised into the grader's own code.
    """
    if not seconds or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        if frame is not None and frame.f_code.co_filename != __file__:
            raise _OutOfTime()

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.1)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class _ForbiddenCall(Exception):
    """Raised by a forbidden memnet_np.ops function while the learner's function runs."""


@contextlib.contextmanager
def _forbidding(names: tuple, module, filename):
    """While inside, the memnet_np.ops functions `names` raise instead of computing, and record who called them.

    Both `ops.<name>` and any name in the learner's module bound to the same function (`from memnet_np.ops import
    attention_read_backward`) are replaced, and put back afterwards. Yields the list of (name, learner's line) of
    the calls made: it is filled even when the learner's code swallows the exception.
    """
    calls = []
    if not names:
        yield calls
        return

    def owner(name):                      # "gru_backward" is ops.gru_backward; "dmn.x" is memnet_np.dmn.x
        mod, _, attr = name.rpartition(".")
        return (importlib.import_module(f"memnet_np.{mod}") if mod else ops), attr

    def refuse(name):
        def forbidden(*args, **kwargs):
            frames = [fr for fr in traceback.extract_stack() if filename and fr.filename == filename]
            calls.append((name, frames[-1].lineno if frames else None))
            raise _ForbiddenCall(f"{_qualified(name)} may not be used in this exercise")
        return forbidden

    originals = {name: getattr(*owner(name)) for name in names}
    namespace = vars(module) if hasattr(module, "__dict__") else {}
    aliases = {key: name for key, value in list(namespace.items()) for name, f in originals.items() if value is f}
    try:
        for name in names:
            setattr(*owner(name), refuse(name))
        for key, name in aliases.items():
            namespace[key] = refuse(name)
        yield calls
    finally:
        for name, f in originals.items():
            setattr(*owner(name), f)
        for key, name in aliases.items():
            namespace[key] = originals[name]


def _qualified(name: str) -> str:
    """How a forbidden function is named to the learner: ops.<name>, or <module>.<name> for other modules."""
    return name if "." in name else f"ops.{name}"


def _call_learner(fn: Callable, target: Target, dout, cache, filename, expected_shapes: dict, module, limit):
    """Call the learner's function on copies of its arguments; return ({grad: array or None}, {grad: problem})."""
    named = target.arguments(dout, cache)
    copies = {k: _copy(v) for k, v in named.items()}
    failure = None
    with _forbidding(target.forbidden, module, filename) as calls:
        try:
            result = _run(fn, target.function, copies, filename, limit)
        except _LearnerFailure as e:
            failure = e
    if calls:
        used = list(dict.fromkeys(name for name, _ in calls))
        line = next((ln for _, ln in calls if ln is not None), None)
        where = f" (your line {line})" if line is not None else ""
        banned = [_qualified(n) for n in target.forbidden]
        banned = ", ".join(banned[:-1]) + " or " + banned[-1] if len(banned) > 1 else banned[0]
        raise _LearnerFailure(f"{target.function} uses {', '.join(_qualified(n) for n in used)}{where}; write it "
                              f"yourself (in this exercise {target.function} may not call {banned})")
    if failure is not None:
        raise failure

    mutated = [c for k in named for c in _changed(k, named[k], copies[k])]
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
        kind = np.asarray(value).dtype
        if g.shape != want:
            hint = " (transposed?)" if sorted(g.shape) == sorted(want) and g.ndim > 1 else ""
            other = [og for og, ow in zip(target.grads, target.wrt) if og != gname and expected_shapes[ow] == g.shape]
            if other:
                hint = f" ({other[0]}'s shape: returned in the wrong order? return {wanted})"
            grads[gname], problems[gname] = None, f"has shape {_shape(g.shape)}, not {_shape(want)} like {wname}{hint}"
        elif not np.all(np.isfinite(g)):
            grads[gname], problems[gname] = None, "contains NaN or inf"
        elif kind.kind == "f" and kind.itemsize < 8:
            grads[gname] = g                      # still compared, so the report can say how close it is
            problems[gname] = f"is {kind.name}, not float64"
        else:
            grads[gname] = g
    return grads, problems


def _diagnose(yours: np.ndarray, expected: np.ndarray, mask: Optional[np.ndarray]) -> list:
    """A few words on what kind of mistake a wrong gradient looks like, where one is recognisable."""
    notes = []
    err = gc.rel_error(yours, expected)
    if not np.any(yours):
        notes.append("yours is all zeros")
    elif err < 1e-4:                              # right but for the last digits: a precision problem, not maths
        digits = int(-np.log10(max(err, 1e-16)))
        if np.array_equal(yours, yours.astype(np.float32)):
            notes.append(f"yours is right to about {digits} digits only (rel error {err:.1e}) and every value "
                         "of it is a float32 number: it went through float32 (np.float32, dtype=np.float32, "
                         ".astype(...)); keep everything float64")
        else:
            notes.append(f"yours is right to about {digits} digits only (rel error {err:.1e}): that is float32 "
                         "round-off (is something it is made from float32?) or a tiny term missing")
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


def _dtype_notes(yours: np.ndarray, expected: np.ndarray) -> list:
    """What to say about a gradient that came back float32 (or float16), given its values as float64."""
    err = gc.rel_error(yours, expected)
    close = (f"apart from that it is right: rel error {err:.1e} against the library's, the round-off of fewer "
             f"digits" if err < 1e-4 else f"and it is wrong beyond that too: rel error {err:.1e}")
    return ["every input is float64, so something on the way made it lower precision (np.float32, "
            "dtype=np.float32, .astype(...)); keep everything float64", close]


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
    problem_notes: list = field(default_factory=list)
    swapped: Optional[str] = None                   # the other gradient yours is, while that one is yours
    context: Any = None                             # (dout, library cache, case) of the worst case, for notes

    @property
    def ok(self) -> bool:
        return self.problem is None and self.fd < FD_TOLERANCE and self.ref < REFERENCE_TOLERANCE


@dataclass
class _FunctionResult:
    target: Target
    grads: dict = field(default_factory=dict)   # grad name -> _Result
    failure: Optional[str] = None               # it raised / returned the wrong thing
    not_implemented: bool = False


def _learner_cache(module, target: Target, inputs: dict, filename, limit: float):
    """Run the learner's own forward on copies of the inputs; return its cache once its output matches ours."""
    name = target.learner_forward
    result = _run(getattr(module, name), name, {k: _copy(v) for k, v in inputs.items()}, filename, limit)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise _LearnerFailure(f"{name} must return (output, cache) as in the stub; it returned "
                              f"{type(result).__name__ if not isinstance(result, tuple) else f'{len(result)} values'}")
    yours, cache = result
    expected, _ = target.forward(*inputs.values())
    try:
        yours = np.asarray(yours, dtype=np.float64)
    except Exception:
        yours = None
    if yours is None or yours.shape != np.shape(expected) or not np.all(np.isfinite(yours)) or \
            gc.rel_error(yours, expected) > REFERENCE_TOLERANCE:
        how = (f"rel error {gc.rel_error(yours, expected):.1e}" if yours is not None and
               yours.shape == np.shape(expected) else "not even the same shape")
        raise _LearnerFailure(f"{name} no longer computes the forward pass: its output differs from the library's "
                              f"({how}); the checker differentiates the forward as the stub gives it, so put {name} "
                              "back as it was (adding fields to the cache is fine)")
    return cache


def _check_target(target: Target, module, cases: list, rng: np.random.Generator, filename,
                  limit: float) -> _FunctionResult:
    fn = getattr(module, target.function)
    res = _FunctionResult(target, {g: _Result(f"{target.function}: {g}") for g in target.grads})
    for k, case in enumerate(cases):
        inputs = target.inputs(case)
        shapes = {w: np.shape(inputs[w]) for w in target.wrt}
        seen = {}

        def backward(dout, cache):
            given = _learner_cache(module, target, inputs, filename, limit) if target.learner_forward else cache
            grads, problems = _call_learner(fn, target, dout, given, filename, shapes, module, limit)
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
                    if seen["grads"][gname] is not None:          # a float32 answer: say how close it is
                        r.problem_notes = _dtype_notes(seen["grads"][gname], np.asarray(expected))
                continue
            yours = seen["grads"][gname]
            swapped = [o for o, e in zip(target.grads, reference) if o != gname and seen["grads"].get(o) is not None
                       and np.shape(e) == yours.shape and gc.rel_error(yours, e) < REFERENCE_TOLERANCE
                       and gc.rel_error(seen["grads"][o], expected) < REFERENCE_TOLERANCE
                       and gc.rel_error(e, expected) >= FD_TOLERANCE]
            if swapped and r.swapped is None:
                r.swapped = swapped[0]
            r.fd = max(r.fd, fd[wname])
            err = gc.rel_error(yours, expected)
            if r.ref_case < 0 or err > r.ref:
                r.ref, r.ref_case, r.yours, r.expected = err, k, yours, np.asarray(expected)
                r.mask = case["mask"] if gname in target.slot_grads else None
                r.context = (seen["dout"], seen["cache"], case)
    return res


def _python_loops(fn: Callable, filename: Optional[str], others: tuple = ()) -> list:
    """(line, function, text) of every Python loop (for, while, comprehension) in fn and in the functions of the
    same file that it calls, directly or through one another, except those named in `others` (graded on their
    own). Functions whose source cannot be read are skipped."""
    if not filename:
        return []
    todo, seen, loops = [fn], set(), []
    while todo:
        f = todo.pop()
        code = getattr(f, "__code__", None)
        if code is None or code.co_filename != filename or code in seen:
            continue
        seen.add(code)
        try:
            lines, start = inspect.getsourcelines(f)
            tree = ast.parse(textwrap.dedent("".join(lines)))
        except (OSError, TypeError, SyntaxError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.For, ast.While, ast.comprehension)):
                at = node.lineno if not isinstance(node, ast.comprehension) else node.target.lineno
                loops.append((start + at - 1, f.__name__, lines[at - 1].split("  #")[0].strip()))
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in others:
                called = (getattr(f, "__globals__", {}) or {}).get(node.id)
                if callable(called):
                    todo.append(called)
    return sorted(set(loops))


def _display_path(path: str) -> str:
    """The path relative to the working directory when it lies below it, else as it is."""
    rel = os.path.relpath(path) if os.path.splitdrive(path)[0] == os.path.splitdrive(os.getcwd())[0] else path
    return path if rel.startswith(os.pardir) else rel


def _two_numbers(a: float, b: float) -> tuple:
    """a and b with 6 significant digits, or as many more as it takes to show that they differ."""
    for digits in (6, 10, 17):
        x, y = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if x != y:
            break
    return x, y


def _verdict(ok: bool) -> str:
    return "ok" if ok else "WRONG"


def _check(ex: Exercise, module, out: TextIO, seed: int, limit: float) -> bool:
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

    results = [_check_target(t, module, cases, rng, filename, limit) for t in ex.targets]
    width = max(len(r.label) for fr in results for r in fr.grads.values())

    failed = [fr for fr in results if fr.failure]
    graded = [fr for fr in results if not fr.failure]
    looped = {}                                   # function -> its first Python loop, (line, text)
    for fr in results:
        loops = [] if fr.not_implemented else _python_loops(getattr(module, fr.target.function), filename,
                                                            ex.functions)
        if loops:
            looped[fr.target.function] = loops[0]
    say()
    for fr in failed:
        say(f"  {fr.failure}")
    for name, (line, inside, text) in looped.items():
        where = f"your line {line}" + (f", in {inside}" if inside != name else "")
        say(f"  {name} has a Python loop ({where}: {text}); the exercise asks for it batched: "
            "broadcasting, einsum and sums over an axis, no loops")
    if looped and not failed:
        say()
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
        say("Your gradients against the library's own backward (memnet_np), same cases:")
        for fr in graded:
            for r in fr.grads.values():
                if r.problem is None:
                    say(f"  {r.label:<{width}}  rel error {r.ref:.1e}  (should be < {REFERENCE_TOLERANCE:.0e})  "
                        f"{_verdict(r.ref < REFERENCE_TOLERANCE)}")

    wrong = [r for fr in graded for r in fr.grads.values() if not r.ok]
    if wrong:
        say()
        say("What went wrong:")
        said = set()
        right = [r for fr in graded for r in fr.grads.values() if r.ok]
        labels = {r.label for r in wrong}
        for together, where in ex.shared:
            if len(wrong) > 1 and labels == together and not any(r.swapped for r in wrong):
                short = lambda rs: ", ".join(r.label.split(": ")[-1] for r in rs)
                say(f"  {short(wrong)} wrong" + (f", {short(right)} right" if right else "") + f": {where}")
                break
        for r in wrong:
            k = r.problem_case if r.problem else r.ref_case
            say(f"  {r.label}: worst in case {k + 1} of {len(cases)}, {ex.describe_case(cases[k])}")
            if r.problem:
                say(f"      it {r.problem}")
                for note in r.problem_notes:
                    say(f"      {note}")
                continue
            diff = np.abs(r.yours - r.expected)
            ix = np.unravel_index(int(np.argmax(diff)), diff.shape)
            a, b = _two_numbers(r.yours[ix] + 0.0, r.expected[ix] + 0.0)
            say(f"      furthest off at {list(int(i) for i in ix)}: yours {a}, expected {b}")
            target, gname = next((fr.target, g) for fr in graded for g, x in fr.grads.items() if x is r)
            if r.swapped:
                order = f"({', '.join(target.grads)})"
                notes = [f"yours is the right {r.swapped}, and your {r.swapped} is the right {gname}: "
                         f"return them in the forward's order, {order}"]
            else:
                notes = _diagnose(r.yours, r.expected, r.mask)
                if target.notes is not None:
                    notes += target.notes(gname, r.yours, r.expected, *r.context)
            for note in notes:
                head, _, tail = note.partition("; ")
                if tail and tail in said:             # an explanation already given above: not twice
                    note = f"{head} (see above)"
                said.add(tail)
                say(f"      {note}")

    say()
    missing = [fr.target.function for fr in failed if fr.not_implemented]
    broken = [fr.target.function for fr in failed if not fr.not_implemented]
    if not (wrong or missing or broken or looped):
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
    if looped:
        why.append(f"Python loops in {', '.join(looped)}")
    say(f"FAIL  ({'; '.join(why)})")
    return False
