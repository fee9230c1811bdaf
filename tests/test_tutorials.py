"""Every tutorial runs start to finish in its fast mode, and is a valid percent-format script (openable as a
notebook). New tutorials in tutorials/*.py are picked up automatically."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.tutorial

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("*.py"))
CELL = re.compile(r"^# %%(?:\s|$)")                      # "# %%", "# %% [markdown]", "# %% tags=[...]"
MARKDOWN_CELL = re.compile(r"^# %% \[markdown\]\s*$")


def test_there_are_tutorials():
    assert TUTORIALS, "no tutorials/*.py found"


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.name)
def test_tutorial_runs_in_fast_mode(path, tmp_path):
    env = dict(os.environ, MEMNET_FAST="1", MPLBACKEND="Agg", MEMNET_TUTORIAL_OUT=str(tmp_path),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))   # this checkout's code
    r = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, f"{path.name} exited with {r.returncode}\n--- stderr ---\n{r.stderr}" \
                              f"\n--- last stdout ---\n{r.stdout[-3000:]}"
    assert "Traceback" not in r.stderr, r.stderr


def test_the_opening_a_tutorial_shares(tmp_path, monkeypatch, capsys):
    """tutorial.start says the mode and where figures go; script_dir is the script's folder, else the cwd."""
    import numpy as np
    from memnet_np import tutorial
    before = np.get_printoptions()
    monkeypatch.setenv("MEMNET_FAST", "1")
    monkeypatch.setenv("MEMNET_TUTORIAL_OUT", str(tmp_path))
    try:
        assert tutorial.start() is True
        assert capsys.readouterr().out == f"fast mode: True;  figures: {tmp_path}\n"
        assert np.get_printoptions()["precision"] == 3
        monkeypatch.delenv("MEMNET_TUTORIAL_OUT")
        assert tutorial.start() is True and capsys.readouterr().out == "fast mode: True;  figures: not written\n"
    finally:
        np.set_printoptions(**before)
    assert tutorial.script_dir({"__file__": str(tmp_path / "t.py")}) == tmp_path.resolve()
    monkeypatch.chdir(tmp_path)
    assert tutorial.script_dir({}) == Path.cwd()


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.name)
def test_tutorial_is_percent_format(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines and CELL.match(lines[0]), f"{path.name} must start with a '# %%' cell marker, got {lines[:1]}"
    cells = [i for i, ln in enumerate(lines) if CELL.match(ln)]
    markdown = [i for i in cells if MARKDOWN_CELL.match(lines[i])]
    assert markdown, f"{path.name} has no '# %% [markdown]' cell"
    assert len(cells) > len(markdown), f"{path.name} has no code cell"
    for i in markdown:                                   # a markdown cell is all comments (or blank lines)
        end = next((j for j in cells if j > i), len(lines))
        body = [ln for ln in lines[i + 1:end] if ln.strip()]
        assert body, f"{path.name}, line {i + 1}: empty markdown cell"
        bad = [ln for ln in body if not ln.startswith("#")]
        assert not bad, f"{path.name}, markdown cell at line {i + 1} has code lines: {bad[:2]}"


def test_gradient_checking_tutorial_writes_its_figure(tmp_path):
    pytest.importorskip("matplotlib")
    path = ROOT / "tutorials/00_gradient_checking.py"
    env = dict(os.environ, MEMNET_FAST="1", MPLBACKEND="Agg", MEMNET_TUTORIAL_OUT=str(tmp_path / "figs"))
    r = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "figs/00_finite_difference_error.png").stat().st_size > 0
    for phrase in ["best central", "TypeError: x must be a float64", "1 kink(s) crossed", "over 0 entries"]:
        assert phrase in r.stdout, phrase


def test_gradient_checking_tutorial_without_matplotlib(tmp_path):
    """matplotlib is an optional extra: without it the plot is skipped with a note, everything else runs."""
    path = ROOT / "tutorials/00_gradient_checking.py"
    code = ("import runpy, sys; sys.modules['matplotlib'] = None; sys.modules['matplotlib.pyplot'] = None; "
            f"runpy.run_path({str(path)!r}, run_name='__main__')")
    env = dict(os.environ, MEMNET_FAST="1", MEMNET_TUTORIAL_OUT=str(tmp_path))
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "matplotlib is not installed: skipping the plot" in r.stdout
    assert "over 0 entries" in r.stdout                  # ran to the end
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.name)
def test_tutorial_opens_as_a_notebook_with_its_cells(path):
    """What the README promises: `pip install ".[notebook]"`, then Jupytext reads each tutorial as a notebook."""
    jupytext = pytest.importorskip("jupytext")
    lines = path.read_text(encoding="utf-8").splitlines()
    markers = [ln for ln in lines if CELL.match(ln)]
    nb = jupytext.read(path)
    kinds = [c.cell_type for c in nb.cells]
    assert len(nb.cells) == len(markers), f"{path.name}: {len(markers)} '# %%' cells, the notebook has {len(nb.cells)}"
    assert kinds == ["markdown" if MARKDOWN_CELL.match(m) else "code" for m in markers]
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert "import" in first_code.source


# The full runs train for real: the claims each text makes about the trained model are checked there, and its
# figures are drawn. tutorial: (a claim about the trained model that must be printed with ✓, figures, timeout)
FULL_RUNS = {
    "01_memnn.py": ("✓ trained, hop 1 finds who has the object", ("01_memnn_hop_scores.png",), 900),
    "02_memn2n.py": ("✓ long stories fail more often", (), 900),
    "03_dmn.py": ("✓ from pass 2 on, the most open gate is the supporting fact's",
                  ("03_learning_curves.png", "03_gates_after_training.png"), 1800),
    "04_ntm.py": ("✓ the read head visits the written locations",
                  ("04_addressing_stages.png", "04_copy_weightings.png", "04_copy_learning_curve.png"), 1800),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FULL_RUNS))
def test_tutorial_full_run_keeps_its_claims(name, tmp_path):
    pytest.importorskip("matplotlib")
    phrase, figures, timeout = FULL_RUNS[name]
    env = {k: v for k, v in os.environ.items() if k != "MEMNET_FAST"}
    env.update(MPLBACKEND="Agg", MEMNET_TUTORIAL_OUT=str(tmp_path),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, str(ROOT / "tutorials" / name)], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=timeout)
    assert r.returncode == 0, f"--- stderr ---\n{r.stderr}\n--- last stdout ---\n{r.stdout[-3000:]}"
    assert phrase in r.stdout and "✗" not in r.stdout
    for figure in figures:
        assert (tmp_path / figure).stat().st_size > 2000, figure
