"""The command line as a user meets it: exit codes, one-line errors, files written."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cli_runs import cli_env
from memnet_np import cli


def run(*args, env=None, cwd=None):
    e = cli_env()                                         # this checkout's code, matplotlib on Agg
    e.pop("MEMNET_DATA", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "memnet_np", *args], capture_output=True, text=True, env=e,
                          cwd=cwd, timeout=300)


def test_help_lists_every_command():
    r = run("--help")
    assert r.returncode == 0
    for c in cli.COMMANDS:
        assert c in r.stdout
    for c in cli.COMMANDS:
        with pytest.raises(SystemExit) as e:
            cli.main([c, "--help"])
        assert e.value.code == 0


def test_no_command_prints_help_and_exits_2(capsys):
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


@pytest.mark.parametrize("args,message", [
    (["train", "lstm", "--task", "1"], "unknown model 'lstm'"),
    (["train", "memn2n", "--task", "1"], "MEMNET_DATA"),
    (["train", "memn2n"], "give either --task N"),
    (["train", "memn2n", "--task", "21", "--data", "."], "task must be 1..20"),
    (["evaluate", "missing.npz"], "no such checkpoint file"),
    (["data", "check", "--data", "/no/such/folder"], "/no/such/folder"),
    (["data", "generate", "--task", "5", "--out", "x"], "the generator makes tasks"),
    (["check", "no_such_exercise.py"], "no_such_exercise.py"),
    (["no-such-command"], "invalid choice: 'no-such-command'"),
    (["train", "memn2n", "--task", "x"], "--task must be a bAbI task 1..20 for memn2n, got 'x'"),
    (["train", "ntm", "--task", "3"], "--task must be one of copy, repeat-copy, associative-recall"),
    (["train", "memn2n", "--task", "1", "--generated", "--runs", "0"], "--runs and --jobs must be at least 1"),
    (["train", "memn2n", "--task", "1", "--generated", "--data", "x"], "--generated makes its own stories"),
    (["train", "memn2n", "--task", "1", "--generated", "--encoding", "sinusoid"], "argument --encoding"),
    (["train", "memn2n", "--task", "1", "--generated", "--epochs", "-3"], "epochs must be at least 1"),
    (["train", "memn2n", "--task", "1", "--generated", "--decay-every", "0"], "decay_every must be at least 1"),
    (["train", "dmn", "--task", "1", "--generated", "--decay-every", "0"], "decay_every must be at least 1"),
    (["train", "dmn", "--task", "1", "--generated", "--patience", "0"], "patience must be at least 1"),
    (["train", "dmn", "--task", "1", "--generated", "--init-std", "0"], "init_std must be a positive number"),
    (["train", "memnn", "--task", "1", "--generated", "--init-std", "-0.1"], "init_std must be a positive number"),
    (["train", "memn2n", "--task", "1", "--generated", "--init-std", "nan"], "init_std must be a positive number"),
    (["train", "memn2n", "--task", "1", "--generated", "--patience", "3"],
     "memn2n has no setting patience: --patience belongs to another model"),
    (["train", "dmn", "--task", "1", "--generated", "--no-te", "--no-rn"],   # the flags as the user typed them
     "dmn has no setting temporal, random_noise: --no-te, --no-rn belong to another model"),
    (["train", "ntm", "--task", "copy", "--l2", "0.5"], "ntm has no setting l2: --l2 belongs to another model"),
    (["train", "memn2n", "--task", "1", "--generated", "--gate-bias", "1"],
     "memn2n has no setting gate_bias: --gate-bias belongs to another model"),
    (["train", "dmn", "--task", "1", "--generated", "--gate-bias", "nan"], "gate_bias must be a finite number"),
    (["train", "ntm", "--task", "copy", "--epochs", "3", "--dim", "8"],
     "ntm has no setting epochs, d: --epochs, --dim belong to another model"),
    (["train", "memn2n-lm", "--relu"], "memn2n-lm has no setting relu: --relu belongs to another model"),
    (["train", "memn2n-lm", "--init-std", "0"], "init_std must be a positive number"),
    (["train", "memn2n", "--task", "1", "--generated", "--sequences", "5"],   # train's options of one other model
     "--sequences is an option of ntm, not of memn2n"),
    (["train", "dmn", "--task", "1", "--generated", "--batch", "4"], "--batch is an option of ntm, not of dmn"),
    (["train", "ntm", "--task", "copy", "--memory", "5"], "--memory is an option of memn2n-lm, not of ntm"),
    (["train", "memn2n", "--task", "1", "--generated", "--time-budget", "5"],
     "--time-budget is an option of memn2n-lm, not of memn2n"),
    (["train", "ntm", "--task", "copy", "--generated"], "ntm does not read --generated: it is for the bAbI models"),
    (["train", "memn2n-lm", "--generated"], "memn2n-lm does not read --generated"),
    (["train", "ntm", "--task", "copy", "--config", "extended"], "ntm has no --config presets"),
    (["train", "dmn", "--task", "1", "--generated", "--config", "extended"], "dmn has no --config presets"),
    (["evaluate"], "the following arguments are required: checkpoint"),
    (["evaluate", "."], "is a folder without a checkpoint.npz"),
    (["reproduce", "memn2n", "--suite", "nope"], "argument --suite: invalid choice"),
    (["reproduce", "memn2n", "--suite", "babi-1k", "--data", "/no/such/folder"], "/no/such/folder"),
    (["bench", "memn2n", "--task", "0"], "--task must be 1..20"),
    (["bench", "lstm"], "unknown model 'lstm'"),
    (["figures", "--bogus"], "unrecognized arguments: --bogus"),
    (["demo", "--epochs", "x"], "argument --epochs: invalid int value"),
    (["data", "generate", "--task", "1"], "the following arguments are required"),
    (["data", "download", "--dir"], "argument --dir: expected one argument"),
    (["check"], "the following arguments are required: file"),
])
def test_user_errors_exit_2_with_one_line(args, message, tmp_path):
    r = run(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_every_option_of_train_is_every_models_or_declared_by_the_models_that_read_it():
    """A new option of `train` must be a model option (OPTION_FIELDS), a bAbI data option, one every model takes,
    or in the OWN_CLI_OPTIONS of the models that read it: otherwise no refusal names it for the others."""
    from memnet_np import cli
    parser = cli.build_parser()
    train = next(a for a in parser._actions if a.dest == "command").choices["train"]
    dests = {a.dest for a in train._actions if a.dest != "help"}
    every_model = {"model", "task", "config", "joint", "runs", "jobs", "seed", "out", "resume", "quiet"}
    own = cli._own_options()
    assert own == {"sequences": ["ntm"], "batch": ["ntm"], "memory": ["memn2n-lm"], "order": ["memn2n-lm"],
                   "time_budget": ["memn2n-lm"]}
    assert dests - every_model - set(cli.OPTION_FIELDS) - set(cli.BABI_DATA_OPTIONS) - set(own) == set()


def test_malformed_babi_file_is_reported_as_file_and_line(tmp_path):
    en = tmp_path / "en"
    en.mkdir()
    (en / "qa1_single-supporting-fact_train.txt").write_text("1 Mary went to the office.\nx Where is Mary?\toffice\t1\n")
    (en / "qa1_single-supporting-fact_test.txt").write_text("1 Mary went to the office.\n2 Where is Mary?\toffice\t1\n")
    r = run("data", "check", "--data", str(tmp_path))
    assert r.returncode == 2
    assert "qa1_single-supporting-fact_train.txt:2:" in r.stderr and "Traceback" not in r.stderr


def test_data_check_on_real_data_counts_questions(babi_root):
    r = run("data", "check", "--data", str(babi_root), "--set", "1k")
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines() if line.startswith("en ")]
    assert len(rows) == 40                                   # 20 tasks × train/test
    assert all("1000" in row for row in rows)


def test_generate_train_evaluate_round_trip(tmp_path):
    r = run("data", "generate", "--task", "1", "--out", str(tmp_path / "gen"), "--n-train", "300", "--n-test", "200")
    assert r.returncode == 0, r.stderr
    r = run("data", "check", "--data", str(tmp_path / "gen"))
    assert r.returncode == 1 and "300" in r.stdout                 # parsed, but tasks 2..20 are not there
    missing = next(line for line in r.stdout.splitlines() if "missing:" in line)
    assert "38 missing:" in missing and "en/qa2_*_train.txt" in missing and "qa1_" not in missing
    r = run("train", "memn2n", "--task", "1", "--data", str(tmp_path / "gen"), "--epochs", "3", "--out",
            str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr
    assert "epoch   1/" in r.stdout and "ETA" in r.stdout and "test error" in r.stdout
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    for key in ("model", "task", "train_error", "val_error", "test_error", "epochs", "seconds"):
        assert key in res
    assert res["model"] == "memn2n" and res["task"] == 1 and res["epochs"] >= 3
    r = run("evaluate", str(tmp_path / "run" / "checkpoint.npz"), "--data", str(tmp_path / "gen"))
    assert r.returncode == 0, r.stderr
    assert f"test error {res['test_error']:.1f}%" in r.stdout


def test_train_generated_with_runs_reports_both_selections(tmp_path):
    r = run("train", "memn2n", "--task", "1", "--generated", "--runs", "2", "--epochs", "2", "--quiet",
            "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "selected by validation error" in r.stdout
    res = json.loads((tmp_path / "results.json").read_text())
    assert len(res["runs"]) == 2 and "selected_by_val" in res


def test_evaluate_rejects_unknown_words(tmp_path):
    r = run("train", "memn2n", "--task", "1", "--generated", "--epochs", "1", "--quiet", "--out", str(tmp_path / "m"))
    assert r.returncode == 0, r.stderr
    en = tmp_path / "d" / "en"
    en.mkdir(parents=True)
    story = "1 Zorblax went to the office.\n2 Where is Zorblax? \toffice\t1\n"
    (en / "qa1_single-supporting-fact_train.txt").write_text(story)
    (en / "qa1_single-supporting-fact_test.txt").write_text(story)
    r = run("evaluate", str(tmp_path / "m" / "checkpoint.npz"), "--data", str(tmp_path / "d"))
    assert r.returncode == 2 and "zorblax" in r.stderr.lower()


def test_runtime_settings_are_applied_by_the_cli_not_by_importing_the_package():
    code = ("import os, memnet_np, memnet_np.memn2n; a = os.environ.get('OPENBLAS_NUM_THREADS'); "
            "import memnet_np.cli; print(a, os.environ.get('OPENBLAS_NUM_THREADS'))")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                            "MKL_NUM_THREADS")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.stdout.split() == ["None", "1"], r.stderr
    from memnet_np import runtime
    if sys.platform.startswith("linux") and "glibc" in " ".join(__import__("platform").libc_ver()):
        assert runtime.keep_freed_memory() is True


@pytest.mark.parametrize("option", [["--epochs", "0"], ["--dim", "0"], ["--hops", "0"]])
def test_impossible_settings_are_one_line_before_training(option, tmp_path):
    r = run("train", "memn2n", "--task", "1", "--generated", *option, cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "must be at least 1" in r.stderr
    assert "epoch" not in r.stdout and not (tmp_path / "runs").exists()


def test_train_without_out_saves_where_it_says_and_evaluate_takes_the_folder(tmp_path):
    r = run("train", "memn2n", "--task", "1", "--generated", "--epochs", "2", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    run_dir = tmp_path / "runs" / "memn2n-task1-generated"
    assert (run_dir / "checkpoint.npz").is_file() and (run_dir / "results.json").is_file()
    assert f"evaluate {Path('runs') / 'memn2n-task1-generated'}" in r.stdout
    res = json.loads((run_dir / "results.json").read_text())
    r = run("evaluate", str(run_dir), cwd=tmp_path)            # a generated checkpoint needs no --data
    assert r.returncode == 0, r.stderr
    assert "(generated stories)" in r.stdout and f"test error {res['test_error']:.1f}%" in r.stdout
    r = run("evaluate", str(tmp_path), cwd=tmp_path)
    assert r.returncode == 2 and "is a folder without a checkpoint.npz" in r.stderr


def test_data_check_names_every_missing_file(babi_root):
    if list((babi_root / "en-10k").glob("qa3_*_train.txt")):
        pytest.skip("this copy of bAbI has every 10k file")
    r = run("data", "check", "--data", str(babi_root), "--set", "10k")
    assert r.returncode == 1
    assert "1 missing: en-10k/qa3_*_train.txt" in r.stdout


def test_the_task_folder_itself_is_accepted_as_data(babi_root, tmp_path):
    r = run("train", "memn2n", "--task", "1", "--data", str(babi_root / "en"), "--epochs", "1", "--quiet",
            "--no-ls", "--out", "x", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "x" / "checkpoint.npz").is_file()
    r = run("train", "memn2n", "--task", "1", "--data", str(babi_root / "en-10k"), "--epochs", "1", cwd=tmp_path)
    assert r.returncode == 2 and "add --tenk" in r.stderr


def test_figures_without_matplotlib_stops_before_training(tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None; from memnet_np.cli import main; "
            f"sys.exit(main(['figures', '--out', {str(tmp_path)!r}, '--quick']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "figures need matplotlib" in r.stderr and "Traceback" not in r.stderr
    assert "figures from" not in r.stdout


def test_train_and_evaluate_dmn_both_variants(tmp_path):
    for variant in ("dmn", "dmn+"):
        out = tmp_path / variant
        r = run("train", "dmn", "--task", "1", "--generated", "--variant", variant, "--epochs", "2", "--hidden", "8",
                "--dim", "8", "--passes", "2", "--quiet", "--out", str(out))
        assert r.returncode == 0, r.stderr
        res = json.loads((out / "results.json").read_text())
        assert 0 <= res["test_error"] <= 100
        r = run("evaluate", str(out))
        assert r.returncode == 0, r.stderr
        assert f"test error {res['test_error']:.1f}%" in r.stdout
    out = tmp_path / "causal"
    r = run("train", "dmn", "--task", "1", "--generated", "--epochs", "1", "--hidden", "8", "--dim", "8",
            "--gate-targets", "causal", "--answer-module", "gru", "--quiet", "--out", str(out))
    assert r.returncode == 0, r.stderr
    with np.load(out / "checkpoint.npz", allow_pickle=False) as z:
        config = json.loads(str(z["header"]))["config"]
    assert config["gate_targets"] == "causal" and config["answer_module"] == "gru"
    assert config["answer_words"][0] == "<end>"
    r = run("evaluate", str(out))                             # the decoder's table comes back from the checkpoint
    assert r.returncode == 0, r.stderr
    r = run("train", "dmn", "--task", "1", "--generated", "--passes", "0", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "passes must be at least 1" in r.stderr


def test_schedule_flags_reach_the_config():
    from memnet_np import dmn, experiments as E
    args = cli.build_parser().parse_args(["train", "dmn", "--task", "1", "--generated", "--decay-every", "1000",
                                          "--patience", "20", "--epochs", "256"])
    ds = E.load_data(E.DataSpec(tasks=1, generated=True))
    config = E.make_config(dmn, ds, cli._overrides(args))
    assert (config.decay_every, config.patience, config.epochs) == (1000, 20, 256)
    default = E.make_config(dmn, ds, cli._overrides(cli.build_parser().parse_args(["train", "dmn", "--task", "1"])))
    assert (default.decay_every, default.patience) == (10, 10)
    args = cli.build_parser().parse_args(["train", "dmn", "--task", "1", "--generated", "--init-std", "1",
                                          "--l2", "1e-3", "--dropout", "0.1", "--gate-bias", "1",
                                          "--extra-passes", "end"])
    config = E.make_config(dmn, ds, cli._overrides(args))
    assert (config.init_std, config.l2, config.dropout, config.gate_bias) == (1.0, 1e-3, 0.1, 1.0)
    assert config.extra_passes == "end" and default.extra_passes == "last"
    assert (default.init_std, default.l2, default.dropout, default.gate_bias) == (0.3, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("model", ["dmn", "memnn"])
def test_bench_passes_the_data_folder_to_the_model(model, monkeypatch, capsys):
    """A bAbI model's bench takes the folder as `data`, the name the CLI passes (dmn.bench once took `data_dir`
    and silently timed generated stories)."""
    import inspect
    from memnet_np import experiments as E
    module = E.get_model(model)
    assert "data" in inspect.signature(module.bench).parameters
    seen = {}

    def fake(quick=False, data=None):
        return seen.update(data=data) or {}
    monkeypatch.setattr(module, "bench", fake)
    monkeypatch.setattr(module, "format_bench", lambda r: "timed")
    assert cli.main(["bench", model, "--data", "/some/folder", "--quick"]) == 0
    assert seen["data"] == "/some/folder" and "timed" in capsys.readouterr().out
