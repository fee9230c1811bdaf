"""The bAbI reader: parsing, supporting facts -> memory slots, vocabulary, arrays, loaders, folder checks, errors."""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from memnet_np import data
from memnet_np.data import (
    BabiFormatError, DataNotFoundError, UnknownWordError, Vocab, build_vocab, check_folder, format_stats, load_babi,
    load_generated, parse_babi, resolve_data_dir, split_validation, task_files, tokenize, vectorize,
)

TRAIN1 = "qa1_single-supporting-fact_train.txt"
TEST1 = "qa1_single-supporting-fact_test.txt"


def lines_file(tmp_path, text, name="qa1_single-supporting-fact_train.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def story_lines(n_statements, supporting_ids, answer="s1"):
    """A story of n statements "s<i> is here." followed by one question."""
    lines = [f"{i} s{i} is here." for i in range(1, n_statements + 1)]
    lines.append(f"{n_statements + 1} Where is it? \t{answer}\t{' '.join(map(str, supporting_ids))}")
    return lines


# ---------------------------------------------------------------------------------------------------------------
# tokenising and parsing

def test_tokenize():
    assert tokenize("Where is Mary? ") == ["where", "is", "mary"]
    assert tokenize("Mary moved to the bathroom.") == ["mary", "moved", "to", "the", "bathroom"]
    assert tokenize("Sandra got the milk, then left!") == ["sandra", "got", "the", "milk", ",", "then", "left", "!"]
    assert tokenize("  ") == []


def test_task_names():
    assert len(data.TASK_NAMES) == 20
    assert data.TASK_NAMES[1] == "single-supporting-fact" and data.TASK_NAMES[20] == "agents-motivations"


def test_parse_tiny_interleaved_ids(tiny_babi_dir):
    path = tiny_babi_dir / "en" / TRAIN1
    qs = parse_babi(path)
    assert len(qs) == 10
    assert all(q.task == 1 for q in qs)                        # read from the file name
    q = qs[0]
    assert q.story == (("mary", "moved", "to", "the", "bathroom"), ("john", "went", "to", "the", "hallway"))
    assert q.question == ("where", "is", "mary")
    assert q.answer == ("bathroom",) and q.answer_token == "bathroom"
    assert q.supporting == (0,)
    assert q.source == f"{path}:3"
    # id 4 is the third statement: id 3 was a question and is not in the story
    assert qs[1].supporting == (2,) and qs[1].story[2] == ("daniel", "went", "back", "to", "the", "hallway")
    assert len(qs[1].story) == 4
    # id 9 -> statements 1 2 4 5 7 9 -> index 5
    assert qs[3].supporting == (5,) and qs[3].story[5] == ("sandra", "journeyed", "to", "the", "bathroom")
    # a new story starts empty
    assert qs[4].story == (("john", "travelled", "to", "the", "garden"),) and qs[4].supporting == (0,)
    # story 3: two questions in a row (ids 3 and 4), then id 7 -> statements 1 2 5 7 -> index 3
    assert [len(q.story) for q in qs[6:]] == [2, 2, 3, 4]
    assert qs[7].supporting == (1,) and qs[7].story[1][0] == "sandra"
    assert qs[9].supporting == (3,) and qs[9].story[3] == ("john", "went", "back", "to", "the", "bathroom")
    assert qs[9].source.endswith(":23")


def test_parse_lines_with_source():
    lines = ["1 Bill went to the park.", "2 Fred went home.", "3 Where is Bill? \tpark\t1"]
    qs = parse_babi(lines, 7, source="generated")
    assert len(qs) == 1 and qs[0].task == 7 and qs[0].source == "generated:3"
    assert qs[0].supporting == (0,)
    assert parse_babi(iter(lines))[0].source == "<lines>:3"     # any iterable of lines; task unknown -> 0
    assert parse_babi(iter(lines))[0].task == 0


def test_parse_comma_answer_and_several_supporting():
    lines = ["1 Mary got the apple.", "2 John left.", "3 Mary got the milk.",
             "4 What is Mary carrying? \tApple,milk\t1 3"]
    q = parse_babi(lines)[0]
    assert q.answer == ("apple", "milk") and q.answer_token == "apple,milk"
    assert q.supporting == (0, 2)


def test_question_is_frozen():
    q = parse_babi(["1 a b.", "2 c?\td\t1"])[0]
    with pytest.raises(Exception):
        q.answer = ("x",)


# ---------------------------------------------------------------------------------------------------------------
# real data

def test_real_task1(babi_root):
    qs = parse_babi(babi_root / "en" / TRAIN1)
    assert len(qs) == 1000
    assert qs[0].story == (("mary", "moved", "to", "the", "bathroom"), ("john", "went", "to", "the", "hallway"))
    assert qs[0].answer == ("bathroom",) and qs[0].supporting == (0,)
    for q in qs:                                                  # the supporting statement names the answer
        assert len(q.supporting) == 1
        fact = q.story[q.supporting[0]]
        assert q.answer[0] == fact[-1] and q.question[-1] == fact[0]


def test_real_task2_supporting(babi_root):
    qs = parse_babi(babi_root / "en" / "qa2_two-supporting-facts_train.txt")
    assert len(qs) == 1000 and all(q.task == 2 for q in qs)
    for q in qs:
        assert len(q.supporting) == 2
        facts = [q.story[i] for i in q.supporting]
        obj = q.question[-1]                                      # "where is the football"
        assert any(obj in f for f in facts)                       # one fact is about the object ...
        assert any(f[-1] == q.answer[0] for f in facts)           # ... the other places its holder in the answer


def test_real_task8_comma_answers(babi_root):
    qs = parse_babi(babi_root / "en" / "qa8_lists-sets_train.txt")
    multi = [q for q in qs if len(q.answer) > 1]
    assert len(qs) == 1000 and len(multi) == 76
    assert sum(q.answer == ("nothing",) for q in qs) == 344
    assert all("," in q.answer_token and q.answer_token == ",".join(q.answer) for q in multi)
    vocab = build_vocab(qs)
    for q in multi:
        assert q.answer_token in vocab                            # a comma answer is ONE class


def test_real_task19_paths(babi_root):
    qs = parse_babi(babi_root / "en" / "qa19_path-finding_train.txt")
    assert len(qs) == 1000
    assert all(len(q.answer) == 2 and set(q.answer) <= set("nsew") for q in qs)
    assert len({q.answer_token for q in qs}) == 12
    assert qs[0].answer_token == "s,e" or "," in qs[0].answer_token


def test_real_10k_file(babi_root):
    train, test = task_files(babi_root, 1, tenk=True)
    assert train.parent.name == "en-10k" and train.name == TRAIN1 and test.name == TEST1
    assert len(parse_babi(train)) == 10000
    missing = babi_root / "en-10k" / "qa3_three-supporting-facts_train.txt"
    if not missing.exists():                                      # the shared copy lacks it; a full download has it
        with pytest.raises(DataNotFoundError, match="qa3_three-supporting-facts_train.txt"):
            task_files(babi_root, 3, tenk=True)


# ---------------------------------------------------------------------------------------------------------------
# memory: slots, truncation, supporting facts

def test_supporting_facts_land_in_their_slots(babi_root):
    qs = parse_babi(babi_root / "en" / "qa2_two-supporting-facts_test.txt")
    vocab = build_vocab(qs)
    a = vectorize(qs, vocab)
    assert a.stories.shape[1] == 50                               # the longest story (88) is cut to 50
    for n, q in enumerate(qs):
        kept = q.story[-50:]
        cut = len(q.story) - len(kept)
        assert a.mask[n].sum() == len(kept)
        slots = np.flatnonzero(a.supporting[n])
        assert list(slots) == [i - cut for i in sorted(q.supporting) if i >= cut]
        for s in slots:
            assert vocab.decode(a.stories[n, s]) == list(kept[s])


def test_memory_keeps_last_50_and_drops_cut_off_support():
    qs = parse_babi(story_lines(60, [3, 58]))
    q = qs[0]
    assert q.supporting == (2, 57)
    vocab = build_vocab(qs)
    a = vectorize(qs, vocab, memory_size=50)
    assert a.stories.shape == (1, 50, 3) and a.mask.all()
    assert vocab.decode(a.stories[0, 0]) == ["s11", "is", "here"]       # oldest kept: statement 11
    assert vocab.decode(a.stories[0, 49]) == ["s60", "is", "here"]      # newest last
    assert np.flatnonzero(a.supporting[0]).tolist() == [47]            # id 58 -> slot 47; id 3 was cut off
    b = vectorize(qs, vocab, memory_size=100)
    assert b.stories.shape[1] == 60 and np.flatnonzero(b.supporting[0]).tolist() == [2, 57]


def test_supporting_order_keeps_the_files_order_and_marks_cut_off_facts():
    from memnet_np.data.babi import CUT_OFF, NO_FACT
    qs = parse_babi(story_lines(60, [58, 3]) + story_lines(4, [2]))
    vocab = build_vocab(qs)
    a = vectorize(qs, vocab, memory_size=50)
    assert a.supporting_order.tolist() == [[47, CUT_OFF], [1, NO_FACT]]   # id 58 first, as in the file
    b = vectorize(qs, vocab, memory_size=100)
    assert b.supporting_order.tolist() == [[57, 2], [1, NO_FACT]]
    assert a.take([1]).supporting_order.tolist() == [[1, NO_FACT]]
    for n in range(2):                                             # the same facts as the unordered mask
        order = a.supporting_order[n]
        assert sorted(order[order >= 0].tolist()) == np.flatnonzero(a.supporting[n]).tolist()


def test_memory_truncation_real_task3(babi_root):
    qs = parse_babi(babi_root / "en" / "qa3_three-supporting-facts_test.txt")
    assert max(len(q.story) for q in qs) == 228
    a = vectorize(qs, build_vocab(qs), memory_size=50)
    assert a.stories.shape[1] == 50
    assert (a.mask.sum(1) == [min(len(q.story), 50) for q in qs]).all()
    assert (a.supporting.sum(1) == [len(set(q.supporting)) for q in qs]).all()   # 50 slots never lose a support
    # a 20-slot memory does: exactly the supports older than the last 20 statements disappear
    b = vectorize(qs, build_vocab(qs), memory_size=20)
    kept = [sum(i >= len(q.story) - 20 for i in set(q.supporting)) for q in qs]
    assert (b.supporting.sum(1) == kept).all()
    assert sum(k < len(set(q.supporting)) for k, q in zip(kept, qs)) == 33


def test_padding_is_null_and_roundtrip(tiny_babi_dir):
    qs = parse_babi(tiny_babi_dir / "en" / TRAIN1)
    vocab = build_vocab(qs)
    assert vocab.words[0] == "<nil>" and vocab.index["<nil>"] == 0
    assert vocab.words[1:] == sorted(vocab.words[1:])
    a = vectorize(qs, vocab)
    M, L = 6, 6                                                    # 6 statements before the last question of story 1
    assert a.stories.shape == (10, M, L) and a.queries.shape == (10, L)
    assert a.stories.dtype == np.int64 and a.mask.dtype == bool and a.supporting.dtype == bool
    assert (a.stories[~a.mask] == 0).all()                         # empty slots are all null
    assert a.mask.sum(1).tolist() == [len(q.story) for q in qs]
    for n, q in enumerate(qs):
        assert vocab.decode(a.queries[n]) == list(q.question)
        assert a.queries[n, len(q.question):].sum() == 0
        assert vocab.words[a.answers[n]] == q.answer_token
        for j, s in enumerate(q.story):
            assert vocab.decode(a.stories[n, j]) == list(s)
            assert (a.stories[n, j, len(s):] == 0).all()
        assert a.supporting[n].tolist() == [j in q.supporting for j in range(M)]
    assert (a.tasks == 1).all() and a.questions == qs
    assert len(a) == 10


def test_take(tiny_babi_dir):
    qs = parse_babi(tiny_babi_dir / "en" / TRAIN1)
    a = vectorize(qs, build_vocab(qs))
    b = a.take(np.array([3, 0]))
    assert len(b) == 2 and b.questions == [qs[3], qs[0]]
    assert (b.stories[1] == a.stories[0]).all() and (b.answers == a.answers[[3, 0]]).all()
    c = a.take(a.mask.sum(1) >= 4)                                 # a boolean mask works too
    assert [len(q.story) for q in c.questions] == [4, 5, 6, 4]


def test_vectorize_sizes_and_empty_story():
    qs = parse_babi(["1 Where is it? \tnowhere\t"])
    assert qs[0].story == () and qs[0].supporting == ()
    a = vectorize(qs, build_vocab(qs))
    assert a.stories.shape == (1, 1, 3) and not a.mask.any() and (a.stories == 0).all()
    b = vectorize(qs, build_vocab(qs), sentence_len=7, slots=4)
    assert b.stories.shape == (1, 4, 7) and b.queries.shape == (1, 7)
    empty = vectorize([], build_vocab(qs), sentence_len=5, slots=3)
    assert empty.stories.shape == (0, 3, 5) and len(empty) == 0


def test_vectorize_errors(tiny_babi_dir):
    train = parse_babi(tiny_babi_dir / "en" / TRAIN1)
    test = parse_babi(tiny_babi_dir / "en" / TEST1)
    vocab = build_vocab(train)
    with pytest.raises(UnknownWordError) as e:
        vectorize(test, vocab)
    msg = str(e.value)
    assert "'kitchen'" in msg and f"{TEST1}:2" in msg and TRAIN1 in msg
    assert e.value.words == ("kitchen",)
    with pytest.raises(ValueError, match=f"{TRAIN1}:3: .* 5 words, more than sentence_len=4"):
        vectorize(train, vocab, sentence_len=4)
    with pytest.raises(ValueError, match="only 3 slots"):
        vectorize(train, vocab, slots=3)
    with pytest.raises(ValueError, match="memory_size"):
        vectorize(train, vocab, memory_size=0)


# ---------------------------------------------------------------------------------------------------------------
# vocabulary

def test_vocab_encode_decode_and_lists():
    v = Vocab(["<nil>", "a", "b", "c,d"])
    assert len(v) == 4 and "b" in v and "z" not in v
    assert v.encode(["b", "a", "c,d"]) == [2, 1, 3]
    assert v.decode(np.array([2, 0, 1, 0])) == ["b", "a"]
    assert Vocab.from_list(v.to_list()) == v and v.to_list() is not v.words
    with pytest.raises(UnknownWordError, match=r"unknown word 'foo' in f\.txt:12; the vocabulary was built from"):
        v.encode(["a", "foo"], where="f.txt:12")
    with pytest.raises(UnknownWordError, match="unknown words 'x', 'y'"):
        v.encode(["x", "y", "x"])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        v.decode([4])
    with pytest.raises(ValueError, match="null word"):
        Vocab.from_list(["a", "b"])
    with pytest.raises(ValueError, match="duplicate"):
        Vocab.from_list(["<nil>", "a", "a"])


def test_build_vocab_is_deterministic(tiny_babi_dir):
    train = parse_babi(tiny_babi_dir / "en" / TRAIN1)
    test = parse_babi(tiny_babi_dir / "en" / TEST1)
    v1, v2 = build_vocab(train, test), build_vocab(test, train)
    assert v1 == v2 and "kitchen" in v1 and "kitchen" not in build_vocab(train)
    assert v1.words == ["<nil>", "back", "bathroom", "bedroom", "daniel", "garden", "hallway", "is", "john",
                        "journeyed", "kitchen", "mary", "moved", "office", "sandra", "the", "to", "travelled",
                        "went", "where"]


# ---------------------------------------------------------------------------------------------------------------
# validation split and loaders

def test_split_validation_last_fraction():
    qs = list(range(1000))
    tr, va = split_validation(qs)
    assert tr == list(range(900)) and va == list(range(900, 1000))
    tr, va = split_validation(qs, 0.25)
    assert len(tr) == 750 and va[0] == 750
    assert split_validation(qs, 0.0) == (qs, [])
    assert split_validation(range(10), 0.14) == (list(range(9)), [9])     # round(1.4) = 1
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"\[0, 1\)"):
            split_validation(qs, bad)


