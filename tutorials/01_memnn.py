# %% [markdown]
# # 01 · Memory Networks, one story at a time
#
# *Weston, Chopra & Bordes (2014), "Memory Networks"; Weston et al. (2015), "Towards AI-Complete Question
# Answering", for the bAbI setting.*
#
# A Memory Network has four parts: **I** turns text into feature vectors, **G** writes each sentence into a
# memory slot, **O** looks through the memory in *hops*, each picking the single best memory with a hard argmax,
# and **R** turns what was found into an answer word. Unlike MemN2N (tutorial 02) nothing here is soft: the model
# is trained with **strong supervision**, the supporting facts of each question are given, and the loss is a
# *margin ranking loss* that asks each true fact (and the true answer) to out-score the others by a margin.
#
# We take **one real bAbI task-2 story** ("Where is the football?": first find who has it, then where that person
# went) through I, G, O and R by hand, printing every feature vector and score, and check each number against
# the library (`memnet_np/memnn.py`). Then the loss, its gradient, a gradient check that runs into a hinge's kink,
# a short training run, and why the 2015 model's R needs a tanh layer and a margin of its own for yes/no questions.
#
#     python tutorials/01_memnn.py                  # the full tutorial: about ten seconds
#     MEMNET_FAST=1 python tutorials/01_memnn.py    # a few seconds: tiny training, for tests
#
# Figures go into `$MEMNET_TUTORIAL_OUT` if it is set, else into `./tutorial_out/` (not in fast mode). The bAbI
# data is read from `$MEMNET_DATA` (or `shared/data/babi` next to this checkout); without it the built-in story
# generator makes task-2 stories, and the numbers differ.

# %%
import time

from memnet_np import runtime

runtime.one_blas_thread()                 # before numpy is imported: one thread, so a run repeats exactly
import numpy as np

from memnet_np import tutorial
from memnet_np.tutorial import claim, find_babi, save_figure, section
from memnet_np import data, gradcheck, memnn, plots, reference, train

T_START = time.perf_counter()
FAST = tutorial.start()                   # MEMNET_FAST=1: tiny training, for tests; says where figures go
TOL = gradcheck.SMOOTH_TOLERANCE          # 1e-7: what a correct float64 gradient must beat

rng = np.random.default_rng(0)            # every random draw below comes from this generator


# %% [markdown]
# ## 1. One story
#
# We load bAbI task 2 and pick a test question with a short story and two different supporting facts, the
# second not the story's last sentence.

# %%
section("1. One story")
TASK = 2
HERE = tutorial.script_dir(globals())     # where to look for shared/data/babi
try:
    dataset = data.load_babi(TASK, find_babi(HERE))
except data.DataNotFoundError as e:
    print(f"NOTE: no bAbI data found ({e}); using the built-in story generator instead.")
    dataset = data.load_generated(TASK)
words = dataset.vocab.words
IDX = next((i for i, q in enumerate(dataset.test.questions)
            if 5 <= len(q.story) <= 8 and len(q.supporting) == 2 and q.supporting[0] < q.supporting[1]
            and len(q.story) - 1 not in q.supporting), 0)
question = dataset.test.questions[IDX]
print(f"{dataset.name}, test question #{IDX} ({question.source})\n")
for i, s in enumerate(question.story):
    print(f"  {'★' if i in question.supporting else ' '} {i + 1}. {' '.join(s)}")
print(f"\n  Q: {' '.join(question.question)}?   A: {question.answer_token}   (★ supporting facts)")

# %% [markdown]
# ## 2. I: feature vectors in three copies of the vocabulary
#
# Every feature vector lives in D = 3|W| dimensions, three copies of the vocabulary W:
#
# $$\Phi_x(x) = [\,\text{question words}\;|\;\text{words of the memories chosen so far}\;|\;0\,],\qquad
#   \Phi_y(y) = [\,0\;|\;0\;|\;\text{words of the candidate } y\,]$$
#
# (bags of words: counts, the null word 0 that pads sentences never counted). So a question word and the same
# word in a memory are *different* features, with different columns of U. We write Φ by hand and compare with
# the library's `memnn.features` (which keeps the copies as separate (N, |W|) blocks).

