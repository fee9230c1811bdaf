"""The command line as the tests run it: `python -m memnet_np ...` in a subprocess on this checkout's code (whatever
the editable install points at), drawing with Agg; and the check, for every model, that the committed
figures/<model>.json is what `figures` draws today; and a training run killed with SIGKILL and resumed."""
import json
import os
import signal
import subprocess
import sys
import time
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


def run_cli(*args, timeout=300, cwd=None, **env) -> subprocess.CompletedProcess:
    """`python -m memnet_np *args` run to its end, its output captured as text, with `env` added to the environment."""
    return subprocess.run([sys.executable, "-m", "memnet_np", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=cli_env(**env))


def run_figures(model, out, *extra, timeout=300, **env) -> subprocess.CompletedProcess:
    """`python -m memnet_np figures --model MODEL --out OUT *extra`, with `env` added to the environment."""
    return run_cli("figures", "--model", model, "--out", str(out), *extra, timeout=timeout, **env)


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


def cli(*args, cwd) -> subprocess.Popen:
    """`python -m memnet_np *args` started in `cwd`, its output captured as text."""
    return subprocess.Popen([sys.executable, "-m", "memnet_np", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=cli_env())


def killed_and_resumed(args, tmp_path, state, saved, enough, timeout):
    """Run the training command `args` whole (--out whole); run it again (--out cut), SIGKILL it once
    saved(cut/state) >= enough, and run it again with --resume. Checks that the kill took, left no results, that
    the resumed run says it resumes from `state`, and that both runs end with the same parameters, bit for bit.
    Returns (what was saved at the kill, whole/results.json, cut/results.json) for the caller's own checks."""
    from memnet_np import train as T
    whole = cli(*args, "--out", "whole", cwd=tmp_path)
    assert whole.wait(timeout=timeout) == 0, whole.stderr.read()
    killed = cli(*args, "--out", "cut", cwd=tmp_path)
    path = tmp_path / "cut" / state
    deadline = time.time() + timeout
    while time.time() < deadline and saved(path) < enough:   # wait for enough saved progress, then kill -9
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    assert killed.returncode == -signal.SIGKILL
    at_kill = saved(path)
    assert not (tmp_path / "cut" / "results.json").exists()
    resumed = cli(*args, "--out", "cut", "--resume", cwd=tmp_path)
    out, err = resumed.communicate(timeout=timeout)
    assert resumed.returncode == 0, err
    assert f"resuming from {state}" in out
    a = T.load_checkpoint(tmp_path / "whole" / "checkpoint.npz")
    b = T.load_checkpoint(tmp_path / "cut" / "checkpoint.npz")
    assert a.params.keys() == b.params.keys()
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params), "parameters differ after resuming"
    return (at_kill, json.loads((tmp_path / "whole" / "results.json").read_text()),
            json.loads((tmp_path / "cut" / "results.json").read_text()))
