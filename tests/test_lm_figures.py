"""The language model's pictures: `figures --model memn2n-lm` in its quick mode (generated text, no data needed),
and the committed figures/memn2n-lm.json is what `figures` draws today (slow: three epochs on Penn Treebank)."""
import json

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from cli_runs import check_committed_figures, run_figures  # noqa: E402


def test_lm_figures_quick_on_the_generated_text(tmp_path):
    r = run_figures("memn2n-lm", tmp_path, "--quick", timeout=2400)
    assert r.returncode == 0, r.stderr
    numbers = json.loads((tmp_path / "memn2n-lm.json").read_text())
    assert numbers["quick"] is True and numbers["data"] != "ptb"
    attention = np.array(numbers["attention"])                # (K, n) one sentence, every hop
    assert attention.ndim == 2 and np.all(attention >= 0)
    for name in ("memn2n_lm_attention.png", "memn2n_lm_perplexity.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_committed_lm_figures_are_what_figures_draws_today(tmp_path):
    check_committed_figures("memn2n-lm", tmp_path, same=("data", "sentence", "target", "predicted", "epochs", "config"),
                            close=("attention", "valid_perplexity_per_epoch", "test_perplexity"),
                            tolerance=dict(rtol=1e-3), pictures=("memn2n_lm_attention.png", "memn2n_lm_perplexity.png"),
                            timeout=2400)
