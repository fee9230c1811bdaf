"""What the tutorials in tutorials/ share: their opening, fast mode, where figures go, and printing the prose's claims.

A tutorial states facts about the numbers it has just printed ("p sums to 1", "the passes by hand give the
library's logits"). Each such sentence is also a `claim(holds, what)`: printed with ✓, and the tutorial stops with
an AssertionError if it is false, so the text cannot drift from what the code does. The test suite runs every
tutorial in its fast mode (MEMNET_FAST=1).

Environment: MEMNET_FAST=1 (tiny training, for tests); MEMNET_TUTORIAL_OUT=DIR (where figures go; default
./tutorial_out, and none in fast mode unless it is set); MEMNET_DATA (the bAbI folder).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from memnet_np.gradcheck import SMOOTH_TOLERANCE


def fast() -> bool:
    """True in fast mode (MEMNET_FAST set to anything but "" or "0")."""
    return os.environ.get("MEMNET_FAST", "") not in ("", "0")


def figure_dir() -> Optional[Path]:
    """Where figures go: $MEMNET_TUTORIAL_OUT, else ./tutorial_out; None (no figures) in fast mode without it."""
    out = os.environ.get("MEMNET_TUTORIAL_OUT")
    return Path(out) if out else (None if fast() else Path("tutorial_out"))


def start() -> bool:
    """What a tutorial does first, once numpy is imported: arrays printed compactly, and one line saying whether
    this is fast mode and where figures go. Returns fast()."""
    np.set_printoptions(precision=3, suppress=True, linewidth=120)
    out = figure_dir()
    print(f"fast mode: {fast()};  figures: {out if out is not None else 'not written'}")
    return fast()


def script_dir(namespace: dict) -> Path:
    """The running tutorial's folder, from its globals() (where find_babi starts looking for shared/data/babi);
    the current folder in a notebook, which has no __file__."""
    file = namespace.get("__file__")
    return Path(file).resolve().parent if file else Path.cwd()


def save_figure(draw: Callable, name: str, *args, **kwargs):
    """Call a memnet_np.plots function with path=<figure_dir>/name; print a note instead if it cannot be drawn."""
    out = figure_dir()
    if out is None:
        print(f"(figure {name} not drawn: fast mode writes figures only when MEMNET_TUTORIAL_OUT is set)")
        return None
    try:
        path = draw(*args, path=out / name, **kwargs)
    except ImportError as e:              # matplotlib is an optional extra
        print(f"(figure {name} not drawn: {e})")
        return None
    print(f"figure written: {path}")
    return path


def section(title: str) -> None:
    """A heading in the printed output, so the text output reads like the notebook."""
    print(f"\n── {title} " + "─" * max(0, 100 - len(title)))


def claim(holds, what: str) -> None:
    """A statement the text makes about the numbers just printed: shown with ✓, and the tutorial stops if false."""
    print(f"  {'✓' if holds else '✗'} {what}")
    assert holds, f"the text claims: {what}"


def check_line(what: str, err: float, tol: float = SMOOTH_TOLERANCE, width: int = 44) -> None:
    """One gradient-check result, printed next to the size it should have; the tutorial stops if it is too big."""
    verdict = "ok" if err < tol else "WRONG"
    print(f"  {what:<{width}} rel error {err:.1e}   (should be < {tol:.0e})  {verdict}")
    assert err < tol, f"gradient check failed: {what}"


def find_babi(start: Optional[Path] = None) -> Optional[str]:
    """The bAbI folder for a tutorial: None lets data.load_babi read $MEMNET_DATA; without that variable,
    shared/data/babi next to this checkout (looked for from `start`, the tutorial's folder, and three levels up)."""
    if os.environ.get("MEMNET_DATA"):
        return None
    here = Path.cwd() if start is None else Path(start)
    for base in [here] + list(here.parents)[:3]:
        candidate = base / "shared" / "data" / "babi"
        if candidate.is_dir():
            return str(candidate)
    return None


def load_task(task: int, start: Path, **kwargs):
    """bAbI task `task` from the folder find_babi(start) finds (kwargs go to data.load_babi); without the data,
    the built-in story generator's stories of that task, with a note that says so."""
    from memnet_np import data
    try:
        return data.load_babi(task, find_babi(start), **kwargs)
    except data.DataNotFoundError as e:
        print(f"NOTE: no bAbI data found ({e}).\n      Using the built-in story generator instead: "
              f"the stories look like bAbI task {task} but are not the official ones.")
        return data.load_generated(task)


def pick_question(questions) -> int:
    """The index of a question to follow by hand: a story of 6 to 10 sentences whose two supporting facts come in
    file order, the last sentence not one of them (so "just read the last sentence" would fail); on generated
    data, which may have none, any story of 4 to 10 sentences; else the first question."""
    for i, q in enumerate(questions):
        if (6 <= len(q.story) <= 10 and len(q.supporting) == 2 and q.supporting[0] < q.supporting[1]
                and len(q.story) - 1 not in q.supporting):
            return i
    for i, q in enumerate(questions):     # generated data: settle for any short story
        if 4 <= len(q.story) <= 10:
            return i
    return 0
