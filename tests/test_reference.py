"""The transcribed paper tables: internal consistency (lengths, means, failed counts) and the comparison table."""
import pytest

from memnet_np import reference as R

PER_TASK_TABLES = {
    **{f"MEMN2N_1K[{k}]": v for k, v in R.MEMN2N_1K.items()},
    "MEMN2N_10K_JOINT": R.MEMN2N_10K_JOINT,
    "DMNPLUS_10K": R.DMNPLUS_10K,
    **{f"MEMNN_1K_ACCURACY[{k}]": v for k, v in R.MEMNN_1K_ACCURACY.items()},
    **{f"DMN_1K_ACCURACY[{k}]": v for k, v in R.DMN_1K_ACCURACY.items()},
}


@pytest.mark.parametrize("name", sorted(PER_TASK_TABLES))
def test_every_per_task_row_has_20_numbers(name):
    row = PER_TASK_TABLES[name]
    assert len(row) == 20
    assert all(isinstance(x, (int, float)) and 0 <= x <= 100 for x in row)


@pytest.mark.parametrize("name", sorted(R.MEMN2N_1K))
def test_memn2n_1k_means_and_failed_match_the_printed_columns(name):
    mean, failed = R.mean_and_failed(R.MEMN2N_1K[name])
    printed = R.MEMN2N_1K_PRINTED[name]
    assert abs(mean - printed.mean) <= 0.1                     # printed to one decimal
    assert failed == printed.failed


def test_memn2n_1k_known_values():
    assert R.MEMN2N_1K_PRINTED["MemN2N PE LS RN joint"] == (12.4, 11, "")
    assert R.MEMN2N_1K_MEANS["MemN2N PE LS RN"].mean == 13.9 and R.MEMN2N_1K_MEANS["MemN2N PE LS RN"].failed == 11
    assert R.MEMN2N_1K_MEANS["MemN2N 3 hops PE LS joint"].mean == 13.3
    assert [R.MEMN2N_1K_MEANS[k].mean for k in ("official MATLAB code, single task", "official MATLAB code, joint",
                                                "Python 2 port, single task", "Python 2 port, joint")] == \
        [13.8, 12.4, 15.2, 12.9]
    assert R.MEMN2N_1K["MemN2N BoW"][2] == 71.0 and R.MEMN2N_1K["LSTM"][18] == 92


def test_memn2n_10k():
    assert {k: (s.mean, s.failed) for k, s in R.MEMN2N_10K_MEANS.items()} == {
        "MemNN strong sup.": (3.2, None), "LSTM": (36.4, None), "MemN2N PE LS RN": (6.6, 4),
        "MemN2N PE LS RN joint": (7.5, None), "MemN2N PE LS RN d=100 ReLU": (4.2, 3)}
    mean, _ = R.mean_and_failed(R.MEMN2N_10K_JOINT)
    assert mean == pytest.approx(R.MEMN2N_10K_MEANS["MemN2N PE LS RN joint"].mean, abs=0.1)


@pytest.mark.parametrize("name", sorted(R.MEMNN_1K_ACCURACY))
def test_memnn_accuracy_rows(name):
    acc = R.MEMNN_1K_ACCURACY[name]
    printed = R.MEMNN_1K_PRINTED[name]
    assert sum(a < 95 for a in acc) == printed.failed         # the table's "failed (< 95)" column
    average = sum(acc) / 20
    if name == "MemNN k=2 (2014)":
        # The paper prints 75, but its entries average 70.05 (REFERENCE.md says so): keep both facts.
        assert printed.mean == 75.0
        assert average == pytest.approx(70.05)
        assert "70.05" in printed.note
    else:
        assert average == pytest.approx(93.35)
        assert abs(average - printed.mean) < 0.5                # printed as an integer


@pytest.mark.parametrize("name", sorted(R.DMN_1K_ACCURACY))
def test_dmn_accuracy_rows(name):
    acc = R.DMN_1K_ACCURACY[name]
    printed = R.DMN_1K_PRINTED[name]
    assert abs(sum(acc) / 20 - printed.mean) <= 0.1
    assert 20 - sum(a >= 95 for a in acc) == printed.failed   # tasks >= 95%: MemNN 16, DMN 18
    assert {"MemNN": 16, "DMN": 18}[name] == sum(a >= 95 for a in acc)


