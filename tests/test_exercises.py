"""The exercise grader: it passes the reference solution, fails an unfilled stub and every kind of wrong gradient
(naming the gradient), and turns files it cannot grade into one clear ExerciseError."""
import functools
import io
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from cli_runs import run_cli
from exercise_runs import edited, line_for, run_grade
from memnet_np import exercises as E
from memnet_np import ops

pytestmark = pytest.mark.exercise

ROOT = Path(__file__).resolve().parents[1]
STUB = ROOT / "tutorials/exercises/01_softmax_attention_backward.py"
SOLUTION = ROOT / "tutorials/exercises/solutions/01_softmax_attention_backward.py"


def variant(tmp_path, name, old, new):
    """The exercise 1 solution with one line changed, written to tmp_path/name.py."""
    return edited(SOLUTION, tmp_path, name, (old, new))


def assert_fails_naming(out, gradients, wrong):
    """The report FAILs with exactly the gradients `wrong` (labels) WRONG, on their lines and in its last line,
    and every other one of `gradients` ok."""
    last = out.rstrip().splitlines()[-1]
    assert last.startswith("FAIL  (wrong: "), out
    for label in gradients:
        ln = line_for(out, label)
        assert ln.rstrip().endswith("WRONG" if label in wrong else "ok"), (label, out)
        assert (label in last) == (label in wrong), (label, out)


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
    assert_fails_naming(out, GRADIENTS, wrong)
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
    known = ", ".join(sorted(E.EXERCISES))
    assert "memn2n_hop_backward, " in known and "softmax_attention_backward" in known
    with pytest.raises(E.ExerciseError, match=r"unknown exercise EXERCISE = 'softmax_atention'; "
                                              r"known exercises: " + re.escape(known) + "$"):
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


@pytest.mark.parametrize("which,status", [("missing", 2), ("unknown", 2)])
def test_cli_exit_status_of_a_file_it_cannot_grade(tmp_path, which, status):
    """(Exit status 0 and 1: test_check_and_running_the_file_exit_0_on_pass_and_1_on_fail, for every exercise.)"""
    path = {"missing": tmp_path / "missing.py",
            "unknown": variant(tmp_path, "unknown", 'EXERCISE = "softmax_attention_backward"',
                               'EXERCISE = "nope"')}[which]
    r = run_cli("check", str(path), timeout=120, cwd=tmp_path)
    assert r.returncode == status, r.stdout + r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


# ================================================================================================================
# Exercise 2: the backward of one whole MemN2N hop

HOP_STUB = ROOT / "tutorials/exercises/02_memn2n_hop_backward.py"
HOP_SOLUTION = ROOT / "tutorials/exercises/solutions/02_memn2n_hop_backward.py"
HOP_GRADIENTS = ["hop_backward: du", "hop_backward: dA", "hop_backward: dC", "hop_backward: dTA",
                 "hop_backward: dTC"]
HOP_FORBIDDEN = ("attention_read_backward", "masked_softmax_backward", "bag_embed_backward", "temporal_backward",
                 "embed_sentences_backward")


hop_variant = functools.partial(edited, HOP_SOLUTION)          # (tmp_path, name, *replacements): exercise 2, edited


def line_of(path, text):
    """1-based number of the first line of the file that contains `text`."""
    return 1 + next(i for i, ln in enumerate(path.read_text(encoding="utf-8").splitlines()) if text in ln)


def test_hop_stub_names_the_functions_it_may_not_use():
    text = HOP_STUB.read_text(encoding="utf-8")
    for name in HOP_FORBIDDEN:
        assert name in text, name
    assert "bag_embed_forward" in text          # where the maths of the embedding gradient is written down
    assert E.EXERCISES["memn2n_hop_backward"].targets[0].forbidden == HOP_FORBIDDEN


def test_hop_cases_have_what_the_mistakes_need():
    """Every case has padded slots holding words found nowhere else, unused rows of T, a non-zero null row,
    two bags per sentence and non-square shapes; the attention is not saturated everywhere."""
    ex = E.EXERCISES["memn2n_hop_backward"]
    cases = ex.make_cases(np.random.default_rng(ex.seed))
    for case in cases:
        mask, W, Ez = case["mask"], case["bags"].W, case["ages"].E
        V, d = case["A"].shape
        R = case["bags"].b.shape[0]
        assert R == 2 and case["A"].dtype == np.float64 and V != d and case["TA"].shape[0] != d
        present = (W.reshape(W.shape[:2] + (R, V)) != 0).any(2)               # (N, M, V)
        assert (present[~mask].any(0) & ~present[mask].any(0)).any()          # words only in padded slots
        assert (Ez.sum((0, 1)) == 0).any()                                    # rows of T no slot uses
        assert not Ez[~mask].any() and np.all(Ez[mask].sum(-1) == 1)
        assert np.all(case["A"][0] != 0) and not W[..., [r * V for r in range(R)]].any()   # null row, no null word
        _, cache = ex.targets[0].forward(*ex.targets[0].inputs(case).values())
        p = cache.attention.p                                                 # (N, M)
        assert np.allclose(p.sum(-1), 1) and not p[~mask].any()
        assert (p.max(-1) < 0.95).sum() >= 2                                  # gradients through ds are not tiny


