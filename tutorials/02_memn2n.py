# %% [markdown]
# # 02 · End-To-End Memory Networks, one story at a time
#
# *Sukhbaatar, Szlam, Weston & Fergus (2015), "End-To-End Memory Networks".*
#
# In this tutorial we take **one real bAbI story** and push it through MemN2N by hand: every equation of the
# paper sits in a markdown cell, and the cell right below it computes that equation on our story and prints the
# numbers. Then we go back down the same road in reverse and compute every gradient by hand, checking each one
# against finite differences. At the end we train the model for real and look at where it learned to look.
#
# We use **task 2, "two supporting facts"**. Task 1 ("Where is Mary?") needs one look at the memory: find the
# last sentence about Mary. Task 2 ("Where is the milk?") needs two: first find *who* has the milk, then find
# *where that person* went. That is exactly what the several "hops" of MemN2N are for, so it teaches them better.
#
# How to run it:
#
#     python tutorials/02_memn2n.py                  # the full tutorial: seconds to a minute, mostly training
#     MEMNET_FAST=1 python tutorials/02_memn2n.py    # a few seconds: tiny training, for tests
#
# Figures go into `$MEMNET_TUTORIAL_OUT` if it is set, else into `./tutorial_out/` (not in fast mode).
# The bAbI v1.2 data is read from `$MEMNET_DATA` (or `shared/data/babi` next to this checkout); without it the
# built-in story generator makes task-2 stories, and the numbers below will differ.
#
# You should already know what a softmax is and how backpropagation works; `00_gradient_checking.py` explains
# the gradient checks we use here.

# %%
import textwrap
import time

from memnet_np import runtime

runtime.one_blas_thread()                 # before numpy is imported: one thread is faster for these small matrices,
import numpy as np                        # and makes a run repeat exactly on one machine

from memnet_np import tutorial
from memnet_np.tutorial import check_line, claim, save_figure, section
from memnet_np import data, gradcheck, memn2n, ops, plots, reference, train

T_START = time.perf_counter()
FAST = tutorial.start()                   # MEMNET_FAST=1: tiny training, for tests; says where figures go

rng = np.random.default_rng(0)            # every random draw below comes from this generator
HERE = tutorial.script_dir(globals())     # where to look for shared/data/babi


# %% [markdown]
# ## 1. The data: one story, one question, one answer
#
# A bAbI question comes with the statements of its story that came before it. We load task 2 (train /
# validation / test, one shared vocabulary) and pick a test question whose story is short enough to print,
# whose two supporting facts come in the order "X took the object … X went somewhere", and whose last
# sentence is *not* one of them (so "just read the last sentence" would fail).

# %%
section("1. The data: one story, one question, one answer")
TASK = 2
dataset = tutorial.load_task(TASK, HERE)   # bAbI, or without it the story generator's imitation (it says so)
print(f"{dataset.name}: {len(dataset.train)} train / {len(dataset.val)} validation / {len(dataset.test)} test "
      f"questions, vocabulary of {len(dataset.vocab)} words, memory of {dataset.memory_size} slots, "
      f"sentences of {dataset.sentence_len} words")
IDX = tutorial.pick_question(dataset.test.questions)
question = dataset.test.questions[IDX]
n = min(len(question.story), dataset.memory_size)            # sentences that fit into the memory
print(f"\ntest question #{IDX}  ({question.source})\n")
for i, s in enumerate(question.story):
    star = "★" if i in question.supporting else " "
    print(f"  {star} {i + 1:2d}. {' '.join(s)}")
print(f"\n  Q: {' '.join(question.question)}?     A: {question.answer_token}     "
      f"(★ supporting facts: {[i + 1 for i in question.supporting]})")

# %% [markdown]
# ### How the story becomes numbers
#
# Every word gets an id; id 0 is reserved for the **null word** `<nil>`, used as padding. A story becomes an
# (M, L) array of ids: M memory slots (sentences, **oldest first**), L words per sentence, zeros where a
# sentence is shorter than L or where a slot is empty. Beside it come a boolean `mask` (which slots hold a
# sentence) and the `age` of every sentence (0 = the newest), which temporal encoding will use.
#
# `memn2n.make_batch` cuts rows out of the vectorised split; we take a batch of exactly one question.
#
# One choice to know about: what happens to the *empty* slots. In this tutorial they get exactly zero
# attention (`mask_empty=True`), which makes every table below easier to read. The library's default follows
# the official code that produced the paper's tables instead: an empty slot is an empty memory — zero vectors,
# score uᵀ0 = 0 — and it takes part in the softmax, soaking up some attention when nothing else matches. (The
# paper's random noise, "add 10% empty memories", only does something because empty memories are attended.)
# To see what it is worth, train task 6 (yes/no questions) both ways: `python -m memnet_np train memn2n --task 6`
# with and without `--mask-empty`.

# %%
section("1b. How the story becomes numbers")
cfg = memn2n.Config.for_data(dataset, mask_empty=True)   # paper settings, empty slots masked; float64 for checks
batch = memn2n.make_batch(dataset.test, np.array([IDX]), cfg)
words = dataset.vocab.words
print(textwrap.fill("vocabulary: " + ", ".join(f"{i}:{w}" for i, w in enumerate(words)), 110,
                    subsequent_indent="            "))
