"""Tests of the NTM sequence tasks: shapes, dtypes, determinism, and targets checked against a per-example loop."""
from __future__ import annotations

import numpy as np
import pytest

from memnet_np.data.algorithmic import SequenceBatch, associative_recall_task, copy_task, repeat_copy_task


def rng(seed=0):
    return np.random.default_rng(seed)


def check_common(batch, n, w_in, w_out):
    assert isinstance(batch, SequenceBatch)
    N, T, W = batch.inputs.shape
    assert (N, W) == (n, w_in)
    assert batch.targets.shape == (n, T, w_out)
    assert batch.target_mask.shape == (n, T) and batch.target_mask.dtype == np.bool_
    assert batch.lengths.shape == (n,) and np.issubdtype(batch.lengths.dtype, np.integer)
    assert batch.inputs.dtype == np.float64 and batch.targets.dtype == np.float64
    assert T == batch.lengths.max()
    assert np.all(np.isfinite(batch.inputs)) and np.all(np.isfinite(batch.targets))
    # nothing at or after an example's end, and nothing scored there
    after = np.arange(T)[None, :] >= batch.lengths[:, None]                     # (N, T)
    assert not batch.inputs[after].any() and not batch.targets[after].any()
    assert not batch.target_mask[after].any()
    # targets are zero wherever they are not scored
    assert not batch.targets[~batch.target_mask].any()
    assert set(np.unique(batch.targets)) <= {0.0, 1.0}


# ----------------------------------------------------------------------------------------------------------------------
# copy
# ----------------------------------------------------------------------------------------------------------------------

def test_copy_shapes_and_layout():
    b = copy_task(rng(), 16, bits=5, min_len=1, max_len=7)
    check_common(b, 16, 6, 5)
    L = (b.lengths - 1) // 2
    assert np.all((b.lengths - 1) % 2 == 0) and L.min() >= 1 and L.max() <= 7
    assert len(np.unique(L)) > 1, "lengths should differ within a batch"
    assert set(np.unique(b.inputs)) <= {0.0, 1.0}
    for n in range(16):
        x, y, m, l = b.inputs[n], b.targets[n], b.target_mask[n], L[n]
        seq = x[:l, :5]
        assert not x[:l, 5].any()                                   # no delimiter during the sequence
        assert x[l, 5] == 1 and not x[l, :5].any()                  # the delimiter step
        assert not x[l + 1:].any()                                  # no input while recalling
        np.testing.assert_array_equal(y[l + 1: 2 * l + 1], seq)     # target = the input sequence
        assert m.sum() == l and m[l + 1: 2 * l + 1].all()


def test_copy_fixed_length_and_paper_defaults():
    b = copy_task(rng(1), 4, min_len=20, max_len=20)
    check_common(b, 4, 9, 8)
    assert np.all(b.lengths == 41) and b.inputs.shape == (4, 41, 9)
    b = copy_task(rng(1), 200)
    L = (b.lengths - 1) // 2
    assert L.min() >= 1 and L.max() <= 20
    bits = b.inputs[:, :, :8][np.arange(b.inputs.shape[1])[None] < L[:, None]]
    assert 0.4 < bits.mean() < 0.6                                  # fair random bits


def test_copy_is_deterministic_per_rng():
    a, b, c = copy_task(rng(3), 8), copy_task(rng(3), 8), copy_task(rng(4), 8)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert a.inputs.shape != c.inputs.shape or not np.array_equal(a.inputs, c.inputs)


# ----------------------------------------------------------------------------------------------------------------------
# repeat copy
# ----------------------------------------------------------------------------------------------------------------------

def test_repeat_copy_targets_repeat_the_sequence():
    """The paper's layout: the sequence, the delimiter, then the normalised count one step later on its own channel;
    the output phase starts after the count."""
    bits, max_repeats = 4, 5
    mu, sigma = 3.0, np.sqrt(2.0)                      # R ~ U{1..5}: mean 3, variance (5² − 1) / 12 = 2
    b = repeat_copy_task(rng(), 24, bits=bits, min_len=1, max_len=4, min_repeats=1, max_repeats=max_repeats)
    check_common(b, 24, bits + 2, bits + 1)
    seen_repeats = set()
    for n in range(24):
        x, y, m = b.inputs[n], b.targets[n], b.target_mask[n]
        delim = np.flatnonzero(x[:, bits])
        assert len(delim) == 1 and x[delim[0], bits] == 1.0
        L = int(delim[0])
        assert np.flatnonzero(x[:, bits + 1]).tolist() in ([L + 1], [])     # the count, one step after (0 when R = μ)
        R = x[L + 1, bits + 1] * sigma + mu
        assert abs(R - round(R)) < 1e-12
        R = int(round(R))
        seen_repeats.add(R)
        assert 1 <= L <= 4 and 1 <= R <= max_repeats
        assert b.lengths[n] == (R + 1) * L + 3
        seq = x[:L, :bits]
        assert not x[L:, :bits].any() and not x[L + 2:].any() and not x[:L, bits:].any()
        out = y[L + 2: L + 2 + R * L]
        np.testing.assert_array_equal(out[:, :bits], np.tile(seq, (R, 1)))
        assert not out[:, bits].any()                                # no end mark while copying
        end = L + 2 + R * L
        assert y[end, bits] == 1 and not y[end, :bits].any()         # the end mark, on its own channel
        assert np.array_equal(np.flatnonzero(m), np.arange(L + 2, end + 1))
    assert len(seen_repeats) > 1