# %%
section("2. I: feature vectors")
cfg = memnn.Config.for_data(dataset, **{**memnn.PRESETS["basic"], "time_features": False})   # plain argmax first
V, K = cfg.vocab_size, cfg.hops
D = 3 * V
batch = memnn.make_batch(dataset.test, np.array([IDX]), cfg)   # one question; every other candidate a negative
n = int(batch.mask[0].sum())                                   # sentences in memory (slots 0 .. n−1, oldest first)
slot_text = [" ".join(words[w] for w in batch.stories[0, i] if w) for i in range(n)]
f1, f2 = (int(t) for t in batch.targets[0])                     # slots of the two supporting facts


def phi(ids, copy, size):
    """A bag of words in copy `copy` (0, 1, 2, …) of the vocabulary, in a vector of `size` zeros."""
    v = np.zeros(size)
    for w in ids:
        if w:
            v[copy * V + w] += 1.0
    return v


def show(v, what):
    nz = np.flatnonzero(v)
    print(f"  {what:<14} " + ", ".join(f"{words[j % V]}@copy{j // V + 1}" + (f"×{v[j]:g}" if v[j] != 1 else "")
                                       for j in nz))


x1 = phi(batch.queries[0], 0, D)                                # (D,) Φx(x): the question in copy 1
show(x1, "Φx(x)")
show(phi(batch.stories[0, f1], 2, D), "Φy(fact ★1)")
print(f"  D = 3|W| = 3 × {V} = {D}")
claim(np.array_equal(x1[:V], memnn.features(batch.queries, cfg)[0]),
      "copy 1 of Φx(x) is the library's bag of words of the question")

# %% [markdown]
# ## 3. G: the memory
#
# G writes each sentence into the next slot, oldest first (with a capacity smaller than the story it would
# forget the oldest ones). The slot number is the sentence's write time.

# %%
section("3. G: the memory")
for i in range(n):
    print(f"  m_{i}: {slot_text[i]}" + ("   ★" if i in (f1, f2) else ""))
claim(n == len(question.story), "the whole story fits in memory: slot i holds sentence i + 1")

# %% [markdown]
# ## 4. O: two hard-argmax hops
#
# The score of an input against a candidate is bilinear, with one matrix U_O (d × D) for O:
#
# $$s_O(x, y) = \Phi_x(x)^\top U_O^\top U_O\, \Phi_y(y)$$
#
# $$o_1 = \arg\max_i s_O(x, m_i), \qquad o_2 = \arg\max_i s_O([x, m_{o_1}], m_i)$$
#
# where [x, m_o1] puts the words of the memory chosen at hop 1 into copy 2 of Φx. The model is untrained, so the
# choices are arbitrary; the mechanics are the point here. Below: every memory's score at each hop, computed with
# the explicit D-dimensional vectors, the argmax marked ◀, and the same numbers from `memnn.infer`.

# %%
section("4. O: two hard-argmax hops")
params = memnn.init_params(cfg, rng)                            # U_O (d, 3|W|), U_R: N(0, 0.1²)
U_O, U_R = params["U_O"], params["U_R"]
print(f"U_O {U_O.shape}, U_R {U_R.shape}")


def s(U, a, b):
    return a @ U.T @ U @ b                                      # Φx(x)ᵀ Uᵀ U Φy(y)


def hop(x, label):
    scores = np.array([s(U_O, x, phi(batch.stories[0, i], 2, D)) for i in range(n)])   # (n,)
    o = int(np.argmax(scores))
    print(f"  {label}")
    for i in range(n):
        print(f"    s_O = {scores[i]:+.4f}  {'◀' if i == o else ' '} {'★' if i in (f1, f2) else ' '} {slot_text[i]}")
    return scores, o


scores1, o1 = hop(x1, "hop 1: s_O(x, m_i)")
x2 = x1 + phi(batch.stories[0, o1], 1, D)                       # [x, m_o1]: m_o1's words in copy 2
scores2, o2 = hop(x2, "hop 2: s_O([x, m_o1], m_i)")
answers, chosen, hop_scores, s_ans = memnn.infer(params, batch, cfg)
claim(np.allclose(hop_scores[0, 0, :n], scores1) and np.allclose(hop_scores[0, 1, :n], scores2),
      "memnn.infer computes the same scores for every memory at both hops")
claim(list(chosen[0]) == [o1, o2], f"and chooses the same memories: o1 = m_{o1}, o2 = m_{o2}")