print(f"\nbatch.stories {batch.stories.shape}  batch.queries {batch.queries.shape}  "
      f"batch.answers {batch.answers.shape}  batch.mask {batch.mask.shape}  batch.age {batch.age.shape}")
print("\nslot  mask  age   word ids            words")
for i in range(min(n + 2, batch.stories.shape[1])):   # the real slots and two empty ones
    ids = batch.stories[0, i]
    print(f"{i:4d}  {str(batch.mask[0, i]):5s} {batch.age[0, i]:3d}   {str(ids):18s}  "
          f"{' '.join(words[w] for w in ids if w) or '(empty slot)'}")
print(f" ...   ({batch.stories.shape[1] - n} empty slots in all)")
print(f"\nquery ids {batch.queries[0]} = {' '.join(words[w] for w in batch.queries[0] if w)!r}"
      f"    answer id {batch.answers[0]} = {words[batch.answers[0]]!r}")

# %% [markdown]
# ## 2. Parameters and adjacent weight tying
#
# With K hops, the paper has an input embedding Aᵏ and an output embedding Cᵏ per hop, a question embedding B
# and an answer matrix W. Learning all of them separately is wasteful, so §2.2 ties them. The default,
# **adjacent** tying, says:
#
#     Aᵏ⁺¹ = Cᵏ        the output embedding of one hop is the input embedding of the next
#     B = A¹           the question is embedded like the first hop's memory keys
#     Wᵀ = Cᴷ          the answer is read out with the last output embedding
#
# so K hops need only K + 1 word matrices: `A, C1, …, CK`. Temporal encoding ties the same way
# (T_Aᵏ⁺¹ = T_Cᵏ). A tied matrix is **one array** in `params`; remember that for the backward pass.
#
# Paper defaults (§4.2): d = 20, K = 3, memory of the last 50 sentences, every weight ~ N(0, 0.1²),
# position encoding and temporal encoding on. Matrices are stored row-wise: `A[w]` is word w's vector.

# %%
section("2. Parameters and adjacent weight tying")
params = memn2n.init_params(cfg, rng)
V, d, K, M = cfg.vocab_size, cfg.d, cfg.hops, batch.stories.shape[1]
print(f"Config: V={V}, d={d}, K={K}, memory_size={cfg.memory_size}, tying={cfg.tying!r}, "
      f"encoding={cfg.encoding!r}, temporal={cfg.temporal}, dtype={cfg.dtype}")
for name, p in params.items():
    print(f"  params[{name!r:6}] {str(p.shape):9s} {p.dtype}")
print(f"  {sum(p.size for p in params.values())} numbers in all")

print("\nwhich array plays which role:")
for k in range(1, K + 1):
    A_k, C_k, TA_k, TC_k = memn2n.roles(cfg, k)
    print(f"  hop {k}:  A{k} = {A_k:3s} C{k} = {C_k:3s} T_A{k} = {TA_k:4s} T_C{k} = {TC_k}")
B_NAME, W_NAME = memn2n.question_and_answer_names(cfg)
print(f"  question B = {B_NAME},  answer W = {W_NAME}")
print("\nthe null word's row is zero in every word matrix:",
      all(not params[name][0].any() for name in memn2n.embedding_names(cfg)))

# %% [markdown]
# ## 3. Embedding a sentence
#
# ### 3a. Position encoding
#
# A plain bag of words, m_i = Σ_j A x_ij, cannot tell "john grabbed the milk" from "the milk grabbed john".
# Position encoding (§4.1) multiplies word j's vector, elementwise, by a weight vector l_j that depends on
# the word's position, m_i = Σ_j l_j ⊙ A x_ij, with j over the words and k = 1..d over the dimensions.
#
# The paper's §4.1 writes l_kj = (1 − j/J) − (k/d)(1 − 2j/J), J the sentence's own length. The code that made
# the paper's tables (the authors' MATLAB code, `build_model.m`) computes another formula,
#
#     l_kj = 1 + 4 (k − (d+1)/2) (j − (J+1)/2) / (d J)
#
# with J the *padded* sentence length L, plus one: that code stores a sentence's age for temporal encoding
# (3c) as an extra "time word" at position J = L + 1. memnet_np's default, `encoding="official"`, is that
# formula, time word included; `encoding="paper"` is §4.1's. Either way different dimensions listen to
# different positions, so word order leaves a trace in the sum: here the first word's weights fall along the
# dimensions and the time word's rise.

# %%
section("3a. Position encoding")
x = batch.stories[:, :n]                                   # (1, n, L) the real sentences
L = x.shape[-1]
J = memn2n.time_word_J(cfg, L)                             # L + 1: the official code's time word is word L + 1
J0 = int((x[0, 0] != 0).sum())                             # words in the first sentence
l_first = ops.position_encoding(x[0, 0], d, cfg.encoding, J)[:J0]   # (J0, d)
l_time = ops.official_pe_column(d, J, J)                   # (d,) the weights of position J, the time word
print(f"first sentence: {' '.join(words[w] for w in x[0, 0] if w)!r}: {J0} words; padded length L = {L}, "
      f"so J = L + 1 = {J}")