HOP_WRONG = {
    # name: (replacements in the solution, gradients that must be WRONG, a phrase in the report)
    "no_residual": ([('du = du_next + np.einsum("nm,nmd->nd", ds, m)', 'du = np.einsum("nm,nmd->nd", ds, m)')],
                    ["du"], "it is the gradient through the attention alone: u_next = u + o also hands du_next "
                            "straight to u (the residual)"),
    "residual_only": ([('du = du_next + np.einsum("nm,nmd->nd", ds, m)', "du = du_next + 0.0")],
                      ["du"], "it is du_next alone, the residual's share"),
    "no_b_factor": ([("return (dY * bags.b[:, None, :]).sum(0)", "return dY.sum(0)")],
                    ["dA", "dC"], "it is Σ_r W_rᵀ dm without the factor b_r"),
    "first_bag_only": ([("return (dY * bags.b[:, None, :]).sum(0)", "return dY[0] * bags.b[0]")],
                       ["dA", "dC"], "it uses only the first bag"),
    "dc_forgets_p": ([("dc = p[..., None] * do[:, None, :]", "dc = np.broadcast_to(do[:, None, :], c.shape)")],
                     ["dC", "dTC"], "words that appear only in padded memory slots"),
    "dTA_by_slot": ([('dTA = np.einsum("nmt,nmd->td", ages.E, dm)',
                      "dTA = np.zeros((ages.E.shape[-1], dm.shape[-1]))\n    dTA[:dm.shape[1]] = dm.sum(0)")],
                    ["dTA"], "it adds slot i's gradient into row i of T_A: the row a slot uses is its age"),
    "dTC_every_row": ([('dTC = np.einsum("nmt,nmd->td", ages.E, dc)',
                        "dTC = np.broadcast_to(dc.sum((0, 1)), (ages.E.shape[-1], dc.shape[-1]))")],
                      ["dTC"], "of T_C, which no real slot's age selects"),
    "keys_values_swapped": ([("dA = embed_backward(dm, bags)", "dA = embed_backward(dc, bags)")],
                            ["dA"], "it is what dC should be: A makes the keys m (the scores); are dm and dc "
                                    "swapped?"),
    "null_row_not_zero": ([("dA = embed_backward(dm, bags)",
                            "dA = embed_backward(dm, bags)\n    dA = dA + dA.mean(0)   # every row, null word too")],
                          ["dA"], "row 0 (the null word, which pads sentences and is in no bag)"),
    "halved_dTC": ([('dTC = np.einsum("nmt,nmd->td", ages.E, dc)',
                     'dTC = 0.5 * np.einsum("nmt,nmd->td", ages.E, dc)')],
                   ["dTC"], "yours is 0.5 times the right one"),
}


@pytest.mark.parametrize("name", sorted(HOP_WRONG))
def test_hop_wrong_gradient_fails_and_is_named(tmp_path, name):
    replacements, wrong, phrase = HOP_WRONG[name]
    ok, out = run_grade(hop_variant(tmp_path, name, *replacements))
    assert not ok, out
    assert_fails_naming(out, HOP_GRADIENTS, [f"hop_backward: {g}" for g in wrong])
    assert phrase in out, out


# The library's backward functions are off limits in exercise 2: each way of calling one fails, with the line

FORBIDDEN_USES = {
    # name: (replacements, the forbidden function, text of the line that calls it)
    "through_ops": ([("    do = du_next  ", "    from memnet_np import ops\n"
                                            "    _, _, dc_lib = ops.attention_read_backward(du_next, cache)\n"
                                            "    do = du_next  ")],
                    "attention_read_backward", "ops.attention_read_backward(du_next, cache)"),
    "imported_name": ([("from memnet_np.ops import Ages, Bags ",
                        "from memnet_np.ops import Ages, BagEmbedCache, Bags, bag_embed_backward "),
                       ("    dA = embed_backward(dm, bags) ", "    dA = bag_embed_backward(dm, BagEmbedCache(bags)) ")],
                      "bag_embed_backward", "dA = bag_embed_backward(dm, BagEmbedCache(bags))"),
    "caught_by_try": ([("    dTA = np.einsum(", "    try:\n"
                                               "        import memnet_np.ops as lib\n"
                                               "        dTA = lib.temporal_backward(dm, lib.TemporalCache(ages))[1]\n"
                                               "    except Exception:\n"
                                               "        pass\n"
                                               "    dTA = np.einsum(")],
                      "temporal_backward", "dTA = lib.temporal_backward(dm"),
    "softmax": ([("    ds = p * (dp - (p * dp).sum(-1, keepdims=True)) ",
                  "    from memnet_np.ops import SoftmaxCache, masked_softmax_backward\n"
                  "    ds = masked_softmax_backward(dp, SoftmaxCache(p)) ")],
                "masked_softmax_backward", "ds = masked_softmax_backward(dp, SoftmaxCache(p))"),
}


