"""The exercise grader: it passes the reference solution, fails an unfilled stub and every kind of wrong gradient
(naming the gradient), and turns files it cannot grade into one clear ExerciseError."""
import io
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from memnet_np import exercises as E
from memnet_np import ops

pytestmark = pytest.mark.exercise

ROOT = Path(__file__).resolve().parents[1]
STUB = ROOT / "tutorials/exercises/01_softmax_attention_backward.py"
SOLUTION = ROOT / "tutorials/exercises/solutions/01_softmax_attention_backward.py"


def run_grade(path, **kw):
    out = io.StringIO()
    ok = E.grade(path, stream=out, **kw)
    return ok, out.getvalue()


def line_for(text, label):
    """The finite-difference line of one gradient, e.g. label 'attention_read_backward: dm'."""
    lines = [ln for ln in text.splitlines() if ln.strip().startswith(label + " ")]
    assert lines, f"no line for {label!r} in:\n{text}"
    return lines[0]


def variant(tmp_path, name, old, new):
    """The reference solution with one line changed, written to tmp_path/name.py."""
    src = SOLUTION.read_text(encoding="utf-8")
    assert old in src, f"the solution no longer contains {old!r}: update this test"
    path = tmp_path / f"{name}.py"
    path.write_text(src.replace(old, new), encoding="utf-8")
    return path


GRADIENTS = ["softmax_backward: ds", "attention_read_backward: du", "attention_read_backward: dm",
             "attention_read_backward: dc"]


# ----------------------------------------------------------------------------------------------------------------
# The registry and its files


@pytest.mark.parametrize("name", sorted(E.EXERCISES))
def test_every_exercise_has_a_stub_that_fails_and_a_solution_that_passes(name):
    ex = E.EXERCISES[name]
    assert ex.name == name and ex.title and ex.functions
    for rel in (ex.stub, ex.solution):
        text = (ROOT / rel).read_text(encoding="utf-8")
        assert f'EXERCISE = "{name}"' in text, rel
    ok, out = run_grade(ROOT / ex.solution)
    assert ok, out
    ok, out = run_grade(ROOT / ex.stub)
    assert not ok
    for fn in ex.functions:
        assert f"not implemented yet: {fn}" in out, out


def test_solution_passes_with_every_gradient_listed():
    ok, out = run_grade(SOLUTION)
    assert ok
    assert out.rstrip().splitlines()[-1].startswith("PASS")
    assert "softmax_attention_backward" in out
    for label in GRADIENTS:
        ln = line_for(out, label)
        err = float(re.search(r"rel error (\S+)", ln).group(1))
        assert err < 1e-9 and ln.rstrip().endswith("ok") and "(should be < 1e-07)" in ln, ln
    assert "WRONG" not in out


def test_grading_is_deterministic_and_other_seeds_pass_too():
    assert run_grade(SOLUTION) == run_grade(SOLUTION)
    for seed in (1, 2, 3):
        ok, out = run_grade(SOLUTION, seed=seed)
        assert ok, out


def test_untouched_stub_fails_with_not_implemented():
    ok, out = run_grade(STUB)
    assert not ok
    assert "not implemented yet: softmax_backward" in out
    assert "not implemented yet: attention_read_backward" in out
    assert out.rstrip().splitlines()[-1].startswith("FAIL")
    assert "Traceback" not in out


def test_half_finished_file_says_which_function_is_missing(tmp_path):
    path = variant(tmp_path, "half", "    return p * (dp - (p * dp).sum(-1, keepdims=True))",
                   '    raise NotImplementedError("fill me in")')
    ok, out = run_grade(path)
    assert not ok
    assert "not implemented yet: softmax_backward" in out
    assert re.search(r"not implemented yet: softmax_backward \(your line \d+\), which attention_read_backward calls",
                     out), out


# ----------------------------------------------------------------------------------------------------------------
# Wrong gradients: each FAILs and names the wrong one (and only that one, when the others are right)

