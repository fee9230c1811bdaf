# %% [markdown]
# # 04 · The Neural Turing Machine, one head at a time
#
# *Graves, Wayne & Danihelka (2014), "Neural Turing Machines", §3.*
#
# A Neural Turing Machine is a recurrent controller with a memory matrix beside it. At every time step the
# controller emits, for each of its *heads*, a handful of numbers — a key, a key strength, a gate, a shift
# distribution, a sharpening exponent — and the head turns them into a **weighting**: a distribution over the
# memory locations that says where to read or write. Everything is differentiable, so the whole machine trains
# by backpropagation through time.
#
# In this tutorial we build one head's weighting **by hand**, stage by stage (content → interpolation → shift →
# sharpening), with a picture after each stage; then we read and write with it. Then we go backwards through each
# stage and check every gradient against finite differences. At the end we train the whole machine on the copy
# task and draw the paper's classic figure: the write head walking down the memory, the read head following it.
#
# How to run it:
#
#     python tutorials/04_ntm.py                  # the full tutorial: a minute or two, mostly training
#     MEMNET_FAST=1 python tutorials/04_ntm.py    # a few seconds: tiny training, for tests
#
# Figures go into `$MEMNET_TUTORIAL_OUT` if it is set, else into `./tutorial_out/` (not in fast mode).
# `00_gradient_checking.py` explains the gradient checks; exercise 4 (`tutorials/exercises/`) has you write the
# backward of three of these stages yourself.

# %%
import time

from memnet_np import runtime

runtime.one_blas_thread()                 # before numpy is imported: one thread is faster for these small matrices,
import numpy as np                        # and makes a run repeat exactly on one machine

from memnet_np import gradcheck, ntm, plots, tutorial
from memnet_np.tutorial import check_line, claim, save_figure, section
from memnet_np.ntm import addressing as A

T_START = time.perf_counter()
FAST = tutorial.start()                   # MEMNET_FAST=1: tiny training, for tests; says where figures go

rng = np.random.default_rng(0)            # every random draw below comes from this generator


# %% [markdown]
# ## 1. A small memory
#
# The memory is a matrix M of M locations (rows), each a vector of width d. We make one with M = 10 locations of
# width d = 6, random numbers, and one head. Every op in `memnet_np.ntm.addressing` is batched over a batch
# axis N and a heads axis Hh, so we carry those axes along with size 1: a weighting has shape (N, Hh, M) = (1, 1, 10).

# %%
section("1. a small memory")
M, d = 10, 6
mem = rng.standard_normal((1, M, d))                          # (N, M, d) = (1, 10, 6)
print("memory M (locations down):\n", mem[0])

# %% [markdown]
# ## 2. Content addressing
#
# The head emits a key k (width d) and a key strength β > 0. Each location is scored by the cosine similarity of
# its row with the key, and a softmax sharpened by β turns the scores into a weighting (eqs. 5, 6):
#
# $$K(k, M(i)) = \frac{k \cdot M(i)}{\lVert k \rVert \, \lVert M(i) \rVert}, \qquad
#   w^c(i) = \frac{\exp(\beta K(k, M(i)))}{\sum_j \exp(\beta K(k, M(j)))}$$
#
# (The library puts a tiny ε under each square root, √(u·u + ε), so a row of zeros scores 0 instead of 0/0.)
# We take as the key a noisy copy of location 3: content addressing should find location 3.

# %%
section("2. content addressing")
k = (mem[:, 3] + 0.3 * rng.standard_normal((1, d)))[:, None, :]   # (N, Hh, d) a noisy copy of row 3
beta = np.array([[5.0]])                                       # (N, Hh)
K_by_hand = np.array([k[0, 0] @ mem[0, i] / (np.linalg.norm(k[0, 0]) * np.linalg.norm(mem[0, i]))
                      for i in range(M)])                      # (M,) the cosine, one location at a time
