"""Tests of the bAbI-style story generator: the file format, determinism, and answers that are right.

The checks do not trust the generator's own world model: a small parser and an independent simulator below read
the generated text, replay the statements and answer every question themselves.
"""
from __future__ import annotations

import re

import pytest

from memnet_np.data.generate import GENERATED_TASKS, generate, write_task

TASKS = sorted(GENERATED_TASKS)
N_CHECK = 300          # questions replayed per task and seed in the correctness test

# ----------------------------------------------------------------------------------------------------------------------
# A tiny bAbI parser, written independently of memnet_np.data.babi
# ----------------------------------------------------------------------------------------------------------------------

LINE = re.compile(r"^(\d+) (\S.*)$")


def parse(lines):
    """list of stories; a story is a list of dicts {id, text} or {id, text, answer, support} (questions)."""
    stories = []
    for lineno, line in enumerate(lines, start=1):
        m = LINE.match(line)
        assert m, f"line {lineno}: not 'ID text': {line!r}"
        sid, rest = int(m.group(1)), m.group(2)
        if sid == 1:
            stories.append([])
        assert stories, f"line {lineno}: the first story does not start at id 1"
        assert sid == len(stories[-1]) + 1, f"line {lineno}: id {sid} does not follow {len(stories[-1])}"
        if "\t" in rest:
            parts = rest.split("\t")
            assert len(parts) == 3, f"line {lineno}: a question line has two tabs: {line!r}"
            text, answer, support = parts
            assert text.endswith("? "), f"line {lineno}: question must end with '? ' before the tab: {line!r}"
            assert re.fullmatch(r"[a-z]+(,[a-z]+)*", answer), f"line {lineno}: bad answer {answer!r}"
            assert re.fullmatch(r"\d+( \d+)*", support), f"line {lineno}: bad supporting ids {support!r}"
            stories[-1].append({"id": sid, "text": text[:-1], "answer": answer,
                                "support": [int(s) for s in support.split()]})
        else:
            assert rest.endswith("."), f"line {lineno}: statement must end with '.': {line!r}"
            stories[-1].append({"id": sid, "text": rest})
    return stories


def is_question(entry) -> bool:
    return "answer" in entry


# ----------------------------------------------------------------------------------------------------------------------
# An independent world simulator
# ----------------------------------------------------------------------------------------------------------------------

MOVE = re.compile(r"^(\w+) (?:moved|went|journeyed|travelled|went back) to the (\w+)\.$")
GET = re.compile(r"^(\w+) (?:got|picked up|grabbed|took) the (\w+)(?: there)?\.$")
DROP = re.compile(r"^(\w+) (?:dropped|discarded|put down|left) the (\w+)(?: there)?\.$")
COUNTS = ["none", "one", "two", "three"]


class Sim:
    def __init__(self):
        self.room = {}           # person -> room
        self.moves = {}          # person -> ids of their moves
        self.holds = {}          # person -> objects held, pick-up order
        self.handled = {}        # person -> ids of their get/drop statements
        self.where = {}          # object -> room it lies in, when not held
        self.holder = {}         # object -> person
        self.history = {}        # object -> rooms it has been in, consecutive duplicates removed

    def _visit(self, obj, room):
        h = self.history.setdefault(obj, [])
        if not h or h[-1] != room:
            h.append(room)

    def apply(self, sid, text):
        if m := MOVE.match(text):
            person, room = m.groups()
            self.room[person] = room
            self.moves.setdefault(person, []).append(sid)
            for obj in self.holds.get(person, []):
                self._visit(obj, room)
        elif m := GET.match(text):
            person, obj = m.groups()
            assert person in self.room, f"{sid} {text}: {person} picks up something before being anywhere"
            assert self.holder.get(obj) is None, f"{sid} {text}: the {obj} is held by {self.holder.get(obj)}"
            assert self.where.get(obj, self.room[person]) == self.room[person], \
                f"{sid} {text}: the {obj} lies in the {self.where[obj]}, {person} is in the {self.room[person]}"
            self.holder[obj] = person
            self.where.pop(obj, None)
            self.holds.setdefault(person, []).append(obj)
            self.handled.setdefault(person, []).append(sid)
            self._visit(obj, self.room[person])
        elif m := DROP.match(text):
            person, obj = m.groups()
            assert obj in self.holds.get(person, []), f"{sid} {text}: {person} does not hold the {obj}"
            self.holds[person].remove(obj)
            self.holder[obj] = None
            self.where[obj] = self.room[person]
            self.handled[person].append(sid)
        else:
            raise AssertionError(f"{sid} {text!r}: not a statement the generator should make")

    def location(self, obj):
        holder = self.holder.get(obj)
        return self.room[holder] if holder is not None else self.where[obj]