print(f"l for it ({J0} words × {d} dimensions):")
print(l_first)
print(f"l_J, the time word's weights:\n{l_time}")
j, k = np.arange(1, J0 + 1)[:, None], np.arange(1, d + 1)[None, :]
claim(cfg.encoding == "official" and J == L + 1, "the default is the official formula, with J = L + 1")
claim(np.allclose(l_first, 1 + 4 * (k - (d + 1) / 2) * (j - (J + 1) / 2) / (d * J)), "l is that formula")
claim(bool(np.all(np.diff(l_first[0]) < 0) and np.all(np.diff(l_time) > 0)),
      "the first word's weights fall along the dimensions, the time word's rise")
l_paper = ops.position_encoding(x[0, 0], d, "paper")[:J0]
claim(np.allclose(l_paper, (1 - j / J0) - (k / d) * (1 - 2 * j / J0)) and not np.allclose(l_paper, l_first),
      "§4.1's formula gives other weights for the same sentence")
save_figure(plots.position_encoding_matrix, "02_position_encoding.png", l_first,
            title=f"position encoding l for a {J0}-word sentence (d = {d}, J = {J})")

# %% [markdown]
# ### 3b. The literal sum, and the same thing as one matrix product
#
# Computed literally, the embedding looks up every word's row of A, scales it by l_j, and sums over the
# sentence (`ops.embed_sentences_forward`; the null word contributes nothing).
#
# The library's model does it differently. l has rank 2: l_jk = a₁(j)·b₁(k) + a₂(j)·b₂(k) with
# a₁ = 1, b₁ = 1, a₂ = 4(j − (J+1)/2)/J, b₂ = (k − (d+1)/2)/d (§4.1's formula has rank 2 as well). Pull the
# per-dimension factor b_r into A:
#
#     m_i[k] = Σ_r b_r[k] Σ_v ( Σ_j a_r(j) [x_ij = v] ) A[v, k]        i.e.    m = Σ_r W_r (A ⊙ b_r)
#
# W_r is a **weighted bag of words**: a V-long row per sentence holding, for each word, the position weight
# a_r(j) where it occurs. The bags depend only on the data, so `ops.encode_bags` builds them once per batch
# and every embedding matrix (A, C1, C2, …) reuses them: a sentence embedding becomes one matrix product,
# with no lookups, and its gradient another.

# %%
section("3b. The literal sum, and the same thing as one matrix product")
l_story = ops.position_encoding(x, d, cfg.encoding, J)     # (1, n, L, d) weights of every word slot
m_literal, _ = ops.embed_sentences_forward(x, params["A"], l_story)   # (1, n, d)

bags = ops.encode_bags(batch.stories, V, d, cfg.encoding, J=J)   # W (1, M, 2V), b (2, d)
m_bag, _ = ops.bag_embed_forward(bags, params["A"])        # (1, M, d)
print(f"bags.W {bags.W.shape} (2 bags of V = {V} columns per sentence),  bags.b {bags.b.shape}")
print("\nthe first sentence's two bags, its words in reading order (all other columns are 0):")
first_ids = [w for w in dict.fromkeys(x[0, 0]) if w]      # distinct words; a repeated word's weights add up
for r, formula in enumerate(["a₁ = 1            ", "a₂ = 4(j − (J+1)/2)/J"]):
    print(f"  bag {r + 1}, {formula}: " + ", ".join(f"{words[v]} {bags.W[0, 0, r * V + v]:+.2f}" for v in first_ids))
pos = {w: [j + 1 for j, v in enumerate(x[0, 0]) if v == w] for w in first_ids}   # 1-based positions of each word
claim(all(np.isclose(bags.W[0, 0, v], len(pos[v])) and
          np.isclose(bags.W[0, 0, V + v], sum(4 * (j - (J + 1) / 2) / J for j in pos[v])) for v in first_ids),
      "each bag holds a₁(j) and a₂(j) of its words, as labelled")
claim(np.allclose(bags.b, [np.ones(d), (np.arange(1, d + 1) - (d + 1) / 2) / d]), "bags.b holds b₁ and b₂")
print(f"\nm for the first sentence, literal : {m_literal[0, 0, :6]} …")
print(f"m for the first sentence, bags    : {m_bag[0, 0, :6]} …")
print(f"largest difference over the story : {np.abs(m_literal[0] - m_bag[0, :n]).max():.1e}")
claim(np.allclose(m_literal[0], m_bag[0, :n], atol=1e-12), "the literal sum and the bag product agree")
claim(not m_bag[0, n:].any(), "empty slots embed to zero")

# %% [markdown]
# ### 3c. Temporal encoding
#
# Where a sentence sits in the story matters in task 2 ("John went to the kitchen" is overruled by a later
# "John went to the office"), and a bag of words has no idea of time. So each memory gets a learned vector for
# its age (§4.1):
#
#     m_i = Σ_j l_j ⊙ A x_ij + T_A(i)        c_i = Σ_j l_j ⊙ C x_ij + T_C(i)
#
# T_A is (memory_size, d) and row `age` is added to a sentence of that age (0 = newest). In the official code
# T_A(i) is the embedding of the sentence's time word, which sits at position J, so it is weighted like a word
# there: l_J ⊙ T_A(i). Like the words, the ages are encoded once as a one-hot matrix E, so the time vectors are
# E (T_A ⊙ l_J), again one matrix product. (The library reads the same rows by lookup, T_A[age], which is
# faster and equal.)

