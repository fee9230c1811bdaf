"""Reading the bAbI tasks (Weston et al. 2015, v1.2) into word-id arrays.

The file format, one line per sentence::

    1 Mary moved to the bathroom.
    2 John went to the hallway.
    3 Where is Mary? \tbathroom\t1

Ids restart at 1 for every story. A question line holds the question, a tab, the answer (a comma list such as
``apple,milk`` for tasks 8 and 19) and a tab-separated list of the ids of its supporting facts. Question lines take
an id but are not statements: they never enter the memory. So the supporting id ``1`` above is the first statement,
while in ``4 ... 5 ... 6 Where is Daniel?\thallway\t4`` the id 4 is statement index 2 (ids 1, 2 are statements, id 3
was a question).

Pipeline: `parse_babi` (text -> `Question`s) -> `build_vocab` -> `vectorize` (-> `BabiArrays`, numpy) and the two
one-call loaders `load_babi` (the real data) and `load_generated` (the built-in story generator).
Shape letters: N questions, M memory slots, L words per sentence.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

NIL = "<nil>"                       # word id 0: the padding word, its embedding is kept at zero by the models
FOLDER = "tasks_1-20_v1-2"          # the folder inside the official archive
SUBSETS = ("en", "en-10k")          # 1k and 10k training questions per task

TASK_NAMES: dict[int, str] = {
    1: "single-supporting-fact", 2: "two-supporting-facts", 3: "three-supporting-facts",
    4: "two-arg-relations", 5: "three-arg-relations", 6: "yes-no-questions", 7: "counting",
    8: "lists-sets", 9: "simple-negation", 10: "indefinite-knowledge", 11: "basic-coreference",
    12: "conjunction", 13: "compound-coreference", 14: "time-reasoning", 15: "basic-deduction",
    16: "basic-induction", 17: "positional-reasoning", 18: "size-reasoning", 19: "path-finding",
    20: "agents-motivations",
}

HOW_TO_GET_DATA = ("give the folder with --data DIR or the MEMNET_DATA environment variable, "
                   "fetch it with `python -m memnet_np data download`, "
                   "or use --generated for the built-in story generator")


# ---------------------------------------------------------------------------------------------------------------
# errors

class BabiFormatError(ValueError):
    """A malformed bAbI file. The message always starts with "path:line:" (or "path:" for whole-file problems)."""


class UnknownWordError(ValueError):
    """A word that is not in the vocabulary. `words` lists them, `where` says where they were met."""

    def __init__(self, message: str, words: Sequence[str] = (), where: str = ""):
        super().__init__(message)
        self.words = tuple(words)
        self.where = where


class SentenceTooLongError(ValueError):
    """A sentence or question longer than the sentence length the arrays (and so the model) were sized for."""


class DataNotFoundError(FileNotFoundError):
    """No bAbI data where it was looked for; the message says what was looked for and how to provide it."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:        # FileNotFoundError would otherwise print its (errno, strerror) form
        return self.message


# ---------------------------------------------------------------------------------------------------------------
# parsing

_TOKEN = re.compile(r"[\w'-]+|[^\w\s]")     # a word (letters, digits, _ ' -) or one punctuation mark


def tokenize(text: str) -> list[str]:
    """Lower-case words; '.' and '?' are dropped, any other punctuation mark (',' ';' '!') is a word of its own.

    >>> tokenize("Where is Mary? ")
    ['where', 'is', 'mary']
    >>> tokenize("Sandra got the milk, then left.")
    ['sandra', 'got', 'the', 'milk', ',', 'then', 'left']
    """
    return [t for t in _TOKEN.findall(text.lower()) if t not in (".", "?")]


@dataclass(frozen=True)
class Question:
    """One question with the statements of its story that came before it."""
    story: tuple[tuple[str, ...], ...]   # statements before the question in its story, oldest first, tokenised
    question: tuple[str, ...]
    answer: tuple[str, ...]              # one word, or several for comma answers ("apple,milk" -> ("apple", "milk"))
    supporting: tuple[int, ...]          # 0-based indices into `story` of the supporting facts, file order
    task: int                            # 1..20 (0 if unknown)
    source: str                          # "path:line" of the question line

    @property
    def answer_token(self) -> str:
        """The answer as ONE vocabulary word: comma answers are a single class, as in the papers."""
        return ",".join(self.answer)


