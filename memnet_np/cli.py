"""`python -m memnet_np <command>` (or `memnet <command>`). Every command has --help.

User mistakes (missing data, a malformed file, an unknown model, a bad checkpoint) end with one clear line on
stderr and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from memnet_np import runtime

runtime.configure()   # one BLAS thread (before numpy is imported) and freed memory kept for reuse: see runtime.py

COMMANDS = ("demo", "train", "evaluate", "reproduce", "bench", "figures", "check", "data")


def _user_errors():
    """The exception types that mean 'the user asked for something impossible', imported lazily."""
    from memnet_np import experiments, train
    from memnet_np.data import babi, corpus, download
    from memnet_np.exercises import ExerciseError
    return (experiments.UserError, train.CheckpointError, babi.BabiFormatError, babi.UnknownWordError,
            babi.DataNotFoundError, babi.SentenceTooLongError, download.DownloadError, ExerciseError,
            corpus.CorpusError)


# ----------------------------------------------------------------------------------------------------------------
# Arguments shared by several commands


def _add_data_args(p, generated=True):
    p.add_argument("--data", metavar="DIR", help="bAbI folder (tasks_1-20_v1-2 or its parent); "
                   "default: $MEMNET_DATA")
    p.add_argument("--tenk", action="store_true", help="the 10k training sets instead of 1k")
    if generated:
        p.add_argument("--generated", action="store_true",
                       help="train on the built-in bAbI-style story generator (no download needed)")


def _add_model_options(p):
    g = p.add_argument_group("model and training options (defaults: the paper's)")
    g.add_argument("--epochs", type=int, help="epochs after linear start (paper: 100; joint 60)")
    g.add_argument("--decay-every", type=int, dest="decay_every", help="halve the learning rate every N epochs "
                   "(memn2n: 25; memnn, dmn: 10); a number above --epochs keeps it constant")
    g.add_argument("--patience", type=int, help="dmn: stop after N epochs without a new lowest validation loss, "
                   "keeping the parameters of the lowest (default 10)")
    g.add_argument("--hops", type=int, help="memory hops K (paper: 3)")
    g.add_argument("--dim", type=int, dest="d", help="embedding size d (paper: 20; joint 50)")
    g.add_argument("--encoding", choices=["paper", "official", "bow"],
                   help="sentence representation: position encoding, the official code's formula (MemN2N's default) "
                   "or the paper's (DMN+'s default), or bag of words (MemN2N)")
    g.add_argument("--tying", choices=["adjacent", "layerwise"], help="weight tying (paper: adjacent)")
    g.add_argument("--no-te", dest="temporal", action="store_false", default=None, help="no temporal encoding")
    g.add_argument("--no-rn", dest="random_noise", action="store_const", const=0.0, default=None,
                   help="no random noise (empty memories)")
    g.add_argument("--no-ls", dest="linear_start", action="store_false", default=None, help="no linear start")
    g.add_argument("--ls-mode", choices=["val", "fixed"],
                   help="linear start for a fixed 20 epochs (official code, default) or until the validation loss "
                   "stops falling (val)")
    g.add_argument("--relu", action="store_true", default=None, help="ReLU on the state after each hop")
    g.add_argument("--clipping", choices=["frobenius", "official"],
                   help="memn2n: clip each gradient array by its Frobenius norm, or as the official code: each word "
                   "matrix with its time rows as one matrix, by its spectral norm")
    g.add_argument("--answer-time-words", dest="answer_time_words", action="store_true", default=None,
                   help="memn2n: the answer softmax also over the memory's time words, as the official code's (its "
                   "time words are words of the vocabulary)")
    g.add_argument("--sampling", choices=["shuffle", "official"],
                   help="memn2n: every training question once an epoch in shuffled batches (default), or as the "
                   "official code: floor(n/32) batches drawn with replacement, the rate halved before epochs 25, "
                   "50, …")
    g.add_argument("--mask-empty", dest="mask_empty", action="store_true", default=None,
                   help="give empty memory slots exactly zero attention (default: they take part with score 0, "
                   "as in the official code)")
    g.add_argument("--variant", choices=["dmn", "dmn+"], help="dmn: Kumar et al. (default); dmn+: Xiong et al.")
    g.add_argument("--passes", type=int, help="dmn: episodic memory passes (default 3)")
    g.add_argument("--hidden", type=int, help="dmn: GRU state size H (default 80)")
    g.add_argument("--gate-supervision", type=float, help="dmn: weight of the supporting-fact loss on the gates "
                   "(default 1 for dmn, 0 for dmn+)")
    g.add_argument("--gate-targets", choices=["all", "causal", "causal-new"], help="dmn: the facts the "
                   "supporting-fact loss scores: all of them, or the supporting fact and those after it (causal: "
                   "every pass; causal-new: the passes that look for a new supporting fact)")
    g.add_argument("--extra-passes", choices=["last", "free", "end"], dest="extra_passes", help="dmn: the passes "
                   "after a question's last supporting fact: supervised toward that fact again (default), left "
                   "unsupervised, or toward Kumar et al.'s end-of-passes fact, which stops the memory once chosen")
    g.add_argument("--dropout", type=float, help="dmn: in training, drop each unit of the facts and of the "
                   "answer module's input with this probability (default 0: off; DMN+ on bAbI 10k 0.1)")
    g.add_argument("--l2", type=float, help="dmn: L2 on the weight matrices (not biases or the embedding), "
                   "added to the loss (default 0; DMN+ on bAbI 10k 1e-3)")
    g.add_argument("--gate-bias", type=float, dest="gate_bias", help="dmn: every GRU with an update gate starts "
                   "its reset-gate biases at B and its update-gate biases at −B (default 0; DMN+ on bAbI 10k 1, "
                   "TensorFlow's GRUCell start)")
    g.add_argument("--init-std", type=float, dest="init_std", help="standard deviation of the initial weights "
                   "(memn2n: every weight, memnn: U, default 0.1; dmn: the word embedding, default 0.3, DMN+ on "
                   "bAbI 10k 1; memn2n-lm: every weight, default 0.05)")
    g.add_argument("--answer-module", choices=["softmax", "gru"], help="dmn: the paper's GRU decoder, word by word "
                   "(the DMN's default) or one softmax over the vocabulary (DMN+'s)")
    g.add_argument("--answer-words", type=int, dest="answer_words", help="memnn: say answers of up to N words "
                   "one at a time until STOP, after Weston et al. 2015, on tasks 8 (N = 3) and 19 (N = 2); default 1: "
                   "a comma answer such as 'apple,milk' is one word of the vocabulary")
    g.add_argument("--float32", action="store_const", const="float32", dest="dtype", default=None,
                   help="train in float32 (faster)")


# The model options' Config fields (argparse dest), and the flag of each whose name is not "--" + the field's
OPTION_FIELDS = ("epochs", "hops", "d", "encoding", "tying", "temporal", "random_noise", "linear_start", "ls_mode",
                 "relu", "mask_empty", "dtype", "variant", "passes", "hidden", "gate_supervision", "clipping",
                 "gate_targets", "answer_module", "answer_words", "dropout", "l2", "init_std", "decay_every",
                 "patience", "gate_bias", "extra_passes", "sampling", "answer_time_words")
FLAGS = {"d": "--dim", "temporal": "--no-te", "random_noise": "--no-rn", "linear_start": "--no-ls",
         "dtype": "--float32"}


def _flag(field: str) -> str:
    return FLAGS.get(field, "--" + field.replace("_", "-"))


def _own_options() -> dict:
    """{dest: [model, ...]}: the options of `train` that only some models read, as each model declares them in
    OWN_CLI_OPTIONS (the NTM's --sequences, the language model's --memory, ...)."""
    from memnet_np import experiments as E
    out = {}
    for name in E.MODELS:
        for dest in getattr(E.get_model(name), "OWN_CLI_OPTIONS", ()):
            out.setdefault(dest, []).append(name)
    return out


BABI_DATA_OPTIONS = ("data", "tenk", "joint", "generated")   # where the bAbI models' stories come from


def _refuse_other_models_options(args, model_name: str, accepted, has_presets: bool = False) -> None:
    """A model option the model has no setting for is an error that names its flag, never silently ignored; so is
    an option of `train` that only another model reads (--sequences, --memory, ...), a bAbI data option given to a
    model that does not read it (`accepted` names those it reads), and --config to a model without presets."""
    from memnet_np.experiments import UserError
    for dest, models in _own_options().items():
        if getattr(args, dest, None) is not None and model_name not in models:
            raise UserError(f"{_flag(dest)} is an option of {' and '.join(models)}, not of {model_name}")
    data = [k for k in BABI_DATA_OPTIONS if getattr(args, k, None) and k not in accepted]
    if data:
        raise UserError(f"{model_name} does not read {', '.join(map(_flag, data))}: "
                        f"{'it is' if len(data) == 1 else 'they are'} for the bAbI models")
    if getattr(args, "config", None) and not has_presets:
        raise UserError(f"{model_name} has no --config presets")
    foreign = [k for k in OPTION_FIELDS if getattr(args, k, None) is not None and k not in accepted]
    if foreign:
        verb = "belongs" if len(foreign) == 1 else "belong"
        raise UserError(f"{model_name} has no setting {', '.join(foreign)}: {', '.join(map(_flag, foreign))} "
                        f"{verb} to another model")


def _overrides(args) -> dict:
    """The model options given on the command line, over the model's preset (--config) when it has presets."""
    import dataclasses
    from memnet_np import experiments as E
    from memnet_np.experiments import UserError
    model = E.get_model(args.model)
    presets = getattr(model, "PRESETS", None)
    _refuse_other_models_options(args, args.model, {f.name for f in dataclasses.fields(model.Config)}
                                 | set(BABI_DATA_OPTIONS), has_presets=bool(presets))
    out = {}
    if presets:
        name = getattr(args, "config", None) or next(iter(presets))
        if name not in presets:
            raise UserError(f"--config must be one of {', '.join(presets)} for {args.model}, got {name!r}")
        out.update(presets[name])
    out.update({k: getattr(args, k) for k in OPTION_FIELDS if getattr(args, k, None) is not None})
    if out.get("encoding") == "bow":
        out["encoding"] = None
    return out