# %%
section("3c. Temporal encoding")
ages = ops.encode_ages(batch.age, batch.mask, cfg.memory_size)   # E (1, M, memory_size)
m_keys, _ = ops.temporal_forward(m_bag, params["TA"] * l_time, ages)   # (1, M, d)
print(f"ages.E {ages.E.shape}; the one in each real slot's row sits at column", np.argmax(ages.E[0, :n], axis=1))
claim(np.allclose(m_keys[0, :n], m_bag[0, :n] + l_time * params["TA"][batch.age[0, :n]]),
      "the product adds l_J ⊙ T_A[age] to every real slot")
claim(not m_keys[0, n:].any(), "empty slots get no time vector")


def memory(E_name, T_name):
    """One memory as sections 3b and 3c built it: the bag product plus the weighted time vectors. (1, M, d)"""
    m, _ = ops.bag_embed_forward(bags, params[E_name])           # (1, M, d)
    m, _ = ops.temporal_forward(m, params[T_name] * l_time, ages)   # (1, M, d)
    return m

# %% [markdown]
# ## 4. The forward pass, hop by hop
#
# ### 4a. The question
#
# The question is embedded like a sentence, with B (= A under adjacent tying) and without a time vector:
#
#     u¹ = Σ_j l_j ⊙ B q_j
#
# Its words take the weights of positions 1..L of the same J = L + 1 (the official code uses the first L
# columns of the sentences' l).

# %%
section("4a. The question")
qbags = ops.encode_bags(batch.queries, V, d, cfg.encoding, J=J)  # (1, 2V) the question's words: positions 1..L of J
u1, _ = ops.bag_embed_forward(qbags, params[B_NAME])             # (1, d)
print(f"u¹ {u1.shape} = {u1[0, :6]} …")

# %% [markdown]
# ### 4b. Hop 1: where to look
#
# The controller state u scores every memory key by a dot product, and a softmax over the real slots turns
# the scores into an attention distribution (empty slots get exactly 0):
#
#     p_i = softmax(uᵀ m_i)
#
# Before training the keys and the question are random vectors, so expect a nearly uniform p: the model has
# not learned yet that "milk" in the question should match "milk" in a memory.

# %%
section("4b. Hop 1: where to look")
mask = batch.mask                                                # (1, M)
A1, C1, TA1, TC1 = memn2n.roles(cfg, 1)
m1 = memory(A1, TA1)                                             # (1, M, d) keys, m_keys above
c1 = memory(C1, TC1)                                             # (1, M, d) values
scores = (m1 @ u1[..., None])[..., 0]                            # (1, M) uᵀ m_i
p1, _ = ops.masked_softmax_forward(scores, mask)                 # (1, M)

sentences = [" ".join(s) for s in question.story[len(question.story) - n:]]
supporting = {i - (len(question.story) - n) for i in question.supporting}
print(f"{'sentence':38s} {'uᵀm_i':>7s} {'p_i':>6s}")
for i in range(n):
    print(f"{('★ ' if i in supporting else '  ') + sentences[i]:38s} {scores[0, i]:7.3f} {p1[0, i]:6.3f}")
print(f"Σ p = {p1.sum():.6f}   p on empty slots: {p1[0, n:].max():.1f}")
claim(np.isclose(p1.sum(), 1) and not p1[0, n:].any(), "p sums to 1, and the empty slots get exactly 0")
claim(p1[0, :n].max() < 2 * p1[0, :n].min(), "before training p is nearly uniform (no weight twice another)")

# %% [markdown]
# ### 4c. Hop 1: what is read, and the new state
#
# The read-out is the attention-weighted sum of the memory *values* (the output embedding C), and the next
# hop's state adds it to the current one:
#
#     o¹ = Σ_i p_i c_i          u² = u¹ + o¹
#
# `ops.attention_read_forward` does scores, softmax and read in one op, and keeps in its cache exactly what
# its backward will need (u, m, c, mask, p).

# %%
section("4c. Hop 1: what is read, and the new state")
o1_by_hand = (p1[0, :, None] * c1[0]).sum(0)                    # (d,)
o1, att1 = ops.attention_read_forward(u1, m1, c1, mask)          # (1, d)
u2 = u1 + o1                                                     # (1, d)
print(f"o¹ by hand = {o1_by_hand[:6]} …")
print(f"o¹ by op   = {o1[0, :6]} …   same: {np.allclose(o1[0], o1_by_hand)}")
print(f"cache fields: {att1._fields};  cache.p equals our p: {np.allclose(att1.p, p1)}")
print(f"u² = {u2[0, :6]} …")

# %% [markdown]
# ### 4d. Hops 2 and 3, and the answer
#
# Hop k does the same with Aᵏ, Cᵏ (so with tying, hop 2 reads keys with C1 and values with C2). After the last
# hop, the answer is a softmax over the **whole vocabulary**:
#
#     p = softmax(uᵏᵀ m_i),  oᵏ = Σ_i p_i c_i,  uᵏ⁺¹ = uᵏ + oᵏ          k = 2, 3
#     â = softmax(W uᴷ⁺¹)
#
# (The paper writes W(oᴷ + uᴷ), which is the same thing: oᴷ + uᴷ = uᴷ⁺¹.)

# %%
section("4d. Hops 2 and 3, and the answer")
u = u1
hop_caches = []                                                  # hop 1 again, so all K caches sit in one list
for k in range(1, K + 1):
    A_k, C_k, TA_k, TC_k = memn2n.roles(cfg, k)
    m_k = memory(A_k, TA_k)                                      # (1, M, d)
    c_k = memory(C_k, TC_k)                                      # (1, M, d)
    o_k, cache_k = ops.attention_read_forward(u, m_k, c_k, mask)   # (1, d)
    hop_caches.append(cache_k)
    u = u + o_k                                                  # (1, d) uᵏ⁺¹