_TASK_IN_NAME = re.compile(r"^qa(\d+)_")


def _read_lines(path: Path) -> list[str]:
    if not path.exists():
        raise DataNotFoundError(f"bAbI file not found: {path}; {HOW_TO_GET_DATA}")
    if path.is_dir():
        raise DataNotFoundError(f"{path} is a folder; expected a bAbI .txt file such as "
                                f"en/qa1_single-supporting-fact_train.txt")
    lines = []
    for i, raw in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise BabiFormatError(f"{path}:{i}: not UTF-8 text (is this a bAbI .txt file?)") from None
    return lines


def _parse(lines: Iterable[str], source: str, task: int) -> tuple[list[Question], int]:
    """The parser proper: (questions, number of stories). bAbI has no blank lines: one is an error at its line."""
    questions: list[Question] = []
    n_stories = 0
    n_lines = 0
    prev_id = 0                          # id of the previous line of the current story (0: no story yet)
    statements: list[tuple[str, ...]] = []
    statement_index: dict[int, int] = {}  # line id -> index into `statements`
    question_ids: set[int] = set()
    for lineno, line in enumerate(lines, start=1):
        line = line.rstrip("\r\n")
        where = f"{source}:{lineno}"
        if not line.strip():
            raise BabiFormatError(f"{where}: a {'blank' if not line else 'whitespace-only'} line; bAbI files have "
                                  f"none (every line is 'ID text')")
        n_lines += 1
        head, _, rest = line.lstrip().partition(" ")
        if not (head.isascii() and head.isdigit()):          # ASCII digits only: int() would take '+3' or '٣'
            if re.fullmatch(r"[+-]?\d+", head):
                raise BabiFormatError(f"{where}: the id {head!r} is not a plain whole number (ids count 1, 2, 3, … "
                                      f"in each story)")
            if re.match(r"[+-]?\d", head):
                raise BabiFormatError(f"{where}: the id {head!r} is not an integer")
            raise BabiFormatError(f"{where}: missing id; every line must start with 'ID ' "
                                  f"(an integer counting from 1 in each story), got {line[:40]!r}")
        line_id = int(head)
        if line_id == 1:                 # a new story
            n_stories += 1
            statements, statement_index, question_ids = [], {}, set()
        elif prev_id == 0:
            raise BabiFormatError(f"{where}: the first line must have id 1, got {line_id}")
        elif line_id != prev_id + 1:
            raise BabiFormatError(f"{where}: id {line_id} follows id {prev_id}; ids must go up by 1 within a story "
                                  f"(or restart at 1 for a new story)")
        prev_id = line_id
        fields = rest.split("\t")
        text = fields[0]
        if not text.strip():
            raise BabiFormatError(f"{where}: id {line_id} has no text")
        if len(fields) == 1:             # a statement
            if text.rstrip().endswith("?"):
                raise BabiFormatError(f"{where}: question line without answer; expected "
                                      f"'ID question?<TAB>answer<TAB>supporting ids'")
            if "?" in text:
                raise BabiFormatError(f"{where}: a '?' inside a statement: is this a question line whose tabs were "
                                      f"lost? expected 'ID question?<TAB>answer<TAB>supporting ids'")
            statement_index[line_id] = len(statements)
            statements.append(tuple(tokenize(text)))
            continue
        # a question line: question \t answer \t supporting ids [\t nothing]
        if any(f.strip() for f in fields[3:]):
            raise BabiFormatError(f"{where}: too many tab-separated fields ({len(fields)}); expected "
                                  f"'ID question?<TAB>answer<TAB>supporting ids'")
        answer_text = fields[1].strip().lower()
        answer = tuple(a.strip() for a in answer_text.split(","))
        if not answer_text or not all(answer):
            raise BabiFormatError(f"{where}: question line without answer"
                                  + (f" (empty item in {answer_text!r})" if answer_text else ""))
        supporting = []
        for s in (fields[2].split() if len(fields) > 2 else []):
            if not (s.isascii() and s.isdigit()):
                raise BabiFormatError(f"{where}: supporting fact id {s!r} is not an integer")
            sid = int(s)
            if sid in statement_index:
                supporting.append(statement_index[sid])
            elif sid in question_ids:
                raise BabiFormatError(f"{where}: supporting fact id {sid} points at a question line, not a statement")
            else:
                raise BabiFormatError(f"{where}: supporting fact id {sid} is not an earlier statement of this story "
                                      f"(the story so far has ids 1..{line_id - 1})")
        question_ids.add(line_id)
        questions.append(Question(story=tuple(statements), question=tuple(tokenize(text)), answer=answer,
                                  supporting=tuple(supporting), task=task, source=where))
    if n_lines == 0:
        raise BabiFormatError(f"{source}: file is empty")
    if not questions:
        raise BabiFormatError(f"{source}: no question lines (expected 'ID question?<TAB>answer<TAB>supporting ids')")
    return questions, n_stories