WRONG = {
    # name: (line in the solution, its wrong replacement, gradients that must be WRONG, a phrase in the report)
    "transposed_dm": ("dm = ds[..., None] * u[:, None, :]", "dm = u[:, :, None] * ds[:, None, :]",
                      ["attention_read_backward: dm"], "has shape (2, 3, 5), not (2, 5, 3) like m (transposed?)"),
    "transposed_dm_square": ("dm = ds[..., None] * u[:, None, :]",
                             "dm = ds[..., None] * u[:, None, :]\n"
                             "    dm = dm.swapaxes(1, 2) if dm.shape[1] == dm.shape[2] else dm",
                             ["attention_read_backward: dm"], "furthest off at"),
    "softmax_without_minus_p_sum": ("return p * (dp - (p * dp).sum(-1, keepdims=True))", "return p * dp",
                                    ["softmax_backward: ds", "attention_read_backward: du",
                                     "attention_read_backward: dm"], "furthest off at"),
    "dc_forgets_p": ("dc = p[..., None] * do[:, None, :]", "dc = np.broadcast_to(do[:, None, :], c.shape)",
                     ["attention_read_backward: dc"], "non-zero on padded memory slots"),
    "halved_du": ('du = np.einsum("nm,nmd->nd", ds, m)', 'du = 0.5 * np.einsum("nm,nmd->nd", ds, m)',
                  ["attention_read_backward: du"], "yours is 0.5 times the right one"),
    "sign_flipped_ds": ("return p * (dp - (p * dp).sum(-1, keepdims=True))",
                        "return -p * (dp - (p * dp).sum(-1, keepdims=True))",
                        ["softmax_backward: ds", "attention_read_backward: du", "attention_read_backward: dm"],
                        "yours has the wrong sign"),
    "zero_du": ('du = np.einsum("nm,nmd->nd", ds, m)', "du = np.zeros_like(u)",
                ["attention_read_backward: du"], "yours is all zeros"),
    "nan_dc": ("dc = p[..., None] * do[:, None, :]", "dc = p[..., None] * do[:, None, :] / 0.0 * 0.0",
               ["attention_read_backward: dc"], "contains NaN or inf"),
}


@pytest.mark.parametrize("name", sorted(WRONG))
def test_wrong_gradient_fails_and_is_named(tmp_path, name):
    old, new, wrong, phrase = WRONG[name]
    ok, out = run_grade(variant(tmp_path, name, old, new))
    assert not ok, out
    last = out.rstrip().splitlines()[-1]
    assert last.startswith("FAIL"), out
    for label in GRADIENTS:
        ln = line_for(out, label)
        if label in wrong:
            assert ln.rstrip().endswith("WRONG") and label in last, (label, out)
        else:
            assert ln.rstrip().endswith("ok"), (label, out)
    assert phrase in out, out


def test_exception_in_learner_code_is_reported_with_its_line(tmp_path):
    path = variant(tmp_path, "typo", 'dp = np.einsum("nmd,nd->nm", c, do)', 'dp = np.einsum("nmd,nd->nm", c, d0)')
    lineno = 1 + path.read_text(encoding="utf-8").splitlines().index('    dp = np.einsum("nmd,nd->nm", c, d0)'
                                                                     '                   # (N, M)    dp_i = c_iᵀ do')
    ok, out = run_grade(path)
    assert not ok
    assert (f"attention_read_backward raised NameError (your line {lineno}, in attention_read_backward): "
            "name 'd0' is not defined") in out, out
    assert "Traceback" not in out
    assert line_for(out, "softmax_backward: ds").rstrip().endswith("ok")   # the other function is still graded


def test_broadcast_error_is_one_line(tmp_path):
    path = variant(tmp_path, "bcast", "dc = p[..., None] * do[:, None, :]", "dc = p * do")
    ok, out = run_grade(path)
    assert not ok
    assert re.search(r"attention_read_backward raised ValueError \(your line \d+, in attention_read_backward\): "
                     r"operands could not be broadcast", out), out


@pytest.mark.parametrize("old,new,phrase", [
    ("    return du, dm, dc\n", "    du, dm, dc\n", "returned None: did you forget `return (du, dm, dc)`?"),
    ("    return du, dm, dc\n", "    return du, dm\n", "returned 2 values; it must return 3: (du, dm, dc)"),
    ("    return p * (dp - (p * dp).sum(-1, keepdims=True))",
     "    dp -= (p * dp).sum(-1, keepdims=True)\n    return p * dp", "changed its argument dp in place"),
])
def test_malformed_returns_and_mutation_fail_clearly(tmp_path, old, new, phrase):
    ok, out = run_grade(variant(tmp_path, "bad", old, new))
    assert not ok
    assert phrase in out, out


def test_inputs_are_never_modified_by_grading():
    """The grader hands the learner copies: a learner who scribbles on them cannot corrupt later checks."""
    calls = []

    def softmax_backward(dp, p):
        calls.append(p.copy())
        p[...] = 0.0
        return ops.masked_softmax_backward(dp, ops.SoftmaxCache(calls[-1]))

    def attention_read_backward(do, u, m, c, p):
        return ops.attention_read_backward(do, ops.AttentionCache(u, m, c, p > 0, p, False))

    mod = types.SimpleNamespace(EXERCISE="softmax_attention_backward", softmax_backward=softmax_backward,
                                attention_read_backward=attention_read_backward)
    out = io.StringIO()
    assert not E.grade_module(mod, stream=out)
    assert "changed its argument p in place" in out.getvalue()
    assert line_for(out.getvalue(), "attention_read_backward: dm").rstrip().endswith("ok")