u_final = u                                                      # (1, d) u⁴
logits = u_final @ params[W_NAME].T                              # (1, V) W u⁴
a_hat = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()   # (1, V)


def attention_rows(p_by_hop, title):
    """Print a sentence × hop table of attention weights (real slots only)."""
    print(f"{title:38s}" + "".join(f"  hop {k + 1}" for k in range(len(p_by_hop))))
    for i in range(n):
        row = "".join(f"  {p[0, i]:5.3f}" for p in p_by_hop)
        print(f"{('★ ' if i in supporting else '  ') + sentences[i]:38s}{row}")


attention_rows([c.p for c in hop_caches], "attention before training")
top = np.argsort(-a_hat[0])[:3]
print("\nâ, the three most likely answers: " + ", ".join(f"{words[w]} {a_hat[0, w]:.3f}" for w in top))
print(f"predicted {words[top[0]]!r}, true {question.answer_token!r}  (random weights: any word is a guess)")

logits_model, model_cache = memn2n.forward(params, batch, cfg)
print(f"\nmemn2n.forward, the library's model: max difference in the logits {np.abs(logits_model - logits).max():.1e}")
claim(np.allclose(logits_model, logits, atol=1e-10), "the step-by-step forward gives the library's logits")
claim(np.allclose(memn2n.attention_of(model_cache), np.stack([c.p for c in hop_caches], axis=1)),
      "and the library's attention (memn2n.attention_of)")

# %% [markdown]
# ## 5. The backward pass, in reverse
#
# The loss of one question is the cross-entropy of the answer softmax, −log â_a. We now walk the forward pass
# from the bottom to the top and, at every step, check the gradient against central finite differences in
# float64 (relative error next to 1e-7, as in `00_gradient_checking.py`).
#
# ### 5a. The answer softmax
#
# For a softmax followed by cross-entropy the gradient with respect to the logits is strikingly simple:
#
#     ∂loss/∂z = â − onehot(a)
#
# Every wrong word is pushed down by its probability, the right one pulled up by 1 − â_a.

# %%
section("5a. The answer softmax")
y = batch.answers                                                # (1,)
loss, ce = ops.softmax_cross_entropy_forward(logits, y)
dlogits = ops.softmax_cross_entropy_backward(1.0, ce)            # (1, V)
print(f"loss = −log â[{words[y[0]]}] = {loss:.4f}   (−log(1/V) = {np.log(V):.4f}: about uniform)")
print(f"dlogits at the answer: {dlogits[0, y[0]]:+.4f} = â_a − 1;  its entries sum to {dlogits.sum():.1e}")
z = logits.copy()
num = gradcheck.eval_numerical_gradient(lambda: ops.softmax_cross_entropy_forward(z, y)[0], z)
check_line("dlogits = â − onehot", gradcheck.rel_error(dlogits, num))

# %% [markdown]
# ### 5b. The answer matrix and the final state
#
# z = u⁴ Wᵀ is a linear map, so
#
#     dW = dzᵀ u⁴   (V, d)          du⁴ = dz W   (1, d)
#
# Here W is `C3`: keep dW aside, we add it to C3's other gradient later.

# %%
section("5b. The answer matrix and the final state")
W = params[W_NAME]
dW = dlogits.T @ u_final                                         # (V, d)
du = dlogits @ W                                                 # (1, d) ∂loss/∂u⁴
u_chk, W_chk = u_final.copy(), W.copy()


def head_loss():
    return ops.softmax_cross_entropy_forward(u_chk @ W_chk.T, y)[0]


check_line(f"dW (W = {W_NAME})", gradcheck.rel_error(dW, gradcheck.eval_numerical_gradient(head_loss, W_chk)))
check_line("du⁴", gradcheck.rel_error(du, gradcheck.eval_numerical_gradient(head_loss, u_chk)))

# %% [markdown]
# ### 5c. Why the softmax backward is p ⊙ (dp − Σ p dp)
#
# Inside a hop, the attention p = softmax(s) has the Jacobian ∂p_i/∂s_j = p_i (δ_ij − p_j). Applying it to an
# upstream dp gives
#
#     ds_j = Σ_i dp_i p_i (δ_ij − p_j) = p_j (dp_j − Σ_i p_i dp_i)
#
# Read it like this: the weights must sum to one, so raising one score can only move attention *from* the
# other slots. What counts is whether slot j's dp is better than the attention-weighted average Σ p dp; adding
# the same constant to every dp_j changes nothing, and the ds always sum to zero. A padded slot has p_j = 0,
# so it gets ds_j = 0: it never learns to attract attention.

# %%
section("5c. Why the softmax backward is p ⊙ (dp − Σ p dp)")
cache3 = hop_caches[-1]
s3 = (cache3.m @ cache3.u[..., None])[..., 0]                    # (1, M) hop 3's scores
dp = rng.standard_normal(s3.shape)                               # (1, M) some upstream gradient
dscores = ops.masked_softmax_backward(dp, ops.SoftmaxCache(cache3.p))   # (1, M)
print(f"Σ ds = {dscores.sum():.1e};  ds on empty slots: {np.abs(dscores[0, n:]).max():.1f}")
claim(abs(dscores.sum()) < 1e-12, "the ds sum to zero")
claim(np.allclose(dscores, ops.masked_softmax_backward(dp + 5, ops.SoftmaxCache(cache3.p))),
      "adding the same constant to every dp changes nothing")
