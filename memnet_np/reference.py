"""The papers' published numbers, so our results can be printed beside them.

Plain data first (transcribed from the papers' tables; see /work/shared/REFERENCE.md), then small accessors:

    paper_errors(model, suite)        column name -> 20 per-task test errors (%), None where the paper gives only a mean
    mean_and_failed(errors)           (mean error, number of tasks with error > 5%)
    comparison_table(ours, columns)   a Markdown table: our per-task error beside the paper columns

Conventions. Task lists are in task order 1..20 (index 0 is task 1). MemN2N papers report test ERROR (%), the MemNN
and DMN papers report test ACCURACY (%); the accessors convert accuracy to error = 100 − accuracy so that every
table compares like with like. A task "fails" when its error is above 5% (accuracy below 95%), the bAbI criterion.
`Summary(mean, failed, note)` holds a mean and failed count exactly as printed in a paper; `failed` is None where the
paper prints none. Numbers marked (transcribed) come from third-party transcriptions: treat them as approximate.
"""
from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Mapping, NamedTuple, Optional, Sequence, Union

__all__ = [
    "Summary", "PaperColumns", "TASKS",
    "MEMN2N_1K", "MEMN2N_1K_PRINTED", "MEMN2N_1K_MEANS", "MEMN2N_10K_MEANS", "MEMN2N_10K_JOINT",
    "MEMNN_1K_ACCURACY", "MEMNN_1K_PRINTED", "DMN_1K_ACCURACY", "DMN_1K_PRINTED", "DMNPLUS_10K_MEANS", "DMNPLUS_10K",
    "NTM_ANCHORS", "errors_from_accuracy", "paper_errors", "mean_and_failed", "comparison_table",
]

TASKS = tuple(range(1, 21))                                   # bAbI tasks 1..20


class Summary(NamedTuple):
    mean: float                                               # the mean as printed in the paper
    failed: Optional[int] = None                              # failed tasks as printed; None if not given
    note: str = ""                                            # anything a reader must know about these numbers


# ----------------------------------------------------------------------------------------------------------------
# MemN2N (Sukhbaatar, Szlam, Weston, Fergus 2015): test ERROR %, bAbI 1k, Table 1

MEMN2N_1K: dict[str, list[float]] = {
    "MemNN strong sup.": [0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 15.0, 9.0, 0.0, 2.0,
                          0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 35.0, 5.0, 64.0, 0.0],
    "LSTM": [50, 80, 80, 39, 30, 52, 51, 55, 36, 56,
             38, 26, 6, 73, 79, 77, 49, 48, 92, 9],
    "MemN2N BoW": [0.6, 17.6, 71.0, 32.0, 18.3, 8.7, 23.5, 11.4, 21.1, 22.8,
                   4.1, 0.3, 10.5, 1.3, 24.3, 52.0, 45.4, 48.1, 89.7, 0.1],
    "MemN2N PE": [0.1, 21.6, 64.2, 3.8, 14.1, 7.9, 21.6, 12.6, 23.3, 17.4,
                  4.3, 0.3, 9.9, 1.8, 0.0, 52.1, 50.1, 13.6, 87.4, 0.0],
    "MemN2N PE LS RN joint": [0.0, 11.4, 21.9, 13.4, 14.4, 2.8, 18.3, 9.3, 1.9, 6.5,
                              0.3, 0.1, 0.2, 6.9, 0.0, 2.7, 40.4, 9.4, 88.0, 0.0],
}

# The "mean" and "failed (> 5)" columns of the same rows, as printed.
MEMN2N_1K_PRINTED: dict[str, Summary] = {
    "MemNN strong sup.": Summary(6.7, 4),
    "LSTM": Summary(51.3, 20),
    "MemN2N BoW": Summary(25.1, 15),
    "MemN2N PE": Summary(20.3, 13),
    "MemN2N PE LS RN joint": Summary(12.4, 11),
}

# 1k settings reported only as a mean error.
MEMN2N_1K_MEANS: dict[str, Summary] = {
    "MemN2N PE LS RN": Summary(13.9, 11, "single-task training"),
    "MemN2N 3 hops PE LS joint": Summary(13.3),
    "official MATLAB code, single task": Summary(13.8, None, "single runs"),
    "official MATLAB code, joint": Summary(12.4, None, "single runs"),
    "Python 2 port, single task": Summary(15.2, None, "single runs"),
    "Python 2 port, joint": Summary(12.9, None, "single runs"),
}

# bAbI 10k mean errors.
MEMN2N_10K_MEANS: dict[str, Summary] = {
    "MemNN strong sup.": Summary(3.2),
    "LSTM": Summary(36.4),
    "MemN2N PE LS RN": Summary(6.6, 4),
    "MemN2N PE LS RN joint": Summary(7.5),
    "MemN2N PE LS RN d=100 ReLU": Summary(4.2, 3, "best MemN2N: d = 100, ReLU after each hop"),
}