def _data_spec(args, task):
    from memnet_np.data import GENERATED_TASKS
    from memnet_np.experiments import DataSpec, UserError
    if getattr(args, "generated", False):
        if args.data or args.tenk:
            raise UserError("--generated makes its own stories; drop --data/--tenk")
        if task not in GENERATED_TASKS:
            raise UserError(f"the generator makes tasks {sorted(GENERATED_TASKS)}, not {task}")
        return DataSpec(task, generated=True)
    if task != "joint" and not 1 <= int(task) <= 20:
        raise UserError(f"task must be 1..20, got {task}")
    if args.data and os.path.basename(os.path.normpath(args.data)) == "en-10k" and not args.tenk:
        raise UserError(f"{args.data} holds the 10k training sets: add --tenk (or give its parent folder)")
    return DataSpec(task, args.data, args.tenk)


# ----------------------------------------------------------------------------------------------------------------
# Commands


def cmd_demo(args):
    from memnet_np import demo
    return demo.run(out_dir=args.out, seed=args.seed, epochs=args.epochs, quiet=args.quiet)


def cmd_train(args):
    from memnet_np import experiments as E
    from memnet_np import train as T
    from memnet_np.experiments import UserError
    model = E.get_model(args.model)
    if hasattr(model, "train_command"):                       # a model of its own tasks (the NTM's sequences)
        _refuse_other_models_options(args, args.model, model.CLI_SETTINGS)
        return model.train_command(args)
    if args.joint == (args.task is not None):
        raise UserError("give either --task N (1..20) or --joint")
    if args.runs < 1 or args.jobs < 1:
        raise UserError("--runs and --jobs must be at least 1")
    try:
        task = "joint" if args.joint else int(args.task)
    except ValueError:
        raise UserError(f"--task must be a bAbI task 1..20 for {args.model}, got {args.task!r}") from None
    spec = E.spec_for(args.model, _data_spec(args, task))
    ds = E.load_data(spec)                                    # fail early: missing data, bad files
    config = E.make_config(model, ds, _overrides(args))       # and impossible settings (--epochs 0, ...)
    out_dir = args.out or os.path.join("runs", f"{args.model}-{'joint' if args.joint else f'task{task}'}"
                                       f"{'-10k' if spec.tenk else ''}{'-generated' if spec.generated else ''}")
    print(f"training {args.model} on {spec.describe()}, {args.runs} run(s) from seed {args.seed}; "
          f"results go to {out_dir}", flush=True)
    if args.resume:
        saved = sorted(p.name for p in Path(out_dir).glob("state-seed*.npz"))
        print(f"resuming from {', '.join(saved)} in {out_dir}" if saved else
              f"nothing to resume in {out_dir}: starting afresh", flush=True)
    out = E.train_runs(args.model, spec, runs=args.runs, seed=args.seed, jobs=args.jobs,
                       overrides=_overrides(args), verbose=not args.quiet, state_dir=out_dir, resume=args.resume)
    res, best = out["results"], out["best"]
    ckpt = T.save_checkpoint(os.path.join(out_dir, "checkpoint.npz"), args.model, best.params, config,
                             ds.vocab.to_list(), meta={"data": spec.describe(), "task": task, "tenk": spec.tenk,
                                                       "generated": spec.generated, "sentence_len": ds.sentence_len,
                                                       "seed": best.seed, **best.summary})
    res["checkpoint"] = str(ckpt)
    E.write_results(out_dir, res)
    _print_train_summary(res, ckpt, out_dir)
    return 0


