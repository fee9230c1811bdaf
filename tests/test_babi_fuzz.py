"""The bAbI reader under fire: thousands of malformed variants of real files. Each one parses, or fails with the
reader's own error naming the file and the line; no other exception escapes. What parses round-trips."""
import collections

import numpy as np
import pytest

from memnet_np.data import BabiFormatError, format_babi, parse_babi
from conftest import TINY_TEST, TINY_TRAIN

TASK_FILES = ["qa1_single-supporting-fact_train.txt", "qa2_two-supporting-facts_train.txt",
              "qa8_lists-sets_train.txt", "qa19_path-finding_train.txt"]


def seeds(babi_root):
    """Short real files: the first 40 lines of four tasks (or the tiny hand-made file without bAbI data)."""
    out = [TINY_TRAIN.encode(), TINY_TEST.encode()]
    if babi_root is not None:
        for name in TASK_FILES:
            out.append(b"\n".join((babi_root / "en" / name).read_bytes().splitlines()[:40]) + b"\n")
    return out


def _lines(data):
    return data.split(b"\n")


def mutate(kind, data, rng):
    """One malformed variant of `data` (bytes) of the named kind."""
    lines = [ln for ln in _lines(data) if ln]
    i = int(rng.integers(len(lines)))
    q = [k for k, ln in enumerate(lines) if b"\t" in ln] or [i]
    qi = q[int(rng.integers(len(q)))]
    head, _, rest = lines[i].partition(b" ")
    if kind == "truncated line":
        lines[i] = lines[i][:int(rng.integers(len(lines[i]) + 1))]
    elif kind == "bad id":
        lines[i] = [b"x", b"1.5", b"", b"1e3", b"\xd9\xa3", b"0x2"][int(rng.integers(6))] + b" " + rest
    elif kind == "repeated id":
        lines.insert(i, lines[i])
    elif kind == "negative id":
        lines[i] = b"-" + lines[i]
    elif kind == "missing tabs":
        lines[qi] = lines[qi].replace(b"\t", b" ")
    elif kind in ("supporting forward", "supporting nowhere", "supporting at a question"):
        text, answer, *_ = lines[qi].split(b"\t") + [b"", b""]
        my_id = int(lines[qi].split(b" ")[0])
        target = {"supporting forward": my_id + 1 + int(rng.integers(5)),
                  "supporting nowhere": [0, 999, my_id][int(rng.integers(3))],
                  "supporting at a question": None}[kind]
        if target is None:
            earlier = [int(ln.split(b" ")[0]) for ln in lines[:qi] if b"\t" in ln]
            story_start = max((k for k, ln in enumerate(lines[:qi + 1]) if ln.startswith(b"1 ")), default=0)
            earlier = [int(ln.split(b" ")[0]) for ln in lines[story_start:qi] if b"\t" in ln]
            target = earlier[-1] if earlier else my_id
        lines[qi] = text + b"\t" + answer + b"\t" + str(target).encode()
    elif kind == "empty answer":
        parts = lines[qi].split(b"\t")
        lines[qi] = parts[0] + b"\t" + [b"", b" ", b",", b"a,,b"][int(rng.integers(4))] + b"\t" + b"\t".join(parts[2:])
    elif kind == "non-UTF-8 bytes":
        j = int(rng.integers(len(lines[i]) + 1))
        lines[i] = lines[i][:j] + [b"\xff", b"\xc3\x28", b"\x80"][int(rng.integers(3))] + lines[i][j:]
    elif kind == "1 MB line":
        lines[i] = head + b" " + b"word " * 200_000 + b"."
    elif kind == "empty file":
        return b""
    elif kind == "CRLF endings":
        return b"\r\n".join(lines) + b"\r\n"
    elif kind == "whitespace-only line":
        lines.insert(i, [b"", b" ", b"\t", b"  \t "][int(rng.integers(4))])
    elif kind == "random bytes":
        raw = bytearray(b"\n".join(lines))
        for _ in range(int(rng.integers(1, 4))):
            raw[int(rng.integers(len(raw)))] = int(rng.integers(256))
        return bytes(raw) + b"\n"
    return b"\n".join(lines) + b"\n"


KINDS = ["truncated line", "bad id", "repeated id", "negative id", "missing tabs", "supporting forward",
         "supporting nowhere", "supporting at a question", "empty answer", "non-UTF-8 bytes", "1 MB line",
         "empty file", "CRLF endings", "whitespace-only line", "random bytes"]
PER_KIND = {"1 MB line": 4, "empty file": 2}                # the rest: 80 each


@pytest.fixture
def maybe_babi(request):
    try:
        return request.getfixturevalue("babi_root")
    except pytest.skip.Exception:
        return None


def test_malformed_variants_parse_or_fail_with_file_and_line(tmp_path, maybe_babi, capsys):
    rng = np.random.default_rng(0)
    bases = seeds(maybe_babi)
    outcome = collections.Counter()
    tried = 0
    for kind in KINDS:
        for k in range(PER_KIND.get(kind, 80)):
            data = mutate(kind, bases[k % len(bases)], rng)
            path = tmp_path / "qa1_variant_train.txt"
            path.write_bytes(data)
            tried += 1
            try:
                questions = parse_babi(path)
            except BabiFormatError as e:
                msg = str(e)
                assert msg.startswith(f"{path}:"), (kind, msg)
                where = msg[len(str(path)) + 1:].split(":", 1)[0]
                if where.strip().isdigit():                  # a line number: one that exists in the file
                    assert 1 <= int(where) <= max(1, data.count(b"\n") + 1), (kind, msg)
                outcome[kind, "error"] += 1
                continue
            outcome[kind, "parsed"] += 1
            back = parse_babi(format_babi(questions), task=1)
            assert [(q.story, q.question, q.answer, q.supporting) for q in back] == \
                   [(q.story, q.question, q.answer, q.supporting) for q in questions], kind
    assert tried >= 1000
    with capsys.disabled():
        print(f"\n{tried} malformed variants: " + "; ".join(
            f"{kind}: {outcome[kind, 'error']} refused, {outcome[kind, 'parsed']} parsed" for kind in KINDS))
    for kind in ("bad id", "negative id", "supporting forward", "supporting nowhere", "supporting at a question",
                 "empty answer", "non-UTF-8 bytes", "empty file", "whitespace-only line", "missing tabs"):
        assert outcome[kind, "parsed"] == 0, f"{kind}: every variant must be refused"
    assert outcome["CRLF endings", "error"] == 0, "CRLF line endings are valid bAbI"


def test_real_files_round_trip(maybe_babi):
    if maybe_babi is None:
        questions = parse_babi(TINY_TRAIN.splitlines(), task=1)
    else:
        questions = [q for name in TASK_FILES for q in parse_babi(maybe_babi / "en" / name)]
    back = parse_babi(format_babi(questions), task=1)
    assert [(q.story, q.question, q.answer, q.supporting) for q in back] == \
           [(q.story, q.question, q.answer, q.supporting) for q in questions]
