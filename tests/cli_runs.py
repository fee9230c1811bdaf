"""The command line as the tests run it: `python -m memnet_np ...` in a subprocess on this checkout's code (whatever
the editable install points at), drawing with Agg; and the check, for every model, that the committed
figures/<model>.json is what `figures` draws today."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import DEFAULT_BABI

ROOT = Path(__file__).resolve().parents[1]
PTB = ROOT.parent / "shared" / "data" / "ptb"


def cli_env(**extra) -> dict:
    """The environment for a subprocess: this checkout's memnet_np first on the path, matplotlib on Agg."""
    return dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                **extra)


def run_figures(model, out, *extra, timeout=300, **env) -> subprocess.CompletedProcess:
    """`python -m memnet_np figures --model MODEL --out OUT *extra`, with `env` added to the environment."""
    return subprocess.run([sys.executable, "-m", "memnet_np", "figures", "--model", model, "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=timeout, env=cli_env(**env))


def check_committed_figures(model, tmp_path, *, same, close, pictures, timeout, tolerance=None):
    """By the numbers behind the pictures, not their pixels: figures/<model>.json (a full run, not --quick) is what
    `figures --model MODEL` draws today, on the data it names (seed 0, one thread). The keys `same` are equal,
    the keys `close` equal to `tolerance` (np.allclose's atol/rtol; atol 1e-3 by default), and the committed
    pictures are there. Returns (committed, today)."""
    committed = json.loads((ROOT / "figures" / f"{model}.json").read_text())
    assert not committed["quick"]
    env = {}
    data = committed.get("data", "")
    if data.startswith("bAbI"):
        env["MEMNET_DATA"] = os.environ.get("MEMNET_DATA", str(DEFAULT_BABI))
    if data == "ptb":
        if not (PTB / "ptb.train.txt").is_file():
            pytest.skip(f"the committed figures/{model}.json is drawn from Penn Treebank, which is not here")
        env["MEMNET_PTB"] = str(PTB)
    r = run_figures(model, tmp_path, timeout=timeout, **env)
    assert r.returncode == 0, r.stderr
    today = json.loads((tmp_path / f"{model}.json").read_text())
    for key in same:
        assert today[key] == committed[key], f"figures/{model}.json {key} is not what figures draws now"
    for key in close:
        assert np.allclose(today[key], committed[key], **(tolerance or dict(atol=1e-3))), \
            f"figures/{model}.json {key} is not what figures draws now"
    for name in pictures:
        assert (ROOT / "figures" / name).is_file(), name
    return committed, today