# %% [markdown]
# ## 5. R: rank every word
#
# $$r = \arg\max_{w \in W} s_R([x, m_{o_1}, m_{o_2}], w), \qquad s_R(x, y) = \Phi_x(x)^\top U_R^\top U_R\,\Phi_y(y)$$
#
# Φy(w) is the one-hot vector of word w. One departure from the 2014 paper (`answer_input="ordered"`, the
# default): R's input gives each hop's memory its own copy of the vocabulary, [question | m_o1 | m_o2 | answer
# words], (K + 2)|W| columns, because in the paper's single shared copy "went to the kitchen … went to the
# garden" and the same two facts in the other order look the same, and R could not know which came last.

# %%
section("5. R: rank every word")
D_R = U_R.shape[1]                                              # (K + 2)|W|
x_r = phi(batch.queries[0], 0, D_R) + phi(batch.stories[0, o1], 1, D_R) + phi(batch.stories[0, o2], 2, D_R)
word_scores = np.array([s(U_R, x_r, np.eye(D_R)[(1 + K) * V + w]) for w in range(V)])   # (V,)
ranking = 1 + np.argsort(-word_scores[1:])                      # the null word is never an answer
for rank, w in enumerate(ranking[:5], 1):
    print(f"  {rank}. {words[w]:<10} s_R = {word_scores[w]:+.4f}")
claim(np.allclose(word_scores, s_ans[0]) and ranking[0] == answers[0],
      f"the library ranks the words the same way and answers {words[answers[0]]!r}")

# %% [markdown]
# ## 6. The margin ranking loss, with sampled negatives
#
# With the supporting facts f1, f2 and the answer r given, training asks each true choice to beat the others by
# a margin γ (0.1). One hinge per negative f̄, f̄', r̄:
#
# $$\sum_{\bar f \ne f_1} \max(0, \gamma - s_O(x, f_1) + s_O(x, \bar f))
#   + \sum_{\bar f' \ne f_2} \max(0, \gamma - s_O([x, f_1], f_2) + s_O([x, f_1], \bar f'))
#   + \sum_{\bar r \ne r} \max(0, \gamma - s_R([x, f_1, f_2], r) + s_R([x, f_1, f_2], \bar r))$$
#
# Like the paper, we do not sum over every negative: `negatives` (10) are drawn per term, with replacement, **when
# the batch is made**, so the loss of a given batch is a fixed, deterministic function of the parameters (which is
# what a gradient check needs). `batch.neg_memories` and `batch.neg_answers` count how often each one was drawn.

# %%
section("6. The margin ranking loss")
tb = memnn.make_batch(dataset.test, np.array([IDX]), cfg, np.random.default_rng(1), train=True)
g = cfg.margin
for k, f in enumerate((f1, f2)):
    drawn = {f"m_{j}": int(c) for j, c in enumerate(tb.neg_memories[0, k]) if c}
    print(f"  hop {k + 1}: true fact m_{f}, negatives drawn {drawn}")
print(f"  answer {question.answer_token!r}, negatives drawn "
      f"{ {words[w]: int(c) for w, c in enumerate(tb.neg_answers[0]) if c} }")
claim(tb.neg_memories[0].sum() == 2 * cfg.negatives and tb.neg_answers[0].sum() == cfg.negatives
      and tb.neg_memories[0, 0, f1] == 0 and tb.neg_memories[0, 1, f2] == 0 and tb.neg_answers[0, tb.answers[0]] == 0,
      f"{cfg.negatives} negatives per term, never the true fact or answer itself")

loss, active = 0.0, 0
x_true = [x1, x1 + phi(tb.stories[0, f1], 1, D)]                # hop 2's input holds the TRUE f1, not o1
for k, f in enumerate((f1, f2)):
    s_f = s(U_O, x_true[k], phi(tb.stories[0, f], 2, D))
    for j, c in enumerate(tb.neg_memories[0, k]):
        h = g - s_f + s(U_O, x_true[k], phi(tb.stories[0, j], 2, D))
        loss += c * max(h, 0.0)
        active += int(c) * (h > 0)
xr_true = phi(tb.queries[0], 0, D_R) + phi(tb.stories[0, f1], 1, D_R) + phi(tb.stories[0, f2], 2, D_R)
e = lambda w: np.eye(D_R)[(1 + K) * V + w]                      # Φy(w), one-hot
s_r = s(U_R, xr_true, e(tb.answers[0]))
for w, c in enumerate(tb.neg_answers[0]):
    h = g - s_r + s(U_R, xr_true, e(w))
    loss += c * max(h, 0.0)
    active += int(c) * (h > 0)