def test_load_tiny(tiny_babi_dir):
    ds = load_babi(1, data_dir=tiny_babi_dir)
    assert ds.name == "bAbI 1k task 1" and ds.tasks == (1,) and ds.source == "bAbI 1k"
    assert (len(ds.train), len(ds.val), len(ds.test)) == (9, 1, 4)
    assert ds.val.questions[0].source.endswith(f"{TRAIN1}:23")           # the LAST training question
    assert "kitchen" in ds.vocab                                          # test words are in the vocabulary
    assert ds.memory_size == 6 and ds.sentence_len == 6
    for split in (ds.train, ds.val, ds.test):
        assert split.stories.shape[1:] == (6, 6) and split.queries.shape[1] == 6
    # the parent of tasks_1-20_v1-2 works too, and so does MEMNET_DATA
    assert load_babi(1, data_dir=tiny_babi_dir.parent).vocab == ds.vocab


def test_load_task1(babi_root):
    ds = load_babi(1, data_dir=babi_root)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (900, 100, 1000)
    assert ds.train.stories.shape == (900, 10, 6) and ds.test.stories.shape == (1000, 10, 6)
    assert len(ds.vocab) == 20                                             # 19 words + null


def test_load_joint_1k(babi_root):
    ds = load_babi("joint", data_dir=babi_root)
    assert ds.name == "bAbI 1k joint" and ds.tasks == tuple(range(1, 21))
    assert (len(ds.train), len(ds.val), len(ds.test)) == (18000, 2000, 20000)
    assert np.bincount(ds.train.tasks).tolist() == [0] + [900] * 20
    assert np.bincount(ds.val.tasks).tolist() == [0] + [100] * 20
    assert np.bincount(ds.test.tasks).tolist() == [0] + [1000] * 20
    assert ds.memory_size == 50 and ds.sentence_len == 11
    assert ds.train.stories.shape == (18000, 50, 11) and ds.test.stories.shape == (20000, 50, 11)
    assert len(ds.vocab) == 175                                            # one vocabulary over all 20 tasks
    assert {"n,w", "apple,milk", "bathroom", "<nil>"} <= set(ds.vocab.words)
    for split in (ds.train, ds.val, ds.test):
        assert split.stories.max() < len(ds.vocab) and split.answers.min() > 0
    # validation = the last 10% of EACH task's training file
    t8 = parse_babi(babi_root / "en" / "qa8_lists-sets_train.txt")
    assert ds.val.take(np.flatnonzero(ds.val.tasks == 8)).questions == t8[900:]
    assert [q.task for q in ds.val.questions[:101:100]] == [1, 2]


