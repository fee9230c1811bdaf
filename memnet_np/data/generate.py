"""A bAbI-style story generator, so that everything in memnet_np runs without a download.

It writes the bAbI v1.2 file format exactly (Weston et al. 2015, "Towards AI-complete question answering"):

    1 Mary moved to the bathroom.
    2 John went to the hallway.
    3 Where is Mary? \tbathroom\t1

- every line is ``ID text``; ids restart at 1 for each story;
- statements end with '.';
- a question line is ``ID question? \\tanswer\\tsupporting ids`` (a space before the first tab, as in the real files);
- list answers are comma separated without spaces (``apple,milk``), ``nothing`` when the list is empty.

Six of the twenty tasks are generated, with the real tasks' vocabulary (four actors, six rooms, three objects) and
shape (five questions per story, interleaved with the statements):

    task 1  single-supporting-fact  "Where is Mary?"                          support: Mary's last move
    task 2  two-supporting-facts    "Where is the football?"                  support: the last fact about the
                                                                              football, the move locating its holder
    task 3  three-supporting-facts  "Where was the football before the kitchen?"  support: the last fact about the
                                                                              football, the holder's moves to the
                                                                              kitchen and to the room before it
    task 6  yes-no-questions        "Is Mary in the office?"                  support: Mary's last move
    task 7  counting                "How many objects is Mary carrying?"      support: Mary's get/drop facts
    task 8  lists-sets              "What is Mary carrying?"                  support: Mary's get/drop facts

Supporting ids are listed in bAbI's order (fact about the object first for tasks 2 and 3, oldest first for 7 and 8).
The simulated world stays consistent: people are in one room at a time, an object is either unseen, held by one
person (and moves with them) or lying in a room; a person picks up only an object that is not held and is unseen or
lies in their room, and drops only what they hold.

API::

    GENERATED_TASKS                         {task number: bAbI task name}
    generate(task, n_questions, seed=0)     -> list of bAbI lines (no newlines), whole stories
    write_task(task, out_dir, n_train=1000, n_test=1000, seed=0) -> (train path, test path)

Everything is a deterministic function of (task, seed): the one random generator is
``np.random.default_rng([task, seed])``, made explicitly; no global random state is touched.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np

GENERATED_TASKS: dict[int, str] = {
    1: "single-supporting-fact",
    2: "two-supporting-facts",
    3: "three-supporting-facts",
    6: "yes-no-questions",
    7: "counting",
    8: "lists-sets",
}

QUESTIONS_PER_STORY = 5           # as in the real tasks 1, 2, 3, 6, 7, 8

ACTORS = ("Mary", "John", "Daniel", "Sandra")
ROOMS = ("bathroom", "hallway", "office", "garden", "bedroom", "kitchen")
OBJECTS = ("football", "apple", "milk")
MOVE_VERBS = ("moved", "went", "journeyed", "travelled", "went back")
GET_VERBS = ("got", "picked up", "grabbed", "took")
DROP_VERBS = ("dropped", "discarded", "put down", "left")
COUNT_WORDS = ("none", "one", "two", "three")        # bAbI task 7 spells the counts

# Per task: probability that a random statement is about an object (get/drop) rather than a move, the range of
# statements between questions (low, high inclusive), and how often a pick-up ends with "there" (the real task 3
# mostly says "John took the milk.", the others "John took the milk there.").
_P_OBJECT = {1: 0.0, 2: 0.35, 3: 0.35, 6: 0.2, 7: 0.5, 8: 0.5}
_BLOCK = {1: (2, 2), 2: (1, 4), 3: (2, 9), 6: (2, 2), 7: (1, 3), 8: (1, 3)}
_P_GET_THERE = {1: 0.8, 2: 0.8, 3: 0.2, 6: 0.8, 7: 0.8, 8: 0.8}
_P_DROP_THERE = 0.15


# ----------------------------------------------------------------------------------------------------------------------
# The world: who is where, who holds what, and which statement ids established it.
# ----------------------------------------------------------------------------------------------------------------------

@dataclass
class _World:
    room: dict = field(default_factory=lambda: {p: None for p in ACTORS})         # person -> room, None: not seen yet
    last_move: dict = field(default_factory=dict)                                 # person -> id of their last move
    carrying: dict = field(default_factory=lambda: {p: [] for p in ACTORS})       # person -> objects, pick-up order
    holder: dict = field(default_factory=lambda: {o: None for o in OBJECTS})      # object -> person holding it
    lies_in: dict = field(default_factory=lambda: {o: None for o in OBJECTS})     # object -> room it was dropped in
    drop_move: dict = field(default_factory=dict)     # object -> id of the move that located it when last dropped
    object_facts: dict = field(default_factory=lambda: {o: [] for o in OBJECTS})  # object -> ids of get/drop facts
    person_facts: dict = field(default_factory=lambda: {p: [] for p in ACTORS})   # person -> ids of get/drop facts
    trail: dict = field(default_factory=lambda: {o: [] for o in OBJECTS})
    # object -> [(move id, room)] of the moves its holder made with it since it was last picked up

    # --- what is possible ---------------------------------------------------------------------------------------------
    def located(self) -> list[str]:
        return [p for p in ACTORS if self.room[p] is not None]

    def can_get(self, person: str, obj: str) -> bool:
        if self.room[person] is None or self.holder[obj] is not None:
            return False
        return self.lies_in[obj] is None or self.lies_in[obj] == self.room[person]

    def object_actions(self) -> list[tuple[str, str, str]]:
        """Every possible ("get" | "drop", person, object), in a fixed order."""
        gets = [("get", p, o) for p in ACTORS for o in OBJECTS if self.can_get(p, o)]
        drops = [("drop", p, o) for p in ACTORS for o in self.carrying[p]]
        return gets + drops

    # --- what happens -------------------------------------------------------------------------------------------------
    def move(self, person: str, room: str, sid: int) -> None:
        self.room[person] = room
        self.last_move[person] = sid
        for obj in self.carrying[person]:                      # objects travel with their holder
            self.trail[obj].append((sid, room))

    def get(self, person: str, obj: str, sid: int) -> None:
        self.holder[obj] = person
        self.lies_in[obj] = None
        self.carrying[person].append(obj)
        self.trail[obj] = []
        self.object_facts[obj].append(sid)
        self.person_facts[person].append(sid)

    def drop(self, person: str, obj: str, sid: int) -> None:
        self.holder[obj] = None
        self.lies_in[obj] = self.room[person]
        self.drop_move[obj] = self.last_move[person]
        self.carrying[person].remove(obj)
        self.object_facts[obj].append(sid)
        self.person_facts[person].append(sid)


def _pick(rng: np.random.Generator, options):
    """One element of a non-empty sequence, uniformly."""
    return options[int(rng.integers(len(options)))]


class _StoryWriter:
    """Applies actions to the world and writes the matching bAbI lines, numbering them from 1."""

    def __init__(self, task: int, rng: np.random.Generator):
        self.task = task
        self.rng = rng
        self.world = _World()
        self.lines: list[str] = []

    def _next_id(self) -> int:
        return len(self.lines) + 1

    def _say(self, text: str) -> None:
        self.lines.append(f"{self._next_id()} {text}")

    # --- statements ---------------------------------------------------------------------------------------------------
    def move(self, person: str, room: Optional[str] = None) -> None:
        if room is None:
            room = _pick(self.rng, [r for r in ROOMS if r != self.world.room[person]])
        verb = _pick(self.rng, MOVE_VERBS)
        self.world.move(person, room, self._next_id())
        self._say(f"{person} {verb} to the {room}.")

    def object_action(self, kind: str, person: str, obj: str) -> None:
        if kind == "get":
            verb = _pick(self.rng, GET_VERBS)
            there = self.rng.random() < _P_GET_THERE[self.task]
            self.world.get(person, obj, self._next_id())
        else:
            verb = _pick(self.rng, DROP_VERBS)
            there = self.rng.random() < _P_DROP_THERE
            self.world.drop(person, obj, self._next_id())
        self._say(f"{person} {verb} the {obj}{' there' if there else ''}.")

    def random_statement(self) -> None:
        """A move, or (with the task's probability, when one is possible) a get/drop."""
        actions = self.world.object_actions()
        if actions and self.rng.random() < _P_OBJECT[self.task]:
            self.object_action(*_pick(self.rng, actions))
        else:
            self.move(_pick(self.rng, ACTORS))

    def helpful_statement(self) -> None:
        """A natural statement that brings the world closer to one where the task has a question to ask.

        Task 3 needs an object carried through two moves; tasks 2, 7, 8 need an object picked up; tasks 1 and 6
        need anybody to have moved. Each branch makes progress, so a question is reached in a few statements.
        """
        w = self.world
        holders = [p for p in ACTORS if w.carrying[p]]
        gets = [a for a in w.object_actions() if a[0] == "get"]
        if self.task == 3 and holders:
            self.move(_pick(self.rng, holders))
        elif self.task in (2, 3, 7, 8) and gets:
            self.object_action(*_pick(self.rng, gets))
        elif self.task in (2, 3, 7, 8) and w.located():
            # nothing can be picked up where people stand: walk someone to a room where an object lies
            person = _pick(self.rng, w.located())
            rooms = [r for r in ROOMS if r in w.lies_in.values() and r != w.room[person]]
            self.move(person, _pick(self.rng, rooms) if rooms else None)
        else:
            self.move(_pick(self.rng, ACTORS))

    # --- questions ----------------------------------------------------------------------------------------------------
    def question(self) -> Optional[tuple[str, str, list[int]]]:
        """(question, answer, supporting ids) about the current world, or None if the task has nothing to ask."""
        w, rng, task = self.world, self.rng, self.task
        if task in (1, 6):
            people = w.located()
            if not people:
                return None
            person = _pick(rng, people)
            support = [w.last_move[person]]
            if task == 1:
                return f"Where is {person}?", w.room[person], support
            room = w.room[person] if rng.random() < 0.5 else _pick(rng, [r for r in ROOMS if r != w.room[person]])
            return f"Is {person} in the {room}?", "yes" if room == w.room[person] else "no", support
        if task == 2:
            objects = [o for o in OBJECTS if w.holder[o] is not None or w.lies_in[o] is not None]
            if not objects:
                return None
            obj = _pick(rng, objects)
            holder = w.holder[obj]
            if holder is not None:             # carried: it is where its holder last went
                room, move_id = w.room[holder], w.last_move[holder]
            else:                              # dropped: it is where the person who dropped it was
                room, move_id = w.lies_in[obj], w.drop_move[obj]
            return f"Where is the {obj}?", room, [w.object_facts[obj][-1], move_id]
        if task == 3:
            objects = [o for o in OBJECTS if len(w.trail[o]) >= 2]
            if not objects:
                return None
            obj = _pick(rng, objects)
            (before_id, before_room), (last_id, last_room) = w.trail[obj][-2:]
            return (f"Where was the {obj} before the {last_room}?", before_room,
                    [w.object_facts[obj][-1], last_id, before_id])
        # tasks 7 and 8: ask about someone who has handled an object (so the support is never empty); half the
        # time about whoever handled one last, as the real stories tend to
        people = [p for p in ACTORS if w.person_facts[p]]
        if not people:
            return None
        if rng.random() < 0.5:
            person = max(people, key=lambda p: w.person_facts[p][-1])
        else:
            person = _pick(rng, people)
        support = list(w.person_facts[person])
        held = w.carrying[person]
        if task == 7:
            return f"How many objects is {person} carrying?", COUNT_WORDS[len(held)], support
        return f"What is {person} carrying?", ",".join(held) if held else "nothing", support

    def ask(self) -> None:
        """Write a question line, adding helpful statements first if the world has nothing to ask yet."""
        qa = self.question()
        while qa is None:
            self.helpful_statement()
            qa = self.question()
        text, answer, support = qa
        self._say(f"{text} \t{answer}\t{' '.join(str(s) for s in support)}")


def _story(task: int, rng: np.random.Generator) -> list[str]:
    """One story: QUESTIONS_PER_STORY blocks of statements, each followed by a question."""
    writer = _StoryWriter(task, rng)
    low, high = _BLOCK[task]
    for _ in range(QUESTIONS_PER_STORY):
        for _ in range(int(rng.integers(low, high + 1))):
            writer.random_statement()
        writer.ask()
    return writer.lines


def _is_question(line: str) -> bool:
    return "\t" in line


# ----------------------------------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------------------------------

def _check_task(task) -> int:
    if isinstance(task, bool) or not isinstance(task, (int, np.integer)) or int(task) not in GENERATED_TASKS:
        supported = ", ".join(f"{t} ({name})" for t, name in GENERATED_TASKS.items())
        raise ValueError(f"the story generator cannot make bAbI task {task!r}; supported tasks: {supported}")
    return int(task)


def _check_count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def generate(task: int, n_questions: int, seed: int = 0) -> list[str]:
    """bAbI-format lines (without newlines) holding exactly `n_questions` questions, in whole stories.

    Every story but possibly the last has QUESTIONS_PER_STORY questions; the last one is cut right after the
    question that completes the count, so every story ends with a question. The result is a deterministic function
    of (task, n_questions, seed), and a shorter request gives a prefix of a longer one with the same seed.
    """
    task = _check_task(task)
    n_questions = _check_count("n_questions", n_questions)
    seed = _check_seed(seed)
    rng = np.random.default_rng([task, seed])
    lines: list[str] = []
    remaining = n_questions
    while remaining > 0:
        story = _story(task, rng)
        n_story = sum(_is_question(line) for line in story)
        if n_story > remaining:                 # keep the statements up to the remaining-th question
            q_positions = [i for i, line in enumerate(story) if _is_question(line)]
            story = story[: q_positions[remaining - 1] + 1]
            n_story = remaining
        lines.extend(story)
        remaining -= n_story
    return lines


def task_filename(task: int, split: str) -> str:
    """The bAbI file name of a task and split, e.g. ``qa1_single-supporting-fact_train.txt``."""
    task = _check_task(task)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return f"qa{task}_{GENERATED_TASKS[task]}_{split}.txt"


def _write_atomically(path: Path, lines: list[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    os.replace(tmp, path)


def write_task(task: int, out_dir: Union[str, os.PathLike], n_train: int = 1000, n_test: int = 1000,
               seed: int = 0) -> tuple[Path, Path]:
    """Write generated train and test files where a bAbI reader looks for them; return (train path, test path).

    The files are ``out_dir/en/qa{task}_{name}_train.txt`` (seed `seed`) and ``..._test.txt`` (seed `seed + 1`),
    so `out_dir` can be used as a bAbI data folder. `n_train` and `n_test` count questions.
    """
    task = _check_task(task)
    n_train = _check_count("n_train", n_train)
    n_test = _check_count("n_test", n_test)
    seed = _check_seed(seed)
    folder = Path(out_dir) / "en"
    folder.mkdir(parents=True, exist_ok=True)
    train_path = folder / task_filename(task, "train")
    test_path = folder / task_filename(task, "test")
    _write_atomically(train_path, generate(task, n_train, seed))
    _write_atomically(test_path, generate(task, n_test, seed + 1))
    return train_path, test_path