def _print_train_summary(res, ckpt, out):
    print("\n" + "=" * 72)
    print(f"{res['model']} on {res['data']}  ({len(res['runs'])} run(s), {res['wall_seconds']:.1f}s)")
    print(f"selected run (lowest training error): seed {res['seed']}")
    print(f"  train error {res['train_error']:.1f}%   val error {res['val_error']:.1f}%   "
          f"test error {res['test_error']:.1f}%")
    if len(res["runs"]) > 1:
        v = res["selected_by_val"]
        tests = [r["test_error"] for r in res["runs"]]
        print(f"selected by validation error: seed {v['seed']}, test error {v['test_error']:.1f}%")
        print(f"test error over runs: best {min(tests):.1f}%  mean {sum(tests) / len(tests):.1f}%  "
              f"worst {max(tests):.1f}%")
    by_task = res.get("test_error_by_task") or {}
    if len(by_task) > 1:
        print("test error by task: " + "  ".join(f"{t}:{e:.1f}" for t, e in sorted(by_task.items(),
                                                                                   key=lambda kv: int(kv[0]))))
    print(f"wrote {os.path.join(out, 'results.json')} and {ckpt}")
    print(f"score it again with: python -m memnet_np evaluate {out}")
    print("=" * 72)


def cmd_evaluate(args):
    from memnet_np import data, experiments as E, train as T
    path = args.checkpoint
    if os.path.isdir(path):                                   # the folder `train` wrote
        path = os.path.join(path, "checkpoint.npz")
        if not os.path.isfile(path):
            raise T.CheckpointError(f"{args.checkpoint} is a folder without a checkpoint.npz (train writes one into "
                                    f"its --out folder)")
    ck = T.load_checkpoint(path)
    model = E.get_model(ck.model)
    if hasattr(model, "evaluate_command"):                    # a model that scores itself (memn2n-lm: perplexity)
        return model.evaluate_command(args, ck, path)
    if hasattr(model, "train_command"):
        raise E.UserError(f"evaluate scores bAbI checkpoints; this {ck.model} run's scores are in the results.json "
                          f"beside {path}")
    config = model.Config(**ck.config)
    vocab = data.Vocab.from_list(ck.vocab)
    for name in ck.params:
        if name not in model.param_names(config):
            raise T.CheckpointError(f"{args.checkpoint}: parameter {name!r} does not belong to this {ck.model} config")
    task = args.task if args.task is not None else ck.meta.get("task", 1)
    if ck.meta.get("generated") and not (args.data or args.tenk):
        args.generated = True                                 # trained on generated stories: score on them too
    if ck.meta.get("tenk") and not args.data and not args.generated:
        args.tenk = True
    spec = _data_spec(args, task)
    if spec.generated:
        ds = data.load_generated(int(task), memory_size=config.memory_size)
        questions = ds.test.questions
    else:
        root = data.resolve_data_dir(spec.data_dir)
        tasks = range(1, 21) if task == "joint" else [int(task)]
        questions = [q for t in tasks for q in data.parse_babi(data.task_files(root, t, spec.tenk)[1], t)]
    # the model's memory has exactly config.memory_size slots (empty ones take part in the attention), and its
    # sentence length is the training data's: longer test stories keep their last memory_size sentences
    arrays = data.vectorize(questions, vocab, memory_size=config.memory_size,
                            sentence_len=ck.meta.get("sentence_len"), slots=config.memory_size)
    _, err, preds = T.evaluate(model, ck.params, arrays, config)
    by_task = T.error_by_task(arrays, preds)
    print(f"{ck.model} checkpoint {path} on {len(questions)} test questions"
          f"{' (generated stories)' if spec.generated else ''}")
    for t, e in by_task.items():
        print(f"  task {t:2d}: test error {e:5.1f}%")
    print(f"test error {err:.1f}% (accuracy {100 - err:.1f}%)")
    return 0