def _parse_any(path, task: int, source: str | None) -> tuple[list[Question], int]:
    if isinstance(path, (str, os.PathLike)):
        path = Path(path)
        if task == 0:                    # infer it from the official file name, qa{task}_..._{split}.txt
            m = _TASK_IN_NAME.match(path.name)
            task = int(m.group(1)) if m else 0
        return _parse(_read_lines(path), source or str(path), task)
    return _parse(path, source or "<lines>", task)


def parse_babi(path, task: int = 0, source: str | None = None) -> list[Question]:
    """Parse a bAbI v1.2 file into its questions.

    `path` is a file name (str or PathLike) or an iterable of lines (e.g. a generator's output); `source` names
    the data in error messages and in `Question.source` (default: the path, or "<lines>"). With task=0 the task is
    read from an official file name (qa3_... -> 3), else left 0. Raises BabiFormatError("path:line: ...") for a
    malformed line and DataNotFoundError for a missing file.
    """
    return _parse_any(path, task, source)[0]


def format_babi(questions: Sequence[Question]) -> list[str]:
    """bAbI lines that parse back to the same questions: each question as a story of its own (its statements,
    then the question line with its answer and supporting ids). Stories, questions, answers and supporting facts
    round-trip; the file's grouping of questions into stories and the line numbers do not."""
    lines = []
    for q in questions:
        for i, s in enumerate(q.story, start=1):
            lines.append(f"{i} {' '.join(s)}.")
        ids = " ".join(str(j + 1) for j in q.supporting)
        lines.append(f"{len(q.story) + 1} {' '.join(q.question)}?\t{','.join(q.answer)}\t{ids}")
    return lines


# ---------------------------------------------------------------------------------------------------------------
# finding the files

def _holds_subsets(p: Path) -> bool:
    return any((p / s).is_dir() for s in SUBSETS)


def resolve_data_dir(data: str | os.PathLike | None = None) -> Path:
    """The tasks_1-20_v1-2 folder (the one holding en/ and en-10k/).

    `data` (or, when None, the MEMNET_DATA environment variable) may name that folder or its parent.
    """
    origin = "--data"
    if data is None or str(data) == "":
        data = os.environ.get("MEMNET_DATA") or None
        origin = "MEMNET_DATA"
        if data is None:
            raise DataNotFoundError(f"no bAbI data folder given (no --data DIR, MEMNET_DATA is not set); "
                                    f"{HOW_TO_GET_DATA}")
    p = Path(data).expanduser()
    if not p.exists():
        raise DataNotFoundError(f"bAbI data folder {p} (from {origin}) does not exist; {HOW_TO_GET_DATA}")
    if not p.is_dir():
        raise DataNotFoundError(f"bAbI data folder {p} (from {origin}) is not a folder; {HOW_TO_GET_DATA}")
    if _holds_subsets(p):
        return p
    if _holds_subsets(p / FOLDER):
        return p / FOLDER
    if p.name in SUBSETS and _holds_subsets(p.parent):       # the en/ or en-10k/ folder itself
        return p.parent
    raise DataNotFoundError(f"{p} (from {origin}) holds neither en/ nor en-10k/ nor {FOLDER}/; point it at the "
                            f"{FOLDER} folder of the bAbI v1.2 archive, or {HOW_TO_GET_DATA}")