wc_by_hand = np.exp(beta[0, 0] * K_by_hand) / np.exp(beta[0, 0] * K_by_hand).sum()   # (M,)
wc, content_cache = A.content_forward(k, beta, mem)            # (N, Hh, M) the library's
print("cosine K:", K_by_hand)
print("w^c     :", wc[0, 0])
claim(np.allclose(wc[0, 0], wc_by_hand, atol=1e-7), "the library's w^c is the formula (up to the tiny ε)")
claim(int(wc[0, 0].argmax()) == 3, "the noisy copy of location 3 finds location 3")
wc_soft, _ = A.content_forward(k, np.array([[1.0]]), mem)      # (N, Hh, M) a weaker key strength
wc_hard, _ = A.content_forward(k, np.array([[50.0]]), mem)     # (N, Hh, M) a stronger one
print(f"largest weight with β = 1: {wc_soft.max():.3f},  β = 5: {wc.max():.3f},  β = 50: {wc_hard.max():.3f}")
claim(wc_soft.max() < wc.max() < wc_hard.max(), "a larger β focuses the weighting more sharply")

# %% [markdown]
# ## 3. Interpolation with the previous weighting
#
# A gate g ∈ (0, 1) mixes the content weighting with the weighting the head had at the previous step (eq. 7):
#
# $$w^g = g\, w^c + (1 - g)\, w_{t-1}$$
#
# With g = 0 the head ignores the content and keeps its old place — that is how it can move by location alone.
# Say the head was on location 6 at the previous step, and g = 0.4.

# %%
section("3. interpolation")
w_prev = np.zeros((1, 1, M))                                   # (N, Hh, M)
w_prev[0, 0, 6] = 1.0                                          # the previous step's focus: location 6
g = np.array([[0.4]])                                          # (N, Hh)
wg, interp_cache = A.interpolate_forward(wc, w_prev, g)        # (N, Hh, M)
print("w^g:", wg[0, 0])
claim(np.allclose(wg, 0.4 * wc + 0.6 * w_prev), "w^g is 0.4 w^c + 0.6 w_{t−1}")
claim(np.isclose(wg.sum(), 1.0), "a mix of two weightings is a weighting: it sums to 1")
claim(np.allclose(A.interpolate_forward(wc, w_prev, np.array([[1.0]]))[0], wc) and
      np.allclose(A.interpolate_forward(wc, w_prev, np.array([[0.0]]))[0], w_prev),
      "g = 1 gives w^c, g = 0 gives w_{t−1}")

# %% [markdown]
# ## 4. Circular shift
#
# The head emits a distribution s over the allowed shifts δ ∈ {−1, 0, +1} and convolves the weighting with it,
# circularly (eq. 8):
#
# $$\tilde w(i) = \sum_{\delta} s(\delta)\, w^g\big((i - \delta) \bmod M\big)$$
#
# In this library a **positive δ moves the focus to higher locations** (implementations differ on the direction;
# a test pins this one). We shift mostly by +1.

# %%
section("4. circular shift")
s = np.array([[[0.05, 0.10, 0.85]]])                           # (N, Hh, S) s(−1), s(0), s(+1)
ws_by_hand = np.zeros(M)                                       # (M,) eq. 8, one location at a time
for i in range(M):
    for j, delta in enumerate((-1, 0, 1)):
        ws_by_hand[i] += s[0, 0, j] * wg[0, 0, (i - delta) % M]
ws, shift_cache = A.shift_forward(wg, s)                       # (N, Hh, M)
print("w̃:", ws[0, 0])
claim(np.allclose(ws[0, 0], ws_by_hand), "the library's shift is eq. 8")
one_hot = np.zeros((1, 1, M))
one_hot[0, 0, M - 1] = 1.0                                     # focus on the last location
moved, _ = A.shift_forward(one_hot, np.array([[[0.0, 0.0, 1.0]]]))
claim(moved[0, 0, 0] == 1.0, "a shift by +1 moves a focus on the last location to location 0: it wraps around")
claim(np.isclose(ws.sum(), 1.0), "shifting keeps the total weight")

# %% [markdown]
# ## 5. Sharpening
#
# A convolution blurs: after a few shifts the focus would smear out. So the head emits γ ≥ 1 and sharpens
# (eq. 9):
#
# $$w(i) = \frac{\tilde w(i)^{\gamma}}{\sum_j \tilde w(j)^{\gamma}}$$
#
# The library computes it as softmax(γ log w̃), with w̃ floored at 10⁻³⁰ before the log: no 0^γ, no log 0.

