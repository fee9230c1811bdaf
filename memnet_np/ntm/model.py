"""Neural Turing Machine (Graves, Wayne, Danihelka 2014): the model, forward and backward through time by hand.

At every step t a controller (LSTM or feedforward) reads the input x_t and the previous read vectors, and emits,
through one linear layer, the parameters of every head. Each head turns them into a weighting over the M memory
slots in four stages (§3.3), each an op pair in addressing.py:

    content        w^c(i) = softmax_i(β · K(k, M(i)))    K(u, v) = u·v / (‖u‖_ε ‖v‖_ε)  ‖u‖_ε = √(u·u + ε)   (5, 6)
    interpolation  w^g    = g w^c + (1 − g) w_{t−1}                                                  (7)
    shift          w̃(i)  = Σ_δ s(δ) w^g(i − δ mod M)       δ ∈ {−r, …, +r}, s a softmax over the 2r+1 shifts  (8)
    sharpening     w(i)   = w̃(i)^γ / Σ_j w̃(j)^γ           γ ≥ 1                                         (9)

with k = tanh(·), β = softplus(·), g = σ(·), γ = 1 + softplus(·) (Collier & Beel 2018's choices). Then

    read           r = Σ_i w(i) M(i)                                                                 (2)
    write          M̃(i) = M(i) ⊙ Π_h (1 − w_h(i) e_h),  M(i) = M̃(i) + Σ_h w_h(i) a_h    e = σ(·), a = tanh(·) (3, 4)
    output         y_t = σ(W_out [h_t, r_t] + b_out)        sigmoid bits

All heads address the memory M_{t−1} left by the previous step; the read heads read it, then the write heads
erase (all of them) and add (all of them). The read vectors r_t feed the output at t and the controller at t + 1.

The shift convention (a positive δ moves the focus to higher slot indices) and the safe numerics of the cosine
and of sharpening are stated in addressing.py, beside the code.

Loss: the bit cross-entropy Σ softplus(z) − y z (nats) over the scored (target) steps and output channels, averaged
over the sequences of the batch. `info` reports it per sequence in bits (the paper's "cost per sequence").

Where the rest lives: the addressing stages and memory ops in `addressing.py`, the settings, parameters and batches
in `config.py`, training, evaluation, the bench and the command line's hooks in `training.py`.

Shape letters: N batch, T time steps, M memory slots, d memory width, H controller size, S = 2r + 1 shifts,
R read heads, Wh write heads, Hh = R + Wh heads in all (read heads first). D input width, Y output width.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from memnet_np import ops
from memnet_np.ntm.addressing import (COSINE_EPS, AddCache, ContentCache, EraseCache, InterpolateCache, ReadCache,
                                      SharpenCache, ShiftCache, add_backward, add_forward, address, content_backward,
                                      erase_backward, erase_forward, interpolate_backward, read_backward,
                                      read_forward, sharpen_backward, shift_backward, sigmoid, softmax,
                                      softmax_backward, softplus)
from memnet_np.ntm.config import Batch, Config, _check_batch, _check_params, head_layout


# ----------------------------------------------------------------------------------------------------------------
# Head parameters from the controller: P (N, ·) -> k, β, g, s, γ, e, a


class Heads(NamedTuple):
    k: np.ndarray      # (N, Hh, d)   tanh
    beta: np.ndarray   # (N, Hh)      softplus
    g: np.ndarray      # (N, Hh)      σ
    s: np.ndarray      # (N, Hh, S)   softmax over the shifts
    gamma: np.ndarray  # (N, Hh)      1 + softplus
    e: np.ndarray      # (N, Wh, d)   σ
    a: np.ndarray      # (N, Wh, d)   tanh


class HeadsCache(NamedTuple):
    heads: Heads
    raw_beta: np.ndarray   # (N, Hh) before softplus
    raw_gamma: np.ndarray  # (N, Hh)


def heads_forward(P, config: Config):
    lay, N = head_layout(config), P.shape[0]
    Hh, Wh, d, S = config.heads, config.write_heads, config.memory_width, config.shifts
    k = np.tanh(P[:, lay["k"]]).reshape(N, Hh, d)             # (N, Hh, d)
    raw_beta, raw_gamma = P[:, lay["beta"]], P[:, lay["gamma"]]   # (N, Hh)
    beta = softplus(raw_beta)                                 # (N, Hh)
    g = sigmoid(P[:, lay["g"]])                               # (N, Hh)
    s = softmax(P[:, lay["s"]].reshape(N, Hh, S))             # (N, Hh, S)
    gamma = 1.0 + softplus(raw_gamma)                         # (N, Hh)
    e = sigmoid(P[:, lay["e"]].reshape(N, Wh, d))             # (N, Wh, d)
    a = np.tanh(P[:, lay["a"]]).reshape(N, Wh, d)             # (N, Wh, d)
    heads = Heads(k, beta, g, s, gamma, e, a)
    return heads, HeadsCache(heads, raw_beta, raw_gamma)


def heads_backward(dheads: Heads, cache: HeadsCache, config: Config):
    """dheads: a Heads of gradients (None where a part got none) -> dP (N, ·)."""
    h, lay = cache.heads, head_layout(config)
    N = h.k.shape[0]
    dP = np.zeros((N, lay["a"].stop), dtype=h.k.dtype)        # (N, P)
    def put(name, value):
        dP[:, lay[name]] = value.reshape(N, -1)
    if dheads.k is not None:
        put("k", dheads.k * (1.0 - h.k * h.k))
    if dheads.beta is not None:
        put("beta", dheads.beta * sigmoid(cache.raw_beta))      # softplus' = σ
    if dheads.g is not None:
        put("g", dheads.g * h.g * (1.0 - h.g))
    if dheads.s is not None:
        put("s", softmax_backward(dheads.s, h.s))
    if dheads.gamma is not None:
        put("gamma", dheads.gamma * sigmoid(cache.raw_gamma))
    if dheads.e is not None:
        put("e", dheads.e * h.e * (1.0 - h.e))
    if dheads.a is not None:
        put("a", dheads.a * (1.0 - h.a * h.a))
    return dP


# ----------------------------------------------------------------------------------------------------------------
# One time step


class StepCache(NamedTuple):
    xin: np.ndarray                  # (N, D + R·d) controller input [x_t, r_{t−1}]
    controller: object               # ops.LSTMCache, or (h,) for the feedforward controller
    h: np.ndarray                    # (N, H) controller output
    heads: HeadsCache
    content: ContentCache
    interpolate: InterpolateCache
    shift: ShiftCache
    sharpen: SharpenCache
    read: ReadCache
    erase: EraseCache
    add: AddCache


def step_forward(params, config: Config, x, state):
    """x (N, D); state = (h, c, r (N, R, d), w (N, Hh, M), mem (N, M, d)) -> (new state, cache)."""
    h, c, r, w_prev, mem = state
    N, R = x.shape[0], config.read_heads
    xin = np.concatenate([x, r.reshape(N, -1)], axis=1)       # (N, D + R·d)
    if config.controller == "lstm":
        (h, c), ctrl = ops.lstm_forward(xin, h, c, params["Wx"], params["Wh"], params["b"])   # (N, H)
    else:
        h = np.tanh(xin @ params["Wx"].T + params["b"])       # (N, H)
        ctrl = None
    P = h @ params["W_heads"].T + params["b_heads"]           # (N, P) every head's raw parameters
    heads, hc = heads_forward(P, config)
    w, (cc, ic, sc, pc) = address(heads, w_prev, mem)         # (N, Hh, M) all heads address M_{t−1}
    r, rc = read_forward(mem, w[:, :R])                       # (N, R, d)
    mem_e, ec = erase_forward(mem, w[:, R:], heads.e)         # (N, M, d) all erasures ...
    mem_new, ac = add_forward(mem_e, w[:, R:], heads.a)       # (N, M, d) ... then all additions
    return (h, c, r, w, mem_new), StepCache(xin, ctrl, h, hc, cc, ic, sc, pc, rc, ec, ac)


def step_backward(params, config: Config, dstate, dh_out, dr_out, cache: StepCache):
    """dstate = gradients of the state this step returned; dh_out (N, H), dr_out (N, R, d) from the output layer.

    Returns the gradients of the state the step received, and the gradients of the step's two pre-activations,
    dP (N, P) of the head layer and dz (N, 4H or H) of the controller: `backward` forms the weight gradients
    Σ_t dP_tᵀ h_t and Σ_t dz_tᵀ [x_t, r_{t−1}] from them once, as single matrix products.
    """
    dh, dc, dr, dw, dmem = dstate
    R = config.read_heads
    dmem_e, dw_add, da = add_backward(dmem, cache.add)        # (N, M, d), (N, Wh, M), (N, Wh, d)
    dmem_prev, dw_erase, de = erase_backward(dmem_e, cache.erase)
    dmem_read, dw_read = read_backward(dr + dr_out, cache.read)
    dmem_prev = dmem_prev + dmem_read                         # (N, M, d)
    dw = dw + np.concatenate([dw_read, dw_add + dw_erase], axis=1)   # (N, Hh, M)
    dws, dgamma = sharpen_backward(dw, cache.sharpen)
    dwg, ds = shift_backward(dws, cache.shift)
    dwc, dw_prev, dg = interpolate_backward(dwg, cache.interpolate)
    dk, dbeta, dmem_c = content_backward(dwc, cache.content)
    dmem_prev = dmem_prev + dmem_c                            # (N, M, d)
    dP = heads_backward(Heads(dk, dbeta, dg, ds, dgamma, de, da), cache.heads, config)   # (N, P)
    dh = dh_out + dP @ params["W_heads"] + (0.0 if dh is None else dh)   # (N, H)
    if config.controller == "lstm":
        dz, dc_prev = ops.lstm_preactivation_backward(dh, dc, cache.controller)   # (N, 4H), (N, H)
        dh_prev = dz @ params["Wh"]                           # (N, H)
    else:
        dz = dh * (1.0 - cache.h * cache.h)                   # (N, H) tanh'
        dh_prev = dc_prev = None
    N, D = dz.shape[0], config.input_width
    dr_prev = (dz @ params["Wx"][:, D:]).reshape(N, R, -1)    # (N, R, d) r_{t−1} was part of the input (x_t is data)
    return (dh_prev, dc_prev, dr_prev, dw_prev, dmem_prev), dP, dz


# ----------------------------------------------------------------------------------------------------------------
# Forward and backward through time


class Cache(NamedTuple):
    steps: list                 # T StepCaches
    hr: np.ndarray              # (N, T, H + R·d) output layer input [h_t, r_t]
    w0: np.ndarray              # (Hh, M) softmax(params["w0"])
    N: int


def initial_state(params, config: Config, batch: Batch):
    """(h0, c0, r0, w0, M0) broadcast over the batch."""
    N, dtype = batch.inputs.shape[0], params["Wx"].dtype
    H, M, d = config.controller_size, config.memory_slots, config.memory_width
    if config.controller == "lstm":
        h = np.broadcast_to(params["h0"], (N, H))
        c = np.broadcast_to(params["c0"], (N, H))
    else:
        h = c = None
    r = np.broadcast_to(params["r0"], (N,) + params["r0"].shape)        # (N, R, d)
    w0 = softmax(params["w0"])                                         # (Hh, M)
    w = np.broadcast_to(w0, (N,) + w0.shape)                            # (N, Hh, M)
    if config.memory_init == "constant":
        mem = np.full((N, M, d), config.memory_init_value, dtype=dtype)
    elif config.memory_init == "learned":
        mem = np.broadcast_to(params["M0"], (N, M, d))
    else:
        mem = batch.memory0.astype(dtype, copy=False)
    return (h, c, r, w, mem), w0


def steps_to_run(batch: Batch) -> int:
    """Steps up to the last scored one: what comes after cannot change the loss."""
    scored = np.flatnonzero(batch.target_mask.any(0))
    return int(scored[-1]) + 1 if scored.size else batch.inputs.shape[1]


def forward(params, batch: Batch, config: Config):
    """Returns (logits (N, T, Y), cache); steps after the last scored one are not run and get logits 0."""
    _check_batch(batch, config)
    _check_params(params, config)
    dtype = params["Wx"].dtype
    x = batch.inputs.astype(dtype, copy=False)                # (N, T, D)
    N, T_all, _ = x.shape
    state, w0 = initial_state(params, config, batch)
    steps, hs, rs = [], [], []
    for t in range(steps_to_run(batch)):
        state, cache = step_forward(params, config, x[:, t], state)
        steps.append(cache)
        hs.append(state[0])
        rs.append(state[2].reshape(N, -1))
    hr = np.concatenate([np.stack(hs, 1), np.stack(rs, 1)], axis=2)     # (N, T, H + R·d)
    logits = np.zeros((N, T_all, config.output_width), dtype=dtype)     # (N, T, Y)
    logits[:, :len(steps)] = hr @ params["W_out"].T + params["b_out"]
    return logits, Cache(steps, hr, w0, N)


def backward(dlogits, cache: Cache, params, config: Config) -> dict[str, np.ndarray]:
    grads = {name: np.zeros_like(p) for name, p in params.items()}
    T, N, H, R = len(cache.steps), cache.N, config.controller_size, config.read_heads
    dl = dlogits[:, :T]                                       # (N, T, Y)
    Y = dl.shape[-1]
    grads["W_out"] += dl.reshape(-1, Y).T @ cache.hr.reshape(N * T, -1)   # (Y, H + R·d)
    grads["b_out"] += dl.reshape(-1, Y).sum(0)
    dhr = dl @ params["W_out"]                                # (N, T, H + R·d)
    M, d, dtype = config.memory_slots, config.memory_width, dl.dtype
    lstm = config.controller == "lstm"
    dstate = (np.zeros((N, H), dtype) if lstm else None, np.zeros((N, H), dtype) if lstm else None,
              np.zeros((N, R, d), dtype), np.zeros((N, config.heads, M), dtype), np.zeros((N, M, d), dtype))
    dPs, dzs = [None] * T, [None] * T
    for t in reversed(range(T)):
        dstate, dPs[t], dzs[t] = step_backward(params, config, dstate, dhr[:, t, :H],
                                               dhr[:, t, H:].reshape(N, R, -1), cache.steps[t])
    dP = np.concatenate(dPs)                                  # (T·N, P) step by step, as the stacks below
    dz = np.concatenate(dzs)                                  # (T·N, 4H)
    grads["W_heads"] += dP.T @ np.concatenate([s.h for s in cache.steps])       # (P, H)
    grads["b_heads"] += dP.sum(0)
    grads["Wx"] += dz.T @ np.concatenate([s.xin for s in cache.steps])          # (4H, D + R·d)
    grads["b"] += dz.sum(0)
    if config.controller == "lstm":
        grads["Wh"] += dz.T @ np.concatenate([s.controller.h_prev for s in cache.steps])   # (4H, H)
    dh, dc, dr, dw, dmem = dstate
    if config.controller == "lstm":
        grads["h0"] += dh.sum(0)                              # (H,) the same h0 for every sequence
        grads["c0"] += dc.sum(0)
    grads["r0"] += dr.sum(0)                                  # (R, d)
    grads["w0"] += softmax_backward(dw.sum(0), cache.w0)    # (Hh, M)
    if config.memory_init == "learned":
        grads["M0"] += dmem.sum(0)                            # (M, d)
    return grads


# ----------------------------------------------------------------------------------------------------------------
# Loss, metrics and the protocol's entry points

LN2 = math.log(2.0)


def bit_cross_entropy(logits, batch: Batch):
    """Per-sequence cross-entropy (nats) summed over scored steps and channels, and dlogits of its batch mean."""
    y = batch.targets.astype(logits.dtype, copy=False)
    mask = batch.target_mask[:, :, None]                      # (N, T, 1)
    ce = (softplus(logits) - y * logits) * mask               # (N, T, Y) −[y log σ(z) + (1−y) log(1−σ(z))]
    per_seq = ce.sum((1, 2))                                  # (N,)
    N = logits.shape[0]
    dlogits = (sigmoid(logits) - y) * mask / N                # (N, T, Y) ∂(mean over sequences)/∂z
    return per_seq, dlogits


def metrics(logits, batch: Batch) -> dict:
    """Per-sequence cost in bits and bit errors (outputs thresholded at 0.5), over the scored steps."""
    per_seq, _ = bit_cross_entropy(logits, batch)
    wrong = ((logits > 0) != (batch.targets > 0.5)) & batch.target_mask[:, :, None]   # (N, T, Y)
    return {"bits": per_seq / LN2, "bit_errors": wrong.sum((1, 2))}


def weightings_of(cache: Cache, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """Read (N, T, R, M) and write (N, T, Wh, M) weightings of every step."""
    w = np.stack([s.sharpen.w for s in cache.steps], axis=1)  # (N, T, Hh, M)
    return w[:, :, :config.read_heads], w[:, :, config.read_heads:]


def loss_and_grads(params, batch: Batch, config: Config):
    """Mean over sequences of the summed bit cross-entropy (nats), its gradients, and info."""
    logits, cache = forward(params, batch, config)
    per_seq, dlogits = bit_cross_entropy(logits, batch)
    grads = backward(dlogits, cache, params, config)
    read_w, write_w = weightings_of(cache, config)
    m = metrics(logits, batch)
    info = {"bits_per_sequence": m["bits"], "bit_errors_per_sequence": m["bit_errors"],
            "read_weightings": read_w, "write_weightings": write_w}
    return float(per_seq.mean()), grads, info


def predict(params, batch: Batch, config: Config):
    """Output bits (N, T, Y) (0 where unscored) and info: probabilities, per-sequence bits and bit errors,
    read/write weightings (N, T, heads, M), the final memory (N, M, d)."""
    logits, cache = forward(params, batch, config)
    probs = sigmoid(logits)                                   # (N, T, Y)
    m = metrics(logits, batch)
    read_w, write_w = weightings_of(cache, config)
    last = cache.steps[-1]
    memory = add_forward(erase_forward(last.read.mem, last.erase.w, last.erase.e)[0], last.add.w, last.add.a)[0]
    bits = (probs > 0.5) & batch.target_mask[:, :, None]
    info = {"probs": probs, "bits_per_sequence": m["bits"], "bit_errors_per_sequence": m["bit_errors"],
            "read_weightings": read_w, "write_weightings": write_w, "memory": memory}
    return bits.astype(np.int8), info


# ----------------------------------------------------------------------------------------------------------------
# The same model one sequence at a time, written from the paper's equations: the oracle for the code above


def forward_naive(params, batch: Batch, config: Config) -> np.ndarray:
    """Logits (N, T, Y), example by example, slot by slot, head by head, with plain loops and formulas."""
    d, M, H, S, r_ = config.memory_width, config.memory_slots, config.controller_size, config.shifts, \
        config.shift_range
    R, Wr = config.read_heads, config.write_heads
    Hh = R + Wr
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))
    softplus_ = lambda z: np.log1p(np.exp(z))
    def softmax(z):
        e = np.exp(z - np.max(z))
        return e / e.sum()
    # the documented column layout of the head layer: k, β, g, s, γ of every head, then e and a of the writers
    off_k, off_beta = 0, Hh * d
    off_g, off_s = off_beta + Hh, off_beta + 2 * Hh
    off_gamma = off_s + Hh * S
    off_e = off_gamma + Hh
    off_a = off_e + Wr * d
    scored = np.flatnonzero(batch.target_mask.any(0))
    T = int(scored[-1]) + 1 if scored.size else batch.inputs.shape[1]
    out = np.zeros(batch.targets.shape)
    for n in range(batch.inputs.shape[0]):
        if config.memory_init == "constant":
            mem = np.full((M, d), config.memory_init_value)
        elif config.memory_init == "learned":
            mem = params["M0"].copy()
        else:
            mem = batch.memory0[n].copy()
        h = params["h0"].copy() if config.controller == "lstm" else np.zeros(H)
        c = params["c0"].copy() if config.controller == "lstm" else None
        reads = [params["r0"][i].copy() for i in range(R)]
        w_prev = [softmax(params["w0"][j]) for j in range(Hh)]
        for t in range(T):
            xin = np.concatenate([batch.inputs[n, t]] + reads)
            if config.controller == "lstm":
                z = params["Wx"] @ xin + params["Wh"] @ h + params["b"]
                i_g, f_g, o_g, g_g = sig(z[:H]), sig(z[H:2 * H]), sig(z[2 * H:3 * H]), np.tanh(z[3 * H:])
                c = f_g * c + i_g * g_g
                h = o_g * np.tanh(c)
            else:
                h = np.tanh(params["Wx"] @ xin + params["b"])
            p = params["W_heads"] @ h + params["b_heads"]
            weightings = []
            for j in range(Hh):
                k = np.tanh(p[off_k + j * d: off_k + (j + 1) * d])
                beta = softplus_(p[off_beta + j])
                g = sig(p[off_g + j])
                s = softmax(p[off_s + j * S: off_s + (j + 1) * S])
                gamma = 1.0 + softplus_(p[off_gamma + j])
                K = np.array([k @ mem[i] / (np.sqrt(k @ k + COSINE_EPS) * np.sqrt(mem[i] @ mem[i] + COSINE_EPS))
                              for i in range(M)])                             # (6) cosine similarity
                wc = softmax(beta * K)                                        # (5)
                wg = g * wc + (1 - g) * w_prev[j]                             # (7)
                ws = np.zeros(M)                                              # (8) w̃(i) = Σ_j w^g(j) s(i − j)
                for i in range(M):
                    for jj in range(M):
                        delta = (i - jj) % M
                        if delta <= r_:
                            ws[i] += wg[jj] * s[r_ + delta]
                        elif delta >= M - r_:
                            ws[i] += wg[jj] * s[r_ + delta - M]
                wp = ws ** gamma                                              # (9)
                weightings.append(wp / wp.sum())
            reads = [sum(weightings[j][i] * mem[i] for i in range(M)) for j in range(R)]   # (2)
            new = mem.copy()
            for j in range(Wr):                                               # (3) every erasure first
                e = sig(p[off_e + j * d: off_e + (j + 1) * d])
                for i in range(M):
                    new[i] = new[i] * (1 - weightings[R + j][i] * e)
            for j in range(Wr):                                               # (4) then every addition
                a = np.tanh(p[off_a + j * d: off_a + (j + 1) * d])
                for i in range(M):
                    new[i] = new[i] + weightings[R + j][i] * a
            mem = new
            w_prev = weightings
            out[n, t] = params["W_out"] @ np.concatenate([h] + reads) + params["b_out"]
    return out