def cmd_reproduce(args):
    from memnet_np import experiments as E
    if hasattr(E.get_model(args.model), "train_command"):
        raise E.UserError(f"reproduce runs the bAbI suites; train {args.model} with: train {args.model} --task TASK")
    tasks = [int(t) for t in args.tasks.split(",")] if args.tasks else None
    print(f"reproducing {args.model} on {args.suite}: {args.runs} run(s) per task, {args.jobs} process(es)",
          flush=True)
    out = E.reproduce(args.model, args.suite, runs=args.runs, jobs=args.jobs, data_dir=args.data,
                      seed=args.seed, overrides=_overrides(args), tasks=tasks, heldout=args.heldout)
    res = out["results"]
    md = E.results_markdown(res)
    paths = E.write_results(args.out, res, md)
    print("\n" + md)
    what = f"held-out error ({args.heldout} questions a task)" if args.heldout else "test error"
    print(f"mean {what} {res['mean_test_error']:.1f}%, failed tasks (> 5%): {res['failed_tasks']}, "
          f"wall time {res['wall_seconds']:.0f}s")
    print("wrote " + ", ".join(map(str, paths)))
    return 0


def cmd_bench(args):
    from memnet_np import bench, experiments as E
    model = E.get_model(args.model)
    if args.model == "memn2n":
        return bench.main(args)
    if not hasattr(model, "bench"):
        raise E.UserError(f"bench {args.model} is not written yet; bench memn2n and bench ntm are")
    import inspect
    wants = inspect.signature(model.bench).parameters            # a bAbI model's bench takes --task and --data too
    r = model.bench(quick=args.quick, **{k: getattr(args, k) for k in ("task", "data") if k in wants})
    print(json.dumps(r) if args.json else model.format_bench(r))
    return 0


