"""Algorithmic sequence tasks for the Neural Turing Machine (Graves, Wayne, Danihelka 2014, section 4).

Three tasks, each a function of an explicit ``np.random.Generator`` that returns a whole batch at once:

    copy_task               see a sequence of bit vectors, then write it back
    repeat_copy_task        see a sequence and a number of repeats, write the sequence that many times, then an end mark
    associative_recall_task see a list of items, then one of them as a query, write the item that followed it

Every task returns a `SequenceBatch`, **batch-major**: ``inputs[n, t]`` is what example n shows the network at step t.

    inputs       (N, T, W_in)   float64, 0/1 (except repeat copy's count, normalised to mean 0, variance 1)
    targets      (N, T, W_out)  float64, 0/1; zero wherever target_mask is False
    target_mask  (N, T)         bool, the steps whose outputs are scored (the answer phase)
    lengths      (N,)           int64, the steps example n really uses; steps t >= lengths[n] are padding (all zero,
                                never scored). T = lengths.max(), so the longest example of the batch has no padding.

Examples in one batch have different lengths (each draws its own), so a model must run T steps and a loss must
multiply by target_mask. The bit cost of the paper is the sigmoid cross-entropy in bits summed over the masked
steps and output channels.
"""
from __future__ import annotations

from typing import NamedTuple

import math

import numpy as np


class SequenceBatch(NamedTuple):
    inputs: np.ndarray       # (N, T, W_in) float64
    targets: np.ndarray      # (N, T, W_out) float64
    target_mask: np.ndarray  # (N, T) bool, steps that are scored
    lengths: np.ndarray      # (N,) int64, steps in use per example


# ----------------------------------------------------------------------------------------------------------------------
# Argument checks
# ----------------------------------------------------------------------------------------------------------------------

def _check_rng(rng) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (e.g. np.random.default_rng(0)), "
                        f"got {type(rng).__name__}")


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def _check_range(low_name: str, low, high_name: str, high, minimum: int) -> tuple[int, int]:
    low = _check_int(low_name, low, minimum)
    high = _check_int(high_name, high, minimum)
    if low > high:
        raise ValueError(f"{low_name} ({low}) must not exceed {high_name} ({high})")
    return low, high


def _random_bits(rng: np.random.Generator, shape) -> np.ndarray:
    """Independent fair 0/1 bits as float64."""
    return rng.integers(0, 2, size=shape).astype(np.float64)


def _steps(batch_size: int, T: int) -> np.ndarray:
    return np.broadcast_to(np.arange(T), (batch_size, T))      # (N, T) step index t


# ----------------------------------------------------------------------------------------------------------------------
# Copy
# ----------------------------------------------------------------------------------------------------------------------

def copy_task(rng: np.random.Generator, batch_size: int, bits: int = 8, min_len: int = 1,
              max_len: int = 20) -> SequenceBatch:
    """Copy: a sequence of random bit vectors, a delimiter, then the same sequence as the target.

    Example n draws its length L in [min_len, max_len]. Channels: W_in = bits + 1 (the last one is the delimiter
    flag), W_out = bits.

        step t              inputs[n, t]                     targets[n, t]        target_mask[n, t]
        0 .. L-1            x_t on channels :bits            0                    False
        L                   1 on channel bits (delimiter)    0                    False
        L+1 .. 2L           0 (no input while recalling)     x_{t-L-1}            True
        2L+1 .. T-1         0 (padding)                      0                    False

    lengths[n] = 2L + 1 and T = max_n lengths[n].
    """
    _check_rng(rng)
    N = _check_int("batch_size", batch_size, 1)
    bits = _check_int("bits", bits, 1)
    min_len, max_len = _check_range("min_len", min_len, "max_len", max_len, 1)

    L = rng.integers(min_len, max_len + 1, size=N)                # (N,) sequence lengths
    L_max = int(L.max())
    seq = _random_bits(rng, (N, L_max, bits))                      # (N, L_max, bits) the sequences
    seq *= (np.arange(L_max)[None, :] < L[:, None])[:, :, None]    # (N, L_max, bits) zero after each one's end
    lengths = 2 * L + 1                                            # (N,)
    T = int(lengths.max())
    t = _steps(N, T)                                               # (N, T)

    inputs = np.zeros((N, T, bits + 1))                            # (N, T, bits+1)
    inputs[:, :L_max, :bits] = seq
    inputs[np.arange(N), L, bits] = 1.0                            # delimiter flag at step L

    rel = t - (L[:, None] + 1)                                     # (N, T) position within the recall phase
    target_mask = (rel >= 0) & (rel < L[:, None])                  # (N, T) recall steps
    src = np.where(target_mask, rel, 0)                            # (N, T) which input vector to recall
    targets = np.take_along_axis(seq, src[:, :, None], axis=1)     # (N, T, bits)
    targets *= target_mask[:, :, None]
    return SequenceBatch(inputs, targets, target_mask, lengths.astype(np.int64))