def check_story(task, story):
    """Replay one story; assert each question's answer and supporting facts."""
    sim = Sim()
    by_id = {e["id"]: e for e in story}
    assert is_question(story[-1]), "a story must end with a question"
    for e in story:
        if not is_question(e):
            sim.apply(e["id"], e["text"])
            continue
        q, answer, support = e["text"], e["answer"], e["support"]
        where = f"question {e['id']} {q!r}"
        for s in support:
            assert s < e["id"] and s in by_id and not is_question(by_id[s]), \
                f"{where}: supporting id {s} is not an earlier statement of the story"
        facts = [by_id[s]["text"] for s in support]
        if task in (1, 6):
            m = re.fullmatch(r"Where is (\w+)\?", q) if task == 1 else re.fullmatch(r"Is (\w+) in the (\w+)\?", q)
            assert m, where
            person = m.group(1)
            truth = sim.room[person] if task == 1 else ("yes" if sim.room[person] == m.group(2) else "no")
            assert answer == truth, where
            assert support == [sim.moves[person][-1]], where
            assert person in facts[0], where
        elif task == 2:
            m = re.fullmatch(r"Where is the (\w+)\?", q)
            assert m, where
            obj = m.group(1)
            assert answer == sim.location(obj), where
            assert len(support) == 2 and obj in facts[0], where
            person = facts[0].split()[0]                           # who got or dropped it last
            mv = MOVE.match(facts[1])
            assert mv and mv.group(1) == person and mv.group(2) == answer, f"{where}: {facts}"
            # the move is the person's last one: before the drop if dropped, up to now if still held
            last_fact_time = support[0] if sim.holder.get(obj) is None else e["id"]
            assert support[1] == max(i for i in sim.moves[person] if i < last_fact_time), where
        elif task == 3:
            m = re.fullmatch(r"Where was the (\w+) before the (\w+)\?", q)
            assert m, where
            obj, room = m.groups()
            history = sim.history[obj]
            assert history[-1] == room, f"{where}: the {obj} is in the {history[-1]}"
            assert answer == history[-2], f"{where}: history {history}"
            assert len(support) == 3 and obj in facts[0], where
            person = facts[0].split()[0]
            to_room, to_before = MOVE.match(facts[1]), MOVE.match(facts[2])
            assert to_room and to_room.groups() == (person, room), f"{where}: {facts}"
            assert to_before and to_before.groups() == (person, answer), f"{where}: {facts}"
            moves = sim.moves[person]
            assert moves.index(support[1]) == moves.index(support[2]) + 1, f"{where}: not consecutive moves"
        elif task in (7, 8):
            m = re.fullmatch(r"How many objects is (\w+) carrying\?" if task == 7 else r"What is (\w+) carrying\?", q)
            assert m, where
            person = m.group(1)
            held = sim.holds.get(person, [])
            truth = COUNTS[len(held)] if task == 7 else (",".join(held) or "nothing")
            assert answer == truth, where
            assert support == sim.handled[person], where
            assert all(f.startswith(person + " ") for f in facts), where
        else:
            raise AssertionError(task)


# ----------------------------------------------------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_answers_and_support_are_correct(task, seed):
    stories = parse(generate(task, N_CHECK, seed=seed))
    for story in stories:
        check_story(task, story)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("n", [1, 4, 5, 6, 23])
def test_exactly_n_questions_in_whole_stories(task, n):
    lines = generate(task, n, seed=3)
    stories = parse(lines)
    assert sum(is_question(e) for s in stories for e in s) == n
    for story in stories:
        assert any(is_question(e) for e in story)
        assert is_question(story[-1])
    assert all("\n" not in line for line in lines)


@pytest.mark.parametrize("task", TASKS)
def test_deterministic_per_seed(task):
    assert generate(task, 40, seed=7) == generate(task, 40, seed=7)
    assert generate(task, 40, seed=7) != generate(task, 40, seed=8)
    longer = generate(task, 60, seed=7)
    assert longer[: len(generate(task, 40, seed=7))] == generate(task, 40, seed=7)