# PE LS RN joint on 10k, per task. (transcribed) -- from a third-party transcription, treat as approximate.
MEMN2N_10K_JOINT: list[float] = [0.0, 1.0, 6.8, 0.0, 6.1, 0.1, 6.6, 2.7, 0.0, 0.5,
                                 0.0, 0.1, 0.0, 0.0, 0.2, 0.2, 41.8, 8.0, 75.7, 0.0]

# ----------------------------------------------------------------------------------------------------------------
# MemNN (Weston et al. 2015, "Towards AI-complete QA", Table 3): test ACCURACY %, bAbI 1k, strong supervision

MEMNN_1K_ACCURACY: dict[str, list[float]] = {
    "MemNN k=2 (2014)": [100, 100, 20, 71, 83, 47, 68, 77, 65, 59,
                         100, 100, 100, 99, 74, 27, 54, 57, 0, 100],
    "MemNN AM+NG+NL": [100, 100, 100, 100, 98, 100, 85, 91, 100, 98,
                       100, 100, 100, 99, 100, 100, 65, 95, 36, 100],
}

# The "mean" and "failed (< 95)" columns, as printed (accuracy).
MEMNN_1K_PRINTED: dict[str, Summary] = {
    # A known inconsistency in the paper: the printed mean is 75, but the 20 printed entries average 70.05.
    "MemNN k=2 (2014)": Summary(75.0, 13, "the paper prints mean accuracy 75, but its 20 entries average 70.05"),
    "MemNN AM+NG+NL": Summary(93.0, 4, "mean printed as an integer; the entries average 93.35"),
}

# ----------------------------------------------------------------------------------------------------------------
# DMN (Kumar et al. 2015, Table 1): test ACCURACY %, bAbI 1k with supporting facts

DMN_1K_ACCURACY: dict[str, list[float]] = {
    "MemNN": [100, 100, 100, 100, 98, 100, 85, 91, 100, 98,
              100, 100, 100, 99, 100, 100, 65, 95, 36, 100],
    "DMN": [100, 98.2, 95.2, 100, 99.3, 100, 96.9, 96.5, 100, 97.5,
            99.9, 100, 99.8, 100, 100, 99.4, 59.6, 95.3, 34.5, 100],
}

# Printed means; the paper counts tasks at >= 95% (16 / 18), stored here as failed = 20 − passed (4 / 2).
DMN_1K_PRINTED: dict[str, Summary] = {
    "MemNN": Summary(93.3, 4),
    "DMN": Summary(93.6, 2),
}

# DMN+ (Xiong et al. 2016): mean test ERROR %, bAbI 10k without supporting facts.
DMNPLUS_10K_MEANS: dict[str, Summary] = {
    "DMN+": Summary(2.8, 1, "the one failed task is 16, at 45.3"),
    "DMN (original, on 10k)": Summary(11.8),
    "MemN2N": Summary(4.2),
}

# DMN+ on 10k, per task. (transcribed) -- from a third-party transcription (the README of a public PyTorch DMN+,
# which lists Xiong et al.'s accuracies), treat as approximate; it agrees with the paper's mean 2.8 and task 16's 45.3.
DMNPLUS_10K: list[float] = [0.0, 0.3, 1.1, 0.0, 0.5, 0.0, 2.4, 0.0, 0.0, 0.0,
                            0.0, 0.0, 0.0, 0.2, 0.0, 45.3, 4.2, 2.1, 0.0, 0.0]

# ----------------------------------------------------------------------------------------------------------------
# NTM (Graves, Wayne, Danihelka 2014; Collier & Beel 2018): anchors to judge a training run by

NTM_ANCHORS: dict = {
    "copy_random_guess_bits": 84.0,            # cost per sequence (bits) of random guessing on the copy task
    "convergence_bits_per_sequence": 0.1,      # Collier & Beel: converged when error < 0.1 bits per sequence
    "copy_paper_sequences_to_converge": (100_000, 200_000),   # near 0 bits in the paper's figure (transcribed)
    "associative_recall_paper_episodes": 30_000,              # near 0 within ~30k episodes (text)
    "copy_pytorch_sequences_to_zero_bit_errors": 17_000,      # a PyTorch implementation, mean of 4 seeds, batch 1
    "copy_go_iterations_to_converge": 19_000,                 # a Go implementation with hand-written gradients
    "copy_parameters": 67_561,                 # the paper's copy-task NTM with an LSTM controller
    "memory_shape": (128, 20),                 # N locations × M entries
    "controller_units": 100,
    "copy_bits": 8,
    "copy_train_lengths": (1, 20),
    "generalises_to_length": 50,               # trained on lengths <= 20, it copies 50+
    "rmsprop": {"lr": 1e-4, "decay": 0.95, "momentum": 0.9, "eps": 1e-4},   # Graves 2013 form
    "gradient_clip_value": 10.0,               # each gradient component clipped to (−10, 10)
    "constant_memory_init": 1e-6,              # Collier & Beel: ~2× faster convergence than learned/random init
}