# %%
section("5. sharpening")
gamma = np.array([[3.0]])                                      # (N, Hh)
w, sharpen_cache = A.sharpen_forward(ws, gamma)                # (N, Hh, M)
w_by_hand = ws[0, 0] ** 3 / (ws[0, 0] ** 3).sum()              # (M,) eq. 9 as written
print("w:", w[0, 0])
entropy = lambda p: float(-(p * np.log(p + 1e-300)).sum())
print(f"entropy before: {entropy(ws[0, 0]):.3f} nats, after: {entropy(w[0, 0]):.3f} nats")
claim(np.allclose(w[0, 0], w_by_hand), "softmax(γ log w̃) is w̃^γ / Σ w̃^γ")
claim(w.max() > ws.max() and entropy(w[0, 0]) < entropy(ws[0, 0]), "sharpening raises the peak and lowers the entropy")
claim(np.all(np.isfinite(A.sharpen_forward(one_hot, np.array([[1e6]]))[0])),
      "a weighting with zeros and a huge γ stay finite")
stages = {"content w^c": wc[0, 0], "interpolated w^g": wg[0, 0], "shifted w̃": ws[0, 0], "sharpened w": w[0, 0]}
save_figure(plots.ntm_addressing_stages, "04_addressing_stages.png", stages,
            title="one head's addressing: content → interpolation → shift → sharpening")
claim(int(w[0, 0].argmax()) == 7, "the content found location 3, the gate kept most of location 6, the shift "
                                  "moved that to 7, and sharpening made 7 the clear winner")

# %% [markdown]
# ## 6. Reading and writing
#
# A read head returns the weighted sum of the rows (eq. 2); a write head first erases with a vector e ∈ [0, 1]^d,
# then adds a vector a (eqs. 3, 4):
#
# $$r = \sum_i w(i)\, M(i), \qquad \tilde M(i) = M(i) \odot \big(1 - w(i)\, e\big), \qquad
#   M'(i) = \tilde M(i) + w(i)\, a$$
#
# With e = 1 and a sharp w, a write replaces the focused row by a; with e = 0 and a = 0 nothing changes.

# %%
section("6. read and write")
r, read_cache = A.read_forward(mem, w)                         # (N, R, d)
claim(np.allclose(r[0, 0], sum(w[0, 0, i] * mem[0, i] for i in range(M))), "r = Σ_i w(i) M(i)")
e = np.full((1, 1, d), 1.0)                                    # (N, Wh, d) erase everything at the focus
a = rng.uniform(-1, 1, (1, 1, d))                              # (N, Wh, d) what to write
erased, erase_cache = A.erase_forward(mem, w, e)               # (N, M, d)
written, add_cache = A.add_forward(erased, w, a)               # (N, M, d)
change = np.abs(written - mem).sum(-1)[0]                      # (M,) how much each row moved
print("how much each location changed:", change)
claim(int(change.argmax()) == int(w[0, 0].argmax()), "the focused location changed most")
claim(np.allclose(written[0, 7], (1 - w[0, 0, 7]) * mem[0, 7] + w[0, 0, 7] * a[0, 0]),
      "with e = 1 a row becomes (1 − w) M(i) + w a")
nothing = A.add_forward(A.erase_forward(mem, w, np.zeros_like(e))[0], w, np.zeros_like(a))[0]
claim(np.array_equal(nothing, mem), "e = 0 and a = 0 leave the memory exactly as it was")

