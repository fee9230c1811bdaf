"""Plain-text corpora for language modelling: Penn Treebank, any text files, or generated stories as running text.

The format is Penn Treebank's (Mikolov's split, `ptb.train.txt` / `ptb.valid.txt` / `ptb.test.txt`): one sentence a
line, words separated by white space, and an end-of-sentence word `<eos>` added after every line, as the official
MemN2N language-model code (`data.lua`, `g_read_words`) does. The vocabulary is built from the training text alone,
`<eos>` first, then the words in order of first appearance (the official code continues it over the validation and
test files; on PTB that adds nothing, since they hold no word outside it). A validation or test word outside the
training vocabulary is an error that names the word, the file and the line: PTB has already replaced rare words by
`<unk>`, and another corpus must do the same.

    from memnet_np.data import corpus
    c = corpus.load_corpus("../shared/data/ptb")      # a folder with {ptb.,}train.txt, valid.txt, test.txt
    c = corpus.generated_corpus()                      # no data needed: bAbI-style stories as running text
    c.train                                            # (n,) int word ids; c.words[i] is id i's word
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from memnet_np.data.babi import DataNotFoundError, UnknownWordError, tokenize

EOS = "<eos>"
SPLITS = ("train", "valid", "test")


class CorpusError(ValueError):
    """A text file that cannot serve as a corpus (empty, unreadable as UTF-8)."""


@dataclass(frozen=True)
class Corpus:
    name: str
    words: tuple            # (V,) the vocabulary, id i is words[i]; words[0] is <eos>
    train: np.ndarray       # (n_train,) int32 word ids
    valid: np.ndarray       # (n_valid,) int32
    test: np.ndarray        # (n_test,) int32

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def text(self, ids) -> list[str]:
        return [self.words[i] for i in ids]


def split_lines(text: str) -> list[list[str]]:
    """Words of every line, and <eos> after each (an empty line is one <eos>, as in the official reader)."""
    return [line.split() + [EOS] for line in text.splitlines()]


def read_lines(path) -> list[list[str]]:
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{path}: no such text file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    lines = split_lines(text)
    if not any(len(words) > 1 for words in lines):
        raise CorpusError(f"{path}: no words in this file (it is empty or holds only blank lines)")
    return lines


def build_vocab(lines: Sequence[Sequence[str]]) -> tuple:
    """<eos> first, then every word in order of first appearance."""
    return tuple(dict.fromkeys([EOS] + [w for words in lines for w in words]))


def encode(lines: Sequence[Sequence[str]], words: Sequence[str], source: str = "text") -> np.ndarray:
    """(n,) int32 ids of every word; a word outside `words` raises UnknownWordError naming it, its file and line."""
    index = {w: i for i, w in enumerate(words)}
    ids = []
    for number, line in enumerate(lines, start=1):
        for w in line:
            i = index.get(w)
            if i is None:
                unknown = sorted({w for line in lines for w in line if w not in index})
                where = f"{source}, line {number}"
                raise UnknownWordError(f"{where}: the word {w!r} is not in the vocabulary built from the training "
                                       f"text ({len(unknown)} such word(s): {', '.join(map(repr, unknown[:5]))}"
                                       f"{', ...' if len(unknown) > 5 else ''}); replace rare words by <unk> as "
                                       f"PTB does", unknown, where)
            ids.append(i)
    return np.array(ids, dtype=np.int32)


def corpus_files(data_dir) -> dict:
    """{split: path} in a folder holding ptb.train.txt, ptb.valid.txt, ptb.test.txt (or train.txt, ...)."""
    root = Path(data_dir)
    if not root.is_dir():
        raise DataNotFoundError(f"{root}: no such folder (give the folder that holds ptb.train.txt, "
                                f"ptb.valid.txt, ptb.test.txt)")
    out = {}
    for split in SPLITS:
        found = [root / f"{prefix}{split}.txt" for prefix in ("ptb.", "") if (root / f"{prefix}{split}.txt").is_file()]
        if not found:
            raise DataNotFoundError(f"{root}: no ptb.{split}.txt (or {split}.txt) here; a corpus folder holds "
                                    f"the three files ptb.train.txt, ptb.valid.txt, ptb.test.txt")
        out[split] = found[0]
    return out


def load_corpus(data_dir) -> Corpus:
    """The three files of a corpus folder, encoded with the training text's vocabulary."""
    files = corpus_files(data_dir)
    lines = {split: read_lines(path) for split, path in files.items()}
    words = build_vocab(lines["train"])
    ids = {split: encode(lines[split], words, str(files[split])) for split in SPLITS}
    return Corpus(Path(data_dir).name or str(data_dir), words, ids["train"], ids["valid"], ids["test"])


def story_text(lines: Sequence[str]) -> list[str]:
    """bAbI lines as running text: the id dropped, a question followed by its answer, one line each.

    '1 Mary moved to the bathroom.' -> 'mary moved to the bathroom .'
    '3 Where is Mary? \\tbathroom\\t1' -> 'where is mary ? bathroom'
    """
    out = []
    for line in lines:
        text = line.split(" ", 1)[1]
        if "\t" in text:
            question, answer = text.split("\t")[:2]
            out.append(" ".join(tokenize(question) + ["?"] + answer.split(",")))
        else:
            out.append(" ".join(tokenize(text) + ["."]))
    return out


def generated_corpus(task: int = 1, n_train: int = 2000, n_valid: int = 200, n_test: int = 200,
                     seed: int = 0) -> Corpus:
    """bAbI-style stories (memnet_np.data.generate) as running text, so a language model can be trained and tested
    with no data at all. The counts are questions; a story of task 1 holds 5 of them and about 70 words, so the
    defaults give about 28,000 training words. To predict an answer the model must look back to the last sentence
    about the person asked for: a memory of past words helps there, and the attention shows where it looked."""
    from memnet_np.data.generate import generate
    texts = {split: story_text(generate(task, n, seed=seed * 3 + k))
             for k, (split, n) in enumerate(zip(SPLITS, (n_train, n_valid, n_test)))}
    lines = {split: split_lines("\n".join(t)) for split, t in texts.items()}
    words = build_vocab(lines["train"])
    ids = {split: encode(lines[split], words, f"generated {split} text") for split in SPLITS}
    return Corpus(f"generated task {task} text", words, ids["train"], ids["valid"], ids["test"])


def resolve_corpus(data_dir: Optional[str] = None) -> Corpus:
    """--data DIR, else the generated text."""
    if data_dir is None:
        return generated_corpus()
    return load_corpus(os.fspath(data_dir))