# ----------------------------------------------------------------------------------------------------------------
# Accessors


class PaperColumns(dict):
    """column name -> 20 per-task test errors (%) or 20 Nones; a dict with two more attributes.

    `means[name]` is the paper's printed Summary for a column (as error %), including the columns given only as a
    mean. `source` names the paper and table.
    """

    def __init__(self, columns: Mapping[str, list], means: Mapping[str, Summary], source: str):
        super().__init__(columns)
        self.means = dict(means)
        self.source = source


def errors_from_accuracy(accuracy: Sequence[float]) -> list[float]:
    """Test error % = 100 − accuracy %, rounded to 2 decimals to drop float noise (100 − 98.2 = 1.8, not 1.80…01)."""
    return [round(100.0 - float(a), 2) for a in accuracy]


def _error_summary(s: Summary) -> Summary:
    return Summary(round(100.0 - s.mean, 2), s.failed, s.note)


def _means_only(means: Mapping[str, Summary]) -> dict[str, list]:
    return {name: [None] * len(TASKS) for name in means}


def paper_errors(model: str = "memn2n", suite: str = "babi-1k") -> PaperColumns:
    """The paper's per-task test errors (%) for `model` on `suite`, as column -> 20 values (None: not given).

    model "memn2n": Sukhbaatar et al. 2015 (babi-1k, babi-10k); "memnn": Weston et al. 2015 Table 3 (babi-1k);
    "dmn": Kumar et al. 2015 Table 1 (babi-1k) and the DMN+ paper's means (babi-10k). Accuracy tables are
    converted to error. The returned dict's `.means` holds the printed means (as error).
    """
    key = (str(model).lower().replace("+", "plus"), str(suite).lower())
    if key == ("memn2n", "babi-1k"):
        cols = {name: [float(x) for x in row] for name, row in MEMN2N_1K.items()}
        cols.update(_means_only(MEMN2N_1K_MEANS))
        return PaperColumns(cols, {**MEMN2N_1K_PRINTED, **MEMN2N_1K_MEANS}, "Sukhbaatar et al. 2015, Table 1 (1k)")
    if key == ("memn2n", "babi-10k"):
        cols = _means_only(MEMN2N_10K_MEANS)
        cols["MemN2N PE LS RN joint"] = list(MEMN2N_10K_JOINT)
        return PaperColumns(cols, MEMN2N_10K_MEANS,
                            "Sukhbaatar et al. 2015 (10k; per-task joint numbers transcribed)")
    if key == ("memnn", "babi-1k"):
        cols = {name: errors_from_accuracy(row) for name, row in MEMNN_1K_ACCURACY.items()}
        means = {name: _error_summary(s) for name, s in MEMNN_1K_PRINTED.items()}
        return PaperColumns(cols, means, "Weston et al. 2015, Table 3 (1k, strong supervision; accuracy → error)")
    if key == ("dmn", "babi-1k"):
        cols = {name: errors_from_accuracy(row) for name, row in DMN_1K_ACCURACY.items()}
        means = {name: _error_summary(s) for name, s in DMN_1K_PRINTED.items()}
        return PaperColumns(cols, means, "Kumar et al. 2015, Table 1 (1k, supporting facts; accuracy → error)")
    if key in (("dmn", "babi-10k"), ("dmnplus", "babi-10k")):
        cols = _means_only(DMNPLUS_10K_MEANS)
        cols["DMN+"] = list(DMNPLUS_10K)
        return PaperColumns(cols, DMNPLUS_10K_MEANS, "Xiong et al. 2016 (10k; per-task DMN+ numbers transcribed)")
    known = "memn2n: babi-1k, babi-10k; memnn: babi-1k; dmn: babi-1k, babi-10k (DMN+)"
    if key[0] == "ntm":
        raise ValueError("the NTM papers give no bAbI table; see reference.NTM_ANCHORS for the copy-task anchors")
    raise ValueError(f"no published numbers for model={model!r}, suite={suite!r}; known: {known}")