@pytest.mark.parametrize("name", sorted(FORBIDDEN_USES))
def test_hop_backward_may_not_call_the_library_backward(tmp_path, name):
    replacements, forbidden, call = FORBIDDEN_USES[name]
    originals = {n: getattr(ops, n) for n in HOP_FORBIDDEN}
    path = hop_variant(tmp_path, name, *replacements)
    ok, out = run_grade(path)
    assert not ok, out
    lineno = line_of(path, call)
    assert (f"hop_backward uses ops.{forbidden} (your line {lineno}); write it yourself (in this exercise "
            "hop_backward may not call ops.attention_read_backward, ops.masked_softmax_backward, "
            "ops.bag_embed_backward, ops.temporal_backward or ops.embed_sentences_backward)") in out, out
    assert out.rstrip().splitlines()[-1] == "FAIL  (hop_backward: see above)"
    assert "Traceback" not in out
    assert {n: getattr(ops, n) for n in HOP_FORBIDDEN} == originals      # the library is put back afterwards


def test_forbidden_functions_are_only_switched_off_while_the_learners_backward_runs():
    """The grader's own reference uses them, a module may hold them without calling them, and after grading
    everything is as it was; exercise 1 forbids nothing."""
    mod = E.load_exercise_file(HOP_SOLUTION)
    mod.bag_embed_backward = ops.bag_embed_backward                      # a module global bound to it, unused
    assert E.grade_module(mod, stream=io.StringIO())
    assert mod.bag_embed_backward is ops.bag_embed_backward
    assert E.EXERCISES["softmax_attention_backward"].targets[1].forbidden == ()


def test_an_in_memory_solution_built_from_the_library_is_refused():
    sol = E.load_exercise_file(HOP_SOLUTION)

    def hop_backward(du_next, cache):
        att = ops.AttentionCache(cache.u, cache.m, cache.c, cache.p > 0, cache.p, False)
        du, dm, dc = ops.attention_read_backward(du_next, att)
        emb, tmp = ops.BagEmbedCache(cache.bags), ops.TemporalCache(cache.ages)
        return (du_next + du, ops.bag_embed_backward(dm, emb), ops.bag_embed_backward(dc, emb),
                ops.temporal_backward(dm, tmp)[1], ops.temporal_backward(dc, tmp)[1])

    mod = types.SimpleNamespace(EXERCISE="memn2n_hop_backward", hop_forward=sol.hop_forward,
                                hop_backward=hop_backward)
    out = io.StringIO()
    assert not E.grade_module(mod, stream=out)
    assert "hop_backward uses ops.attention_read_backward; write it yourself" in out.getvalue(), out.getvalue()


# The cache comes from the learner's own hop_forward

def test_hop_forward_that_no_longer_computes_the_forward_fails_clearly(tmp_path):
    line = "u_next = u + o" + " " * 46 + "# (N, d)"
    path = hop_variant(tmp_path, "broken_forward", (line, line.replace("u + o", "o + o")))
    ok, out = run_grade(path)
    assert not ok
    assert re.search(r"hop_forward no longer computes the forward pass: its output differs from the library's "
                     r"\(rel error \S+\); the checker differentiates the forward as the stub gives it", out), out
    assert "Traceback" not in out


def test_hop_forward_may_cache_more(tmp_path):
    path = hop_variant(tmp_path, "more_cache",
                       ("    p: np.ndarray      # (N, M)        the attention, 0 on padded slots\n",
                        "    p: np.ndarray      # (N, M)        the attention, 0 on padded slots\n"
                        "    s: np.ndarray      # (N, M)        the scores\n"),
                       ("return u_next, HopCache(u, bags, ages, m, c, p)",
                        "return u_next, HopCache(u, bags, ages, m, c, p, s)"),
                       ("    u, bags, ages, m, c, p = cache", "    u, bags, ages, m, c, p, _ = cache"))
    ok, out = run_grade(path)
    assert ok, out


def test_hop_forward_with_a_bad_return_fails_clearly(tmp_path):
    path = hop_variant(tmp_path, "bad_return", ("return u_next, HopCache(u, bags, ages, m, c, p)", "return u_next"))
    ok, out = run_grade(path)
    assert not ok
    assert "hop_forward must return (output, cache) as in the stub; it returned ndarray" in out, out


def test_hop_backward_that_changes_the_cache_in_place_is_named(tmp_path):
    path = hop_variant(tmp_path, "mutates", ("    do = du_next  ", "    cache.bags.W[...] = 0.0\n    do = du_next  "))
    ok, out = run_grade(path)
    assert not ok
    assert "hop_backward changed its argument cache.bags.W in place" in out, out


def test_hop_exception_is_reported_with_its_line(tmp_path):
    path = hop_variant(tmp_path, "typo", ("    dA = embed_backward(dm, bags) ", "    dA = embed_backward(dm, bag) "))
    ok, out = run_grade(path)
    assert not ok
    lineno = line_of(path, "dA = embed_backward(dm, bag) ")
    assert (f"hop_backward raised NameError (your line {lineno}, in hop_backward): name 'bag' is not defined"
            in out), out


def test_hop_missing_forward_cannot_be_graded(tmp_path):
    path = hop_variant(tmp_path, "no_forward", ("def hop_forward(", "def hop_forward_v2("))
    with pytest.raises(E.ExerciseError, match=r"does not define hop_forward, which exercise 'memn2n_hop_backward' "
                                              r"asks for \(start from the stub "
                                              r"tutorials/exercises/02_memn2n_hop_backward\.py\)"):
        E.grade(path, stream=io.StringIO())