print(f"  loss by hand {loss:.6f}, {active} of {3 * cfg.negatives} hinges active")
lib_loss, grads, _ = memnn.loss_and_grads(params, tb, cfg)
claim(np.isclose(loss, lib_loss), f"memnn.loss_and_grads gives the same loss ({lib_loss:.6f})")

# %% [markdown]
# ## 7. Why no gradient flows through the argmax
#
# The loss above never used o1 or o2. Hop 2's input was built from the **true** f1, whatever hop 1 chose;
# R's from the true f1 and f2. That is what strong supervision buys: the argmax is only used at test time.
#
# It could not be trained through anyway. An argmax is piecewise constant in U: a small change of U leaves the
# chosen memory where it was, so its derivative is 0 wherever it exists (and it does not exist where two scores
# tie). A loss computed *through* the choice would give no signal towards the right memory. Below we nudge 200
# random entries of U_O by ±1e-6 and ask the hops again.

# %%
section("7. No gradient through the argmax")
same = 0
probe = {k: v.copy() for k, v in params.items()}
for _ in range(200):
    ix = (int(rng.integers(U_O.shape[0])), int(rng.integers(U_O.shape[1])))
    for sign in (+1, -1):
        probe["U_O"][ix] = U_O[ix] + sign * 1e-6
        same += np.array_equal(memnn.infer(probe, batch, cfg)[1], chosen)
    probe["U_O"][ix] = U_O[ix]
claim(same == 400, "all 400 nudged models choose the same memories: the argmax has zero derivative there")
fwd, _ = memnn.forward(params, tb, cfg)                          # the scores the loss is made of
by_hand = np.array([s(U_O, x_true[1], phi(tb.stories[0, i], 2, D)) for i in range(n)])   # (n,) s_O([x, f1], m_i)
print(f"  hop 1 chose m_{o1}; the supporting fact is m_{f1}")
claim(np.allclose(fwd.memory[0, 1, :n], by_hand), "the loss's hop 2 scores every memory against [x, f1], the "
                                                  "true fact, whatever hop 1 chose")

# %% [markdown]
# ## 8. The gradient of s = Φx(x)ᵀ Uᵀ U Φy(y)
#
# With a = Φx(x) and b = Φy(y), s = (U a)ᵀ (U b): U is in **both** factors, so
#
# $$\frac{\partial s}{\partial U} = U (a b^\top + b a^\top) = (U a)\, b^\top + (U b)\, a^\top$$
#
# The first term lands on the columns of b's words (copy 3), the second on those of a's (copies 1 and 2).
# Forgetting one of them is the classic mistake (exercise 3 in `tutorials/exercises/` has you write it). We
# check both against central differences, then the whole loss: the library's vectorised backward against
# `memnn.loss_and_grads_naive`, which adds ±U(abᵀ + baᵀ) for one active hinge at a time.

# %%
section("8. The gradient of UᵀU")
a, b = x1, phi(batch.stories[0, f1], 2, D)
U = U_O.copy()
numeric = gradcheck.eval_numerical_gradient(lambda: a @ U.T @ U @ b, U)
both = U @ (np.outer(a, b) + np.outer(b, a))
one = U @ np.outer(a, b)
print(f"  U(abᵀ + baᵀ) against central differences: rel error {gradcheck.rel_error(both, numeric):.1e}")
print(f"  U abᵀ alone:                               rel error {gradcheck.rel_error(one, numeric):.1e}")
claim(gradcheck.rel_error(both, numeric) < TOL < gradcheck.rel_error(one, numeric),
      "both terms are needed: with one the error is far above 1e-7")
claim(not one[:, :2 * V].any() and not (both - one)[:, 2 * V:].any(),
      "U abᵀ lives on copy 3 (the candidate's words), U baᵀ on copies 1-2 (the question's)")
_, naive = memnn.loss_and_grads_naive(params, tb, cfg)
err = max(gradcheck.rel_error(grads[k], naive[k]) for k in grads)
print(f"  vectorised backward against the term-by-term sum: rel error {err:.1e}")
claim(err < 1e-12, "the vectorised backward is exactly that sum over the active hinges")