def cmd_figures(args):
    from memnet_np import figures
    from memnet_np.experiments import UserError
    try:
        import matplotlib  # noqa: F401  (checked before any training: the figures need it)
    except ImportError:
        raise UserError("figures need matplotlib: pip install 'memnet_np[plot]'") from None
    return figures.main(out_dir=args.out, data_dir=args.data, quick=args.quick, models=args.model)


def cmd_check(args):
    from memnet_np import exercises
    ok = exercises.grade(args.file, stream=sys.stdout, time_limit=args.time_limit)
    return 0 if ok else 1


def cmd_data(args):
    from memnet_np import data
    from memnet_np.experiments import UserError
    if args.data_command == "check":
        root = data.resolve_data_dir(args.data)
        tenk = None if args.set == "both" else args.set == "10k"
        stats = data.check_folder(root, tenk=tenk)
        print(data.format_stats(stats))
        found = {(s.subset, s.task, s.split) for s in stats}
        subsets = sorted({s.subset for s in stats}) if tenk is None else ["en-10k" if tenk else "en"]
        missing = [f"{sub}/qa{t}_*_{split}.txt" for sub in subsets for t in range(1, 21) for split in ("train", "test")
                   if (sub, t, split) not in found]
        if missing:
            print(f"bAbI folder {root}: {len(stats)} files parsed; {len(missing)} missing: " + ", ".join(missing))
            return 1
        print(f"bAbI folder {root}: every file parsed, none missing")
        return 0
    if args.data_command == "download":
        path = data.download_babi(args.dir)
        print(f"bAbI v1.2 is in {path}\nuse it with --data {path} or export MEMNET_DATA={path}")
        return 0
    if args.data_command == "generate":
        if args.task not in data.GENERATED_TASKS:
            raise UserError(f"the generator makes tasks {sorted(data.GENERATED_TASKS)}, not {args.task}")
        train_path, test_path = data.write_task(args.task, args.out, n_train=args.n_train, n_test=args.n_test,
                                                seed=args.seed)
        print(f"wrote {train_path}\nwrote {test_path}\nuse it with --data {args.out}")
        return 0
    raise UserError("choose a data command: check, download or generate")


