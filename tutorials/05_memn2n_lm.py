# %% [markdown]
# # 05 · MemN2N as a language model: words as memories, a constant query
#
# *Sukhbaatar, Szlam, Weston & Fergus (2015), "End-To-End Memory Networks", §5.*
#
# The second half of the MemN2N paper uses the very same hops as a **language model**. There is no story and no
# question any more: the memory holds the **previous M words** of the text, one word a slot, the query is a
# **constant vector**, and the answer softmax predicts **the next word**. On Penn Treebank this model reached a
# test perplexity of 111 (7 hops, memory 200), better than the RNN and LSTM baselines of its day.
#
# This tutorial builds the model from the bAbI model's hop (`memn2n.hop_forward`), checks it against a
# per-position version written from the equations and against finite differences, trains it on generated text,
# and looks at which previous words each hop reads.
#
#     python tutorials/05_memn2n_lm.py                  # the full tutorial: about a minute, mostly training
#     MEMNET_FAST=1 python tutorials/05_memn2n_lm.py    # a few seconds, for tests
#
# Figures go into `$MEMNET_TUTORIAL_OUT` if it is set, else into `./tutorial_out/` (not in fast mode).

# %%
import math
import time

from memnet_np import runtime

runtime.one_blas_thread()                 # before numpy is imported: one thread is faster for these matrices
import numpy as np

from memnet_np import gradcheck, memn2n, memn2n_lm, plots, tutorial
from memnet_np.data import corpus as corpora
from memnet_np.tutorial import claim, save_figure

T_START = time.perf_counter()
FAST = tutorial.start()                   # MEMNET_FAST=1: tiny training, for tests; says where figures go
rng = np.random.default_rng(0)            # every random draw below comes from this generator


# %% [markdown]
# ## 1. The text
#
# Any plain text works: one sentence a line, and an end-of-sentence word `<eos>` after every line, as Penn Treebank
# is prepared for language modelling. Here the built-in bAbI-style story generator writes running text, so
# nothing needs to be downloaded. The vocabulary comes from the training text; a validation or test word outside
# it is an error (PTB has already replaced rare words by `<unk>`).

# %%
text = corpora.generated_corpus(n_train=400 if FAST else 1000)
print(f"{text.name}: {len(text.train):,} training words, {len(text.valid):,} validation, {len(text.test):,} test; "
      f"vocabulary of {text.vocab_size}")
print(" ".join(text.text(text.train[:60])))

# %% [markdown]
# ## 2. The model: the bAbI hop with words as memories
#
# For the next word after position t, slot i of the memory holds word x_i, the i-th of the M words before t
# (oldest first), written twice, once for addressing and once for reading, each with a learned vector for its
# slot (temporal encoding; there is no position encoding inside a one-word "sentence"):
#
#     m_i = A x_i + T_A(i)          c_i = C x_i + T_C(i)
#
# The query u¹ is the constant vector (0.1, …, 0.1). Each of the K hops is exactly the bAbI model's hop with
# layer-wise tying (one A, C and H on every hop), and half the units pass a ReLU:
#
#     p = softmax(uᵏᵀ m_i)      oᵏ = Σ_i p_i c_i      uᵏ⁺¹ = H uᵏ + oᵏ, ReLU on units d/2 … d−1
#
# and the next word's distribution is â = softmax(W uᴷ⁺¹), with W untied from A and C.

# %%
config = memn2n_lm.Config.tiny()          # float64, d 6 (3 linear + 3 ReLU), 3 hops, memory 5
params = {k: rng.standard_normal(v.shape) * 0.5 for k, v in memn2n_lm.init_params(config, rng).items()}
batch = memn2n_lm.example_batch(config, rng)
logits, cache = memn2n_lm.forward(params, batch, config)
print("contexts (N, M):\n", batch.contexts, "\ntargets:", batch.targets)
claim(np.all(cache.hops[0].u == 0.1), "the first hop reads with the constant query u¹ = 0.1")