# %% [markdown]
# ## 9. A gradient check that meets a kink
#
# The hinge max(0, h) has no derivative at h = 0. A central difference (f(U + h e) − f(U − h e)) / 2h that
# straddles such a kink averages two different slopes and matches neither the left nor the right derivative:
# a correct backward then looks wrong. We put one hinge exactly on its kink (γ equal to the gap between the true
# fact's score and a negative's) and look at one entry of U_O, then run the library's checker
# (`gradcheck.check_gradients`), whose **kink guard** compares the two one-sided differences: when they disagree
# it shrinks the step; if they still disagree the entry is reported as a kink, not compared, and the checker
# counts whether our gradient equals one of the two one-sided slopes.

# %%
section("9. A gradient check that meets a kink")
small = memnn.replace(cfg, d=8, negatives=0)                    # every negative once; d = 8 keeps the check quick
p_small = memnn.init_params(small, np.random.default_rng(3))
scores_small, _ = memnn.forward(p_small, batch, small)
gaps = [(scores_small.memory[0, k, f] - scores_small.memory[0, k, j], k, j)
        for k, f in enumerate((f1, f2)) for j in range(n) if batch.neg_memories[0, k, j] > 0]
gap, k_kink, j_kink = max(gaps)
claim(gap > 0, f"hop {k_kink + 1}: the true fact out-scores m_{j_kink} by {gap:.4f}, so γ = {gap:.4f} puts that "
               "hinge exactly on its kink")
at_kink = memnn.replace(small, margin=float(gap))
P = {k: v.copy() for k, v in p_small.items()}
f = lambda: memnn.loss_and_grads(P, batch, at_kink)[0]
_, g_kink, _ = memnn.loss_and_grads(P, batch, at_kink)
ix = (0, int(batch.queries[0, 0]))                              # U_O's column of the question's first word, copy 1
h = 1e-5
old = P["U_O"][ix]
P["U_O"][ix] = old + h
up = f()
P["U_O"][ix] = old - h
down = f()
P["U_O"][ix] = old
f0 = f()
left, right, central = (f0 - down) / h, (up - f0) / h, (up - down) / (2 * h)
print(f"  entry U_O{ix}: slope from the left {left:+.6f}, from the right {right:+.6f}, central {central:+.6f}, "
      f"ours {g_kink['U_O'][ix]:+.6f}")
claim(abs(left - right) > 1e-3 and gradcheck.rel_error(np.array(central), g_kink["U_O"][ix]) > 1e-4
      and min(abs(g_kink["U_O"][ix] - left), abs(g_kink["U_O"][ix] - right)) < 1e-6,
      "the central difference matches neither side; our gradient is one of the one-sided slopes")
report = gradcheck.check_gradients(lambda p: memnn.loss_and_grads(p, batch, at_kink), P, max_entries=None)
print(gradcheck.format_report(report))
r = report["U_O"]
claim(r.kinks > 0 and r.kink_matches == r.kinks and all(c.ok for c in report.values()),
      f"the guard found {r.kinks} entries at the kink, our gradient is a one-sided slope at each, every other "
      "entry agrees to < 1e-7")

# %% [markdown]
# ## 10. A short training run
#
# Now the model of the 2014 paper as the library trains it on bAbI (`PRESETS["basic"]`): k = 2 hops, **with** the
# write-time features (a bag of words cannot tell which of two sentences came last, so O compares memories in
# pairs and keeps a running winner, see `memnn.winner_loop`), SGD on the summed margin loss, 60 epochs. In fast
# mode: 3 epochs. Then our story again: which memories do the trained hops choose?

# %%
section("10. A short training run")
cfg_train = memnn.Config.for_data(dataset, **memnn.PRESETS["basic"], **({"epochs": 3} if FAST else {}))


def show_progress(log, total):
    if FAST or log.epoch % 10 == 0:
        print(f"  epoch {log.epoch:3d}  lr {log.lr:.5f}  train loss {log.train_loss:.3f} err {log.train_error:5.1f}%"
              f"   val err {log.val_error:5.1f}%")


result = train.train(memnn, dataset, cfg_train, np.random.default_rng(0), progress=show_progress)
paper = reference.MEMNN_1K_ACCURACY["MemNN k=2 (2014)"][TASK - 1]
print(f"{result.epochs} epochs in {result.seconds:.1f} s; test accuracy {100 - result.test_error:.1f}% "
      f"(the paper's MemNN k = 2: {paper}%)")
