"""The language model's pictures: `figures --model memn2n-lm` in its quick mode (generated text, no data needed),
and the committed figures/memn2n-lm.json is what `figures` draws today (slow: three epochs on Penn Treebank)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]
PTB = ROOT.parent / "shared" / "data" / "ptb"


def _run_figures(out, *extra, **env):
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               **env)
    return subprocess.run([sys.executable, "-m", "memnet_np", "figures", "--model", "memn2n-lm", "--out", str(out),
                           *extra], capture_output=True, text=True, timeout=2400, env=env)


def test_lm_figures_quick_on_the_generated_text(tmp_path):
    r = _run_figures(tmp_path, "--quick")
    assert r.returncode == 0, r.stderr
    numbers = json.loads((tmp_path / "memn2n-lm.json").read_text())
    assert numbers["quick"] is True and numbers["data"] != "ptb"
    attention = np.array(numbers["attention"])                # (K, n) one sentence, every hop
    assert attention.ndim == 2 and np.all(attention >= 0)
    for name in ("memn2n_lm_attention.png", "memn2n_lm_perplexity.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_committed_lm_figures_are_what_figures_draws_today(tmp_path):
    committed = json.loads((ROOT / "figures" / "memn2n-lm.json").read_text())
    assert not committed["quick"]
    if committed["data"] == "ptb" and not (PTB / "ptb.train.txt").is_file():
        pytest.skip("the committed figures are drawn from Penn Treebank, which is not here")
    r = _run_figures(tmp_path, MEMNET_PTB=str(PTB))
    assert r.returncode == 0, r.stderr
    today = json.loads((tmp_path / "memn2n-lm.json").read_text())
    for key in ("data", "sentence", "target", "predicted", "epochs", "config"):
        assert today[key] == committed[key], f"figures/memn2n-lm.json {key} is not what figures draws now"
    for key in ("attention", "valid_perplexity_per_epoch", "test_perplexity"):
        assert np.allclose(today[key], committed[key], rtol=1e-3), f"figures/memn2n-lm.json {key} differs"
    for name in ("memn2n_lm_attention.png", "memn2n_lm_perplexity.png"):
        assert (ROOT / "figures" / name).is_file()