# ================================================================================================================
# What students hit: each mistake below was made in earnest, and each now gets a line that names it


def test_a_float32_answer_is_a_dtype_problem_not_one_times_the_right_one(tmp_path):
    path = variant(tmp_path, "float32", "return p * (dp - (p * dp).sum(-1, keepdims=True))",
                   "return (p * (dp - (p * dp).sum(-1, keepdims=True))).astype(np.float32)")
    ok, out = run_grade(path)
    assert not ok
    assert "times the right one" not in out, out
    assert re.search(r"ds +is float32, not float64  WRONG$", line_for(out, "softmax_backward: ds")), out
    assert "apart from that it is right: rel error" in out, out
    # du and dm are float64 again but carry ds's float32 round-off: said as such, with digits that differ
    assert "attention_read_backward: du" in out.rstrip().splitlines()[-1]
    assert re.search(r"yours is right to about \d digits only \(rel error \S+\): that is float32 round-off", out), out
    yours, expected = re.search(r"furthest off at \[[\d, ]+\]: yours (\S+), expected (\S+)", out).groups()
    assert yours != expected, out


SOFTMAX_MISTAKES = {
    # name: (exercise, replacements in its solution, gradients that must be WRONG, phrases in the report)
    "p_times_dp": (1, [("return p * (dp - (p * dp).sum(-1, keepdims=True))", "return p * dp")],
                   ["softmax_backward: ds", "attention_read_backward: du", "attention_read_backward: dm"],
                   ["softmax_backward: ds: worst", "yours looks like a known mistake: ds = p ⊙ dp; the term "
                    "−p_i Σ_j p_j dp_j is missing", "A row with one real slot shows it: p = 1 there whatever the "
                    "score, so ds = 0", "yours is what ds = p ⊙ dp gives, a mistake in the softmax step (see above)"]),
    "sum_over_batch_axis": (1, [("return p * (dp - (p * dp).sum(-1, keepdims=True))",
                                 "return p * (dp - (p * dp).sum(0, keepdims=True))")],
                            ["softmax_backward: ds", "attention_read_backward: du", "attention_read_backward: dm"],
                            ["Σ_j p_j dp_j summed over axis 0; axis 0 is the batch; the sum runs over the slots of "
                             "one row: .sum(-1, keepdims=True)"]),
    "sum_over_everything": (1, [("return p * (dp - (p * dp).sum(-1, keepdims=True))",
                                 "return p * (dp - (p * dp).sum())")],
                            ["softmax_backward: ds", "attention_read_backward: du", "attention_read_backward: dm"],
                            ["Σ_j p_j dp_j summed over the whole batch"]),
    "unweighted_sum": (1, [("return p * (dp - (p * dp).sum(-1, keepdims=True))",
                            "return p * (dp - dp.sum(-1, keepdims=True))")],
                       ["softmax_backward: ds", "attention_read_backward: du", "attention_read_backward: dm"],
                       ["Σ_j dp_j in place of Σ_j p_j dp_j"]),
    "dm_dc_returned_swapped": (1, [("return du, dm, dc", "return du, dc, dm")],
                               ["attention_read_backward: dm", "attention_read_backward: dc"],
                               ["yours is the right dc, and your dc is the right dm: return them in the forward's "
                                "order, (du, dm, dc)"]),
    "du_dm_returned_swapped": (1, [("return du, dm, dc", "return dm, du, dc")],
                               ["attention_read_backward: du", "attention_read_backward: dm"],
                               ["has shape (2, 5, 3), not (2, 3) like u (dm's shape: returned in the wrong order? "
                                "return (du, dm, dc))"]),
    "hop_p_times_dp": (2, [("ds = p * (dp - (p * dp).sum(-1, keepdims=True))", "ds = p * dp")],
                       ["hop_backward: du", "hop_backward: dA", "hop_backward: dTA"],
                       ["yours is what ds = p ⊙ dp gives, a mistake in the softmax step; the term −p_i Σ_j p_j dp_j "
                        "is missing", "A row with one real slot shows it"]),
    "hop_sum_over_batch_axis": (2, [("ds = p * (dp - (p * dp).sum(-1, keepdims=True))",
                                     "ds = p * (dp - (p * dp).sum(0, keepdims=True))")],
                                ["hop_backward: du", "hop_backward: dA", "hop_backward: dTA"],
                                ["yours is what Σ_j p_j dp_j summed over axis 0 gives"]),
    "hop_dA_dC_returned_swapped": (2, [("return du, dA, dC, dTA, dTC", "return du, dC, dA, dTA, dTC")],
                                   ["hop_backward: dA", "hop_backward: dC"],
                                   ["yours is the right dC, and your dC is the right dA: return them in the "
                                    "forward's order, (du, dA, dC, dTA, dTC)"]),
}


def graded_variant(tmp_path, name, exercise, replacements):
    if exercise == 2:
        return hop_variant(tmp_path, name, *replacements)
    (old, new), = replacements
    return variant(tmp_path, name, old, new)