def test_cross_table_consistency():
    # Sukhbaatar's "MemNN strong sup." column is 100 − Weston's AM+NG+NL accuracy row, which Kumar also reprints.
    assert R.errors_from_accuracy(R.MEMNN_1K_ACCURACY["MemNN AM+NG+NL"]) == R.MEMN2N_1K["MemNN strong sup."]
    assert R.DMN_1K_ACCURACY["MemNN"] == R.MEMNN_1K_ACCURACY["MemNN AM+NG+NL"]


def test_dmnplus_and_ntm_anchors():
    assert R.DMNPLUS_10K_MEANS["DMN+"].mean == 2.8 and R.DMNPLUS_10K_MEANS["DMN+"].failed == 1
    assert R.DMNPLUS_10K_MEANS["DMN (original, on 10k)"].mean == 11.8
    assert R.DMNPLUS_10K_MEANS["MemN2N"].mean == 4.2
    # the transcribed per-task row agrees with the paper's own mean, failed count and failed task
    assert R.mean_and_failed(R.DMNPLUS_10K) == (pytest.approx(2.8, abs=0.01), 1) and R.DMNPLUS_10K[15] == 45.3
    assert R.paper_errors("dmn+", "babi-10k")["DMN+"] == R.DMNPLUS_10K
    assert R.NTM_ANCHORS["copy_random_guess_bits"] == 84.0
    assert R.NTM_ANCHORS["convergence_bits_per_sequence"] == 0.1
    assert R.NTM_ANCHORS["copy_parameters"] == 67_561
    assert R.NTM_ANCHORS["rmsprop"] == {"lr": 1e-4, "decay": 0.95, "momentum": 0.9, "eps": 1e-4}


# ----------------------------------------------------------------------------------------------------------------
# Accessors


@pytest.mark.parametrize("model,suite", [("memn2n", "babi-1k"), ("memn2n", "babi-10k"), ("memnn", "babi-1k"),
                                         ("dmn", "babi-1k"), ("dmn", "babi-10k"), ("DMN+", "babi-10k")])
def test_paper_errors_shape(model, suite):
    cols = R.paper_errors(model, suite)
    assert cols and all(len(v) == 20 for v in cols.values())
    for name, values in cols.items():
        assert all(v is None for v in values) or all(isinstance(v, float) for v in values)
        if all(v is None for v in values):
            assert name in cols.means                         # a means-only column always has its mean
    assert cols.source


def test_paper_errors_values():
    cols = R.paper_errors()
    assert set(R.MEMN2N_1K) <= set(cols) and set(R.MEMN2N_1K_MEANS) <= set(cols)
    assert cols["MemN2N PE"] == R.MEMN2N_1K["MemN2N PE"]
    assert cols["MemN2N PE LS RN"] == [None] * 20
    assert cols.means["MemN2N PE LS RN"].mean == 13.9
    cols["MemN2N PE"][0] = 99.0                               # a copy: the module's data stay as printed
    assert R.MEMN2N_1K["MemN2N PE"][0] == 0.1
    ten = R.paper_errors("memn2n", "babi-10k")
    assert ten["MemN2N PE LS RN joint"] == R.MEMN2N_10K_JOINT and ten["LSTM"] == [None] * 20
    dmn = R.paper_errors("dmn")
    assert dmn["DMN"][1] == pytest.approx(1.8) and dmn["DMN"][16] == pytest.approx(40.4)
    assert dmn.means["DMN"].mean == pytest.approx(6.4)
    with pytest.raises(ValueError, match="no published numbers for model='lstm'"):
        R.paper_errors("lstm")
    with pytest.raises(ValueError, match="NTM_ANCHORS"):
        R.paper_errors("ntm", "copy")


def test_mean_and_failed():
    assert R.mean_and_failed([1.0, 5.0, 6.0, None]) == (4.0, 1)     # 5.0 is not a failure; None is skipped
    assert R.mean_and_failed({1: 10.0, 2: 0.0}, fail_above=9.0) == (5.0, 1)
    with pytest.raises(ValueError, match="no numbers"):
        R.mean_and_failed([None] * 20)