claim(not dscores[0, n:].any(), "an empty (masked) slot gets ds = 0")
errs = gradcheck.check_op(ops.masked_softmax_forward, ops.masked_softmax_backward,
                          {"s": s3.copy(), "mask": mask}, wrt=("s",), rng=rng)
check_line("masked softmax: ds", errs["s"])

# %% [markdown]
# ### 5d. Back through the hops
#
# Hop k computed uᵏ⁺¹ = uᵏ + oᵏ. A sum passes its gradient unchanged to both summands, so
#
#     doᵏ = duᵏ⁺¹          duᵏ = duᵏ⁺¹ + (the part of duᵏ⁺¹ that flows through oᵏ back into uᵏ)
#
# `ops.attention_read_backward(do, cache)` returns that second part together with the gradients of the keys m
# and values c. Reading the forward upside down:
#
#     dp_i = c_iᵀ do      dc_i = p_i do      ds = p ⊙ (dp − Σ p dp)      du = Σ_i ds_i m_i      dm_i = ds_i u
#
# **Tied weights accumulate.** Under adjacent tying one memory plays two parts: the memory embedded with C1
# is hop 1's values *and* hop 2's keys. When a quantity feeds two places, the chain rule sums the gradient from
# each use, so we collect the memory gradients in a dictionary and *add*. Forgetting this (overwriting instead
# of adding) is the classic bug with tied weights, and the gradient check would catch it.

# %%
section("5d. Back through the hops")
dmemory = {}                                                     # (matrix, time matrix) -> ∂loss/∂memory (1, M, d)
du_k = du                                                        # ∂loss/∂u⁴
for k in range(K, 0, -1):
    cache_k = hop_caches[k - 1]
    do = du_k                                                    # (1, d) uᵏ⁺¹ = uᵏ + oᵏ
    du_att, dm, dc = ops.attention_read_backward(do, cache_k)    # (1, d), (1, M, d), (1, M, d)
    du_k = du_k + du_att                                         # (1, d) ∂loss/∂uᵏ
    A_k, C_k, TA_k, TC_k = memn2n.roles(cfg, k)
    for key, g in (((A_k, TA_k), dm), ((C_k, TC_k), dc)):
        dmemory[key] = dmemory[key] + g if key in dmemory else g
    errs = gradcheck.check_op(ops.attention_read_forward, ops.attention_read_backward,
                              {"u": cache_k.u.copy(), "m": cache_k.m.copy(), "c": cache_k.c.copy(),
                               "mask": mask}, wrt=("u", "m", "c"), rng=rng)
    print(f"hop {k}: dm → memory of {A_k} (A{k}), dc → memory of {C_k} (C{k});  "
          f"|du^{k}| = {np.linalg.norm(du_k):.4f}")
    for name, err in errs.items():
        check_line(f"attention read, hop {k}: d{name}", err)
du1 = du_k                                                       # (1, d) ∂loss/∂u¹

print("\nmemory gradients collected (and what added into them):")
for (A_name, _), g in dmemory.items():
    uses = [f"keys of hop {k}" for k in range(1, K + 1) if memn2n.roles(cfg, k)[0] == A_name] + \
           [f"values of hop {k}" for k in range(1, K + 1) if memn2n.roles(cfg, k)[1] == A_name]
    print(f"  {A_name:3s} |dmemory| = {np.linalg.norm(g):.4f}   from the {' and the '.join(uses)}")
norms = {key[0]: np.linalg.norm(g) for key, g in dmemory.items()}
ratio = min(v for name, v in norms.items() if name != "A") / norms["A"]
print(f"the smallest of the others is {ratio:.0f} times the gradient of A's memory")
claim(ratio > 3, "the memory used only as keys (A) gets a much smaller gradient than the others")

# %% [markdown]
# Two things to notice in these numbers. The memories used twice (C1, C2) collected two contributions, as
# promised. And the memory of A, used only as hop 1's keys, gets a much smaller gradient (the ratio is printed):
# a key reaches the loss only through the softmax, whose backward p_j (dp_j − Σ p dp) multiplies by p_j ≈ 1/n
# when attention is nearly uniform, and subtracts an average of values that are still random and alike. A
# value c_i gets p_i · do directly. Small key gradients are one reason training starts slowly; linear start
# (section 6) removes the softmax for a while, and with it this damping.

# %% [markdown]
# ### 5e. Into the embedding matrices
#
# Each memory was m = W_bags Ã + E (T ⊙ l_J) (section 3). Both are matrix products, so their backward is
#
#     dÃ = W_bagsᵀ dm   →   dA = Σ_r dÃ_r ⊙ b_r          dT = (Eᵀ dm) ⊙ l_J
#
# and the question, u¹ = Σ_j l_j ⊙ B q_j, sends du¹ into B the same way. Now the tying bookkeeping pays off:
#
#     grads[A]  = (A¹'s memory part)  +  (B's question part)        since B = A¹
#     grads[C3] = (C³'s memory part)  +  dW from 5b                 since Wᵀ = C³
#
# and C1, C2 each already hold their two uses (as Cᵏ and Aᵏ⁺¹) in one memory gradient.