def test_load_several_tasks_and_task_arguments(babi_root):
    ds = load_babi([2, 1], data_dir=babi_root)
    assert ds.name == "bAbI 1k tasks 1,2" and ds.tasks == (1, 2) and len(ds.train) == 1800
    assert load_babi(2, data_dir=babi_root, tenk=True).source == "bAbI 10k"
    from memnet_np.data.babi import _task_list
    assert _task_list("all") == _task_list("joint") == _task_list(range(1, 21)) == tuple(range(1, 21))
    assert _task_list("3, 1") == _task_list([3, 1, 3]) == (1, 3) and _task_list(np.int64(3)) == (3,)


def test_load_generated_with_a_stub(monkeypatch):
    calls = []

    def fake_generate(task, n_questions, seed=0):
        calls.append((task, n_questions, seed))
        out = []
        for i in range(n_questions):
            out += [f"1 Mary went to room{seed}x{i}.", f"2 Where is Mary? \troom{seed}x{i}\t1"]
        return out

    stub = types.ModuleType("memnet_np.data.generate")
    stub.generate = fake_generate
    monkeypatch.setitem(sys.modules, "memnet_np.data.generate", stub)
    ds = load_generated(3, n_train=20, n_test=5, seed=7, val_fraction=0.1)
    assert calls == [(3, 20, 7), (3, 5, 8)]                               # test seed = seed + 1
    assert ds.name == "generated task 3" and ds.tasks == (3,) and ds.source == "generated"
    assert (len(ds.train), len(ds.val), len(ds.test)) == (18, 2, 5)
    assert ds.test.questions[0].answer_token == "room8x0" and ds.test.questions[0].task == 3
    assert ds.val.questions[-1].source == "generated task 3 train (seed 7):40"

    stub.generate = lambda task, n, seed=0: ["1 Where is Mary? \tkitchen\t"]
    with pytest.raises(BabiFormatError, match=r"generated task 3 train \(seed 7\):1: .*no statement before it"):
        load_generated(3, n_train=1, n_test=1, seed=7)


