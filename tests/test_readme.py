"""The README's two set-up commands are the ones CI and newcomers run."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_COMMAND = 'pip install ".[test]" && python -m pytest'
DEMO_COMMAND = 'pip install ".[plot]" && python -m memnet_np demo'


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert TEST_COMMAND in readme.splitlines() or f"    {TEST_COMMAND}" in readme.splitlines()
    assert TEST_COMMAND in ci.splitlines()
    assert DEMO_COMMAND in readme


def test_readme_shows_figures_that_exist():
    readme = (ROOT / "README.md").read_text()
    for line in readme.splitlines():
        if line.startswith("![") and "](figures/" in line:
            assert (ROOT / line.split("](")[1].rstrip(")")).is_file(), line