def test_task_shapes_mimic_babi():
    for task in (1, 6):                    # 5 blocks of 2 statements + 1 question
        stories = parse(generate(task, 50, seed=0))
        assert all(len(s) == 15 for s in stories)
        assert all([is_question(e) for e in s] == [False, False, True] * 5 for s in stories)
    answers = {t: {e["answer"] for s in parse(generate(t, 500, seed=0)) for e in s if is_question(e)}
               for t in (6, 7, 8)}
    assert answers[6] == {"yes", "no"}
    assert {"none", "one", "two"} <= answers[7]
    assert "nothing" in answers[8] and any("," in a for a in answers[8])
    # the real files put a space before the first tab
    assert re.fullmatch(r"3 Where is \w+\? \t\w+\t\d+", generate(1, 1)[2])


def test_vocabulary_is_babi_vocabulary():
    words = set()
    for task in TASKS:
        for line in generate(task, 100, seed=0):
            words.update(re.findall(r"[A-Za-z]+", line))
    allowed = set("""Mary John Daniel Sandra bathroom hallway office garden bedroom kitchen moved went journeyed
        travelled back to the football apple milk got picked up grabbed took dropped discarded put down left there
        Where is was before Is in yes no How many objects carrying What none one two three nothing""".split())
    assert words <= allowed, words - allowed


def test_write_task_makes_a_babi_folder(tmp_path):
    train, test = write_task(2, tmp_path / "gen", n_train=30, n_test=12, seed=4)
    assert train == tmp_path / "gen" / "en" / "qa2_two-supporting-facts_train.txt"
    assert test == tmp_path / "gen" / "en" / "qa2_two-supporting-facts_test.txt"
    train_text = train.read_text(encoding="utf-8")
    assert train_text.endswith("\n") and not train_text.endswith("\n\n")
    assert train_text.splitlines() == generate(2, 30, seed=4)
    assert test.read_text(encoding="utf-8").splitlines() == generate(2, 12, seed=5)   # test uses seed + 1
    # round trip through the tiny parser
    stories = parse(train_text.splitlines())
    assert sum(is_question(e) for s in stories for e in s) == 30
    for story in stories:
        check_story(2, story)
    assert sorted(p.name for p in (tmp_path / "gen" / "en").iterdir()) == sorted([train.name, test.name])


@pytest.mark.parametrize("task", TASKS)
def test_library_parser_reads_written_files(task, tmp_path):
    babi = pytest.importorskip("memnet_np.data.babi")
    parse_babi = getattr(babi, "parse_babi", None)
    if parse_babi is None:
        pytest.skip("memnet_np.data.babi.parse_babi is not written yet")
    train, test = write_task(task, tmp_path, n_train=25, n_test=10, seed=0)
    for path, n in ((train, 25), (test, 10)):
        questions = parse_babi(path, task)
        assert len(questions) == n
        mine = [e for s in parse(path.read_text(encoding="utf-8").splitlines()) for e in s if is_question(e)]
        for theirs, ours in zip(questions, mine):
            answer = getattr(theirs, "answer", None)
            if answer is not None:
                assert ",".join(answer) == ours["answer"]


def test_bad_arguments(tmp_path):
    for task in (0, 4, 5, 9, 21, "1", 1.0, True):
        with pytest.raises(ValueError, match=r"supported tasks: 1 \(single-supporting-fact\)"):
            generate(task, 10)
    for n in (0, -1, 2.5, None):
        with pytest.raises(ValueError, match="n_questions"):
            generate(1, n)
    with pytest.raises(ValueError, match="seed"):
        generate(1, 5, seed=-1)
    with pytest.raises(ValueError, match="n_train"):
        write_task(1, tmp_path, n_train=0)
    with pytest.raises(ValueError, match="supported tasks"):
        write_task(4, tmp_path)
    assert not (tmp_path / "en").exists()


def test_the_checker_catches_wrong_answers_and_support():
    """The simulator above is the oracle; make sure it would notice a wrong answer or a wrong supporting id."""
    for task in TASKS:
        story = parse(generate(task, 5, seed=0))[0]
        q = next(e for e in story if is_question(e))
        wrong = dict(q, answer="kitchen" if q["answer"] != "kitchen" else "garden")
        with pytest.raises(AssertionError):
            check_story(task, [wrong if e is q else e for e in story])
        statements = [e["id"] for e in story if not is_question(e) and e["id"] < q["id"]]
        other = next(i for i in reversed(statements) if i not in q["support"])
        wrong = dict(q, support=[other] + q["support"][1:])
        with pytest.raises(AssertionError):
            check_story(task, [wrong if e is q else e for e in story])