def test_load_generated_real_generator():
    gen = pytest.importorskip("memnet_np.data.generate")
    ds = load_generated(1, n_train=200, n_test=100, seed=0)
    assert len(ds.train) + len(ds.val) == 200 and len(ds.val) == 20 and len(ds.test) == 100
    assert ds.train.mask.any(1).all() and ds.train.supporting.any(1).all()
    assert data.generate is gen.generate                                  # the function, not the module
    assert 1 in data.GENERATED_TASKS


# ---------------------------------------------------------------------------------------------------------------
# folders and stats

def test_check_folder_tiny(tiny_babi_dir):
    stats = check_folder(tiny_babi_dir)
    assert [(s.task, s.split, s.subset) for s in stats] == [(1, "train", "en"), (1, "test", "en")]
    tr, te = stats
    assert (tr.stories, tr.questions, tr.max_story, tr.max_sentence_len, tr.vocab_size) == (3, 10, 6, 6, 18)
    assert (te.stories, te.questions, te.max_story, te.max_sentence_len, te.vocab_size) == (2, 4, 2, 5, 14)
    table = format_stats(stats).splitlines()
    assert table[0].split() == ["set", "task", "split", "stories", "questions", "max", "story", "max", "sentence",
                                "vocab"]
    assert table[2].split() == ["en", "1", "single-supporting-fact", "train", "3", "10", "6", "6", "18"]
    assert len({len(line) for line in table}) == 1                         # aligned columns
    with pytest.raises(DataNotFoundError, match="en-10k"):
        check_folder(tiny_babi_dir, tenk=True)