@pytest.mark.parametrize("name", sorted(SOFTMAX_MISTAKES))
def test_softmax_mistakes_and_swapped_returns_are_named(tmp_path, name):
    exercise, replacements, wrong, phrases = SOFTMAX_MISTAKES[name]
    ok, out = run_grade(graded_variant(tmp_path, name, exercise, replacements))
    assert not ok, out
    last = out.rstrip().splitlines()[-1]
    for label in (GRADIENTS if exercise == 1 else HOP_GRADIENTS):
        assert (label in last) == (label in wrong), (label, out)
    for phrase in phrases:
        assert phrase in out, (phrase, out)
    assert "times the right one" not in out


ENDLESS = "    while True:\n        try:\n            dp = dp + 0\n        except Exception:\n            pass"


def test_an_endless_loop_is_stopped_and_named_with_its_line(tmp_path):
    path = variant(tmp_path, "endless", "    return p * (dp - (p * dp).sum(-1, keepdims=True))", ENDLESS)
    first = line_of(path, "while True:")
    ok, out = run_grade(path, time_limit=0.3)
    assert not ok
    for fn in ("softmax_backward", "attention_read_backward"):
        line = re.search(rf"{fn} was stopped after 0.3 s \(your line (\d+), in softmax_backward\); a right answer "
                         r"takes milliseconds: an endless loop\?", out)
        assert line and first <= int(line.group(1)) <= first + 4, out
    assert out.rstrip().splitlines()[-1] == ("FAIL  (softmax_backward, attention_read_backward: see above; "
                                             "Python loops in softmax_backward)")
    assert run_grade(SOLUTION, time_limit=0.3)[0]                 # the limit leaves a right answer alone


def test_an_endless_loop_while_loading_is_stopped(tmp_path):
    path = variant(tmp_path, "endless_top", "import numpy as np\n", "import numpy as np\nwhile True:\n    pass\n")
    first = line_of(path, "while True:")
    with pytest.raises(E.ExerciseError, match=r"endless_top\.py was stopped after 0\.3 s while loading \(your line "
                                              rf"({first}|{first + 1})\): an endless loop at the top level"):
        E.grade(path, stream=io.StringIO(), time_limit=0.3)