def _check_task(task) -> int:
    if isinstance(task, bool) or not isinstance(task, (int, np.integer)) or not 1 <= task <= 20:
        raise ValueError(f"task must be 1..20, got {task!r}")
    return int(task)


def task_files(root, task: int, tenk: bool = False) -> tuple[Path, Path]:
    """(train, test) files of one task: en/qa{task}_*_{train,test}.txt, or under en-10k/ with tenk=True."""
    task = _check_task(task)
    root = resolve_data_dir(root)
    sub = "en-10k" if tenk else "en"
    found = []
    for split in ("train", "test"):
        hits = sorted((root / sub).glob(f"qa{task}_*_{split}.txt"))
        if not hits:
            expected = root / sub / f"qa{task}_{TASK_NAMES[task]}_{split}.txt"
            raise DataNotFoundError(f"bAbI file not found: {expected}; {HOW_TO_GET_DATA}")
        if len(hits) > 1:
            raise ValueError(f"several files match qa{task}_*_{split}.txt in {root / sub}: "
                             + ", ".join(h.name for h in hits))
        found.append(hits[0])
    return found[0], found[1]


# ---------------------------------------------------------------------------------------------------------------
# vocabulary

def _describe_sources(question_lists) -> str:
    files: list[str] = []
    for qs in question_lists:
        for origin in dict.fromkeys(q.source.rsplit(":", 1)[0] for q in qs):   # distinct, in order
            name = os.path.basename(origin)
            if name not in files:
                files.append(name)
    if not files:
        return "no questions"
    shown = ", ".join(files[:3])
    return shown + (f" and {len(files) - 3} more" if len(files) > 3 else "")


class Vocab:
    """Word <-> id. Id 0 is the null (padding) word "<nil>"; the others are in the order given."""

    def __init__(self, words: Sequence[str], source: str = "a word list"):
        words = list(words)
        if not words or words[0] != NIL:
            raise ValueError(f"a vocabulary must start with the null word {NIL!r}, got {words[:1]}")
        bad = [w for w in words if not isinstance(w, str) or not w]
        if bad:
            raise ValueError(f"vocabulary entries must be non-empty strings, got {bad[:3]}")
        index = {w: i for i, w in enumerate(words)}
        if len(index) != len(words):
            dups = sorted({w for w in words if words.count(w) > 1})
            raise ValueError(f"duplicate words in vocabulary: {dups[:5]}")
        self.words = words
        self.index = index
        self.source = source             # what it was built from, for error messages

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word) -> bool:
        return word in self.index

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and self.words == other.words

    def __repr__(self) -> str:
        return f"Vocab({len(self)} words: {', '.join(self.words[:6])}{', ...' if len(self) > 6 else ''})"

    def encode(self, tokens: Iterable[str], where: str = "") -> list[int]:
        """Word ids; an unknown word raises UnknownWordError naming it and `where`."""
        tokens = list(tokens)
        unknown = list(dict.fromkeys(t for t in tokens if t not in self.index))
        if not unknown:
            return [self.index[t] for t in tokens]
        what = ("unknown word " if len(unknown) == 1 else "unknown words ") + ", ".join(repr(w) for w in unknown)
        raise UnknownWordError(f"{what}{' in ' + where if where else ''}; the vocabulary was built from "
                               f"{self.source} ({len(self)} words)", unknown, where)

    def decode(self, ids) -> list[str]:
        """Words of the ids, skipping the null word 0."""
        out = []
        for i in np.asarray(ids).ravel():
            i = int(i)
            if not 0 <= i < len(self.words):
                raise ValueError(f"word id {i} is outside the vocabulary [0, {len(self.words)})")
            if i:
                out.append(self.words[i])
        return out

    def to_list(self) -> list[str]:
        return list(self.words)

    @classmethod
    def from_list(cls, words: Sequence[str]) -> Vocab:
        return cls(words, source="a saved word list")