def test_check_folder_reports_first_bad_line(tiny_babi_dir):
    bad = tiny_babi_dir / "en" / "qa2_two-supporting-facts_train.txt"
    bad.write_text("1 Mary went home.\n2 Where is Mary? \thome\t1\n4 John left.\n", encoding="utf-8")
    with pytest.raises(BabiFormatError, match=f"^{bad}:3: id 4 follows id 2"):
        check_folder(tiny_babi_dir)


def test_check_folder_real_1k(babi_root):
    stats = check_folder(babi_root, tenk=False)
    assert len(stats) == 40 and all(s.subset == "en" for s in stats)
    assert all(s.questions == 1000 for s in stats)
    by = {(s.task, s.split): s for s in stats}
    assert by[3, "test"].max_story == 228 and by[3, "train"].max_story == 224
    assert {t for t in range(1, 21) if max(by[t, "train"].max_story, by[t, "test"].max_story) > 50} == {2, 3, 5, 8}
    assert max(s.max_sentence_len for s in stats) == 11 == by[17, "train"].max_sentence_len
    assert (by[1, "train"].stories, by[1, "train"].vocab_size) == (200, 19)


@pytest.mark.slow
def test_check_folder_real_10k(babi_root):
    stats = check_folder(babi_root, tenk=True)
    files = {(s.task, s.split) for s in stats}
    present = (babi_root / "en-10k" / "qa3_three-supporting-facts_train.txt").exists()
    assert len(stats) == (40 if present else 39) and ((3, "train") in files) == present
    for s in stats:
        assert s.questions == (10000 if s.split == "train" else 1000), s.path