# ----------------------------------------------------------------------------------------------------------------------
# Repeat copy
# ----------------------------------------------------------------------------------------------------------------------

def repeat_copy_task(rng: np.random.Generator, batch_size: int, bits: int = 8, min_len: int = 1, max_len: int = 10,
                     min_repeats: int = 1, max_repeats: int = 10,
                     repeats_range: tuple[int, int] | None = None) -> SequenceBatch:
    """Repeat copy (Graves et al. 2014, §4.2): a sequence, an end mark, then the number of repeats R on an input
    channel of its own; the target is the sequence R times, then an end marker.

    Example n draws its length L in [min_len, max_len] and R in [min_repeats, max_repeats]. Channels: W_in = bits + 2
    (channel bits: the delimiter, channel bits+1: the repeat count), W_out = bits + 1 (the last one: the end marker).
    The count is normalised to mean 0 and variance 1, as in the paper: (R − μ) / σ with μ and σ² the mean and the
    variance of R drawn uniformly from `repeats_range` (default (min_repeats, max_repeats); a range of one value gives
    σ = 1). To test more repeats than trained on, pass the training range so a given R is shown as the same number.

        step t                  inputs[n, t]                           targets[n, t]                   mask
        0 .. L-1                x_t on channels :bits                  0                               False
        L                       1 on channel bits (delimiter)          0                               False
        L+1                     (R − μ) / σ on channel bits+1          0                               False
        L+2 .. L+1+R*L          0                                      x_{(t-L-2) mod L}, end mark 0   True
        L+2+R*L                 0                                      end mark 1 on channel bits      True
        after that              0 (padding)                            0                               False

    lengths[n] = (R + 1) L + 3.
    """
    _check_rng(rng)
    N = _check_int("batch_size", batch_size, 1)
    bits = _check_int("bits", bits, 1)
    min_len, max_len = _check_range("min_len", min_len, "max_len", max_len, 1)
    min_repeats, max_repeats = _check_range("min_repeats", min_repeats, "max_repeats", max_repeats, 1)
    if repeats_range is None:
        repeats_range = (min_repeats, max_repeats)
    if not isinstance(repeats_range, (tuple, list)) or len(repeats_range) != 2:
        raise ValueError(f"repeats_range must be a pair (low, high) of integers, got {repeats_range!r}")
    lo, hi = _check_range("repeats_range[0]", repeats_range[0], "repeats_range[1]", repeats_range[1], 1)
    mu = (lo + hi) / 2                                             # mean of R ~ U{lo..hi}
    sigma = math.sqrt(((hi - lo + 1) ** 2 - 1) / 12) or 1.0        # its standard deviation (1 for a single value)

    L = rng.integers(min_len, max_len + 1, size=N)                 # (N,) sequence lengths
    R = rng.integers(min_repeats, max_repeats + 1, size=N)         # (N,) repeats
    L_max = int(L.max())
    seq = _random_bits(rng, (N, L_max, bits))                      # (N, L_max, bits)
    seq *= (np.arange(L_max)[None, :] < L[:, None])[:, :, None]
    lengths = (R + 1) * L + 3                                      # (N,)
    T = int(lengths.max())
    t = _steps(N, T)                                               # (N, T)
    rows = np.arange(N)

    inputs = np.zeros((N, T, bits + 2))                            # (N, T, bits+2)
    inputs[:, :L_max, :bits] = seq
    inputs[rows, L, bits] = 1.0                                    # the delimiter
    inputs[rows, L + 1, bits + 1] = (R - mu) / sigma               # the normalised repeat count, one step later

    rel = t - (L[:, None] + 2)                                     # (N, T) position within the output phase
    copying = (rel >= 0) & (rel < (R * L)[:, None])                # (N, T) steps that repeat the sequence
    src = np.where(copying, rel % L[:, None], 0)                   # (N, T) which input vector to write
    targets = np.zeros((N, T, bits + 1))                           # (N, T, bits+1)
    targets[:, :, :bits] = np.take_along_axis(seq, src[:, :, None], axis=1) * copying[:, :, None]
    end = L + 2 + R * L                                            # (N,) step of the end marker
    targets[rows, end, bits] = 1.0
    target_mask = (rel >= 0) & (t <= end[:, None])                 # (N, T) copies and the end marker
    return SequenceBatch(inputs, targets, target_mask, lengths.astype(np.int64))


