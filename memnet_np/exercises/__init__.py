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
number; one that runs longer than TIME_LIMIT seconds (an endless loop) is stopped and named with the line it
was at. A file that cannot be graded at all (missing, a syntax error, no EXERCISE line, a missing function) raises
`ExerciseError` instead: the CLI prints its one-line message and exits with status 2.

Adding an exercise means a module in this package that calls `register(Exercise(...))`, and its name in
`_EXERCISE_MODULES` below: the functions the learner writes (`Target`s), how to call each from an upstream gradient
and the library forward's cache, and a case generator. A `Target` may also name a forward of the learner's own file
whose cache the learner's backward gets (`learner_forward`), the memnet_np.ops functions it may not call
(`forbidden`: caught while it runs), and a catalogue of recognisable mistakes (`notes`).
"""
from __future__ import annotations

import importlib

from memnet_np.exercises.grader import (EXERCISES, FD_STEP, FD_TOLERANCE, REFERENCE_TOLERANCE, SEED, TIME_LIMIT,
                                        Exercise, ExerciseError, Target, exercise_for, grade, grade_module,
                                        load_exercise_file, register)

# one module per exercise, in the order of the stubs in tutorials/exercises/
_EXERCISE_MODULES = ("attention", "memn2n_hop", "memnn_margin", "ntm_addressing", "gru")
for _name in _EXERCISE_MODULES:
    importlib.import_module(f"memnet_np.exercises.{_name}")

__all__ = ["EXERCISES", "FD_STEP", "FD_TOLERANCE", "REFERENCE_TOLERANCE", "SEED", "TIME_LIMIT", "Exercise",
           "ExerciseError", "Target", "exercise_for", "grade", "grade_module", "load_exercise_file", "register"]