def test_check_has_a_time_limit_on_the_command_line(tmp_path):
    path = variant(tmp_path, "endless", "    return p * (dp - (p * dp).sum(-1, keepdims=True))", ENDLESS)
    r = run_cli("check", str(path), "--time-limit", "0.5", timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "softmax_backward was stopped after 0.5 s" in r.stdout, r.stdout


def test_a_wrong_shaped_intermediate_blames_the_function_that_made_it(tmp_path):
    """dp made with the wrong sum: the right softmax_backward raises on it, but attention_read_backward is to blame."""
    path = variant(tmp_path, "dp_shape", 'dp = np.einsum("nmd,nd->nm", c, do)', "dp = (c * do[:, None, :]).sum(1)")
    ok, out = run_grade(path)
    assert not ok
    made = line_of(path, "dp = (c * do[:, None, :]).sum(1)")
    assert (f"the mistake is in attention_read_backward, not in softmax_backward: it passes softmax_backward a dp "
            f"of shape (2, 3), not (2, 5) like p (dp is made at your line {made})") in out, out
    assert line_for(out, "softmax_backward: ds").rstrip().endswith("ok")
    assert out.rstrip().splitlines()[-1] == "FAIL  (attention_read_backward: see above)"


def test_a_wrong_shaped_intermediate_in_the_hop_is_named_with_its_line(tmp_path):
    path = hop_variant(tmp_path, "dm_shape", ("dm = ds[..., None] * u[:, None, :]", "dm = ds[:, None, :] * u[:, :, None]"))
    ok, out = run_grade(path)
    assert not ok
    made = line_of(path, "dm = ds[:, None, :] * u[:, :, None]")
    assert f"dm has shape (2, 3, 5), not (2, 5, 3) like m (dm is made at your line {made})" in out, out


SHARED = {
    # name: (exercise, replacements, the line that names what the wrong gradients share)
    "softmax": (1, [("return p * (dp - (p * dp).sum(-1, keepdims=True))", "return p * dp")],
                "  ds, du, dm wrong, dc right: du and dm are made from your softmax_backward's ds, so fix "
                "softmax_backward first"),
    "dp": (1, [('dp = np.einsum("nmd,nd->nm", c, do)', 'dp = np.einsum("nmd,nd->nm", m, do)')],
           "  du, dm wrong, ds, dc right: what they share is ds, and softmax_backward is right on its own: look at the "
           "dp you hand it (dp_i = c_iᵀ do)"),
    "hop_softmax": (2, [("ds = p * (dp - (p * dp).sum(-1, keepdims=True))", "ds = p * dp")],
                    "  du, dA, dTA wrong, dC, dTC right: look at the softmax step"),
    "hop_dm": (2, [("dm = ds[..., None] * u[:, None, :]", "dm = ds[..., None] * u[:, None, :] ** 2")],
               "  dA, dTA wrong, du, dC, dTC right: what they share is dm (dm_i = ds_i u); du is right, so ds is"),
    "hop_dc": (2, [("dc = p[..., None] * do[:, None, :]", "dc = np.broadcast_to(do[:, None, :], c.shape)")],
               "  dC, dTC wrong, du, dA, dTA right: what they share is dc (dc_i = p_i do)"),
    "hop_embedding": (2, [("return (dY * bags.b[:, None, :]).sum(0)", "return dY.sum(0)")],
                      "  dA, dC wrong, du, dTA, dTC right: what they share is the embedding step"),
}


@pytest.mark.parametrize("name", sorted(SHARED))
def test_several_wrong_gradients_are_traced_to_what_they_share(tmp_path, name):
    exercise, replacements, line = SHARED[name]
    ok, out = run_grade(graded_variant(tmp_path, name, exercise, replacements))
    assert not ok
    lines = out.splitlines()
    assert lines[lines.index("What went wrong:") + 1].startswith(line), out


def test_swapped_gradients_are_not_traced_to_a_shared_step(tmp_path):
    ok, out = run_grade(hop_variant(tmp_path, "swap", ("return du, dA, dC, dTA, dTC", "return du, dC, dA, dTA, dTC")))
    assert not ok and "what they share" not in out, out


def test_the_stubs_forbid_python_loops_and_the_grader_checks(tmp_path):
    """What the stubs forbid is what the grader fails: a loop, even in a helper, even with right gradients."""
    assert "the checker looks" in STUB.read_text(encoding="utf-8")
    assert "The checker looks" in HOP_STUB.read_text(encoding="utf-8")
    path = variant(tmp_path, "loop", "    return p * (dp - (p * dp).sum(-1, keepdims=True))     # (N, M)",
                   "    ds = np.zeros_like(p)\n    for n in range(len(p)):\n        ds[n] = p[n] * (dp[n] - p[n] @ dp[n])\n"
                   "    return ds")
    ok, out = run_grade(path)
    assert not ok
    assert (f"softmax_backward has a Python loop (your line {line_of(path, 'for n in range')}: for n in "
            "range(len(p)):); the exercise asks for it batched") in out, out
    assert "attention_read_backward has a Python loop" not in out      # it calls softmax_backward: said once
    assert "WRONG" not in out                                           # the gradients themselves are graded
    assert out.rstrip().splitlines()[-1] == "FAIL  (Python loops in softmax_backward)"

    path = hop_variant(tmp_path, "hop_loop", ("return (dY * bags.b[:, None, :]).sum(0)",
                                              "return sum(dY[r] * bags.b[r] for r in range(R))"))
    ok, out = run_grade(path)
    assert not ok
    assert (f"hop_backward has a Python loop (your line {line_of(path, 'for r in range(R)')}, in embed_backward: "
            "return sum(dY[r] * bags.b[r] for r in range(R))); the exercise asks for it batched") in out, out


# ================================================================================================================
# Exercise 3: the backward of MemNN's margin ranking loss through s(x, y) = Φx(x)ᵀ Uᵀ U Φy(y)

MARGIN_STUB = ROOT / "tutorials/exercises/03_memnn_margin_backward.py"
MARGIN_SOLUTION = ROOT / "tutorials/exercises/solutions/03_memnn_margin_backward.py"
MARGIN_GRADIENTS = ["score_backward: dU", "margin_loss_backward: dU"]


margin_variant = functools.partial(edited, MARGIN_SOLUTION)    # (tmp_path, name, *replacements): exercise 3, edited


def test_margin_cases_have_active_and_inactive_hinges_far_from_their_kinks():
    """What the mistakes need: in every case some hinges active and some not, a question with none active, none
    within GAP of the kink (so finite differences see one smooth function), Φx and Φy on disjoint columns."""
    from memnet_np.exercises import memnn_margin as M
    ex = E.EXERCISES["memnn_margin_backward"]
    for seed in (ex.seed, 1, 2):
        for case in ex.make_cases(np.random.default_rng(seed)):
            U, x, y, y_neg, g = (case[k] for k in ("U", "x", "y", "y_neg", "margin"))
            ex_ = x @ U.T
            h = g - np.sum(ex_ * (y @ U.T), -1)[:, None] + np.einsum("nd,nsd->ns", ex_, y_neg @ U.T)   # (N, S)
            assert np.abs(h).min() > M.GAP
            assert 0 < (h > 0).sum() < h.size and (h <= 0).all(-1).any() and (h > 0).sum(-1).max() >= 2
            assert not (x.any(0) & (y.any(0) | y_neg.any((0, 1)))).any()      # the two terms on other columns
            assert U.shape[0] != U.shape[1] and x.dtype == np.float64


MARGIN_SCORE_LINE = "return (ds[:, None] * ea).T @ b + (ds[:, None] * eb).T @ a"
MARGIN_NEG_LINE = "ds_neg = dloss[:, None] * active "
MARGIN_POS_LINE = "ds_pos = -dloss * active.sum(-1)"
MARGIN_WRONG = {
    # name: (replacements in the solution, gradients that must be WRONG, phrases in the report)
    "forgets_b_aT": ([(MARGIN_SCORE_LINE, "return (ds[:, None] * ea).T @ b")], MARGIN_GRADIENTS,
                     ["it has only the term U a bᵀ = (U a) bᵀ of ∂s/∂U = U(a bᵀ + b aᵀ)",
                      "fix score_backward first"]),
    "forgets_a_bT": ([(MARGIN_SCORE_LINE, "return (ds[:, None] * eb).T @ a")], MARGIN_GRADIENTS,
                     ["it has only the term U b aᵀ = (U b) aᵀ of ∂s/∂U = U(a bᵀ + b aᵀ)",
                      "margin_loss_backward has the same mistake (through score_backward?)"]),
    "twice_one_term": ([(MARGIN_SCORE_LINE, "return 2 * (ds[:, None] * ea).T @ b")], MARGIN_GRADIENTS,
                       ["it is 2 U a bᵀ: the derivative of uᵀu, 2u, does not apply"]),
    "through_inactive_hinges": ([(MARGIN_NEG_LINE, "ds_neg = dloss[:, None] * np.ones(active.shape) "),
                                 (MARGIN_POS_LINE, "ds_pos = -dloss * S")], ["margin_loss_backward: dU"],
                                ["it passes a gradient through every hinge, but only 4 of the 12 are active"]),
    "sign_flipped": ([(MARGIN_NEG_LINE, "ds_neg = -dloss[:, None] * active "),
                      (MARGIN_POS_LINE, "ds_pos = dloss * active.sum(-1)")], ["margin_loss_backward: dU"],
                     ["yours has the wrong sign", "∂ℓ/∂s(x, ȳ_j) = +1 and ∂ℓ/∂s(x, y) = −1 per active hinge"]),
    "forgets_true_score": ([(MARGIN_POS_LINE, "ds_pos = 0 * dloss")], ["margin_loss_backward: dU"],
                           ["it has only the negatives' scores s(x, ȳ_j)"]),
    "true_score_once": ([(MARGIN_POS_LINE, "ds_pos = -dloss * active.any(-1)")], ["margin_loss_backward: dU"],
                        ["it counts the true candidate's score once per question"]),
    "ignores_dloss": ([(MARGIN_NEG_LINE, "ds_neg = 1.0 * active "), (MARGIN_POS_LINE, "ds_pos = -1.0 * active.sum(-1)")],
                      ["margin_loss_backward: dU"], ["it ignores dloss"]),
}


@pytest.mark.parametrize("name", sorted(MARGIN_WRONG))
def test_margin_wrong_gradient_fails_and_is_named(tmp_path, name):
    replacements, wrong, phrases = MARGIN_WRONG[name]
    ok, out = run_grade(margin_variant(tmp_path, name, *replacements))
    assert not ok, out
    assert_fails_naming(out, MARGIN_GRADIENTS, wrong)
    for phrase in phrases:
        assert phrase in out, (phrase, out)


def test_margin_loss_backward_may_not_loop(tmp_path):
    path = margin_variant(tmp_path, "loop", ("x_rep = np.repeat(x, S, axis=0) ",
                                             "x_rep = np.stack([x[n] for n in range(N) for _ in range(S)]) "))
    ok, out = run_grade(path)
    assert not ok and "WRONG" not in out
    assert out.rstrip().splitlines()[-1] == "FAIL  (Python loops in margin_loss_backward)"


# ================================================================================================================
# Exercise 4: the backward of an NTM head's addressing (content, circular shift, sharpening)

NTM_STUB = ROOT / "tutorials/exercises/04_ntm_addressing_backward.py"
NTM_SOLUTION = ROOT / "tutorials/exercises/solutions/04_ntm_addressing_backward.py"
NTM_GRADIENTS = ["content_backward: dk", "content_backward: dbeta", "content_backward: dmem", "shift_backward: dwg",
                 "shift_backward: ds", "sharpen_backward: dws", "sharpen_backward: dgamma"]


ntm_variant = functools.partial(edited, NTM_SOLUTION)          # (tmp_path, name, *replacements): exercise 4, edited


def test_ntm_addressing_cases_are_on_the_simplex_and_asymmetric():
    """What the mistakes need to show: non-uniform weightings (a uniform w^g hides a reversed shift), s not
    symmetric (δ and −δ with the same weight hide it too), two shift ranges, no w̃ near 0."""
    cases = E.EXERCISES["ntm_addressing_backward"].make_cases(np.random.default_rng(0))
    assert {c["s"].shape[-1] for c in cases} == {3, 5}
    for c in cases:
        for w in (c["wg"], c["s"], c["ws"]):
            assert np.allclose(w.sum(-1), 1.0) and (w > 0).all()
        mirror = c["s"] - c["s"][..., ::-1]                  # s(δ) − s(−δ); 0 at δ = 0 itself
        assert np.abs(np.delete(mirror, c["r"], axis=-1)).min() > 1e-3
        assert c["wg"].std(-1).min() > 0.02 and c["ws"].min() >= 0.3 / c["ws"].shape[-1]
        assert (c["gamma"] >= 1).all() and (c["beta"] > 0).all()


DZ = "    dz = w * (dw - (w * dw).sum(-1, keepdims=True))           # (N, Hh, M) through the softmax, z = γ log w̃"
NTM_WRONG = {
    # name: (replacements, the gradients that must come out WRONG, a phrase the report must contain)
    "shift_reversed": ([("shift_index(M, S, sign=-1)]", "shift_index(M, S, sign=1)]")],
                       ["dwg"], "the shift runs the wrong way"),
    "ds_reversed": ([('ds = np.einsum("nhsm,nhm->nhs", shifted, dws)',
                      'ds = np.einsum("nhsm,nhm->nhs", shifted[:, :, (S - 1) // 2][..., shift_index(M, S, -1)], dws)')],
                    ["ds"], "ds(δ) pairs dw̃ with w^g moved the wrong way"),
    "sharpen_normalisation_forgotten": ([(DZ, "    dz = w * dw")], ["dws", "dgamma"],
                                        "the normalisation is forgotten"),
    "sharpen_as_a_bare_power": ([("    dgamma = (dz * lw).sum(-1) ", "    dgamma = (ws ** gamma[:, :, None] * lw * dw).sum(-1) "),
                                 ("    dws = gamma[:, :, None] * dz / ws ",
                                  "    dws = gamma[:, :, None] * ws ** (gamma[:, :, None] - 1) * dw ")],
                                ["dws", "dgamma"], "it differentiates w̃^γ alone"),
    "cosine_norm_terms_dropped": ([(" + (dnk / nk)[:, :, None] * k ", " "), (" + (dnm / nm)[:, :, None] * mem ", " ")],
                                  ["dk", "dmem"], "the cosine's norm terms are missing"),
    "cosine_as_a_dot_product": ([('dk = np.einsum("nhm,nmd->nhd", ddot, mem) + (dnk / nk)[:, :, None] * k',
                                  'dk = np.einsum("nhm,nmd->nhd", dK, mem)')],
                                ["dk"], "it differentiates K as the plain dot product"),
}


@pytest.mark.parametrize("name", sorted(NTM_WRONG))
def test_ntm_addressing_mistakes_fail_and_are_named(tmp_path, name):
    replacements, wrong, phrase = NTM_WRONG[name]
    ok, out = run_grade(ntm_variant(tmp_path, name, *replacements))
    assert not ok, out
    assert_fails_naming(out, NTM_GRADIENTS, [label for label in NTM_GRADIENTS if label.split(": ")[1] in wrong])
    assert phrase in out, out


# ================================================================================================================
# What every exercise's files do: the solution PASSes listing every gradient, the same way each time and on other
# seeds too; the untouched stub FAILs naming what is still to write; `check` and running the file agree

EXERCISE_FILES = {
    # name: (solution, stub, its gradients in grading order, the largest finite-difference rel error the solution
    #        may show, other seeds it must pass on)
    "softmax_attention_backward": (SOLUTION, STUB, GRADIENTS, 1e-9, (1, 2, 3)),
    "memn2n_hop_backward": (HOP_SOLUTION, HOP_STUB, HOP_GRADIENTS, 1e-9, (1, 2, 3, 4)),
    "memnn_margin_backward": (MARGIN_SOLUTION, MARGIN_STUB, MARGIN_GRADIENTS, 1e-9, (1, 2, 3)),
    "ntm_addressing_backward": (NTM_SOLUTION, NTM_STUB, NTM_GRADIENTS, 1e-8, (1, 2, 3)),
}


@pytest.mark.parametrize("name", sorted(EXERCISE_FILES))
def test_solution_passes_with_every_gradient_listed(name):
    solution, _, gradients, largest, _ = EXERCISE_FILES[name]
    ok, out = run_grade(solution)
    assert ok, out
    assert out.rstrip().splitlines()[-1] == f"PASS  (all {len(gradients)} gradients right on all 3 cases)"
    assert f"Exercise {name}" in out
    for label in gradients:
        ln = line_for(out, label)
        err = float(re.search(r"rel error (\S+)", ln).group(1))
        assert err < largest and ln.rstrip().endswith("ok") and "(should be < 1e-07)" in ln, ln
        assert len([x for x in out.splitlines() if x.strip().startswith(label + " ")]) == 2   # FD and library
    assert "WRONG" not in out


@pytest.mark.parametrize("name", sorted(EXERCISE_FILES))
def test_grading_is_deterministic_and_other_seeds_pass_too(name):
    solution, _, _, _, seeds = EXERCISE_FILES[name]
    assert run_grade(solution) == run_grade(solution)
    for seed in seeds:
        ok, out = run_grade(solution, seed=seed)
        assert ok, out


@pytest.mark.parametrize("name", sorted(EXERCISE_FILES))
def test_untouched_stub_fails_with_not_implemented(name):
    _, stub, gradients, _, _ = EXERCISE_FILES[name]
    functions = ", ".join(dict.fromkeys(label.split(":")[0] for label in gradients))
    ok, out = run_grade(stub)
    assert not ok and "Traceback" not in out
    assert out.rstrip().splitlines()[-1] == f"FAIL  (not implemented yet: {functions})"


@pytest.mark.parametrize("name,which", [(name, which) for name in sorted(EXERCISE_FILES)
                                        for which in ("solution", "stub")])
def test_check_and_running_the_file_exit_0_on_pass_and_1_on_fail(name, which):
    solution, stub = EXERCISE_FILES[name][:2]
    path, status, verdict = (solution, 0, "PASS") if which == "solution" else (stub, 1, "FAIL")
    env = dict(os.environ, PYTHONPATH=str(ROOT))          # this checkout's library, wherever it is installed
    for argv in ([sys.executable, "-m", "memnet_np", "check", str(path)], [sys.executable, str(path)]):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
        assert r.returncode == status, r.stdout + r.stderr
        assert r.stdout.splitlines()[-1].startswith(verdict) and "Traceback" not in r.stderr, r.stdout + r.stderr