# ---------------------------------------------------------------------------------------------------------------
# bad input: every error names what and where

@pytest.mark.parametrize("text, line, message", [
    ("Mary moved to the hallway.\n", 1, "missing id"),
    ("1 Mary moved.\n1.5 John moved.\n", 2, "the id '1.5' is not an integer"),
    ("2 Mary moved.\n", 1, "the first line must have id 1, got 2"),
    ("1 Mary moved.\n3 John moved.\n", 2, "id 3 follows id 1"),
    ("1 Mary moved.\n2 John moved.\n2 Sandra moved.\n", 3, "id 2 follows id 2"),
    ("1 Mary moved.\n2\n", 2, "id 2 has no text"),
    ("1 Mary moved.\n2 Where is Mary?\n", 2, "question line without answer"),
    ("1 Mary moved.\n2 Where is Mary? \t \t1\n", 2, "question line without answer"),
    ("1 Mary moved.\n2 What? \tapple,\t1\n", 2, "question line without answer"),
    ("1 Mary moved.\n2 Where is Mary? \tkitchen\t3\n", 2, "supporting fact id 3 is not an earlier statement"),
    ("1 Mary moved.\n2 Where is Mary? \tkitchen\t1\n3 Where? \tx\t2\n", 3, "points at a question line"),
    ("1 a.\n2 b.\n3 c.\n1 d.\n2 Where? \tx\t3\n", 5, "supporting fact id 3 is not an earlier statement"),
    ("1 Mary moved.\n2 Where is Mary? \tkitchen\tone\n", 2, "supporting fact id 'one' is not an integer"),
    ("1 Mary moved.\n2 Where? \tx\t1\tzz\n", 2, "too many tab-separated fields"),
    ("1 Mary moved to the bathroom.\n2 Where is Mary? bathroom 1\n", 2, "question line whose tabs were lost"),
    ("1 Mary moved.\n   \t \n2 Where is Mary? \tkitchen\t1\n", 2, "a whitespace-only line; bAbI files have none"),
    ("1 Mary moved.\n\n2 Where is Mary? \tkitchen\t1\n", 2, "a blank line"),
])
def test_malformed_lines(tmp_path, text, line, message):
    path = lines_file(tmp_path, text)
    with pytest.raises(BabiFormatError) as e:
        parse_babi(path)
    assert str(e.value).startswith(f"{path}:{line}: ")
    assert message in str(e.value)


def test_whole_file_errors(tmp_path):
    path = lines_file(tmp_path, "")
    with pytest.raises(BabiFormatError, match=f"^{path}: file is empty$"):
        parse_babi(path)
    path = lines_file(tmp_path, "\n  \n")
    with pytest.raises(BabiFormatError, match=f"^{path}:1: a blank line; bAbI files have none"):
        parse_babi(path)
    path = lines_file(tmp_path, "1 Mary moved.\n2 John moved.\n")
    with pytest.raises(BabiFormatError, match=f"^{path}: no question lines"):
        parse_babi(path)
    path = tmp_path / "binary.txt"
    path.write_bytes(b"1 Mary \xff\xfe moved.\n")
    with pytest.raises(BabiFormatError, match=f"^{path}:1: not UTF-8"):
        parse_babi(path)
    with pytest.raises(BabiFormatError, match="^generated: file is empty"):
        parse_babi([], source="generated")