def test_grade_module_on_an_in_memory_module():
    mod = types.ModuleType("my_solution")
    mod.EXERCISE = "softmax_attention_backward"
    mod.softmax_backward = lambda dp, p: ops.masked_softmax_backward(dp, ops.SoftmaxCache(p))
    mod.attention_read_backward = lambda do, u, m, c, p: ops.attention_read_backward(
        do, ops.AttentionCache(u, m, c, p > 0, p, False))
    out = io.StringIO()
    assert E.grade_module(mod, stream=out), out.getvalue()
    assert E.grade_module(E.load_exercise_file(SOLUTION), stream=io.StringIO())


# ----------------------------------------------------------------------------------------------------------------
# Files that cannot be graded: ExerciseError with a message that says what and where


def test_missing_file(tmp_path):
    with pytest.raises(E.ExerciseError, match=r"no such file: .*nope\.py"):
        E.grade(tmp_path / "nope.py", stream=io.StringIO())
    with pytest.raises(E.ExerciseError, match="is not a file"):
        E.grade(tmp_path, stream=io.StringIO())


def test_syntax_error_names_file_and_line(tmp_path):
    path = variant(tmp_path, "syntax", "    return du, dm, dc\n", "    return du, dm, dc)\n")
    lineno = 1 + path.read_text(encoding="utf-8").splitlines().index("    return du, dm, dc)")
    with pytest.raises(E.ExerciseError, match=rf"syntax\.py, line {lineno}: SyntaxError: .*return du, dm, dc\)"):
        E.grade(path, stream=io.StringIO())


def test_indentation_error(tmp_path):
    path = variant(tmp_path, "indent", "    return du, dm, dc\n", "  return du, dm, dc\n")
    with pytest.raises(E.ExerciseError, match="IndentationError"):
        E.grade(path, stream=io.StringIO())


def test_error_while_loading_names_the_line(tmp_path):
    path = tmp_path / "boom.py"
    path.write_text('EXERCISE = "softmax_attention_backward"\nimport numpy as np\nx = np.zeros(3) + undefined\n')
    with pytest.raises(E.ExerciseError, match=r"boom\.py raised NameError while loading \(your line 3\): "
                                              r"name 'undefined' is not defined"):
        E.grade(path, stream=io.StringIO())


def test_missing_function(tmp_path):
    path = variant(tmp_path, "missing", "def attention_read_backward(", "def attention_read_backward_v2(")
    with pytest.raises(E.ExerciseError, match=r"does not define attention_read_backward, which exercise "
                                              r"'softmax_attention_backward' asks for \(start from the stub "
                                              r"tutorials/exercises/01_softmax_attention_backward\.py\)"):
        E.grade(path, stream=io.StringIO())


def test_missing_exercise_line(tmp_path):
    path = variant(tmp_path, "noname", 'EXERCISE = "softmax_attention_backward"\n', "")
    with pytest.raises(E.ExerciseError, match=r"does not say which exercise it is.*softmax_attention_backward"):
        E.grade(path, stream=io.StringIO())


def test_unknown_exercise_lists_the_known_ones(tmp_path):
    path = variant(tmp_path, "unknown", 'EXERCISE = "softmax_attention_backward"', 'EXERCISE = "softmax_atention"')
    with pytest.raises(E.ExerciseError, match=r"unknown exercise EXERCISE = 'softmax_atention'; "
                                              r"known exercises: softmax_attention_backward"):
        E.grade(path, stream=io.StringIO())


def test_loading_leaves_no_trace(tmp_path):
    """Each load is a fresh module under a new name, not left in sys.modules, with no __pycache__ written."""
    path = tmp_path / "ex.py"
    path.write_text(SOLUTION.read_text(encoding="utf-8"), encoding="utf-8")
    before = set(sys.modules)
    a, b = E.load_exercise_file(path), E.load_exercise_file(path)
    assert a is not b and a.__name__ != b.__name__
    assert set(sys.modules) == before
    assert not (tmp_path / "__pycache__").exists()


# ----------------------------------------------------------------------------------------------------------------
# Through the command line: exit status 0 PASS, 1 FAIL, 2 cannot grade


@pytest.mark.parametrize("which,status", [("solution", 0), ("stub", 1), ("missing", 2), ("unknown", 2)])
def test_cli_exit_status(tmp_path, which, status):
    path = {"solution": SOLUTION, "stub": STUB, "missing": tmp_path / "missing.py",
            "unknown": variant(tmp_path, "unknown", 'EXERCISE = "softmax_attention_backward"',
                               'EXERCISE = "nope"')}[which]
    r = subprocess.run([sys.executable, "-m", "memnet_np", "check", str(path)], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path)
    assert r.returncode == status, r.stdout + r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    if status == 2:
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.parametrize("path,status", [(SOLUTION, 0), (STUB, 1)])
def test_running_the_file_itself_grades_it(path, status):
    r = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == status, r.stdout + r.stderr
    assert ("PASS" if status == 0 else "FAIL") in r.stdout
