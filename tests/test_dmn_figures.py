"""The DMN's pictures: `figures --model dmn` in its quick mode, and the committed figures/dmn.json is what
`figures` draws today (slow: a full training run)."""
import json

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from cli_runs import check_committed_figures, run_figures  # noqa: E402


def test_dmn_figures_quick(tmp_path):
    r = run_figures("dmn", tmp_path, "--quick", timeout=1800)
    assert r.returncode == 0, r.stderr
    for name in ("dmn_gates.png", "dmn_learning_curves.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    numbers = json.loads((tmp_path / "dmn.json").read_text())
    gates = np.array(numbers["gates"])                        # (K, F) one story's gates, every pass
    assert numbers["quick"] is True and gates.ndim == 2 and gates.shape[0] == 3
    assert ((gates >= 0) & (gates <= 1)).all()


@pytest.mark.slow
def test_committed_dmn_figures_are_what_figures_draws_today(tmp_path):
    check_committed_figures("dmn", tmp_path, same=("data", "gates_question"),
                            close=("gates", "train_error", "val_error"),
                            pictures=("dmn_gates.png", "dmn_learning_curves.png"), timeout=1800)