def test_missing_file(tmp_path):
    path = tmp_path / "nope.txt"
    with pytest.raises(DataNotFoundError) as e:
        parse_babi(path)
    assert isinstance(e.value, FileNotFoundError) and str(path) in str(e.value)
    assert "MEMNET_DATA" in str(e.value)
    with pytest.raises(DataNotFoundError, match="is a folder"):
        parse_babi(tmp_path)


def test_resolve_data_dir(tiny_babi_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("MEMNET_DATA", raising=False)
    with pytest.raises(DataNotFoundError) as e:
        resolve_data_dir()
    for hint in ("--data", "MEMNET_DATA", "python -m memnet_np data download", "--generated"):
        assert hint in str(e.value)
    assert resolve_data_dir(tiny_babi_dir) == tiny_babi_dir
    assert resolve_data_dir(str(tiny_babi_dir.parent)) == tiny_babi_dir   # the parent holding tasks_1-20_v1-2/
    monkeypatch.setenv("MEMNET_DATA", str(tiny_babi_dir.parent))
    assert resolve_data_dir() == tiny_babi_dir
    assert resolve_data_dir(None) == tiny_babi_dir
    assert len(load_babi(1).train) == 9                                     # the loaders use it too
    monkeypatch.setenv("MEMNET_DATA", str(tmp_path / "missing"))
    with pytest.raises(DataNotFoundError, match=r"missing \(from MEMNET_DATA\) does not exist"):
        resolve_data_dir()
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(DataNotFoundError, match="holds neither en/ nor en-10k/"):
        resolve_data_dir(other)
    with pytest.raises(DataNotFoundError, match="is not a folder"):
        resolve_data_dir(tiny_babi_dir / "en" / TRAIN1)


def test_task_files(tiny_babi_dir):
    train, test = task_files(tiny_babi_dir, 1)
    assert (train.name, test.name) == (TRAIN1, TEST1)
    for bad in (0, 21, -1, True, "1"):
        with pytest.raises(ValueError, match=f"task must be 1..20, got {bad!r}"):
            task_files(tiny_babi_dir, bad)
    with pytest.raises(ValueError, match="^task must be 1..20, got 21$"):
        task_files(tiny_babi_dir, 21)
    with pytest.raises(DataNotFoundError, match=r"en/qa2_two-supporting-facts_train\.txt"):
        task_files(tiny_babi_dir, 2)
    with pytest.raises(DataNotFoundError, match=r"en-10k/qa1_single-supporting-fact_train\.txt"):
        task_files(tiny_babi_dir, 1, tenk=True)
    (tiny_babi_dir / "en" / "qa1_other_test.txt").write_text("1 a.\n2 b?\tc\t1\n")
    with pytest.raises(ValueError, match="several files match"):
        task_files(tiny_babi_dir, 1)


def test_load_babi_bad_tasks(tiny_babi_dir):
    for bad in (0, 21, "bogus", [], [1, 22]):
        with pytest.raises(ValueError):
            load_babi(bad, data_dir=tiny_babi_dir)
    with pytest.raises(ValueError, match="got 21"):
        load_babi(21, data_dir=tiny_babi_dir)
    with pytest.raises(DataNotFoundError, match="qa2_two-supporting-facts_train.txt"):
        load_babi([1, 2], data_dir=tiny_babi_dir)


def test_test_data_never_shapes_the_model(babi_root):
    # task 8: the training file's longest story is 46 sentences, a test story 58; sizing over all three
    # splits made the model 50 slots wide. The official code sizes it from the training file alone.
    ds = load_babi(8, data_dir=babi_root)
    assert ds.memory_size == 46
    assert ds.train.stories.shape[1] == ds.val.stories.shape[1] == ds.test.stories.shape[1] == 46
    test = parse_babi(babi_root / "en" / "qa8_lists-sets_test.txt", 8)
    longest = max(range(len(test)), key=lambda i: len(test[i].story))
    assert len(test[longest].story) == 58                                  # (50 after the old 50-cap)
    kept = [ds.vocab.decode(ds.test.stories[longest, s]) for s in range(46)]
    assert kept == [list(s) for s in test[longest].story[-46:]]           # the LAST 46 sentences, as test.m


def test_a_test_sentence_longer_than_any_training_sentence_is_a_clear_error(tiny_babi_dir):
    from memnet_np.data.babi import SentenceTooLongError
    longer = "1 Mary went to the big old dusty kitchen.\n2 Where is Mary? \tkitchen\t1\n"
    (tiny_babi_dir / "en" / TEST1).write_text(longer, encoding="utf-8")
    with pytest.raises(SentenceTooLongError, match=r"qa1_single-supporting-fact_test.txt:2: a statement of its "
                       r"story has 8 words, more than sentence_len=6.*longest sentence or question of the "
                       r"training file"):
        load_babi(1, data_dir=tiny_babi_dir)


def test_sentence_table_rebuilds_the_stories(tiny_babi_dir):
    ds = load_babi(1, data_dir=tiny_babi_dir)
    for split in (ds.train, ds.val, ds.test):
        assert np.array_equal(split.sentences[split.slots], split.stories)
        assert not split.sentences[0].any()                              # row 0: the empty sentence
        assert len({tuple(r) for r in split.sentences}) == len(split.sentences)   # each sentence once
    part = ds.train.take([3, 1])
    assert np.array_equal(part.sentences[part.slots], ds.train.stories[[3, 1]])


def test_the_en_folder_itself_is_accepted(tiny_babi_dir):
    from memnet_np.data.babi import resolve_data_dir
    assert resolve_data_dir(tiny_babi_dir / "en") == tiny_babi_dir
    assert load_babi(1, data_dir=tiny_babi_dir / "en").vocab == load_babi(1, data_dir=tiny_babi_dir).vocab


# ---------------------------------------------------------------------------------------------------------------
# held-out questions: the 10k training file past the 1k one


def test_heldout_questions_are_the_10k_files_questions_the_1k_files_do_not_hold(tiny_babi_dir):
    from memnet_np.data import heldout_questions
    en = tiny_babi_dir / "en"
    train_1k, test_1k = (en / TRAIN1).read_text(encoding="utf-8"), (en / TEST1).read_text(encoding="utf-8")
    new = ["1 Ann went to the park.\n2 Where is Ann? \tpark\t1\n",
           "1 Bob went to the shop.\n2 Where is Bob? \tshop\t1\n3 Bob went to the park.\n4 Where is Bob? \tpark\t3\n"]
    (tiny_babi_dir / "en-10k").mkdir()
    # the 10k file starts with the 1k one; after it, a story of the test file word for word, then two new ones
    (tiny_babi_dir / "en-10k" / TRAIN1).write_text(train_1k + test_1k.split("\n1 ")[0].rstrip("\n") + "\n"
                                                    + "".join(new), encoding="utf-8")
    (tiny_babi_dir / "en-10k" / TEST1).write_text(test_1k, encoding="utf-8")
    held = heldout_questions(1, 3, tiny_babi_dir)
    assert [q.question for q in held] == [("where", "is", "ann"), ("where", "is", "bob"), ("where", "is", "bob")]
    assert held[-1].story == (("bob", "went", "to", "the", "shop"), ("bob", "went", "to", "the", "park"))
    assert [q.question for q in heldout_questions(1, 1, tiny_babi_dir)] == [("where", "is", "bob")]   # the last n
    with pytest.raises(ValueError, match="task 1: the 10k training file has 3 questions the 1k files do not hold, "
                                         "fewer than the 4 asked for"):
        heldout_questions(1, 4, tiny_babi_dir)
    ds = load_babi(1, data_dir=tiny_babi_dir, heldout=3)
    assert ds.name == "bAbI 1k task 1 held-out" and len(ds.test) == 3 and len(ds.train) == 9
    assert ds.source == "bAbI 1k"                             # a 1k model's settings apply
    assert "ann" in ds.vocab and ds.test.questions == held
    with pytest.raises(ValueError, match="hold out from the 1k data only"):
        load_babi(1, data_dir=tiny_babi_dir, tenk=True, heldout=3)


def test_heldout_questions_real_task2(babi_root):
    from memnet_np.data import heldout_questions
    held = heldout_questions(2, 3000, babi_root)
    tenk = parse_babi(babi_root / "en-10k" / "qa2_two-supporting-facts_train.txt", 2)
    onek = parse_babi(babi_root / "en" / "qa2_two-supporting-facts_train.txt", 2)
    assert [(q.story, q.question) for q in tenk[:1000]] == [(q.story, q.question) for q in onek]   # a prefix
    assert len(held) == 3000 and held[-1] == tenk[-1]
    seen = {(q.story, q.question) for q in onek}
    assert not any((q.story, q.question) in seen for q in held)