# ----------------------------------------------------------------------------------------------------------------
# Parser


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr (with where to find help) and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _OneLineParser(prog="memnet", description="Memory networks in pure NumPy: train, evaluate, "
                       "reproduce the papers, benchmark, plot, and check your own gradients.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineParser)

    s = sub.add_parser("demo", help="train MemN2N on generated stories (no download) and draw its attention")
    s.add_argument("--out", default="memnet_demo", help="folder for the heatmap and results (default: %(default)s)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--epochs", type=int, default=None, help="epochs after linear start (default: the paper's 100)")
    s.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("train", help="train a model on one bAbI task (or all jointly)")
    s.add_argument("model", help="memn2n, memnn (bAbI tasks), ntm (copy, repeat-copy, associative-recall) or "
                   "memn2n-lm (a text corpus: --data DIR with ptb.train.txt, ...; generated text without it)")
    s.add_argument("--task", help="bAbI task 1..20, or the NTM's task")
    s.add_argument("--config", help="a model's preset: memnn basic (default) or extended")
    s.add_argument("--sequences", type=int, help="ntm: training sequences (default: the task's, ntm.TASK_SEQUENCES)")
    s.add_argument("--batch", type=int, help="ntm: sequences per batch (default: the tuned settings' 16)")
    s.add_argument("--memory", type=int, help="memn2n-lm: previous words in memory (default 100)")
    s.add_argument("--order", choices=["random", "shuffle", "streams"],
                   help="memn2n-lm: which positions an epoch trains on: drawn at random with replacement (the "
                   "official code), every position once in a random order, or 128 streams read side by side")
    s.add_argument("--time-budget", type=float, metavar="SECONDS",
                   help="memn2n-lm: start no epoch that would end after this much training time")
    s.add_argument("--joint", action="store_true", help="one model for all 20 tasks")
    _add_data_args(s)
    s.add_argument("--runs", type=int, default=1, help="seeds to train; the lowest training error is selected")
    s.add_argument("--jobs", type=int, default=1, help="parallel processes for --runs")
    s.add_argument("--seed", type=int, default=0, help="first seed")
    s.add_argument("--out", help="folder for results.json and checkpoint.npz (default: runs/MODEL-taskN); the "
                   "training state is saved there after every epoch (ntm: every 1000 sequences)")
    s.add_argument("--resume", action="store_true", help="continue an interrupted run from the state saved in --out "
                   "(same arguments: the result is the same, bit for bit)")
    s.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    _add_model_options(s)
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", help="re-score a saved checkpoint on test data")
    s.add_argument("checkpoint", help="a checkpoint.npz, or the folder train wrote it into")
    s.add_argument("--task", type=int, help="task to score (default: the one it was trained on)")
    _add_data_args(s)
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("reproduce", help="a whole paper table: every task, several seeds, in parallel")
    s.add_argument("model")
    s.add_argument("--suite", required=True, choices=["babi-1k", "babi-10k", "babi-1k-joint", "babi-10k-joint"])
    s.add_argument("--runs", type=int, default=10, help="seeds per task (paper: 10)")
    s.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel processes (default: cores)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--tasks", help="a subset, e.g. 1,2,3")
    s.add_argument("--data", metavar="DIR", help="bAbI folder; default: $MEMNET_DATA")
    s.add_argument("--out", default="results", help="folder for results.json and results.md (default: %(default)s)")
    s.add_argument("--config", help="a model's preset: memnn basic (default) or extended")
    s.add_argument("--heldout", type=int, default=0, metavar="N",
                   help="babi-1k: score every run on N held-out questions of its task (from the 10k training file, "
                        "stories the 1k model never sees) instead of the test file, to choose settings on")
    _add_model_options(s)
    s.set_defaults(func=cmd_reproduce)

    s = sub.add_parser("bench", help="training and inference speed, and how it scales")
    s.add_argument("model")
    s.add_argument("--data", metavar="DIR", help="bAbI folder; default: $MEMNET_DATA, else generated stories")
    s.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    s.add_argument("--task", type=int, default=1, help="bAbI task whose training epoch is timed (default: 1)")
    s.add_argument("--quick", action="store_true", help="fewer repeats (for tests)")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("figures", help="regenerate the PNGs in figures/ from fixed seeds")
    s.add_argument("--out", default="figures")
    s.add_argument("--data", metavar="DIR", help="bAbI folder; default: $MEMNET_DATA, else generated stories")
    s.add_argument("--quick", action="store_true", help="short training (for tests)")
    s.add_argument("--model", action="append", metavar="NAME",
                   help="only this model's figures (repeatable); default: every model that has figures")
    s.set_defaults(func=cmd_figures)

    s = sub.add_parser("check", help="grade a gradient-check exercise you filled in")
    s.add_argument("file", help="e.g. tutorials/exercises/01_softmax_attention_backward.py")
    s.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="stop a function of yours that runs longer than this (default 10; a right one takes ms)")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("data", help="check, download or generate bAbI data")
    dsub = s.add_subparsers(dest="data_command", metavar="DATA_COMMAND", parser_class=_OneLineParser)
    d = dsub.add_parser("check", help="validate a bAbI folder and print per-task statistics")
    d.add_argument("--data", metavar="DIR", help="default: $MEMNET_DATA")
    d.add_argument("--set", choices=["1k", "10k", "both"], default="both")
    d = dsub.add_parser("download", help="fetch the official bAbI v1.2 archive, verify it, extract it safely")
    d.add_argument("--dir", default="data", help="where to put it (default: %(default)s)")
    d = dsub.add_parser("generate", help="write bAbI-style stories from the built-in generator")
    d.add_argument("--task", type=int, required=True, help="1, 2, 3, 6, 7 or 8")
    d.add_argument("--out", required=True, help="folder; files go to OUT/en/")
    d.add_argument("--n-train", type=int, default=1000)
    d.add_argument("--n-test", type=int, default=1000)
    d.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_data)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        errors = _user_errors()
    except ImportError as e:                                 # a broken install: say so plainly
        print(f"memnet: {e}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except errors as e:
        print(f"memnet {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