# %% [markdown]
# ## 7. Backwards through each stage
#
# Each stage is an op pair, `*_forward` returning (output, cache) and `*_backward(dout, cache)` returning the
# gradients of its inputs. The interesting ones:
#
# * **content**: through the softmax, dz = w ⊙ (dw − Σ_j w_j dw_j), then through K = dot/(‖k‖‖M(i)‖) — the
#   norms depend on k and M(i) too, which adds −K k/‖k‖² (and −K M(i)/‖M(i)‖²) to the plain dot product's share;
# * **shift**: w^g(j) reached w̃(j + δ) with weight s(δ), so dw^g(j) = Σ_δ s(δ) dw̃(j + δ): the backward of a
#   shift is the shift the other way; ds(δ) = Σ_i dw̃(i) w^g(i − δ);
# * **sharpening**: a softmax of γ log w̃, so dγ = Σ_i dz(i) log w̃(i) and dw̃(i) = γ dz(i)/w̃(i).
#
# Each is checked against central finite differences with a random upstream gradient (float64, h = 1e-5).

# %%
section("7. the backward of each stage, against finite differences")
grad_rng = np.random.default_rng(1)
sx = lambda shape: (lambda z: np.exp(z) / np.exp(z).sum(-1, keepdims=True))(grad_rng.standard_normal(shape))
N, Hh = 2, 2                                                   # a small batch of two heads, non-uniform inputs
stage_inputs = {
    "content": (A.content_forward, A.content_backward,
                {"k": np.tanh(grad_rng.standard_normal((N, Hh, d))), "beta": grad_rng.uniform(0.5, 4, (N, Hh)),
                 "mem": grad_rng.standard_normal((N, M, d))}),
    "interpolation": (A.interpolate_forward, A.interpolate_backward,
                      {"wc": sx((N, Hh, M)), "w_prev": sx((N, Hh, M)), "g": grad_rng.uniform(0.1, 0.9, (N, Hh))}),
    "shift": (A.shift_forward, A.shift_backward, {"wg": sx((N, Hh, M)), "s": sx((N, Hh, 3))}),
    "sharpening": (A.sharpen_forward, A.sharpen_backward,
                   {"ws": 0.7 * sx((N, Hh, M)) + 0.03, "gamma": grad_rng.uniform(1, 3, (N, Hh))}),
    "read": (A.read_forward, A.read_backward, {"mem": grad_rng.standard_normal((N, M, d)), "w": sx((N, 1, M))}),
    "erase": (A.erase_forward, A.erase_backward, {"mem": grad_rng.standard_normal((N, M, d)), "w": sx((N, 2, M)),
                                                   "e": grad_rng.uniform(0, 1, (N, 2, d))}),
    "add": (A.add_forward, A.add_backward, {"mem": grad_rng.standard_normal((N, M, d)), "w": sx((N, 2, M)),
                                             "a": grad_rng.uniform(-1, 1, (N, 2, d))}),
}
worst = 0.0
for name, (fwd, bwd, inputs) in stage_inputs.items():
    errs = gradcheck.check_op(fwd, bwd, inputs, list(inputs), grad_rng)
    for what, err in errs.items():
        check_line(f"{name}: d{what}", err)
        worst = max(worst, err)
claim(worst < 1e-8, f"every stage's every gradient agrees with finite differences (worst {worst:.1e})")

# %% [markdown]
# The library chains these per head and per time step (`ntm.address`, then `model.step_forward` /
# `step_backward`), and checks the whole machine the same way: every parameter through several time steps, and a
# per-sequence forward written straight from the paper's equations that the batched forward must match. A small
# taste: every parameter of a tiny machine (two heads of each kind) through time.

# %%
section("the whole machine, every parameter through time")
tiny = ntm.Config.tiny()
tiny_params = ntm.init_params(tiny, grad_rng)
for p in tiny_params.values():
    p += grad_rng.standard_normal(p.shape) * 0.5               # away from the initial values: non-degenerate
tiny_batch = ntm.example_batch(tiny, grad_rng)
report = gradcheck.check_gradients(lambda prm: ntm.loss_and_grads(prm, tiny_batch, tiny)[:2], tiny_params,
                                   max_entries=10 if FAST else 40, rng=grad_rng)
print(gradcheck.format_report(report, 1e-6))
claim(all(r.checked > 0 and r.rel_error < 1e-6 for r in report.values()),
      "every parameter agrees with finite differences within 1e-6 (many steps of float64 round-off add up)")