# The second hop, recomputed by hand with the bAbI model's hop function, gives the state the model holds:
m = params["A"][batch.contexts] + params["TA"]            # (N, M, d)
c = params["C"][batch.contexts] + params["TC"]            # (N, M, d)
u2, _ = memn2n.hop_forward(cache.hops[0].u, m, c, params["H"], relu_from=config.d // 2)
claim(np.allclose(u2, cache.hops[1].u), "the language model's hop is memn2n.hop_forward, the bAbI model's hop")

# %% [markdown]
# ## 3. Checking it: a per-position oracle and finite differences
#
# `forward_naive` writes the equations above one position at a time with Python loops over the slots, and calls
# none of the vectorised code. The two must agree to rounding. Then every parameter's hand-written gradient is
# compared with central differences in float64.

# %%
naive = memn2n_lm.forward_naive(params, batch, config)
claim(np.allclose(logits, naive, rtol=1e-12, atol=1e-12), "the vectorised forward equals the per-position one")
report = gradcheck.check_gradients(lambda p: memn2n_lm.loss_and_grads(p, batch, config), params,
                                   max_entries=30 if FAST else None)
print(gradcheck.format_report(report))
claim(all(r.rel_error < gradcheck.SMOOTH_TOLERANCE for r in report.values()),
      "every parameter's gradient (A, C, T_A, T_C, H, W) matches finite differences to < 1e-7")

# %% [markdown]
# ## 4. Training with the official schedule
#
# The authors' Torch code trains with plain SGD at lr 0.01 on the loss **summed** over 128 positions drawn at
# random, clips the gradient of all parameters together to norm 50, and divides lr by 1.5 whenever the validation
# perplexity stops falling. A bigram model (counts of word pairs, add-one smoothing) is the yardstick: whatever the
# memory adds must show as a lower perplexity than the previous word alone gives.

# %%
config = memn2n_lm.Config.for_corpus(text, d=40, hops=3, memory_size=30, epochs=5 if FAST else 20)
out = memn2n_lm.train(text, config, np.random.default_rng(0))
print("epoch    lr      train ppl   valid ppl")
for h in out["history"]:
    print(f"{h.epoch:5d}  {h.lr:.5f}  {h.train_perplexity:9.3f}  {h.valid_perplexity:9.3f}")
counts = np.ones((text.vocab_size, text.vocab_size))
np.add.at(counts, (text.train[:-1], text.train[1:]), 1)
bigram_probs = counts / counts.sum(1, keepdims=True)
valid = text.valid[config.memory_size - 1:]               # the same predicted words as the model's
bigram = math.exp(-np.mean(np.log(bigram_probs[valid[:-1], valid[1:]])))
model_ppl = out["history"][-1].valid_perplexity
print(f"validation perplexity: memn2n-lm {model_ppl:.3f}, bigram {bigram:.3f}")
claim(model_ppl < bigram, "the memory model's validation perplexity is below the bigram model's")

# %% [markdown]
# ## 5. Where the hops look
#
# `predict` returns the attention of every hop over the M previous words. Averaged over the test text, the first
# hop (whose query is the same constant for every position) spreads its weight widely, while the later hops put
# most of theirs on the **last few words**: the model has learned something like an n-gram, with the hops choosing
# which of the recent words to read.
#
# It has *not* learned to answer the questions in the text. After "where is john ?" the answer is the room of the
# last sentence about John, but a slot here holds a single word and its position: the model can find the earlier
# "john", yet nothing in that slot tells it which room came three words later. So the answers stay near chance,
# one of six rooms, a perplexity near 6, while the rest of the text is predicted far better. Sentence-level
# memories (the bAbI model of tutorial 02) are what make such questions answerable.

# %%
params = out["params"]
positions = memn2n_lm.evaluation_positions(len(text.test), config)
test_batch = memn2n_lm.make_batch(text.test, positions, config.memory_size)
pred, info = memn2n_lm.predict(params, test_batch, config)
mean_attention = info["attention"].mean(0)                # (K, M), slots oldest first
print("mean attention × M per slot (1 = uniform), oldest … newest:")
print(mean_attention * config.memory_size)
recent = mean_attention[:, -4:].sum(1)                    # (K,) weight on the last four words
print("weight on the last four words per hop:", recent)
claim(recent[-1] > 0.5, "the last hop puts more than half its weight on the last four words")
after_question = text.test[positions - 1] == text.words.index("?")
logp = np.log(info["probs"][np.arange(len(positions)), test_batch.targets])
answer_ppl, other_ppl = math.exp(-logp[after_question].mean()), math.exp(-logp[~after_question].mean())
print(f"perplexity on the answers: {answer_ppl:.2f}; on every other word: {other_ppl:.2f}")
claim(answer_ppl > 2 * other_ppl, "the answers after '?' are predicted far worse than the rest of the text")

# %% [markdown]
# One test sentence, the question "where is … ?" and its answer: each row is a hop, each column one of the
# previous words.

# %%
example = memn2n_lm.attention_example(params, text.test, text.words, config, min_words=5)
print(example["sentence"], "→ predicted", repr(example["predicted"]), "true", repr(example["target"]))
save_figure(plots.word_attention, "05_lm_attention.png", example["words"], example["attention"], example["target"],
            example["predicted"])
save_figure(plots.perplexity_curves, "05_lm_perplexity.png", out["history"])

# %% [markdown]
# ## 6. The real benchmark
#
# On Penn Treebank (`--data` a folder with `ptb.train.txt`, `ptb.valid.txt`, `ptb.test.txt`) the same code runs
# with the official defaults, 6 hops, memory 100, d 150:
#
#     python -m memnet_np train memn2n-lm --data ../shared/data/ptb --out runs/ptb
#     python -m memnet_np train memn2n-lm --data ../shared/data/ptb --hops 2 --memory 50 --dim 100 --epochs 1
#     python -m memnet_np bench memn2n-lm
#
# At batch 128 and a 10,000-word vocabulary, most of a step is the output layer, three (128 × 150) by
# (150 × 10,000) products; `bench` times them alone and reports a step's cost against them.

# %%
print(f"done in {time.perf_counter() - T_START:.1f}s")
