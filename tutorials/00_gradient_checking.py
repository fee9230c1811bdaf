# %% [markdown]
# # 00 · Gradient checking
#
# Every model in `memnet_np` has a backward pass written by hand: the chain rule applied line by line, in
# reverse. Nothing computes it for us, so nothing vouches for it either, except a **gradient check**: compute
# the same derivative a second, completely different way (by nudging the inputs and watching the output move)
# and compare.
#
# This tutorial builds that check from scratch and learns to read its numbers:
#
# 1. finite differences, forward and central, and how small the step h should be;
# 2. why the check must run in float64;
# 3. the relative error, and why `memnet_np.gradcheck` measures it over the whole gradient, not entry by entry;
# 4. checking an op with a random upstream gradient (the attention read of a memory network);
# 5. what a wrong gradient looks like (halved, transposed);
# 6. kinks: relu and hinge at 0, where finite differences are wrong and the checker says so.
#
# Run it with `python tutorials/00_gradient_checking.py`, or open it as a notebook (it is a percent-format
# script). `MEMNET_FAST=1` uses smaller sizes; figures are saved into `$MEMNET_TUTORIAL_OUT` when that is set.

# %%
import os

from memnet_np import runtime

runtime.one_blas_thread()                               # before numpy is imported: small matrices, one thread
import numpy as np

from memnet_np import gradcheck as gc
from memnet_np import ops

FAST = os.environ.get("MEMNET_FAST") == "1"
OUT = os.environ.get("MEMNET_TUTORIAL_OUT")             # a folder for figures, or None
rng = np.random.default_rng(0)                          # every random draw below comes from here
np.set_printoptions(precision=4, suppress=False, linewidth=110)


def save_or_show(fig, name):
    """Save into $MEMNET_TUTORIAL_OUT if set; otherwise show, unless in fast mode or on a non-interactive backend."""
    import matplotlib
    import matplotlib.pyplot as plt
    if OUT:
        os.makedirs(OUT, exist_ok=True)
        path = os.path.join(OUT, name)
        fig.savefig(path, dpi=120, bbox_inches="tight")
        print(f"figure saved to {path}")
    elif not FAST and "agg" not in matplotlib.get_backend().lower():
        plt.show()
    else:
        print(f"(figure {name} not saved: set MEMNET_TUTORIAL_OUT=DIR to keep it)")
    plt.close(fig)


# %% [markdown]
# ## 1. Finite differences
#
# The derivative is the limit of a difference quotient. Stop short of the limit and you have a computable
# estimate. Taylor's theorem says how far off it is:
#
# $$f(x+h) = f(x) + h f'(x) + \tfrac{h^2}{2} f''(x) + \tfrac{h^3}{6} f'''(x) + \dots$$
#
# * **forward difference** $\dfrac{f(x+h) - f(x)}{h} = f'(x) + \tfrac{h}{2} f''(x) + \dots$: error $O(h)$;
# * **central difference** $\dfrac{f(x+h) - f(x-h)}{2h} = f'(x) + \tfrac{h^2}{6} f'''(x) + \dots$: the
#   $f''$ terms cancel, error $O(h^2)$.
#
# So a smaller h is better... until it is not. The computer stores f(x) with a relative error of about
# $\varepsilon \approx 10^{-16}$ (float64), and the difference of two nearly equal numbers keeps that absolute
# error while the division by h blows it up: **round-off error** $\approx \varepsilon\,|f| / h$.
# The total error is smallest where the two meet: near $h \approx \sqrt{\varepsilon} \approx 10^{-8}$ for the
# forward difference and $h \approx \varepsilon^{1/3} \approx 10^{-5}$ for the central one, which then reaches
# about $10^{-11}$.
#
# Let us watch it happen on $f(x) = \sin(x)\,x^2$, whose derivative we know exactly:
# $f'(x) = \cos(x)\,x^2 + 2x\sin(x)$.

# %%
def f(x):
    return np.sin(x) * x ** 2


def df(x):
    return np.cos(x) * x ** 2 + 2 * x * np.sin(x)


x0 = 1.3
exact = df(x0)
hs = np.logspace(-1, -13, 13 if FAST else 49)                 # steps from 1e-1 down to 1e-13
forward_err = np.abs((f(x0 + hs) - f(x0)) / hs - exact) / abs(exact)
central_err = np.abs((f(x0 + hs) - f(x0 - hs)) / (2 * hs) - exact) / abs(exact)