# ----------------------------------------------------------------------------------------------------------------------
# Associative recall
# ----------------------------------------------------------------------------------------------------------------------

def associative_recall_task(rng: np.random.Generator, batch_size: int, bits: int = 6, item_len: int = 3,
                            min_items: int = 2, max_items: int = 6) -> SequenceBatch:
    """Associative recall: a list of items, then a query item; the target is the item that came after it.

    An item is item_len vectors of `bits` random bits. Example n draws K items, K in [min_items, max_items], and a
    query position q in [0, K-2] (any item but the last). The query item is made to differ from every other item of
    the example, so the answer is unambiguous. Channels: W_in = bits + 2 (channel bits: item delimiter, channel
    bits+1: query delimiter), W_out = bits. With B = item_len + 1:

        steps                                  inputs[n, t]                             targets[n, t]      mask
        k*B, k = 0..K-1                        1 on channel bits (item delimiter)       0                  False
        k*B+1 .. k*B+item_len                  item k                                   0                  False
        K*B                                    1 on channel bits+1 (query delimiter)    0                  False
        K*B+1 .. K*B+item_len                  item q (the query)                       0                  False
        (K+1)*B                                1 on channel bits+1 (query delimiter)    0                  False
        (K+1)*B+1 .. (K+1)*B+item_len          0                                        item q+1           True

    lengths[n] = (K + 2) B.
    """
    _check_rng(rng)
    N = _check_int("batch_size", batch_size, 1)
    bits = _check_int("bits", bits, 1)
    item_len = _check_int("item_len", item_len, 1)
    min_items, max_items = _check_range("min_items", min_items, "max_items", max_items, 2)

    K = rng.integers(min_items, max_items + 1, size=N)             # (N,) items per example
    q = rng.integers(0, K - 1)                                     # (N,) query position, never the last item
    K_max = int(K.max())
    valid = np.arange(K_max)[None, :] < K[:, None]                 # (N, K_max) item k exists
    items = _random_bits(rng, (N, K_max, item_len, bits))          # (N, K_max, item_len, bits)
    rows = np.arange(N)

    # Redraw the other items of any example where one equals the query item (rare for the paper's 18-bit items).
    while True:
        query = items[rows, q]                                                  # (N, item_len, bits)
        same = np.all(items == query[:, None], axis=(2, 3)) & valid             # (N, K_max)
        same[rows, q] = False
        clash = same.any(axis=1)                                                # (N,)
        if not clash.any():
            break
        items[same] = _random_bits(rng, (int(same.sum()), item_len, bits))      # redraw just the clashing items
    items *= valid[:, :, None, None]                               # (N, K_max, item_len, bits) zero beyond K

    B = item_len + 1
    lengths = (K + 2) * B                                          # (N,)
    T = int(lengths.max())
    inputs = np.zeros((N, T, bits + 2))                            # (N, T, bits+2)
    blocks = np.zeros((N, K_max, B, bits + 2))                     # (N, K_max, B, bits+2) one block per item
    blocks[:, :, 0, bits] = valid                                  # item delimiter before each item
    blocks[:, :, 1:, :bits] = items
    inputs[:, : K_max * B] = blocks.reshape(N, K_max * B, bits + 2)

    j = np.arange(item_len)[None, :]                               # (1, item_len)
    inputs[rows, K * B, bits + 1] = 1.0                            # query delimiter, opening
    inputs[rows[:, None], (K * B)[:, None] + 1 + j, :bits] = items[rows, q]          # the query item
    inputs[rows, (K + 1) * B, bits + 1] = 1.0                      # query delimiter, closing

    out_steps = ((K + 1) * B)[:, None] + 1 + j                     # (N, item_len) answer steps
    targets = np.zeros((N, T, bits))                               # (N, T, bits)
    targets[rows[:, None], out_steps] = items[rows, q + 1]         # the item after the query
    target_mask = np.zeros((N, T), dtype=bool)                     # (N, T)
    target_mask[rows[:, None], out_steps] = True
    return SequenceBatch(inputs, targets, target_mask, lengths.astype(np.int64))