def build_vocab(*question_lists: Sequence[Question]) -> Vocab:
    """Every story and question word plus every answer_token, sorted; "<nil>" is id 0."""
    words: set[str] = set()
    for qs in question_lists:
        for q in qs:
            for s in q.story:
                words.update(s)
            words.update(q.question)
            words.add(q.answer_token)
    words.discard(NIL)
    return Vocab([NIL] + sorted(words), source=_describe_sources(question_lists))


# ---------------------------------------------------------------------------------------------------------------
# arrays

@dataclass
class BabiArrays:
    """One split, vectorised. Memory slots are oldest first; unused slots and word positions hold 0."""
    stories: np.ndarray        # (N, M, L) int64 word ids
    queries: np.ndarray        # (N, L) int64
    answers: np.ndarray        # (N,) int64 id of answer_token
    mask: np.ndarray           # (N, M) bool, slot holds a sentence
    supporting: np.ndarray     # (N, M) bool, slot holds a supporting fact
    tasks: np.ndarray          # (N,) int64
    questions: list            # list[Question], same order
    sentences: np.ndarray      # (S, L) int64 every distinct sentence once; row 0 is the empty sentence
    slots: np.ndarray          # (N, M) int64 row of `sentences` in each slot: stories == sentences[slots]
    supporting_order: np.ndarray | None = None   # (N, S) int64 slot of each supporting fact in the file's order
    #                            (the order of reasoning: hop 1 first); NO_FACT (-1) pads, CUT_OFF (-2) marks a
    #                            fact the memory limit cut off. S = most supporting facts of any question (>= 1).

    def __len__(self) -> int:
        return int(self.stories.shape[0])

    def take(self, idx) -> BabiArrays:
        """Rows `idx` (ints, or a boolean mask of length N)."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64).ravel()                               # (n,)
        order = None if self.supporting_order is None else self.supporting_order[idx]
        return BabiArrays(self.stories[idx], self.queries[idx], self.answers[idx], self.mask[idx],
                          self.supporting[idx], self.tasks[idx], [self.questions[i] for i in idx],
                          self.sentences, self.slots[idx], order)


NO_FACT = -1                        # supporting_order: no further supporting fact
CUT_OFF = -2                        # supporting_order: a supporting fact the memory limit cut off


def _kept(q: Question, memory_size: int) -> tuple[tuple[tuple[str, ...], ...], int]:
    """The last memory_size statements and how many were cut off in front."""
    cut = max(0, len(q.story) - memory_size)
    return q.story[cut:], cut


def _sizes(questions: Sequence[Question], memory_size: int) -> tuple[int, int]:
    """(longest kept story, longest kept sentence or question)."""
    m, length = 0, 0
    for q in questions:
        kept, _ = _kept(q, memory_size)
        m = max(m, len(kept))
        length = max(length, len(q.question), max((len(s) for s in kept), default=0))
    return m, length


def vectorize(questions: Sequence[Question], vocab: Vocab, memory_size: int = 50, sentence_len: int | None = None,
              slots: int | None = None) -> BabiArrays:
    """Word-id arrays of the questions; each story keeps its LAST memory_size statements.

    M = slots, or min(memory_size, longest kept story) (at least 1); L = sentence_len, or the longest kept
    sentence or question. A supporting fact cut off by the memory limit is simply absent from `supporting`;
    `supporting_order` keeps the facts in the file's order, a cut-off one as CUT_OFF.
    """
    if memory_size < 1:
        raise ValueError(f"memory_size must be at least 1, got {memory_size}")
    questions = list(questions)
    longest, longest_len = _sizes(questions, memory_size)
    M = max(1, longest) if slots is None else int(slots)
    L = max(1, longest_len) if sentence_len is None else int(sentence_len)
    if M < 1 or L < 1:
        raise ValueError(f"slots and sentence_len must be at least 1, got slots={slots}, sentence_len={sentence_len}")
    N = len(questions)

    # Each distinct sentence is encoded once; row 0 of `table` is the empty (padding) sentence.
    sentence_id: dict[tuple[str, ...], int] = {}
    rows: list[list[int]] = [[]]
    slot_ids = np.zeros((N, M), dtype=np.int64)                          # (N, M) row of `table` per slot
    queries = np.zeros((N, L), dtype=np.int64)                           # (N, L)
    answers = np.zeros(N, dtype=np.int64)                                # (N,)
    mask = np.zeros((N, M), dtype=bool)                                  # (N, M)
    supporting = np.zeros((N, M), dtype=bool)                            # (N, M)
    tasks = np.array([q.task for q in questions], dtype=np.int64)        # (N,)
    S = max([1] + [len(q.supporting) for q in questions])
    supporting_order = np.full((N, S), NO_FACT, dtype=np.int64)          # (N, S)
    for n, q in enumerate(questions):
        kept, cut = _kept(q, memory_size)
        if len(kept) > M:
            raise ValueError(f"{q.source}: the story keeps {len(kept)} statements but there are only {M} slots")
        ids = []
        for s in kept:
            i = sentence_id.get(s)
            if i is None:
                if len(s) > L:
                    raise SentenceTooLongError(f"{q.source}: a statement of its story has {len(s)} words, more "
                                               f"than sentence_len={L}: {' '.join(s)!r}")
                i = sentence_id[s] = len(rows)
                rows.append(vocab.encode(s, where=f"the story of {q.source}"))
            ids.append(i)
        slot_ids[n, :len(ids)] = ids
        mask[n, :len(ids)] = True
        for i, j in enumerate(q.supporting):
            if j >= cut:
                supporting[n, j - cut] = True
            supporting_order[n, i] = j - cut if j >= cut else CUT_OFF
        if len(q.question) > L:
            raise SentenceTooLongError(f"{q.source}: the question has {len(q.question)} words, more than "
                                       f"sentence_len={L}")
        queries[n, :len(q.question)] = vocab.encode(q.question, where=q.source)
        answers[n] = vocab.encode([q.answer_token], where=f"the answer of {q.source}")[0]
    table = np.zeros((len(rows), L), dtype=np.int64)                     # (S+1, L) distinct sentences
    for i, r in enumerate(rows):
        table[i, :len(r)] = r
    stories = table[slot_ids]                                            # (N, M, L)
    return BabiArrays(stories, queries, answers, mask, supporting, tasks, questions, table, slot_ids,
                      supporting_order)


def random_story_arrays(rng: np.random.Generator, N: int, M: int, L: int, V: int, min_sentences: int = 1):
    """Random word-id arrays shaped like a vectorised split, for the models' `example_batch`: stories (N, M, L) of
    min_sentences..M sentences (the first story has exactly one) with padded sentences of random length, queries
    (N, L) with a padded last word, answers (N,), mask (N, M)."""
    stories = rng.integers(1, V, size=(N, M, L))
    lengths = rng.integers(1, L + 1, size=(N, M))
    stories[np.arange(L) >= lengths[..., None]] = 0
    n = rng.integers(min_sentences, M + 1, size=N)
    n[0] = 1
    mask = np.arange(M) < n[:, None]
    stories[~mask] = 0
    queries = rng.integers(1, V, size=(N, L))
    queries[:, L - 1] = 0
    answers = rng.integers(1, V, size=N)
    return stories, queries, answers, mask


def split_validation(questions: Sequence[Question], fraction: float = 0.1) -> tuple[list, list]:
    """(train, validation): the LAST round(n * fraction) questions are the validation set."""
    if not 0 <= fraction < 1:
        raise ValueError(f"the validation fraction must be in [0, 1), got {fraction}")
    questions = list(questions)
    n_val = int(round(len(questions) * fraction))
    cut = len(questions) - n_val
    return questions[:cut], questions[cut:]


# ---------------------------------------------------------------------------------------------------------------
# datasets

@dataclass
class BabiDataset:
    train: BabiArrays
    val: BabiArrays
    test: BabiArrays           # joint: every task's test questions, one after the other; split with test.tasks
    vocab: Vocab
    memory_size: int           # M of the arrays
    sentence_len: int          # L of the arrays
    tasks: tuple               # tuple[int, ...]
    name: str                  # "bAbI 1k task 1", "bAbI 10k joint", "generated task 1"
    source: str = "generated"  # where the questions come from: "bAbI 1k", "bAbI 10k" or "generated" (a model's
                               # per-task settings read this, not the name)


def _task_list(tasks) -> tuple[int, ...]:
    if isinstance(tasks, str):
        key = tasks.strip().lower()
        if key in ("joint", "all"):
            return tuple(range(1, 21))
        try:
            tasks = [int(t) for t in key.split(",")]
        except ValueError:
            raise ValueError(f"tasks must be a task number 1..20, a list of them, 'joint' or 'all'; "
                             f"got {tasks!r}") from None
    elif isinstance(tasks, (int, np.integer)) and not isinstance(tasks, bool):
        tasks = [tasks]
    out = tuple(sorted({_check_task(t) for t in tasks}))
    if not out:
        raise ValueError("no tasks given")
    return out


def _check_stories(questions: Sequence[Question]) -> None:
    for q in questions:
        if not q.story:
            raise BabiFormatError(f"{q.source}: the question has no statement before it in its story "
                                  f"(an empty memory); a memory network needs at least one")


def _assemble(train_qs, val_qs, test_qs, memory_size: int, tasks, name: str, source: str) -> BabiDataset:
    """Vectorise the three splits with one vocabulary and shapes taken from the training file alone.

    M = min(memory_size, the longest training story) and L = the longest training sentence or question, as the
    official code sizes its model (`config.sz = min(50, size(story, 2))` over the training file; train and
    validation both come from it). Test data never shapes the model: a longer test story keeps its last M
    sentences, as the official `test.m` does; a test sentence longer than L is an error that says so.
    """
    for qs in (train_qs, val_qs, test_qs):
        _check_stories(qs)
    vocab = build_vocab(train_qs, val_qs, test_qs)
    M, L = _sizes(list(train_qs) + list(val_qs), memory_size)
    M, L = max(1, M), max(1, L)
    arrays = [vectorize(qs, vocab, M, sentence_len=L, slots=M) for qs in (train_qs, val_qs)]
    try:
        test = vectorize(test_qs, vocab, M, sentence_len=L, slots=M)
    except SentenceTooLongError as e:
        raise SentenceTooLongError(f"{e} (the longest sentence or question of the training file; the model's "
                                   f"sentence length is fixed by the training data)") from None
    return BabiDataset(arrays[0], arrays[1], test, vocab, M, L, tuple(tasks), name, source)


def load_babi(tasks: int | Sequence[int] | str = 1, data_dir=None, tenk: bool = False, memory_size: int = 50,
              val_fraction: float = 0.1, heldout: int = 0) -> BabiDataset:
    """bAbI train / validation / test arrays for one task, several, or "joint" (all 20) with one vocabulary.

    The vocabulary covers train and test of every chosen task (as the papers' code did). Validation is the last
    val_fraction of EACH task's training file. Train, val and test share one M and L, taken from the training
    files alone (see `_assemble`).

    heldout=n (1k only) puts n held-out questions of each task in the place of its test file (`heldout_questions`:
    questions of the 10k training file that the 1k files do not hold), a validation set 30 times the size of the
    1k one for choosing settings without looking at the test file. The name says so ("… held-out").
    """
    task_list = _task_list(tasks)
    root = resolve_data_dir(data_dir)
    if heldout and tenk:
        raise ValueError("heldout questions come from the 10k training file: they hold out from the 1k data only")
    train, val, test = [], [], []
    for t in task_list:
        train_path, test_path = task_files(root, t, tenk)
        tr, va = split_validation(parse_babi(train_path, t), val_fraction)
        train += tr
        val += va
        test += heldout_questions(t, heldout, root) if heldout else parse_babi(test_path, t)
    size = "10k" if tenk else "1k"
    if task_list == tuple(range(1, 21)):
        what = "joint"
    elif len(task_list) == 1:
        what = f"task {task_list[0]}"
    else:
        what = "tasks " + ",".join(map(str, task_list))
    name = f"bAbI {size} {what}" + (" held-out" if heldout else "")
    return _assemble(train, val, test, memory_size, task_list, name, f"bAbI {size}")


def heldout_questions(task: int, n: int = 3000, data_dir=None) -> list[Question]:
    """The last n questions of a task's 10k training file whose (story, question) is in neither 1k file.

    The 1k training file is the first 1,000 questions of the 10k one, so these are stories the 1k model never
    sees; a few of them repeat a 1k question word for word, and those are left out. Raises ValueError when the
    10k file has fewer than n such questions, DataNotFoundError when it is missing (task 3's, in some copies).
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    root = resolve_data_dir(data_dir)
    (train_1k, test_1k), (train_10k, _) = task_files(root, task), task_files(root, task, tenk=True)
    seen = {(q.story, q.question) for q in parse_babi(train_1k, task) + parse_babi(test_1k, task)}
    held = [q for q in parse_babi(train_10k, task) if (q.story, q.question) not in seen]
    if len(held) < n:
        raise ValueError(f"task {task}: the 10k training file has {len(held)} questions the 1k files do not hold, "
                         f"fewer than the {n} asked for")
    return held[-n:]


def load_generated(task: int = 1, n_train: int = 1000, n_test: int = 1000, seed: int = 0, memory_size: int = 50,
                   val_fraction: float = 0.1) -> BabiDataset:
    """A dataset from the built-in story generator (no download needed): train with `seed`, test with seed + 1."""
    from memnet_np.data.generate import generate     # imported here: the generator is only needed on this path

    task = int(task)
    train_lines = generate(task, n_train, seed)
    test_lines = generate(task, n_test, seed + 1)
    train_all = parse_babi(train_lines, task, source=f"generated task {task} train (seed {seed})")
    test = parse_babi(test_lines, task, source=f"generated task {task} test (seed {seed + 1})")
    train, val = split_validation(train_all, val_fraction)
    return _assemble(train, val, test, memory_size, (task,), f"generated task {task}", "generated")


# ---------------------------------------------------------------------------------------------------------------
# checking a folder

@dataclass
class TaskStats:
    task: int
    split: str                 # "train" or "test"
    path: Path
    stories: int
    questions: int
    max_story: int             # most statements before a question
    max_sentence_len: int      # most tokens in a statement or a question
    vocab_size: int            # distinct words of the file, answer tokens included, null word excluded

    @property
    def subset(self) -> str:   # "en" or "en-10k"
        return Path(self.path).parent.name


def check_folder(data_dir=None, tenk: bool | None = None) -> list[TaskStats]:
    """Parse every task file under en/ (tenk=False), en-10k/ (True) or both that exist (None); return their stats.

    Raises BabiFormatError on the first malformed line, DataNotFoundError when there is no task file at all.
    """
    root = resolve_data_dir(data_dir)
    if tenk is None:
        subsets = [s for s in SUBSETS if (root / s).is_dir()]
    else:
        subsets = ["en-10k" if tenk else "en"]
        if not (root / subsets[0]).is_dir():
            raise DataNotFoundError(f"{root / subsets[0]} does not exist; {HOW_TO_GET_DATA}")
    stats = []
    for sub in subsets:
        for task in range(1, 21):
            for split in ("train", "test"):
                for path in sorted((root / sub).glob(f"qa{task}_*_{split}.txt")):
                    qs, n_stories = _parse_any(path, task, None)
                    max_story, max_len = _sizes(qs, 10 ** 9)
                    stats.append(TaskStats(task, split, path, n_stories, len(qs), max_story, max_len,
                                           len(build_vocab(qs)) - 1))
    if not stats:
        raise DataNotFoundError(f"no bAbI task files (qa*_*_train.txt / qa*_*_test.txt) under "
                                f"{', '.join(str(root / s) for s in subsets) or root}; {HOW_TO_GET_DATA}")
    return stats


def format_stats(stats: Sequence[TaskStats]) -> str:
    """An aligned text table of check_folder's results."""
    header = ("set", "task", "split", "stories", "questions", "max story", "max sentence", "vocab")
    rows = [(s.subset, f"{s.task:>2} {TASK_NAMES.get(s.task, '')}".rstrip(), s.split, str(s.stories), str(s.questions),
             str(s.max_story), str(s.max_sentence_len), str(s.vocab_size)) for s in stats]
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    left = {0, 1, 2}                     # text columns; numbers are right-aligned

    def fmt(r):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    return "\n".join([fmt(header), fmt(tuple("-" * w for w in widths))] + [fmt(r) for r in rows])