print(f"f'({x0}) = {exact:.15f}")
print("     h     forward error   central error")
for h, ef, ec in zip(hs, forward_err, central_err):
    if np.isclose(np.log10(h), np.round(np.log10(h))):        # one row per power of ten
        print(f"  {h:7.0e}     {ef:9.1e}       {ec:9.1e}")
print(f"best forward: {forward_err.min():.1e} at h = {hs[forward_err.argmin()]:.2g}")
print(f"best central: {central_err.min():.1e} at h = {hs[central_err.argmin()]:.2g}")

# %% [markdown]
# Reading the table from the top: the forward error drops ten times per row (slope 1: $O(h)$), the central
# error a hundred times per row (slope 2: $O(h^2)$). Below the best h both climb again, now growing as $1/h$:
# that is round-off, and it is noisy because round-off is. `memnet_np.gradcheck` uses the central difference
# with h = 1e-5, right at its sweet spot.
#
# On a log-log plot the two regimes are straight lines (if matplotlib is installed):

# %%
try:
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
    print("matplotlib is not installed: skipping the plot (pip install matplotlib to see it)")

if plt is not None:
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.loglog(hs, forward_err, "o-", ms=3, label="forward difference")
    ax.loglog(hs, central_err, "s-", ms=3, label="central difference")
    ax.loglog(hs, 0.5 * hs, "k:", lw=1, label="slope 1: O(h)")
    ax.loglog(hs, 0.5 * hs ** 2, "k--", lw=1, label="slope 2: O(h²)")
    ax.loglog(hs, 1e-16 / hs, "r-.", lw=1, label="round-off ≈ ε/h")
    ax.set_ylim(1e-13, 1)
    ax.invert_xaxis()
    ax.set_xlabel("step h (smaller to the right)")
    ax.set_ylabel("relative error of f'(1.3)")
    ax.set_title("Finite differences of sin(x)·x² in float64")
    ax.legend(fontsize=8)
    save_or_show(fig, "00_finite_difference_error.png")

# %% [markdown]
# ## 2. Why float64
#
# In float32, $\varepsilon \approx 6\times10^{-8}$. The round-off term $\varepsilon|f|/h$ is now ten million times
# larger, so the sweet spot moves to larger h and the best achievable error is around $10^{-5}$ to $10^{-4}$:
# far above the 1e-7 we demand of a correct gradient. A float32 check cannot tell a right gradient from a
# slightly wrong one.

# %%
x32 = np.float32(x0)
print("     h     central error, float32   float64")
err32 = {}
for h in [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6]:
    h32 = np.float32(h)
    c32 = (f(x32 + h32) - f(x32 - h32)) / (2 * h32)        # every step in float32
    c64 = (f(x0 + h) - f(x0 - h)) / (2 * h)
    err32[h] = abs(float(c32) - exact) / abs(exact)
    print(f"  {h:7.0e}        {err32[h]:9.1e}          {abs(c64 - exact) / abs(exact):9.1e}")
best = min(err32, key=err32.get)
print(f"best float32: {err32[best]:.1e} at h = {best:.0e}; at the float64 sweet spot h = 1e-5 it is {err32[1e-5]:.1e}")

# %% [markdown]
# The library therefore refuses to run a check on float32 arrays, with a message that says why:

# %%
try:
    gc.eval_numerical_gradient(lambda: 0.0, np.zeros(3, dtype=np.float32))
except TypeError as e:
    print("TypeError:", e)

# %% [markdown]
# Models may *train* in float32 for speed; their gradients are *checked* in float64.
#
# ## 3. Relative error: normwise, not entry by entry
#
# An absolute error means nothing without a scale: 1e-6 is excellent for a gradient of size 1000 and useless
# for one of size 1e-8. So we divide by the size. `memnet_np.gradcheck.rel_error` uses the **normwise** form
#
# $$\text{rel\_error}(a, n) = \frac{\lVert a - n\rVert}{\lVert a\rVert + \lVert n\rVert}$$
#
# over the whole gradient: analytic $a$, numerical $n$. It is 0 for equal arrays, 1/3 for a gradient that is
# half the right one, 1 for a sign flip, and never more than 1.
#
# The common alternative is the **elementwise** form $\max_i |a_i - n_i| / (|a_i| + |n_i|)$ (cs231n). It is
# misleading on tiny entries: round-off gives *every* numerical entry an absolute error of about
# $\varepsilon|f|/h \approx 10^{-11}|f|$ whatever its size, so an entry that is itself $10^{-5}$ gets a relative
# error of $10^{-6}$ even when the analytic value is exact. Here is $f(x) = \sum_i x_i^3$, gradient $3x_i^2$,
# with one small $x_i$:

# %%
x = np.array([1.2, -0.7, 0.9, 2e-3])                          # (4,) the last entry is small
loss = lambda: float(np.sum(x ** 3))
analytic = 3 * x ** 2                                         # (4,) exact
numeric = gc.eval_numerical_gradient(loss, x)                 # (4,) central differences, h = 1e-5
per_entry = np.abs(analytic - numeric) / (np.abs(analytic) + np.abs(numeric))
print("analytic   ", analytic)
print("numeric    ", numeric)
print("|a−n|      ", np.abs(analytic - numeric))
print("per entry  ", per_entry)
print(f"elementwise max_entry_error = {gc.max_entry_error(analytic, numeric):.1e}   (would say: bug, > 1e-7)")
print(f"normwise    rel_error       = {gc.rel_error(analytic, numeric):.1e}   (says: correct)")

# %% [markdown]
# The absolute errors are all about $10^{-10}$: the numerical gradient is equally good everywhere, and the
# analytic one is exact. Only the tiny last entry makes the elementwise form cry wolf. The normwise form asks the
# question that matters: *is the error small compared with the gradient?* The elementwise form is still useful
# to find **which** entry is off once the normwise one says something is; the reports below print both.
#
# ## 4. Checking an op with a random upstream gradient
#
# An op in `memnet_np.ops` is a pair `forward(inputs) -> (out, cache)` and `backward(dout, cache) -> gradients`,
# where `dout` is $\partial L/\partial \text{out}$ for whatever loss $L$ sits downstream. To check the pair we
# make up a loss: $L = \sum \text{out} \odot \text{dout}$ for a **random** `dout`. Its gradient with respect to the
# output is exactly `dout`, so `backward(dout, cache)` must equal the numerical gradient of $L$.
#
# Our op is one attention read of a memory network: scores $s_i = u^\top m_i$, attention
# $p = \operatorname{softmax}(s)$ over the real memory slots (padded slots get exactly 0), read
# $o = \sum_i p_i c_i$. The inputs are random, non-zero, non-symmetric float64 arrays, and the mask pads some
# slots.

# %%
N, M, d = (2, 4, 3) if FAST else (3, 6, 5)                  # batch, memory slots, embedding size
u = rng.standard_normal((N, d))                             # (N, d)   the question / controller state
m = rng.standard_normal((N, M, d))                          # (N, M, d) memory keys
c = rng.standard_normal((N, M, d))                          # (N, M, d) memory values
mask = np.arange(M)[None, :] < rng.integers(2, M + 1, N)[:, None]    # (N, M) real slots first, then padding
mask[0, -1] = False                                         # make sure at least one slot is padded
inputs = {"u": u, "m": m, "c": c, "mask": mask}

o, cache = ops.attention_read_forward(u, m, c, mask)
print("mask\n", mask.astype(int))
print("attention p (rows sum to 1, padded slots exactly 0)\n", cache.p)

errors = gc.check_op(ops.attention_read_forward, ops.attention_read_backward, inputs, wrt=["u", "m", "c"], rng=rng)
for name, err in errors.items():
    print(f"  d{name}  rel error {err:.1e}  (should be < {gc.SMOOTH_TOLERANCE:.0e})  "
          f"{'ok' if err < gc.SMOOTH_TOLERANCE else 'WRONG'}")

# %% [markdown]
# Around 1e-11 to 1e-10: the size that section 1 predicts for a correct gradient. Not 0, because the numerical side
# carries its own $O(h^2)$ and round-off error.
#
# **Why random `dout`?** The simplest loss, $L = \sum \text{out}$, is `dout` = all ones. With all ones, a
# backward that forgets to multiply by `dout` at all is *right*, and so is any backward that mixes up entries
# of `dout` (they are all equal). Here is such a backward: it computes $\partial p$ and $\partial c$ as if `do`
# were all ones.

# %%
def forgetful_backward(do, cache):
    """Wrong: ignores the upstream gradient `do` in dp and dc (uses ones instead)."""
    u, m, c, mask, p, linear = cache
    dp = c.sum(-1)                                            # (N, M) should be c_iᵀ do
    dc = np.broadcast_to(p[..., None], c.shape).copy()        # (N, M, d) should be p_i do
    ds = ops.masked_softmax_backward(dp, ops.SoftmaxCache(p))   # (N, M)
    du = (ds[:, None, :] @ m)[:, 0, :]                        # (N, d)
    dm = ds[..., None] * u[:, None, :]                        # (N, M, d)
    return du, dm, dc