def rows(table):
    """Markdown table -> {first cell: [other cells]} (table lines only)."""
    out = {}
    for line in table.splitlines():
        if line.startswith("| ") and not line.startswith("| task"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            out[cells[0]] = cells[1:]
    return out


def test_comparison_table_full_coverage():
    ours = {t: float(t) / 2 for t in range(1, 21)}            # 0.5, 1.0, ..., 10.0: mean 5.25, failed (> 5) 10
    cols = R.paper_errors("memn2n", "babi-1k")
    table = R.comparison_table(ours, cols)
    header = table.splitlines()[0]
    assert header == ("| task | ours | MemNN strong sup. | LSTM | MemN2N BoW | MemN2N PE | MemN2N PE LS RN joint |")
    r = rows(table)
    assert [str(t) for t in range(1, 21)] == [k for k in r if k.isdigit()]
    assert r["3"] == ["1.5", "0.0", "80.0", "71.0", "64.2", "21.9"]
    assert r["19"] == ["9.5", "64.0", "92.0", "89.7", "87.4", "88.0"]
    assert r["mean"] == ["5.3", "6.7", "51.3", "25.1", "20.3", "12.4"]   # 5.25 rounds half up, as the papers do
    assert r["failed (> 5%)"] == ["10", "4", "20", "15", "13", "11"]
    notes = table.split("\n\n", 1)[1]
    assert "MemN2N PE LS RN 13.9 (11 failed" in notes and "MemN2N 3 hops PE LS joint 13.3" in notes
    assert "Python 2 port, joint 12.9" in notes
    assert "same" not in notes                                # full coverage: no partial-coverage note


def test_comparison_table_partial_coverage_and_missing_tasks():
    ours = {2: 10.0, 1: 0.25}
    table = R.comparison_table(ours, {"paper": [float(t) for t in range(1, 21)]}, ours_label="us")
    assert table.splitlines()[0] == "| task | us | paper |"
    r = rows(table)
    assert r["1"] == ["0.3", "1.0"] and r["2"] == ["10.0", "2.0"]
    assert r["3"] == ["—", "3.0"]                             # a task we did not run
    assert r["mean"] == ["5.1", "1.5"]                        # the paper column over the same tasks 1 and 2
    assert r["failed (> 5%)"] == ["1", "0"]


def test_comparison_table_means_only_and_10k():
    table = R.comparison_table({1: 0.0, 17: 50.0}, R.paper_errors("memn2n", "babi-10k"))
    r = rows(table)
    assert table.splitlines()[0] == "| task | ours | MemN2N PE LS RN joint |"
    assert r["17"] == ["50.0", "41.8"] and r["2"] == ["—", "1.0"]
    assert r["mean"] == ["25.0", "20.9"] and r["failed (> 5%)"] == ["1", "1"]
    notes = table.split("\n\n", 1)[1]
    assert "LSTM 36.4" in notes and "MemN2N PE LS RN 6.6 (4 failed)" in notes
    assert "MemN2N PE LS RN joint 7.5" in notes               # the 20-task mean, since ours covers 2 tasks
    dmn = R.comparison_table({16: 45.3, 17: 50.0}, R.paper_errors("dmn", "babi-10k"))
    r = rows(dmn)
    assert dmn.splitlines()[0] == "| task | ours | DMN+ |"
    assert r["16"] == ["45.3", "45.3"] and r["17"] == ["50.0", "4.2"] and r["3"] == ["—", "1.1"]
    assert r["mean"] == ["47.7", "24.8"] and r["failed (> 5%)"] == ["2", "1"]   # over the tasks we have
    assert "the paper's own 20-task means: DMN+ 2.8" in dmn and "DMN (original, on 10k) 11.8" in dmn


def test_comparison_table_bad_input():
    with pytest.raises(ValueError, match="task numbers 1..20"):
        R.comparison_table({21: 1.0}, R.paper_errors())
    with pytest.raises(ValueError, match="'short' has 3 entries"):
        R.comparison_table({1: 1.0}, {"short": [1.0, 2.0, 3.0]})
