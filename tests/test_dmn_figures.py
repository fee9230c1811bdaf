"""The DMN's pictures: `figures --model dmn` in its quick mode, and the committed figures/dmn.json is what
`figures` draws today (slow: a full training run)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]


def _run_figures(out, *extra, env=None):
    env = dict(os.environ if env is None else env, MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "memnet_np", "figures", "--model", "dmn", "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=1800, env=env)


def test_dmn_figures_quick(tmp_path):
    r = _run_figures(tmp_path, "--quick")
    assert r.returncode == 0, r.stderr
    for name in ("dmn_gates.png", "dmn_learning_curves.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    numbers = json.loads((tmp_path / "dmn.json").read_text())
    gates = np.array(numbers["gates"])                        # (K, F) one story's gates, every pass
    assert numbers["quick"] is True and gates.ndim == 2 and gates.shape[0] == 3
    assert ((gates >= 0) & (gates <= 1)).all()


@pytest.mark.slow
def test_committed_dmn_figures_are_what_figures_draws_today(tmp_path):
    committed = json.loads((ROOT / "figures" / "dmn.json").read_text())
    assert not committed["quick"]
    env = dict(os.environ)
    if committed["data"].startswith("bAbI"):
        from conftest import DEFAULT_BABI
        env.setdefault("MEMNET_DATA", str(DEFAULT_BABI))
    r = _run_figures(tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    today = json.loads((tmp_path / "dmn.json").read_text())
    assert today["data"] == committed["data"] and today["gates_question"] == committed["gates_question"]
    for key in ("gates", "train_error", "val_error"):
        assert np.allclose(today[key], committed[key], atol=1e-3), f"figures/dmn.json {key} is not what figures draws"
    for name in ("dmn_gates.png", "dmn_learning_curves.png"):
        assert (ROOT / "figures" / name).is_file()