def check_with(dout, backward):
    """rel_error per input, for the loss Σ out ⊙ dout with a dout of our choosing."""
    _, cache = ops.attention_read_forward(u, m, c, mask)
    grads = dict(zip(["u", "m", "c"], backward(dout, cache)))
    out = lambda: ops.attention_read_forward(u, m, c, mask)[0]
    return {k: gc.rel_error(g, gc.eval_numerical_gradient_array(out, inputs[k], dout)) for k, g in grads.items()}


ones = np.ones((N, d))
print("dout = ones:  ", {k: f"{v:.1e}" for k, v in check_with(ones, forgetful_backward).items()}, " <- passes!")
print("dout = random:", {k: f"{v:.1e}" for k, v in check_with(rng.standard_normal((N, d)), forgetful_backward).items()})

# %% [markdown]
# With ones the broken backward passes every check; a random `dout` exposes it at once. `gc.check_op` always
# draws a random `dout`, and so does every test in `tests/`.
#
# ## 5. What a wrong gradient looks like
#
# Two classic bugs: a gradient off by a constant factor, and a transposed one. The transposition is the nasty
# kind: when two axes happen to have the same length, the shapes line up and nothing crashes. Take M = d so that
# `dm` swapped on its last two axes still has shape (N, M, d).

# %%
def halved_du(do, cache):
    du, dm, dc = ops.attention_read_backward(do, cache)
    return 0.5 * du, dm, dc                                   # wrong: du halved


def transposed_dm(do, cache):
    du, dm, dc = ops.attention_read_backward(do, cache)
    return du, dm.swapaxes(1, 2), dc                          # wrong: (N, M, d) read as (N, d, M)


Ms = 3                                                        # M = d = 3: a square memory, shapes cannot warn us
sq = {"u": rng.standard_normal((2, Ms)), "m": rng.standard_normal((2, Ms, Ms)),
      "c": rng.standard_normal((2, Ms, Ms)), "mask": np.array([[True, True, False], [True, True, True]])}
for name, bwd in [("correct", ops.attention_read_backward), ("halved du", halved_du),
                  ("transposed dm", transposed_dm)]:
    errs = gc.check_op(ops.attention_read_forward, bwd, sq, wrt=["u", "m", "c"], rng=np.random.default_rng(1))
    print(f"{name:>14}: " + "   ".join(f"d{k} {v:.1e} {'ok' if v < 1e-7 else 'WRONG'}" for k, v in errs.items()))

# %% [markdown]
# A halved gradient scores exactly 1/3: $\lVert a/2 - a\rVert / (\lVert a/2\rVert + \lVert a\rVert) = (1/2)/(3/2)$.
# A transposed one scores somewhere around 0.5 to 1, depending on how different the entries it swaps are.
# Either is eight or more orders of magnitude above a correct gradient's 1e-10: a gradient check does not give
# borderline verdicts when something is really wrong. A value like 1e-6 or 1e-5 is the suspicious one: look for
# float32 sneaking in, a step h that is too small, or a kink (next section).
#
# The tests in `tests/` use sizes where every axis has a different length, so a transposition usually fails
# with a shape error first; the values catch the rest.
#
# ## 6. Kinks: relu and hinge at 0
#
# `relu(x) = max(x, 0)` has no derivative at 0: the slope jumps from 0 to 1. The backward uses the subgradient 0
# there. If an entry sits at 0, or closer to 0 than h, the central difference straddles the kink and averages
# the two slopes: it returns about 1/2, matching neither side. The analytic gradient is fine; the *check* is
# wrong.
#
# `gc.check_gradients` guards against this. For each entry it also computes the one-sided slopes
# $(f(x+h) - f(x))/h$ and $(f(x) - f(x-h))/h$. For a smooth f they differ by about $h f''$; across a kink by the
# jump. On a jump it retries with h/10, h/100, ... A kink that was merely *near* drops out of range and the
# entry is checked normally; one that stays is reported as a crossed kink, with whether the analytic value
# equals one of the one-sided slopes, and left out of the error.
#
# Here $L = \sum_i w_i\,\operatorname{relu}(x_i)$ with $x_0 = 0$ exactly (on the kink) and $x_3 = 3\times10^{-6}$
# (within h = 1e-5 of it).