bt = memnn.make_batch(dataset.test, np.array([IDX]), cfg_train)
pred, info = memnn.predict(result.params, bt, cfg_train)
picks = [int(c) for c in info["chosen"][0]]
for k, c in enumerate(picks):
    print(f"  hop {k + 1} chooses m_{c}: {slot_text[c]}" + ("   ★" if c in (f1, f2) else ""))
print(f"  answer {words[pred[0]]!r} (true {question.answer_token!r})")
claim(picks == list(memnn.predict_naive(result.params, bt, cfg_train)[1][0]),
      "the one-example-at-a-time winner loop written from the paper chooses the same")
save_figure(plots.hop_scores_heatmap, "01_memnn_hop_scores.png", slot_text, info["hop_scores"][0][:, :n], picks,
            [f1, f2], " ".join(question.question), words[pred[0]], question.answer_token)
if FAST:
    print("fast mode: the model has barely trained, so the claims about the trained model are not checked")
else:
    claim(picks == [f1, f2] and words[pred[0]] == question.answer_token,
          "trained, hop 1 finds who has the object, hop 2 where that person went, and R answers right")
    claim(100 - result.test_error >= 95, "test accuracy of 95% or more on task 2")

# %% [markdown]
# ## 11. Why the yes/no tasks need a nonlinear R, and a margin of its own
#
# Task 6 asks "Is John in the kitchen?". Hop 1 finds John's last move; R must then say *yes* when the place in the
# question is the place in that fact. Take two places a and b: R's input holds the question's place in copy 1 and
# the fact's in copy 2, and for a linear R the score of *yes* minus that of *no* is u[question place] + v[fact
# place]. The four cases want u_a + v_a > 0, u_a + v_b < 0, u_b + v_a < 0, u_b + v_b > 0; the first and last add up
# to the same number as the middle two, so no u, v can meet all four: equality is an XOR.
#
# The extended model's NL puts one tanh layer in front, e = W tanh(UΦ). Hidden units that fire when both copies hold
# the same place, tanh(k·(q_a + m_a − 1.5)) and the same for b, do it, but only with large weights k: in tanh's
# linear range the layer is a linear map again. Training starts there (U ~ N(0, 0.1²)), and a margin of 0.1 is met
# long before the weights grow out of it; a wider margin for R's terms alone (`answer_margin`, γ_R = 1 in the
# extended preset) asks for scores ten times apart, and takes U_R out of the linear range (a slow test pins task 6:
# γ_R = 1 solves it, γ_R = γ does not).

# %%
section("11. Why the yes/no tasks need a nonlinear R")
cases = [(0, 0, True), (0, 1, False), (1, 0, False), (1, 1, True)]     # (question's place, fact's place, yes?)
tries = np.random.default_rng(0).standard_normal((20000, 2, 2))        # random linear scores u, v
best = max(sum((u[q] + v[m] > 0) == yes for q, m, yes in cases) for u, v in tries)
print(f"best of 20,000 random linear scores: {best} of 4 cases right")
claim(best == 3, "no linear score answers all four cases")


def tanh_score(k):
    """yes − no from two hidden units that fire when both copies hold place a (or b), weights of size k."""
    return [np.tanh(k * ((q == 0) + (m == 0) - 1.5)) + np.tanh(k * ((q == 1) + (m == 1) - 1.5)) + np.tanh(k / 2)
            for q, m, _ in cases]


for k in (0.1, 3.0):
    print(f"k = {k}: yes − no = " + ", ".join(f"{x:+.3f}" for x in tanh_score(k)) + "   (a a, a b, b a, b b)")
claim(all((x > 0) == yes for x, (_, _, yes) in zip(tanh_score(3.0), cases)),
      "with large weights the tanh layer answers all four")
small, large = tanh_score(0.1), tanh_score(3.0)
claim(len({x > 0 for x in small}) == 1 and np.ptp(small) < 0.01 * np.ptp(large),
      "with small weights it gives all four cases the same answer, its scores spread 100 times less: in the linear "
      "range it cannot tell the cases apart")

# %%
print(f"\nthe whole tutorial took {time.perf_counter() - T_START:.1f} s")
