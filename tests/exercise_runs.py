"""Grading a file as the exercise tests do: the report as text, one gradient's line in it, and a solution with
some of its lines edited."""
import io

from memnet_np import exercises as E


def run_grade(path, **kw):
    """(PASS?, the report) of grading the file at `path`; kw as for exercises.grade (seed, time_limit)."""
    out = io.StringIO()
    ok = E.grade(path, stream=out, **kw)
    return ok, out.getvalue()


def line_for(text, label):
    """The finite-difference line of one gradient, e.g. label 'attention_read_backward: dm'."""
    lines = [ln for ln in text.splitlines() if ln.strip().startswith(label + " ")]
    assert lines, f"no line for {label!r} in:\n{text}"
    return lines[0]


def edited(solution, tmp_path, name, *replacements):
    """`solution` with each (old, new) replaced once, written to tmp_path/name.py."""
    src = solution.read_text(encoding="utf-8")
    for old, new in replacements:
        assert src.count(old) == 1, f"the solution no longer contains {old!r} exactly once: update this test"
        src = src.replace(old, new)
    path = tmp_path / f"{name}.py"
    path.write_text(src, encoding="utf-8")
    return path