claim(np.allclose(ntm.forward(tiny_params, tiny_batch, tiny)[0], ntm.forward_naive(tiny_params, tiny_batch, tiny),
                  atol=1e-10), "the batched forward matches the one-sequence-at-a-time forward from the paper")

# %% [markdown]
# ## 8. The copy task
#
# The machine sees a sequence of random 8-bit vectors (length 1–20), then a delimiter on a channel of its own,
# and must then output the same sequence with no further input. Memory 128 × 20, an LSTM controller of 100
# units, one read and one write head (the paper's §4.1 sizes). We train with the settings chosen on held-out
# sequences (`ntm.Config.tuned`: Adam 1e-2, batch 16, a learned initial memory) and score a fixed held-out set
# of sequences every so often: the paper's cost in bits per sequence, and bit errors per sequence.

# %%
section("8. training on the copy task")
config = ntm.Config.tuned("copy")
sequences = 320 if FAST else 20_000
t0 = time.perf_counter()
shown = []


def show(record):
    if len(shown) % (1 if FAST else 4) == 0:
        print(f"  {record['sequences']:6d} sequences  held-out {record['bits_per_sequence']:7.2f} bits, "
              f"{record['bit_errors_per_sequence']:6.2f} bit errors per sequence  ({record['seconds']:.0f}s)")
    shown.append(record)


run = ntm.train_task(config=config, rng=np.random.default_rng(0), sequences=sequences,
                     eval_every=160 if FAST else 1000, eval_sequences=50 if FAST else 200, progress=show)
print(f"trained on {sequences} sequences in {time.perf_counter() - t0:.0f}s; converged (≤ 0.1 bit errors per "
      f"held-out sequence) at: {run['converged_at']}")
params = run["best_params"]
save_figure(plots.ntm_learning_curve, "04_copy_learning_curve.png", run["history"])

# %% [markdown]
# ## 9. The classic figure
#
# Now one sequence of length 20, and where the heads look at every step (the paper's Fig. 6). During the input
# the write head should walk through the memory one location per step, writing the vectors into consecutive rows;
# after the delimiter the read head should jump back to where the writing began and walk the same way, reading
# the rows back in order. (Which way it walks, and where it starts, each training run decides for itself.)

# %%
section("9. where the heads read and write")
L = 20
b = ntm.make_batch(ntm.task_batch(config, np.random.default_rng(2), 1, L, L), config)
bits, info = ntm.predict(params, b, config)
T = 2 * L + 1
read_w, write_w = info["read_weightings"][0, :T, 0], info["write_weightings"][0, :T, 0]   # (T, M) each
write_focus = write_w[:L].argmax(1)                            # (L,) where input t was written
read_focus = read_w[L + 1:].argmax(1)                          # (L,) where output t was read
print("write focus during the input :", write_focus)
print("read focus during the output :", read_focus)
print(f"bit errors on this sequence: {int(info['bit_errors_per_sequence'][0])}")
save_figure(plots.ntm_weightings, "04_copy_weightings.png", read_w, write_w)
save_figure(plots.ntm_sequence, "04_copy_sequence.png", b.inputs[0, :T], b.targets[0, :T],
            info["probs"][0, :T] * b.target_mask[0, :T, None])
if FAST:
    print("fast mode: the machine has barely trained, so the claims about the trained machine are not checked")
else:
    steps = (np.diff(write_focus[1:]) + 1) % config.memory_slots - 1   # (L − 2,) each move, −1 wraps to −1
    claim(run["converged_at"] is not None, "training converged: ≤ 0.1 bit errors per held-out sequence")
    claim(int(info["bit_errors_per_sequence"][0]) == 0, "the length-20 sequence is copied without a bit wrong")
    claim(len(set(steps.tolist())) == 1 and abs(int(steps[0])) == 1,
          f"from the second input on, the write head moves one location per step, always the same way "
          f"({int(steps[0]):+d})")
    claim(np.mean(read_focus == write_focus) >= 0.9, "the read head visits the written locations in the order "
                                                     "they were written (at least 18 of 20 steps)")

print(f"\ntutorial done in {time.perf_counter() - T_START:.0f}s")
