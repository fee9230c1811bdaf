"""Shared fixtures: the real bAbI folder (skipped when absent) and a tiny hand-made one."""
from __future__ import annotations

import os
from pathlib import Path

from memnet_np import runtime

runtime.configure()   # as the command line: one BLAS thread (before numpy is first imported), freed memory kept
import pytest         # noqa: E402

DEFAULT_BABI = Path(__file__).resolve().parents[1].parent / "shared/data/babi/tasks_1-20_v1-2"

# A tiny valid bAbI task 1 in the v1.2 format. Questions sit between statements (their ids count, they are not
# statements), story 3 has two questions in a row, and "kitchen" appears only in the test file.
TINY_TRAIN = """\
1 Mary moved to the bathroom.
2 John went to the hallway.
3 Where is Mary? \tbathroom\t1
4 Daniel went back to the hallway.
5 Sandra moved to the garden.
6 Where is Daniel? \thallway\t4
7 John moved to the office.
8 Where is John? \toffice\t7
9 Sandra journeyed to the bathroom.
10 Where is Sandra? \tbathroom\t9
1 John travelled to the garden.
2 Where is John? \tgarden\t1
3 Mary went to the office.
4 Mary moved to the garden.
5 Where is Mary? \tgarden\t4
1 Daniel went to the bedroom.
2 Sandra went to the office.
3 Where is Daniel? \tbedroom\t1
4 Where is Sandra? \toffice\t2
5 Daniel moved to the hallway.
6 Where is Daniel? \thallway\t5
7 John went back to the bathroom.
8 Where is John? \tbathroom\t7
"""

TINY_TEST = """\
1 Mary went to the kitchen.
2 Where is Mary? \tkitchen\t1
3 John moved to the bedroom.
4 Where is John? \tbedroom\t3
1 Sandra moved to the garden.
2 Daniel went to the office.
3 Where is Daniel? \toffice\t2
4 Where is Sandra? \tgarden\t1
"""


@pytest.fixture
def babi_root() -> Path:
    """The real tasks_1-20_v1-2 folder: $MEMNET_DATA, else ../shared/data/babi/tasks_1-20_v1-2 next to the repo."""
    env = os.environ.get("MEMNET_DATA")
    root = Path(env) if env else DEFAULT_BABI
    if (root / "tasks_1-20_v1-2").is_dir() and not (root / "en").is_dir():
        root = root / "tasks_1-20_v1-2"
    if not (root / "en").is_dir():
        pytest.skip(f"bAbI data not found at {root}; set MEMNET_DATA")
    return root


@pytest.fixture
def tiny_babi_dir(tmp_path) -> Path:
    """tmp_path/tasks_1-20_v1-2 holding en/qa1_single-supporting-fact_{train,test}.txt (10 and 4 questions)."""
    root = tmp_path / "tasks_1-20_v1-2"
    (root / "en").mkdir(parents=True)
    (root / "en" / "qa1_single-supporting-fact_train.txt").write_text(TINY_TRAIN, encoding="utf-8")
    (root / "en" / "qa1_single-supporting-fact_test.txt").write_text(TINY_TEST, encoding="utf-8")
    return root