def test_repeat_count_has_mean_0_and_variance_1():
    b = repeat_copy_task(rng(3), 20000, max_len=1)                   # L = 1: the count sits at step 2
    count = b.inputs[:, 2, 9]                                        # (N,)
    assert abs(count.mean()) < 0.03 and abs(count.var() - 1) < 0.03
    assert np.allclose(sorted(set(np.round(count, 9))), (np.arange(1, 11) - 5.5) / np.sqrt(99 / 12))


def test_repeat_copy_range_and_determinism():
    """More repeats than trained on are shown on the training range's scale; a one-value range shows R − μ."""
    b = repeat_copy_task(rng(5), 6, min_repeats=12, max_repeats=12, repeats_range=(1, 10))
    L = (b.lengths - 3) // 13
    assert np.allclose(b.inputs[np.arange(6), L + 1, 9], (12 - 5.5) / np.sqrt(99 / 12))
    c = repeat_copy_task(rng(5), 6, min_repeats=12, max_repeats=12)
    assert not c.inputs[:, :, 9].any()
    a, c = repeat_copy_task(rng(9), 5), repeat_copy_task(rng(9), 5)
    for x, y in zip(a, c):
        np.testing.assert_array_equal(x, y)


# ----------------------------------------------------------------------------------------------------------------------
# associative recall
# ----------------------------------------------------------------------------------------------------------------------

def split_episode(x, bits, item_len):
    """Read one example's input back into (items, query) by walking the delimiters."""
    B = item_len + 1
    items, t = [], 0
    while x[t, bits] == 1:
        items.append(x[t + 1: t + B, :bits])
        assert not x[t + 1: t + B, bits:].any()
        t += B
    assert x[t, bits + 1] == 1
    query = x[t + 1: t + B, :bits]
    assert x[t + B, bits + 1] == 1
    return items, query, t + B


def test_associative_recall_target_is_the_item_after_the_query():
    bits, item_len = 3, 2
    b = associative_recall_task(rng(), 32, bits=bits, item_len=item_len, min_items=2, max_items=5)
    check_common(b, 32, bits + 2, bits)
    n_items = []
    for n in range(32):
        x, y, m = b.inputs[n], b.targets[n], b.target_mask[n]
        items, query, t_end = split_episode(x, bits, item_len)
        n_items.append(len(items))
        assert 2 <= len(items) <= 5 and b.lengths[n] == (len(items) + 2) * (item_len + 1)
        matches = [k for k, it in enumerate(items) if np.array_equal(it, query)]
        assert len(matches) == 1 and matches[0] < len(items) - 1   # unique, and never the last item
        answer_steps = np.arange(t_end + 1, t_end + 1 + item_len)
        assert np.array_equal(np.flatnonzero(m), answer_steps)
        np.testing.assert_array_equal(y[answer_steps], items[matches[0] + 1])
        assert not x[t_end + 1:].any()
    assert len(set(n_items)) > 1


def test_associative_recall_paper_defaults_and_tiny_items():
    b = associative_recall_task(rng(2), 64)
    check_common(b, 64, 8, 6)
    assert b.target_mask.sum(axis=1).tolist() == [3] * 64
    # one-bit items: the query must still be unique, which forces redraws
    b = associative_recall_task(rng(2), 200, bits=1, item_len=1, min_items=6, max_items=6)
    for n in range(200):
        items, query, _ = split_episode(b.inputs[n], 1, 1)
        assert sum(np.array_equal(it, query) for it in items) == 1
    a, c = associative_recall_task(rng(8), 7), associative_recall_task(rng(8), 7)
    for x, y in zip(a, c):
        np.testing.assert_array_equal(x, y)


# ----------------------------------------------------------------------------------------------------------------------
# bad arguments
# ----------------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, message", [
    (lambda: copy_task(rng(), 0), "batch_size"),
    (lambda: copy_task(rng(), 2, bits=0), "bits"),
    (lambda: copy_task(rng(), 2, min_len=5, max_len=3), r"min_len \(5\) must not exceed max_len \(3\)"),
    (lambda: copy_task(rng(), 2, min_len=0), "min_len"),
    (lambda: copy_task(rng(), 2.5), "batch_size"),
    (lambda: repeat_copy_task(rng(), 2, min_repeats=3, max_repeats=2), "min_repeats"),
    (lambda: repeat_copy_task(rng(), 2, min_repeats=0), "min_repeats"),
    (lambda: repeat_copy_task(rng(), 2, repeats_range=(0, 3)), "repeats_range"),
    (lambda: repeat_copy_task(rng(), 2, repeats_range=(5, 2)), "repeats_range"),
    (lambda: repeat_copy_task(rng(), 2, repeats_range=4), "repeats_range"),
    (lambda: repeat_copy_task(rng(), 2, max_len=0), "max_len"),
    (lambda: associative_recall_task(rng(), 2, min_items=1), "min_items"),
    (lambda: associative_recall_task(rng(), 2, min_items=4, max_items=3), "min_items"),
    (lambda: associative_recall_task(rng(), 2, item_len=0), "item_len"),
    (lambda: associative_recall_task(rng(), 2, bits=0), "bits"),
])
def test_bad_arguments_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_rng_must_be_a_generator():
    for task in (copy_task, repeat_copy_task, associative_recall_task):
        with pytest.raises(TypeError, match="Generator"):
            task(0, 2)