# %%
section("5e. Into the embedding matrices")
grads = {name: np.zeros_like(p) for name, p in params.items()}
grads[W_NAME] += dW                                              # (V, d) the answer's use of C3
for (A_name, TA_name), g in dmemory.items():
    _, dT = ops.temporal_backward(g, ops.TemporalCache(ages))    # (memory_size, d) ∂loss/∂(T ⊙ l_J)
    grads[TA_name] += dT * l_time
    grads[A_name] += ops.bag_embed_backward(g, ops.BagEmbedCache(bags))   # (V, d)
grads[B_NAME] += ops.bag_embed_backward(du1, ops.BagEmbedCache(qbags))    # (V, d) the question's use of A

g_any = dmemory[(A1, TA1)]                                       # one memory gradient, to check the ops with
dA_bags = ops.bag_embed_backward(g_any, ops.BagEmbedCache(bags))
dA_literal = ops.embed_sentences_backward(g_any[:, :n], ops.EmbedCache(x, l_story, V))   # scatter-add version
check_line("bag backward = literal scatter-add", gradcheck.rel_error(dA_bags, dA_literal))
errs = gradcheck.check_op(ops.bag_embed_forward, ops.bag_embed_backward,
                          {"bags": bags, "A": params["A"].copy()}, wrt=("A",), rng=rng)
check_line("bag embedding: dA", errs["A"])
errs = gradcheck.check_op(ops.temporal_forward, ops.temporal_backward,
                          {"m": m_bag.copy(), "T": params["TA"].copy(), "ages": ages}, wrt=("m", "T"), rng=rng)
for name, err in errs.items():
    check_line(f"temporal encoding: d{name}", err)

_, model_grads, _ = memn2n.loss_and_grads(params, batch, cfg)
print("\nour hand-assembled gradients against memn2n.loss_and_grads:")
for name in params:
    print(f"  {name:4s} rel difference {gradcheck.rel_error(grads[name], model_grads[name]):.1e}")
claim(all(gradcheck.rel_error(grads[name], model_grads[name]) < 1e-10 for name in params),
      "every hand-assembled gradient is the library's")

# %% [markdown]
# ### 5f. Why the null word stays zero
#
# Padding words fill every sentence up to L words. In the paper's lookup form they are looked up like any
# other word, and a zero row for `<nil>` is what makes them add nothing to m. Here `encode_bags` goes one step
# further and never counts the padding word at all: its column in every bag is zero. So no sentence and no
# question sends any gradient into row 0 of A, C1, C2, and a row that starts at zero stays there.
#
# There is one exception, and it is instructive: C3 is also the answer matrix W, and row 0 of W gives the logit
# of answering `<nil>`. The answer softmax pushes that logit down like every other wrong word's, so
# grads["C3"][0] = â_nil · u⁴ is *not* zero. That is why the training loop (`train.run_epoch`) sets row 0 of
# every word matrix back to zero after each step: it keeps `<nil>` a pure padding symbol.

# %%
section("5f. Why the null word stays zero")
for name in memn2n.embedding_names(cfg):
    print(f"  |grads[{name!r}][0]| = {np.linalg.norm(grads[name][0]):.2e}")
print(f"  â_nil · |u⁴| = {a_hat[0, 0] * np.linalg.norm(u_final):.2e}   (the C3 row)")

# %% [markdown]
# ### 5g. The whole model at once
#
# Finally the check that matters for training: `gradcheck.check_gradients` nudges sampled entries of every
# parameter, reruns `memn2n.loss_and_grads` (the summed loss over a small batch of four test questions) and
# compares. Float64, central differences, h = 1e-5.

# %%
section("5g. The whole model at once")
batch4 = memn2n.make_batch(dataset.test, np.arange(IDX, IDX + 4) % len(dataset.test), cfg)
print("full model, sampled entries of every parameter:")
report = gradcheck.check_gradients(lambda p: memn2n.loss_and_grads(p, batch4, cfg), params,
                                   max_entries=20 if FAST else 60, rng=rng)
print(gradcheck.format_report(report))
claim(all(r.ok for r in report.values()), "every parameter passes")

# %% [markdown]
# ## 6. Training
#
# The paper's recipe (§4.2), which `train.train` follows: 10% of the training questions held out for
# validation; SGD on batches of 32 with the loss summed over the batch; each gradient matrix clipped to norm
# 40; 100 epochs, the learning rate halved every 25. Two tricks from §4.1/§4.2 make it work:
#
# - **Linear start (LS)**: first train with every attention softmax removed (p = uᵀm), lr 0.005, until the
#   validation loss stops falling; then put the softmax back. Early on, a softmax over random scores gives
#   tiny, noisy gradients; without it the model first learns good embeddings.
# - **Random noise (RN)**: add 10% empty "gaps" to the time index during training, so T_A, T_C cannot
#   memorise exact positions.
#
# We train in float32: it is faster, and the gradients no longer need checking (float64 is only needed to
# measure differences of size 1e-10). In fast mode the run is
# cut to a few epochs, far too few to learn the task: the numbers below then show a model that has barely
# started.

# %%
section("6. Training")
if FAST:
    cfg_train = memn2n.replace(cfg, dtype="float32", epochs=3, decay_every=2, ls_mode="fixed", ls_epochs=2)
