"""Data: the bAbI reader (babi.py), its downloader (download.py) and the built-in story generator (generate.py).

    from memnet_np import data
    ds = data.load_babi(1, data_dir="path/to/tasks_1-20_v1-2")     # or MEMNET_DATA
    ds = data.load_generated(1)                                     # no download needed
"""
from __future__ import annotations

from memnet_np.data.babi import (
    TASK_NAMES, BabiArrays, BabiDataset, BabiFormatError, DataNotFoundError, Question, SentenceTooLongError,
    TaskStats, UnknownWordError, Vocab, build_vocab, check_folder, format_babi, format_stats, heldout_questions,
    load_babi, load_generated, parse_babi, resolve_data_dir, split_validation, task_files, tokenize, vectorize,
)
from memnet_np.data.download import BABI_URL, DownloadError, download_babi, safe_extract, verify_babi

# The generator is re-exported too. It is imported eagerly on purpose: the function `generate` shares its name with
# the module memnet_np.data.generate, and only an eager import keeps `data.generate` the function.
try:
    from memnet_np.data.generate import GENERATED_TASKS, generate, write_task
except ModuleNotFoundError as e:     # only tolerate the module itself being absent, never an error inside it
    if e.name != "memnet_np.data.generate":
        raise

__all__ = [
    "TASK_NAMES", "BabiArrays", "BabiDataset", "BabiFormatError", "DataNotFoundError", "Question",
    "SentenceTooLongError", "TaskStats", "UnknownWordError", "Vocab", "build_vocab", "check_folder", "format_babi",
    "format_stats", "heldout_questions", "load_babi", "load_generated",
    "parse_babi", "resolve_data_dir", "split_validation", "task_files", "tokenize", "vectorize",
    "BABI_URL", "DownloadError", "download_babi", "safe_extract", "verify_babi",
    "GENERATED_TASKS", "generate", "write_task",
]