def mean_and_failed(errors: Union[Sequence[Optional[float]], Mapping[int, Optional[float]]],
                    fail_above: float = 5.0) -> tuple[float, int]:
    """(mean error, number of tasks with error > fail_above) over the entries that are not None."""
    values = list(errors.values()) if isinstance(errors, Mapping) else list(errors)
    values = [float(v) for v in values if v is not None]
    if not values:
        raise ValueError("mean_and_failed: errors has no numbers (only None, or empty)")
    return sum(values) / len(values), sum(v > fail_above for v in values)


def _fmt(x: Optional[float]) -> str:
    """One decimal, rounding halves up (6.65 → 6.7, as the papers print); None → "—"."""
    if x is None:
        return "—"
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    d = Decimal(repr(round(x, 6))).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return str(d + 0)                                         # + 0 turns −0.0 into 0.0


def _task_number(task) -> int:
    try:
        t = int(task)
    except (TypeError, ValueError):
        raise ValueError(f"ours: task keys must be task numbers 1..20, got {task!r}") from None
    if t != task or t not in TASKS:
        raise ValueError(f"ours: task keys must be task numbers 1..20, got {task!r}")
    return t


def comparison_table(ours: Mapping[int, Optional[float]], columns: Mapping[str, Sequence[Optional[float]]],
                     fail_above: float = 5.0, ours_label: str = "ours",
                     means: Optional[Mapping[str, Summary]] = None) -> str:
    """A Markdown table of our per-task test error (%) beside the paper columns, then a mean and a failed row.

    ours: task number -> our test error (%). columns: as from `paper_errors` (column -> 20 values or Nones).
    Rows are the tasks 1..20 that have a number in ours or in a paper column; a task we did not run shows "—".
    The mean and failed rows of a paper column use only the tasks in `ours` (when ours covers fewer tasks than the
    paper, so that the comparison is like for like; a note line says so). Columns given only as means (all None)
    are not table columns: they appear in a note line below the table, from `means` (default: columns.means).
    """
    if means is None:
        means = getattr(columns, "means", {})
    ours_t: dict[int, Optional[float]] = {_task_number(t): (None if v is None else float(v)) for t, v in ours.items()}
    per_task: dict[str, list] = {}
    for name, values in columns.items():
        values = list(values)
        if len(values) != len(TASKS):
            raise ValueError(f"column {name!r} has {len(values)} entries; a per-task column needs {len(TASKS)}")
        if any(v is not None for v in values):
            per_task[name] = values
    shown = [t for t in TASKS if ours_t.get(t) is not None or any(c[t - 1] is not None for c in per_task.values())]
    ran = [t for t in TASKS if ours_t.get(t) is not None]
    subset = ran if ran else shown                            # the tasks the mean/failed rows average over

    header = ["task", ours_label] + list(per_task)
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for t in shown:
        cells = [str(t), _fmt(ours_t.get(t))] + [_fmt(c[t - 1]) for c in per_task.values()]
        lines.append("| " + " | ".join(cells) + " |")

    def summary_cells(values_by_task: Mapping[int, Optional[float]]) -> tuple[str, str]:
        vals = {t: values_by_task.get(t) for t in subset if values_by_task.get(t) is not None}
        if not vals:
            return "—", "—"
        mean, failed = mean_and_failed(vals, fail_above)
        return _fmt(mean), str(failed)

    cols = [summary_cells(ours_t)] + [summary_cells(dict(zip(TASKS, c))) for c in per_task.values()]
    lines.append("| mean | " + " | ".join(m for m, _ in cols) + " |")
    lines.append(f"| failed (> {fail_above:g}%) | " + " | ".join(f for _, f in cols) + " |")

    notes = []
    partial = [name for name, c in per_task.items() if any(c[t - 1] is not None for t in TASKS if t not in subset)]
    if partial:
        full = [f"{name} {_fmt(means[name].mean)}" for name in partial if name in means]
        notes.append(f"The paper columns' mean and failed rows are over the same {len(subset)} task(s) as ours"
                     + (f"; the paper's own 20-task means: {', '.join(full)}." if full else "."))
    only = [name for name in columns if name not in per_task and name in means]
    if only:
        parts = []
        for name in only:
            s = means[name]
            extra = [f"{s.failed} failed"] if s.failed is not None else []
            extra += [s.note] if s.note else []
            parts.append(f"{name} {_fmt(s.mean)}" + (f" ({'; '.join(extra)})" if extra else ""))
        notes.append("Paper means without per-task numbers: " + "; ".join(parts) + ".")
    for name in per_task:
        if name in means and means[name].note:
            notes.append(f"{name}: {means[name].note}.")
    source = getattr(columns, "source", "")
    if source:
        notes.append(f"Paper numbers: {source}. Test error %; a task fails above {fail_above:g}%.")
    table = "\n".join(lines)
    return table + ("\n\n" + "\n".join(f"- {n}" for n in notes) if notes else "")