else:
    cfg_train = memn2n.replace(cfg, dtype="float32")


def show_progress(log, total):
    """Every linear-start epoch and every 10th epoch after it (every epoch in fast mode)."""
    if FAST or log.phase == "linear start" or log.epoch % 10 == 0:
        phase = "linear start" if log.phase == "linear start" else ""
        print(f"  epoch {log.epoch:3d} {phase:12s} lr {log.lr:.5f}  train loss {log.train_loss:.3f} "
              f"err {log.train_error:5.1f}%   val loss {log.val_loss:.3f} err {log.val_error:5.1f}%")


result = train.train(memn2n, dataset, cfg_train, np.random.default_rng(0), progress=show_progress)
paper = reference.MEMN2N_1K
print(f"\n{result.epochs} epochs ({result.ls_epochs} with linear start) in {result.seconds:.1f} s")
print(f"error: train {result.train_error:.1f}%  validation {result.val_error:.1f}%  test {result.test_error:.1f}%")
print(f"paper, bAbI 1k task {TASK} test error: MemN2N BoW {paper['MemN2N BoW'][TASK - 1]}%, "
      f"PE {paper['MemN2N PE'][TASK - 1]}%, PE LS RN joint {paper['MemN2N PE LS RN joint'][TASK - 1]}%  "
      f"(best of 10 runs)")
save_figure(plots.learning_curves, "02_learning_curves.png", result.history,
            title=f"MemN2N on {dataset.name}")

# %% [markdown]
# ## 7. The same story, after training
#
# We run our story through the trained model (`memn2n.predict`, which returns the attention of every hop in
# `info`) and draw it: sentences down, hops across, the supporting facts marked ★.

# %%
section("7. The same story, after training")
answers, info = memn2n.predict(result.params, batch, cfg_train)
att = info["attention"]                                          # (1, K, M)
predicted = words[answers[0]]
attention_rows([att[:, k] for k in range(K)], "attention after training")
print(f"\npredicted {predicted!r}, true {question.answer_token!r}, "
      f"â = {info['probs'][0, answers[0]]:.3f}")
for k in range(K):
    i = int(np.argmax(att[0, k, :n]))
    print(f"  hop {k + 1} looks most at {'★ ' if i in supporting else ''}{sentences[i]!r} ({att[0, k, i]:.2f})")
save_figure(plots.heatmap_for_example, "02_attention_after_training.png", question, att[0], batch.mask[0],
            predicted, title=None)

# %% [markdown]
# ### What to read in it
#
# The hops were built for a division of labour, and after a full run you can watch it happen. Task 2 needs two
# facts in order: *who* took the object, then *where that person* went. In our run (seed 0, one BLAS thread;
# another BLAS library or CPU rounds differently, and a hundred epochs can turn that into a different but equally
# good model) hops 1 and 2 look at **"john grabbed the milk there"**; their read-outs add that sentence's value
# vector, which carries *john*, to u. With john in u, hop 3's best key is john's latest move, **"john travelled
# to the kitchen"**: not mary's move to the same kitchen, and not john's earlier sentences (the temporal vectors
# make the newer one win). Its value vector, through W = C3, puts almost all of â on "kitchen".
#
# Nobody told the model to do this: there is no supervision of the supporting facts, only the answer. The
# attention is *learned* because routing through the right sentences is the easiest way to get the answer.
# Which hop does which step is not fixed either; other seeds may use hops 1 and 2, or repeat a step.
#
# It is not perfect. With 1k training questions the training error ends near 0 while the validation error
# stays far above it (the learning curves show the gap); the paper's best of 10 runs has 21.6% test error with
# PE (11.4% trained jointly on all tasks). Long stories are harder: the cell below splits our test error by
# story length and prints a few mistakes to look at. (In fast mode the model has trained for a few epochs
# only; the checks of this paragraph then do not apply and are skipped.)

# %%
if FAST:
    print("fast mode: the model has barely trained, so the claims about the trained model are not checked")
else:
    first, second = sorted(supporting)                           # who took it, where they went
    look = [int(np.argmax(att[0, k, :n])) for k in range(K)]     # the sentence each hop looks at most
    claim(predicted == question.answer_token, "the trained model answers our question right")
    claim(look[0] == first and look[-1] == second and att[0, K - 1, second] > 0.9,
          "the first hop looks at who took the object, the last (sharply) at where that person went")
    claim(result.train_error < 2 and result.val_error > 10, "training error near 0, validation error far above")
    _, _, preds = train.evaluate(memn2n, result.params, dataset.test, cfg_train)
    lengths = np.array([len(q.story) for q in dataset.test.questions])
    wrong = preds != dataset.test.answers
    short, long_ = wrong[lengths < 10].mean() * 100, wrong[lengths > 20].mean() * 100
    print(f"test error: {short:.1f}% on stories under 10 sentences, {long_:.1f}% on stories over 20")
    claim(long_ > short, "long stories fail more often")
    for i in np.flatnonzero(wrong)[:3]:
        q = dataset.test.questions[i]
        print(f"  mistake: {' '.join(q.question)}? said {words[preds[i]]!r}, true {q.answer_token!r}  "
              f"({len(q.story)} sentences, supporting {[j + 1 for j in q.supporting]}; {q.source})")

# %%
print(f"\nthe whole tutorial took {time.perf_counter() - T_START:.1f} s")