# %%
xr = np.array([0.0, 0.7, -1.1, 3e-6, -0.4])                   # (5,) entry 0 on the kink, entry 3 near it
w = rng.standard_normal(5)                                    # (5,) a random upstream weight per entry


def relu_loss_and_grads(params):
    y, cache = ops.relu_forward(params["x"])                  # (5,)
    return float(np.sum(w * y)), {"x": ops.relu_backward(w, cache)}


analytic = relu_loss_and_grads({"x": xr})[1]["x"]
naive = gc.eval_numerical_gradient(lambda: relu_loss_and_grads({"x": xr})[0], xr)
print("analytic        ", analytic)
print("plain central   ", naive)
print(f"plain check: rel error {gc.rel_error(analytic, naive):.1e}   <- looks like a bug, is not")
for ix in [(0,), (3,)]:
    e = gc.check_entry(lambda: relu_loss_and_grads({"x": xr})[0], xr, ix, analytic[ix])
    print(f"x[{ix[0]}] = {xr[ix]:g}: final step {e.step:.0e}, kink {e.kink}, one-sided slopes "
          f"({e.one_sided[0]:.4f}, {e.one_sided[1]:.4f}), analytic {e.analytic:.4f}")
print(gc.format_report(gc.check_gradients(relu_loss_and_grads, {"x": xr})))

# %% [markdown]
# Entry 3 was only near the kink: at h = 1e-6 both one-sided slopes agree and it is checked like any other.
# Entry 0 sits on it: even at the smallest step the slopes are 0 (left) and $w_0$ (right); the analytic value 0
# matches the left one, so the report counts `1 kink(s) crossed (1 match a one-sided slope)` and still says PASS
# over the 4 entries it could check.
#
# A hinge is the same thing with a twist. The MemNN margin ranking loss is
# $\max(0,\ \gamma - s(q, a) + s(q, a'))$: zero once the right answer beats a wrong one by the margin $\gamma$.
# Unlike relu on a single entry, **every** parameter feeds the hinge's argument, so when it sits at 0 every
# entry crosses the kink. Scores here are plain dot products $s = u^\top a$.

# %%
dh = 4
hinge = {"u": rng.standard_normal(dh), "a": rng.standard_normal(dh), "b": rng.standard_normal(dh)}
gamma_on_kink = float(hinge["u"] @ hinge["a"] - hinge["u"] @ hinge["b"])   # γ that puts the argument at 0


def hinge_loss(gamma):
    def loss_and_grads(p):
        z = gamma - p["u"] @ p["a"] + p["u"] @ p["b"]         # the hinge's argument
        on = float(z > 0)                                     # subgradient 0 at z = 0
        return max(z, 0.0), {"u": on * (p["b"] - p["a"]), "a": -on * p["u"], "b": on * p["u"]}
    return loss_and_grads


print(f"γ = {gamma_on_kink:.4f}: argument on the kink")
print(gc.format_report(gc.check_gradients(hinge_loss(gamma_on_kink), hinge)))
print(f"γ = {gamma_on_kink + 0.5:.4f}: argument 0.5 past it")
print(gc.format_report(gc.check_gradients(hinge_loss(gamma_on_kink + 0.5), hinge)))

# %% [markdown]
# Read the first report carefully: it says PASS, but `over 0 entries`. Every entry crossed the kink, so nothing
# was compared; the analytic values do match a one-sided slope, which is reassuring but not a check. A PASS over
# 0 entries means: **move the point**. That is why the model tests build batches whose margins are away from 0
# (or accept a few crossed kinks among many checked entries). Moved 0.5 past the kink, every entry is checked.
# The errors are even smaller than usual, ~1e-12: the loss is linear in each single entry, so the central
# difference has no $h^2$ term, only round-off.
#
# ## Checklist
#
# * float64 everywhere in a check; central differences with h ≈ 1e-5.
# * A random upstream gradient, never all ones.
# * Random, non-zero, non-symmetric inputs, with every axis a different length (and one square case if you
#   like); masks with padded slots.
# * Normwise relative error: ~1e-10 is right, > 1e-7 is a bug; 1/3 is a factor of 2; ~1 is a sign or a
#   transposition.
# * Around relu, hinge or argmax: read the kink count, and distrust a PASS over 0 entries.
#
# Now write a backward yourself: `tutorials/exercises/01_softmax_attention_backward.py`, checked with
# `python -m memnet_np check tutorials/exercises/01_softmax_attention_backward.py`.
